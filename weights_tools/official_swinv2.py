"""Official Swin Transformer V2 (`swin_transformer_v2.py`) `.pth` format.

Layout: as Swin V1's (`official_swin`), PatchMerging at the end of stage i
(`layers.{i}.downsample.{reduction,norm}`, the norm 2C wide), with V2's
attention per block: `attn.{qkv.weight (no bias), q_bias, v_bias,
logit_scale [heads, 1, 1], cpb_mlp.0.{weight,bias}, cpb_mlp.2.weight,
proj}` and the persistent buffers `attn.relative_coords_table`
[1, 2M-1, 2M-1, 2], `attn.relative_position_index` [M^2, M^2] and
`attn_mask` (shifted blocks). No weight depends on the window, so the
window and the pre-training window come from the buffers: the index gives
each stage's window M, the table (log-spaced offsets divided by P - 1)
its `pretrained_window_size` P. Both are checked against what this
package computes, then dropped.
"""

from __future__ import annotations

import math
import re

import numpy as np

from weights_tools.common import (
    ConversionError,
    Converted,
    Converter,
    Rule,
    apply_rules,
    check_int,
    check_model_config,
    conv_kernel,
    dense_rules,
    linear_kernel,
    norm_rules,
)
from weights_tools.heads import SWIN_22K_TO_1K
from weights_tools.official_swin import _stage_blocks
from weights_tools.window_index import (
    relative_coords_table,
    relative_position_index,
)

FORMAT = "official_swinv2"

_BLOCK = r"layers\.(\d+)\.blocks\.(\d+)\."
_KERAS_BLOCK = r"layers_\1/blocks_\2/"


def block_rules(block: str, keras_block: str) -> list[Rule]:
    """Rename rules of a V2 block, for any prefix of the block.

    Args:
        block: regex of the source block prefix, ending in a dot.
        keras_block: the Keras path it maps to, ending in a slash.

    Returns:
        Rules for norm1, norm2, the attention (qkv, q/v biases, logit
        scale, cpb_mlp, proj) and the MLP.
    """
    attn = block + r"attn\."
    keras_attn = keras_block + "attn/"
    return [
        *norm_rules(block + "norm1", keras_block + "norm1"),
        *norm_rules(block + "norm2", keras_block + "norm2"),
        Rule(attn + r"qkv\.weight", keras_attn + "qkv/kernel", linear_kernel),
        Rule(attn + r"q_bias", keras_attn + "q_bias"),
        Rule(attn + r"v_bias", keras_attn + "v_bias"),
        Rule(attn + r"logit_scale", keras_attn + "logit_scale"),
        *dense_rules(attn + r"cpb_mlp\.0", keras_attn + "cpb_mlp_0"),
        Rule(
            attn + r"cpb_mlp\.2\.weight",
            keras_attn + "cpb_mlp_2/kernel",
            linear_kernel,
        ),
        *dense_rules(attn + r"proj", keras_attn + "proj"),
        *dense_rules(block + r"mlp\.fc1", keras_block + "mlp/fc1"),
        *dense_rules(block + r"mlp\.fc2", keras_block + "mlp/fc2"),
    ]


#: Patch embedding, blocks and patch merging; the merging's norm is 2C.
STAGE_RULES = [
    Rule(r"patch_embed\.proj\.weight", "patch_embed/proj/kernel", conv_kernel),
    Rule(r"patch_embed\.proj\.bias", "patch_embed/proj/bias"),
    *norm_rules(r"patch_embed\.norm", "patch_embed/norm"),
    *block_rules(_BLOCK, _KERAS_BLOCK),
    Rule(
        r"layers\.(\d+)\.downsample\.reduction\.weight",
        r"layers_\1_downsample/reduction/kernel",
        linear_kernel,
    ),
    *norm_rules(
        r"layers\.(\d+)\.downsample\.norm", r"layers_\1_downsample/norm"
    ),
]
RULES = [
    *STAGE_RULES,
    *norm_rules(r"norm", "norm"),
    *dense_rules("head", "head"),
]

_INDEX = re.compile(_BLOCK + r"attn\.relative_position_index")
_TABLE = re.compile(_BLOCK + r"attn\.relative_coords_table")
_MASK = re.compile(_BLOCK + r"attn_mask")


def is_v2(tensors: dict) -> bool:
    """Whether a Swin state dict has V2 attention (`logit_scale`, `cpb_mlp`).

    Example:
        >>> is_v2({"layers.0.blocks.0.attn.logit_scale": s})
        True
    """
    return any(
        k.endswith(".attn.logit_scale") or ".attn.cpb_mlp." in k
        for k in tensors
    )


def timm_layout(tensors: dict) -> bool:
    """Whether a Swin state dict is timm's: `head.fc`, or PatchMerging
    stored at the start of the next stage (no `layers.0.downsample`).

    Example:
        >>> timm_layout({"layers.1.downsample.reduction.weight": w})
        True
    """
    first = any(k.startswith("layers.0.downsample.") for k in tensors)
    later = any(re.match(r"layers\.[1-9]\d*\.downsample\.", k) for k in tensors)
    return "head.fc.weight" in tensors or (later and not first)


def matches(tensors: dict[str, np.ndarray], meta=None) -> bool:
    """Whether `tensors` look like an official Swin V2 state dict.

    Example:
        >>> matches(read_pth("swinv2_tiny_patch4_window8_256.pth"))
        True
    """
    return (
        "patch_embed.proj.weight" in tensors
        and is_v2(tensors)
        and not timm_layout(tensors)
    )


def stage_heads(tensors: dict[str, np.ndarray]) -> tuple[tuple, tuple]:
    """Depths and heads per stage of a V2 state dict (official or timm).

    Heads are the rows of each stage's first `logit_scale` [heads, 1, 1].

    Returns:
        (depths, num_heads).

    Raises:
        ConversionError: stages or blocks not numbered 0..n-1, or a
            stage without `logit_scale`.

    Example:
        >>> stage_heads(read_pth("swinv2_tiny_patch4_window8_256.pth"))
        ((2, 2, 6, 2), (3, 6, 12, 24))
    """
    stages = _stage_blocks(tensors)
    depths = tuple(len(stages[i]) for i in range(len(stages)))
    heads = []
    for i in range(len(depths)):
        key = f"layers.{i}.blocks.0.attn.logit_scale"
        if key not in tensors:
            raise ConversionError(
                f"{key} is missing: a Swin V2 block stores one logit_scale "
                "per head, which gives the stage's head count."
            )
        heads.append(int(np.shape(tensors[key])[0]))
    return depths, tuple(heads)


def pretrained_window(table: np.ndarray, window: int, key: str) -> int:
    """The pre-training window P a stored `relative_coords_table` was made for.

    The largest offset M - 1 is stored as log2(8 (M - 1) / (P - 1) + 1)
    / 3, which gives P; P = 0 when the table spans M itself (the same
    table as P = M). The whole table must then equal
    `relative_coords_table(M, P)`.

    Args:
        table: the buffer, [1, 2M - 1, 2M - 1, 2].
        window: M, from the stage's index.
        key: the buffer's name, for messages.

    Returns:
        P (0 for none).

    Raises:
        ConversionError: a table that is no V2 table of window M.

    Example:
        >>> pretrained_window(buffer, 16, "layers.0.blocks.0.attn."
        ...                   "relative_coords_table")
        8
    """
    side = 2 * window - 1
    if tuple(np.shape(table)) != (1, side, side, 2):
        raise ConversionError(
            f"{key} has shape {list(np.shape(table))}; a window of side "
            f"{window} has a [1, {side}, {side}, 2] table."
        )
    flat = np.asarray(table, dtype=np.float32).reshape(-1, 2)
    candidates = [0]
    if window > 1:
        largest = float(np.max(flat[:, 0]))
        spread = 2.0 ** (3.0 * largest) - 1.0
        if spread > 0:
            candidates.append(round(8.0 * (window - 1) / spread + 1.0))
    for p in candidates:
        if p == 1 or p < 0:
            continue
        if np.allclose(flat, relative_coords_table(window, p), atol=1e-5):
            return 0 if p == window else p
    raise ConversionError(
        f"{key} is not the log-spaced coordinate table of a {window}x"
        f"{window} window for any pre-training window: an unknown variant."
    )


def buffer_windows(tensors: dict[str, np.ndarray], depths) -> tuple:
    """Each stage's window and pre-training window, from the buffers.

    Args:
        tensors: official-layout keys with the V2 buffers.
        depths: blocks per stage.

    Returns:
        (windows, pretrained_windows), one int per stage each, or
        (None, None) when the checkpoint has no buffers.

    Raises:
        ConversionError: buffers in some stages only, or blocks of a stage
            that disagree.
    """
    windows, pretrained = [], []
    for i, depth in enumerate(depths):
        stage_windows = set()
        for j in range(depth):
            prefix = f"layers.{i}.blocks.{j}.attn."
            index = tensors.get(prefix + "relative_position_index")
            table = tensors.get(prefix + "relative_coords_table")
            if index is None or table is None:
                continue
            side = math.isqrt(np.shape(index)[0]) if np.ndim(index) else 0
            stage_windows.add(
                (side, pretrained_window(table, side, prefix + "table"))
            )
        if not stage_windows:
            windows.append(None)
            pretrained.append(None)
            continue
        if len(stage_windows) > 1:
            raise ConversionError(
                f"The blocks of stage {i} disagree on (window, pre-training "
                f"window): {sorted(stage_windows)}."
            )
        (m, p) = stage_windows.pop()
        windows.append(m)
        pretrained.append(p)
    if all(w is None for w in windows):
        return None, None
    if any(w is None for w in windows):
        raise ConversionError(
            "Some stages have relative_position_index / "
            "relative_coords_table buffers and some do not: "
            f"windows {windows}."
        )
    return windows, pretrained


def stage_windows(window: int, image, patch: int, stages: int) -> tuple:
    """The window each stage attends at an image size.

    A stage whose map is not larger than the window attends the whole map
    (the official clamp), so its window is the map's smaller side. An
    unknown size (None) leaves every stage at `window`.

    Args:
        window: the model's window side.
        image: the image side, or (height, width); None sides allowed.
        patch: the patch side.
        stages: the number of stages.

    Returns:
        One int per stage.

    Example:
        >>> stage_windows(8, 256, 4, 4)
        (8, 8, 8, 8)
        >>> stage_windows(12, 192, 4, 4)
        (12, 12, 12, 6)
    """
    sizes = (image, image) if isinstance(image, int) else tuple(image)[:2]
    if None in sizes:
        return (window,) * stages
    # (H/p, W/p), halved (rounded up) by each merging.
    grid = [-(-int(size) // patch) for size in sizes]
    windows = []
    for _ in range(stages):
        windows.append(min(window, *grid))
        grid = [-(-g // 2) for g in grid]
    return tuple(windows)


def trained_windows(windows, pretrained) -> tuple:
    """The window each stage's position MLP was trained at.

    The paper's fine-tuning rule: a model run at another window keeps the
    coordinate scale of training, i.e. `pretrained_window_sizes` set to
    the windows the weights were trained at: their own pre-training
    window P where they have one, else the stage's window (a 1 x 1 window
    has no scale: 0).

    Args:
        windows: each stage's window in training (`stage_windows`).
        pretrained: the weights' own `pretrained_window_sizes`.

    Returns:
        One int per stage.

    Example:
        >>> trained_windows((8, 8, 8, 8), (0, 0, 0, 0))
        (8, 8, 8, 8)
        >>> trained_windows((16, 16, 16, 8), (12, 12, 12, 6))
        (12, 12, 12, 6)
    """
    return tuple(
        int(p) or (int(w) if w > 1 else 0)
        for w, p in zip(windows, pretrained, strict=True)
    )


def fine_tune_pretrained(config: dict, window: int, overrides) -> tuple:
    """`pretrained_window_sizes` for the checkpoint `config` run at `window`.

    The checkpoint's own values at its own window, or when the caller
    passes them; at another window, `trained_windows` (the paper's
    fine-tuning rule), so that the position MLPs see the coordinate scale
    they were trained on.

    Args:
        config: the checkpoint's inferred arguments at its own window
            (`window_size`, `pretrained_window_sizes`, `input_shape`,
            `patch_size`, `depths`).
        window: the window the model will be built with.
        overrides: the caller's values (`pretrained_window_sizes` wins).

    Returns:
        One int per stage.

    Example:
        >>> fine_tune_pretrained(dict(window_size=8, input_shape=(256, 256,
        ...     3), patch_size=4, depths=(2, 2, 6, 2),
        ...     pretrained_window_sizes=(0, 0, 0, 0)), 16, {})
        (8, 8, 8, 8)
    """
    stored = tuple(config["pretrained_window_sizes"])
    if (overrides or {}).get("pretrained_window_sizes") is not None:
        return stored
    if window == config["window_size"]:
        return stored
    windows = stage_windows(
        config["window_size"],
        config["input_shape"],
        config["patch_size"],
        len(config["depths"]),
    )
    return trained_windows(windows, stored)


def _image_size(tensors, windows, window: int, patch: int) -> int | None:
    sizes = {}
    for key, mask in tensors.items():
        match = _MASK.fullmatch(key)
        if match:
            stage = int(match[1])
            m = math.isqrt(np.shape(mask)[1])
            side = math.isqrt(np.shape(mask)[0]) * m
            sizes[key] = side * 2**stage * patch
    for i, w in enumerate(windows or ()):
        if w < window:
            sizes[f"clamped window of stage {i}"] = w * 2**i * patch
    if len(set(sizes.values())) > 1:
        raise ConversionError(
            "The checkpoint's buffers disagree on the image size: "
            + ", ".join(f"{k} -> {v}" for k, v in sizes.items())
        )
    return next(iter(sizes.values()), None)


def infer_config(
    tensors: dict[str, np.ndarray], meta=None, overrides=None
) -> dict:
    """`SwinTransformerV2` arguments that reproduce the checkpoint's model.

    Read from the tensors: embed_dim, patch size, depths, heads
    (`logit_scale` rows), MLP ratio, q/v biases, patch norm, classes (0
    without a head). From the buffers: the window (stage 0's index),
    `pretrained_window_sizes` (each stage's coordinate table) and the
    image size (`attn_mask` window counts, stages clamped to their map);
    256 when nothing tells. A checkpoint saved without buffers needs
    `window_size=` (and `pretrained_window_sizes=` for a fine-tune)
    passed.

    Args:
        tensors: the official state dict as numpy arrays.
        meta: unused (no config.json in this format).
        overrides: values the caller passed (`window_size`,
            `pretrained_window_sizes`).

    Returns:
        dict with the `SwinTransformerV2` keyword arguments plus
        `classes` and `input_shape`.

    Raises:
        ConversionError: an inconsistent or incomplete checkpoint.

    Example:
        >>> infer_config(read_pth("swinv2_tiny_patch4_window8_256.pth"))
        {'embed_dim': 96, 'depths': (2, 2, 6, 2), ...}
    """
    proj = tensors["patch_embed.proj.weight"]
    embed_dim, channels, patch = proj.shape[0], proj.shape[1], proj.shape[2]
    depths, num_heads = stage_heads(tensors)
    windows, pretrained = buffer_windows(tensors, depths)
    window = (overrides or {}).get("window_size")
    if windows is not None:
        window = windows[0] if window is None else window
    elif window is None:
        raise ConversionError(
            "This Swin V2 checkpoint has no relative_position_index / "
            "relative_coords_table buffers, and no weight of V2 depends on "
            "the window: pass window_size=... (and pretrained_window_sizes="
            "... for a model fine-tuned from another window, e.g. (12, 12, "
            "12, 6) for the 22K -> 1K fine-tunes)."
        )
    window = check_int(window, "window_size", "window size", "the checkpoint")
    if pretrained is None:
        pretrained = (0,) * len(depths)
    # The image size from the window the checkpoint ran at, not from a
    # `window_size` override (a larger window at fine-tuning time).
    stored = window if windows is None else windows[0]
    image = _image_size(tensors, windows, stored, patch) or 256
    if windows is not None and window != stored:
        # Another window than the checkpoint's: the paper's fine-tuning
        # rule, unless the caller passes pretrained_window_sizes.
        pretrained = fine_tune_pretrained(
            dict(
                window_size=stored,
                input_shape=(image, image),
                patch_size=int(patch),
                depths=depths,
                pretrained_window_sizes=pretrained,
            ),
            window,
            overrides,
        )

    fc1 = tensors["layers.0.blocks.0.mlp.fc1.weight"]
    head = tensors.get("head.weight")
    config = dict(
        embed_dim=int(embed_dim),
        depths=depths,
        num_heads=num_heads,
        window_size=int(window),
        pretrained_window_sizes=tuple(int(p) for p in pretrained),
        patch_size=int(patch),
        mlp_ratio=fc1.shape[0] / embed_dim,
        qkv_bias="layers.0.blocks.0.attn.q_bias" in tensors,
        patch_norm="patch_embed.norm.weight" in tensors,
        layer_norm_epsilon=1e-5,
        classes=0 if head is None else int(head.shape[0]),
        input_shape=(image, image, int(channels)),
    )
    return check_model_config(config)


def checked_buffers(tensors: dict[str, np.ndarray]) -> list[str]:
    """The buffer keys a model rebuilds, each index verified.

    Every `relative_position_index` must equal the official index of its
    window (the tables were verified by `infer_config`); `attn_mask`
    buffers are rebuilt for the size the model runs at.

    Returns:
        The buffer keys, to skip when renaming.

    Raises:
        ConversionError: an index that is not the official one.
    """
    buffers = []
    for key, array in tensors.items():
        if _INDEX.fullmatch(key):
            side = math.isqrt(array.shape[0]) if array.ndim else 0
            if array.shape != (side * side, side * side) or not (
                np.array_equal(array, relative_position_index(side))
            ):
                raise ConversionError(
                    f"{key} {list(array.shape)} differs from the official "
                    f"relative position index of a {side}x{side} window."
                )
            buffers.append(key)
        elif _TABLE.fullmatch(key) or _MASK.fullmatch(key):
            buffers.append(key)
    return buffers


def convert(tensors: dict[str, np.ndarray], meta=None) -> Converted:
    """Renames an official Swin V2 state dict to this package's paths.

    Args:
        tensors: the official state dict as numpy arrays.

    Returns:
        A `Converted` ready for `weights_tools.convert.fit_checkpoint`.

    Example:
        >>> converted = convert(read_pth("swinv2_tiny_patch4_window8_256.pth"))
        >>> converted.weights["layers_0/blocks_0/attn/logit_scale"].shape
        (3, 1, 1)
    """
    return apply_rules(tensors, RULES, skip=checked_buffers(tensors))


#: The official Swin V2 `.pth` layout (`weights_tools.formats.FORMATS`).
CONVERTER = Converter(
    name=FORMAT,
    family="swin_v2",
    head_maps=(SWIN_22K_TO_1K,),
    matches=matches,
    infer=infer_config,
    convert=convert,
)
