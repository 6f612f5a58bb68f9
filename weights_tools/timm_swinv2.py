"""timm (pytorch-image-models) Swin Transformer V2 state dicts.

Files: `model.safetensors`, `pytorch_model.bin` or `.pth` holding a timm
`swinv2_*` model's `state_dict()`, with timm's Hub `config.json` beside
them (`architecture`, `model_args`, `pretrained_cfg`) or a record of the
`timm.create_model` call (`timm_arch`, `create_model_kwargs`).

Layout: the official V2 block names (`official_swinv2.block_rules`),
but, as in timm's V1, PatchMerging sits at the START of the next stage
(`layers.{i}.downsample` for i >= 1, the official
`layers.{i-1}.downsample`) and the head is `head.fc`. timm registers
`relative_position_index`, `relative_coords_table` and `attn_mask` as
non-persistent buffers, so the window, the image size and the
`pretrained_window_sizes` are in no tensor. They come, first found
first, from the caller (`window_size=`, `pretrained_window_sizes=`,
`input_shape=`), from buffers an older file may still hold, from the
`config.json` (`model_args` / `create_model_kwargs`, then
`pretrained_cfg.input_size`), and from the defaults of timm's
architecture name (`swinv2_base_window12to16_192to256`: window 16,
256 px, pre-trained at window 12 on 192 px, so (12, 12, 12, 6)).

timm's `swinv2_cr_*` models are another architecture (post-norm
"continuous relative" variant with `stages.*` and `meta_mlp`) and are
refused by name.
"""

from __future__ import annotations

import re

import numpy as np

from weights_tools import official_swinv2, timm_format
from weights_tools.common import (
    IMAGENET_PREPROCESSING,
    ConversionError,
    Converted,
    Converter,
    Rule,
    apply_rules,
    check_config,
    check_int,
    check_ints,
    check_model_config,
    linear_kernel,
    norm_rules,
    renamed_view,
)
from weights_tools.heads import SWIN_22K_TO_1K

FORMAT = "timm_swinv2"

#: Stages a rename table covers (the releases have 4).
_MAX_STAGES = 16

#: `timm.create_model` arguments of a generator record / `model_args`,
#: checked before any is used (`common.check_config`).
_KWARG_CHECKS = {
    "img_size": ("pair", "image side"),
    "window_size": ("pair", "window size"),
    "patch_size": ("pair", "patch size"),
    "in_chans": ("int", "channel count"),
    "embed_dim": ("int", "width"),
    "depths": ("list", "block count"),
    "num_heads": ("int_or_list", "head count"),
    "num_classes": ("int", "class count"),
    "pretrained_window_sizes": ("list", "window size"),
}

#: timm's `swinv2_*` architecture names: size, window, optional
#: fine-tune window, image size, optional fine-tune image size.
_ARCH = re.compile(
    r"swinv2_(tiny|small|base|large)_window(\d+)(?:to(\d+))?"
    r"_(\d+)(?:to(\d+))?"
)


def _rules() -> list[Rule]:
    rules = [
        *official_swinv2.STAGE_RULES[:4],  # patch embedding
        *official_swinv2.block_rules(
            r"layers\.(\d+)\.blocks\.(\d+)\.", r"layers_\1/blocks_\2/"
        ),
    ]
    for i in range(1, _MAX_STAGES):
        # timm stores stage i-1's merging at the start of stage i.
        source, target = rf"layers\.{i}\.downsample\.", f"layers_{i - 1}"
        rules += [
            Rule(
                source + r"reduction\.weight",
                target + "_downsample/reduction/kernel",
                linear_kernel,
            ),
            *norm_rules(source + "norm", target + "_downsample/norm"),
        ]
    return [
        *rules,
        *norm_rules(r"norm", "norm"),
        Rule(r"head\.fc\.weight", "head/kernel", linear_kernel),
        Rule(r"head\.fc\.bias", "head/bias"),
    ]


#: timm key -> this package's weight path.
RULES = _rules()


def architecture(meta: dict | None) -> str:
    """timm's architecture name in a `config.json`, or "".

    Example:
        >>> architecture({"timm_arch": "swinv2_tiny_window8_256"})
        'swinv2_tiny_window8_256'
    """
    meta = meta or {}
    name = meta.get("architecture") or meta.get("timm_arch") or ""
    return name if isinstance(name, str) else ""


def _is_cr(tensors: dict, meta) -> bool:
    return architecture(meta).startswith("swinv2_cr") or any(
        k.startswith("stages.") or ".attn.meta_mlp." in k for k in tensors
    )


def matches(tensors: dict[str, np.ndarray], meta=None) -> bool:
    """Whether `tensors` are a timm Swin V2 state dict.

    V2 attention (`logit_scale`, `cpb_mlp`) in timm's layout (`head.fc`,
    no `layers.0.downsample`). timm's `swinv2_cr_*` also match, so that
    reading one fails with a message that names it.

    Example:
        >>> matches({"patch_embed.proj.weight": w,
        ...          "layers.0.blocks.0.attn.logit_scale": s,
        ...          "head.fc.weight": h})
        True
    """
    if "patch_embed.proj.weight" not in tensors:
        return False
    if _is_cr(tensors, meta) and official_swinv2.is_v2(tensors):
        return True
    return official_swinv2.is_v2(tensors) and official_swinv2.timm_layout(
        tensors
    )


def _refuse_cr(tensors, meta) -> None:
    if _is_cr(tensors, meta):
        name = architecture(meta) or "a swinv2_cr_* model"
        raise ConversionError(
            f"This timm checkpoint is {name}: timm's swinv2_cr_* models "
            "(stages.*, attn.meta_mlp) are a different architecture from "
            "Swin Transformer V2 (swinv2_*), which keras-swin implements; "
            "they cannot be loaded."
        )


def arch_defaults(name: str) -> dict:
    """What timm's entrypoint `name` sets that the tensors cannot show.

    Args:
        name: a timm architecture, e.g. `swinv2_base_window12to24_192to384`.

    Returns:
        `window_size`, `pretrained_window_sizes` (per stage; those of a
        fine-tune are the pre-training window clamped to each stage's map
        at the pre-training size, as timm's entrypoints set them) and
        `img_size`; {} for a name that is no `swinv2_*` architecture.

    Example:
        >>> arch_defaults("swinv2_base_window12to16_192to256")
        {'window_size': 16, 'pretrained_window_sizes': (12, 12, 12, 6),
         'img_size': 256}
    """
    match = _ARCH.fullmatch(name)
    if match is None:
        return {}
    window, window_to = int(match[2]), match[3]
    size, size_to = int(match[4]), match[5]
    if window_to is None:
        return dict(
            window_size=window,
            pretrained_window_sizes=(0, 0, 0, 0),
            img_size=int(size_to or size),
        )
    # Stage i of a 192 px image is 48 / 2^i patches wide.
    pretrained = tuple(min(window, size // 4 // 2**i) for i in range(4))
    return dict(
        window_size=int(window_to),
        pretrained_window_sizes=pretrained,
        img_size=int(size_to or size),
    )


def _side(value, key: str) -> int:
    if isinstance(value, list | tuple):
        height, width = check_ints(value, key, "image side", length=2)
        if height != width:
            raise ConversionError(
                f"config.json: {key}={list(value)} is not square; pass "
                "window_size=... and input_shape=(H, W, 3) explicitly."
            )
        return height
    return check_int(value, key, "image side")


def _stated(meta: dict | None) -> dict:
    """window_size, pretrained_window_sizes, img_size a config states."""
    if not meta:
        return {}
    if "architecture" in meta:
        timm_format.check_timm_config(meta)
        kwargs = dict(meta.get("model_args") or {})
        source = "model_args"
    else:
        kwargs = meta.get("create_model_kwargs") or {}
        if not isinstance(kwargs, dict):
            raise ConversionError(
                "config.json: create_model_kwargs must be a JSON object of "
                f"timm.create_model arguments, got {kwargs!r:.60}."
            )
        check_config(kwargs, _KWARG_CHECKS, "config.json create_model_kwargs")
        source = "create_model_kwargs"
    stated = arch_defaults(architecture(meta))
    size = ((meta.get("pretrained_cfg") or {}).get("input_size") or [])[-2:]
    if size:
        stated["img_size"] = _side(list(size), "pretrained_cfg.input_size")
    for key in ("window_size", "pretrained_window_sizes", "img_size"):
        value = kwargs.get(key)
        if value is None:
            continue
        if key == "img_size":
            value = _side(value, f"{source}.img_size")
        elif key == "window_size":
            value = _side(value, f"{source}.window_size")
        else:
            value = tuple(value)
        stated[key] = value
    return stated


def _pretrained(value, stages: int, where: str) -> tuple[int, ...]:
    if isinstance(value, int):
        value = (value,) * stages
    value = tuple(value)
    if len(value) != stages or any(type(v) is not int or v < 0 for v in value):
        raise ConversionError(
            f"pretrained_window_sizes={value} ({where}) must give one "
            f"window >= 0 per stage ({stages})."
        )
    return value


def infer_config(
    tensors: dict[str, np.ndarray], meta=None, overrides=None
) -> dict:
    """`SwinTransformerV2` arguments of a timm Swin V2 state dict.

    From the tensors as `official_swinv2.infer_config` (widths, depths,
    heads, classes, ...). The window, `pretrained_window_sizes` and the
    image size, first found first: `overrides` (`window_size`,
    `pretrained_window_sizes`, `input_shape` or `img_size`), buffers
    the file still holds, the `config.json` (`model_args` or
    `create_model_kwargs`, `pretrained_cfg.input_size`), the defaults
    of its timm architecture name.

    Args:
        tensors: the timm state dict as numpy arrays.
        meta: timm's Hub `config.json` or a `timm.create_model` record,
            or None.
        overrides: values the caller passed.

    Returns:
        dict with the `SwinTransformerV2` keyword arguments plus
        `classes` and `input_shape`.

    Raises:
        ConversionError: a `swinv2_cr_*` model, or no window anywhere
            (the message says what to pass).

    Example:
        >>> infer_config(read_safetensors("model.safetensors"),
        ...              {"architecture": "swinv2_tiny_window8_256"})
        {'embed_dim': 96, 'depths': (2, 2, 6, 2), 'window_size': 8, ...}
    """
    _refuse_cr(tensors, meta)
    overrides = dict(overrides or {})
    view = renamed_view(tensors, timm_format.swin_to_official(tensors))
    depths, _ = official_swinv2.stage_heads(view)
    windows, buffer_pretrained = official_swinv2.buffer_windows(view, depths)
    stated = _stated(meta)
    if windows is not None:
        stated["window_size"] = windows[0]
        stated["pretrained_window_sizes"] = tuple(buffer_pretrained)
    window = overrides.get("window_size", stated.get("window_size"))
    if window is None:
        raise ConversionError(
            "This timm Swin V2 state dict does not record its window (timm "
            "keeps relative_position_index, relative_coords_table and "
            "attn_mask out of the state dict) and no timm config.json "
            "beside it names an architecture. Pass window_size=... (8, 12, "
            "16 or 24), pretrained_window_sizes=... for a fine-tune (e.g. "
            "(12, 12, 12, 6) for swinv2_*_window12to16_192to256 and "
            "window12to24_192to384) and input_shape=(S, S, 3) for its "
            "image size (256, 192 or 384), e.g. load_checkpoint(path, "
            "window_size=16, pretrained_window_sizes=(12, 12, 12, 6), "
            "input_shape=(256, 256, 3)); or put timm's config.json beside "
            "the weights."
        )
    config = official_swinv2.infer_config(view, None, {"window_size": window})
    pretrained = overrides.get(
        "pretrained_window_sizes",
        stated.get("pretrained_window_sizes", (0,) * len(depths)),
    )
    config["pretrained_window_sizes"] = _pretrained(
        pretrained, len(depths), "pretrained_window_sizes"
    )
    size = stated.get("img_size")
    own_window = stated.get("window_size")
    if own_window is not None and size is not None and window != own_window:
        # Another window than the weights': the paper's fine-tuning rule.
        config["pretrained_window_sizes"] = (
            official_swinv2.fine_tune_pretrained(
                dict(
                    window_size=own_window,
                    input_shape=(size, size),
                    patch_size=config["patch_size"],
                    depths=depths,
                    pretrained_window_sizes=config["pretrained_window_sizes"],
                ),
                window,
                overrides,
            )
        )
    if "img_size" in overrides:
        size = _side(overrides["img_size"], "img_size")
    if overrides.get("input_shape") is not None:
        shape = tuple(overrides["input_shape"])
        config["input_shape"] = (shape[0], shape[1], config["input_shape"][2])
    elif size is not None:
        config["input_shape"] = (size, size, config["input_shape"][2])
    return check_model_config(config)


def convert(tensors: dict[str, np.ndarray], meta=None) -> Converted:
    """Renames a timm Swin V2 state dict to this package's weight paths.

    Buffers a file may hold (older timm) are verified and dropped as in
    `official_swinv2.checked_buffers`.

    Raises:
        ConversionError: a `swinv2_cr_*` model.

    Example:
        >>> converted = convert(read_safetensors("model.safetensors"))
        >>> converted.sources["layers_0_downsample/norm/gamma"]
        'layers.1.downsample.norm.weight'
    """
    _refuse_cr(tensors, meta)
    skip = official_swinv2.checked_buffers(tensors)
    return apply_rules(tensors, RULES, skip=skip)


#: timm's Swin V2 state dicts. Preprocessing: timm's `swinv2` default
#: config (ImageNet mean / std, bicubic, crop_pct 0.9); a `config.json`
#: `pretrained_cfg` states its own.
CONVERTER = Converter(
    name=FORMAT,
    family="swin_v2",
    head_maps=(SWIN_22K_TO_1K,),
    matches=matches,
    infer=infer_config,
    convert=convert,
    preprocessing=dict(IMAGENET_PREPROCESSING, crop_pct=0.9),
)
