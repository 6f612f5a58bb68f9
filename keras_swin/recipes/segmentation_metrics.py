"""Segmentation scores the mmsegmentation way: mIoU, mAcc, aAcc.

mmsegmentation (`mmseg.core.evaluation.mean_iou`, the numbers of the
Swin paper's ADE20K table) does not average per-image scores: it adds up,
over the whole dataset, four pixel counts per class c

- intersect[c]: pixels labelled c and predicted c,
- pred_area[c]: pixels predicted c,
- label_area[c]: pixels labelled c,
- union[c] = pred_area[c] + label_area[c] - intersect[c],

counting only pixels whose label is not `ignore_index` (255 for ADE20K),
then reports

- IoU[c] = intersect[c] / union[c] and mIoU = nanmean over c;
- Acc[c] = intersect[c] / label_area[c] and mAcc = nanmean over c;
- aAcc = sum(intersect) / sum(label_area) (pixel accuracy).

A class with a zero denominator is NaN and left out of the mean: a class
neither labelled nor predicted anywhere has no IoU; a class predicted but
never labelled has IoU 0 and no Acc.

Pixels whose label lies outside [0, K) (other than `ignore_index`) are
left out entirely here; mmsegmentation (`torch.histc`) would still count
their predictions in `pred_area`. ADE20K labels after
`reduce_zero_label` are always 0..149 or 255, where the two agree.

- `SegmentationScores`: the running totals over a dataset (numpy),
  `update(labels, predictions)` then `result()`.
- `segmentation_scores(labels, predictions, num_classes)`: one call.
- `SegmentationMeanIoU`: a Keras metric for `model.compile`, mIoU of the
  logits during training (keras.ops only, every backend).

Example:
    >>> import numpy as np
    >>> labels = np.array([[[0, 1], [1, 255]]])
    >>> preds = np.array([[[0, 1], [0, 0]]])
    >>> scores = segmentation_scores(labels, preds, num_classes=2)
    >>> scores["mIoU"], scores["aAcc"]
    (0.5, 0.6666666666666666)
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import keras
import numpy as np
from keras import ops

#: ADE20K's label of pixels without a class.
IGNORE_INDEX = 255


def _check_num_classes(num_classes) -> int:
    if (
        isinstance(num_classes, bool)
        or not isinstance(num_classes, (int, np.integer))
        or num_classes < 1
    ):
        raise ValueError(
            f"num_classes must be a positive integer, got {num_classes!r}."
        )
    return int(num_classes)


def intersect_and_union(
    labels,
    predictions,
    num_classes: int,
    ignore_index: int | None = IGNORE_INDEX,
) -> dict[str, np.ndarray]:
    """The four per-class pixel counts of one batch (mmseg's
    `intersect_and_union`).

    Args:
        labels: (...) integer class ids; `ignore_index` and ids outside
            [0, K) are left out.
        predictions: (...) integer class ids, labels' shape (predictions
            outside [0, K) count for no class).
        num_classes: K.
        ignore_index: label of pixels without a class; None: none.

    Returns:
        dict of (K,) int64 arrays: "intersect", "union", "pred_area",
        "label_area".

    Raises:
        ValueError: shapes that differ, non-integer arrays, or a bad K.

    Example:
        >>> counts = intersect_and_union(np.array([0, 1, 1]),
        ...                              np.array([0, 0, 1]), 2)
        >>> counts["intersect"].tolist(), counts["union"].tolist()
        ([1, 1], [2, 2])
    """
    k = _check_num_classes(num_classes)
    labels = np.asarray(labels)
    predictions = np.asarray(predictions)
    if labels.shape != predictions.shape:
        raise ValueError(
            f"labels {labels.shape} and predictions {predictions.shape} "
            "must have the same shape (resize the prediction to the "
            "label's size before scoring)."
        )
    for name, array in (("labels", labels), ("predictions", predictions)):
        if not np.issubdtype(array.dtype, np.integer):
            raise ValueError(
                f"{name} must hold integer class ids, got {array.dtype} "
                "(pass argmax(logits, -1), not logits)."
            )
    labels = labels.ravel().astype(np.int64)
    predictions = predictions.ravel().astype(np.int64)
    valid = (labels >= 0) & (labels < k)
    if ignore_index is not None:
        valid &= labels != ignore_index
    labels, predictions = labels[valid], predictions[valid]
    label_area = np.bincount(labels, minlength=k)
    in_range = (predictions >= 0) & (predictions < k)
    pred_area = np.bincount(predictions[in_range], minlength=k)
    intersect = np.bincount(labels[labels == predictions], minlength=k)
    return {
        "intersect": intersect,
        "union": pred_area + label_area - intersect,
        "pred_area": pred_area,
        "label_area": label_area,
    }


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(
            denominator > 0,
            numerator / np.maximum(denominator, 1),
            np.nan,
        )


def _nanmean(values: np.ndarray) -> float:
    kept = values[~np.isnan(values)]
    return float(kept.mean()) if kept.size else math.nan


class SegmentationScores:
    """mIoU, mAcc and aAcc accumulated over a dataset (numpy).

    Args:
        num_classes: K.
        ignore_index: label of pixels without a class (left out); None:
            none.

    Example:
        >>> scores = SegmentationScores(num_classes=3)
        >>> scores.update(np.array([[[0, 1]]]), np.array([[[0, 2]]]))
        >>> scores.update(np.array([[[2, 255]]]), np.array([[[2, 0]]]))
        >>> result = scores.result()
        >>> result["mIoU"], result["IoU"]
        (0.5, [1.0, 0.0, 0.5])
    """

    def __init__(
        self, num_classes: int, ignore_index: int | None = IGNORE_INDEX
    ):
        self.num_classes = _check_num_classes(num_classes)
        self.ignore_index = ignore_index
        self.reset()

    def reset(self) -> None:
        """Clears the totals."""
        zeros = np.zeros(self.num_classes, np.int64)
        self.totals = {
            key: zeros.copy()
            for key in ("intersect", "union", "pred_area", "label_area")
        }

    def update(self, labels, predictions) -> None:
        """Adds a batch to the totals.

        Args:
            labels: (B, H, W) integer class ids, or one (H, W) map.
            predictions: (B, H, W) integer class ids at the labels' size
                (from logits: `argmax(logits, -1)`, after resizing the
                logits to the label's size).
        """
        counts = intersect_and_union(
            labels, predictions, self.num_classes, self.ignore_index
        )
        for key, value in counts.items():
            self.totals[key] += value

    def result(self) -> dict:
        """The scores of everything added so far.

        Returns:
            dict with "mIoU", "mAcc", "aAcc" (floats in [0, 1], NaN when
            undefined) and "IoU", "Acc" (lists of K floats, NaN for the
            classes left out of the means).
        """
        iou = _ratio(self.totals["intersect"], self.totals["union"])
        acc = _ratio(self.totals["intersect"], self.totals["label_area"])
        labelled = self.totals["label_area"].sum()
        return {
            "mIoU": _nanmean(iou),
            "mAcc": _nanmean(acc),
            "aAcc": (
                float(self.totals["intersect"].sum() / labelled)
                if labelled
                else math.nan
            ),
            "IoU": [float(v) for v in iou],
            "Acc": [float(v) for v in acc],
        }


def segmentation_scores(
    labels,
    predictions,
    num_classes: int,
    ignore_index: int | None = IGNORE_INDEX,
) -> dict:
    """mIoU, mAcc and aAcc of a set of label maps, in one call.

    Args:
        labels: (B, H, W) integer class ids, or a sequence of (H_i, W_i)
            maps of different sizes.
        predictions: the same structure as `labels`, integer class ids.
        num_classes: K.
        ignore_index: label of pixels without a class; None: none.

    Returns:
        The dict of `SegmentationScores.result`.

    Example:
        >>> segmentation_scores([np.array([[0, 1, 1]])],
        ...                     [np.array([[0, 1, 0]])], 2)["aAcc"]
        0.6666666666666666
    """
    scores = SegmentationScores(num_classes, ignore_index)
    if isinstance(labels, np.ndarray) and isinstance(predictions, np.ndarray):
        scores.update(labels, predictions)
        return scores.result()
    labels, predictions = list(_items(labels)), list(_items(predictions))
    if len(labels) != len(predictions):
        raise ValueError(
            f"{len(labels)} label maps but {len(predictions)} predictions."
        )
    for label, prediction in zip(labels, predictions, strict=True):
        scores.update(label, prediction)
    return scores.result()


def _items(maps) -> Iterable:
    if isinstance(maps, np.ndarray):
        return maps if maps.ndim == 3 else [maps]
    return maps


@keras.saving.register_keras_serializable("keras_swin")
class SegmentationMeanIoU(keras.metrics.Metric):
    """Training-time mIoU of per-pixel logits, the mmsegmentation way.

    Keeps a running (K, K) confusion matrix (rows: labels, columns:
    predictions) over the batches of an epoch, leaving out the pixels
    labelled `ignore_index` or outside [0, K), and returns the mean IoU
    over the classes with a non-zero union (the others are left out, as
    mmsegmentation's nanmean). keras.ops only: every backend, and inside
    a compiled `fit`.

    The counts are float32 (as `keras.metrics.MeanIoU`): exact up to 2**24
    pixels per cell, then each batch's addition rounds at a relative
    1e-7, far below the score's own variation.

    Args:
        num_classes: K.
        ignore_index: label of pixels without a class; None: none.
        name: metric name.
        dtype: dtype of the result.

    Example:
        >>> metric = SegmentationMeanIoU(num_classes=2)
        >>> logits = np.array([[[[2.0, 0.0], [0.0, 2.0]]]])  # (1, 1, 2, 2)
        >>> metric.update_state(np.array([[[0, 0]]]), logits)
        >>> round(float(metric.result()), 4)  # IoU 0.5 and 0.0
        0.25
        >>> model.compile(  # doctest: +SKIP
        ...     optimizer="adamw", loss=...,
        ...     metrics={"logits": [SegmentationMeanIoU(150)]})
    """

    def __init__(
        self,
        num_classes: int,
        ignore_index: int | None = IGNORE_INDEX,
        name: str = "mean_iou",
        dtype=None,
    ):
        super().__init__(name=name, dtype=dtype)
        self.num_classes = _check_num_classes(num_classes)
        self.ignore_index = ignore_index
        self.confusion = self.add_variable(
            shape=(self.num_classes, self.num_classes),
            initializer="zeros",
            dtype="float32",
            name="confusion",
        )

    def update_state(self, y_true, y_pred, sample_weight=None):
        """Adds a batch.

        Args:
            y_true: (B, H, W) or (B, H, W, 1) integer labels.
            y_pred: (B, H, W, K) logits (or probabilities).
            sample_weight: optional weights broadcastable to (B, H, W).
        """
        k = self.num_classes
        y_pred = ops.convert_to_tensor(y_pred)
        y_true = ops.convert_to_tensor(y_true)
        if len(y_true.shape) == len(y_pred.shape):
            y_true = ops.squeeze(y_true, axis=-1)
        predicted = ops.reshape(ops.argmax(y_pred, axis=-1), (-1,))
        labels = ops.reshape(ops.cast(y_true, "int32"), (-1,))
        predicted = ops.cast(predicted, "int32")
        valid = ops.logical_and(labels >= 0, labels < k)
        if self.ignore_index is not None:
            valid = ops.logical_and(valid, labels != self.ignore_index)
        weights = ops.cast(valid, "float32")
        if sample_weight is not None:
            sample_weight = ops.broadcast_to(
                ops.cast(sample_weight, "float32"),
                ops.shape(ops.cast(y_true, "float32")),
            )
            weights = weights * ops.reshape(sample_weight, (-1,))
        cells = ops.where(valid, labels * k + predicted, 0)
        counts = ops.segment_sum(weights, cells, num_segments=k * k)
        self.confusion.assign_add(ops.reshape(counts, (k, k)))

    def result(self):
        confusion = ops.convert_to_tensor(self.confusion)
        intersect = ops.diagonal(confusion)
        union = (
            ops.sum(confusion, axis=0) + ops.sum(confusion, axis=1) - intersect
        )
        present = ops.cast(union > 0, "float32")
        iou = intersect / ops.maximum(union, 1.0)
        mean = ops.sum(iou * present) / ops.maximum(ops.sum(present), 1.0)
        return ops.cast(mean, self.dtype)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            num_classes=self.num_classes, ignore_index=self.ignore_index
        )
        return config
