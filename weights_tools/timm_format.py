"""timm (pytorch-image-models) Swin and ViT state dicts.

Files: `model.safetensors`, `pytorch_model.bin` or `.pth` holding
`model.state_dict()`, usually with timm's Hub `config.json` beside them
(`architecture`, `model_args`, `pretrained_cfg`).

* Swin: the official block names, but PatchMerging sits at the START of
  the next stage (`layers.{s}.downsample` for s >= 1), the head is
  `head.fc`, and `relative_position_index` / `attn_mask` are not stored.
  It is renamed to the official layout and converted by `official_swin`.
* ViT: `cls_token`, `reg_token` (registers), `pos_embed`,
  `patch_embed.proj`, `blocks.{i}.{norm1, attn.qkv, attn.proj, norm2,
  mlp.fc1, mlp.fc2}`, `norm` or (global average pooling) `fc_norm`,
  `head`. Exact GELU, LayerNorm epsilon 1e-6. The number of attention
  heads is not in the tensors: it comes from `config.json`, from the
  architecture name's timm defaults, or from the caller.

Resampling on load follows timm: Swin tables with its geometric-grid
interpolation, ViT position embeddings bicubic with antialiasing.
"""

from __future__ import annotations

import math
import re

import numpy as np

from weights_tools import official_swin
from weights_tools.common import (
    ConversionError,
    Converted,
    Converter,
    Rule,
    apply_rules,
    check_config,
    check_float,
    check_int,
    check_model_config,
    conv_kernel,
    dense_rules,
    norm_rules,
    renamed_view,
)
from weights_tools.heads import SWIN_22K_TO_1K

SWIN = "timm_swin"
VIT = "timm_vit"

#: timm's entrypoint defaults that the tensors cannot show: heads per
#: width of the standard ViT sizes.
_VIT_HEADS = {
    "tiny": 3,
    "small": 6,
    "medium": 8,
    "base": 12,
    "large": 16,
    "huge": 16,
    "giant": 16,
}


#: timm config.json sizes checked before any is used
#: (`common.check_config`; the ranges are `common.SIZE_RANGES`).
CONFIG_CHECKS = {
    "num_classes": ("int", "class count"),
    "num_features": ("int", "width"),
    "model_args.img_size": ("pair", "image side"),
    "model_args.patch_size": ("pair", "patch size"),
    "model_args.in_chans": ("int", "channel count"),
    "model_args.embed_dim": ("int", "width"),
    "model_args.depth": ("int", "block count"),
    "model_args.depths": ("list", "block count"),
    "model_args.num_heads": ("int_or_list", "head count"),
    "model_args.window_size": ("pair", "window size"),
    "model_args.num_classes": ("int", "class count"),
    "model_args.reg_tokens": ("int", "token count"),
    "model_args.mlp_ratio": ("float", "MLP ratio"),
    "pretrained_cfg.num_classes": ("int", "class count"),
    "pretrained_cfg.crop_pct": ("float", "crop fraction"),
}


def check_timm_config(meta, source: str = "config.json") -> None:
    """Checks a timm `config.json`'s sizes and preprocessing before use.

    `CONFIG_CHECKS`, plus `pretrained_cfg.input_size` ([C, H, W]) and
    `mean` / `std` (finite numbers, one per channel; std > 0).

    Raises:
        ConversionError: naming the key, the value and what is allowed.

    Example:
        >>> check_timm_config({"pretrained_cfg": {"input_size": [3, 9e9, 9]}})
        Traceback (most recent call last):
        ConversionError: config.json: pretrained_cfg.input_size[1]=...
    """
    check_config(meta, CONFIG_CHECKS, source)
    for part in ("model_args", "pretrained_cfg"):
        if not isinstance(meta.get(part) or {}, dict):
            raise ConversionError(
                f"{source}: {part} must be a JSON object, got "
                f"{meta[part]!r:.60}."
            )
    cfg = meta.get("pretrained_cfg") or {}
    size = cfg.get("input_size")
    if size is not None:
        key = "pretrained_cfg.input_size"
        if not isinstance(size, list) or len(size) != 3:
            raise ConversionError(
                f"{source}: {key}={size!r:.60} is not a valid input size: "
                "expected [channels, height, width]."
            )
        check_int(size[0], f"{key}[0]", "channel count", source)
        check_int(size[1], f"{key}[1]", "image side", source)
        check_int(size[2], f"{key}[2]", "image side", source)
    for name in ("mean", "std"):
        values = cfg.get(name)
        if values is None:
            continue
        key = f"pretrained_cfg.{name}"
        if not isinstance(values, list) or not 1 <= len(values) <= 1024:
            raise ConversionError(
                f"{source}: {key}={values!r:.60} is not a valid {name}: "
                "expected a list of numbers, one per channel."
            )
        for i, value in enumerate(values):
            if name == "std":
                check_float(value, f"{key}[{i}]", "standard deviation", source)
            elif type(value) not in (int, float) or not math.isfinite(value):
                raise ConversionError(
                    f"{source}: {key}[{i}]={value!r} is not a finite number."
                )


def _model_args(meta: dict | None) -> dict:
    return dict((meta or {}).get("model_args") or {})


def _image_size(meta: dict | None) -> tuple[int, int] | None:
    """Image (H, W) from timm's config.json, if it says."""
    if not meta:
        return None
    size = _model_args(meta).get("img_size")
    if size is None:
        cfg = meta.get("pretrained_cfg") or {}
        if cfg.get("input_size"):
            size = cfg["input_size"][-2:]
    if size is None:
        match = re.search(r"_(\d{3,4})(?:_|$|\.)", meta.get("architecture", ""))
        size = int(match[1]) if match else None
    if size is None:
        return None
    if isinstance(size, int):
        return (size, size)
    return (int(size[0]), int(size[1]))


# --------------------------------------------------------------------- Swin
def swin_to_official(tensors: dict[str, np.ndarray]) -> dict[str, str]:
    """timm Swin key -> official key (downsample moved back a stage).

    Example:
        >>> swin_to_official({"layers.1.downsample.norm.weight": w})
        {'layers.1.downsample.norm.weight': 'layers.0.downsample.norm.weight'}
    """
    names = {}
    for key in tensors:
        name = re.sub(
            r"^layers\.(\d+)\.downsample\.",
            lambda m: f"layers.{int(m[1]) - 1}.downsample.",
            key,
        )
        names[key] = re.sub(r"^head\.fc\.", "head.", name)
    return names


def matches_swin(tensors: dict[str, np.ndarray], meta=None) -> bool:
    """Whether `tensors` are a timm Swin state dict.

    The official layout has `layers.0.downsample`; timm's starts at
    `layers.1.downsample`, and its head is `head.fc`.

    Example:
        >>> matches_swin({"patch_embed.proj.weight": w,
        ...               "layers.0.blocks.0.attn.qkv.weight": q,
        ...               "head.fc.weight": h})
        True
    """
    if not official_swin.matches(tensors):
        return False
    if any(k.startswith("layers.0.downsample.") for k in tensors):
        return False
    return "head.fc.weight" in tensors or any(
        re.match(r"layers\.[1-9]\d*\.downsample\.", k) for k in tensors
    )


def infer_swin_config(tensors, meta=None, overrides=None) -> dict:
    """`SwinTransformer` arguments of a timm Swin state dict.

    As `official_swin.infer_config`, with the image size taken from
    timm's `config.json` when present (the tensors do not show it).

    Example:
        >>> infer_swin_config(read_safetensors("model.safetensors"))
        {'embed_dim': 96, ...}
    """
    if meta is not None:
        check_timm_config(meta)
    view = renamed_view(tensors, swin_to_official(tensors))
    config = official_swin.infer_config(view)
    size = _image_size(meta)
    if size is not None:
        config["input_shape"] = (size[0], size[1], config["input_shape"][2])
    return check_model_config(config)


def convert_swin(tensors, meta=None) -> Converted:
    """timm Swin state dict -> this package's weight paths.

    Example:
        >>> convert_swin(read_safetensors("model.safetensors")).weights[
        ...     "layers_0_downsample/norm/gamma"].shape
        (96 * 4,)
    """
    names = swin_to_official(tensors)
    converted = official_swin.convert(renamed_view(tensors, names))
    back = {v: k for k, v in names.items()}
    converted.sources = {p: back[s] for p, s in converted.sources.items()}
    converted.unmatched = {back[k]: s for k, s in converted.unmatched.items()}
    return converted


# ---------------------------------------------------------------------- ViT
_VIT_BLOCK = r"blocks\.(\d+)\."
_KERAS_VIT_BLOCK = r"encoder/blocks_\1/"

VIT_RULES = [
    Rule(r"patch_embed\.proj\.weight", "patch_embed/proj/kernel", conv_kernel),
    Rule(r"patch_embed\.proj\.bias", "patch_embed/proj/bias"),
    Rule(r"cls_token", "cls_token/cls"),
    Rule(r"reg_token", "reg_token/cls"),
    Rule(r"pos_embed", "pos_embed/embedding"),
    *norm_rules(_VIT_BLOCK + "norm1", _KERAS_VIT_BLOCK + "norm1"),
    *norm_rules(_VIT_BLOCK + "norm2", _KERAS_VIT_BLOCK + "norm2"),
    *dense_rules(_VIT_BLOCK + r"attn\.qkv", _KERAS_VIT_BLOCK + "attn/qkv"),
    *dense_rules(_VIT_BLOCK + r"attn\.proj", _KERAS_VIT_BLOCK + "attn/proj"),
    *dense_rules(_VIT_BLOCK + r"mlp\.fc1", _KERAS_VIT_BLOCK + "mlp/fc1"),
    *dense_rules(_VIT_BLOCK + r"mlp\.fc2", _KERAS_VIT_BLOCK + "mlp/fc2"),
    *norm_rules(r"norm", "encoder/norm"),
    *norm_rules(r"fc_norm", "fc_norm"),
    *dense_rules(r"pre_logits\.fc", "pre_logits"),
    *dense_rules(r"head", "head"),
]

#: timm ViT parts this package has no layer for; named in errors.
_UNSUPPORTED = {
    r"\.ls[12]\.gamma$|gamma_[12]$": "layer scale (DeiT-III, DINOv2)",
    r"^norm_pre\.": "a pre-encoder norm (CLIP)",
    r"\.attn\.[qk]_norm\.": "q/k normalisation",
    r"^attn_pool\.": "attention pooling (global_pool='map')",
    r"^mask_token$": "a mask token",
}


def matches_vit(tensors: dict[str, np.ndarray], meta=None) -> bool:
    """Whether `tensors` are a timm ViT state dict.

    Example:
        >>> matches_vit({"patch_embed.proj.weight": w, "pos_embed": p,
        ...              "blocks.0.attn.qkv.weight": q})
        True
    """
    return (
        "patch_embed.proj.weight" in tensors
        and "pos_embed" in tensors
        and any(re.match(_VIT_BLOCK + r"attn\.qkv\.weight", k) for k in tensors)
    )


def _vit_heads(meta: dict | None, hidden: int, overrides: dict) -> int:
    if "num_heads" in overrides:
        return int(overrides["num_heads"])
    args = _model_args(meta)
    if "num_heads" in args:
        return int(args["num_heads"])
    architecture = (meta or {}).get("architecture", "")
    match = re.match(r"vit_([a-z]+)_patch", architecture)
    if match and match[1] in _VIT_HEADS and "embed_dim" not in args:
        return _VIT_HEADS[match[1]]
    raise ConversionError(
        "A timm ViT state dict does not record its number of attention "
        f"heads (width {hidden}), and no timm config.json beside it says "
        "(model_args.num_heads or a standard architecture name). Pass it: "
        "load_checkpoint(path, num_heads=...) or keras-swin convert "
        "--num-heads N."
    )


def infer_vit_config(tensors, meta=None, overrides=None) -> dict:
    """`VisionTransformer` arguments of a timm ViT state dict.

    Read from the tensors: patch size, width, depth, MLP width, qkv bias,
    class token, register tokens, whether the position embedding covers
    the prefix tokens (`no_embed_class`), the pooling (`fc_norm` means
    global average pooling with the norm after it; else the class token
    when there is one). From `config.json`: heads, image size and
    `global_pool`; where neither says, the error asks for the value.

    Args:
        tensors: the state dict as numpy arrays.
        meta: timm's config.json as a dict, or None.
        overrides: arguments the caller fixed (e.g. `num_heads`).

    Returns:
        dict of `VisionTransformer` arguments plus `classes` and
        `input_shape`.

    Example:
        >>> infer_vit_config(read_safetensors("model.safetensors"),
        ...                  {"model_args": {"num_heads": 12}})["classifier"]
        'token'
    """
    if meta is not None:
        check_timm_config(meta)
    overrides = overrides or {}
    proj = tensors["patch_embed.proj.weight"]
    hidden, channels, patch = proj.shape[0], proj.shape[1], proj.shape[2]
    layers = sorted(
        {int(m[1]) for k in tensors if (m := re.match(_VIT_BLOCK, k))}
    )
    if layers != list(range(len(layers))):
        raise ConversionError(
            f"ViT blocks must be numbered 0..n-1, found {layers}."
        )
    class_token = "cls_token" in tensors
    registers = (
        int(tensors["reg_token"].shape[1]) if "reg_token" in tensors else 0
    )
    prefix = int(class_token) + registers
    pooled_norm = "fc_norm.weight" in tensors
    global_pool = (meta or {}).get("global_pool") or _model_args(meta).get(
        "global_pool"
    )
    if global_pool in ("avg", "token"):
        classifier = "gap" if global_pool == "avg" else "token"
    elif global_pool:
        raise ConversionError(
            f"timm global_pool={global_pool!r} is not supported (only "
            "'token' and 'avg')."
        )
    else:
        classifier = "gap" if pooled_norm or not class_token else "token"
    if classifier == "token" and not class_token:
        raise ConversionError(
            "config.json asks for class-token pooling, but the state dict "
            "has no cls_token."
        )

    positions = tensors["pos_embed"].shape[1]
    size = _image_size(meta)
    if size is not None:
        grid = (size[0] // patch) * (size[1] // patch)
    else:
        grid = None
        for candidate in (positions - prefix, positions):
            if candidate > 0 and math.isqrt(candidate) ** 2 == candidate:
                grid = candidate
                side = math.isqrt(candidate) * patch
                size = (side, side)
                break
        if grid is None:
            raise ConversionError(
                f"pos_embed has {positions} rows, which is no square grid "
                f"with or without the {prefix} prefix token(s); pass "
                "input_shape=... for the checkpoint's image size."
            )
    if positions == grid + prefix:
        on_prefix = True
    elif positions == grid and prefix:
        on_prefix = False
    else:
        raise ConversionError(
            f"pos_embed has {positions} rows; an image of {size[0]}x"
            f"{size[1]} with patch {patch} gives {grid} patches plus "
            f"{prefix} prefix token(s)."
        )
    head = tensors.get("head.weight")
    config = dict(
        patch_size=int(patch),
        hidden_size=int(hidden),
        num_layers=len(layers),
        num_heads=_vit_heads(meta, hidden, overrides),
        mlp_dim=int(tensors["blocks.0.mlp.fc1.weight"].shape[0]),
        classifier=classifier,
        class_token=class_token,
        num_register_tokens=registers,
        position_embedding_on_prefix=on_prefix,
        pooled_norm=pooled_norm,
        representation_size=None
        if "pre_logits.fc.weight" not in tensors
        else int(tensors["pre_logits.fc.weight"].shape[0]),
        qkv_bias="blocks.0.attn.qkv.bias" in tensors,
        layer_norm_epsilon=1e-6,
        gelu_approximate=False,
        classes=0 if head is None else int(head.shape[0]),
        input_shape=(size[0], size[1], int(channels)),
    )
    return check_model_config(config)


def convert_vit(tensors, meta=None) -> Converted:
    """timm ViT state dict -> this package's weight paths.

    Keys of timm features this package does not build (layer scale,
    q/k norms, attention pooling, ...) are reported by name.

    Example:
        >>> convert_vit(read_safetensors("model.safetensors")).weights[
        ...     "encoder/blocks_0/attn/qkv/kernel"].shape
        (768, 2304)
    """
    for pattern, what in _UNSUPPORTED.items():
        found = sorted(k for k in tensors if re.search(pattern, k))
        if found:
            raise ConversionError(
                f"This timm ViT uses {what} ({', '.join(found[:3])}), which "
                "keras-swin does not implement."
            )
    return apply_rules(tensors, VIT_RULES)


#: timm state dicts; timm resizes relative position tables on its own
#: geometric grid and position embeddings bicubically with antialiasing.
SWIN_CONVERTER = Converter(
    name=SWIN,
    family="swin",
    head_maps=(SWIN_22K_TO_1K,),
    matches=matches_swin,
    infer=infer_swin_config,
    convert=convert_swin,
    table_resampling="timm",
    position_resampling="bicubic_antialias",
)
VIT_CONVERTER = Converter(
    name=VIT,
    family="vit",
    matches=matches_vit,
    infer=infer_vit_config,
    convert=convert_vit,
    position_resampling="bicubic_antialias",
)
