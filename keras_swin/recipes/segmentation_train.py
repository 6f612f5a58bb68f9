"""`keras-swin train --task segmentation`: Swin + UperNet, end to end.

With no other argument it trains a small Swin-UperNet on generated scenes
(`keras_swin.recipes.scenes`: shapes on textured backgrounds, no
download) with `SCENES_RECIPE`, the released ADE20K recipe scaled down,
scores the held-out test scenes (mIoU, mAcc, aAcc, the mmsegmentation
way) and writes the model, `metrics.json` and plots.

`--model swin_tiny --recipe upernet_swin_ade20k --dataset
tfds:scene_parse150` runs the released recipe
(`SEGMENTATION_RECIPES["upernet_swin_ade20k"]`) through the mmseg input
pipeline of `keras_swin.recipes.segmentation_data`.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

import keras
import numpy as np

from keras_swin.ade20k import class_names as ade20k_class_names
from keras_swin.applications import load_backbone
from keras_swin.imagenet import IMAGENET_MEAN, IMAGENET_STD
from keras_swin.models.upernet import UPERNET_CONFIGS, SwinUperNet
from keras_swin.recipes.config import (
    SegmentationRecipe,
    get_segmentation_recipe,
)
from keras_swin.recipes.optim import make_segmentation_optimizer
from keras_swin.recipes.scenes import (
    SCENE_CLASSES,
    SCENE_PALETTE,
    scene_splits,
)
from keras_swin.recipes.segmentation_metrics import (
    SegmentationMeanIoU,
    SegmentationScores,
)
from keras_swin.recipes.train import (
    _default_output,
    _distribution_scope,
    _positive,
    _remove_empty_folders,
    make_deterministic,
)
from keras_swin.segmentation import segment
from keras_swin.utils import atomic_path, cpu_name
from keras_swin.weights.pretrained import download, get_weights_spec

#: The released ADE20K recipe scaled down to the generated 64 x 64
#: scenes, for a small Swin-UperNet trained from scratch in minutes on a
#: CPU: the same AdamW (mmseg's decay mask, weight decay 0.01), linear
#: warm-up (5% of the steps, from lr x 1e-3) into a poly decay (power 1,
#: to 0), the 0.4-weighted auxiliary loss and ignore index 255, through
#: the same input pipeline; a learning rate of 2e-3 (the paper's 6e-5 is
#: for fine-tuning an ImageNet backbone), batches of 8 and 2,500 steps
#: (10 passes over 2,000 scenes). The scenes need no scale jitter or
#: photometric distortion (every scene is drawn at one scale, and a
#: class is never a colour), so the resize ratio is 1 and the distortion
#: off; the random crop is the whole scene; the horizontal flip stays.
#: Measured in docs/segmentation.md ("Training").
SCENES_RECIPE = SegmentationRecipe(
    name="scenes",
    source=(
        "upernet_swin_ade20k scaled down for the generated 64x64 scenes "
        "(keras_swin.recipes.scenes)"
    ),
    learning_rate=2e-3,
    batch_size=8,
    total_steps=2_500,
    warmup_steps=125,
    warmup_ratio=1e-3,
    poly_power=1.0,
    min_learning_rate=0.0,
    weight_decay=0.01,
    crop_size=(64, 64),
    scale=(64, 64),
    ratio_range=(1.0, 1.0),
    cat_max_ratio=1.0,
    flip_prob=0.5,
    photometric=False,
    auxiliary_loss_weight=0.4,
    ignore_index=255,
    num_classes=len(SCENE_CLASSES),
    default_drop_path_rate=0.0,
    test_mode="whole",
    notes=(
        "The segmentation main job's recipe (keras-swin train --task "
        "segmentation with no other argument)."
    ),
)

#: The main job's model: a four-stage Swin (patch 4, 16 x 16 tokens at
#: 64 px) and a narrow UperNet.
SCENES_MODEL = dict(
    embed_dim=32,
    depths=(2, 2, 2, 2),
    num_heads=(1, 2, 4, 8),
    window_size=4,
    patch_size=4,
    channels=32,
    auxiliary_channels=32,
)

#: The generated scenes of the main job: split sizes and side.
SCENES_SPLITS = {"train": 2000, "validation": 200, "test": 200}
SCENES_IMAGE_SIZE = 64

#: Segmentation models `build_segmenter` knows.
SEGMENTATION_MODELS = ("swin_scenes", *UPERNET_CONFIGS)


def build_segmenter(
    model: str,
    recipe: str | SegmentationRecipe,
    num_classes: int,
    image_size: int | None = None,
    weights=None,
    class_names=None,
    **overrides,
) -> keras.Model:
    """A Swin + UperNet segmenter for a recipe.

    Args:
        model: "swin_scenes" (`SCENES_MODEL`) or a `UPERNET_CONFIGS` key
            ("swin_tiny", ...: the released 512 x 512 ADE20K
            architectures).
        recipe: sets the stochastic depth (per variant).
        num_classes: classes of both heads.
        image_size: fixed input side, or (height, width); None: any
            size.
        weights: a Swin checkpoint (classification or dense) the backbone
            starts from (`keras_swin.applications.load_backbone`), or a
            registered name (`keras_swin.available_weights()`, downloaded
            once); the heads start fresh.
        class_names: recorded in the model (with ImageNet's mean and std)
            for `keras_swin.segment` and `keras-swin segment`.
        **overrides: `SwinUperNet` arguments (e.g. `embed_dim`,
            `channels`, `auxiliary_channels`).

    Returns:
        A `keras_swin.UperNet`: (B, H, W, 3) normalised images ->
        {"logits": (B, H, W, K), "auxiliary_logits": (B, H, W, K)}.

    Example:
        >>> m = build_segmenter("swin_scenes", SCENES_RECIPE, 5, 64)
        >>> m.output["logits"].shape
        (None, 64, 64, 5)
    """
    recipe = get_segmentation_recipe(recipe)
    if model not in SEGMENTATION_MODELS:
        raise ValueError(
            f"Unknown segmentation model {model!r}; choose one of "
            f"{list(SEGMENTATION_MODELS)}."
        )
    if image_size is None or isinstance(image_size, int):
        image_size = (image_size, image_size)
    shape = (*image_size, 3)
    preprocessing = dict(
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        crop_pct=1.0,
        interpolation="bilinear",
        class_names=list(class_names) if class_names is not None else None,
    )
    config = dict(SCENES_MODEL) if model == "swin_scenes" else {}
    config["drop_path_rate"] = recipe.drop_path_rate(model)
    config.update(overrides)
    variant = None if model == "swin_scenes" else model
    if isinstance(weights, str) and not os.path.exists(weights):
        # A registered name: its original checkpoint, downloaded once.
        weights = download(get_weights_spec(weights))
    if weights is not None:
        head_keys = {
            "channels",
            "pool_scales",
            "auxiliary_channels",
            "auxiliary_num_convs",
            "auxiliary_concat_input",
            "auxiliary_in_index",
            "dropout_rate",
        }
        head = {k: v for k, v in config.items() if k in head_keys}
        if variant is not None:
            head = {
                **{
                    k: v
                    for k, v in UPERNET_CONFIGS[variant].items()
                    if k in head_keys
                },
                **head,
            }
        backbone = load_backbone(
            weights,
            input_shape=shape,
            **{k: v for k, v in config.items() if k not in head_keys},
        )
        return SwinUperNet(
            backbone=backbone,
            num_classes=num_classes,
            preprocessing=preprocessing,
            name=f"upernet_{model}",
            **head,
        )
    return SwinUperNet(
        variant,
        num_classes=num_classes,
        input_shape=shape,
        preprocessing=preprocessing,
        name=f"upernet_{model}",
        **config,
    )


def compile_segmenter(
    model: keras.Model, recipe: str | SegmentationRecipe, **compile_kwargs
) -> keras.Model:
    """Compiles a segmenter with the recipe's optimizer and losses.

    Loss: sparse cross-entropy on "logits" plus `auxiliary_loss_weight`
    times the same on "auxiliary_logits" (when the model has that
    output), pixels labelled `ignore_index` left out (Keras'
    `ignore_class`: the mean runs over the labelled pixels, as
    mmsegmentation's `avg_non_ignore=True`; mmseg 0.x, which trained the
    released models, divided by every pixel of the batch, a difference
    of scale only where labels are ignored). Metric: mIoU of the logits
    (`SegmentationMeanIoU`).

    Args:
        model: a `UperNet` (dict outputs).
        recipe: a `SegmentationRecipe` or its name.
        **compile_kwargs: more `Model.compile` arguments.

    Returns:
        The same model, compiled.

    Example:
        >>> m = compile_segmenter(build_segmenter(
        ...     "swin_scenes", SCENES_RECIPE, 5, 64), SCENES_RECIPE)
    """
    recipe = get_segmentation_recipe(recipe)

    def loss():
        return keras.losses.SparseCategoricalCrossentropy(
            from_logits=True, ignore_class=recipe.ignore_index
        )

    outputs = set(model.output) if isinstance(model.output, dict) else set()
    if "logits" not in outputs:
        raise ValueError(
            "compile_segmenter needs a model with a dict output holding "
            f"'logits' (a keras_swin.UperNet); got {model.output!r}."
        )
    losses = {"logits": loss()}
    weights = {"logits": 1.0}
    if "auxiliary_logits" in outputs:
        losses["auxiliary_logits"] = loss()
        weights["auxiliary_logits"] = recipe.auxiliary_loss_weight
    num_classes = int(model.output["logits"].shape[-1])
    model.compile(
        optimizer=make_segmentation_optimizer(recipe, model),
        loss=losses,
        loss_weights=weights,
        metrics={
            "logits": [
                SegmentationMeanIoU(
                    num_classes, recipe.ignore_index, name="miou"
                )
            ]
        },
        **compile_kwargs,
    )
    return model


def evaluate_segmenter(
    model: keras.Model,
    pairs,
    num_classes: int,
    ignore_index: int = 255,
    scale=None,
    batch_size: int = 16,
    keep: int = 0,
) -> dict:
    """Held-out scores of a segmenter, accumulated the mmseg way.

    Each image is segmented with `keras_swin.segment` (whole-image
    inference; resized into `scale` first when given, the logits resized
    back to the image's size), and `SegmentationScores` adds up the
    pixel counts over all images.

    Args:
        model: a segmenter (dict output with "logits").
        pairs: iterable of (image (H, W, 3) uint8, label (H, W) int)
            pairs, or one pair of stacked arrays (N, H, W, 3), (N, H, W).
        num_classes: K.
        ignore_index: label left out.
        scale: (long, short) bound of the test resize, or None (the
            image's own size).
        batch_size: images per model call.
        keep: how many (image, label, prediction) triples to return for
            plots.

    Returns:
        `SegmentationScores.result()` (mIoU, mAcc, aAcc, IoU, Acc) plus
        "examples" and "samples" (the kept triples).

    Example:
        >>> evaluate_segmenter(model, (images, labels), 5)["mIoU"]
        0.83
    """
    scores = SegmentationScores(num_classes, ignore_index)
    samples, count = [], 0
    if isinstance(pairs, tuple) and len(pairs) == 2 and np.ndim(pairs[0]) == 4:
        images, labels = np.asarray(pairs[0]), np.asarray(pairs[1])
        for start in range(0, len(images), batch_size):
            chunk = images[start : start + batch_size]
            predicted = segment(
                model, chunk, scale=scale, batch_size=batch_size
            )
            truth = labels[start : start + batch_size]
            scores.update(truth, predicted)
            for image, label, prediction in zip(
                chunk, truth, predicted, strict=True
            ):
                if len(samples) < keep:
                    samples.append((image, label, prediction))
            count += len(chunk)
    else:
        for image, label in pairs:
            image, label = np.asarray(image), np.asarray(label)
            predicted = segment(model, image, scale=scale)
            scores.update(label[None], predicted[None])
            if len(samples) < keep:
                samples.append((image, label, predicted))
            count += 1
    if not count:
        raise ValueError("evaluate_segmenter: no images to evaluate.")
    return {**scores.result(), "examples": count, "samples": samples}


def _as_dict_targets(dataset, with_auxiliary: bool):
    """(images, labels) batches -> (images, {"logits": labels, ...})."""

    def split(images, labels):
        targets = {"logits": labels}
        if with_auxiliary:
            targets["auxiliary_logits"] = labels
        return images, targets

    return dataset.map(split)


def _scenes_sources(image_size, sizes):
    """{split: (images, labels)} of the generated scenes, dataset seed 0.

    The scenes are the same for every run seed: the seed varies the
    initial weights and the order and augmentation of the batches, and
    every run is scored on the same held-out scenes.
    """
    return scene_splits(sizes, image_size, seed=0)


def train_segmentation(
    model: str = "swin_scenes",
    recipe: str | SegmentationRecipe | None = None,
    dataset: str = "scenes",
    weights=None,
    steps: int | None = None,
    batch_size: int | None = None,
    image_size: int | None = None,
    steps_per_epoch: int | None = None,
    output: str | os.PathLike | None = None,
    seed: int = 0,
    data_dir: str | None = None,
    distribute: str = "auto",
    train_examples: int | None = None,
    eval_examples: int | None = None,
    prediction_images: int = 6,
    verbose: int | str = "auto",
    deterministic: bool = True,
    **model_overrides,
) -> dict:
    """Trains, evaluates and writes a segmenter, its metrics and plots.

    Writes into `output`: `model.keras` (the trained `UperNet`, with the
    class names and the normalisation recorded, so that
    `keras.saving.load_model` and `keras_swin.segment` use it as is),
    `metrics.json` (`test_miou`, `test_macc`, `test_aacc`, per-class
    `test_iou`, the wall times, the machine, ...), `learning_curves.png`
    and `predictions.png` (held-out images, their truth and the
    prediction).

    Args:
        model: "swin_scenes" (the main job's small model) or "swin_tiny" /
            "swin_small" / "swin_base" / "swin_large".
        recipe: a `SegmentationRecipe` or a name of `SEGMENTATION_RECIPES`;
            default `SCENES_RECIPE` for the scenes, else
            "upernet_swin_ade20k".
        dataset: "scenes" (generated) or "tfds:scene_parse150".
        weights: Swin checkpoint the backbone starts from.
        steps: optimizer steps (default: the recipe's `total_steps`; the
            schedule is stretched to them).
        batch_size: global batch (default: the recipe's).
        image_size: the scenes' side, or the training crop side of a tfds
            dataset (default: the recipe's crop).
        steps_per_epoch: steps between validations (default: one pass
            over the scenes' training split, else 1000).
        output: results folder; default a new `runs/...` folder.
        seed: seed of the weights, the batches and their augmentation.
        data_dir: tensorflow-datasets data folder.
        distribute: "auto", "data_parallel" or "none" (see
            `keras_swin.recipes.train.train`).
        train_examples: scenes in the training split (default
            `SCENES_SPLITS`); tfds: ignored.
        eval_examples: held-out images to score (default: all the test
            split).
        prediction_images: held-out images in predictions.png (0: none).
        verbose: `fit` verbosity.
        deterministic: `make_deterministic(seed)`; False only seeds.
        **model_overrides: `SwinUperNet` arguments of the model.

    Returns:
        The metrics written to `metrics.json`, plus "output".

    Raises:
        ValueError: an argument out of range, an unknown model, recipe or
            dataset.

    Example:
        >>> metrics = train_segmentation(output="/tmp/scenes-run")
        >>> metrics["test_miou"] > 0.8
        True
    """
    steps = _positive("steps", steps)
    batch_size = _positive("batch_size", batch_size)
    image_size = _positive("image_size", image_size, 8)
    steps_per_epoch = _positive("steps_per_epoch", steps_per_epoch)
    train_examples = _positive("train_examples", train_examples)
    eval_examples = _positive("eval_examples", eval_examples)
    prediction_images = _positive("prediction_images", prediction_images, 0)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(
            f"train_segmentation: seed must be an integer, got {seed!r}."
        )
    seed = int(seed)
    if dataset != "scenes" and not dataset.startswith("tfds:"):
        raise ValueError(
            f"Unknown segmentation dataset {dataset!r}: use 'scenes' "
            "(generated) or 'tfds:scene_parse150'."
        )
    if model not in SEGMENTATION_MODELS:
        raise ValueError(
            f"Unknown segmentation model {model!r}; choose one of "
            f"{list(SEGMENTATION_MODELS)}."
        )
    if recipe is None:
        recipe = SCENES_RECIPE if dataset == "scenes" else "upernet_swin_ade20k"
    recipe = get_segmentation_recipe(recipe)
    if steps is not None:
        warmup = recipe.warmup_steps
        if warmup >= steps:
            warmup = min(steps - 1, round(warmup * steps / recipe.total_steps))
        recipe = recipe.replace(total_steps=steps, warmup_steps=warmup)
    output = Path(output) if output else _default_output(model, dataset)
    created = not output.exists()
    try:
        return _train_segmentation(
            model,
            recipe,
            dataset,
            weights,
            batch_size or recipe.batch_size,
            image_size,
            steps_per_epoch,
            output,
            seed,
            data_dir,
            distribute,
            train_examples,
            eval_examples,
            prediction_images,
            verbose,
            deterministic,
            model_overrides,
        )
    except BaseException:
        if created:
            _remove_empty_folders(output)
        raise


def _train_segmentation(
    model,
    recipe,
    dataset,
    weights,
    batch_size,
    image_size,
    steps_per_epoch,
    output,
    seed,
    data_dir,
    distribute,
    train_examples,
    eval_examples,
    prediction_images,
    verbose,
    deterministic,
    model_overrides,
):
    """`train_segmentation` after its arguments are checked."""
    import tensorflow as tf

    from keras_swin.recipes.plots import (
        plot_learning_curves,
        plot_segmentation_predictions,
    )
    from keras_swin.recipes.segmentation_data import (
        load_scene_parse150,
        segmentation_train_pipeline,
    )

    start_time = time.perf_counter()
    if deterministic:
        make_deterministic(seed)
    else:
        keras.utils.set_random_seed(seed)
    scope, replicas = _distribution_scope(distribute)
    if batch_size % replicas:
        raise ValueError(
            f"batch_size {batch_size} does not split over {replicas} "
            "devices; use a multiple."
        )
    if image_size is not None:
        recipe = recipe.replace(crop_size=(image_size, image_size))
        if dataset == "scenes":
            recipe = recipe.replace(scale=(image_size, image_size))
    crop = tuple(recipe.crop_size)

    if dataset == "scenes":
        sizes = dict(SCENES_SPLITS)
        if train_examples:
            sizes["train"] = train_examples
        if eval_examples:
            sizes["test"] = eval_examples
            sizes["validation"] = min(sizes["validation"], eval_examples)
        side = crop[0]
        splits = _scenes_sources(side, sizes)
        num_classes, class_names = len(SCENE_CLASSES), list(SCENE_CLASSES)
        palette = SCENE_PALETTE
        source = tf.data.Dataset.from_tensor_slices(splits["train"])
        counts = {name: len(arrays[1]) for name, arrays in splits.items()}
        held_out = splits["test"]
        validation = tf.data.Dataset.from_tensor_slices(
            (
                _normalise(splits["validation"][0]),
                splits["validation"][1].astype(np.int32),
            )
        ).batch(batch_size)
        eval_scale = None
    else:
        name = dataset[len("tfds:") :]
        if name != "scene_parse150":
            raise ValueError(
                f"Unknown segmentation dataset {dataset!r}: the tfds "
                "pipeline reads 'tfds:scene_parse150'."
            )
        source = load_scene_parse150("train", data_dir)
        held_out = load_scene_parse150("test", data_dir)
        if eval_examples:
            held_out = held_out.take(eval_examples)
        held_out = held_out.as_numpy_iterator()
        num_classes, class_names = recipe.num_classes, ade20k_class_names()
        palette = None
        counts = {"train": None, "test": eval_examples}
        validation = None
        eval_scale = tuple(recipe.scale)
    if steps_per_epoch is None:
        steps_per_epoch = (
            max(1, counts["train"] // batch_size)
            if dataset == "scenes"
            else 1000
        )
    steps_per_epoch = min(steps_per_epoch, recipe.total_steps)
    epochs = max(1, math.ceil(recipe.total_steps / steps_per_epoch))
    train = segmentation_train_pipeline(
        source,
        batch_size=batch_size,
        crop_size=crop,
        scale=tuple(recipe.scale),
        ratio_range=tuple(recipe.ratio_range),
        cat_max_ratio=recipe.cat_max_ratio,
        flip_prob=recipe.flip_prob,
        photometric=recipe.photometric,
        ignore_index=recipe.ignore_index,
        seed=seed,
        shuffle_buffer=min(counts["train"] or 1000, 1000),
        repeat=True,
    )
    data_seconds = time.perf_counter() - start_time

    with scope:
        # Trained at the fixed crop size (static window masks and resize
        # matrices: a lighter graph than one for any size).
        net = build_segmenter(
            model,
            recipe,
            num_classes,
            crop,
            weights,
            class_names=class_names,
            **model_overrides,
        )
        with_auxiliary = "auxiliary_logits" in net.output
        compile_segmenter(net, recipe)
        fit_start = time.perf_counter()
        history = net.fit(
            _as_dict_targets(train, with_auxiliary),
            epochs=epochs,
            steps_per_epoch=steps_per_epoch,
            validation_data=(
                None
                if validation is None
                else _as_dict_targets(validation, with_auxiliary)
            ),
            shuffle=False,  # the pipeline shuffles
            verbose=verbose,
        )
        train_seconds = time.perf_counter() - fit_start
    # What is saved (and scores images of other sizes): the same weights
    # in a model for any input size, uncompiled.
    saved = build_segmenter(
        model,
        recipe,
        num_classes,
        None,
        weights,
        class_names=class_names,
        **model_overrides,
    )
    saved.set_weights(net.get_weights())
    eval_start = time.perf_counter()
    results = evaluate_segmenter(
        net if dataset == "scenes" else saved,
        held_out,
        num_classes,
        recipe.ignore_index,
        scale=eval_scale,
        batch_size=batch_size,
        keep=prediction_images,
    )
    eval_seconds = time.perf_counter() - eval_start
    samples = results.pop("samples")
    if counts.get("test") is None:
        counts["test"] = results["examples"]

    output.mkdir(parents=True, exist_ok=True)
    with atomic_path(output / "model.keras") as tmp:
        saved.save(tmp)
    history_lists = {
        k: [float(x) for x in v] for k, v in history.history.items()
    }
    metrics = {
        "test_miou": results["mIoU"],
        "test_macc": results["mAcc"],
        "test_aacc": results["aAcc"],
        "test_iou": dict(zip(class_names, results["IoU"], strict=False)),
        "test_acc": dict(zip(class_names, results["Acc"], strict=False)),
        "test_examples": results["examples"],
        "examples": counts,
        "task": "segmentation",
        "model": model,
        "model_config": {
            **(SCENES_MODEL if model == "swin_scenes" else {}),
            **model_overrides,
        },
        "parameters": int(net.count_params()),
        "optimizer_steps": int(net.optimizer.iterations),
        "recipe": recipe.name,
        "dataset": dataset,
        "image_size": crop[0],
        "steps": recipe.total_steps,
        "epochs": epochs,
        "steps_per_epoch": steps_per_epoch,
        "batch_size": batch_size,
        "learning_rate": recipe.learning_rate,
        "replicas": replicas,
        "seed": seed,
        "backend": keras.backend.backend(),
        "cpu": cpu_name(),
        "cpu_count": os.cpu_count(),
        "data_seconds": round(data_seconds, 2),
        "train_seconds": round(train_seconds, 2),
        "eval_seconds": round(eval_seconds, 2),
        "total_seconds": round(time.perf_counter() - start_time, 2),
        "history": history_lists,
    }
    with atomic_path(output / "metrics.json") as tmp:
        Path(tmp).write_text(json.dumps(metrics, indent=2) + "\n")
    plot_learning_curves(
        history_lists,
        output / "learning_curves.png",
        panels=("loss", "logits_miou"),
    )
    if samples:
        images, labels, predictions = zip(*samples, strict=True)
        plot_segmentation_predictions(
            images,
            labels,
            predictions,
            output / "predictions.png",
            class_names=class_names,
            palette=palette,
            ignore_index=recipe.ignore_index,
            title=(
                f"held-out {dataset}: test mIoU {results['mIoU']:.3f} "
                f"({keras.backend.backend()}, seed {seed})"
            ),
        )
    metrics["output"] = str(output)
    return metrics


def _normalise(images: np.ndarray) -> np.ndarray:
    """uint8 RGB -> float32 `(x / 255 - mean) / std`, ImageNet's."""
    mean = np.asarray(IMAGENET_MEAN, np.float32)
    std = np.asarray(IMAGENET_STD, np.float32)
    return ((images.astype(np.float32) / 255.0) - mean) / std
