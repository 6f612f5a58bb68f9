"""A classification Swin checkpoint read as a dense backbone.

The official detection and segmentation code fine-tunes from ImageNet
weights: its backbone's `init_weights` loads the classification state
dict non-strictly, so the final `norm` and the `head` go unused and the
per-output LayerNorms `norm{i}` keep their fresh initialisation (weight
1, bias 0). `as_backbone` does the same to a converted checkpoint of any
Swin format (official, timm, Hugging Face), for the `"swin_backbone"`
family, and says so in the notes. A Swin V2 classification checkpoint
(family `"swin_v2"`) becomes a `"swin_v2_backbone"` the same way; no
official V2 dense checkpoint exists.
"""

from __future__ import annotations

import math
import os

import numpy as np

from weights_tools import dense_swin, mmseg_upernet, official_swinv2
from weights_tools.common import ConversionError, Converted
from weights_tools.convert import Checkpoint, convert_checkpoint

#: Source of the arrays of a per-output LayerNorm that starts fresh.
NEW_NORM = "(new LayerNorm: gamma 1, beta 0)"

#: The model family of dense Swin V2 backbones (`SwinBackboneV2`).
V2_FAMILY = "swin_v2_backbone"

_FAMILIES = ("swin", "swin_v2", dense_swin.FAMILY, mmseg_upernet.FAMILY)


def _copy(converted: Converted) -> Converted:
    return Converted(
        weights=dict(converted.weights),
        sources=dict(converted.sources),
        source_shapes=dict(converted.source_shapes),
        unmatched=dict(converted.unmatched),
        notes=list(converted.notes),
        ignored=dict(converted.ignored),
    )


def _stage_windows(converted: Converted, stages: int, source: str) -> list:
    windows = []
    for i in range(stages):
        path = f"layers_{i}/blocks_0/attn/relative_position_bias_table"
        table = converted.weights.get(path)
        if table is None:
            raise ConversionError(
                f"{source} has no {path}: the window of stage {i} cannot be "
                "checked."
            )
        side = math.isqrt(table.shape[0])
        windows.append((side + 1) // 2)
    return windows


def _trained_windows(config: dict) -> list[int]:
    """The window each V2 stage's position MLP was trained at.

    A stage's `pretrained_window_sizes` entry when set, else the window
    the classifier ran it at: `window_size`, or the stage's map side at
    the checkpoint's input size where the classification code clamped
    the window to a smaller map (0 for a 1 x 1 map).

    Example:
        >>> _trained_windows(dict(window_size=8, input_shape=(32, 32, 3),
        ...     patch_size=4, pretrained_window_sizes=(0, 0, 0, 0)))
        [8, 4, 2, 0]
    """
    pretrained = config["pretrained_window_sizes"]
    windows = official_swinv2.stage_windows(
        int(config["window_size"]),
        config["input_shape"],
        int(config["patch_size"]),
        len(pretrained),
    )
    return list(official_swinv2.trained_windows(windows, pretrained))


def _v2_windows(checkpoint: Checkpoint, source: str):
    """(window, pretrained_window_sizes, notes) of a V2 dense backbone.

    The dense backbone never clamps the window, so a stage the classifier
    ran at a window clamped to its map keeps that window as its
    pre-training window: its MLP then reads the coordinates it was
    trained on, spread over the full window.
    """
    config = checkpoint.config
    window = int(config["window_size"])
    trained = _trained_windows(config)
    notes = []
    for i, (side, stored) in enumerate(
        zip(trained, config["pretrained_window_sizes"], strict=True)
    ):
        if 0 < side < window and not stored:
            notes.append(
                f"{source}: stage {i} ran at a window of {side} (clamped "
                f"to its {side}x{side} map by the classification code); "
                f"the backbone runs it at window {window} "
                "(window_mode='pad') with pretrained_window_size "
                f"{side}, so its position MLP reads the coordinates it "
                "was trained on."
            )
    return window, tuple(trained), notes


def _check_out_indices(out_indices, stages: int) -> tuple[int, ...]:
    indices = tuple(out_indices)
    if (
        not indices
        or len(set(indices)) != len(indices)
        or not all(type(i) is int and 0 <= i < stages for i in indices)
    ):
        raise ValueError(
            f"out_indices must be distinct stage indices in 0..{stages - 1}, "
            f"got {out_indices!r}."
        )
    return tuple(sorted(indices))


def _move_to_ignored(converted: Converted, prefix: str) -> list[str]:
    paths = [p for p in converted.weights if p.startswith(prefix)]
    for path in paths:
        converted.ignored[converted.sources[path]] = tuple(
            converted.source_shapes[path]
        )
    return converted.drop(prefix)


def as_backbone(checkpoint, out_indices=(0, 1, 2, 3)) -> Checkpoint:
    """A Swin checkpoint for the dense backbone (family `swin_backbone`).

    From a classification checkpoint (family `"swin"`, any format): the
    final `norm` and the `head` are dropped (named in the notes and in
    `weights.ignored`), and `norm{i}` for each output i starts fresh
    (gamma 1, beta 0, source `NEW_NORM`), as in the official detection
    code's fine-tuning from ImageNet weights. From a dense checkpoint
    (family `"swin_backbone"`, or a `"swin_upernet"` segmenter, whose
    heads are dropped too): the `norm{i}` of outputs not asked for
    are dropped, those missing start fresh. Every stage's relative
    position table must be at the configured window: the dense code
    never clamps it, so a table the classification code clamped to a
    small map (e.g. a 64 px model with window 4, whose last stage map is
    2x2) is an error.

    From a Swin V2 classification checkpoint (family `"swin_v2"`): the
    same, for family `"swin_v2_backbone"` (`SwinBackboneV2`). No V2
    weight depends on the window, so nothing is checked or resampled:
    `pretrained_window_sizes` names, per stage, the window its position
    MLP was trained at (the checkpoint's own `pretrained_window_sizes`,
    else the window the classifier ran the stage at, clamped or not).
    Building with a larger `window_size` is then the paper's fine-tuning
    at a larger window (8 -> 16): same weights, the new window's
    coordinates scaled by the trained one.

    Args:
        checkpoint: a `Checkpoint` (`convert_checkpoint`), or a path
            converted first.
        out_indices: the output stages, 0 = stride 4.

    Returns:
        A new `Checkpoint` (the argument is not changed): same source,
        format, preprocessing and metadata; family `"swin_backbone"`
        (`"swin_v2_backbone"` from V2, its config with
        `pretrained_window_sizes`); config with `window_mode="pad"`,
        `out_indices`, `pretrain_image_size` (the checkpoint's input side),
        `input_shape=(None, None, C)` and `classes=0`.

    Raises:
        ConversionError: not a Swin checkpoint, or a stage table smaller
            than the window (the message names the stage).
        ValueError: out_indices outside the checkpoint's stages.

    Example:
        >>> backbone = as_backbone("swin_tiny_patch4_window7_224.pth")
        >>> backbone.family, backbone.config["out_indices"]
        ('swin_backbone', (0, 1, 2, 3))
        >>> backbone.weights.weights["norm2/gamma"].shape
        (384,)
        >>> backbone.weights.sources["norm2/gamma"]
        '(new LayerNorm: gamma 1, beta 0)'
    """
    if isinstance(checkpoint, str | os.PathLike):
        checkpoint = convert_checkpoint(checkpoint)
    source = checkpoint.source
    if checkpoint.family not in _FAMILIES:
        raise ConversionError(
            f"{source} is a {checkpoint.family!r} checkpoint; only Swin "
            f"checkpoints ({', '.join(_FAMILIES)}) make a Swin backbone."
        )
    config = checkpoint.config
    stages = len(config["depths"])
    out_indices = _check_out_indices(out_indices, stages)
    converted = _copy(checkpoint.weights)
    notes = []
    if checkpoint.family == "swin_v2":
        window, trained, notes = _v2_windows(checkpoint, source)
    else:
        window = dense_swin.check_full_windows(
            _stage_windows(converted, stages, source), source
        )
    heads = _move_to_ignored(converted, "decode_head/") + _move_to_ignored(
        converted, "auxiliary_head/"
    )
    if heads:
        notes.append(
            f"{source}: the segmenter's decode_head and auxiliary_head "
            f"({len(heads)} tensors, named in weights.ignored) are not "
            "used by a backbone."
        )
    dropped = _move_to_ignored(converted, "norm/") + _move_to_ignored(
        converted, "head/"
    )
    if dropped:
        notes.append(
            f"{source}: the classifier's final norm and head "
            f"({', '.join(dropped)}) are not used by a backbone."
        )
    for i in range(stages):
        if i not in out_indices and f"norm{i}/gamma" in converted.weights:
            names = _move_to_ignored(converted, f"norm{i}/")
            notes.append(
                f"{source}: norm{i} ({', '.join(names)}) is not used: "
                f"stage {i} is not among the outputs {list(out_indices)}."
            )
    have = converted.weights
    fresh = [i for i in out_indices if f"norm{i}/gamma" not in have]
    # One width per stage, read from its first block.
    for i in fresh:
        gamma = converted.weights[f"layers_{i}/blocks_0/norm1/gamma"]
        width = gamma.shape[0]
        converted.add(f"norm{i}/gamma", np.ones(width, "float32"), NEW_NORM)
        converted.add(f"norm{i}/beta", np.zeros(width, "float32"), NEW_NORM)
    if fresh:
        names = ", ".join(f"norm{i}" for i in fresh)
        plural = len(fresh) > 1
        these = "LayerNorms" if plural else "LayerNorm"
        verb, start = ("are", "start") if plural else ("is", "starts")
        notes.append(
            f"{source}: the per-output {these} {names} {verb} not in the "
            f"checkpoint and {start} fresh (gamma 1, beta 0), as when the "
            "official detection code initialises its backbone from "
            "ImageNet weights (init_weights loads the classification state "
            "dict non-strictly)."
        )
    converted.notes.extend(notes)
    height, width = config["input_shape"][:2]
    if config.get("absolute_position_embedding") and height != width:
        raise ConversionError(
            f"{source} has an absolute position embedding for a "
            f"{height}x{width} input; the backbone needs a square "
            "pre-training size."
        )
    if checkpoint.family not in ("swin", "swin_v2"):
        pretrain = config["pretrain_image_size"]
    else:
        pretrain = height if height is not None else 224
    family = dense_swin.FAMILY
    backbone = dense_swin.backbone_config(config, out_indices, window, pretrain)
    if checkpoint.family == "swin_v2":
        family = V2_FAMILY
        backbone["pretrained_window_sizes"] = trained
    return Checkpoint(
        source=source,
        format=checkpoint.format,
        family=family,
        config=backbone,
        weights=converted,
        preprocessing=dict(checkpoint.preprocessing),
        meta=checkpoint.meta,
        training_meta=checkpoint.training_meta,
    )
