"""`keras-swin train`: a recipe, a model and a dataset, end to end.

With no arguments it trains a small Swin on scikit-learn's bundled
handwritten digits (8 x 8 images, no download) with the Swin recipe's
components scaled down (`DIGITS_RECIPE`), evaluates on a held-out test
split and writes the model, `metrics.json` and plots.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path

import keras
import numpy as np

from keras_swin.applications import APPLICATIONS
from keras_swin.imagenet import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    INCEPTION_MEAN,
    INCEPTION_STD,
    attach_preprocessing,
)
from keras_swin.recipes.config import Recipe, get_recipe
from keras_swin.recipes.optim import make_loss, make_optimizer
from keras_swin.recipes.resume import backup_callbacks, resumed_epoch
from keras_swin.utils import atomic_path
from keras_swin.weights.families import FAMILIES

#: The Swin ImageNet recipe scaled down to 8 x 8 digits: the same
#: components (AdamW with the decay mask, warm-up + cosine, clipping,
#: label smoothing, mixup/cutmix switch, RandAugment with magnitude noise,
#: random erasing, linear stochastic depth), at smaller strengths, and no
#: flip (digits are not mirror-symmetric). Peak learning rate 2e-3: at
#: 1e-3 the 60 epochs underfit (train accuracy still rising; 0.969
#: held-out with seed 0 on JAX, 0.978 at 2e-3, 0.981 at 3e-3; the nine
#: runs of the README at 2e-3 average 0.984).
DIGITS_RECIPE = Recipe(
    name="digits",
    source="swin_in1k scaled down for sklearn's 8x8 digits",
    optimizer="adamw",
    learning_rate=2e-3,
    reference_batch_size=64,
    warmup_learning_rate=1e-5,
    min_learning_rate=2e-5,
    batch_size=64,
    epochs=60,
    warmup_epochs=3,
    weight_decay=0.05,
    global_clipnorm=5.0,
    label_smoothing=0.1,
    mixup_alpha=0.2,
    cutmix_alpha=0.2,
    mix_switch_prob=0.5,
    mix_prob=0.3,
    randaugment="rand-m4-mstd0.5-inc1-n1",
    random_erasing=0.05,
    default_drop_path_rate=0.1,
    image_size=16,
    crop_area=(0.85, 1.0),
    crop_aspect_ratio=(0.8, 1.25),
    horizontal_flip=False,
    eval_crop_pct=1.0,
    interpolation="bilinear",
    normalization="imagenet",
    notes="The main job's recipe (keras-swin train with no arguments).",
)

#: The main job's model: two Swin stages on a 16 x 16 input.
DIGITS_MODEL = dict(
    embed_dim=48,
    depths=(2, 2),
    num_heads=(3, 6),
    window_size=4,
    patch_size=2,
)

#: A ViT of the same width on the same input (`--model vit_digits`): 2 x 2
#: patches, an 8 x 8 grid plus the class token; for the analyses of
#: `keras-swin analyze` (rollout, position-embedding similarity).
VIT_DIGITS_MODEL = dict(
    patch_size=2,
    hidden_size=48,
    num_layers=4,
    num_heads=3,
    mlp_dim=192,
)

#: The small models of the digits main job: name -> (family, config).
DIGITS_MODELS = {
    "swin_digits": ("swin", DIGITS_MODEL),
    "vit_digits": ("vit", VIT_DIGITS_MODEL),
}


def digits_splits(seed: int = 0, test_fraction: float = 0.2):
    """scikit-learn's digits as uint8 images, split train/val/test.

    Stratified: `test_fraction` of each class for the test split, then
    10% of the rest for validation.

    Args:
        seed: split seed.
        test_fraction: share of the test split.

    Returns:
        dict split -> (images (N, 8, 8, 1) uint8 in [0, 255], labels (N,)
        int32), and the class count 10.

    Example:
        >>> splits, k = digits_splits()
        >>> splits["test"][0].shape, k
        ((360, 8, 8, 1), 10)
    """
    try:
        from sklearn.datasets import load_digits
    except ImportError as error:  # pragma: no cover - dependency missing
        raise ImportError(
            "The digits dataset needs scikit-learn: pip install scikit-learn"
        ) from error
    data = load_digits()
    images = np.round(data.images * (255.0 / 16.0)).astype(np.uint8)
    images = images[..., None]
    labels = data.target.astype(np.int32)
    rng = np.random.default_rng(seed)
    parts = {"train": [], "validation": [], "test": []}
    for label in np.unique(labels):
        index = rng.permutation(np.flatnonzero(labels == label))
        n_test = int(round(len(index) * test_fraction))
        rest = index[n_test:]
        n_val = int(round(len(rest) * 0.1))
        parts["test"].append(index[:n_test])
        parts["validation"].append(rest[:n_val])
        parts["train"].append(rest[n_val:])
    splits = {}
    for name, chunks in parts.items():
        index = np.sort(np.concatenate(chunks))
        splits[name] = (images[index], labels[index])
    return splits, 10


def _default_output(model_name: str, dataset: str) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = f"{model_name}-{dataset.replace(':', '_').replace('/', '_')}"
    path = Path("runs") / f"{base}-{stamp}"
    suffix = 1
    while path.exists():
        suffix += 1
        path = Path("runs") / f"{base}-{stamp}-{suffix}"
    return path


def build_model(
    model: str,
    recipe: str | Recipe,
    num_classes: int,
    image_size: int,
    weights=None,
    **overrides,
) -> keras.Model:
    """A classifier with logits for a recipe.

    Args:
        model: "swin_digits", "vit_digits" (`DIGITS_MODELS`), a
            `SWIN_CONFIGS` key ("swin_tiny", ...) or a `VIT_CONFIGS` key
            ("vit_base_patch16", ...).
        recipe: sets the stochastic depth (per variant) and, for the ViT
            fine-tuning recipe, a zero-initialised head.
        num_classes: classes of the head.
        image_size: input side.
        weights: checkpoint to start from (any format `weights=` takes); a
            head of another class count is replaced by a zero head.
        **overrides: builder arguments (e.g. `window_size`).

    Returns:
        A `keras.Model` (B, S, S, 3) -> logits (B, num_classes).

    Example:
        >>> m = build_model("swin_digits", DIGITS_RECIPE, 10, 16)
        >>> m.output.shape
        (None, 10)
    """
    recipe = get_recipe(recipe)
    kwargs = dict(
        input_shape=(image_size, image_size, 3),
        classes=num_classes,
        classifier_activation=None,
        weights=weights,
        name=model,
    )
    variants = dict(DIGITS_MODELS)
    # The classifier families (a backbone family shares Swin's table).
    for family in (FAMILIES[name] for name in APPLICATIONS):
        variants.update(
            (key, (family.name, config))
            for key, config in family.configs.items()
        )
    if model not in variants:
        raise ValueError(
            f"Unknown model {model!r}; choose one of {sorted(variants)}."
        )
    family_name, config = variants[model]
    build = APPLICATIONS[family_name]
    config = {**config, "drop_path_rate": recipe.drop_path_rate(model)}
    built = build(**{**config, **kwargs, **overrides})
    if recipe.zero_init_head:
        head = built.get_layer("head")
        for variable in head.weights:
            variable.assign(np.zeros(variable.shape, variable.dtype))
    return built


def compile_model(
    model: keras.Model,
    recipe: str | Recipe,
    batch_size: int | None = None,
    steps_per_epoch: int | None = None,
    gradient_accumulation_steps: int | None = None,
    **compile_kwargs,
) -> keras.Model:
    """Compiles `model` with the recipe's optimizer, schedule and loss.

    Args:
        model: a model with logits outputs.
        recipe: a `Recipe` or its name.
        batch_size: global batch (learning-rate scaling).
        steps_per_epoch: batches per epoch (epoch-based schedules).
        gradient_accumulation_steps: micro-batches per update.
        **compile_kwargs: more `Model.compile` arguments (`jit_compile`,
            `steps_per_execution`, ...).

    Returns:
        The same model, compiled with accuracy (and top-5 accuracy for
        more than 10 classes).

    Example:
        >>> m = build_model("swin_digits", DIGITS_RECIPE, 10, 16)
        >>> _ = compile_model(m, DIGITS_RECIPE, 64, 20)
    """
    recipe = get_recipe(recipe)
    metrics = [keras.metrics.CategoricalAccuracy(name="accuracy")]
    if model.output.shape[-1] > 10:
        metrics.append(
            keras.metrics.TopKCategoricalAccuracy(5, name="top5_accuracy")
        )
    model.compile(
        optimizer=make_optimizer(
            recipe,
            model,
            batch_size=batch_size,
            steps_per_epoch=steps_per_epoch,
            gradient_accumulation_steps=gradient_accumulation_steps,
        ),
        loss=make_loss(recipe),
        metrics=metrics,
        **compile_kwargs,
    )
    return model


def _sources(dataset, seed, data_dir):
    """({split: tf.data source}, num_classes, {split: count}, (raw test
    images, their labels) for the plots or None)."""
    import tensorflow as tf

    from keras_swin.recipes.data import load_tfds

    if dataset == "digits":
        splits, num_classes = digits_splits(seed)
        sources = {
            name: tf.data.Dataset.from_tensor_slices(arrays)
            for name, arrays in splits.items()
        }
        counts = {name: len(arrays[1]) for name, arrays in splits.items()}
        test_sample = splits["test"]
    elif dataset.startswith("tfds:"):
        name = dataset[len("tfds:") :]
        sources, counts = {}, {}
        train, num_classes, counts["train"] = load_tfds(name, "train", data_dir)
        sources["train"] = train
        for split in ("validation", "test"):
            try:
                sources[split], _, counts[split] = load_tfds(
                    name, split, data_dir
                )
            except (ValueError, KeyError):
                continue
        if "test" not in sources and "validation" not in sources:
            raise ValueError(
                f"{dataset}: no 'validation' or 'test' split to evaluate on."
            )
        sources.setdefault("test", sources.get("validation"))
        test_sample = None
    else:
        raise ValueError(
            f"Unknown dataset {dataset!r}: use 'digits' or 'tfds:NAME' "
            "(e.g. tfds:imagenet2012, tfds:cifar10)."
        )
    return sources, num_classes, counts, test_sample


def _class_names(dataset, num_classes, data_dir):
    """Names of the classes, or None when the dataset has none."""
    if dataset == "digits":
        return [str(digit) for digit in range(num_classes)]
    try:
        import tensorflow_datasets as tfds

        builder = tfds.builder(dataset[len("tfds:") :], data_dir=data_dir)
        names = list(builder.info.features["label"].names)
    except Exception:  # noqa: BLE001 - names are optional metadata
        return None
    return names if len(names) == num_classes else None


def with_preprocessing(
    model: keras.Model, recipe: str | Recipe, class_names=None
) -> keras.Model:
    """`model` carrying the recipe's evaluation transform and class names.

    What `train` saves as `model.keras`: the same layers and weights
    behind a `keras_swin.layers.PreprocessingInfo` (see
    `keras_swin.imagenet.attach_preprocessing`), so that `keras-swin
    predict IMAGE --weights model.keras` and
    `keras_swin.imagenet.model_preprocessing` prepare an image the way
    the model was evaluated: resize (`crop_pct`, `interpolation`), then
    `preprocess_input` with the recipe's mean and std.

    Args:
        model: the trained classifier, (B, S, S, 3) -> logits (B, K).
        recipe: its `Recipe` (normalization, eval_crop_pct,
            interpolation).
        class_names: K names, or None.

    Returns:
        An uncompiled `keras.Model` sharing `model`'s weights.

    Example:
        >>> m = build_model("swin_digits", DIGITS_RECIPE, 10, 16)
        >>> saved = with_preprocessing(m, DIGITS_RECIPE, list("0123456789"))
        >>> model_preprocessing(saved)["interpolation"]
        'bilinear'
    """
    recipe = get_recipe(recipe)
    if recipe.normalization == "inception":
        mean, std = INCEPTION_MEAN, INCEPTION_STD
    else:
        mean, std = IMAGENET_MEAN, IMAGENET_STD
    return attach_preprocessing(
        model,
        mean=mean,
        std=std,
        crop_pct=recipe.eval_crop_pct,
        interpolation=recipe.interpolation,
        class_names=class_names,
    )


def _pipelines(
    sources,
    counts,
    recipe,
    num_classes,
    batch_size,
    image_size,
    seed,
    start=0,
    replicas=1,
):
    """(train dataset starting at example `start`, {split: eval
    dataset})."""
    from keras_swin.recipes.data import eval_pipeline, train_pipeline

    train = train_pipeline(
        sources["train"],
        recipe,
        num_classes,
        batch_size,
        image_size=image_size,
        shuffle_buffer=min(counts["train"] or 10_000, 10_000),
        seed=seed,
        start=start,
    )
    evals = {
        split: eval_pipeline(
            sources[split],
            recipe,
            num_classes,
            batch_size,
            image_size,
            pad_last_batch=replicas > 1,
        )
        for split in ("validation", "test")
        if sources.get(split) is not None
    }
    return train, evals


@contextlib.contextmanager
def _data_parallel(devices):
    """Keras' JAX `DataParallel` over `devices`, restored afterwards."""
    previous = keras.distribution.distribution()
    keras.distribution.set_distribution(
        keras.distribution.DataParallel(devices=devices)
    )
    try:
        yield
    finally:
        keras.distribution.set_distribution(previous)


def unshare_ema_weights(model: keras.Model) -> None:
    """Gives each weight its own buffer after an EMA `fit`.

    With `use_ema`, `fit` ends by assigning the optimizer's moving averages
    to the weights; on JAX each weight then shares its device buffer with
    its average, and the next `predict` donates that buffer, which leaves
    the optimizer holding a deleted array (saving then fails). Copying the
    weights once avoids it; without EMA this does nothing.

    Args:
        model: a model after `fit`.

    Example:
        >>> model.fit(data, epochs=1)
        >>> unshare_ema_weights(model)
    """
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None or not optimizer.use_ema:
        return
    for variable in model.trainable_variables:
        variable.assign(keras.ops.convert_to_numpy(variable))


def evaluate(model: keras.Model, dataset, loss) -> dict:
    """Exact accuracy and loss over a whole evaluation dataset.

    Counts every example once, whatever the batching (padded examples,
    weight 0, are left out), unlike a per-batch average.

    Args:
        model: a classifier with logits outputs.
        dataset: batches of (images, one-hot targets) or (images, targets,
            weights) as `eval_pipeline` gives.
        loss: the training loss (its label smoothing is applied).

    Returns:
        {"accuracy", "loss", and "top5_accuracy" for more than 10 classes,
        "examples"}.

    Example:
        >>> evaluate(model, eval_pipeline(ds, "swin_in1k", 10, 32),
        ...          make_loss("swin_in1k"))["accuracy"]
        0.93
    """
    correct = top5 = total = loss_sum = 0.0
    for batch in dataset:
        images, targets = np.asarray(batch[0]), np.asarray(batch[1])
        keep = np.asarray(batch[2]) > 0 if len(batch) == 3 else None
        logits = keras.ops.convert_to_numpy(model.predict_on_batch(images))
        if keep is not None:
            logits, targets = logits[keep], targets[keep]
        labels = targets.argmax(-1)
        correct += float((logits.argmax(-1) == labels).sum())
        order = np.argsort(-logits, axis=-1)[:, :5]
        top5 += float((order == labels[:, None]).any(-1).sum())
        per_example = keras.ops.convert_to_numpy(
            keras.losses.categorical_crossentropy(
                targets,
                logits,
                from_logits=True,
                label_smoothing=loss.label_smoothing,
            )
        )
        loss_sum += float(per_example.sum())
        total += len(labels)
    if not total:
        raise ValueError("evaluate: the dataset holds no examples.")
    results = {"accuracy": correct / total, "loss": loss_sum / total}
    if model.output.shape[-1] > 10:
        results["top5_accuracy"] = top5 / total
    results["examples"] = int(total)
    return results


def _distribution_scope(distribute: str):
    """(context for building, compiling and fitting, replica count)."""
    backend = keras.backend.backend()
    if distribute not in ("auto", "data_parallel", "none"):
        raise ValueError(
            f"distribute must be 'auto', 'data_parallel' or 'none', got "
            f"{distribute!r}."
        )
    if distribute == "none":
        return contextlib.nullcontext(), 1
    if backend == "jax":
        import jax

        devices = jax.devices()
        if len(devices) > 1 or distribute == "data_parallel":
            return _data_parallel(devices), len(devices)
        return contextlib.nullcontext(), 1
    if backend == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_logical_devices("GPU")
        if len(gpus) > 1 or distribute == "data_parallel":
            strategy = tf.distribute.MirroredStrategy()
            return strategy.scope(), strategy.num_replicas_in_sync
        return contextlib.nullcontext(), 1
    if distribute == "data_parallel":
        raise ValueError(
            "distribute='data_parallel' needs the JAX or TensorFlow backend; "
            f"Keras' {backend} backend trains on one device."
        )
    return contextlib.nullcontext(), 1


def _positive(name: str, value, minimum: int = 1):
    """`value` if it is an int >= `minimum` (None passes), else ValueError."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(
            f"train: {name} must be an integer >= {minimum}, got {value!r} "
            f"({type(value).__name__})."
        )
    if value < minimum:
        raise ValueError(f"train: {name} must be >= {minimum}, got {value}.")
    return int(value)


def make_deterministic(seed: int) -> None:
    """Seeds every generator and turns on the backends' deterministic ops.

    `keras.utils.set_random_seed` (Python, NumPy, TensorFlow, the Keras
    `SeedGenerator`s and, on PyTorch, torch); on TensorFlow also
    `tf.config.experimental.enable_op_determinism()`, and on PyTorch
    `torch.use_deterministic_algorithms(True, warn_only=True)`. Both
    switches are process-wide. They matter on GPUs: on the CPU the three
    backends already give identical runs for a seed. (JAX on a GPU needs
    `XLA_FLAGS=--xla_gpu_deterministic_ops=true` before it starts.)

    Args:
        seed: the run's seed.

    Example:
        >>> make_deterministic(0)
    """
    keras.utils.set_random_seed(seed)
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
    elif backend == "torch":
        import torch

        torch.use_deterministic_algorithms(True, warn_only=True)


def _remove_empty_folders(path: Path) -> None:
    """Removes `path` and the folders under it if no file is left."""
    if not path.is_dir():
        return
    if any(p.is_file() or p.is_symlink() for p in path.rglob("*")):
        return
    for folder in sorted(path.rglob("*"), key=lambda p: -len(p.parts)):
        folder.rmdir()
    path.rmdir()


def train(
    model: str = "swin_digits",
    recipe: str | Recipe | None = None,
    dataset: str = "digits",
    weights=None,
    epochs: int | None = None,
    batch_size: int | None = None,
    image_size: int | None = None,
    steps_per_epoch: int | None = None,
    output: str | os.PathLike | None = None,
    seed: int = 0,
    data_dir: str | None = None,
    distribute: str = "auto",
    gradient_accumulation_steps: int | None = None,
    attention_images: int = 6,
    verbose: int | str = "auto",
    deterministic: bool = True,
) -> dict:
    """Trains, evaluates and writes a model, its metrics and plots.

    Reproducible: the same arguments, seed and backend give the same
    weights and the same `test_accuracy` (the input pipeline is
    deterministic, see `train_pipeline`, and `make_deterministic` seeds
    everything). A run started again with the same `output` resumes from
    its last finished epoch, with the batches it would have seen.

    The output folder is created when the run first writes to it (at the
    end of the first epoch); a run that fails before leaves no folder.

    Args:
        model: see `build_model`.
        recipe: a `Recipe` or a name of `RECIPES`; default `DIGITS_RECIPE`
            for the digits and "swin_in1k" / "vit_finetune" otherwise.
        dataset: "digits" (bundled with scikit-learn) or "tfds:NAME".
        weights: checkpoint to fine-tune from.
        epochs: overrides the recipe's (epoch-based recipes); >= 1.
        batch_size: global batch, >= 1; default the recipe's (learning
            rates are scaled linearly).
        image_size: input side, >= 1; default the recipe's.
        steps_per_epoch: batches per epoch, >= 1; default the training
            split size over the batch.
        output: folder for the results; default a new `runs/...` folder.
        seed: seed of the split, the shuffle, the augmentations and the
            initial weights.
        data_dir: tensorflow-datasets data folder.
        distribute: "auto" (all local accelerators: `DataParallel` on JAX,
            `MirroredStrategy` on TensorFlow), "data_parallel" (always)
            or "none".
        gradient_accumulation_steps: micro-batches per optimizer update,
            >= 1.
        attention_images: test images in the attention-map plot (0: no
            plot).
        verbose: `fit` verbosity (progress bars by default).
        deterministic: call `make_deterministic(seed)` (process-wide
            switches); False only seeds the generators.

    Returns:
        The metrics written to `metrics.json` (`test_accuracy`,
        `test_loss`, `train_seconds`, ..., and `output`).

    Raises:
        ValueError: an argument out of range (epochs, batch_size,
            image_size, steps_per_epoch, gradient_accumulation_steps below
            1, attention_images below 0, a seed that is not an integer),
            an unknown model, recipe or dataset.

    Example:
        >>> metrics = train(epochs=1, output="/tmp/digits-run")
        >>> sorted(metrics)[:2]
        ['backend', 'batch_size']
    """
    epochs = _positive("epochs", epochs)
    batch_size = _positive("batch_size", batch_size)
    image_size = _positive("image_size", image_size)
    steps_per_epoch = _positive("steps_per_epoch", steps_per_epoch)
    gradient_accumulation_steps = _positive(
        "gradient_accumulation_steps", gradient_accumulation_steps
    )
    attention_images = _positive("attention_images", attention_images, 0)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"train: seed must be an integer, got {seed!r}.")
    seed = int(seed)

    if recipe is None:
        if dataset == "digits":
            recipe = DIGITS_RECIPE
        else:
            recipe = "vit_finetune" if model.startswith("vit") else "swin_in1k"
    recipe = get_recipe(recipe)
    if epochs is not None:
        if recipe.epochs is None:
            raise ValueError(
                f"Recipe {recipe.name!r} is step-based "
                f"({recipe.total_steps} steps); --epochs does not apply."
            )
        changes = {"epochs": epochs}
        if recipe.warmup_epochs >= epochs:
            # Keep the warm-up's share of the run rather than fail.
            warmup = round(recipe.warmup_epochs * epochs / recipe.epochs)
            changes["warmup_epochs"] = min(warmup, epochs - 1)
            print(
                f"keras-swin train: {epochs} epochs do not exceed the "
                f"recipe's {recipe.warmup_epochs} warm-up epochs; warm-up "
                f"shortened to {changes['warmup_epochs']}."
            )
        recipe = recipe.replace(**changes)
    batch_size = batch_size or recipe.batch_size
    image_size = image_size or recipe.image_size
    output = Path(output) if output else _default_output(model, dataset)
    created = not output.exists()
    try:
        return _train(
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
            gradient_accumulation_steps,
            attention_images,
            verbose,
            deterministic,
        )
    except BaseException:
        if created:
            _remove_empty_folders(output)
        raise


def _train(
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
    gradient_accumulation_steps,
    attention_images,
    verbose,
    deterministic,
):
    """`train` after its arguments are checked; writes into `output`."""
    from keras_swin.recipes.plots import (
        plot_attention_maps,
        plot_learning_curves,
    )

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
    sources, num_classes, counts, test_sample = _sources(
        dataset, seed, data_dir
    )
    class_names = _class_names(dataset, num_classes, data_dir)
    if steps_per_epoch is None:
        if not counts.get("train"):
            raise ValueError(
                f"The size of {dataset}'s training split is unknown; pass "
                "steps_per_epoch."
            )
        steps_per_epoch = max(1, counts["train"] // batch_size)
    if recipe.epochs is not None:
        fit_epochs = recipe.epochs
    else:
        fit_epochs = max(1, -(-recipe.total_steps // steps_per_epoch))
    # A resumed run starts its input where the interrupted one stopped.
    start = resumed_epoch(output / "backup") * steps_per_epoch * batch_size
    train_ds, evals = _pipelines(
        sources,
        counts,
        recipe,
        num_classes,
        batch_size,
        image_size,
        seed,
        start=start,
        replicas=replicas,
    )

    with scope:
        net = build_model(model, recipe, num_classes, image_size, weights)
        compile_model(
            net,
            recipe,
            batch_size=batch_size,
            steps_per_epoch=steps_per_epoch,
            gradient_accumulation_steps=gradient_accumulation_steps,
        )
        start_time = time.perf_counter()
        history = net.fit(
            train_ds,
            epochs=fit_epochs,
            steps_per_epoch=steps_per_epoch,
            validation_data=evals.get("validation"),
            callbacks=backup_callbacks(output / "backup"),
            shuffle=False,  # the pipeline shuffles
            verbose=verbose,
        )
        train_seconds = time.perf_counter() - start_time
        unshare_ema_weights(net)
        results = evaluate(net, evals["test"], make_loss(recipe))

    with atomic_path(output / "model.keras") as tmp:
        with_preprocessing(net, recipe, class_names).save(tmp)
    metrics = {
        **{f"test_{k}": v for k, v in results.items()},
        "train_seconds": round(train_seconds, 2),
        "epochs": fit_epochs,
        "steps_per_epoch": steps_per_epoch,
        "batch_size": batch_size,
        "image_size": image_size,
        "replicas": replicas,
        "backend": keras.backend.backend(),
        "model": model,
        "parameters": int(net.count_params()),
        "recipe": recipe.name,
        "dataset": dataset,
        "examples": counts,
        "seed": seed,
        "history": {
            k: [float(x) for x in v] for k, v in history.history.items()
        },
    }
    with atomic_path(output / "metrics.json") as tmp:
        Path(tmp).write_text(json.dumps(metrics, indent=2) + "\n")
    plot_learning_curves(history.history, output / "learning_curves.png")
    if test_sample is not None and attention_images:
        test_images, test_labels = test_sample
        plot_attention_maps(
            net,
            _eval_images(test_images[:attention_images], recipe, image_size),
            test_images[:attention_images],
            output / "attention_maps.png",
            labels=test_labels[:attention_images],
        )
    metrics["output"] = str(output)
    return metrics


def _eval_images(images, recipe, image_size):
    """The eval transform of raw uint8 images, as a numpy batch."""
    import tensorflow as tf

    from keras_swin.recipes.data import center_crop, normalize

    out = [
        normalize(
            center_crop(
                tf.image.grayscale_to_rgb(tf.constant(image))
                if image.shape[-1] == 1
                else tf.constant(image),
                image_size,
                recipe.eval_crop_pct,
                recipe.interpolation,
            ),
            recipe,
        ).numpy()
        for image in images
    ]
    return np.stack(out)
