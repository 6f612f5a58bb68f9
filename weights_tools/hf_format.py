"""Hugging Face `transformers` Swin and ViT checkpoints.

A `save_pretrained` folder holds `config.json` and `model.safetensors` or
`pytorch_model.bin` (possibly sharded, with an `*.index.json`). Two key
schemes exist (see the golden `hf/FORMAT.md`):

* legacy / Hub names, written by transformers 4.x and, by default, by
  transformers 5 (`attention.self.query`, `intermediate.dense`, ViT
  `encoder.layer.{i}`), Swin 4.x files also carrying int64
  `relative_position_index` buffers;
* transformers-5 in-memory names (`attention.q_proj`, `mlp.fc1`, ViT
  `layers.{i}`), written with `save_original_format=False`.

Both are accepted, with or without the `swin.` / `vit.` prefix (base
`SwinModel` / `ViTModel` checkpoints have none). q, k and v are fused into
one `qkv` in that order. Swin keys are renamed to the official layout and
converted by `official_swin`; ViT keys to timm's and converted by
`timm_format`. The architecture comes from `config.json` (HF ViT uses
LayerNorm epsilon 1e-12 by default; `hidden_act` picks the GELU).
Resampling on load follows HF: position embeddings bicubic without
antialiasing (`interpolate_pos_encoding`); Swin tables, which HF never
resizes, bicubic like the official code.
"""

from __future__ import annotations

import re

import numpy as np

from weights_tools import official_swin, timm_format
from weights_tools.common import (
    ConversionError,
    Converted,
    Converter,
    check_config,
    check_model_config,
    renamed_view,
)
from weights_tools.heads import SWIN_22K_TO_1K

SWIN = "hf_swin"
VIT = "hf_vit"

#: config.json sizes checked before any is used (`common.check_config`;
#: the ranges are `common.SIZE_RANGES`).
CONFIG_CHECKS = {
    "image_size": ("pair", "image side"),
    "patch_size": ("pair", "patch size"),
    "num_channels": ("int", "channel count"),
    "embed_dim": ("int", "width"),
    "hidden_size": ("int", "width"),
    "intermediate_size": ("int", "width"),
    "num_hidden_layers": ("int", "block count"),
    "num_attention_heads": ("int", "head count"),
    "depths": ("list", "block count"),
    "num_heads": ("list", "head count"),
    "window_size": ("int", "window size"),
    "encoder_stride": ("int", "patch size"),
    "num_labels": ("int", "class count"),
    "mlp_ratio": ("float", "MLP ratio"),
    "layer_norm_eps": ("float", "LayerNorm epsilon"),
}

_APPROXIMATE_GELU = {"gelu_new", "gelu_pytorch_tanh", "gelu_fast"}

# (regex on the key without model prefix, replacement), first match wins.
_SWIN_NAMES = [
    (r"embeddings\.patch_embeddings\.projection\.", "patch_embed.proj."),
    (r"embeddings\.norm\.", "patch_embed.norm."),
    (r"embeddings\.position_embeddings$", "absolute_pos_embed"),
    (r"encoder\.layers\.(\d+)\.downsample\.", r"layers.\1.downsample."),
    (r"encoder\.layers\.(\d+)\.blocks\.(\d+)\.", r"layers.\1.blocks.\2."),
    (r"layernorm\.", "norm."),
    (r"classifier\.", "head."),
]
_SWIN_BLOCK_NAMES = [
    (r"layernorm_before\.", "norm1."),
    (r"layernorm_after\.", "norm2."),
    (r"attention\.self\.(query|key|value)\.", r"attn.\1."),
    (r"attention\.(q|k|v)_proj\.", r"attn.\1_proj."),
    (
        r"attention\.(?:self|relative_position_bias)\."
        r"relative_position_bias_table$",
        "attn.relative_position_bias_table",
    ),
    (
        r"attention\.(?:self|relative_position_bias)\."
        r"relative_position_index$",
        "attn.relative_position_index",
    ),
    (r"attention\.output\.dense\.", "attn.proj."),
    (r"attention\.o_proj\.", "attn.proj."),
    (r"intermediate\.dense\.", "mlp.fc1."),
    (r"output\.dense\.", "mlp.fc2."),
    (r"mlp\.(fc[12])\.", r"mlp.\1."),
]
_VIT_NAMES = [
    (r"embeddings\.cls_token$", "cls_token"),
    (r"embeddings\.position_embeddings$", "pos_embed"),
    (r"embeddings\.patch_embeddings\.projection\.", "patch_embed.proj."),
    (r"(?:encoder\.layer|layers)\.(\d+)\.", r"blocks.\1."),
    (r"layernorm\.", "norm."),
    (r"pooler\.dense\.", "pre_logits.fc."),
    (r"classifier\.", "head."),
]
_VIT_BLOCK_NAMES = [
    (r"layernorm_before\.", "norm1."),
    (r"layernorm_after\.", "norm2."),
    (r"attention\.attention\.(query|key|value)\.", r"attn.\1."),
    (r"attention\.(q|k|v)_proj\.", r"attn.\1_proj."),
    (r"attention\.output\.dense\.", "attn.proj."),
    (r"attention\.o_proj\.", "attn.proj."),
    (r"intermediate\.dense\.", "mlp.fc1."),
    (r"output\.dense\.", "mlp.fc2."),
    (r"mlp\.(fc[12])\.", r"mlp.\1."),
]
_BLOCK_PREFIX = re.compile(r"(layers\.\d+\.blocks\.\d+\.|blocks\.\d+\.)(.*)")
_QKV_PARTS = (("query", "key", "value"), ("q_proj", "k_proj", "v_proj"))


def _rename(key: str, table, block_table, prefix: str) -> str:
    name = key[len(prefix) :] if key.startswith(prefix) else key
    for pattern, target in table:
        new, count = re.subn("^" + pattern, target, name)
        if count:
            name = new
            break
    match = _BLOCK_PREFIX.fullmatch(name)
    if match:
        rest = match[2]
        for pattern, target in block_table:
            new, count = re.subn("^" + pattern, target, rest)
            if count:
                rest = new
                break
        name = match[1] + rest
    return name


def _fuse_qkv(
    named: dict[str, np.ndarray], origin: dict[str, str]
) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Fuses `attn.{query,key,value}` (or `{q,k,v}_proj`) into `attn.qkv`."""
    out = dict(named)
    for key in [k for k in named if re.search(r"attn\.(query|q_proj)\.", k)]:
        for parts in _QKV_PARTS:
            marker = f"attn.{parts[0]}."
            if marker not in key:
                continue
            keys = [key.replace(marker, f"attn.{p}.") for p in parts]
            if not all(k in out for k in keys):
                missing = [k for k in keys if k not in out]
                raise ConversionError(
                    f"{origin[key]} has no partner(s) "
                    f"{', '.join(missing)}; q, k and v must all be there."
                )
            fused = key.replace(marker, "attn.qkv.")
            out[fused] = np.concatenate([out.pop(k) for k in keys], axis=0)
            origin[fused] = " + ".join(origin.pop(k) for k in keys)
    return out, origin


def _canonical(tensors, table, block_table, prefix):
    names = {k: _rename(k, table, block_table, prefix) for k in tensors}
    named = renamed_view(tensors, names)
    origin = {names[k]: k for k in tensors}
    return _fuse_qkv(named, origin)


def _restore(converted: Converted, origin: dict[str, str]) -> Converted:
    converted.sources = {
        p: origin.get(s, s) for p, s in converted.sources.items()
    }
    converted.unmatched = {
        origin.get(k, k): s for k, s in converted.unmatched.items()
    }
    return converted


def _model_type(meta) -> str | None:
    return (meta or {}).get("model_type")


def _has_prefix(tensors, family: str) -> bool:
    return any(k.startswith(f"{family}.embeddings.") for k in tensors) or any(
        k.startswith("embeddings.patch_embeddings.") for k in tensors
    )


def _config_value(meta, key, default=None):
    value = (meta or {}).get(key, default)
    return default if value is None else value


# --------------------------------------------------------------------- Swin
def matches_swin(tensors: dict[str, np.ndarray], meta=None) -> bool:
    """Whether this is a Hugging Face Swin checkpoint.

    Example:
        >>> matches_swin(read_safetensors("model.safetensors"),
        ...              {"model_type": "swin"})
        True
    """
    # SwinBackbone folders (per-output norms) are `hf_backbone`'s.
    if any("hidden_states_norms." in k for k in tensors) or (
        "SwinBackbone" in ((meta or {}).get("architectures") or ())
    ):
        return False
    if _model_type(meta) == "swin":
        return True
    # Swin V2 (`swinv2` model type, cosine attention) is `hf_swinv2`'s.
    if _model_type(meta) == "swinv2" or any(
        "continuous_position_bias_mlp" in k for k in tensors
    ):
        return False
    return _has_prefix(tensors, "swin") and any(
        ".blocks." in k and "layernorm_before" in k for k in tensors
    )


def _swin_official(tensors):
    return _canonical(tensors, _SWIN_NAMES, _SWIN_BLOCK_NAMES, "swin.")


def swin_official_names(
    tensors: dict[str, np.ndarray],
) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """HF Swin keys (either scheme, `swin.` or not) -> official names.

    q, k and v are fused into `attn.qkv`. Used by this module and by
    `hf_backbone` (SwinBackbone, UperNet).

    Returns:
        (tensors under official names, official name -> the HF key(s)).

    Example:
        >>> named, origin = swin_official_names(tensors)
        >>> origin["layers.0.blocks.0.attn.qkv.weight"]
        'encoder.layers.0.blocks.0.attention.self.query.weight + ...'
    """
    return _swin_official(tensors)


def restore_sources(converted: Converted, origin: dict[str, str]) -> Converted:
    """Names a conversion's sources and unmatched keys by the HF keys.

    Example:
        >>> restore_sources(official_swin.convert(named), origin)
    """
    return _restore(converted, origin)


def infer_swin_config(tensors, meta=None, overrides=None) -> dict:
    """`SwinTransformer` arguments of an HF Swin checkpoint.

    The tensors give the widths, depths, heads and window; `config.json`
    the image size, LayerNorm epsilon and activation.

    Example:
        >>> infer_swin_config(tensors, json.load(open("config.json")))
        {'embed_dim': 96, ...}
    """
    if meta is not None:
        check_config(meta, CONFIG_CHECKS)
    named, _ = _swin_official(tensors)
    if "absolute_pos_embed" in named:
        raise ConversionError(
            "Hugging Face Swin with use_absolute_embeddings=True is not "
            "supported: its position_embeddings has one row more than the "
            "patch grid and no released checkpoint uses it."
        )
    config = official_swin.infer_config(named)
    size = _config_value(meta, "image_size")
    if size is not None:
        size = (size, size) if isinstance(size, int) else tuple(size)
        config["input_shape"] = (
            int(size[0]),
            int(size[1]),
            config["input_shape"][2],
        )
    config["layer_norm_epsilon"] = float(
        _config_value(meta, "layer_norm_eps", 1e-5)
    )
    if _config_value(meta, "hidden_act", "gelu") != "gelu":
        raise ConversionError(
            f"hidden_act={meta['hidden_act']!r} is not supported for Swin "
            "(only 'gelu')."
        )
    return check_model_config(config)


def convert_swin(tensors, meta=None) -> Converted:
    """HF Swin checkpoint (either key scheme) -> this package's paths.

    Example:
        >>> convert_swin(tensors).weights[
        ...     "layers_0/blocks_0/attn/qkv/kernel"].shape
        (96, 288)
    """
    named, origin = _swin_official(tensors)
    return _restore(official_swin.convert(named), origin)


# ---------------------------------------------------------------------- ViT
def matches_vit(tensors: dict[str, np.ndarray], meta=None) -> bool:
    """Whether this is a Hugging Face ViT checkpoint.

    Example:
        >>> matches_vit(read_safetensors("model.safetensors"),
        ...             {"model_type": "vit"})
        True
    """
    if _model_type(meta) == "vit":
        return True
    return _has_prefix(tensors, "vit") and any(
        "layernorm_before" in k and ".layer" in k for k in tensors
    )


def _vit_timm(tensors):
    return _canonical(tensors, _VIT_NAMES, _VIT_BLOCK_NAMES, "vit.")


def infer_vit_config(tensors, meta=None, overrides=None) -> dict:
    """`VisionTransformer` arguments of an HF ViT checkpoint.

    Heads, image size, epsilon (HF default 1e-12) and GELU flavour come
    from `config.json`; without it the heads must be passed.

    Example:
        >>> infer_vit_config(tensors, json.load(open("config.json")))[
        ...     "layer_norm_epsilon"]
        1e-12
    """
    if meta is not None:
        check_config(meta, CONFIG_CHECKS)
    named, _ = _vit_timm(tensors)
    heads = _config_value(meta, "num_attention_heads")
    size = _config_value(meta, "image_size")
    timm_meta = {"architecture": "", "model_args": {}}
    if heads is not None:
        timm_meta["model_args"]["num_heads"] = int(heads)
    if size is not None:
        timm_meta["model_args"]["img_size"] = size
    timm_meta["model_args"]["global_pool"] = "token"
    try:
        config = timm_format.infer_vit_config(named, timm_meta, overrides)
    except ConversionError as error:
        raise ConversionError(
            str(error).replace("timm config.json", "Hugging Face config.json")
        ) from None
    act = _config_value(meta, "hidden_act", "gelu")
    if act not in _APPROXIMATE_GELU | {"gelu"}:
        raise ConversionError(
            f"hidden_act={act!r} is not supported (only GELU variants)."
        )
    config["gelu_approximate"] = act in _APPROXIMATE_GELU
    config["layer_norm_epsilon"] = float(
        _config_value(meta, "layer_norm_eps", 1e-12)
    )
    return config


def convert_vit(tensors, meta=None) -> Converted:
    """HF ViT checkpoint (either key scheme) -> this package's paths.

    A `ViTModel` pooler (Dense + tanh on the class token) becomes the
    `pre_logits` layer.

    Example:
        >>> convert_vit(tensors).weights["encoder/norm/gamma"].shape
        (768,)
    """
    named, origin = _vit_timm(tensors)
    return _restore(timm_format.convert_vit(named), origin)


#: Hugging Face `save_pretrained` folders of `SwinForImageClassification`
#: / `SwinModel` and of `ViTForImageClassification` / `ViTModel`.
SWIN_CONVERTER = Converter(
    name=SWIN,
    family="swin",
    head_maps=(SWIN_22K_TO_1K,),
    matches=matches_swin,
    infer=infer_swin_config,
    convert=convert_swin,
)
VIT_CONVERTER = Converter(
    name=VIT,
    family="vit",
    matches=matches_vit,
    infer=infer_vit_config,
    convert=convert_vit,
)
