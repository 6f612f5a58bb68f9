"""Input pipelines of the recipes: tensorflow-datasets into `tf.data`.

The pipelines are TensorFlow ops, and `model.fit` takes a `tf.data.Dataset`
on every Keras backend, so the same pipeline feeds TensorFlow, JAX and
PyTorch.

Train: Inception-style random-resized crop, horizontal flip, RandAugment,
normalisation, random erasing, then mixup/cutmix on the batch (soft
targets). Eval: resize the shorter side to `image_size / eval_crop_pct`
(bicubic for Swin), center crop, normalise, one-hot targets.

The training pipeline is reproducible: with a seed, every random choice
is a stateless op whose seed comes from the run's seed and the example's
(or the batch's) position in the stream, and each epoch is shuffled with
its own seed, so the parallel maps give the same batches in the same
order on every run, and a run can start at any example (`start`) with the
batches an uninterrupted run would have seen there.
"""

from __future__ import annotations

import tensorflow as tf

from keras_swin.recipes.augment import (
    MixupCutmix,
    RandAugment,
    RandomErasing,
    call_seed,
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


def random_resized_crop(
    image, size, area, aspect_ratio, interpolation, seed=None
):
    """Inception crop: a random box of `area` and `aspect_ratio`, resized.

    `tf.image.stateless_sample_distorted_bounding_box` with 10 attempts,
    falling back to the whole image (timm falls back to a center crop).

    Args:
        image: (H, W, C).
        size: output side S.
        area: (min, max) fraction of the image area.
        aspect_ratio: (min, max) width / height.
        interpolation: "bicubic" or "bilinear".
        seed: optional (2,) int tensor, a stateless seed (the same seed,
            the same box); None draws one.

    Returns:
        (S, S, C) float32 in the input's range.

    Example:
        >>> out = random_resized_crop(tf.zeros((50, 40, 3)), 32,
        ...                           (0.08, 1.0), (0.75, 1.33), "bicubic")
        >>> tuple(out.shape)
        (32, 32, 3)
    """
    begin, extent, _ = tf.image.stateless_sample_distorted_bounding_box(
        tf.shape(image),
        bounding_boxes=tf.zeros([1, 0, 4]),
        seed=call_seed(seed),
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


#: Tags that keep the seeds of the shuffles, the images and the batches
#: of one run apart.
_SHUFFLE, _IMAGE, _BATCH = 1, 2, 3


def stream_seed(seed: int, tag: int, index):
    """(2,) int64 stateless seed of element `index` of a stream.

    Example:
        >>> stream_seed(0, 2, 5).shape
        TensorShape([2])
    """
    base = tf.constant([seed % 2**63, tag], tf.int64)
    return tf.random.experimental.stateless_fold_in(
        base, tf.cast(index, tf.int64)
    )


def seeded_pass(source: tf.data.Dataset, seed: int, shuffle_buffer: int, tag):
    """`index -> the index-th pass over source`, shuffled by seed alone.

    Args:
        source: the examples.
        seed: the run's seed.
        shuffle_buffer: shuffle buffer size; 0 keeps the order.
        tag: the stream's tag (keeps the shuffles of pipelines apart).

    Returns:
        A function of a pass index (a scalar tensor) to a dataset, for
        `tf.data.Dataset.counter().flat_map(...)`.

    Example:
        >>> one_pass = seeded_pass(tf.data.Dataset.range(4), 0, 4, 1)
        >>> sorted(int(x) for x in one_pass(tf.constant(0, tf.int64)))
        [0, 1, 2, 3]
    """

    def one_pass(index):
        if not shuffle_buffer:
            return source
        # The shuffle's seeds are (graph seed, op seed). Fixing the graph
        # seed of this function makes the order depend on `seed` alone
        # (not on `tf.random.set_seed`), and spares TensorFlow comparing
        # the tensor op seed with 0 in Python, which fails when the
        # global seed is 0.
        tf.compat.v1.get_default_graph().seed = tag
        shuffle_seed = stream_seed(seed, tag, index)[0]
        return source.shuffle(
            shuffle_buffer, seed=shuffle_seed, reshuffle_each_iteration=False
        )

    return one_pass


def train_pipeline(
    dataset: tf.data.Dataset,
    recipe: str | Recipe,
    num_classes: int,
    batch_size: int,
    image_size: int | None = None,
    shuffle_buffer: int = 10_000,
    seed: int | None = None,
    repeat: bool = True,
    start: int = 0,
) -> tf.data.Dataset:
    """Training input of a recipe: augmented images and soft targets.

    Reproducible: for a given `seed`, the same batches in the same order
    on every run and every backend (stateless random ops seeded by the
    run seed and each example's position in the stream; one shuffle seed
    per pass over the data).

    Args:
        dataset: yields (image (H, W, C) uint8, label int) or dicts with
            "image" and "label" (tensorflow-datasets' format).
        recipe: a `Recipe` or its name.
        num_classes: K.
        batch_size: global batch B (the last partial batch is dropped, as
            the official loaders do).
        image_size: side S; default the recipe's.
        shuffle_buffer: shuffle buffer (0: no shuffle).
        seed: seed of the shuffle and the augmentations; None draws one
            from TensorFlow's global generator (`tf.random.set_seed`).
        repeat: repeat forever (pass `steps_per_epoch` to `fit`).
        start: examples of the stream to pass over, e.g. `epoch *
            steps_per_epoch * batch_size` to resume a run at `epoch`
            with exactly the batches it would have seen; whole passes
            over the data are skipped without reading them when the
            dataset's size is known.

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
    if start < 0:
        raise ValueError(f"start must be >= 0 examples, got {start}.")
    if seed is None:
        seed = int(tf.random.uniform([], 0, 2**31 - 1, tf.int64))
    source = pairs(dataset)

    one_pass = seeded_pass(source, seed, shuffle_buffer, _SHUFFLE)

    skip = start
    if repeat:
        count = int(source.cardinality())
        first = 0
        if count > 0:
            first, skip = divmod(start, count)
        stream = tf.data.Dataset.counter(first).flat_map(one_pass)
    else:
        stream = one_pass(0)
    stream = stream.skip(skip).enumerate(start=start)
    augment = RandAugment(recipe.randaugment) if recipe.randaugment else None
    eraser = (
        RandomErasing(recipe.random_erasing) if recipe.random_erasing else None
    )

    @tf.autograph.experimental.do_not_convert
    def per_image(index, pair):
        image, label = pair
        crop, flip, policy, erase = tf.unstack(
            tf.random.experimental.stateless_split(
                stream_seed(seed, _IMAGE, index), 4
            )
        )
        image = random_resized_crop(
            _as_rgb(image),
            size,
            recipe.crop_area,
            recipe.crop_aspect_ratio,
            recipe.interpolation,
            seed=crop,
        )
        if recipe.horizontal_flip:
            image = tf.image.stateless_random_flip_left_right(image, flip)
        if augment is not None:
            image = augment(image, policy)
        image = normalize(image, recipe)
        if eraser is not None:
            image = eraser(image, erase)
        return image, label

    dataset = stream.map(
        per_image, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
    )
    dataset = dataset.batch(batch_size, drop_remainder=True)
    mixer = MixupCutmix(
        num_classes,
        mixup_alpha=recipe.mixup_alpha,
        cutmix_alpha=recipe.cutmix_alpha,
        switch_prob=recipe.mix_switch_prob,
        prob=recipe.mix_prob if recipe.mixing else 0.0,
        label_smoothing=recipe.label_smoothing if recipe.mixing else 0.0,
    )

    @tf.autograph.experimental.do_not_convert
    def per_batch(index, batch):
        images, labels = batch
        if recipe.mixing:
            return mixer(images, labels, stream_seed(seed, _BATCH, index))
        return images, mixer.targets(labels)

    dataset = dataset.enumerate(start=start // batch_size).map(
        per_batch, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
    )
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

    dataset = pairs(dataset).map(per_image, num_parallel_calls=tf.data.AUTOTUNE)
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


def pairs(dataset):
    """(image, label) pairs from pairs or dicts with those keys.

    Raises:
        ValueError: elements of another structure, naming it.

    Example:
        >>> ds = tf.data.Dataset.from_tensors({"image": x, "label": y})
        >>> len(pairs(ds).element_spec)
        2
    """
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
