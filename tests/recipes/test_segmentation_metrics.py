"""mIoU, mAcc and aAcc the mmsegmentation way, against a hand-computed
example.

The numpy scores are backend-independent (tested in the PyTorch run); the
Keras metric runs on every backend.

The example (K = 4 classes, ignore index 255), two 2 x 3 images:

    image 1 labels [[0, 0, 1], [1, 255, 0]]  predictions [[0, 1, 1], [2, 3, 0]]
    image 2 labels [[0, 1, 1], [255, 7, 1]]  predictions [[0, 1, 0], [1, 1, 1]]

The 255 pixels and the label 7 (outside [0, 4)) are left out, whatever
their prediction. The 9 pixels left, as (label, prediction):
image 1: (0,0) (0,1) (1,1) (1,2) (0,0); image 2: (0,0) (1,1) (1,0) (1,1).

    class            0        1        2       3
    intersect        3        3        0       0
    label area       4        5        0       0
    pred area        4        4        1       0
    union            4+4-3=5  4+5-3=6  1       0
    IoU              3/5=0.6  3/6=0.5  0/1=0   0/0 -> NaN (absent)
    Acc              3/4=.75  3/5=0.6  0/0 NaN 0/0 -> NaN

    mIoU = (0.6 + 0.5 + 0) / 3 = 0.3666...   (NaN left out)
    mAcc = (0.75 + 0.6) / 2 = 0.675
    aAcc = (3 + 3) / 9 = 0.6666...
"""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest
from helpers import BACKEND, to_numpy

from keras_swin.recipes.segmentation_metrics import (
    SegmentationMeanIoU,
    SegmentationScores,
    intersect_and_union,
    segmentation_scores,
)

LABELS = np.array(
    [
        [[0, 0, 1], [1, 255, 0]],
        [[0, 1, 1], [255, 7, 1]],
    ]
)
PREDICTIONS = np.array(
    [
        [[0, 1, 1], [2, 3, 0]],
        [[0, 1, 0], [1, 1, 1]],
    ]
)
K = 4
MIOU = (0.6 + 0.5 + 0.0) / 3
MACC = (0.75 + 0.6) / 2
AACC = 6 / 9

numpy_only = pytest.mark.skipif(
    BACKEND != "torch",
    reason="numpy code, backend-independent: tested in the PyTorch run",
)


def _assert_hand_scores(result):
    assert result["mIoU"] == pytest.approx(MIOU, abs=1e-12)
    assert result["mAcc"] == pytest.approx(MACC, abs=1e-12)
    assert result["aAcc"] == pytest.approx(AACC, abs=1e-12)
    np.testing.assert_allclose(
        result["IoU"], [0.6, 0.5, 0.0, np.nan], rtol=1e-12
    )
    np.testing.assert_allclose(
        result["Acc"], [0.75, 0.6, np.nan, np.nan], rtol=1e-12
    )


@numpy_only
def test_counts_by_hand():
    counts = intersect_and_union(LABELS, PREDICTIONS, K)
    assert counts["intersect"].tolist() == [3, 3, 0, 0]
    assert counts["label_area"].tolist() == [4, 5, 0, 0]
    assert counts["pred_area"].tolist() == [4, 4, 1, 0]
    assert counts["union"].tolist() == [5, 6, 1, 0]


@numpy_only
def test_scores_accumulate_over_batches():
    scores = SegmentationScores(K)
    scores.update(LABELS[:1], PREDICTIONS[:1])
    scores.update(LABELS[1], PREDICTIONS[1])  # an (H, W) map
    _assert_hand_scores(scores.result())
    # Summing the counts is not averaging per image: image 1 alone has
    # mIoU (2/3 + 1/3 + 0) / 3 (class 0: I 2, label 3, pred 2, U 3;
    # class 1: I 1, label 2, pred 2, U 3; class 2: U 1; class 3 was
    # predicted on the ignored pixel only: NaN).
    alone = segmentation_scores(LABELS[:1], PREDICTIONS[:1], K)
    assert alone["mIoU"] == pytest.approx(1 / 3)
    scores.reset()
    empty = scores.result()
    assert math.isnan(empty["mIoU"]) and math.isnan(empty["aAcc"])


@numpy_only
def test_one_call_takes_maps_of_different_sizes():
    _assert_hand_scores(segmentation_scores(LABELS, PREDICTIONS, K))
    # The same pixels as a (3, 2) and a (1, 6) map.
    labels = [LABELS[0].reshape(3, 2), LABELS[1].reshape(1, 6)]
    predictions = [PREDICTIONS[0].reshape(3, 2), PREDICTIONS[1].reshape(1, 6)]
    _assert_hand_scores(segmentation_scores(labels, predictions, K))


@numpy_only
def test_score_errors():
    with pytest.raises(ValueError, match="same shape"):
        segmentation_scores(LABELS, PREDICTIONS[:, :1], K)
    with pytest.raises(ValueError, match="argmax"):
        segmentation_scores(LABELS, PREDICTIONS.astype(np.float32), K)
    with pytest.raises(ValueError, match="positive integer"):
        SegmentationScores(0)
    with pytest.raises(ValueError, match="2 label maps but 1"):
        segmentation_scores(list(LABELS), [PREDICTIONS[0]], K)


def _logits(predictions):
    """Logits whose argmax is `predictions`: (B, H, W, K)."""
    return np.eye(K, dtype=np.float32)[predictions] * 3.0 - 1.0


def test_keras_metric_by_hand():
    # Batches of one shape only: JAX compiles each eager op per shape.
    metric = SegmentationMeanIoU(num_classes=K)
    metric.update_state(LABELS[:1], _logits(PREDICTIONS[:1]))
    metric.update_state(LABELS[1:], _logits(PREDICTIONS[1:]))
    assert float(to_numpy(metric.result())) == pytest.approx(MIOU, abs=1e-6)
    confusion = to_numpy(metric.confusion)
    # Rows labels, columns predictions: the 9 pairs of the docstring.
    expected = np.zeros((K, K))
    expected[0, 0], expected[0, 1], expected[1, 1] = 3, 1, 3
    expected[1, 2], expected[1, 0] = 1, 1
    np.testing.assert_array_equal(confusion, expected)
    metric.reset_state()
    assert float(to_numpy(metric.result())) == 0.0
    # Weight 0 on image 2: image 1's mIoU, 1/3 (see above).
    for index, weight in enumerate((1.0, 0.0)):
        metric.update_state(
            LABELS[index : index + 1],
            _logits(PREDICTIONS[index : index + 1]),
            sample_weight=np.full((1, 1, 1), weight),
        )
    assert float(to_numpy(metric.result())) == pytest.approx(1 / 3, abs=1e-6)


def test_keras_metric_config_round_trip():
    metric = SegmentationMeanIoU(num_classes=K, ignore_index=None, name="m")
    config = metric.get_config()
    assert config["num_classes"] == K and config["ignore_index"] is None
    registered = keras.saving.get_registered_object(
        "keras_swin>SegmentationMeanIoU"
    )
    assert registered is SegmentationMeanIoU
    restored = SegmentationMeanIoU.from_config(config)
    assert restored.num_classes == K and restored.ignore_index is None
    assert restored.name == "m"


@pytest.mark.slow
def test_keras_metric_in_compiled_evaluate():
    """The metric inside `model.evaluate` (a compiled step on every
    backend) gives the numpy score of the model's own predictions."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((2, 3, 3))
    model = keras.Model(inputs, keras.layers.Conv2D(K, 1)(inputs))
    model.compile(
        loss=keras.losses.SparseCategoricalCrossentropy(
            from_logits=True, ignore_class=255
        ),
        metrics=[SegmentationMeanIoU(K)],
    )
    images = np.random.default_rng(0).normal(size=(2, 2, 3, 3))
    images = images.astype(np.float32)
    # The loss cannot take the out-of-range label 7: class 2 instead.
    labels = np.where(LABELS == 7, 2, LABELS)
    # The 1 x 1 convolution in numpy.
    kernel, bias = (to_numpy(w) for w in model.layers[-1].weights)
    predictions = (images @ kernel[0, 0] + bias).argmax(-1)
    expected = segmentation_scores(labels, predictions, K)["mIoU"]
    # (B, H, W, 1) labels, as Keras' sparse losses also take them.
    result = model.evaluate(
        images, labels[..., None], batch_size=2, verbose=0, return_dict=True
    )
    assert result["mean_iou"] == pytest.approx(expected, abs=1e-6)
