"""Official Swin Transformer (microsoft/Swin-Transformer) `.pth` format.

Layout (see the golden FORMAT.md): a state dict with `patch_embed.*`,
`layers.{i}.blocks.{j}.{norm1,attn.{qkv,proj,relative_position_bias_table},
norm2,mlp.{fc1,fc2}}`, PatchMerging at the END of stage i as
`layers.{i}.downsample.{norm,reduction}`, `norm`, `head`, plus the buffers
`relative_position_index` (every block) and `attn_mask` (shifted blocks).
Linear weights are (out, in); the fused qkv's output axis is (3, heads,
head_dim), the layout our `Attention` uses, so it is only transposed.
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
    check_model_config,
    conv_kernel,
    dense_rules,
    linear_kernel,
    norm_rules,
)
from weights_tools.heads import SWIN_22K_TO_1K
from weights_tools.window_index import relative_position_index

FORMAT = "official_swin"

_BLOCK = r"layers\.(\d+)\.blocks\.(\d+)\."
_KERAS_BLOCK = r"layers_\1/blocks_\2/"


def _absolute_position(array: np.ndarray) -> np.ndarray:
    # Official (1, L, C) row-major tokens -> (1, h, w, C) feature map
    # (square grid); timm already stores (1, h, w, C).
    if array.ndim == 4:
        return array
    side = math.isqrt(array.shape[1])
    return array.reshape(1, side, side, array.shape[2])


#: The stages: patch embedding, blocks and patch merging, shared with the
#: dense backbone (`dense_swin`), whose checkpoints store them alike.
STAGE_RULES = [
    Rule(r"patch_embed\.proj\.weight", "patch_embed/proj/kernel", conv_kernel),
    Rule(r"patch_embed\.proj\.bias", "patch_embed/proj/bias"),
    *norm_rules(r"patch_embed\.norm", "patch_embed/norm"),
    *norm_rules(_BLOCK + r"norm1", _KERAS_BLOCK + "norm1"),
    *norm_rules(_BLOCK + r"norm2", _KERAS_BLOCK + "norm2"),
    Rule(
        _BLOCK + r"attn\.relative_position_bias_table",
        _KERAS_BLOCK + "attn/relative_position_bias_table",
    ),
    *dense_rules(_BLOCK + r"attn\.qkv", _KERAS_BLOCK + "attn/qkv"),
    *dense_rules(_BLOCK + r"attn\.proj", _KERAS_BLOCK + "attn/proj"),
    *dense_rules(_BLOCK + r"mlp\.fc1", _KERAS_BLOCK + "mlp/fc1"),
    *dense_rules(_BLOCK + r"mlp\.fc2", _KERAS_BLOCK + "mlp/fc2"),
    Rule(
        r"layers\.(\d+)\.downsample\.reduction\.weight",
        r"layers_\1_downsample/reduction/kernel",
        linear_kernel,
    ),
    *norm_rules(
        r"layers\.(\d+)\.downsample\.norm", r"layers_\1_downsample/norm"
    ),
]
#: The classification model's final LayerNorm and head.
HEAD_RULES = [*norm_rules(r"norm", "norm"), *dense_rules(r"head", "head")]
RULES = [
    *STAGE_RULES,
    Rule(
        r"absolute_pos_embed",
        "absolute_pos_embed/embedding",
        _absolute_position,
    ),
    *HEAD_RULES,
]

_OUTPUT_NORM = re.compile(r"norm\d+\.(weight|bias)")
_INDEX = re.compile(_BLOCK + r"attn\.relative_position_index")
_MASK = re.compile(_BLOCK + r"attn_mask")


def matches(tensors: dict[str, np.ndarray], meta=None) -> bool:
    """Whether `tensors` look like an official Swin state dict.

    Example:
        >>> matches({"patch_embed.proj.weight": w,
        ...          "layers.0.blocks.0.attn.qkv.weight": q})
        True
    """
    # Per-output norms `norm{i}` make it a dense backbone (`dense_swin`);
    # V2 attention (`logit_scale`, `cpb_mlp`) is `official_swinv2`'s.
    return (
        "patch_embed.proj.weight" in tensors
        and not any(
            k.endswith(".attn.logit_scale") or ".attn.cpb_mlp." in k
            for k in tensors
        )
        and any(re.match(_BLOCK + r"attn\.qkv\.weight", k) for k in tensors)
        and not any(_OUTPUT_NORM.fullmatch(k) for k in tensors)
    )


def _stage_blocks(tensors) -> dict[int, set[int]]:
    stages: dict[int, set[int]] = {}
    for key in tensors:
        match = re.match(_BLOCK, key)
        if match:
            stages.setdefault(int(match[1]), set()).add(int(match[2]))
    if sorted(stages) != list(range(len(stages))):
        raise ConversionError(
            f"Stages must be numbered 0..n-1, found {sorted(stages)}."
        )
    for i, blocks in stages.items():
        if sorted(blocks) != list(range(len(blocks))):
            raise ConversionError(
                f"Blocks of stage {i} must be numbered 0..n-1, found "
                f"{sorted(blocks)}."
            )
    return stages


def _table_window(rows: int, key: str) -> int:
    side = math.isqrt(rows)
    if side * side != rows or side % 2 == 0:
        raise ConversionError(
            f"{key} has {rows} rows; a relative position table has "
            "(2M - 1)^2 rows for a window of side M."
        )
    return (side + 1) // 2


def stage_layout(tensors: dict[str, np.ndarray]) -> tuple:
    """Depths, heads and window of each stage, read from the tensors.

    Heads are the columns and the window the rows ((2M - 1)^2) of each
    stage's first `relative_position_bias_table`.

    Args:
        tensors: official-layout keys (`layers.{i}.blocks.{j}.*`).

    Returns:
        (depths, num_heads, windows): one int per stage each.

    Raises:
        ConversionError: stages or blocks not numbered 0..n-1, a stage
            without a table, or a table that is no square window's.

    Example:
        >>> stage_layout(read_pth("swin_tiny_patch4_window7_224.pth"))
        ((2, 2, 6, 2), (3, 6, 12, 24), [7, 7, 7, 7])
    """
    stages = _stage_blocks(tensors)
    depths = tuple(len(stages[i]) for i in range(len(stages)))
    tables = [
        tensors.get(f"layers.{i}.blocks.0.attn.relative_position_bias_table")
        for i in range(len(depths))
    ]
    if any(t is None for t in tables):
        raise ConversionError(
            "The checkpoint has no relative_position_bias_table in some "
            "stage, so heads and window cannot be read from it; pass "
            "num_heads=... and window_size=... to load_checkpoint."
        )
    num_heads = tuple(int(t.shape[1]) for t in tables)
    windows = [
        _table_window(
            t.shape[0], f"layers.{i}.blocks.0.attn.relative_position_bias_table"
        )
        for i, t in enumerate(tables)
    ]
    return depths, num_heads, windows


def infer_config(
    tensors: dict[str, np.ndarray], meta=None, overrides=None
) -> dict:
    """`SwinTransformer` arguments that reproduce the checkpoint's model.

    Read from the tensors: embed_dim, patch size, depths, heads (table
    columns), window (table rows of stage 0), MLP ratio, qkv bias, patch
    norm, absolute position embedding, classes (0 without a head). The
    image size comes from the absolute position embedding, the
    `attn_mask` buffers (nW windows of M x M at stage i) and stages whose
    table was clamped to the map size; they must agree; 224 otherwise.

    Args:
        tensors: the official state dict as numpy arrays.

    Returns:
        dict with the `SwinTransformer` keyword arguments plus `classes`
        and `input_shape`.

    Raises:
        ConversionError: an inconsistent or incomplete checkpoint.

    Example:
        >>> infer_config(read_pth("swin_tiny_patch4_window7_224.pth"))
        {'embed_dim': 96, 'depths': (2, 2, 6, 2), ...}
    """
    proj = tensors["patch_embed.proj.weight"]
    embed_dim, channels, patch = proj.shape[0], proj.shape[1], proj.shape[2]
    depths, num_heads, stage_windows = stage_layout(tensors)
    window = stage_windows[0]

    sizes = {}
    ape = tensors.get("absolute_pos_embed")
    if ape is not None and ape.ndim == 4:
        if ape.shape[1] != ape.shape[2]:
            raise ConversionError(
                f"absolute_pos_embed is a {ape.shape[1]}x{ape.shape[2]} grid; "
                "pass input_shape=... for a non-square image."
            )
        sizes["absolute_pos_embed"] = ape.shape[1] * patch
    elif ape is not None:
        tokens = ape.shape[1]
        side = math.isqrt(tokens)
        if side * side != tokens:
            raise ConversionError(
                f"absolute_pos_embed has {tokens} tokens, not a square grid."
            )
        sizes["absolute_pos_embed"] = side * patch
    for key, mask in tensors.items():
        match = _MASK.fullmatch(key)
        if match:
            stage = int(match[1])
            m = math.isqrt(mask.shape[1])
            sizes[key] = math.isqrt(mask.shape[0]) * m * 2**stage * patch
    for i, w in enumerate(stage_windows):
        if w < window:
            sizes[f"clamped window of stage {i}"] = w * 2**i * patch
    if len(set(sizes.values())) > 1:
        raise ConversionError(
            "The checkpoint's buffers disagree on the image size: "
            + ", ".join(f"{k} -> {v}" for k, v in sizes.items())
        )
    image = next(iter(sizes.values()), 224)

    fc1 = tensors["layers.0.blocks.0.mlp.fc1.weight"]
    head = tensors.get("head.weight")
    config = dict(
        embed_dim=int(embed_dim),
        depths=depths,
        num_heads=num_heads,
        window_size=int(window),
        patch_size=int(patch),
        mlp_ratio=fc1.shape[0] / embed_dim,
        qkv_bias="layers.0.blocks.0.attn.qkv.bias" in tensors,
        patch_norm="patch_embed.norm.weight" in tensors,
        absolute_position_embedding="absolute_pos_embed" in tensors,
        layer_norm_epsilon=1e-5,
        classes=0 if head is None else int(head.shape[0]),
        input_shape=(image, image, int(channels)),
    )
    return check_model_config(config)


def convert(tensors: dict[str, np.ndarray], meta=None) -> Converted:
    """Renames an official Swin state dict to this package's weight paths.

    The `relative_position_index` buffers are checked against the index
    this package computes for the block's window (a mismatch means an
    unknown variant and is an error); `attn_mask` buffers are rebuilt by
    the model and dropped.

    Args:
        tensors: the official state dict as numpy arrays.

    Returns:
        A `Converted` ready for `weights_tools.convert.fit_checkpoint`.

    Example:
        >>> converted = convert(read_pth("checkpoint.pth"))
        >>> converted.weights["layers_0/blocks_0/attn/qkv/kernel"].shape
        (96, 288)
    """
    return apply_rules(tensors, RULES, skip=checked_buffers(tensors))


def checked_buffers(tensors: dict[str, np.ndarray]) -> list[str]:
    """The keys of the buffers a model rebuilds, each index verified.

    Every `relative_position_index` must equal the official index of its
    window; `attn_mask` buffers are listed as they are (the model builds
    its masks for the map size it runs at).

    Args:
        tensors: official-layout keys.

    Returns:
        The buffer keys, to skip when renaming.

    Raises:
        ConversionError: an index that is not the official one (an
            unknown variant).

    Example:
        >>> checked_buffers(read_pth("swin_tiny_patch4_window7_224.pth"))[0]
        'layers.0.blocks.0.attn.relative_position_index'
    """
    buffers = []
    for key, array in tensors.items():
        match = _INDEX.fullmatch(key)
        if match:
            side = math.isqrt(array.shape[0]) if array.ndim else 0
            if array.shape != (side * side, side * side) or not (
                np.array_equal(array, relative_position_index(side))
            ):
                raise ConversionError(
                    f"{key} {list(array.shape)} differs from the official "
                    f"relative position index of a {side}x{side} window."
                )
            buffers.append(key)
        elif _MASK.fullmatch(key):
            buffers.append(key)
    return buffers


#: The official Swin `.pth` layout (`weights_tools.formats.FORMATS`).
CONVERTER = Converter(
    name=FORMAT,
    family="swin",
    head_maps=(SWIN_22K_TO_1K,),
    matches=matches,
    infer=infer_config,
    convert=convert,
)
