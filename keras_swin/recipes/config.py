"""The papers' training recipes as data.

Every number below is copied from the configuration the authors released,
named in the recipe's `source`. Learning rates are given at the recipe's
`reference_batch_size` and scaled linearly with the batch size actually
used (`Recipe.learning_rates`), as the official Swin code does.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

SWIN_CONFIG_URL = (
    "https://github.com/microsoft/Swin-Transformer/blob/main/config.py"
)


@dataclass(frozen=True)
class Recipe:
    """One training or fine-tuning configuration.

    Attributes:
        name: key in `RECIPES`.
        source: where the numbers come from.
        optimizer: "adamw" or "sgd".
        learning_rate: peak learning rate at `reference_batch_size`.
        reference_batch_size: batch the rates are given for; None: no
            linear scaling.
        warmup_learning_rate: start of the linear warm-up (scaled too).
        min_learning_rate: end of the cosine decay (scaled too).
        batch_size: the recipe's global batch.
        epochs: training length in epochs (None: `total_steps` is used).
        warmup_epochs: warm-up length in epochs.
        total_steps: training length in optimizer steps (ViT recipes).
        warmup_steps: warm-up length in steps (ViT recipes).
        warmup_prefix: True: the cosine runs over the steps after the
            warm-up (the official Swin code's `WARMUP_PREFIX`, and Keras'
            `CosineDecay`); False: timm's cosine counted from step 0 (the
            2021 Swin release), which is already below the peak when the
            warm-up ends.
        weight_decay: decoupled weight decay (AdamW).
        beta_1, beta_2, epsilon: AdamW moments.
        momentum: SGD momentum.
        global_clipnorm: gradient clipping by global norm (None: off).
        label_smoothing: smoothing of the (possibly mixed) targets.
        mixup_alpha: Beta(alpha, alpha) of mixup (0: off).
        cutmix_alpha: Beta(alpha, alpha) of cutmix (0: off).
        mix_switch_prob: chance of cutmix instead of mixup for a batch.
        mix_prob: chance a batch is mixed at all.
        randaugment: timm RandAugment string, e.g. "rand-m9-mstd0.5-inc1"
            (None: off).
        random_erasing: probability of erasing a box of each image.
        drop_path_rates: stochastic depth of the last block per variant
            (rates rise linearly from 0 over the blocks).
        default_drop_path_rate: rate for variants not in the table.
        image_size: training and evaluation side.
        crop_area: area range of the random-resized (Inception) crop.
        crop_aspect_ratio: aspect-ratio range of that crop.
        horizontal_flip: random horizontal flip.
        eval_crop_pct: evaluation resize to `image_size / eval_crop_pct`
            then center crop (1.0: plain resize to the square).
        interpolation: resize filter ("bicubic" or "bilinear").
        normalization: "imagenet" (mean/std) or "inception" ([-1, 1]).
        zero_init_head: start the new classifier at zero.
        use_ema: keep an exponential moving average of the weights (they
            replace the weights when `fit` ends).
        ema_momentum: momentum of that average.
        gradient_accumulation_steps: micro-batches per optimizer step
            (None: off).
        notes: free text shown by `keras-swin train --list-recipes`.

    Example:
        >>> recipe = RECIPES["swin_in1k"]
        >>> recipe.learning_rates(batch_size=512)["peak"]
        0.0005
    """

    name: str
    source: str
    optimizer: str
    learning_rate: float
    reference_batch_size: int | None
    warmup_learning_rate: float
    min_learning_rate: float
    batch_size: int
    epochs: int | None = None
    warmup_epochs: int = 0
    total_steps: int | None = None
    warmup_steps: int | None = None
    warmup_prefix: bool = True
    weight_decay: float = 0.0
    beta_1: float = 0.9
    beta_2: float = 0.999
    epsilon: float = 1e-8
    momentum: float = 0.0
    global_clipnorm: float | None = None
    label_smoothing: float = 0.0
    mixup_alpha: float = 0.0
    cutmix_alpha: float = 0.0
    mix_switch_prob: float = 0.5
    mix_prob: float = 1.0
    randaugment: str | None = None
    random_erasing: float = 0.0
    drop_path_rates: dict = field(default_factory=dict)
    default_drop_path_rate: float = 0.0
    image_size: int = 224
    crop_area: tuple = (0.08, 1.0)
    crop_aspect_ratio: tuple = (3.0 / 4.0, 4.0 / 3.0)
    horizontal_flip: bool = True
    eval_crop_pct: float = 0.875
    interpolation: str = "bicubic"
    normalization: str = "imagenet"
    zero_init_head: bool = False
    use_ema: bool = False
    ema_momentum: float = 0.99
    gradient_accumulation_steps: int | None = None
    notes: str = ""

    def __post_init__(self):
        if self.optimizer not in ("adamw", "sgd"):
            raise ValueError(
                f"Recipe {self.name!r}: optimizer must be 'adamw' or 'sgd', "
                f"got {self.optimizer!r}."
            )
        if (self.epochs is None) == (self.total_steps is None):
            raise ValueError(
                f"Recipe {self.name!r}: give exactly one of epochs and "
                "total_steps."
            )
        if self.normalization not in ("imagenet", "inception"):
            raise ValueError(
                f"Recipe {self.name!r}: normalization must be 'imagenet' or "
                f"'inception', got {self.normalization!r}."
            )

    @property
    def mixing(self) -> bool:
        """True when mixup or cutmix is on (targets become soft)."""
        return self.mix_prob > 0 and (
            self.mixup_alpha > 0 or self.cutmix_alpha > 0
        )

    def drop_path_rate(self, variant: str | None) -> float:
        """Stochastic depth of the last block for `variant`.

        Args:
            variant: e.g. "swin_tiny"; None or unknown: the default rate.

        Returns:
            The rate; the blocks' rates rise linearly from 0 to it.

        Example:
            >>> RECIPES["swin_in1k"].drop_path_rate("swin_base")
            0.5
        """
        return self.drop_path_rates.get(variant, self.default_drop_path_rate)

    def learning_rates(self, batch_size: int | None = None) -> dict:
        """Peak, warm-up start and minimum rates for a global batch size.

        Linear scaling rule of the official Swin code:
        `rate * batch_size / reference_batch_size`.

        Args:
            batch_size: global batch; default the recipe's own.

        Returns:
            {"peak": float, "warmup": float, "min": float}.

        Example:
            >>> RECIPES["swin_in1k"].learning_rates(1024)["peak"]
            0.001
        """
        batch_size = batch_size or self.batch_size
        scale = 1.0
        if self.reference_batch_size:
            scale = batch_size / self.reference_batch_size
        return {
            "peak": self.learning_rate * scale,
            "warmup": self.warmup_learning_rate * scale,
            "min": self.min_learning_rate * scale,
        }

    def steps(self, steps_per_epoch: int | None) -> tuple[int, int]:
        """(total, warm-up) optimizer steps.

        Args:
            steps_per_epoch: batches per epoch; needed for epoch-based
                recipes.

        Returns:
            (total_steps, warmup_steps).

        Example:
            >>> RECIPES["swin_in1k"].steps(1251)
            (375300, 25020)
        """
        if self.total_steps is not None:
            return self.total_steps, self.warmup_steps or 0
        if not steps_per_epoch:
            raise ValueError(
                f"Recipe {self.name!r} is given in epochs; steps_per_epoch "
                "is needed to build its schedule."
            )
        return (
            self.epochs * steps_per_epoch,
            self.warmup_epochs * steps_per_epoch,
        )

    def replace(self, **changes) -> Recipe:
        """A copy with some fields changed (validated again).

        Example:
            >>> RECIPES["swin_in1k"].replace(epochs=10).epochs
            10
        """
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise ValueError(
                f"Unknown recipe field(s) {sorted(unknown)}; fields are "
                f"{[f.name for f in dataclasses.fields(self)]}."
            )
        return dataclasses.replace(self, **changes)


_SWIN_COMMON = dict(
    optimizer="adamw",
    reference_batch_size=1024,
    beta_1=0.9,
    beta_2=0.999,
    epsilon=1e-8,
    weight_decay=0.05,
    global_clipnorm=5.0,
    label_smoothing=0.1,
    mixup_alpha=0.8,
    cutmix_alpha=1.0,
    mix_switch_prob=0.5,
    mix_prob=1.0,
    randaugment="rand-m9-mstd0.5-inc1",
    random_erasing=0.25,
    image_size=224,
    crop_area=(0.08, 1.0),
    horizontal_flip=True,
    eval_crop_pct=0.875,
    interpolation="bicubic",
    normalization="imagenet",
)

RECIPES: dict[str, Recipe] = {
    "swin_in1k": Recipe(
        name="swin_in1k",
        source=(
            "Swin paper (Liu et al., 2021) Sec. 4.1 and the official "
            f"defaults, {SWIN_CONFIG_URL} (BASE_LR 5e-4, WARMUP_LR 5e-7, "
            "MIN_LR 5e-6 per 512 images)"
        ),
        learning_rate=1e-3,
        warmup_learning_rate=1e-6,
        min_learning_rate=1e-5,
        batch_size=1024,
        epochs=300,
        warmup_epochs=20,
        drop_path_rates={
            "swin_tiny": 0.2,
            "swin_small": 0.3,
            "swin_base": 0.5,
        },
        default_drop_path_rate=0.2,
        notes="ImageNet-1K from scratch.",
        **_SWIN_COMMON,
    ),
    "swin_in22k": Recipe(
        name="swin_in22k",
        source=(
            "official configs/swin/swin_*_patch4_window7_224_22k.yaml "
            "(BASE_LR 1.25e-4 per 512 images, 4096 batch, 90 epochs)"
        ),
        **{**_SWIN_COMMON, "reference_batch_size": 4096},
        learning_rate=1e-3,
        warmup_learning_rate=1e-6,
        min_learning_rate=1e-5,
        batch_size=4096,
        epochs=90,
        warmup_epochs=5,
        drop_path_rates={
            "swin_tiny": 0.1,
            "swin_small": 0.2,
            "swin_base": 0.2,
            "swin_large": 0.2,
        },
        default_drop_path_rate=0.2,
        notes="ImageNet-22K pre-training.",
    ),
    "swin_in22k_ft_in1k": Recipe(
        name="swin_in22k_ft_in1k",
        source=(
            "official configs/swin/*_22kto1k_finetune.yaml (BASE_LR 2e-5, "
            "WARMUP_LR 2e-8, MIN_LR 2e-7 per 512 images, WEIGHT_DECAY 1e-8)"
        ),
        **{
            **_SWIN_COMMON,
            "weight_decay": 1e-8,
            "reference_batch_size": 512,
        },
        learning_rate=2e-5,
        warmup_learning_rate=2e-8,
        min_learning_rate=2e-7,
        batch_size=1024,
        epochs=30,
        warmup_epochs=5,
        drop_path_rates={"swin_tiny": 0.1},
        default_drop_path_rate=0.2,
        notes="Fine-tune an ImageNet-22K checkpoint on ImageNet-1K.",
    ),
    "vit_finetune": Recipe(
        name="vit_finetune",
        source=(
            "ViT paper (Dosovitskiy et al., 2021) App. B.1.1 and "
            "google-research/vision_transformer vit_jax/configs/common.py "
            "(SGD momentum 0.9, grad_norm_clip 1, 500 warm-up steps, cosine)"
        ),
        optimizer="sgd",
        momentum=0.9,
        learning_rate=0.03,
        reference_batch_size=None,
        warmup_learning_rate=0.0,
        min_learning_rate=0.0,
        batch_size=512,
        total_steps=20_000,
        warmup_steps=500,
        weight_decay=0.0,
        global_clipnorm=1.0,
        image_size=384,
        crop_area=(0.05, 1.0),
        horizontal_flip=True,
        eval_crop_pct=1.0,
        interpolation="bilinear",
        normalization="inception",
        zero_init_head=True,
        notes=(
            "Fine-tune a pre-trained ViT at 384 px on ImageNet-1K; the "
            "position embedding is resampled on load."
        ),
    ),
}
RECIPES["vit_finetune_cifar10"] = RECIPES["vit_finetune"].replace(
    name="vit_finetune_cifar10",
    learning_rate=0.01,
    total_steps=10_000,
    notes="ViT fine-tuning on CIFAR-10 (learning rate 0.01, 10k steps).",
)


def get_recipe(recipe: str | Recipe) -> Recipe:
    """Looks a recipe up by name (a `Recipe` is returned as is).

    Args:
        recipe: a key of `RECIPES` or a `Recipe`.

    Returns:
        The `Recipe`.

    Example:
        >>> get_recipe("swin_in1k").epochs
        300
    """
    if isinstance(recipe, Recipe):
        return recipe
    if recipe not in RECIPES:
        raise ValueError(
            f"Unknown recipe {recipe!r}; available: {sorted(RECIPES)}."
        )
    return RECIPES[recipe]


#: The official UperNet + Swin configurations on ADE20K (mmsegmentation).
SWIN_SEGMENTATION_CONFIG_URL = (
    "https://github.com/SwinTransformer/Swin-Transformer-Semantic-"
    "Segmentation/blob/main/configs/swin/"
    "upernet_swin_tiny_patch4_window7_512x512_160k_ade20k.py"
)

#: Parameters mmseg's `paramwise_cfg` keeps out of weight decay: every
#: parameter whose name contains one of these (substring match on the
#: full name, as mmcv's `custom_keys`). Biases and the heads' BatchNorm
#: (`bn`) are decayed, as in the official runs.
MMSEG_NO_DECAY_KEYS = (
    "absolute_pos_embed",
    "relative_position_bias_table",
    "norm",
)


@dataclass(frozen=True)
class SegmentationRecipe:
    """One semantic-segmentation training configuration (mmseg style).

    Iteration-based: `total_steps` optimizer steps of `batch_size` crops,
    AdamW, a linear warm-up that multiplies a poly decay (mmcv's
    `PolyLrUpdaterHook` with `warmup="linear"`, see
    `keras_swin.recipes.optim.PolyDecayWithWarmup`). Learning rates are
    not scaled with the batch (mmseg does not scale them).

    Attributes:
        name: key in `SEGMENTATION_RECIPES`.
        source: where the numbers come from.
        learning_rate: peak (base) learning rate.
        batch_size: global batch (images per step).
        total_steps: training length in optimizer steps.
        warmup_steps: linear warm-up length.
        warmup_ratio: the warm-up starts at `learning_rate * warmup_ratio`.
        poly_power: power of the poly decay.
        min_learning_rate: end of the poly decay.
        weight_decay: decoupled weight decay (AdamW).
        beta_1, beta_2, epsilon: AdamW moments (PyTorch's eps 1e-8).
        no_decay_keys: variables whose path contains one of these get no
            weight decay (`MMSEG_NO_DECAY_KEYS`).
        crop_size: (height, width) of the training crops.
        scale: (long side, short side) bound of the keep-ratio resize
            (mmseg's `img_scale`) before the random ratio.
        ratio_range: random factor on `scale`.
        cat_max_ratio: a crop is re-drawn (up to 10 times) while one class
            covers more than this share of it.
        flip_prob: horizontal-flip probability.
        photometric: mmseg's `PhotoMetricDistortion` on.
        auxiliary_loss_weight: weight of the auxiliary head's loss.
        ignore_index: label value left out of loss and metrics.
        num_classes: classes of the dataset.
        drop_path_rates: stochastic depth of the last block per variant.
        default_drop_path_rate: rate for variants not in the table.
        test_mode: "whole" or "slide" inference of the evaluation.
        notes: free text shown by `keras-swin train --list-recipes`.

    Example:
        >>> r = SEGMENTATION_RECIPES["upernet_swin_ade20k"]
        >>> r.learning_rate, r.total_steps, r.drop_path_rate("swin_tiny")
        (6e-05, 160000, 0.3)
    """

    name: str
    source: str
    learning_rate: float
    batch_size: int
    total_steps: int
    warmup_steps: int = 0
    warmup_ratio: float = 1e-6
    poly_power: float = 1.0
    min_learning_rate: float = 0.0
    weight_decay: float = 0.0
    beta_1: float = 0.9
    beta_2: float = 0.999
    epsilon: float = 1e-8
    no_decay_keys: tuple = MMSEG_NO_DECAY_KEYS
    crop_size: tuple = (512, 512)
    scale: tuple = (2048, 512)
    ratio_range: tuple = (0.5, 2.0)
    cat_max_ratio: float = 0.75
    flip_prob: float = 0.5
    photometric: bool = True
    auxiliary_loss_weight: float = 0.4
    ignore_index: int = 255
    num_classes: int = 150
    drop_path_rates: dict = field(default_factory=dict)
    default_drop_path_rate: float = 0.0
    test_mode: str = "whole"
    notes: str = ""

    def __post_init__(self):
        if self.total_steps < 1 or not 0 <= self.warmup_steps < (
            self.total_steps
        ):
            raise ValueError(
                f"SegmentationRecipe {self.name!r}: need total_steps >= 1 "
                f"and 0 <= warmup_steps < total_steps, got total_steps="
                f"{self.total_steps}, warmup_steps={self.warmup_steps}."
            )
        if self.test_mode not in ("whole", "slide"):
            raise ValueError(
                f"SegmentationRecipe {self.name!r}: test_mode must be "
                f"'whole' or 'slide', got {self.test_mode!r}."
            )

    def drop_path_rate(self, variant: str | None) -> float:
        """Stochastic depth of the last block for `variant`.

        Example:
            >>> SEGMENTATION_RECIPES["upernet_swin_ade20k"].drop_path_rate(
            ...     "swin_base")
            0.3
        """
        return self.drop_path_rates.get(variant, self.default_drop_path_rate)

    def replace(self, **changes) -> SegmentationRecipe:
        """A copy with some fields changed (validated again).

        Example:
            >>> SEGMENTATION_RECIPES["upernet_swin_ade20k"].replace(
            ...     total_steps=10, warmup_steps=2).total_steps
            10
        """
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise ValueError(
                f"Unknown segmentation recipe field(s) {sorted(unknown)}; "
                f"fields are {[f.name for f in dataclasses.fields(self)]}."
            )
        return dataclasses.replace(self, **changes)


SEGMENTATION_RECIPES: dict[str, SegmentationRecipe] = {
    "upernet_swin_ade20k": SegmentationRecipe(
        name="upernet_swin_ade20k",
        source=(
            "Swin paper (Liu et al., 2021) Sec. 4.3 and the official "
            "upernet_swin_{tiny,small,base}_patch4_window7_512x512_160k_"
            f"ade20k configs, {SWIN_SEGMENTATION_CONFIG_URL} (AdamW lr 6e-5, "
            "betas (0.9, 0.999), weight_decay 0.01, decay_mult 0 for "
            "absolute_pos_embed, relative_position_bias_table and norm; "
            "poly power 1.0, min_lr 0, linear warm-up 1500 iterations, "
            "warmup_ratio 1e-6; 2 images per GPU x 8 GPUs, 160k "
            "iterations; auxiliary FCN loss_weight 0.4; drop_path_rate 0.3)"
        ),
        learning_rate=6e-5,
        batch_size=16,
        total_steps=160_000,
        warmup_steps=1_500,
        warmup_ratio=1e-6,
        poly_power=1.0,
        min_learning_rate=0.0,
        weight_decay=0.01,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        crop_size=(512, 512),
        scale=(2048, 512),
        ratio_range=(0.5, 2.0),
        cat_max_ratio=0.75,
        flip_prob=0.5,
        photometric=True,
        auxiliary_loss_weight=0.4,
        ignore_index=255,
        num_classes=150,
        drop_path_rates={
            "swin_tiny": 0.3,
            "swin_small": 0.3,
            "swin_base": 0.3,
        },
        default_drop_path_rate=0.3,
        test_mode="whole",
        notes=(
            "UperNet + Swin on ADE20K (tfds:scene_parse150), 512x512 "
            "crops, from an ImageNet checkpoint (--weights)."
        ),
    ),
}


def get_segmentation_recipe(
    recipe: str | SegmentationRecipe,
) -> SegmentationRecipe:
    """Looks a segmentation recipe up by name (a recipe is returned as is).

    Args:
        recipe: a key of `SEGMENTATION_RECIPES` or a `SegmentationRecipe`.

    Returns:
        The `SegmentationRecipe`.

    Example:
        >>> get_segmentation_recipe("upernet_swin_ade20k").batch_size
        16
    """
    if isinstance(recipe, SegmentationRecipe):
        return recipe
    if recipe not in SEGMENTATION_RECIPES:
        raise ValueError(
            f"Unknown segmentation recipe {recipe!r}; available: "
            f"{sorted(SEGMENTATION_RECIPES)}."
        )
    return SEGMENTATION_RECIPES[recipe]
