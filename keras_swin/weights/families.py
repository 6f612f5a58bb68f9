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

from keras_swin.models import swin, vit
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


def _swin_release(variant: str, size: int, window) -> str:
    return f"{variant}_patch4_window{window}_{size}"


def _vit_release(variant: str, size: int, window) -> str:
    return f"{variant}_{size}"


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
