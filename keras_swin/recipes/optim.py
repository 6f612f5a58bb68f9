"""Optimizer, schedule and loss of a recipe, built from Keras parts."""

from __future__ import annotations

import math

import keras

from keras_swin.recipes.config import (
    MMSEG_NO_DECAY_KEYS,
    Recipe,
    SegmentationRecipe,
    get_recipe,
    get_segmentation_recipe,
)

#: Layer or variable names the official Swin code keeps out of weight decay
#: (`no_weight_decay` and `no_weight_decay_keywords` of the model), plus the
#: ViT tokens and position embedding, which timm also exempts.
NO_DECAY_NAMES = frozenset(
    {
        "relative_position_bias_table",
        "absolute_pos_embed",
        "pos_embed",
        "cls_token",
        "reg_token",
    }
)


@keras.saving.register_keras_serializable("keras_swin")
class WarmupCosineFromStart(keras.optimizers.schedules.LearningRateSchedule):
    """timm's `CosineLRScheduler` without `warmup_prefix`, per step.

    Linear warm-up from `warmup_learning_rate` to `peak_learning_rate`
    over `warmup_steps`; afterwards `min + (peak - min) / 2 * (1 +
    cos(pi * step / total_steps))`, the cosine counted from step 0 (so it
    is already below the peak when the warm-up ends), then `min`.
    Keras' `CosineDecay` has only the other form (cosine after the
    warm-up), which the current official Swin code uses.

    Args:
        peak_learning_rate: rate the warm-up reaches.
        warmup_learning_rate: rate at step 0.
        min_learning_rate: rate at and after `total_steps`.
        warmup_steps: warm-up length.
        total_steps: length of the cosine, counted from step 0.

    Example:
        >>> s = WarmupCosineFromStart(1e-3, 1e-6, 1e-5, 20, 300)
        >>> round(float(s(20)), 6)
        0.000989
    """

    def __init__(
        self,
        peak_learning_rate: float,
        warmup_learning_rate: float,
        min_learning_rate: float,
        warmup_steps: int,
        total_steps: int,
    ):
        self.peak_learning_rate = peak_learning_rate
        self.warmup_learning_rate = warmup_learning_rate
        self.min_learning_rate = min_learning_rate
        self.warmup_steps = warmup_steps
        self.total_steps = total_steps

    def __call__(self, step):
        from keras import ops

        step = ops.cast(step, "float32")
        peak, low = self.peak_learning_rate, self.min_learning_rate
        warm = self.warmup_learning_rate + (
            peak - self.warmup_learning_rate
        ) * step / max(self.warmup_steps, 1)
        progress = ops.minimum(step / self.total_steps, 1.0)
        cosine = low + 0.5 * (peak - low) * (1.0 + ops.cos(math.pi * progress))
        return ops.where(step < self.warmup_steps, warm, cosine)

    def get_config(self):
        return dict(
            peak_learning_rate=self.peak_learning_rate,
            warmup_learning_rate=self.warmup_learning_rate,
            min_learning_rate=self.min_learning_rate,
            warmup_steps=self.warmup_steps,
            total_steps=self.total_steps,
        )


def learning_rate_schedule(
    recipe: str | Recipe,
    batch_size: int | None = None,
    steps_per_epoch: int | None = None,
) -> keras.optimizers.schedules.LearningRateSchedule:
    """Linear warm-up then cosine decay, updated every step.

    `keras.optimizers.schedules.CosineDecay` with `warmup_target`: the rate
    rises linearly from the warm-up rate to the peak over the warm-up steps,
    then follows a half cosine down to the minimum at the last step (the
    official Swin code with `WARMUP_PREFIX`). Recipes with
    `warmup_prefix=False` get `WarmupCosineFromStart` (timm's form).

    Args:
        recipe: a `Recipe` or its name.
        batch_size: global batch (linear scaling); default the recipe's.
        steps_per_epoch: batches per epoch (epoch-based recipes).

    Returns:
        A `CosineDecay` schedule (callable on the step).

    Example:
        >>> s = learning_rate_schedule("swin_in1k", 1024, 1251)
        >>> round(float(s(25020)), 6)
        0.001
    """
    recipe = get_recipe(recipe)
    rates = recipe.learning_rates(batch_size)
    total, warmup = recipe.steps(steps_per_epoch)
    if total <= warmup:
        raise ValueError(
            f"Recipe {recipe.name!r}: {total} total steps do not exceed the "
            f"{warmup} warm-up steps."
        )
    if not recipe.warmup_prefix:
        return WarmupCosineFromStart(
            rates["peak"], rates["warmup"], rates["min"], warmup, total
        )
    alpha = rates["min"] / rates["peak"] if rates["peak"] else 0.0
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=rates["warmup"] if warmup else rates["peak"],
        decay_steps=total - warmup,
        alpha=alpha,
        warmup_target=rates["peak"] if warmup else None,
        warmup_steps=warmup,
    )


def weight_decay_exempt(model: keras.Model) -> list:
    """Trainable variables kept out of weight decay by the Swin recipe.

    As the official `set_weight_decay`: every 1-D variable (biases,
    LayerNorm scales and offsets) and the relative-position bias tables and
    absolute position embeddings (and, for ViT, the class token and
    position embedding).

    Args:
        model: a built Keras model.

    Returns:
        A list of variables.

    Example:
        >>> from keras_swin import SwinTransformer
        >>> m = SwinTransformer(embed_dim=8, depths=(1,), num_heads=(1,),
        ...                     input_shape=(32, 32, 3), classes=2)
        >>> all(len(v.shape) == 1 or "relative" in v.path
        ...     for v in weight_decay_exempt(m))
        True
    """
    return [
        v
        for v in model.trainable_variables
        if len(v.shape) <= 1 or NO_DECAY_NAMES.intersection(v.path.split("/"))
    ]


def _clip_after_all_reduce(base):
    """`base` with global-norm clipping of the all-reduced gradient.

    Under a TensorFlow `tf.distribute` strategy Keras clips each replica's
    share of the gradient before summing the shares, which is not the
    global-norm clipping of the recipe (PyTorch DDP, and Keras on JAX,
    clip the summed gradient). This subclass sums the shares first, clips
    the sum, and hands each replica 1/R of it, so that Keras' own
    all-reduce rebuilds the clipped total (one extra all-reduce per step).
    """

    class ReplicaClipped(base):
        def _clip_gradients(self, grads):
            import tensorflow as tf

            context = tf.distribute.get_replica_context()
            replicas = context.num_replicas_in_sync if context else 1
            if not self.global_clipnorm or replicas == 1:
                return super()._clip_gradients(grads)
            total = context.all_reduce(tf.distribute.ReduceOp.SUM, grads)
            clipped = super()._clip_gradients(total)
            return [g / replicas for g in clipped]

    ReplicaClipped.__name__ = ReplicaClipped.__qualname__ = (
        f"ReplicaClipped{base.__name__}"
    )
    return keras.saving.register_keras_serializable("keras_swin")(
        ReplicaClipped
    )


_REPLICA_CLIPPED = {}


def _optimizer_class(base):
    """`base`, or its all-reduce-then-clip variant under a TF strategy."""
    if keras.backend.backend() != "tensorflow":
        return base
    import tensorflow as tf

    if not tf.distribute.has_strategy():
        return base
    if tf.distribute.get_strategy().num_replicas_in_sync == 1:
        return base
    if base not in _REPLICA_CLIPPED:
        _REPLICA_CLIPPED[base] = _clip_after_all_reduce(base)
    return _REPLICA_CLIPPED[base]


def make_optimizer(
    recipe: str | Recipe,
    model: keras.Model | None = None,
    batch_size: int | None = None,
    steps_per_epoch: int | None = None,
    gradient_accumulation_steps: int | None = None,
) -> keras.optimizers.Optimizer:
    """The recipe's optimizer with its schedule, clipping and decay mask.

    AdamW recipes use `keras.optimizers.AdamW` with
    `exclude_from_weight_decay` (see `weight_decay_exempt`); SGD recipes use
    `keras.optimizers.SGD` with momentum. Both clip by `global_clipnorm`.
    Built inside a multi-replica TensorFlow strategy scope, the optimizer
    clips the summed gradient rather than each replica's share (see
    `_clip_after_all_reduce`), as the recipe and the JAX backend do.

    Args:
        recipe: a `Recipe` or its name.
        model: the model to train (needed for the weight-decay mask when
            the recipe has weight decay).
        batch_size: global batch; default the recipe's.
        steps_per_epoch: batches per epoch (epoch-based recipes).
        gradient_accumulation_steps: overrides the recipe's.

    Returns:
        A Keras optimizer.

    Example:
        >>> opt = make_optimizer("vit_finetune")
        >>> type(opt).__name__, opt.global_clipnorm
        ('SGD', 1.0)
    """
    recipe = get_recipe(recipe)
    schedule = learning_rate_schedule(recipe, batch_size, steps_per_epoch)
    accumulation = (
        gradient_accumulation_steps or recipe.gradient_accumulation_steps
    )
    common = dict(
        learning_rate=schedule,
        global_clipnorm=recipe.global_clipnorm,
        use_ema=recipe.use_ema,
        ema_momentum=recipe.ema_momentum,
        gradient_accumulation_steps=accumulation,
    )
    if recipe.optimizer == "sgd":
        return _optimizer_class(keras.optimizers.SGD)(
            momentum=recipe.momentum,
            weight_decay=recipe.weight_decay or None,
            **common,
        )
    optimizer = _optimizer_class(keras.optimizers.AdamW)(
        weight_decay=recipe.weight_decay,
        beta_1=recipe.beta_1,
        beta_2=recipe.beta_2,
        epsilon=recipe.epsilon,
        **common,
    )
    if recipe.weight_decay:
        if model is None:
            raise ValueError(
                f"Recipe {recipe.name!r} has weight decay: pass the model so "
                "that biases, norms and position tables can be excluded."
            )
        optimizer.exclude_from_weight_decay(var_list=weight_decay_exempt(model))
    return optimizer


def make_loss(recipe: str | Recipe) -> keras.losses.Loss:
    """Cross-entropy on logits with the recipe's label smoothing.

    With mixup/cutmix the data pipeline already smooths and mixes the
    targets (as timm's `Mixup`), so the loss adds no smoothing of its own.

    Args:
        recipe: a `Recipe` or its name.

    Returns:
        A `keras.losses.CategoricalCrossentropy(from_logits=True)`.

    Example:
        >>> make_loss("swin_in1k").label_smoothing
        0.0
        >>> make_loss("swin_in1k").from_logits
        True
    """
    recipe = get_recipe(recipe)
    smoothing = 0.0 if recipe.mixing else recipe.label_smoothing
    # Weighted mean: padded evaluation examples (weight 0) do not count;
    # without weights it is the plain batch mean.
    return keras.losses.CategoricalCrossentropy(
        from_logits=True,
        label_smoothing=smoothing,
        reduction="mean_with_sample_weight",
    )


@keras.saving.register_keras_serializable("keras_swin")
class PolyDecayWithWarmup(keras.optimizers.schedules.LearningRateSchedule):
    """mmcv's poly learning rate with its linear warm-up, per step.

    `PolyLrUpdaterHook` with `warmup="linear"` (by iteration), as the
    official UperNet + Swin runs use it. At step `t` (0 for the first
    update):

        regular(t) = (lr - min_lr) * (1 - t / total_steps) ** power + min_lr
        k(t) = (1 - t / warmup_steps) * (1 - warmup_ratio)
        rate(t) = regular(t) * (1 - k(t))   while t < warmup_steps
                  regular(t)                afterwards

    The warm-up multiplies the decayed rate (it does not ramp to the
    peak), so the first update uses `lr * warmup_ratio`. Past
    `total_steps` the rate stays at `min_lr`.

    Args:
        learning_rate: base rate `lr`.
        total_steps: steps of the decay (mmcv's `max_iters`).
        warmup_steps: warm-up length (0: none).
        warmup_ratio: warm-up factor at step 0.
        power: poly exponent.
        min_learning_rate: rate at `total_steps`.

    Example:
        >>> s = PolyDecayWithWarmup(6e-5, 160000, 1500, 1e-6)
        >>> round(float(s(1500)) / 6e-5, 6)
        0.990625
    """

    def __init__(
        self,
        learning_rate: float,
        total_steps: int,
        warmup_steps: int = 0,
        warmup_ratio: float = 1e-6,
        power: float = 1.0,
        min_learning_rate: float = 0.0,
    ):
        if total_steps < 1 or warmup_steps < 0:
            raise ValueError(
                "PolyDecayWithWarmup: total_steps must be >= 1 and "
                f"warmup_steps >= 0, got {total_steps} and {warmup_steps}."
            )
        self.learning_rate = learning_rate
        self.total_steps = total_steps
        self.warmup_steps = warmup_steps
        self.warmup_ratio = warmup_ratio
        self.power = power
        self.min_learning_rate = min_learning_rate

    def __call__(self, step):
        from keras import ops

        step = ops.cast(step, "float32")
        # (total - t) / total rather than 1 - t / total: exact in float32
        # to the last step.
        remaining = ops.maximum(self.total_steps - step, 0.0) / self.total_steps
        regular = (self.learning_rate - self.min_learning_rate) * ops.power(
            remaining, self.power
        ) + self.min_learning_rate
        if not self.warmup_steps:
            return regular
        # 1 - k(t) = ratio + (1 - ratio) * t / warmup_steps: the same
        # number, without float32's cancellation in 1 - k near t = 0.
        factor = self.warmup_ratio + (1.0 - self.warmup_ratio) * (
            step / self.warmup_steps
        )
        return ops.where(step < self.warmup_steps, regular * factor, regular)

    def get_config(self):
        return dict(
            learning_rate=self.learning_rate,
            total_steps=self.total_steps,
            warmup_steps=self.warmup_steps,
            warmup_ratio=self.warmup_ratio,
            power=self.power,
            min_learning_rate=self.min_learning_rate,
        )


def segmentation_schedule(
    recipe: str | SegmentationRecipe,
) -> PolyDecayWithWarmup:
    """The recipe's poly schedule with its linear warm-up.

    Args:
        recipe: a `SegmentationRecipe` or its name.

    Returns:
        A `PolyDecayWithWarmup`.

    Example:
        >>> s = segmentation_schedule("upernet_swin_ade20k")
        >>> float(s(0)) == 6e-5 * 1e-6
        True
    """
    recipe = get_segmentation_recipe(recipe)
    return PolyDecayWithWarmup(
        recipe.learning_rate,
        recipe.total_steps,
        recipe.warmup_steps,
        recipe.warmup_ratio,
        recipe.poly_power,
        recipe.min_learning_rate,
    )


def segmentation_weight_decay_exempt(model: keras.Model, keys=None) -> list:
    """Trainable variables mmseg's `paramwise_cfg` keeps out of decay.

    A variable is exempt when its path contains one of `keys` (substring
    match, as mmcv's `custom_keys`): by default
    `keras_swin.recipes.config.MMSEG_NO_DECAY_KEYS`, i.e. every LayerNorm
    of the backbone (`norm`, `norm1`, `norm0` ... in the paths), the
    relative-position bias tables and the absolute position embedding.
    Unlike the classification recipe (`weight_decay_exempt`), biases and
    the heads' BatchNorm (`bn`) are decayed, as in the official runs.

    Args:
        model: a built Keras model.
        keys: substrings; default the mmseg ones.

    Returns:
        A list of variables.

    Example:
        >>> from keras_swin import SwinBackbone
        >>> m = SwinBackbone(embed_dim=8, depths=(1,), num_heads=(1,),
        ...                  input_shape=(32, 32, 3))
        >>> sorted({v.path.split("/")[-1]
        ...         for v in segmentation_weight_decay_exempt(m)})
        ['beta', 'gamma', 'relative_position_bias_table']
    """
    keys = MMSEG_NO_DECAY_KEYS if keys is None else tuple(keys)
    return [
        v
        for v in model.trainable_variables
        if any(key in v.path for key in keys)
    ]


def make_segmentation_optimizer(
    recipe: str | SegmentationRecipe, model: keras.Model
) -> keras.optimizers.Optimizer:
    """The segmentation recipe's AdamW with its schedule and decay mask.

    Args:
        recipe: a `SegmentationRecipe` or its name.
        model: the model to train (for the weight-decay mask).

    Returns:
        A `keras.optimizers.AdamW` (no gradient clipping: the official
        runs clip nothing).

    Example:
        >>> opt = make_segmentation_optimizer("upernet_swin_ade20k", model)
        >>> opt.weight_decay
        0.01
    """
    recipe = get_segmentation_recipe(recipe)
    optimizer = keras.optimizers.AdamW(
        learning_rate=segmentation_schedule(recipe),
        weight_decay=recipe.weight_decay,
        beta_1=recipe.beta_1,
        beta_2=recipe.beta_2,
        epsilon=recipe.epsilon,
    )
    if recipe.weight_decay:
        optimizer.exclude_from_weight_decay(
            var_list=segmentation_weight_decay_exempt(
                model, recipe.no_decay_keys
            )
        )
    return optimizer
