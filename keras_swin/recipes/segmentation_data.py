"""ADE20K input pipelines of the segmentation recipe, on `tf.data`.

The transforms of mmsegmentation's ADE20K configuration (the released
`upernet_swin_*_512x512_160k_ade20k` runs), as TensorFlow ops, so one
pipeline feeds `model.fit` on every Keras backend:

train: Resize (a random ratio in [0.5, 2.0) of the scale (2048, 512),
keeping the aspect ratio; image bilinear, label nearest) -> RandomCrop
512 x 512 (at most 75 % of one class, up to 10 tries) -> RandomFlip (0.5)
-> PhotoMetricDistortion -> Normalize (ImageNet mean/std) -> Pad to the
crop size (image 0, label 255).

eval: Resize into the scale keeping the aspect ratio (bilinear) ->
Normalize; the label stays at its original size, since mmsegmentation
scores the prediction after resizing it back to the original image.

Between the transforms the image keeps mmsegmentation's uint8 values
(float32 tensors holding integers): a resized image is rounded, a
brightness, contrast or saturation change is truncated, as OpenCV and
numpy's `astype(np.uint8)` do there.

Every random choice is a stateless op seeded by the run's seed and the
example's position in the stream, so a seed gives the same batches on
every run and every backend (as `keras_swin.recipes.data`).

Sources: `load_scene_parse150` (tensorflow-datasets, see its caveat: the
tfds data holds the 2017 instance annotations, not the 150-class maps)
and `load_ade20k` (the ADEChallengeData2016 folder mmsegmentation reads).
`mock_scene_parse150` stands in for the tfds data in tests.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence

import numpy as np
import tensorflow as tf

from keras_swin.ade20k import instance_category_map
from keras_swin.recipes.data import pairs, seeded_pass, stream_seed

#: mmsegmentation's ImageNet normalisation, in pixel units (0..255).
MEAN = (123.675, 116.28, 103.53)
STD = (58.395, 57.12, 57.375)
IGNORE_INDEX = 255

#: Tags keeping the seeds of the shuffles and the images apart.
_SHUFFLE, _IMAGE = 11, 12

_LABEL_SPACES = ("ade20k", "instance")


# ---------------------------------------------------------------- sources


def reduce_zero_label(label):
    """mmsegmentation's `reduce_zero_label`: 0 -> 255, k -> k - 1.

    ADE20K marks pixels of no class with 0; the 150 classes are 1..150.
    255 stays 255.

    Args:
        label: (H, W) integer labels in [0, 255].

    Returns:
        (H, W) uint8.

    Example:
        >>> reduce_zero_label(tf.constant([0, 1, 150, 255])).numpy().tolist()
        [255, 0, 149, 255]
    """
    label = tf.cast(label, tf.int32)
    reduced = tf.where(label == 0, IGNORE_INDEX, label - 1)
    reduced = tf.where(label == IGNORE_INDEX, IGNORE_INDEX, reduced)
    return tf.cast(reduced, tf.uint8)


def _category_table(label_space: str) -> np.ndarray:
    """(256,) uint8: the label of each red-channel category id."""
    if label_space == "ade20k":
        return instance_category_map()
    if label_space == "instance":
        table = np.full(256, IGNORE_INDEX, np.uint8)
        table[1:101] = np.arange(100)
        return table
    raise ValueError(
        f"label_space must be one of {_LABEL_SPACES}, got {label_space!r}."
    )


def load_scene_parse150(
    split: str = "train",
    data_dir: str | None = None,
    *,
    label_space: str = "ade20k",
    download: bool = True,
) -> tf.data.Dataset:
    """tensorflow-datasets' `scene_parse150` as (image, label) pairs.

    Caveat: tfds `scene_parse150` (1.0.0) is built from the Places
    Challenge 2017 *instance* annotations (`annotations_instance.tar`),
    not from the 150-class maps of ADEChallengeData2016 that
    mmsegmentation and the Swin paper use. Its red channel holds one of
    100 "thing" categories (1..100, `instanceInfo100_train.txt`), 0 for
    every pixel outside an instance (walls, floors, sky, ...); the green
    channel numbers the instances. Models trained on it learn those 100
    classes only; for the paper's ADE20K numbers read the
    ADEChallengeData2016 folder with `load_ade20k`.

    Its "train" split is ADE20K's 20,210 training images, its "test"
    split the 2,000 validation images (the ones mmsegmentation scores).

    Args:
        split: tfds split, e.g. "train", "test", "train[:1%]".
        data_dir: tensorflow-datasets data folder.
        label_space: "ade20k": each category becomes its ADE20K class id
            (0..149, `keras_swin.ade20k.class_names()`, all 100 are ADE20K
            classes), so 150-class models train on it directly; pixels of
            no instance become 255. "instance": mmsegmentation's
            `reduce_zero_label` on the category ids (0 -> 255, k -> k - 1,
            0..99).
        download: let tensorflow-datasets download and prepare the data
            when it is missing (about 1 GB).

    Returns:
        `tf.data.Dataset` of (image (H, W, 3) uint8, label (H, W) uint8).

    Raises:
        ValueError: unknown `label_space`.

    Example:
        >>> with mock_scene_parse150(num_examples=2):
        ...     ds = load_scene_parse150("train")
        >>> image, label = next(iter(ds))
        >>> image.dtype.name, label.dtype.name, label.shape == image.shape[:2]
        ('uint8', 'uint8', True)
    """
    import tensorflow_datasets as tfds

    table = tf.constant(_category_table(label_space))
    dataset = tfds.load(
        "scene_parse150", split=split, data_dir=data_dir, download=download
    )

    @tf.autograph.experimental.do_not_convert
    def convert(example):
        category = tf.cast(example["annotation"][..., 0], tf.int32)
        return example["image"], tf.gather(table, category)

    return dataset.map(convert, num_parallel_calls=tf.data.AUTOTUNE)


def load_ade20k(root: str, split: str = "training") -> tf.data.Dataset:
    """The ADEChallengeData2016 folder as (image, label) pairs.

    The layout mmsegmentation reads (`ADEChallengeData2016.zip` of the
    MIT Scene Parsing Benchmark): `images/{split}/*.jpg` and
    `annotations/{split}/*.png` (one channel, 0 = other, 1..150), paired
    by file name, in sorted order; labels with `reduce_zero_label`.

    Args:
        root: the ADEChallengeData2016 folder.
        split: "training" (20,210 images) or "validation" (2,000).

    Returns:
        `tf.data.Dataset` of (image (H, W, 3) uint8, label (H, W) uint8).

    Raises:
        FileNotFoundError: a missing folder, no images, or an image
            without its annotation.

    Example:
        >>> ds = load_ade20k("data/ade/ADEChallengeData2016",
        ...                  "validation")  # doctest: +SKIP
    """
    images_dir = os.path.join(root, "images", split)
    labels_dir = os.path.join(root, "annotations", split)
    for folder in (images_dir, labels_dir):
        if not os.path.isdir(folder):
            raise FileNotFoundError(
                f"No folder {folder}: root must be the ADEChallengeData2016 "
                "folder with images/{split} and annotations/{split}."
            )
    stems = sorted(
        name[: -len(".jpg")]
        for name in os.listdir(images_dir)
        if name.lower().endswith(".jpg")
    )
    if not stems:
        raise FileNotFoundError(f"No .jpg images in {images_dir}.")
    labels = [os.path.join(labels_dir, stem + ".png") for stem in stems]
    missing = [path for path in labels if not os.path.isfile(path)]
    if missing:
        raise FileNotFoundError(
            f"{len(missing)} images have no annotation, e.g. {missing[0]}."
        )
    images = [os.path.join(images_dir, stem + ".jpg") for stem in stems]

    @tf.autograph.experimental.do_not_convert
    def read(image_path, label_path):
        image = tf.io.decode_jpeg(tf.io.read_file(image_path), channels=3)
        label = tf.io.decode_png(tf.io.read_file(label_path), channels=1)
        return image, reduce_zero_label(label[..., 0])

    return tf.data.Dataset.from_tensor_slices((images, labels)).map(
        read, num_parallel_calls=tf.data.AUTOTUNE
    )


def _mock_example(rng: np.random.Generator, shape, categories: int):
    """A scene: a textured background and rectangles of categories."""
    height, width = shape
    base = rng.integers(0, 256, 3)
    noise = rng.integers(-20, 21, (height, width, 3))
    image = np.clip(base + noise, 0, 255).astype(np.uint8)
    annotation = np.zeros((height, width, 3), np.uint8)
    for instance in range(1, int(rng.integers(2, 5)) + 1):
        top, left = rng.integers(0, height // 2), rng.integers(0, width // 2)
        bottom = top + int(rng.integers(height // 4, height // 2 + 1))
        right = left + int(rng.integers(width // 4, width // 2 + 1))
        category = int(rng.integers(1, categories + 1))
        image[top:bottom, left:right] = rng.integers(0, 256, 3)
        annotation[top:bottom, left:right, 0] = category
        annotation[top:bottom, left:right, 1] = instance
    return image, annotation


@contextlib.contextmanager
def mock_scene_parse150(
    num_examples: int = 4,
    image_shape: tuple[int, int] = (48, 64),
    num_categories: int = 100,
    seed: int = 0,
) -> Iterator[None]:
    """`tfds.testing.mock_data` for `scene_parse150`, with real-like pairs.

    tfds' generic mock draws the image and the annotation with different
    random sizes; this one makes scenes whose annotation matches its
    image: a noisy background (category 0) and 2 to 4 rectangles, each a
    flat colour with a random category in 1..`num_categories` in the red
    channel and its instance number in the green one. Every split yields
    its own examples, the same on every call. Nothing is downloaded.

    Args:
        num_examples: examples per split.
        image_shape: (H, W) of every example (the first example of a
            split is transposed to (W, H), so that pipelines see two
            sizes).
        num_categories: largest category id.
        seed: seed of the scenes.

    Yields:
        None; `tfds.load("scene_parse150", ...)` reads the mock inside.

    Example:
        >>> with mock_scene_parse150(num_examples=3):
        ...     ds = load_scene_parse150("test")
        >>> len(list(ds))
        3
    """
    import tensorflow_datasets as tfds

    if num_examples < 1:
        raise ValueError(f"num_examples must be >= 1, got {num_examples}.")

    def as_dataset(self, split, decoders=None, read_config=None, **kwargs):
        del self, decoders, read_config, kwargs
        key = sum(str(split).encode())
        rng = np.random.default_rng([seed, key])
        examples = []
        for index in range(num_examples):
            shape = image_shape if index else image_shape[::-1]
            examples.append(_mock_example(rng, shape, num_categories))

        def generate():
            for image, annotation in examples:
                yield {"image": image, "annotation": annotation}

        spec = tf.TensorSpec((None, None, 3), tf.uint8)
        return tf.data.Dataset.from_generator(
            generate, output_signature={"image": spec, "annotation": spec}
        )

    with tfds.testing.mock_data(
        num_examples=num_examples, as_dataset_fn=as_dataset
    ):
        yield


# ------------------------------------------------------------- transforms


def rescale_size(height, width, scale: Sequence[float]):
    """mmcv's `rescale_size`: the largest size fitting `scale`, same ratio.

    factor = min(max(scale) / max(H, W), min(scale) / min(H, W)), then
    each side `int(side * factor + 0.5)` (float64, as mmcv).

    Args:
        height: H (int or scalar tensor).
        width: W.
        scale: (long, short) bound, e.g. (2048, 512).

    Returns:
        (new_height, new_width) int32 scalar tensors.

    Example:
        >>> [int(v) for v in rescale_size(480, 640, (2048, 512))]
        [512, 683]
    """
    return _rescale(height, width, float(max(scale)), float(min(scale)))


def _rescale(height, width, long_edge, short_edge):
    height = tf.cast(height, tf.float64)
    width = tf.cast(width, tf.float64)
    factor = tf.minimum(
        long_edge / tf.maximum(height, width),
        short_edge / tf.minimum(height, width),
    )
    new_height = tf.cast(tf.floor(height * factor + 0.5), tf.int32)
    new_width = tf.cast(tf.floor(width * factor + 0.5), tf.int32)
    return new_height, new_width


def _nearest_index(size_in, size_out):
    """OpenCV's INTER_NEAREST source index: floor(x * (in / out))."""
    inverse = 1.0 / (
        tf.cast(size_out, tf.float64) / tf.cast(size_in, tf.float64)
    )
    index = tf.floor(tf.range(size_out, dtype=tf.float64) * inverse)
    return tf.minimum(tf.cast(index, tf.int32), size_in - 1)


def resize_pair(image, label, size):
    """Image bilinear (rounded to integers), label nearest, as mmcv.

    The image: `tf.image.resize` bilinear (half-pixel centres, no
    antialiasing: OpenCV's INTER_LINEAR), rounded (halves up) and
    clipped to [0, 255] as OpenCV does for uint8. The label: OpenCV's
    INTER_NEAREST (source pixel floor(x * in / out), not TensorFlow's
    half-pixel nearest).

    Args:
        image: (H, W, 3) in [0, 255].
        label: (H, W) integer labels, or None.
        size: (new_height, new_width).

    Returns:
        (image (h, w, 3) float32, label (h, w) of label's dtype or None).

    Example:
        >>> _, label = resize_pair(tf.zeros((5, 1, 3)),
        ...                        tf.reshape(tf.range(5), (5, 1)), (3, 1))
        >>> label[:, 0].numpy().tolist()
        [0, 1, 3]
    """
    new_height, new_width = size
    image = tf.image.resize(
        tf.cast(image, tf.float32), (new_height, new_width), "bilinear"
    )
    # OpenCV's fixed-point uint8 resize rounds halves up.
    image = tf.clip_by_value(tf.floor(image + 0.5), 0.0, 255.0)
    if label is None:
        return image, None
    shape = tf.shape(label)
    rows = _nearest_index(shape[0], new_height)
    cols = _nearest_index(shape[1], new_width)
    label = tf.gather(tf.gather(label, rows, axis=0), cols, axis=1)
    return image, label


def random_resize(
    image,
    label,
    seed,
    scale: Sequence[int] = (2048, 512),
    ratio_range: Sequence[float] = (0.5, 2.0),
):
    """mmseg's `Resize(img_scale, ratio_range, keep_ratio=True)`.

    ratio ~ U[low, high); the bound becomes (int(scale[0] * ratio),
    int(scale[1] * ratio)) and the pair is resized to `rescale_size` of
    it with `resize_pair`.

    Args:
        image: (H, W, 3) in [0, 255].
        label: (H, W) integer labels.
        seed: (2,) int stateless seed.
        scale: (long, short) base bound.
        ratio_range: (low, high) of the ratio.

    Returns:
        (image (h, w, 3) float32, label (h, w)).

    Example:
        >>> image, label = random_resize(tf.zeros((40, 60, 3)),
        ...                              tf.zeros((40, 60), tf.uint8),
        ...                              tf.constant([1, 2]), (64, 32))
        >>> image.shape[-1], label.dtype.name
        (3, 'uint8')
    """
    low, high = ratio_range
    ratio = tf.random.stateless_uniform([], seed, low, high, dtype=tf.float64)
    # int(scale[0] * ratio), int(scale[1] * ratio), as mmseg.
    first, second = tf.floor(scale[0] * ratio), tf.floor(scale[1] * ratio)
    shape = tf.shape(image)
    size = _rescale(
        shape[0],
        shape[1],
        tf.maximum(first, second),
        tf.minimum(first, second),
    )
    return resize_pair(image, label, size)


def crop_is_balanced(label, cat_max_ratio: float, ignore_index: int):
    """mmseg's RandomCrop test: > 1 class, none over `cat_max_ratio`.

    Args:
        label: (h, w) integer labels of a candidate crop (in [0, 255]).
        cat_max_ratio: largest allowed share of one class.
        ignore_index: label not counted.

    Returns:
        bool scalar tensor.

    Example:
        >>> bool(crop_is_balanced(tf.constant([[0, 0, 1, 255]]), 0.75, 255))
        True
    """
    values = tf.reshape(tf.cast(label, tf.int32), [-1])
    counts = tf.math.bincount(values, minlength=256)
    counts = tf.where(tf.range(tf.size(counts)) == ignore_index, 0, counts)
    total = tf.reduce_sum(counts)
    classes = tf.math.count_nonzero(counts)
    largest = tf.cast(tf.reduce_max(counts), tf.float64)
    share = largest / tf.cast(tf.maximum(total, 1), tf.float64)
    return tf.logical_and(classes > 1, share < cat_max_ratio)


def random_crop(
    image,
    label,
    seed,
    crop_size: Sequence[int] = (512, 512),
    cat_max_ratio: float = 0.75,
    ignore_index: int = IGNORE_INDEX,
):
    """mmseg's `RandomCrop(crop_size, cat_max_ratio)`.

    A crop of at most `crop_size` at a uniform random offset. With
    `cat_max_ratio < 1`, up to 10 crops are tried until one passes
    `crop_is_balanced`; when none does, an 11th, untested, is taken (as
    mmsegmentation's loop). Images smaller than the crop keep their size
    on that side (`pad_pair` pads them afterwards).

    Args:
        image: (H, W, C).
        label: (H, W) integer labels.
        seed: (2,) int stateless seed.
        crop_size: (height, width).
        cat_max_ratio: largest share of one class; 1 turns the test off.
        ignore_index: label the test does not count.

    Returns:
        (image (h, w, C), label (h, w)), h = min(H, crop height), ...

    Example:
        >>> image, label = random_crop(tf.zeros((40, 60, 3)),
        ...                            tf.zeros((40, 60), tf.uint8),
        ...                            tf.constant([1, 2]), (32, 32))
        >>> tuple(image.shape), tuple(label.shape)
        ((32, 32, 3), (32, 32))
    """
    crop_height, crop_width = crop_size
    shape = tf.shape(label)
    margin_height = tf.maximum(shape[0] - crop_height, 0)
    margin_width = tf.maximum(shape[1] - crop_width, 0)
    row_seed, col_seed = tf.unstack(
        tf.random.experimental.stateless_split(seed, 2)
    )
    tries = 11
    rows = tf.random.stateless_uniform(
        [tries], row_seed, 0, margin_height + 1, dtype=tf.int32
    )
    cols = tf.random.stateless_uniform(
        [tries], col_seed, 0, margin_width + 1, dtype=tf.int32
    )

    def crop(array, index):
        return array[
            rows[index] : rows[index] + crop_height,
            cols[index] : cols[index] + crop_width,
        ]

    if cat_max_ratio < 1.0:

        def rejected(index):
            balanced = crop_is_balanced(
                crop(label, index), cat_max_ratio, ignore_index
            )
            return tf.logical_and(index < tries - 1, tf.logical_not(balanced))

        chosen = tf.while_loop(
            rejected, lambda index: [index + 1], [tf.constant(0)]
        )[0]
    else:
        chosen = tf.constant(0)
    return crop(image, chosen), crop(label, chosen)


def random_flip(image, label, seed, prob: float = 0.5):
    """mmseg's `RandomFlip(prob)`: image and label mirrored together.

    Args:
        image: (H, W, C).
        label: (H, W).
        seed: (2,) int stateless seed.
        prob: probability of the horizontal flip.

    Returns:
        (image, label), both flipped left-right or both unchanged.

    Example:
        >>> image, label = random_flip(tf.reshape(tf.range(2.0), (1, 2, 1)),
        ...                            tf.constant([[1, 2]]),
        ...                            tf.constant([1, 2]), prob=1.0)
        >>> label.numpy().tolist()
        [[2, 1]]
    """
    flip = tf.random.stateless_uniform([], seed) < prob
    return tf.cond(
        flip,
        lambda: (tf.reverse(image, [1]), tf.reverse(label, [1])),
        lambda: (image, label),
    )


def sample_photometric(
    seed,
    brightness_delta: float = 32,
    contrast_range: Sequence[float] = (0.5, 1.5),
    saturation_range: Sequence[float] = (0.5, 1.5),
    hue_delta: int = 18,
) -> dict:
    """The random draws of mmseg's `PhotoMetricDistortion`.

    Each of the four distortions is applied with probability 0.5; the
    contrast change comes either right after the brightness change
    (`contrast_first`) or last, with equal probability.

    Args:
        seed: (2,) int stateless seed.
        brightness_delta: beta ~ U[-delta, delta).
        contrast_range: alpha ~ U[low, high).
        saturation_range: alpha ~ U[low, high).
        hue_delta: an integer in [-delta, delta) in OpenCV's hue units
            (2 degrees).

    Returns:
        dict of scalar tensors: "brightness", "contrast", "saturation",
        "hue" (bool: applied), "contrast_first" (bool), and their values
        "beta", "contrast_alpha", "saturation_alpha" (float32) and
        "hue_shift" (int32).

    Example:
        >>> params = sample_photometric(tf.constant([1, 2]))
        >>> -18 <= int(params["hue_shift"]) < 18
        True
    """
    seeds = tf.unstack(tf.random.experimental.stateless_split(seed, 9))
    coins = [tf.random.stateless_uniform([], s) < 0.5 for s in seeds[:5]]
    return {
        "brightness": coins[0],
        "contrast": coins[1],
        "saturation": coins[2],
        "hue": coins[3],
        "contrast_first": coins[4],
        "beta": tf.random.stateless_uniform(
            [], seeds[5], -brightness_delta, brightness_delta
        ),
        "contrast_alpha": tf.random.stateless_uniform(
            [], seeds[6], contrast_range[0], contrast_range[1]
        ),
        "saturation_alpha": tf.random.stateless_uniform(
            [], seeds[7], saturation_range[0], saturation_range[1]
        ),
        "hue_shift": tf.random.stateless_uniform(
            [], seeds[8], -hue_delta, hue_delta, dtype=tf.int32
        ),
    }


def _convert(image, alpha=1.0, beta=0.0):
    """mmseg's `convert`: image * alpha + beta, clipped, truncated."""
    return tf.floor(tf.clip_by_value(image * alpha + beta, 0.0, 255.0))


def _to_hsv(image):
    """OpenCV's 8-bit HSV: hue in [0, 180) (2 degrees), S in [0, 255]."""
    hsv = tf.image.rgb_to_hsv(image / 255.0)
    hue = tf.math.floormod(tf.round(hsv[..., 0] * 180.0), 180.0)
    saturation = tf.round(hsv[..., 1] * 255.0)
    return hue, saturation, hsv[..., 2]


def _from_hsv(hue, saturation, value):
    rgb = tf.image.hsv_to_rgb(
        tf.stack([hue / 180.0, saturation / 255.0, value], -1)
    )
    return tf.clip_by_value(tf.round(rgb * 255.0), 0.0, 255.0)


def adjust_saturation(image, alpha):
    """mmseg's saturation step: S * alpha (clipped, truncated) in HSV.

    Args:
        image: (H, W, 3) RGB, integers in [0, 255].
        alpha: saturation factor.

    Returns:
        (H, W, 3) float32 integers in [0, 255].

    Example:
        >>> adjust_saturation(tf.constant([[[200.0, 100.0, 50.0]]]),
        ...                   0.0).numpy().tolist()
        [[[200.0, 200.0, 200.0]]]
    """
    hue, saturation, value = _to_hsv(image)
    return _from_hsv(hue, _convert(saturation, alpha), value)


def adjust_hue(image, shift):
    """mmseg's hue step: (H + shift) mod 180 in OpenCV's hue units.

    Args:
        image: (H, W, 3) RGB, integers in [0, 255].
        shift: integer hue shift (2 degrees per unit).

    Returns:
        (H, W, 3) float32 integers in [0, 255].

    Example:
        >>> adjust_hue(tf.constant([[[255.0, 0.0, 0.0]]]),
        ...            60).numpy().tolist()
        [[[0.0, 255.0, 0.0]]]
    """
    hue, saturation, value = _to_hsv(image)
    hue = tf.math.floormod(hue + tf.cast(shift, tf.float32), 180.0)
    return _from_hsv(hue, saturation, value)


def apply_photometric(image, params: dict):
    """mmseg's `PhotoMetricDistortion` with given draws.

    Brightness (image + beta), contrast (image * alpha) if
    `contrast_first`, saturation, hue, contrast otherwise; each only when
    its flag is set. Brightness and contrast truncate to integers as
    `astype(np.uint8)`; the HSV steps go through OpenCV's 8-bit HSV
    (hue in 2-degree steps), so they agree with OpenCV to within a grey
    level or two.

    Args:
        image: (H, W, 3) RGB, integers in [0, 255].
        params: `sample_photometric`'s dict.

    Returns:
        (H, W, 3) float32 integers in [0, 255].

    Example:
        >>> params = dict(brightness=True, contrast=False,
        ...               saturation=False, hue=False,
        ...               contrast_first=True, beta=10.5,
        ...               contrast_alpha=1.0, saturation_alpha=1.0,
        ...               hue_shift=0)
        >>> apply_photometric(tf.fill((1, 1, 3), 250.0),
        ...                   params).numpy().ravel().tolist()
        [255.0, 255.0, 255.0]
    """
    image = tf.cast(image, tf.float32)
    flag = {
        key: tf.convert_to_tensor(params[key], tf.bool)
        for key in ("brightness", "contrast", "saturation", "hue")
    }
    first = tf.convert_to_tensor(params["contrast_first"], tf.bool)
    beta = tf.cast(params["beta"], tf.float32)
    contrast = tf.cast(params["contrast_alpha"], tf.float32)
    saturation = tf.cast(params["saturation_alpha"], tf.float32)

    def contrast_if(condition, image):
        return tf.cond(
            condition, lambda: _convert(image, alpha=contrast), lambda: image
        )

    image = tf.cond(
        flag["brightness"], lambda: _convert(image, beta=beta), lambda: image
    )
    image = contrast_if(tf.logical_and(flag["contrast"], first), image)
    image = tf.cond(
        flag["saturation"],
        lambda: adjust_saturation(image, saturation),
        lambda: image,
    )
    image = tf.cond(
        flag["hue"],
        lambda: adjust_hue(image, params["hue_shift"]),
        lambda: image,
    )
    return contrast_if(
        tf.logical_and(flag["contrast"], tf.logical_not(first)), image
    )


def normalize(image, mean: Sequence[float] = MEAN, std: Sequence[float] = STD):
    """mmseg's `Normalize`: (image - mean) / std, float32.

    Args:
        image: (..., 3) RGB in [0, 255].
        mean: per-channel mean in pixel units.
        std: per-channel standard deviation in pixel units.

    Returns:
        float32 tensor of the same shape.

    Example:
        >>> [round(float(v), 4) for v in normalize(tf.fill((3,), 255.0))]
        [2.2489, 2.4286, 2.64]
    """
    image = tf.cast(image, tf.float32)
    return (image - tf.constant(mean, tf.float32)) / tf.constant(
        std, tf.float32
    )


def pad_pair(image, label, size: Sequence[int], ignore_index=IGNORE_INDEX):
    """mmseg's `Pad(size, pad_val=0, seg_pad_val=255)`: bottom and right.

    Args:
        image: (h, w, C) with h <= size[0], w <= size[1].
        label: (h, w).
        size: (height, width) to reach.
        ignore_index: label of the padding.

    Returns:
        (image (height, width, C) padded with 0, label (height, width)
        padded with `ignore_index`).

    Example:
        >>> _, label = pad_pair(tf.ones((1, 1, 3)), tf.constant([[3]]),
        ...                     (2, 2))
        >>> label.numpy().tolist()
        [[3, 255], [255, 255]]
    """
    height, width = size
    shape = tf.shape(label)
    padding = [[0, height - shape[0]], [0, width - shape[1]]]
    image = tf.pad(image, padding + [[0, 0]])
    label = tf.pad(label, padding, constant_values=ignore_index)
    image = tf.ensure_shape(image, (height, width, image.shape[-1]))
    label = tf.ensure_shape(label, (height, width))
    return image, label


# -------------------------------------------------------------- pipelines


def _pairs(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """(image, label) pairs, label (H, W), checked against the image."""
    dataset = pairs(dataset)

    @tf.autograph.experimental.do_not_convert
    def check(image, label):
        if label.shape.rank == 3:
            label = label[..., 0]
        if image.shape.rank == 2:
            image = image[..., None]
        if image.shape[-1] == 1:
            image = tf.image.grayscale_to_rgb(image)
        with tf.control_dependencies(
            [
                tf.debugging.assert_equal(
                    tf.shape(image)[:2],
                    tf.shape(label),
                    message="image and label sizes differ (H, W)",
                )
            ]
        ):
            return tf.identity(image), tf.identity(label)

    return dataset.map(check)


def _crop_size(crop_size) -> tuple[int, int]:
    if isinstance(crop_size, int):
        return crop_size, crop_size
    height, width = crop_size
    return int(height), int(width)


def segmentation_train_pipeline(
    dataset: tf.data.Dataset,
    *,
    batch_size: int,
    crop_size: int | Sequence[int] = (512, 512),
    scale: Sequence[int] = (2048, 512),
    ratio_range: Sequence[float] = (0.5, 2.0),
    cat_max_ratio: float = 0.75,
    flip_prob: float = 0.5,
    photometric: bool = True,
    ignore_index: int = IGNORE_INDEX,
    seed: int | None = 0,
    mean: Sequence[float] = MEAN,
    std: Sequence[float] = STD,
    shuffle_buffer: int = 1000,
    repeat: bool = True,
) -> tf.data.Dataset:
    """mmseg's ADE20K training input: augmented crops and their labels.

    Per example: `random_resize` -> `random_crop` -> `random_flip` ->
    `apply_photometric` (when `photometric`) -> `normalize` ->
    `pad_pair`; shuffled (one seed per pass over the data), batched with
    the last partial batch dropped.

    Reproducible: for a given `seed`, the same batches in the same order
    on every run (each example's draws are stateless ops seeded by
    `seed` and its position in the stream).

    Args:
        dataset: (image (H, W, 3) uint8, label (H, W) int) pairs, or dicts
            with "image" and "label" (e.g. `load_scene_parse150`).
        batch_size: B.
        crop_size: crop (height, width), or one int for a square.
        scale: (long, short) base bound of the resize.
        ratio_range: (low, high) random factor of `scale`.
        cat_max_ratio: largest share of one class in a crop (1: no test).
        flip_prob: probability of the horizontal flip.
        photometric: apply the photometric distortion.
        ignore_index: label of ignored pixels (the label padding).
        seed: seed of the shuffles and the augmentations; None draws one.
        mean: normalisation mean, pixel units.
        std: normalisation standard deviation, pixel units.
        shuffle_buffer: shuffle buffer (0: no shuffle).
        repeat: repeat forever (pass `steps_per_epoch` to `fit`).

    Returns:
        `tf.data.Dataset` of (images (B, h, w, 3) float32, labels
        (B, h, w) int32), (h, w) = `crop_size`.

    Example:
        >>> ds = tf.data.Dataset.from_tensor_slices(
        ...     (tf.zeros((4, 40, 60, 3), tf.uint8),
        ...      tf.zeros((4, 40, 60), tf.uint8)))
        >>> images, labels = next(iter(segmentation_train_pipeline(
        ...     ds, batch_size=2, crop_size=32, scale=(64, 32))))
        >>> tuple(images.shape), labels.dtype.name
        ((2, 32, 32, 3), 'int32')
    """
    crop = _crop_size(crop_size)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
    if seed is None:
        seed = int(tf.random.uniform([], 0, 2**31 - 1, tf.int64))
    source = _pairs(dataset)

    one_pass = seeded_pass(source, seed, shuffle_buffer, _SHUFFLE)

    # Passes are built inside flat_map (a traced function) even without
    # `repeat`, so the graph seed above applies to every shuffle.
    passes = tf.data.Dataset.counter() if repeat else tf.data.Dataset.range(1)
    stream = passes.flat_map(one_pass)

    @tf.autograph.experimental.do_not_convert
    def per_example(index, pair):
        image, label = pair
        resize, cut, flip, colour = tf.unstack(
            tf.random.experimental.stateless_split(
                stream_seed(seed, _IMAGE, index), 4
            )
        )
        image, label = random_resize(image, label, resize, scale, ratio_range)
        image, label = random_crop(
            image, label, cut, crop, cat_max_ratio, ignore_index
        )
        image, label = random_flip(image, label, flip, flip_prob)
        if photometric:
            image = apply_photometric(image, sample_photometric(colour))
        image = normalize(image, mean, std)
        return pad_pair(image, tf.cast(label, tf.int32), crop, ignore_index)

    dataset = stream.enumerate().map(
        per_example, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
    )
    dataset = dataset.batch(batch_size, drop_remainder=True)
    return dataset.prefetch(tf.data.AUTOTUNE)


def segmentation_eval_pipeline(
    dataset: tf.data.Dataset,
    *,
    scale: Sequence[int] = (2048, 512),
    mean: Sequence[float] = MEAN,
    std: Sequence[float] = STD,
) -> tf.data.Dataset:
    """mmseg's ADE20K test input: resized images, labels at full size.

    The image is resized into `scale` keeping its aspect ratio (bilinear,
    `rescale_size`; 512 on the short side for most ADE20K images) and
    normalised; the label is NOT resized: mmsegmentation resizes the
    predicted logits back to the original (H, W) (bilinear) and scores
    them there. So an element's image and label have different sizes,
    and batches hold one example.

    Args:
        dataset: as for `segmentation_train_pipeline`.
        scale: (long, short) bound of the resize.
        mean: normalisation mean, pixel units.
        std: normalisation standard deviation, pixel units.

    Returns:
        `tf.data.Dataset` of (image (1, h, w, 3) float32, label (1, H, W)
        int32), (h, w) = `rescale_size(H, W, scale)`.

    Example:
        >>> ds = tf.data.Dataset.from_tensor_slices(
        ...     (tf.zeros((2, 40, 60, 3), tf.uint8),
        ...      tf.zeros((2, 40, 60), tf.uint8)))
        >>> image, label = next(iter(segmentation_eval_pipeline(
        ...     ds, scale=(128, 32))))
        >>> tuple(image.shape), tuple(label.shape)
        ((1, 32, 48, 3), (1, 40, 60))
    """

    @tf.autograph.experimental.do_not_convert
    def per_example(image, label):
        shape = tf.shape(image)
        size = rescale_size(shape[0], shape[1], scale)
        image, _ = resize_pair(image, None, size)
        return normalize(image, mean, std), tf.cast(label, tf.int32)

    dataset = _pairs(dataset).map(
        per_example, num_parallel_calls=tf.data.AUTOTUNE
    )
    return dataset.batch(1).prefetch(tf.data.AUTOTUNE)
