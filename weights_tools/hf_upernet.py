"""Hugging Face `UperNetForSemanticSegmentation` folders, Swin backbone.

Format `"hf_swin_upernet"`, family `"swin_upernet"`: the whole
segmenter. A `save_pretrained` folder (`config.json`: `model_type`
"upernet" with a swin `backbone_config`) holds

* `backbone.*`: a `SwinBackbone`, converted by `weights_tools.
  hf_backbone` (its `swin.layernorm`, the classification model's final
  norm that `SwinBackbone` never applies, is noted and left out);
* `decode_head.*` and `auxiliary_head.*`: mmsegmentation's heads as
  Hugging Face renamed them from the official checkpoints
  (`batch_norm` for mmcv's `bn`, `classifier` for `conv_seg`), renamed
  back here and converted and checked by `weights_tools.mmseg_upernet`,
  so both sources give the same arrays.

The architecture: the backbone's as `hf_backbone.infer_config`; from the
heads `classes`, `channels`, `auxiliary_channels`,
`auxiliary_num_convs`, `auxiliary_concat_input`; `auxiliary_in_index`
is 2 (Hugging Face's fixed choice); `pool_scales` from `config.json`
(the tensors give only their count), else (1, 2, 3, 6) for four
modules, with a note. Every value `config.json` states is checked
against the tensors. `hf_backbone` still reads such a folder as a
backbone alone (`format="hf_swin_backbone"`, `load_backbone`).
"""

from __future__ import annotations

import re

import numpy as np

from weights_tools import hf_backbone, mmseg_upernet
from weights_tools.common import (
    ConversionError,
    Converted,
    Converter,
    check_int,
)

FORMAT = "hf_swin_upernet"
#: The backbone output Hugging Face's auxiliary head reads, always.
AUXILIARY_IN_INDEX = 2

_HEAD_NAMES = (
    (r"^(decode_head|auxiliary_head)\.classifier\.", r"\1.conv_seg."),
    (r"\.batch_norm\.", ".bn."),
)
_MMSEG_NAMES = (
    (r"^(decode_head|auxiliary_head)\.conv_seg\.", r"\1.classifier."),
    (r"\.bn\.", ".batch_norm."),
)


def hf_name(key: str) -> str:
    """The Hugging Face name of an mmseg head key (for messages).

    Example:
        >>> hf_name("decode_head.bottleneck.bn.running_var")
        'decode_head.bottleneck.batch_norm.running_var'
    """
    for pattern, target in _MMSEG_NAMES:
        key = re.sub(pattern, target, key)
    return key


def _model_type(meta) -> str | None:
    return meta.get("model_type") if isinstance(meta, dict) else None


def matches(tensors: dict[str, np.ndarray], meta=None) -> bool:
    """Whether this is a Hugging Face Swin UperNet checkpoint.

    With a `config.json`: a "upernet" whose backbone is a Swin. Without
    one: a `SwinBackbone` under `backbone.` (its `hidden_states_norms`)
    beside a UperNet decode head.

    Example:
        >>> matches(tensors, {"model_type": "upernet",
        ...                   "backbone_config": {"model_type": "swin"}})
        True
    """
    if _model_type(meta) == "upernet":
        return hf_backbone.swin_config(meta) is not None
    if meta is not None:
        return False
    return any(
        k.startswith("backbone.hidden_states_norms.") for k in tensors
    ) and any(
        k.startswith(("decode_head.lateral_convs.", "decode_head.fpn_bottl"))
        for k in tensors
    )


def _split(tensors: dict[str, np.ndarray]):
    """(backbone tensors, heads under mmseg names, mmseg -> HF name)."""
    backbone, heads, origin, others = {}, {}, {}, []
    for key, array in tensors.items():
        if key.startswith("backbone."):
            backbone[key] = array
        elif key.startswith(("decode_head.", "auxiliary_head.")):
            name = key
            for pattern, target in _HEAD_NAMES:
                name = re.sub(pattern, target, name)
            heads[name], origin[name] = array, key
        else:
            others.append(key)
    if others:
        stray = ", ".join(
            f"{k} {list(np.shape(tensors[k]))}" for k in sorted(others)[:8]
        )
        raise ConversionError(
            "A Hugging Face Swin UperNet has only backbone.*, decode_head.* "
            f"and auxiliary_head.* tensors; this one also has {stray}."
        )
    return backbone, heads, origin


def _stated(meta, key: str):
    return meta.get(key) if isinstance(meta, dict) else None


def _check_stated(meta, layout: dict) -> None:
    """config.json's head sizes against what the tensors say."""
    auxiliary = layout["auxiliary_channels"] is not None
    use = _stated(meta, "use_auxiliary_head")
    if use is not None and bool(use) != auxiliary:
        have = "has" if auxiliary else "has no"
        raise ConversionError(
            f"config.json: use_auxiliary_head={use!r}, but the checkpoint "
            f"{have} auxiliary_head.* tensors."
        )
    pairs = [("hidden_size", layout["channels"], "decode_head.classifier")]
    if auxiliary:
        pairs += [
            (
                "auxiliary_channels",
                layout["auxiliary_channels"],
                "auxiliary_head.classifier",
            ),
            (
                "auxiliary_num_convs",
                layout["auxiliary_num_convs"],
                "auxiliary_head.convs.*",
            ),
        ]
    for key, found, tensor in pairs:
        value = _stated(meta, key)
        if value is not None and (check_int(value, key, "width") != found):
            raise ConversionError(
                f"config.json: {key}={value}, but {tensor} implies {found}."
            )
    concat = _stated(meta, "auxiliary_concat_input")
    if (
        auxiliary
        and concat is not None
        and (bool(concat) != layout["auxiliary_concat_input"])
    ):
        raise ConversionError(
            f"config.json: auxiliary_concat_input={concat!r}, but "
            "auxiliary_head.conv_cat.* is "
            + ("present." if layout["auxiliary_concat_input"] else "absent.")
        )
    labels = _stated(meta, "id2label")
    if (
        isinstance(labels, dict)
        and labels
        and (len(labels) != layout["classes"])
    ):
        raise ConversionError(
            f"config.json: id2label names {len(labels)} classes, but "
            f"decode_head.classifier.weight has {layout['classes']} rows."
        )


def _layout(tensors, meta, overrides=None):
    backbone, heads, origin = _split(tensors)
    config = hf_backbone.infer_config(backbone, meta, overrides)
    layout = mmseg_upernet.head_layout(
        heads,
        mmseg_upernet.output_widths(config),
        hf_name,
        auxiliary_in_index=AUXILIARY_IN_INDEX
        if any(k.startswith("auxiliary_head.") for k in heads)
        else None,
    )
    _check_stated(meta, layout)
    return backbone, heads, origin, config, layout


def _pool_scales(meta, overrides, count: int) -> tuple | None:
    """Stated pool scales (override, then config.json), or None."""
    for value, source in (
        ((overrides or {}).get("pool_scales"), "pool_scales="),
        (_stated(meta, "pool_scales"), "config.json"),
    ):
        if value is not None:
            if not isinstance(value, list | tuple):
                raise ConversionError(
                    f"{source}: pool_scales={value!r} is not a list of sizes."
                )
            return mmseg_upernet.check_pool_scales(value, count, source)
    return None


def infer_config(tensors: dict[str, np.ndarray], meta=None, overrides=None):
    """`swin_upernet` arguments of an HF Swin UperNet folder.

    Args:
        tensors: the folder's tensors.
        meta: its `config.json`, or None (a weights file alone).
        overrides: values the caller passes; `pool_scales` wins over
            the config's.

    Returns:
        The backbone's arguments (`hf_backbone.infer_config`) with
        `classes`, `channels`, `pool_scales`, `auxiliary_channels` and,
        with an auxiliary head, `auxiliary_num_convs`,
        `auxiliary_concat_input`, `auxiliary_in_index` (2).

    Raises:
        ConversionError: a head tensor missing, unknown or of a wrong
            shape; a config value the tensors contradict; pool scales
            that cannot be known.

    Example:
        >>> infer_config(tensors, json.load(open("config.json")))[
        ...     "pool_scales"]
        (1, 2, 3, 6)
    """
    _, _, _, config, layout = _layout(tensors, meta, overrides)
    count = layout["pool_scale_count"]
    scales = _pool_scales(meta, overrides, count)
    if scales is None:
        if count != len(mmseg_upernet.DEFAULT_POOL_SCALES):
            raise ConversionError(
                f"The checkpoint has {count} pyramid pooling modules and no "
                "config.json states their scales: pass pool_scales=(...) "
                f"with {count} sizes."
            )
        scales = mmseg_upernet.DEFAULT_POOL_SCALES
    return mmseg_upernet.segmenter_config(config, layout, scales)


def convert(tensors: dict[str, np.ndarray], meta=None) -> Converted:
    """HF Swin UperNet tensors -> `swin_upernet` weight paths, strictly.

    Every tensor is used, but `backbone.swin.layernorm.*` (never
    applied) and the BatchNorm counters, both noted and kept in
    `Converted.ignored`.

    Raises:
        ConversionError: a tensor missing, unknown or of a wrong shape,
            named as in the file.

    Example:
        >>> convert(tensors).weights["decode_head/conv_seg/bias"].shape
        (150,)
    """
    backbone, heads, origin, _, layout = _layout(tensors, meta)
    converted = mmseg_upernet.merge(
        hf_backbone.convert(backbone, meta),
        mmseg_upernet.convert_heads(heads, origin),
    )
    if _stated(meta, "pool_scales") is None and (
        layout["pool_scale_count"] == len(mmseg_upernet.DEFAULT_POOL_SCALES)
    ):
        converted.notes.append(
            "No config.json states the pool scales; the 4 pyramid pooling "
            "modules are taken as (1, 2, 3, 6), Hugging Face's and "
            "UPerHead's default. Pass pool_scales=... if they differ."
        )
    return converted


#: `save_pretrained` folders of `UperNetForSemanticSegmentation` with a
#: Swin backbone.
CONVERTER = Converter(
    name=FORMAT,
    family=mmseg_upernet.FAMILY,
    matches=matches,
    infer=infer_config,
    convert=convert,
    preprocessing=mmseg_upernet.PREPROCESSING,
)
