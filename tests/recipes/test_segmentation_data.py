"""The ADE20K pipelines: loaders on mocked tensorflow-datasets data (no
download) and each transform against hand-computed numbers.

TensorFlow `tf.data` code, the same for every Keras backend: tested in the
TensorFlow run.
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

from keras_swin.recipes.segmentation_data import (  # noqa: E402
    MEAN,
    STD,
    adjust_hue,
    adjust_saturation,
    apply_photometric,
    load_ade20k,
    load_scene_parse150,
    mock_scene_parse150,
    normalize,
    pad_pair,
    random_crop,
    random_flip,
    reduce_zero_label,
    rescale_size,
    resize_pair,
    sample_photometric,
    segmentation_eval_pipeline,
    segmentation_train_pipeline,
)

#: ADE20K class of the instance categories 1..4 (bed, windowpane, cabinet,
#: person): their index in mmseg's ADE20KDataset.CLASSES.
FIRST_CATEGORIES = {0: 255, 1: 7, 2: 8, 3: 10, 4: 12}


def _seed(i):
    return tf.constant([i, 7], tf.int64)


def _raw_and_loaded(label_space, split="train"):
    with mock_scene_parse150(num_examples=3, num_categories=4):
        raw = list(tfds.load("scene_parse150", split=split))
        loaded = list(load_scene_parse150(split, label_space=label_space))
    return raw, loaded


def test_loader_maps_instance_categories_to_ade20k_classes():
    raw, loaded = _raw_and_loaded("ade20k")
    assert len(loaded) == 3
    shapes = set()
    for example, (image, label) in zip(raw, loaded, strict=True):
        assert image.dtype == tf.uint8 and label.dtype == tf.uint8
        assert image.shape[-1] == 3 and label.shape == image.shape[:2]
        shapes.add(tuple(label.shape))
        np.testing.assert_array_equal(image, example["image"])
        category = example["annotation"].numpy()[..., 0]
        expected = np.vectorize(FIRST_CATEGORIES.get)(category)
        np.testing.assert_array_equal(label, expected)
        assert {255} < set(np.unique(label))  # background and objects
    assert shapes == {(64, 48), (48, 64)}


def test_loader_instance_space_is_reduce_zero_label():
    raw, loaded = _raw_and_loaded("instance", split="test")
    for example, (_, label) in zip(raw, loaded, strict=True):
        category = example["annotation"].numpy()[..., 0].astype(int)
        np.testing.assert_array_equal(
            label, np.where(category == 0, 255, category - 1)
        )
    with pytest.raises(ValueError, match="label_space"):
        load_scene_parse150("train", label_space="coco")


def test_reduce_zero_label():
    labels = tf.constant([[0, 1, 2], [150, 254, 255]], tf.uint8)
    assert reduce_zero_label(labels).numpy().tolist() == [
        [255, 0, 1],
        [149, 253, 255],
    ]


def test_ade20k_folder(tmp_path):
    root = tmp_path / "ADEChallengeData2016"
    for folder in ("images/validation", "annotations/validation"):
        (root / folder).mkdir(parents=True)
    annotations = {
        "ADE_val_00000002": np.array([[0, 1, 150], [2, 2, 0]], np.uint8),
        "ADE_val_00000001": np.array([[3, 0, 0], [0, 0, 4]], np.uint8),
    }
    for stem, annotation in annotations.items():
        image = tf.io.encode_jpeg(tf.fill((2, 3, 3), tf.constant(90, tf.uint8)))
        tf.io.write_file(str(root / "images/validation" / f"{stem}.jpg"), image)
        png = tf.io.encode_png(annotation[..., None])
        tf.io.write_file(
            str(root / "annotations/validation" / f"{stem}.png"), png
        )
    pairs = list(load_ade20k(str(root), "validation"))
    # Sorted by file name; 0 -> 255, k -> k - 1.
    assert [label.numpy().tolist() for _, label in pairs] == [
        [[2, 255, 255], [255, 255, 3]],
        [[255, 0, 149], [1, 1, 255]],
    ]
    assert pairs[0][0].shape == (2, 3, 3) and pairs[0][0].dtype == tf.uint8
    (root / "annotations/validation/ADE_val_00000001.png").unlink()
    with pytest.raises(FileNotFoundError, match="no annotation"):
        load_ade20k(str(root), "validation")
    with pytest.raises(FileNotFoundError, match="ADEChallengeData2016"):
        load_ade20k(str(root), "training")


def test_rescale_size_by_hand():
    # factor = min(2048 / long side, 512 / short side); int(x * f + 0.5).
    cases = {
        (480, 640): (512, 683),  # min(3.2, 1.0667): 640 * 1.0667 = 682.7
        (1000, 300): (1707, 512),  # min(2.048, 1.7067): 1706.7
        (100, 1000): (205, 2048),  # min(2.048, 5.12): 204.8
    }
    for (height, width), expected in cases.items():
        size = rescale_size(height, width, (2048, 512))
        assert tuple(int(v) for v in size) == expected


def test_resize_label_is_opencv_nearest_image_bilinear():
    # OpenCV INTER_NEAREST takes source floor(x * in / out): 5 -> 3 rows
    # picks 0, 1 (1.67), 3 (3.33); 2 -> 5 picks 0, 0, 0, 1 (1.2), 1 (1.6).
    column = tf.reshape(tf.range(5), (5, 1))
    _, label = resize_pair(tf.zeros((5, 1, 3)), column, (3, 1))
    assert label[:, 0].numpy().tolist() == [0, 1, 3]
    _, label = resize_pair(tf.zeros((2, 1, 3)), column[:2], (5, 1))
    assert label[:, 0].numpy().tolist() == [0, 0, 0, 1, 1]
    # Bilinear, half-pixel centres: 1 x 2 [0, 100] -> 1 x 4 samples at
    # x = -0.25 (clamped), 0.25, 0.75, 1.25 (clamped): 0, 25, 75, 100.
    row = tf.constant([[[0.0] * 3, [100.0] * 3]])
    image, _ = resize_pair(row, None, (1, 4))
    assert image[0, :, 0].numpy().tolist() == [0.0, 25.0, 75.0, 100.0]
    # Rounded as OpenCV's fixed-point uint8 resize, halves up:
    # [0, 10] -> 0, 2.5 -> 3, 7.5 -> 8, 10.
    pair = tf.constant([[[0.0] * 3, [10.0] * 3]])
    image, _ = resize_pair(pair, None, (1, 4))
    assert image[0, :, 0].numpy().tolist() == [0.0, 3.0, 8.0, 10.0]


def _stripes():
    """16 x 24 label: class 1 in columns 0..12, class 0 in 13..23, whose
    bottom 8 rows are ignored (255); the image holds the column index."""
    label = np.zeros((16, 24), np.uint8)
    label[:, :13] = 1
    label[8:, 13:] = 255
    image = np.broadcast_to(np.arange(24.0)[None, :, None], (16, 24, 3))
    return tf.constant(image), tf.constant(label)


def test_random_crop_respects_cat_max_ratio():
    """A 16 x 16 crop at column c (0..8) holds 16 * (13 - c) pixels of
    class 1 and 8 * (3 + c) counted pixels of class 0, so class 1's share
    is (26 - 2c) / (29 - c): 0.897, 0.857, 0.815, 0.769 for c = 0..3
    (over 0.75: rejected), 0.72, 0.667, 0.609, 0.545, 0.476 for c = 4..8.
    """
    image, label = _stripes()
    free, balanced = set(), set()
    for i in range(40):
        crop, crop_label = random_crop(image, label, _seed(i), (16, 16), 1.0)
        column = int(crop[0, 0, 0])
        free.add(column)
        np.testing.assert_array_equal(
            crop_label, label[:, column : column + 16]
        )
        crop, crop_label = random_crop(image, label, _seed(i), (16, 16), 0.75)
        column = int(crop[0, 0, 0])
        balanced.add(column)
        np.testing.assert_array_equal(
            crop_label, label[:, column : column + 16]
        )
        assert crop.shape == (16, 16, 3)
    assert free == set(range(9))  # uniform offsets: all 9 seen
    assert balanced <= set(range(4, 9)) and len(balanced) >= 3


def test_small_images_are_cropped_then_padded_with_255():
    image = tf.fill((10, 40, 3), 7.0)
    label = tf.fill((10, 40), tf.constant(3, tf.uint8))
    crop, crop_label = random_crop(image, label, _seed(0), (16, 16), 1.0)
    assert crop.shape == (10, 16, 3) and crop_label.shape == (10, 16)
    padded, padded_label = pad_pair(crop, crop_label, (16, 16))
    assert padded.shape == (16, 16, 3)
    assert np.all(padded.numpy()[10:] == 0) and np.all(padded[:10] == 7)
    assert np.all(padded_label.numpy()[10:] == 255)
    assert np.all(padded_label.numpy()[:10] == 3)


def test_flip_moves_image_and_label_together():
    image = tf.reshape(tf.range(6.0), (1, 6, 1))
    label = tf.reshape(tf.range(6), (1, 6))
    flipped = 0
    for i in range(20):
        out, out_label = random_flip(image, label, _seed(i), 0.5)
        np.testing.assert_array_equal(out[..., 0], out_label)
        flipped += int(out_label[0, 0]) == 5
    assert 4 <= flipped <= 16
    out, out_label = random_flip(image, label, _seed(0), 1.0)
    assert out_label.numpy().tolist() == [[5, 4, 3, 2, 1, 0]]
    _, out_label = random_flip(image, label, _seed(0), 0.0)
    assert out_label.numpy().tolist() == [[0, 1, 2, 3, 4, 5]]


def _params(**changes):
    params = dict(
        brightness=False,
        contrast=False,
        saturation=False,
        hue=False,
        contrast_first=True,
        beta=0.0,
        contrast_alpha=1.0,
        saturation_alpha=1.0,
        hue_shift=0,
    )
    params.update(changes)
    return params


def test_brightness_and_contrast_truncate_like_uint8():
    pixels = tf.constant([[[0.0, 100.0, 250.0]]])
    bright = apply_photometric(pixels, _params(brightness=True, beta=10.7))
    # floor(clip(x + 10.7, 0, 255)): 10, 110, 255.
    assert bright.numpy().ravel().tolist() == [10.0, 110.0, 255.0]
    contrast = apply_photometric(
        pixels, _params(contrast=True, contrast_alpha=1.3)
    )
    # floor(clip(1.3 x)): 0, 130, 255 (325 clipped).
    assert contrast.numpy().ravel().tolist() == [0.0, 130.0, 255.0]
    assert apply_photometric(pixels, _params()).numpy().ravel().tolist() == [
        0.0,
        100.0,
        250.0,
    ]


def test_saturation_and_hue_by_hand():
    # (200, 100, 50): V 200, S 150/200 -> round(0.75 * 255) = 191, hue
    # 20 degrees = 10 units. S * 0.5 = 95.5 -> 95; back: r = V = 200,
    # b = V (1 - 95/255) = 125.49 -> 125,
    # g = V (1 - 95/255 * (1 - 20/60)) = 150.3 -> 150.
    pixel = tf.constant([[[200.0, 100.0, 50.0]]])
    assert adjust_saturation(pixel, 0.5).numpy().ravel().tolist() == [
        200.0,
        150.0,
        125.0,
    ]
    # Red shifted by 60 units (120 degrees) is green.
    red = tf.constant([[[255.0, 0.0, 0.0]]])
    assert adjust_hue(red, 60).numpy().ravel().tolist() == [0.0, 255.0, 0.0]


def test_contrast_position_matters():
    """(200, 100, 0), contrast 2 and hue + 60 units, by hand.

    Contrast first: (255, 200, 0), hue 60 * 200 / 255 = 47.06 degrees
    -> 24 units, + 60 = 84 units = 168 degrees: g = 255, r = 0,
    b = 255 * (168 - 120) / 60 = 204.
    Contrast last: hue 30 degrees = 15 units, + 60 = 150 degrees:
    (0, 200, 100), then doubled and clipped: (0, 255, 200).
    """
    pixel = tf.constant([[[200.0, 100.0, 0.0]]])
    both = dict(contrast=True, contrast_alpha=2.0, hue=True, hue_shift=60)
    first = apply_photometric(pixel, _params(contrast_first=True, **both))
    last = apply_photometric(pixel, _params(contrast_first=False, **both))
    assert first.numpy().ravel().tolist() == [0.0, 255.0, 204.0]
    assert last.numpy().ravel().tolist() == [0.0, 255.0, 200.0]


def test_photometric_draws():
    draws = [sample_photometric(_seed(i)) for i in range(200)]
    for key in (
        "brightness",
        "contrast",
        "saturation",
        "hue",
        "contrast_first",
    ):
        share = np.mean([bool(d[key]) for d in draws])
        assert 0.38 < share < 0.62, (key, share)
    beta = np.array([float(d["beta"]) for d in draws])
    assert beta.min() >= -32 and beta.max() < 32 and np.ptp(beta) > 50
    for key in ("contrast_alpha", "saturation_alpha"):
        alpha = np.array([float(d[key]) for d in draws])
        assert alpha.min() >= 0.5 and alpha.max() < 1.5
    hue = np.array([int(d["hue_shift"]) for d in draws])
    assert hue.min() >= -18 and hue.max() <= 17 and np.ptp(hue) > 25


def test_normalization_numbers():
    # mmseg: mean (123.675, 116.28, 103.53), std (58.395, 57.12, 57.375).
    pixels = np.array([[0.0] * 3, [128.0] * 3, [255.0] * 3])
    out = normalize(tf.constant(pixels)).numpy()
    expected = (pixels - [123.675, 116.28, 103.53]) / [58.395, 57.12, 57.375]
    np.testing.assert_allclose(out, expected, rtol=1e-6)
    assert out.dtype == np.float32
    np.testing.assert_allclose(MEAN, np.array([0.485, 0.456, 0.406]) * 255)
    np.testing.assert_allclose(STD, np.array([0.229, 0.224, 0.225]) * 255)


def _train_batches(dataset, seed, global_seed=0, repeat=True):
    tf.random.set_seed(global_seed)
    pipeline = segmentation_train_pipeline(
        dataset,
        batch_size=2,
        crop_size=32,
        scale=(64, 32),
        seed=seed,
        shuffle_buffer=8,
        repeat=repeat,
    )
    return [(x.numpy(), y.numpy()) for x, y in pipeline.take(2)]


@pytest.mark.slow
def test_train_pipeline_on_mock_scene_parse150():
    with mock_scene_parse150(num_examples=4):
        train = load_scene_parse150("train")
    allowed = set(range(150)) | {255}
    first = _train_batches(train, seed=0)
    for images, labels in first:
        assert images.shape == (2, 32, 32, 3) and images.dtype == np.float32
        assert labels.shape == (2, 32, 32) and labels.dtype == np.int32
        assert set(np.unique(labels)) <= allowed
        assert np.all(np.isfinite(images))
        # Normalised 0..255 pixels, or the 0 padding.
        low = min((0 - m) / s for m, s in zip(MEAN, STD, strict=True))
        high = max((255 - m) / s for m, s in zip(MEAN, STD, strict=True))
        assert images.min() >= low - 1e-5 and images.max() <= high + 1e-5
    # The seed alone decides: not TensorFlow's global seed, and a single
    # pass (repeat=False) is the first pass of the repeated stream.
    again = _train_batches(train, seed=0, global_seed=5, repeat=False)
    other = _train_batches(train, seed=1)
    for (x, y), (x2, y2) in zip(first, again, strict=True):
        np.testing.assert_array_equal(x, x2)
        np.testing.assert_array_equal(y, y2)
    assert any(
        not np.array_equal(x, x2)
        for (x, _), (x2, _) in zip(first, other, strict=True)
    )


def test_eval_pipeline_keeps_the_label_size():
    with mock_scene_parse150(num_examples=2, image_shape=(40, 60)):
        validation = load_scene_parse150("test")
        originals = [label.numpy() for _, label in validation]
    pairs = list(segmentation_eval_pipeline(validation, scale=(128, 32)))
    assert len(pairs) == 2
    # (60, 40) into (128, 32): factor min(128/60, 32/40) = 0.8 -> (48, 32);
    # (40, 60) -> (32, 48).
    assert pairs[0][0].shape == (1, 48, 32, 3)
    assert pairs[1][0].shape == (1, 32, 48, 3)
    for (image, label), original in zip(pairs, originals, strict=True):
        assert image.dtype == tf.float32 and label.dtype == tf.int32
        np.testing.assert_array_equal(label[0], original)


def test_mismatched_sizes_fail_clearly():
    """tfds' generic mock draws the annotation at another size than the
    image; the pipelines say so (mock_scene_parse150 does not)."""
    with tfds.testing.mock_data(num_examples=2):
        train = load_scene_parse150("train")
    with pytest.raises(tf.errors.InvalidArgumentError, match="sizes differ"):
        next(iter(segmentation_eval_pipeline(train)))
