"""Mean attention distance: how far, in input pixels, each head looks.

The ViT paper's Figure 7 (right) plots, for every head of every block,
the mean over images and query patches of

    d(q) = sum_k p(q, k) * |centre_q - centre_k|

where p(q, k) is the attention weight of query patch q on key patch k
and |.| the Euclidean distance between the patch centres in input
pixels. Small values: a local head; values near the image's mean patch
distance: a global one.

Numpy only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from keras_swin.analysis.layout import TokenLayout, WindowLayout
from keras_swin.analysis.swin_maps import (
    _check_block_probs,
    window_token_positions,
)


def _weighted_distance(p, distances, renormalize):
    """sum_k p[..., q, k] * distances[..., q, k] per query (float64)."""
    if renormalize:
        mass = p.sum(axis=-1, keepdims=True)
        p = np.divide(p, mass, out=np.zeros_like(p), where=mass > 0)
    return (p * distances).sum(axis=-1)


def mean_attention_distance(
    probs, layout: TokenLayout, renormalize: bool = True
) -> np.ndarray:
    """Mean attention distance per head of one ViT block, in input pixels.

    For each head: the mean over images and query patches q of
    sum_k p(q, k) * |centre_q - centre_k|, patch centres in input pixels
    (`TokenLayout.patch_centres`), Euclidean distance. Prefix tokens
    (class, registers) are neither queries nor keys.

    Args:
        probs: (B, heads, N, N) or (heads, N, N) attention probabilities
            (query axis before key axis), N = `layout.num_tokens`.
        layout: the token layout of the model at this input size.
        renormalize: True rescales each query's weights over the patch
            keys to sum to 1 (the mass on prefix tokens left out, as if
            the head had spread it over the patches in the same
            proportions); False uses the raw weights, so mass on prefix
            tokens counts as distance 0.

    Returns:
        (heads,) float64 mean distances in pixels.

    Raises:
        ValueError: probs of the wrong rank or token count.

    Example:
        >>> layout = TokenLayout(grid=(1, 2), patch_size=4,
        ...                      num_prefix_tokens=0)
        >>> probs = np.array([[[0.0, 1.0], [1.0, 0.0]]])  # (heads=1, 2, 2)
        >>> mean_attention_distance(probs, layout).tolist()
        [4.0]
    """
    probs = np.asarray(probs, dtype=np.float64)
    n = layout.num_tokens
    if probs.ndim == 3:
        probs = probs[None]
    if probs.ndim != 4 or probs.shape[-2:] != (n, n):
        raise ValueError(
            f"probs of shape {probs.shape} does not match the token layout: "
            f"expected (B, heads, {n}, {n}) or (heads, {n}, {n}) for "
            f"{layout.num_prefix_tokens} prefix tokens and a "
            f"{layout.grid[0]}x{layout.grid[1]} patch grid."
        )
    prefix = layout.num_prefix_tokens
    centres = layout.patch_centres()
    distances = np.linalg.norm(
        centres[:, None, :] - centres[None, :, :], axis=-1
    )  # (n, n)
    per_query = _weighted_distance(
        probs[..., prefix:, prefix:], distances, renormalize
    )  # (B, heads, n)
    return per_query.mean(axis=(0, 2))


def mean_attention_distance_per_block(
    probs_list: Sequence, layout: TokenLayout, renormalize: bool = True
) -> np.ndarray:
    """`mean_attention_distance` of every block of a ViT.

    Args:
        probs_list: one (B, heads, N, N) or (heads, N, N) array per block,
            first block first (e.g. the values of `attention_model`'s
            outputs, in block order).
        layout: the token layout of the model at this input size.
        renormalize: as in `mean_attention_distance`.

    Returns:
        (blocks, heads) float64 mean distances in pixels.

    Raises:
        ValueError: no blocks, or blocks with different head counts.

    Example:
        >>> layout = TokenLayout(grid=(1, 2), patch_size=4,
        ...                      num_prefix_tokens=0)
        >>> local = np.eye(2)[None]  # (heads=1, 2, 2): each patch itself
        >>> far = np.eye(2)[::-1][None]  # the other patch
        >>> mean_attention_distance_per_block([local, far], layout).tolist()
        [[0.0], [4.0]]
    """
    out = [mean_attention_distance(p, layout, renormalize) for p in probs_list]
    if not out:
        raise ValueError("probs_list is empty: expected one array per block.")
    heads = {len(d) for d in out}
    if len(heads) != 1:
        raise ValueError(
            "The blocks have different head counts "
            f"({[len(d) for d in out]}); expected one ViT's blocks."
        )
    return np.stack(out)


def swin_mean_attention_distance(
    probs, layout: WindowLayout, renormalize: bool = True
) -> np.ndarray:
    """Mean attention distance per head of one Swin block, in input pixels.

    The window tokens are put back where they sit in the image (the
    cyclic shift undone, see `window_token_positions`); padding tokens
    are neither queries nor keys. For each head: the mean over images and
    the H x W real tokens q of sum_k p(q, k) * |pos_q - pos_k| * stride,
    pos the original (row, column) of a token, so distances are between
    token centres in input pixels. Every real token is the query of
    exactly one window.

    In a shifted block a window can hold tokens from opposite sides of
    the map (wrapped around by the roll). Their distance here is the true
    one in the image, large, but the shift mask gives such pairs a
    weight of about exp(-100), so they add nothing measurable.

    Args:
        probs: (B, nW, heads, M*M, M*M) attention probabilities of one
            block (query axis before key axis).
        layout: the block's `WindowLayout`.
        renormalize: True rescales each query's weights over the real
            (non-padding) keys to sum to 1; False drops the mass on padding
            keys.

    Returns:
        (heads,) float64 mean distances in pixels.

    Raises:
        ValueError: probs whose shape does not match the layout.

    Example:
        >>> layout = WindowLayout("b", 0, 0, 1, 2, 2, 0, 2, 2, 4, 8, 8)
        >>> probs = np.zeros((1, 1, 1, 4, 4))
        >>> probs[0, 0, 0, 0, 1] = probs[0, 0, 0, 1, 0] = 1.0
        >>> swin_mean_attention_distance(probs, layout).tolist()
        [4.0]
    """
    probs = np.asarray(probs, dtype=np.float64)
    _check_block_probs(probs, layout)
    rows, cols, valid = window_token_positions(layout)
    pos = np.stack([rows, cols], axis=-1).astype(np.float64)  # (nW, M*M, 2)
    distances = np.linalg.norm(
        pos[:, :, None, :] - pos[:, None, :, :], axis=-1
    ) * float(layout.stride)  # (nW, M*M, M*M)
    p = probs * valid[None, :, None, None, :]
    per_query = _weighted_distance(
        p, distances[None, :, None], renormalize
    )  # (B, nW, heads, M*M)
    per_query = per_query * valid[None, :, None, :]
    count = probs.shape[0] * layout.height * layout.width
    return per_query.sum(axis=(0, 1, 3)) / count


def swin_mean_attention_distance_per_block(
    probs_by_block: Mapping[str, np.ndarray],
    layouts: Mapping[str, WindowLayout],
    renormalize: bool = True,
) -> dict[str, np.ndarray]:
    """`swin_mean_attention_distance` of every block, in depth order.

    Args:
        probs_by_block: {block name: (B, nW, heads, M*M, M*M)}, e.g. the
            outputs of `attention_model` ("layers_{i}_blocks_{j}").
        layouts: {block name: `WindowLayout`} for the same input size
            (`swin_window_layouts`); extra entries are ignored.
        renormalize: as in `swin_mean_attention_distance`.

    Returns:
        {block name: (heads,) distances in pixels}, ordered by (stage,
        block) from the layouts (not by name, where "blocks_10" would
        come before "blocks_2"), ready for
        `figures.plot_attention_distance(list(result.values()))`.

    Raises:
        ValueError: a block without a layout.

    Example:
        >>> layout = WindowLayout("layers_0_blocks_0", 0, 0, 1, 2, 2, 0,
        ...                       2, 2, 4, 8, 8)
        >>> probs = np.zeros((1, 1, 1, 4, 4))
        >>> probs[0, 0, 0, 0, 1] = probs[0, 0, 0, 1, 0] = 1.0
        >>> swin_mean_attention_distance_per_block(
        ...     {layout.name: probs}, {layout.name: layout})
        {'layers_0_blocks_0': array([4.])}
    """
    missing = sorted(set(probs_by_block) - set(layouts))
    if missing:
        raise ValueError(
            f"No WindowLayout for block(s) {missing}; layouts are given for "
            f"{sorted(layouts)}."
        )
    names = sorted(
        probs_by_block, key=lambda n: (layouts[n].stage, layouts[n].block)
    )
    return {
        name: swin_mean_attention_distance(
            probs_by_block[name], layouts[name], renormalize
        )
        for name in names
    }
