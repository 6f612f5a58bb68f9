"""The model families as data: one entry per family, no switches.

A `Family` ties together what the floors below know about one kind of
model: its graph builder and variant table (`keras_swin.models`), the
source formats that hold its checkpoints (`weights_tools.formats`), what
its released checkpoints fix, how its release names are spelled. The
checkpoint key names of each source format live with that format's
`Converter` (its rename rules). Code above this floor (`pretrained`,
`loading`, `applications`, `cli`) looks a family up here instead of
testing `family == "swin"`.
Adding a family (dense backbones, UperNet, Swin V2) is one more entry
here plus its own builder and converter modules.

Example:
    >>> FAMILIES["swin"].application
    'SwinTransformer'
    >>> get_family("vit").variant_of(VIT_CONFIGS["vit_base_patch16"])
    'vit_base_patch16'
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from keras_swin.models import (
    swin,
    swin_backbone,
    swin_backbone_v2,
    swin_v2,
    upernet,
    vit,
)
from weights_tools.common import Converter
from weights_tools.formats import CONVERTERS


@dataclass(frozen=True)
class Family:
    """One model family.

    Attributes:
        name: the family name, as `Converter.family` and
            `WeightsSpec.family` spell it.
        builder: the graph builder (`keras_swin.models`).
        application: the public builder with `weights=`
            (`keras_swin.<application>`), for messages.
        configs: variant key -> architecture arguments (the papers'
            tables).
        variant_keys: the arguments that identify a variant.
        release_arguments: what the family's released checkpoints fix
            beyond their variant's arguments (compared before a
            download); input size and window are resampled instead.
        headless_pooling: `(builder arguments) -> pooling` of a model
            loaded with `classes=0` (the pooled features).
        release_name: `(variant, image size, window) -> arch`: the
            timm-style architecture name of a release.
        alias_sizes: further image sizes an alias ("imagenet") looks for
            when the model's own size has no release.
        checkpoint_arguments: `(family, stored config, input_shape=,
            classes=, classifier_activation=) -> (builder arguments,
            classes)`: how `load_checkpoint`'s arguments apply to a
            converted checkpoint's config (`classifier_arguments` for a
            classifier family, `backbone_arguments` for a backbone,
            `segmenter_arguments` for a segmenter).
        release_builder_arguments: `(family, spec, kwargs) -> builder
            arguments` of a registered release for `build_pretrained`,
            or None for
            a classifier's (`input_shape` at the release's size,
            `classes`, `window_size`, then `kwargs`).

    Example:
        >>> FAMILIES["swin"].release_name("swin_tiny", 224, 7)
        'swin_tiny_patch4_window7_224'
    """

    name: str
    builder: Callable
    application: str
    configs: dict
    variant_keys: tuple
    release_arguments: dict
    headless_pooling: Callable[[dict], str]
    release_name: Callable[[str, int, int | None], str]
    alias_sizes: tuple = ()
    checkpoint_arguments: Callable | None = None
    release_builder_arguments: Callable | None = None

    @property
    def converters(self) -> tuple[Converter, ...]:
        """The source formats of this family's checkpoints."""
        return tuple(c for c in CONVERTERS if c.family == self.name)

    def variant_of(self, config: dict) -> str | None:
        """The variant whose identifying arguments `config` has, or None.

        Args:
            config: builder arguments (at least `variant_keys`).

        Example:
            >>> FAMILIES["swin"].variant_of(dict(embed_dim=96,
            ...     depths=(2, 2, 6, 2), num_heads=(3, 6, 12, 24)))
            'swin_tiny'
        """
        for key, values in self.configs.items():
            if all(
                k in config
                and tuple(np.ravel(values[k])) == tuple(np.ravel(config[k]))
                for k in self.variant_keys
            ):
                return key
        return None


def classifier_arguments(
    family: Family,
    config: dict,
    *,
    input_shape=None,
    classes: int | None = None,
    classifier_activation=None,
) -> tuple[dict, int]:
    """Builder arguments of a classifier family's checkpoint.

    Args:
        family: the family (its `headless_pooling`).
        config: the checkpoint's builder arguments, with its `classes`
            and `input_shape`.
        input_shape: the shape to build for; default the checkpoint's.
        classes: the head's classes; default the checkpoint's; 0 gives a
            headless model that outputs the pooled features.
        classifier_activation: the head's activation.

    Returns:
        (builder arguments, classes).

    Example:
        >>> kwargs, classes = classifier_arguments(FAMILIES["swin"],
        ...     dict(embed_dim=96, classes=1000, input_shape=(224, 224, 3)),
        ...     classes=0)
        >>> kwargs["pooling"], classes
        ('avg', 0)
    """
    config = dict(config)
    stored_classes = config.pop("classes")
    stored_shape = config.pop("input_shape")
    classes = stored_classes if classes is None else classes
    if not isinstance(classes, int) or classes < 0:
        raise ValueError(f"classes must be an int >= 0, got {classes!r}.")
    include_top = classes > 0
    config.update(
        include_top=include_top,
        input_shape=stored_shape if input_shape is None else input_shape,
        classes=classes if include_top else 1000,
        classifier_activation=classifier_activation,
        pooling=None if include_top else family.headless_pooling(config),
    )
    return config, classes


def backbone_arguments(
    family: Family,
    config: dict,
    *,
    input_shape=None,
    classes: int | None = None,
    classifier_activation=None,
) -> tuple[dict, int]:
    """Builder arguments of a backbone family's checkpoint (no head).

    Args:
        family: the family.
        config: the checkpoint's builder arguments (`input_shape` is
            (None, None, C) for a dense checkpoint).
        input_shape: the shape to build for; default the checkpoint's.
        classes: None or 0 (a backbone has no head).
        classifier_activation: None (a backbone has no head).

    Returns:
        (builder arguments, 0).

    Raises:
        ValueError: `classes` or `classifier_activation` given.

    Example:
        >>> kwargs, _ = backbone_arguments(FAMILIES["swin_backbone"],
        ...     dict(embed_dim=96, classes=0, input_shape=(None, None, 3)),
        ...     input_shape=(512, 512, 3))
        >>> kwargs["image_shape"]
        (512, 512, 3)
    """
    if classes or classifier_activation is not None:
        raise ValueError(
            f"A {family.name} checkpoint builds a backbone without a "
            f"classifier head; classes={classes!r} and "
            f"classifier_activation={classifier_activation!r} do not apply "
            "(put a task head on its outputs, or load a classification "
            "checkpoint with keras_swin.load_checkpoint)."
        )
    config = dict(config)
    config.pop("classes", None)
    stored_shape = config.pop("input_shape", (None, None, 3))
    config["image_shape"] = tuple(
        stored_shape if input_shape is None else input_shape
    )
    return config, 0


def segmenter_arguments(
    family: Family,
    config: dict,
    *,
    input_shape=None,
    classes: int | None = None,
    classifier_activation=None,
) -> tuple[dict, int]:
    """Builder arguments of a segmenter family's checkpoint.

    The checkpoint's `classes` and `input_shape` become the builder's
    `num_classes` and `image_shape`. Another class count keeps
    everything but the two classifiers (`decode_head/conv_seg`,
    `auxiliary_head/conv_seg`), which keep the new model's
    initialisation (`weights_tools.convert.fit_checkpoint`, with a
    `HeadWarning` naming the dropped tensors).

    Args:
        family: the family.
        config: the checkpoint's builder arguments (`input_shape` is
            (None, None, C): a segmenter takes any size).
        input_shape: the shape to build for; default the checkpoint's.
        classes: the classes of both heads; default the checkpoint's.
            A `num_classes` override means the same.
        classifier_activation: None (a segmenter outputs logits).

    Returns:
        (builder arguments, classes).

    Raises:
        ValueError: `classes` not a positive int (a segmenter has no
            headless form: `keras_swin.applications.load_backbone` gives
            its backbone), differing `classes` and `num_classes`, or a
            `classifier_activation`.

    Example:
        >>> kwargs, classes = segmenter_arguments(FAMILIES["swin_upernet"],
        ...     dict(embed_dim=96, classes=150, input_shape=(None, None, 3)),
        ...     classes=19)
        >>> kwargs["num_classes"], kwargs["image_shape"]
        (19, (None, None, 3))
    """
    if classifier_activation is not None:
        raise ValueError(
            f"A {family.name} checkpoint builds a segmenter whose outputs "
            "are logits; classifier_activation="
            f"{classifier_activation!r} does not apply (apply a softmax to "
            'its "logits" yourself).'
        )
    config = dict(config)
    stored_classes = config.pop("classes")
    stored_shape = config.pop("input_shape", (None, None, 3))
    named = config.pop("num_classes", None)
    if named is not None and classes is not None and named != classes:
        raise ValueError(
            f"classes={classes!r} and num_classes={named!r} disagree; pass "
            "one of them."
        )
    if classes is None:
        classes = stored_classes if named is None else named
    if type(classes) is not int or classes < 1:
        raise ValueError(
            f"A {family.name} segmenter needs classes >= 1, got "
            f"{classes!r}; for its backbone alone use "
            "keras_swin.applications.load_backbone."
        )
    config["num_classes"] = classes
    config["image_shape"] = tuple(
        stored_shape if input_shape is None else input_shape
    )
    return config, classes


def _swin_release(variant: str, size: int, window) -> str:
    return f"{variant}_patch4_window{window}_{size}"


def _vit_release(variant: str, size: int, window) -> str:
    return f"{variant}_{size}"


def _upernet_release(variant: str, size: int, window) -> str:
    return f"upernet_{variant}_patch4_window{window}_{size}"


#: What a segmenter release fixes beyond the backbone variant: the
#: released heads (`UPERNET_CONFIGS` without the class count and window,
#: which a load may change).
UPERNET_RELEASE_CONFIGS = {
    variant: {
        k: v
        for k, v in config.items()
        if k not in ("num_classes", "window_size")
    }
    for variant, config in upernet.UPERNET_CONFIGS.items()
}


def _segmenter_release(family: Family, spec, kwargs: dict) -> dict:
    """`swin_upernet` arguments of a release, for any input size.

    `input_shape` and `classes` in `kwargs` mean the builder's
    `image_shape` and `num_classes`.
    """
    kwargs = dict(kwargs)
    if "input_shape" in kwargs:
        kwargs["image_shape"] = tuple(kwargs.pop("input_shape"))
    if "classes" in kwargs:
        kwargs["num_classes"] = kwargs.pop("classes")
    arguments = dict(
        family.configs[spec.variant],
        window_size=spec.window_size,
        num_classes=spec.classes,
        image_shape=(None, None, 3),
    )
    arguments.update(kwargs)
    return arguments


def _vit_pooling(config: dict) -> str:
    return "avg" if config.get("classifier") == "gap" else "token"


FAMILIES: dict[str, Family] = {
    family.name: family
    for family in (
        Family(
            name="swin",
            builder=swin.SwinTransformer,
            application="SwinTransformer",
            configs=swin.SWIN_CONFIGS,
            variant_keys=("embed_dim", "depths", "num_heads"),
            release_arguments=dict(patch_size=4),
            headless_pooling=lambda config: "avg",
            release_name=_swin_release,
            checkpoint_arguments=classifier_arguments,
        ),
        Family(
            name="swin_v2",
            builder=swin_v2.SwinTransformerV2,
            application="SwinTransformerV2",
            configs=swin_v2.SWINV2_CONFIGS,
            variant_keys=("embed_dim", "depths", "num_heads"),
            release_arguments=dict(patch_size=4),
            headless_pooling=lambda config: "avg",
            release_name=_swin_release,
            checkpoint_arguments=classifier_arguments,
        ),
        Family(
            name="swin_backbone",
            builder=swin_backbone.SwinBackbone,
            application="SwinBackbone",
            configs=swin.SWIN_CONFIGS,
            variant_keys=("embed_dim", "depths", "num_heads"),
            release_arguments=dict(patch_size=4),
            headless_pooling=lambda config: None,
            release_name=_swin_release,
            checkpoint_arguments=backbone_arguments,
        ),
        Family(
            name="swin_v2_backbone",
            builder=swin_backbone_v2.SwinBackboneV2,
            application="SwinBackboneV2",
            configs=swin_v2.SWINV2_CONFIGS,
            variant_keys=("embed_dim", "depths", "num_heads"),
            release_arguments=dict(patch_size=4),
            headless_pooling=lambda config: None,
            release_name=_swin_release,
            checkpoint_arguments=backbone_arguments,
        ),
        Family(
            name="vit",
            builder=vit.VisionTransformer,
            application="VisionTransformer",
            configs=vit.VIT_CONFIGS,
            variant_keys=(
                "patch_size",
                "hidden_size",
                "num_layers",
                "num_heads",
                "mlp_dim",
            ),
            release_arguments=dict(
                classifier="token",
                class_token=True,
                num_register_tokens=0,
                position_embedding_on_prefix=True,
            ),
            headless_pooling=_vit_pooling,
            release_name=_vit_release,
            alias_sizes=(384,),
            checkpoint_arguments=classifier_arguments,
        ),
        Family(
            name="swin_upernet",
            builder=upernet.swin_upernet,
            application="SwinUperNet",
            configs=UPERNET_RELEASE_CONFIGS,
            variant_keys=("embed_dim", "depths", "num_heads"),
            release_arguments=dict(patch_size=4),
            headless_pooling=lambda config: None,
            release_name=_upernet_release,
            checkpoint_arguments=segmenter_arguments,
            release_builder_arguments=_segmenter_release,
        ),
    )
}


def get_family(name: str) -> Family:
    """The `Family` called `name`.

    Raises:
        ValueError: an unknown name; the message lists the known ones.

    Example:
        >>> get_family("swin").builder.__name__
        'SwinTransformer'
    """
    if name not in FAMILIES:
        raise ValueError(
            f"Unknown model family {name!r}; known: {sorted(FAMILIES)}."
        )
    return FAMILIES[name]
