"""Official Swin dense-prediction checkpoints (detection, segmentation).

Format `"official_swin_dense"`, family `"swin_backbone"`. The checkpoints
of microsoft/Swin-Transformer-Object-Detection (mmdetection 2.x) and
microsoft/Swin-Transformer-Semantic-Segmentation (mmsegmentation) are
`torch.save({'meta': {...}, 'state_dict': {...}})`, sometimes with an
`'optimizer'`. The backbone (`SwinTransformer` of
`mmdet/models/backbones/swin_transformer.py`) lies under `backbone.`:

* the official classification names (`patch_embed.*`,
  `layers.{i}.blocks.{j}.*`, `layers.{i}.downsample.*`, the int64
  `relative_position_index` buffers; no `attn_mask`, no final `norm`,
  no `head`), renamed by `official_swin.STAGE_RULES`;
* `norm{i}`, one LayerNorm per output stage i of `out_indices`;
* with `ape`, `absolute_pos_embed` as NCHW [1, C, Hp, Wp] at the
  pre-training grid (`pretrain_img_size // patch`), stored here as
  (1, Hp, Wp, C).

Everything else (`neck.`, `rpn_head.`, `roi_head.`, `decode_head.`,
`auxiliary_head.`, ...) is not converted: it is listed in the notes,
grouped by prefix, and kept by name in `Converted.ignored`. A state
dict of the backbone alone (no `backbone.` prefix, with `norm{i}`) is
read too. The `meta` block reaches `Checkpoint.training_meta` through
`readers.read_checkpoint_extras`.

The architecture is inferred from the tensors, with the semantics of the
dense code: `window_mode="pad"` (the window is never clamped, so every
stage's table has the configured window), `input_shape=(None, None, C)`,
`classes=0`, `out_indices` from the `norm{i}` present.
"""

from __future__ import annotations

import re
from collections import defaultdict

import numpy as np

from weights_tools import official_swin
from weights_tools.common import (
    ConversionError,
    Converted,
    Converter,
    Rule,
    apply_rules,
    check_model_config,
    norm_rules,
)

FORMAT = "official_swin_dense"
#: The model family of dense Swin backbones (keras_swin's `SwinBackbone`).
FAMILY = "swin_backbone"
#: Where mmdetection / mmsegmentation keep the backbone.
PREFIX = "backbone."

_OUTPUT_NORM = re.compile(r"norm(\d+)\.(weight|bias)")
_TABLE = re.compile(r"layers\.(\d+)\.blocks\.(\d+)\.attn\.")
_QKV = re.compile(r"layers\.\d+\.blocks\.\d+\.attn\.qkv\.weight")


def _ape_nhwc(array: np.ndarray) -> np.ndarray:
    # [1, C, Hp, Wp] (NCHW, the dense code's parameter) -> (1, Hp, Wp, C)
    return np.ascontiguousarray(array.transpose(0, 2, 3, 1))


#: Rename table of the backbone (keys without `backbone.`).
RULES = [
    *official_swin.STAGE_RULES,
    Rule(r"absolute_pos_embed", "absolute_pos_embed/embedding", _ape_nhwc),
    *norm_rules(r"norm(\d+)", r"norm\1"),
]


def split_backbone(
    tensors: dict[str, np.ndarray], prefix: str = PREFIX
) -> tuple[dict[str, np.ndarray], dict[str, str], dict[str, np.ndarray]]:
    """Separates a detector's or segmenter's backbone from its heads.

    Args:
        tensors: the state dict.
        prefix: the backbone's key prefix. When no key has it, every key
            is the backbone's (a backbone saved on its own).

    Returns:
        (backbone, origin, others): the backbone's tensors without the
        prefix, its key -> the file's key, and the other tensors under
        their file keys.

    Example:
        >>> backbone, origin, others = split_backbone(
        ...     {"backbone.norm0.weight": g, "neck.conv.weight": w})
        >>> list(backbone), list(others)
        (['norm0.weight'], ['neck.conv.weight'])
    """
    if not any(k.startswith(prefix) for k in tensors):
        return dict(tensors), {k: k for k in tensors}, {}
    backbone, origin, others = {}, {}, {}
    for key, array in tensors.items():
        if key.startswith(prefix):
            backbone[key[len(prefix) :]] = array
            origin[key[len(prefix) :]] = key
        else:
            others[key] = array
    return backbone, origin, others


def note_ignored(
    converted: Converted,
    others: dict[str, np.ndarray],
    source: str,
    why: str,
    shown: int = 3,
) -> None:
    """Records tensors left out on purpose: `ignored` and one note.

    The note groups the keys by their first component with counts and
    the first names of each group; `converted.ignored` keeps them all.

    Args:
        converted: the conversion, changed in place.
        others: key -> array of the tensors left out.
        source: what holds them, for the note (e.g. "the checkpoint").
        why: the reason, ending the note's first clause.
        shown: names shown per group.

    Example:
        >>> note_ignored(converted, {"neck.conv.weight": w}, "the file",
        ...              "a backbone has no use for them")
        >>> converted.notes[-1]
        '1 tensor of the file is not converted (a backbone has ...'
    """
    if not others:
        return
    groups: dict[str, list[str]] = defaultdict(list)
    for key, array in others.items():
        converted.ignored[key] = tuple(np.shape(array))
        groups[key.split(".")[0]].append(key)
    parts = []
    for group, keys in groups.items():
        names = ", ".join(keys[:shown])
        more = f", and {len(keys) - shown} more" if len(keys) > shown else ""
        parts.append(f"{group}.* ({len(keys)}: {names}{more})")
    count = len(others)
    converted.notes.append(
        f"{count} tensor{'s' if count > 1 else ''} of {source} "
        f"{'are' if count > 1 else 'is'} not converted ({why}): "
        + "; ".join(parts)
        + ". All are named in Converted.ignored."
    )


def _has_backbone(tensors, prefix: str) -> bool:
    return f"{prefix}patch_embed.proj.weight" in tensors and any(
        k.startswith(prefix) and _QKV.fullmatch(k[len(prefix) :])
        for k in tensors
    )


def matches(tensors: dict[str, np.ndarray], meta=None) -> bool:
    """Whether `tensors` are an official dense Swin checkpoint.

    Either a detector / segmenter state dict with the backbone under
    `backbone.`, or a backbone alone with its `norm{i}`.

    Example:
        >>> matches({"backbone.patch_embed.proj.weight": w,
        ...          "backbone.layers.0.blocks.0.attn.qkv.weight": q})
        True
    """
    if _has_backbone(tensors, PREFIX):
        return True
    return _has_backbone(tensors, "") and any(
        _OUTPUT_NORM.fullmatch(k) for k in tensors
    )


def output_indices(backbone: dict[str, np.ndarray], stages: int) -> tuple:
    """The `out_indices` a backbone's `norm{i}` tensors imply.

    Args:
        backbone: keys without the prefix.
        stages: the number of stages.

    Returns:
        The sorted stage indices i with `norm{i}`.

    Raises:
        ConversionError: no `norm{i}` at all, a weight without its bias
            (or the reverse), or an index beyond the last stage.

    Example:
        >>> output_indices({"norm1.weight": g, "norm1.bias": b}, 4)
        (1,)
    """
    found: dict[int, set[str]] = defaultdict(set)
    for key in backbone:
        match = _OUTPUT_NORM.fullmatch(key)
        if match:
            found[int(match[1])].add(match[2])
    if not found:
        raise ConversionError(
            "The dense checkpoint has no per-output LayerNorm norm{i} "
            "(e.g. backbone.norm0.weight): it is not the official dense "
            "backbone, or its norms were removed. A classification "
            "checkpoint is read as a backbone with "
            "weights_tools.backbone.as_backbone."
        )
    for index, parts in sorted(found.items()):
        if parts != {"weight", "bias"}:
            missing = ({"weight", "bias"} - parts).pop()
            raise ConversionError(
                f"norm{index}.{missing} is missing: the output LayerNorm "
                f"norm{index} needs both weight and bias."
            )
        if index >= stages:
            raise ConversionError(
                f"norm{index} names stage {index}, but the checkpoint has "
                f"{stages} stages (0..{stages - 1})."
            )
    return tuple(sorted(found))


def check_full_windows(windows, source: str = "The checkpoint") -> int:
    """The one window of a dense backbone, which every stage must have.

    The dense code never clamps the window to a small map, so each stage's
    relative position table is for the configured window.

    Args:
        windows: each stage's table window (`official_swin.stage_layout`).
        source: what the tables come from, for the message.

    Returns:
        The window.

    Raises:
        ConversionError: a stage table smaller than stage 0's (a window
            clamped by the classification code) or another size.

    Example:
        >>> check_full_windows([7, 7, 7, 7])
        7
    """
    window = windows[0]
    for stage, size in enumerate(windows):
        if size != window:
            rows = (2 * size - 1) ** 2
            raise ConversionError(
                f"{source}: stage {stage}'s relative position table has "
                f"{rows} rows (a {size}x{size} window), stage 0's is for "
                f"window {window}. The dense backbone runs every stage with "
                "the full window (window_mode='pad') and needs each table "
                "at that window; "
                + (
                    "this one was clamped to a small map by the "
                    "classification code. Use it with window_mode='clamp' "
                    "at its own input size, or a checkpoint made at a size "
                    "where no stage clamps."
                    if size < window
                    else "the tables disagree."
                )
            )
    return window


def _check_tables(backbone: dict[str, np.ndarray], window: int) -> None:
    rows = (2 * window - 1) ** 2
    for key, array in backbone.items():
        match = _TABLE.match(key)
        if not match:
            continue
        if key.endswith("relative_position_bias_table") and (
            array.ndim != 2 or array.shape[0] != rows
        ):
            raise ConversionError(
                f"{key} has shape {list(array.shape)}; every block of this "
                f"backbone has window {window}, i.e. {rows} rows."
            )
        if key.endswith("relative_position_index") and (
            array.shape != (window * window, window * window)
        ):
            raise ConversionError(
                f"{key} has shape {list(array.shape)}; window {window} "
                f"needs [{window * window}, {window * window}]."
            )


def backbone_config(
    config: dict,
    out_indices,
    window: int,
    pretrain_image_size: int = 224,
) -> dict:
    """`SwinBackbone` arguments from a classification model's arguments.

    Keeps the architecture (`embed_dim`, `depths`, `num_heads`,
    `patch_size`, `mlp_ratio`, `qkv_bias`, `patch_norm`,
    `absolute_position_embedding`, `layer_norm_epsilon`) and sets what a
    backbone has instead of a classifier.

    Args:
        config: `SwinTransformer` arguments (`official_swin.infer_config`).
        out_indices: the output stages.
        window: the window of every stage.
        pretrain_image_size: the side the absolute position embedding
            was made for (224 without one).

    Returns:
        dict with `window_mode="pad"`, `out_indices`, `window_size`,
        `pretrain_image_size`, `input_shape=(None, None, C)` and
        `classes=0`.

    Example:
        >>> backbone_config(infer_config(t), (0, 1, 2, 3), 7)["window_mode"]
        'pad'
    """
    keys = (
        "embed_dim",
        "depths",
        "num_heads",
        "patch_size",
        "mlp_ratio",
        "qkv_bias",
        "patch_norm",
        "absolute_position_embedding",
        "layer_norm_epsilon",
    )
    out = {k: config[k] for k in keys if k in config}
    out.update(
        window_size=int(window),
        pretrain_image_size=int(pretrain_image_size),
        out_indices=tuple(int(i) for i in out_indices),
        window_mode="pad",
        classes=0,
        input_shape=(None, None, int(config["input_shape"][2])),
    )
    return out


def _pretrain_size(ape: np.ndarray | None, embed_dim: int, patch: int) -> int:
    if ape is None:
        return 224
    if ape.ndim != 4 or ape.shape[0] != 1 or ape.shape[1] != embed_dim:
        raise ConversionError(
            f"absolute_pos_embed has shape {list(ape.shape)}; the dense "
            f"backbone stores it as [1, {embed_dim}, Hp, Wp] (NCHW at the "
            "pre-training grid)."
        )
    if ape.shape[2] != ape.shape[3]:
        raise ConversionError(
            f"absolute_pos_embed is a {ape.shape[2]}x{ape.shape[3]} grid; "
            "only a square pre-training size (pretrain_img_size an int) "
            "is supported."
        )
    size = int(ape.shape[2]) * patch
    return size


def infer_config(
    tensors: dict[str, np.ndarray], meta=None, overrides=None
) -> dict:
    """`SwinBackbone` arguments of an official dense checkpoint.

    From the tensors: `embed_dim`, `patch_size`, `depths`, `num_heads`,
    `window_size` (the tables, equal in every stage), `mlp_ratio`,
    `qkv_bias`, `patch_norm`, `absolute_position_embedding` and
    `pretrain_image_size` (Hp x patch of the [1, C, Hp, Wp] embedding;
    224 without one), `out_indices` (the `norm{i}` present). Fixed:
    `layer_norm_epsilon` 1e-5, `window_mode` "pad", `classes` 0,
    `input_shape` (None, None, channels).

    Args:
        tensors: the state dict (`backbone.*` and heads, or the backbone
            alone).

    Returns:
        dict of `SwinBackbone` keyword arguments, with `classes` and
        `input_shape`.

    Raises:
        ConversionError: an inconsistent backbone (tables of different
            windows, an incomplete `norm{i}`, ...), naming the key.

    Example:
        >>> infer_config(read_pth("mask_rcnn_swin_tiny_patch4_window7.pth"))
        {'embed_dim': 96, 'depths': (2, 2, 6, 2), ..., 'window_mode': 'pad'}
    """
    backbone, _, _ = split_backbone(tensors)
    _, _, windows = official_swin.stage_layout(backbone)
    window = check_full_windows(windows)
    _check_tables(backbone, window)
    plain = {
        k: v
        for k, v in backbone.items()
        if k != "absolute_pos_embed" and not _OUTPUT_NORM.fullmatch(k)
    }
    config = official_swin.infer_config(plain)
    out_indices = output_indices(backbone, len(config["depths"]))
    ape = backbone.get("absolute_pos_embed")
    size = _pretrain_size(ape, config["embed_dim"], config["patch_size"])
    config["absolute_position_embedding"] = ape is not None
    config = backbone_config(config, out_indices, window, size)
    return check_model_config(config)


def convert(tensors: dict[str, np.ndarray], meta=None) -> Converted:
    """Renames an official dense checkpoint's backbone, strictly.

    Every backbone tensor is used (an unknown one is an error here, not
    at loading); `relative_position_index` buffers are checked against
    the official index of their window; tensors outside the backbone
    are listed in the notes and in `Converted.ignored`.

    Args:
        tensors: the state dict.

    Returns:
        A `Converted` under `SwinBackbone`'s weight paths, with sources
        named by the file's keys.

    Raises:
        ConversionError: a backbone key that no rule accepts, a wrong
            index buffer or an incomplete `norm{i}`.

    Example:
        >>> converted = convert(read_pth("upernet_swin_tiny.pth"))
        >>> converted.weights["norm3/gamma"].shape
        (768,)
    """
    backbone, origin, others = split_backbone(tensors)
    depths, _, _ = official_swin.stage_layout(backbone)
    output_indices(backbone, len(depths))
    converted = apply_rules(
        backbone, RULES, skip=official_swin.checked_buffers(backbone)
    )
    converted.sources = {p: origin[s] for p, s in converted.sources.items()}
    if converted.unmatched:
        stray = ", ".join(
            f"{origin[k]} {list(s)}" for k, s in converted.unmatched.items()
        )
        raise ConversionError(
            f"The backbone has tensors the dense Swin backbone does not "
            f"have: {stray}. Expected only patch_embed.*, "
            "absolute_pos_embed, layers.{i}.blocks.{j}.*, "
            "layers.{i}.downsample.* and norm{i}.* under 'backbone.'."
        )
    note_ignored(
        converted,
        others,
        "the checkpoint outside its backbone",
        "a backbone has no use for them",
    )
    return converted


#: Official detection / segmentation checkpoints
#: (`weights_tools.formats.FORMATS`).
CONVERTER = Converter(
    name=FORMAT,
    family=FAMILY,
    matches=matches,
    infer=infer_config,
    convert=convert,
)
