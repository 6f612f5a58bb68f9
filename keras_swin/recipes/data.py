"""Input pipelines of the recipes: tensorflow-datasets into `tf.data`.

The pipelines are TensorFlow ops, and `model.fit` takes a `tf.data.Dataset`
on every Keras backend, so the same pipeline feeds TensorFlow, JAX and
PyTorch.

Train: Inception-style random-resized crop, horizontal flip, RandAugment,
normalisation, random erasing, then mixup/cutmix on the batch (soft
targets). Eval: resize the shorter side to `image_size / eval_crop_pct`
(bicubic for Swin), center crop, normalise, one-hot targets.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from keras_swin.recipes.augment import (
    MixupCutmix,
    RandAugment,
    RandomErasing,
)
from keras_swin.recipes.config import Recipe, get_recipe

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def normalize(images, recipe: str | Recipe):
    """Pixels in [0, 255] -> the recipe's model input.

    Args:
        images: (..., H, W, 3) in [0, 255].
        recipe: "imagenet" normalisation (mean/std) or "inception"
            ([-1, 1], the official ViT).

    Returns:
        float32 tensor of the same shape.

    Example:
        >>> float(normalize(tf.fill((1, 1, 3), 255.0), "vit_finetune")[0, 0, 0])
        1.0
    """
    recipe = get_recipe(recipe)
    images = tf.cast(images, tf.float32)
    if recipe.normalization == "inception":
        return images / 127.5 - 1.0
    channels = images.shape[-1]
    mean = tf.constant(IMAGENET_MEAN[:channels]) * 255.0
    std = tf.constant(IMAGENET_STD[:channels]) * 255.0
    return (images - mean) / std


def _as_rgb(image):
    image = tf.convert_to_tensor(image)
    if image.shape.rank == 2:
        image = image[..., None]
    if image.shape[-1] == 1:
        image = tf.image.grayscale_to_rgb(image)
    return image


def random_resized_crop(image, size, area, aspect_ratio, interpolation):
    """Inception crop: a random box of `area` and `aspect_ratio`, resized.

    `tf.image.sample_distorted_bounding_box` with 10 attempts, falling back
    to the whole image (timm falls back to a center crop).

    Args:
        image: (H, W, C).
        size: output side S.
        area: (min, max) fraction of the image area.
        aspect_ratio: (min, max) width / height.
        interpolation: "bicubic" or "bilinear".

    Returns:
        (S, S, C) float32 in the input's range.

    Example:
        >>> out = random_resized_crop(tf.zeros((50, 40, 3)), 32,
        ...                           (0.08, 1.0), (0.75, 1.33), "bicubic")
        >>> tuple(out.shape)
        (32, 32, 3)
    """
    begin, extent, _ = tf.image.sample_distorted_bounding_box(
        tf.shape(image),
        bounding_boxes=tf.zeros([1, 0, 4]),
        min_object_covered=0.0,
        aspect_ratio_range=aspect_ratio,
        area_range=area,
        max_attempts=10,
        use_image_if_no_bounding_boxes=True,
    )
    crop = tf.slice(image, begin, extent)
    resized = tf.image.resize(
        tf.cast(crop, tf.float32), (size, size), method=interpolation
    )
    resized.set_shape((size, size, image.shape[-1]))
    return tf.clip_by_value(resized, 0.0, 255.0)


def center_crop(image, size, crop_pct, interpolation):
    """Eval transform: shorter side to `size / crop_pct`, center crop.

    With `crop_pct == 1` the image is resized to (size, size) directly, as
    the official ViT evaluation.

    Args:
        image: (H, W, C).
        size: output side S.
        crop_pct: fraction of the resized image kept.
        interpolation: "bicubic" or "bilinear".

    Returns:
        (S, S, C) float32.

    Example:
        >>> out = center_crop(tf.zeros((50, 40, 3)), 32, 0.875, "bicubic")
        >>> tuple(out.shape)
        (32, 32, 3)
    """
    image = tf.cast(image, tf.float32)
    if crop_pct >= 1.0:
        out = tf.image.resize(image, (size, size), method=interpolation)
        return tf.clip_by_value(out, 0.0, 255.0)
    shape = tf.cast(tf.shape(image)[:2], tf.float32)
    scale = (size / crop_pct) / tf.reduce_min(shape)
    new = tf.cast(tf.math.floor(shape * scale), tf.int32)
    new = tf.maximum(new, size)
    out = tf.image.resize(image, new, method=interpolation)
    top = (new[0] - size) // 2
    left = (new[1] - size) // 2
    out = out[top : top + size, left : left + size]
    out.set_shape((size, size, image.shape[-1]))
    return tf.clip_by_value(out, 0.0, 255.0)


def train_pipeline(
    dataset: tf.data.Dataset,
    recipe: str | Recipe,
    num_classes: int,
    batch_size: int,
    image_size: int | None = None,
    shuffle_buffer: int = 10_000,
    seed: int | None = None,
    repeat: bool = True,
) -> tf.data.Dataset:
    """Training input of a recipe: augmented images and soft targets.

    Args:
        dataset: yields (image (H, W, C) uint8, label int) or dicts with
            "image" and "label" (tensorflow-datasets' format).
        recipe: a `Recipe` or its name.
        num_classes: K.
        batch_size: global batch B (the last partial batch is dropped, as
            the official loaders do).
        image_size: side S; default the recipe's.
        shuffle_buffer: shuffle buffer (0: no shuffle).
        seed: optional seed of the shuffle and the augmentations.
        repeat: repeat forever (pass `steps_per_epoch` to `fit`).

    Returns:
        `tf.data.Dataset` of (images (B, S, S, 3) float32, targets (B, K)
        float32).

    Example:
        >>> ds = tf.data.Dataset.from_tensor_slices(
        ...     (tf.zeros((4, 40, 40, 3), tf.uint8), tf.range(4)))
        >>> x, y = next(iter(train_pipeline(ds, "swin_in1k", 10, 2,
        ...                                  image_size=32)))
        >>> tuple(x.shape), tuple(y.shape)
        ((2, 32, 32, 3), (2, 10))
    """
    recipe = get_recipe(recipe)
    size = image_size or recipe.image_size
    dataset = _pairs(dataset)
    if shuffle_buffer:
        dataset = dataset.shuffle(shuffle_buffer, seed=seed)
    if repeat:
        dataset = dataset.repeat()
    augment = (
        RandAugment(recipe.randaugment, seed=seed)
        if recipe.randaugment
        else None
    )
    flip = keras.layers.RandomFlip("horizontal", seed=seed)
    eraser = (
        RandomErasing(recipe.random_erasing, seed=seed)
        if recipe.random_erasing
        else None
    )

    @tf.autograph.experimental.do_not_convert
    def per_image(image, label):
        image = _as_rgb(image)
        image = random_resized_crop(
            image,
            size,
            recipe.crop_area,
            recipe.crop_aspect_ratio,
            recipe.interpolation,
        )
        if recipe.horizontal_flip:
            image = flip(image, training=True)
        if augment is not None:
            image = augment(image)
        image = normalize(image, recipe)
        if eraser is not None:
            image = eraser(image)
        return image, label

    dataset = dataset.map(per_image, num_parallel_calls=tf.data.AUTOTUNE)
    dataset = dataset.batch(batch_size, drop_remainder=True)
    mixer = MixupCutmix(
        num_classes,
        mixup_alpha=recipe.mixup_alpha,
        cutmix_alpha=recipe.cutmix_alpha,
        switch_prob=recipe.mix_switch_prob,
        prob=recipe.mix_prob if recipe.mixing else 0.0,
        label_smoothing=recipe.label_smoothing if recipe.mixing else 0.0,
        seed=seed,
    )

    @tf.autograph.experimental.do_not_convert
    def per_batch(images, labels):
        if recipe.mixing:
            return mixer(images, labels)
        return images, mixer.targets(labels)

    dataset = dataset.map(per_batch, num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.prefetch(tf.data.AUTOTUNE)


def eval_pipeline(
    dataset: tf.data.Dataset,
    recipe: str | Recipe,
    num_classes: int,
    batch_size: int,
    image_size: int | None = None,
    pad_last_batch: bool = False,
) -> tf.data.Dataset:
    """Evaluation input of a recipe: center-cropped images, one-hot targets.

    Args:
        dataset: as for `train_pipeline`.
        recipe: a `Recipe` or its name.
        num_classes: K.
        batch_size: B (the last batch may be smaller: nothing is dropped).
        image_size: side S; default the recipe's.
        pad_last_batch: pad a smaller last batch with zero images and add
            per-example weights (1 real, 0 padding), so that every batch
            splits evenly over data-parallel devices.

    Returns:
        `tf.data.Dataset` of (images (B, S, S, 3) float32, targets (B, K)),
        plus weights (B,) with `pad_last_batch`.

    Example:
        >>> ds = tf.data.Dataset.from_tensor_slices(
        ...     (tf.zeros((3, 40, 40, 3), tf.uint8), tf.range(3)))
        >>> sizes = [int(x.shape[0]) for x, _ in
        ...          eval_pipeline(ds, "swin_in1k", 10, 2, image_size=32)]
        >>> sizes
        [2, 1]
    """
    recipe = get_recipe(recipe)
    size = image_size or recipe.image_size

    @tf.autograph.experimental.do_not_convert
    def per_image(image, label):
        image = center_crop(
            _as_rgb(image), size, recipe.eval_crop_pct, recipe.interpolation
        )
        target = tf.one_hot(tf.cast(label, tf.int32), num_classes)
        return normalize(image, recipe), target

    dataset = _pairs(dataset).map(
        per_image, num_parallel_calls=tf.data.AUTOTUNE
    )
    dataset = dataset.batch(batch_size)
    if pad_last_batch:

        @tf.autograph.experimental.do_not_convert
        def pad(images, targets):
            count = tf.shape(images)[0]
            missing = batch_size - count
            weights = tf.concat([tf.ones([count]), tf.zeros([missing])], 0)
            images = tf.pad(images, [[0, missing], [0, 0], [0, 0], [0, 0]])
            targets = tf.pad(targets, [[0, missing], [0, 0]])
            return images, targets, weights

        dataset = dataset.map(pad)
    return dataset.prefetch(tf.data.AUTOTUNE)


def _pairs(dataset):
    spec = dataset.element_spec
    if isinstance(spec, dict):
        missing = {"image", "label"} - set(spec)
        if missing:
            raise ValueError(
                f"Dataset elements need 'image' and 'label' keys; missing "
                f"{sorted(missing)} (keys: {sorted(spec)})."
            )
        return dataset.map(
            tf.autograph.experimental.do_not_convert(
                lambda ex: (ex["image"], ex["label"])
            )
        )
    if not isinstance(spec, tuple) or len(spec) != 2:
        raise ValueError(
            "Dataset elements must be (image, label) pairs or dicts with "
            f"'image' and 'label'; got {spec}."
        )
    return dataset


def load_tfds(
    name: str,
    split: str,
    data_dir: str | None = None,
    download: bool = True,
):
    """Loads a tensorflow-datasets split with its class count.

    Args:
        name: dataset name, e.g. "imagenet2012" or "cifar10".
        split: e.g. "train", "validation", "test[:10%]".
        data_dir: tensorflow-datasets data folder.
        download: let tensorflow-datasets prepare the data if missing
            (ImageNet needs the archives placed manually, see its docs).

    Returns:
        (dataset of dicts, num_classes, num_examples); num_examples is
        None when tensorflow-datasets does not know it.

    Example:
        >>> import tensorflow_datasets as tfds
        >>> with tfds.testing.mock_data(num_examples=4):
        ...     ds, k, n = load_tfds("imagenet2012", "train")
        >>> k
        1000
    """
    import tensorflow_datasets as tfds

    dataset, info = tfds.load(
        name,
        split=split,
        data_dir=data_dir,
        with_info=True,
        download=download,
    )
    label = info.features["label"]
    try:
        examples = info.splits[split].num_examples
    except KeyError:
        # Mocked or partly prepared datasets carry no split metadata.
        count = int(dataset.cardinality())
        examples = count if count >= 0 else None
    return dataset, label.num_classes, examples
