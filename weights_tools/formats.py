"""Every source format `weights_tools` reads, in detection order.

Each format module declares its `Converter` (`weights_tools.common`):
`official_swin.CONVERTER`, `official_vit.CONVERTER`,
`timm_format.SWIN_CONVERTER` / `VIT_CONVERTER` and
`hf_format.SWIN_CONVERTER` / `VIT_CONVERTER`, and for dense backbones
(family `swin_backbone`) `dense_swin.CONVERTER` (`official_swin_dense`)
and `hf_backbone.CONVERTER` (`hf_swin_backbone`), and for Swin + UperNet
segmenters (family `swin_upernet`) `mmseg_upernet.CONVERTER`
(`official_swin_upernet`) and `hf_upernet.CONVERTER` (`hf_swin_upernet`),
and for Swin V2 (family `swin_v2`) `official_swinv2.CONVERTER`,
`timm_swinv2.CONVERTER` and `hf_swinv2.CONVERTER`.
This module lists them once;
the format names (`format=`, `--format`) and the detection derive from
the list. Nothing here imports Keras.
"""

from __future__ import annotations

import numpy as np

from weights_tools import (
    dense_swin,
    hf_backbone,
    hf_format,
    hf_swinv2,
    hf_upernet,
    mmseg_upernet,
    official_swin,
    official_swinv2,
    official_vit,
    timm_format,
    timm_swinv2,
)
from weights_tools.common import ConversionError, Converter

#: The converters, in detection order: the first whose `matches` accepts
#: a checkpoint names its format. Hugging Face folders come first (their
#: `config.json` decides; a UperNet folder is the whole segmenter, read
#: before it would be read as a SwinBackbone, which comes before a Swin
#: classifier), then the official segmenters (a UPerHead beside the
#: dense backbone) before the other dense detection / segmentation
#: checkpoints (`backbone.*`, `norm{i}`), timm Swin before the official
#: Swin layout it resembles, and timm ViT before Google's `.npz`. A
#: format forced by name (`format="hf_swin_backbone"`) still reads a
#: UperNet as its backbone alone.
CONVERTERS: tuple[Converter, ...] = (
    hf_upernet.CONVERTER,
    hf_backbone.CONVERTER,
    hf_swinv2.CONVERTER,
    hf_format.SWIN_CONVERTER,
    hf_format.VIT_CONVERTER,
    mmseg_upernet.CONVERTER,
    dense_swin.CONVERTER,
    timm_format.SWIN_CONVERTER,
    official_swin.CONVERTER,
    timm_swinv2.CONVERTER,
    official_swinv2.CONVERTER,
    timm_format.VIT_CONVERTER,
    official_vit.CONVERTER,
)

#: Format name -> `Converter`.
FORMATS: dict[str, Converter] = {c.name: c for c in CONVERTERS}

#: The names `format=` and `--format` accept.
FORMAT_NAMES: tuple[str, ...] = tuple(FORMATS)


def detect_format(tensors: dict[str, np.ndarray], source: str = "", meta=None):
    """Names the layout of a checkpoint's tensors.

    Args:
        tensors: checkpoint key -> array.
        source: file name for the error message.
        meta: the `config.json` beside the file (HF or timm), or None.

    Returns:
        One of `FORMAT_NAMES`.

    Raises:
        ConversionError: no known layout matches; the message names the
            known ones and the file's first keys.

    Example:
        >>> detect_format(read_checkpoint("swin_tiny.pth"))
        'official_swin'
    """
    for converter in CONVERTERS:
        if converter.matches(tensors, meta):
            return converter.name
    sample = ", ".join(sorted(tensors)[:6])
    raise ConversionError(
        f"{source or 'The checkpoint'} is in no known layout (known: "
        f"{', '.join(FORMAT_NAMES)}). Its first keys: {sample}."
    )


def get_converter(name: str) -> Converter:
    """The `Converter` of a format name.

    Raises:
        ValueError: an unknown name; the message lists the known ones.

    Example:
        >>> get_converter("timm_vit").position_resampling
        'bicubic_antialias'
    """
    if name not in FORMATS:
        raise ValueError(
            f"format must be one of {sorted(FORMATS)}, got {name!r}."
        )
    return FORMATS[name]
