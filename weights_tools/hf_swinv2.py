"""Hugging Face `transformers` Swin V2 (`Swinv2`) checkpoints.

A `save_pretrained` folder of `Swinv2ForImageClassification` (keys under
`swinv2.`, plus `classifier.*`) or `Swinv2Model` (no prefix):
`config.json` (`model_type` "swinv2") and `model.safetensors` or
`pytorch_model.bin`. transformers 5 keeps the Hub names for Swin V2 (no
`q_proj` scheme as for V1). Per block, `attention.self.{query, key,
value}` are fused into the official `attn.qkv` (q | k | v; `key` has no
bias, `query.bias` -> `q_bias`, `value.bias` -> `v_bias`),
`continuous_position_bias_mlp.{0,2}` -> `cpb_mlp.{0,2}`, `logit_scale`
as it is, `attention.output.dense` -> `attn.proj`, `layernorm_before`
-> `norm1` and `layernorm_after` -> `norm2` (both res-post-norm: after
the attention and after the MLP), `intermediate.dense` / `output.dense`
-> `mlp.fc1` / `mlp.fc2`. Patch merging (`encoder.layers.{i}.downsample`)
closes stage i as in the official layout, so the renamed dict is
converted by `official_swinv2`. HF's `relative_coords_table` and
`relative_position_index` are non-persistent buffers (not saved); if a
file has them they are checked like the official ones.

The architecture comes from `config.json`, each size cross-checked
against the tensors: width and patch size (`projection` [C, c, p, p]),
depths (blocks present), heads (`logit_scale` rows), MLP ratio, q/v
biases, classes (`classifier` rows against `id2label`). The window,
`pretrained_window_sizes` and image size only `config.json` tells.
Without `config.json` the official rules apply (`window_size=` must be
passed).

Where transformers' Swinv2 differs from the official model (which this
package follows):

* **Window clamp at init.** `Swinv2Layer` fixes its window and shift
  when it is built, from `config.image_size // patch_size // 2**i`
  (floored, first axis only); the official code (and this package) from
  the map the stage really gets (ceil, after padding, min(H, W)). They
  agree at `config.image_size` whenever every stage map is exact and
  square (e.g. 192, 224, 256, 384 with patch 4); otherwise, or when HF
  runs at another size than its config (it keeps the init windows, this
  package re-clamps for the size it is built at), outputs differ. The
  converter adds a note naming the stages where HF's init-time rule
  disagrees at the checkpoint's image size (`window_notes`).
* **Shift mask added twice.** `Swinv2SelfAttention` adds the -100
  shift mask twice (-200); the official code once. Softmax weights of
  masked pairs are e^-100 against e^-200 of the rest: negligible unless
  a head's logit scale (at most 100) times its cosine spread approaches
  100, which trained models rarely reach.
* **Epsilons.** HF's patch embedding and patch merging norms use 1e-5
  whatever `layer_norm_eps` says; this package has one epsilon, so only
  `layer_norm_eps` 1e-5 (every released checkpoint) is accepted.
"""

from __future__ import annotations

import re

import numpy as np

from weights_tools import hf_format, official_swinv2
from weights_tools.common import (
    ConversionError,
    Converted,
    Converter,
    check_config,
    check_int,
    check_model_config,
    renamed_view,
)
from weights_tools.heads import SWIN_22K_TO_1K
from weights_tools.hf_format import CONFIG_CHECKS, restore_sources

FORMAT = "hf_swinv2"

#: transformers' `Swinv2Config` defaults, used for what a config.json
#: leaves out (as `from_pretrained` would).
HF_DEFAULTS = dict(
    image_size=224,
    window_size=7,
    mlp_ratio=4.0,
    qkv_bias=True,
    layer_norm_eps=1e-5,
    hidden_act="gelu",
)

_SUPPORTED = {"Swinv2ForImageClassification", "Swinv2Model"}

# (regex on the key without the `swinv2.` prefix, replacement).
_NAMES = [
    (r"embeddings\.patch_embeddings\.projection\.", "patch_embed.proj."),
    (r"embeddings\.norm\.", "patch_embed.norm."),
    (r"encoder\.layers\.(\d+)\.downsample\.", r"layers.\1.downsample."),
    (r"encoder\.layers\.(\d+)\.blocks\.(\d+)\.", r"layers.\1.blocks.\2."),
    (r"layernorm\.", "norm."),
    (r"classifier\.", "head."),
]
_ATTN = r"attention\.self\."
_BLOCK_NAMES = [
    (r"layernorm_before\.", "norm1."),
    (r"layernorm_after\.", "norm2."),
    (_ATTN + r"(query|key|value)\.weight$", r"attn.\1.weight"),
    (_ATTN + r"query\.bias$", "attn.q_bias"),
    (_ATTN + r"value\.bias$", "attn.v_bias"),
    (_ATTN + r"logit_scale$", "attn.logit_scale"),
    (_ATTN + r"continuous_position_bias_mlp\.([02])\.", r"attn.cpb_mlp.\1."),
    (_ATTN + r"relative_coords_table$", "attn.relative_coords_table"),
    (_ATTN + r"relative_position_index$", "attn.relative_position_index"),
    (r"attention\.output\.dense\.", "attn.proj."),
    (r"intermediate\.dense\.", "mlp.fc1."),
    (r"output\.dense\.", "mlp.fc2."),
]
_QUERY = re.compile(r"(layers\.\d+\.blocks\.\d+\.attn\.)query\.weight")


def _rename(key: str) -> str:
    # Hugging Face Swin's two-level rename (stage/model names, then the
    # names inside a block), with Swin V2's tables.
    return hf_format._rename(key, _NAMES, _BLOCK_NAMES, "swinv2.")


def official_names(
    tensors: dict[str, np.ndarray],
) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """HF Swinv2 keys (with or without `swinv2.`) -> official V2 names.

    `query`, `key` and `value` weights are fused into `attn.qkv.weight`
    [3C, C] in that order; their biases become `q_bias` / `v_bias`. Keys
    no rule knows keep their (partly renamed) name and later fail the
    strict fit under their HF name.

    Args:
        tensors: HF key -> array.

    Returns:
        (tensors under official names, official name -> the HF key(s)).

    Raises:
        ConversionError: a query / key / value weight without its
            partners, or two keys with one official name.

    Example:
        >>> named, origin = official_names(tensors)
        >>> origin["layers.0.blocks.0.attn.qkv.weight"]
        'swinv2.encoder.layers.0.blocks.0.attention.self.query.weight + ...'
    """
    names = {k: _rename(k) for k in tensors}
    named = renamed_view(tensors, names)
    origin = {names[k]: k for k in tensors}
    for key in [k for k in named if _QUERY.fullmatch(k)]:
        prefix = _QUERY.fullmatch(key)[1]
        parts = [f"{prefix}{p}.weight" for p in ("query", "key", "value")]
        missing = [p for p in parts if p not in named]
        if missing:
            hf = origin[key].removesuffix("query.weight")
            raise ConversionError(
                f"{origin[key]} has no partner(s) "
                + ", ".join(
                    hf + p.rsplit(".", 2)[1] + ".weight" for p in missing
                )
                + "; query, key and value must all be there."
            )
        fused = prefix + "qkv.weight"
        named[fused] = np.concatenate([named.pop(p) for p in parts], axis=0)
        origin[fused] = " + ".join(origin.pop(p) for p in parts)
    return named, origin


def matches(tensors: dict[str, np.ndarray], meta=None) -> bool:
    """Whether this is a Hugging Face Swinv2 checkpoint.

    With a `config.json`: its `model_type` is "swinv2". Without one: the
    HF block names (`layernorm_before`) with V2 attention
    (`continuous_position_bias_mlp`).

    Example:
        >>> matches(read_safetensors("model.safetensors"),
        ...         {"model_type": "swinv2"})
        True
    """
    if isinstance(meta, dict) and "model_type" in meta:
        return meta.get("model_type") == "swinv2"
    return any(
        ".attention.self.continuous_position_bias_mlp." in k for k in tensors
    ) and any(".layernorm_before." in k for k in tensors)


def _value(meta: dict, key: str):
    value = meta.get(key)
    return HF_DEFAULTS.get(key) if value is None else value


def _contradiction(key, stated, found, what) -> ConversionError:
    return ConversionError(
        f"config.json: {key}={stated!r} contradicts the tensors, which "
        f"give {found!r} ({what})."
    )


def _pair(value, key: str, kind: str) -> tuple[int, int]:
    if isinstance(value, list | tuple):
        return tuple(
            check_int(v, f"{key}[{i}]", kind) for i, v in enumerate(value)
        )
    value = check_int(value, key, kind)
    return value, value


def _pretrained_windows(meta: dict, stages: int) -> tuple[int, ...]:
    # transformers reads entry i for stage i and ignores any further ones
    # (a 2-stage config keeps the default [0, 0, 0, 0]).
    value = meta.get("pretrained_window_sizes")
    if value is None:
        return (0,) * stages
    if not isinstance(value, list | tuple) or len(value) < stages:
        raise ConversionError(
            f"config.json: pretrained_window_sizes={value!r}: expected a "
            f"list of at least {stages} ints, one per stage."
        )
    for i, size in enumerate(value[:stages]):
        if type(size) is not int or size < 0 or size == 1 or size > 1024:
            raise ConversionError(
                f"config.json: pretrained_window_sizes[{i}]={size!r}: "
                "expected 0 (none) or a window side in 2..1024."
            )
    return tuple(value[:stages])


def _check_meta(meta: dict, config: dict, named: dict) -> None:
    """Cross-checks what config.json states against the tensor-derived
    `config`; raises a `ConversionError` naming the key."""
    stated = {
        "embed_dim": ("embed_dim", "patch projection rows"),
        "depths": ("depths", "blocks per stage"),
        "num_heads": ("num_heads", "logit_scale rows per stage"),
    }
    for key, (ours, what) in stated.items():
        value = meta.get(key)
        if value is None:
            continue
        value = tuple(value) if isinstance(value, list) else value
        if value != config[ours]:
            raise _contradiction(key, meta[key], config[ours], what)
    if meta.get("patch_size") is not None:
        patch = _pair(meta["patch_size"], "patch_size", "patch size")
        if patch != (config["patch_size"],) * 2:
            raise _contradiction(
                "patch_size",
                meta["patch_size"],
                config["patch_size"],
                "patch projection kernel",
            )
    channels = config["input_shape"][2]
    if meta.get("num_channels") not in (None, channels):
        raise _contradiction(
            "num_channels", meta["num_channels"], channels, "projection"
        )
    width = config["embed_dim"] * 2 ** (len(config["depths"]) - 1)
    if meta.get("hidden_size") not in (None, width):
        raise _contradiction(
            "hidden_size", meta["hidden_size"], width, "last stage width"
        )
    ratio = float(_value(meta, "mlp_ratio"))
    fc1 = named["layers.0.blocks.0.mlp.fc1.weight"].shape[0]
    if int(ratio * config["embed_dim"]) != fc1:
        raise _contradiction(
            "mlp_ratio",
            meta.get("mlp_ratio"),
            config["mlp_ratio"],
            f"intermediate.dense has {fc1} rows",
        )
    if bool(_value(meta, "qkv_bias")) != config["qkv_bias"]:
        raise _contradiction(
            "qkv_bias",
            meta.get("qkv_bias"),
            config["qkv_bias"],
            "attention.self.query.bias present",
        )


def _classes(meta: dict, named: dict) -> int:
    head = named.get("head.weight")
    architectures = meta.get("architectures") or ()
    labels = meta.get("id2label")
    count = meta.get("num_labels")
    if count is None and isinstance(labels, dict):
        count = len(labels)
    if head is None:
        if "Swinv2ForImageClassification" in architectures and count:
            raise ConversionError(
                "classifier.weight is missing: config.json describes a "
                f"Swinv2ForImageClassification with {count} labels."
            )
        return 0
    rows = int(head.shape[0])
    if count is not None and count != rows:
        key = "num_labels" if meta.get("num_labels") is not None else "id2label"
        raise _contradiction(key, count, rows, "classifier.weight rows")
    return rows


#: Keys `infer_config` reads: official name -> the HF name.
_REQUIRED = {
    "patch_embed.proj.weight": "embeddings.patch_embeddings.projection.weight",
    "layers.0.blocks.0.mlp.fc1.weight": (
        "encoder.layers.0.blocks.0.intermediate.dense.weight"
    ),
}


def _required(named: dict) -> None:
    for key, hf in _REQUIRED.items():
        if key not in named:
            raise ConversionError(
                f"The checkpoint has no swinv2.{hf} (or {hf}): not a "
                "complete Swinv2 checkpoint."
            )


def infer_config(
    tensors: dict[str, np.ndarray], meta=None, overrides=None
) -> dict:
    """`SwinTransformerV2` arguments of an HF Swinv2 checkpoint.

    Args:
        tensors: HF key -> array.
        meta: the parsed `config.json`, or None.
        overrides: values the caller passed; read only without
            `config.json` (`window_size`, `pretrained_window_sizes`).

    Returns:
        dict with the `SwinTransformerV2` keyword arguments plus
        `classes` (0 without `classifier`) and `input_shape`
        (config.json `image_size`).

    Raises:
        ConversionError: an unsupported architecture or setting, a
            config.json that contradicts the tensors, or a size out of
            range; the message names the key.

    Example:
        >>> infer_config(tensors, json.load(open("config.json")))
        {'embed_dim': 96, 'depths': (2, 2, 6, 2), 'window_size': 8, ...}
    """
    named, origin = official_names(tensors)
    _required(named)
    if meta is None:
        return official_swinv2.infer_config(named, None, overrides)
    check_config(meta, CONFIG_CHECKS)
    architectures = meta.get("architectures") or ()
    unsupported = [a for a in architectures if a not in _SUPPORTED]
    if unsupported:
        raise ConversionError(
            f"config.json: architectures {unsupported} are not supported; "
            f"this format reads {sorted(_SUPPORTED)} (a Swinv2Backbone or "
            "masked-image-modeling model is not a classifier)."
        )
    if meta.get("use_absolute_embeddings"):
        raise ConversionError(
            "config.json: use_absolute_embeddings=true is not supported "
            "(Swin V2 has no absolute position embedding; no released "
            "checkpoint uses it)."
        )
    if _value(meta, "hidden_act") != "gelu":
        raise ConversionError(
            f"config.json: hidden_act={meta['hidden_act']!r} is not "
            "supported (only 'gelu', the exact GELU)."
        )
    eps = float(_value(meta, "layer_norm_eps"))
    if eps != 1e-5:
        raise ConversionError(
            f"config.json: layer_norm_eps={eps!r} is not supported: "
            "transformers' Swinv2 applies it to the blocks and the final "
            "norm but 1e-5 to the patch embedding and merging norms, and "
            "this package has one epsilon for all (every released "
            "checkpoint uses 1e-5)."
        )
    proj = named["patch_embed.proj.weight"]
    if proj.ndim != 4 or proj.shape[2] != proj.shape[3]:
        raise ConversionError(
            f"{origin['patch_embed.proj.weight']} has shape "
            f"{list(proj.shape)}; expected [C, channels, p, p]."
        )
    embed_dim, channels, patch = (int(s) for s in proj.shape[:3])
    depths, num_heads = official_swinv2.stage_heads(named)
    fc1 = named["layers.0.blocks.0.mlp.fc1.weight"]
    image = _pair(_value(meta, "image_size"), "image_size", "image side")
    window = check_int(
        _value(meta, "window_size"), "window_size", "window size"
    )
    config = dict(
        embed_dim=embed_dim,
        depths=depths,
        num_heads=num_heads,
        window_size=window,
        pretrained_window_sizes=_pretrained_windows(meta, len(depths)),
        patch_size=patch,
        mlp_ratio=fc1.shape[0] / embed_dim,
        qkv_bias="layers.0.blocks.0.attn.q_bias" in named,
        patch_norm=True,
        layer_norm_epsilon=eps,
        classes=_classes(meta, named),
        input_shape=(image[0], image[1], channels),
    )
    _check_meta(meta, config, named)
    _check_buffers(named, config)
    return check_model_config(config)


def _check_buffers(named: dict, config: dict) -> None:
    """Stored coordinate tables / indices (HF does not save them) must be
    those transformers builds from config.json."""
    windows, pretrained = official_swinv2.buffer_windows(
        named, config["depths"]
    )
    if windows is None:
        return
    hf = hf_stage_windows(config)
    for i, (w, p) in enumerate(zip(windows, pretrained, strict=True)):
        want_p = config["pretrained_window_sizes"][i]
        want_p = 0 if want_p == hf[i][0] else want_p
        if (w, p) != (hf[i][0], want_p):
            raise ConversionError(
                f"The stored buffers of stage {i} are for window {w} "
                f"(pre-training window {p}); config.json gives window "
                f"{hf[i][0]} (pre-training window {want_p})."
            )


def hf_stage_windows(config: dict) -> list[tuple[int, int]]:
    """(window, shift) per stage as transformers' `Swinv2Layer` fixes it.

    From `config.image_size // patch_size // 2**i` on the first axis,
    once, at init: a stage not larger than the window attends it whole,
    unshifted.

    Args:
        config: `infer_config`'s result (`input_shape`, `patch_size`,
            `window_size`, `depths`).

    Returns:
        One (window, shift of the odd blocks) pair per stage.

    Example:
        >>> hf_stage_windows(dict(input_shape=(224, 224, 3), patch_size=4,
        ...                       window_size=8, depths=(2, 2, 2, 2)))
        [(8, 4), (8, 4), (8, 4), (7, 0)]
    """
    window = config["window_size"]
    rows = config["input_shape"][0] // config["patch_size"]
    out = []
    for i in range(len(config["depths"])):
        resolution = rows // 2**i
        clamped = min(resolution, window)
        out.append((clamped, 0 if resolution <= clamped else window // 2))
    return out


def official_stage_windows(config: dict, size) -> list[tuple[int, int]]:
    """(window, shift) per stage of the official rule (this package).

    The stage map is the padded image's patch grid halved (ceil) per
    stage; if min(H, W) <= window the window becomes min(H, W) and the
    shift 0.

    Args:
        config: as `hf_stage_windows`.
        size: (H, W) of the image the model is built for.

    Returns:
        One (window, shift of the odd blocks) pair per stage.

    Example:
        >>> official_stage_windows(dict(patch_size=4, window_size=12,
        ...                             depths=(2, 2, 2, 2)), (200, 200))
        [(12, 6), (12, 6), (12, 6), (7, 0)]
    """
    window, patch = config["window_size"], config["patch_size"]
    height, width = (-(-s // patch) for s in size)
    out = []
    for _ in config["depths"]:
        smallest = min(height, width)
        if smallest <= window:
            out.append((smallest, 0))
        else:
            out.append((window, window // 2))
        height, width = -(-height // 2), -(-width // 2)
    return out


def window_notes(config: dict, size=None) -> list[str]:
    """Where transformers' init-time window rule differs from this model's.

    Args:
        config: `infer_config`'s result; its `input_shape` is HF's
            `image_size`, which fixes HF's windows.
        size: (H, W) this model is built for; default the same image
            size. None sides (any size) give no note.

    Returns:
        One note per stage whose window, or the shift of its odd blocks,
        differs; else [].

    Example:
        >>> window_notes(config_of_image_size_200_window_12)
        ['stage 2: transformers fixes window 12, shift 0 ...']
    """
    size = tuple(size or config["input_shape"][:2])
    if any(s is None for s in size):
        return []
    hf = hf_stage_windows(config)
    ours = official_stage_windows(config, size)
    image = config["input_shape"][0]
    notes = []
    for i, (theirs, mine) in enumerate(zip(hf, ours, strict=True)):
        # A stage of one block has no shifted block: only windows count.
        shifted = config["depths"][i] > 1
        if theirs[0] != mine[0] or (shifted and theirs[1] != mine[1]):
            notes.append(
                f"stage {i}: transformers' Swinv2 fixes window {theirs[0]}, "
                f"shift {theirs[1]} at init (from image_size {image} // "
                f"{config['patch_size']} // {2**i}); this model, built for "
                f"{size[0]}x{size[1]}, uses window {mine[0]}, shift "
                f"{mine[1]} (the official rule), so its outputs differ "
                "from transformers' there."
            )
    return notes


def refine(config: dict, converted: Converted, extras, overrides) -> dict:
    """Adds `window_notes` to the conversion's notes; returns `config`.

    An `input_shape` among `overrides` (`checkpoint_config`) is the size
    compared; else the checkpoint's own image size.

    Example:
        >>> refine(config, converted, {}, {})["window_size"]
        8
    """
    shape = (overrides or {}).get("input_shape")
    size = tuple(shape[:2]) if shape is not None else None
    if "window_size" in config and config.get("input_shape"):
        converted.notes += window_notes(config, size)
    return config


def convert(tensors: dict[str, np.ndarray], meta=None) -> Converted:
    """HF Swinv2 checkpoint -> this package's weight paths.

    Args:
        tensors: HF key -> array.
        meta: unused.

    Returns:
        A `Converted`; sources and unmatched keys carry the HF names.

    Example:
        >>> convert(tensors).weights[
        ...     "layers_0/blocks_0/attn/qkv/kernel"].shape
        (96, 288)
    """
    named, origin = official_names(tensors)
    return restore_sources(official_swinv2.convert(named), origin)


#: Hugging Face `save_pretrained` folders of `Swinv2ForImageClassification`
#: and `Swinv2Model` (`weights_tools.formats.FORMATS`).
CONVERTER = Converter(
    name=FORMAT,
    family="swin_v2",
    head_maps=(SWIN_22K_TO_1K,),
    matches=matches,
    infer=infer_config,
    convert=convert,
    refine=refine,
)

__all__ = [
    "CONVERTER",
    "FORMAT",
    "convert",
    "hf_stage_windows",
    "infer_config",
    "matches",
    "official_names",
    "official_stage_windows",
    "window_notes",
]
