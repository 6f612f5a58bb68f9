"""Hugging Face `SwinBackbone` and `UperNetForSemanticSegmentation` folders.

Format `"hf_swin_backbone"`, family `"swin_backbone"`. Two kinds of
`save_pretrained` folder hold a dense Swin backbone:

* `SwinBackbone` (`config.json`: `model_type` "swin", `architectures`
  ["SwinBackbone"]): `embeddings.*`, `encoder.layers.{i}.blocks.{j}.*`,
  `encoder.layers.{i}.downsample.*` (transformers-5 in-memory names add
  `swin.` and use `q_proj`/`mlp.fc1`, ...), one LayerNorm per output
  `hidden_states_norms.stage{k}` (k = i + 1: HF's stage1 is stage 0
  here, stored as `norm{i}`), and transformers 5's `swin.layernorm`,
  the classification model's final norm, which `SwinBackbone` keeps but
  never applies;
* `UperNetForSemanticSegmentation` (`model_type` "upernet" with a swin
  `backbone_config`): the same under `backbone.`, beside `decode_head.*`
  and `auxiliary_head.*`.

The block keys are renamed by `hf_format`'s Swin tables (both key
schemes), the norms to `norm{i}`. `swin.layernorm` and the UperNet heads
are not converted: listed in the notes and `Converted.ignored`.
`SwinBackbone` runs with `always_partition=True` (the window is never
clamped), so the configuration is the dense code's: `window_mode="pad"`,
`input_shape=(None, None, C)`, `classes=0`, `out_indices` from the
config's `out_features` / `out_indices` (checked against the norms
present), LayerNorm epsilon from `layer_norm_eps`.
"""

from __future__ import annotations

import re

import numpy as np

from weights_tools import dense_swin, hf_format, official_swin
from weights_tools.common import (
    ConversionError,
    Converted,
    Converter,
    apply_rules,
    check_config,
    check_model_config,
)

FORMAT = "hf_swin_backbone"

_NORM = re.compile(r"hidden_states_norms\.([^.]+)\.(weight|bias)")
_FINAL_NORM = re.compile(r"(?:swin\.)?layernorm\.(weight|bias)")
_STAGE = re.compile(r"stage([1-9]\d*)")


def _model_type(meta) -> str | None:
    return meta.get("model_type") if isinstance(meta, dict) else None


def swin_config(meta) -> dict | None:
    """The Swin part of a `config.json`: itself, or UperNet's backbone.

    Example:
        >>> swin_config({"model_type": "upernet",
        ...              "backbone_config": {"model_type": "swin"}})
        {'model_type': 'swin'}
    """
    if _model_type(meta) == "upernet":
        backbone = meta.get("backbone_config")
        if isinstance(backbone, dict) and backbone.get("model_type") == "swin":
            return backbone
        return None
    return meta if _model_type(meta) == "swin" else None


def matches(tensors: dict[str, np.ndarray], meta=None) -> bool:
    """Whether this is an HF `SwinBackbone` or Swin UperNet checkpoint.

    Example:
        >>> matches(tensors, {"model_type": "swin",
        ...                   "architectures": ["SwinBackbone"]})
        True
    """
    if _model_type(meta) == "upernet":
        return swin_config(meta) is not None
    if _model_type(meta) == "swin":
        architectures = meta.get("architectures") or ()
        return "SwinBackbone" in architectures or any(
            "hidden_states_norms." in k for k in tensors
        )
    if meta is not None:
        return False
    return any(
        _NORM.fullmatch(k.removeprefix("backbone.")) for k in tensors
    ) and any(".encoder.layers." in f".{k}" for k in tensors)


def _parts(tensors: dict[str, np.ndarray]):
    """(swin tensors, norms: official name -> array, norm origin, others
    with reasons: list of (dict, what, why))."""
    if any(k.startswith("backbone.") for k in tensors):
        backbone, origin, heads = dense_swin.split_backbone(
            tensors, "backbone."
        )
    else:
        backbone, origin, heads = dict(tensors), {k: k for k in tensors}, {}
    swin, norms, norm_origin, final = {}, {}, {}, {}
    for key, array in backbone.items():
        match = _NORM.fullmatch(key)
        if match:
            stage = _STAGE.fullmatch(match[1])
            if stage is None:
                raise ConversionError(
                    f"{origin[key]}: a norm of the output {match[1]!r}; "
                    "only stage1, stage2, ... outputs are supported (the "
                    "stem is not an output of this backbone)."
                )
            name = f"norm{int(stage[1]) - 1}.{match[2]}"
            norms[name], norm_origin[name] = array, origin[key]
        elif _FINAL_NORM.fullmatch(key):
            final[origin[key]] = array
        else:
            swin[key] = array
    return swin, origin, norms, norm_origin, final, heads


def _config_out_indices(meta, stages: int) -> tuple | None:
    """Our out_indices (HF stage k -> k - 1) from the config, or None."""
    config = swin_config(meta) or {}
    features = config.get("out_features")
    indices = config.get("out_indices")
    if features is not None:
        if not isinstance(features, list) or not all(
            isinstance(f, str) for f in features
        ):
            raise ConversionError(
                f"config.json: out_features={features!r} is not a list "
                "of stage names."
            )
        out = []
        for name in features:
            match = _STAGE.fullmatch(name)
            if match is None or int(match[1]) > stages:
                raise ConversionError(
                    f"config.json: out_features names {name!r}; expected "
                    f"stage1..stage{stages} (the stem is not an output "
                    "of this backbone)."
                )
            out.append(int(match[1]) - 1)
        return tuple(sorted(out))
    if indices is not None:
        if not isinstance(indices, list) or not all(
            type(i) is int and 1 <= i <= stages for i in indices
        ):
            raise ConversionError(
                f"config.json: out_indices={indices!r}; expected HF stage "
                f"indices in 1..{stages} (0 is the stem, not an output "
                "of this backbone)."
            )
        return tuple(sorted(i - 1 for i in indices))
    return None


def infer_config(tensors: dict[str, np.ndarray], meta=None, overrides=None):
    """`SwinBackbone` arguments of an HF SwinBackbone / UperNet folder.

    The architecture comes from the tensors and `config.json` as for an
    HF Swin classifier (`hf_format.infer_swin_config`); `out_indices`
    from the config's `out_features` (or `out_indices`; HF's stage1 is
    index 0 here), which must name exactly the stages with a
    `hidden_states_norms` entry.

    Args:
        tensors: the folder's tensors.
        meta: its `config.json` (a SwinConfig or a UperNetConfig), or
            None (out_indices then from the norms present).

    Returns:
        dict of `SwinBackbone` keyword arguments, with `classes` 0 and
        `input_shape` (None, None, C).

    Raises:
        ConversionError: the config and the norms disagree, a stem
            output, absolute position embeddings, or a table that is not
            at the configured window.

    Example:
        >>> infer_config(tensors, json.load(open("config.json")))[
        ...     "out_indices"]
        (0, 1, 2, 3)
    """
    swin_meta = swin_config(meta)
    if _model_type(meta) == "upernet":
        if swin_meta is None:
            raise ConversionError(
                "config.json is a UperNet whose backbone_config is not a "
                "Swin (model_type 'swin')."
            )
        check_config(
            swin_meta, hf_format.CONFIG_CHECKS, "config.json backbone_config"
        )
    swin, _, norms, _, _, _ = _parts(tensors)
    config = hf_format.infer_swin_config(swin, swin_meta, overrides)
    named, _ = hf_format.swin_official_names(swin)
    _, _, windows = official_swin.stage_layout(named)
    window = dense_swin.check_full_windows(windows)
    stages = len(config["depths"])
    present = dense_swin.output_indices(norms, stages)
    stated = _config_out_indices(meta, stages)
    if stated is not None and stated != present:
        raise ConversionError(
            f"config.json names the outputs {list(stated)} (stage i is HF's "
            f"stage{{i + 1}}), but the checkpoint has hidden_states_norms "
            f"for {list(present)}."
        )
    config = dense_swin.backbone_config(config, present, window)
    return check_model_config(config)


def convert(tensors: dict[str, np.ndarray], meta=None) -> Converted:
    """HF SwinBackbone / UperNet tensors -> `SwinBackbone` weight paths.

    Every backbone tensor is used; `swin.layernorm` (never applied by
    `SwinBackbone`) and UperNet's `decode_head` / `auxiliary_head` are
    listed in the notes and in `Converted.ignored`.

    Raises:
        ConversionError: a backbone key that no rule accepts, naming it.

    Example:
        >>> convert(tensors).weights["norm0/gamma"].shape
        (96,)
    """
    swin, origin, norms, norm_origin, final, heads = _parts(tensors)
    named, hf_origin = hf_format.swin_official_names(swin)
    depths, _, _ = official_swin.stage_layout(named)
    dense_swin.output_indices(norms, len(depths))
    if "absolute_pos_embed" in named:
        raise ConversionError(
            "Hugging Face Swin with use_absolute_embeddings=True is not "
            "supported: its position_embeddings has one row more than the "
            "patch grid and no released checkpoint uses it."
        )
    named.update(norms)
    full_origin = {
        k: " + ".join(origin[part] for part in v.split(" + "))
        for k, v in hf_origin.items()
    }
    full_origin.update(norm_origin)
    converted = apply_rules(
        named, dense_swin.RULES, skip=official_swin.checked_buffers(named)
    )
    converted = hf_format.restore_sources(converted, full_origin)
    if converted.unmatched:
        stray = ", ".join(
            f"{k} {list(shape)}" for k, shape in converted.unmatched.items()
        )
        raise ConversionError(
            f"The backbone has tensors a Swin backbone does not have: {stray}."
        )
    dense_swin.note_ignored(
        converted,
        final,
        "the backbone",
        "the classification model's final LayerNorm, which SwinBackbone "
        "keeps but never applies to its outputs",
    )
    dense_swin.note_ignored(
        converted,
        heads,
        "the UperNet outside its backbone",
        "a backbone has no use for them",
    )
    return converted


#: `save_pretrained` folders of `SwinBackbone` and of
#: `UperNetForSemanticSegmentation` with a Swin backbone.
CONVERTER = Converter(
    name=FORMAT,
    family=dense_swin.FAMILY,
    matches=matches,
    infer=infer_config,
    convert=convert,
)
