"""The tensorflow-datasets pipelines, on mocked data (no download).

TensorFlow `tf.data` code, the same for every Keras backend: tested in the
TensorFlow run; `test_train.py` feeds it to `fit` on every backend.
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import BACKEND

pytestmark = pytest.mark.skipif(
    BACKEND != "tensorflow",
    reason="pure tf.data code, backend-independent: tested in the "
    "TensorFlow run",
)

tf = pytest.importorskip("tensorflow")
tfds = pytest.importorskip("tensorflow_datasets")

from keras_swin.recipes import RECIPES  # noqa: E402
from keras_swin.recipes.data import (  # noqa: E402
    center_crop,
    eval_pipeline,
    load_tfds,
    normalize,
    train_pipeline,
)


@pytest.fixture(scope="module")
def imagenet():
    with tfds.testing.mock_data(num_examples=12):
        train, classes, _ = load_tfds("imagenet2012", "train")
        validation, _, _ = load_tfds("imagenet2012", "validation")
    return train, validation, classes


def test_swin_train_pipeline_on_mock_imagenet(imagenet):
    train, _, classes = imagenet
    assert classes == 1000
    dataset = train_pipeline(
        train, "swin_in1k", classes, 4, image_size=32, seed=0
    )
    smallest = 0.1 / 1000
    for images, targets in dataset.take(3):
        images, targets = images.numpy(), targets.numpy()
        assert images.shape == (4, 32, 32, 3) and images.dtype == np.float32
        assert targets.shape == (4, 1000)
        np.testing.assert_allclose(targets.sum(-1), 1.0, rtol=1e-5)
        # Smoothed: no target is 0; a mixed row has two large entries.
        assert targets.min() >= smallest * 0.999
        assert np.all(np.isfinite(images))


def test_eval_pipeline_keeps_every_example(imagenet):
    _, validation, classes = imagenet
    dataset = eval_pipeline(validation, "swin_in1k", classes, 5, 32)
    sizes, targets = [], []
    for images, target in dataset:
        sizes.append(images.shape[0])
        targets.append(target.numpy())
        assert images.shape[1:] == (32, 32, 3)
    assert sizes == [5, 5, 2]
    targets = np.concatenate(targets)
    np.testing.assert_array_equal(targets.sum(-1), 1.0)
    assert set(np.unique(targets)) == {0.0, 1.0}


def test_vit_pipeline_is_in_minus_one_one(imagenet):
    train, _, classes = imagenet
    recipe = RECIPES["vit_finetune"]
    images, targets = next(
        iter(train_pipeline(train, recipe, classes, 4, image_size=48))
    )
    images = images.numpy()
    assert images.min() >= -1.0 and images.max() <= 1.0
    # No mixing, no smoothing in the data: one-hot targets.
    assert set(np.unique(targets.numpy())) == {0.0, 1.0}


def test_center_crop_keeps_the_center():
    # Central 32 x 32 white in a 64 x 64 black image: crop_pct 0.5 at
    # 32 px resizes to 64 (no change) and keeps exactly the center.
    image = np.zeros((64, 64, 3), np.uint8)
    image[16:48, 16:48] = 255
    out = center_crop(tf.constant(image), 32, 0.5, "bicubic").numpy()
    assert out.shape == (32, 32, 3)
    np.testing.assert_allclose(out, 255.0, atol=1e-3)
    # crop_pct 1: plain resize of the whole (non-square) image.
    wide = center_crop(tf.zeros((20, 50, 3)), 16, 1.0, "bilinear")
    assert tuple(wide.shape) == (16, 16, 3)


def test_normalization():
    white = tf.fill((1, 1, 3), 255.0)
    np.testing.assert_allclose(
        normalize(white, "swin_in1k").numpy().ravel(),
        [
            (1 - m) / s
            for m, s in zip(
                (0.485, 0.456, 0.406), (0.229, 0.224, 0.225), strict=False
            )
        ],
        rtol=1e-6,
    )
    assert float(normalize(tf.zeros(()), "vit_finetune")) == -1.0


def test_pipeline_input_errors():
    missing = tf.data.Dataset.from_tensor_slices(
        {"image": tf.zeros((2, 8, 8, 3))}
    )
    with pytest.raises(ValueError, match="missing \\['label'\\]"):
        eval_pipeline(missing, "swin_in1k", 10, 2)
    single = tf.data.Dataset.from_tensor_slices(tf.zeros((2, 8, 8, 3)))
    with pytest.raises(ValueError, match="\\(image, label\\) pairs"):
        train_pipeline(single, "swin_in1k", 10, 2)


def test_grayscale_images_become_rgb():
    gray = tf.data.Dataset.from_tensor_slices(
        (tf.zeros((4, 8, 8, 1), tf.uint8), tf.range(4))
    )
    images, _ = next(iter(eval_pipeline(gray, "swin_in1k", 10, 4, 16)))
    assert images.shape == (4, 16, 16, 3)


def _batches(dataset, count):
    return [(x.numpy(), y.numpy()) for x, y in dataset.take(count)]


def test_train_pipeline_is_reproducible_and_can_start_anywhere():
    """Stateful random ops in parallel maps gave other augmentations on
    every run; the stream now depends on the seed alone."""
    from keras_swin.recipes.train import DIGITS_RECIPE, digits_splits

    splits, classes = digits_splits(0)
    images, labels = splits["train"]
    # 100 images: a pass over the data is 3 batches of 32 (4 left over).
    source = tf.data.Dataset.from_tensor_slices((images[:100], labels[:100]))

    def stream(seed=0, start=0, global_seed=0):
        tf.random.set_seed(global_seed)
        return train_pipeline(
            source, DIGITS_RECIPE, classes, 32, seed=seed, start=start
        )

    first = _batches(stream(), 8)
    again = _batches(stream(global_seed=123), 8)
    for (x1, y1), (x2, y2) in zip(first, again, strict=True):
        np.testing.assert_array_equal(x1, x2)
        np.testing.assert_array_equal(y1, y2)
    # Each pass is shuffled and augmented anew.
    assert not np.array_equal(first[0][0], first[3][0])
    # Starting at batch 5 (inside the second pass) continues the stream.
    tail = _batches(stream(start=5 * 32), 3)
    for (x1, y1), (x2, y2) in zip(first[5:], tail, strict=True):
        np.testing.assert_array_equal(x1, x2)
        np.testing.assert_array_equal(y1, y2)
    other = _batches(stream(seed=1), 1)
    assert not np.array_equal(first[0][0], other[0][0])
    with pytest.raises(ValueError, match="start must be >= 0"):
        stream(start=-1)


def test_augmentations_repeat_with_a_stateless_seed():
    from keras_swin.recipes.augment import (
        MixupCutmix,
        RandAugment,
        RandomErasing,
    )

    image = tf.constant(
        np.random.default_rng(0).integers(0, 256, (16, 16, 3)), tf.float32
    )
    seed = tf.constant([7, 8])
    augment = RandAugment("rand-m9-mstd0.5-inc1")
    erase = RandomErasing(1.0)
    mix = MixupCutmix(10)
    batch = tf.stack([image, 255.0 - image])
    for run in (augment, erase):
        np.testing.assert_array_equal(run(image, seed), run(image, seed))
    x1, y1 = mix(batch, tf.constant([1, 2]), seed)
    x2, y2 = mix(batch, tf.constant([1, 2]), seed)
    np.testing.assert_array_equal(x1, x2)
    np.testing.assert_array_equal(y1, y2)
    draws = {
        tuple(float(v) for v in augment.draw(tf.constant([0, s])))
        for s in range(8)
    }
    assert len(draws) > 1  # other seeds, other draws
