"""Attention rollout (Abnar & Zuidema 2020) for ViTs.

Each block's attention is mixed with the residual connection around it,
A = 0.5 * W + 0.5 * I (rows renormalised to sum to 1), where W is the
block's attention with the heads fused (mean, max or min), and the
blocks are multiplied from the first to the last:

    R = A_L @ ... @ A_2 @ A_1

Row i of R is how much output token i draws from each input token. The
class token's row over the patches is the map of the ViT paper's
Figures 6 and 14.

Numpy only.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from keras_swin.analysis.layout import TokenLayout

HEAD_FUSIONS = ("mean", "max", "min")
NORMALIZATIONS = ("max", "sum", "none")


def _fuse(probs, head_fusion, discard_ratio):
    fused = getattr(np, head_fusion)(probs, axis=1)  # (B, N, N)
    if discard_ratio:
        flat = fused.reshape(fused.shape[0], -1).copy()
        count = int(discard_ratio * flat.shape[1])
        lowest = np.argsort(flat, axis=1, kind="stable")[:, :count]
        np.put_along_axis(flat, lowest, 0.0, axis=1)
        fused = flat.reshape(fused.shape)
    return fused


def attention_rollout(
    probs_list: Sequence,
    head_fusion: str = "mean",
    discard_ratio: float = 0.0,
) -> np.ndarray:
    """Attention rollout through a ViT's blocks, residual-aware.

    For each block: W = the heads fused (`head_fusion` over the head
    axis); with `discard_ratio` > 0, the smallest `discard_ratio`
    fraction of W's N*N entries (per image) set to 0; A = 0.5 * W + 0.5 *
    I, each row divided by its sum. Then R = A_L @ ... @ A_1.

    Args:
        probs_list: one (B, heads, N, N) array per block (or (heads, N,
            N) each, for one image), first block first; query axis before
            key axis.
        head_fusion: "mean", "max" or "min" over the heads.
        discard_ratio: fraction in [0, 1) of the lowest fused weights to
            drop per block (the filtering of Abnar & Zuidema's public
            implementations); 0 keeps all.

    Returns:
        (B, N, N) float64 rollout (or (N, N) for unbatched input); every
        row sums to 1.

    Raises:
        ValueError: no blocks, mismatched shapes, an unknown fusion or a
            ratio outside [0, 1).

    Example:
        >>> w = np.array([[[0.0, 1.0], [0.0, 1.0]]])  # (heads=1, 2, 2)
        >>> attention_rollout([w]).tolist()
        [[0.5, 0.5], [0.0, 1.0]]
    """
    if head_fusion not in HEAD_FUSIONS:
        raise ValueError(
            f"Unknown head_fusion {head_fusion!r}; expected one of "
            f"{HEAD_FUSIONS}."
        )
    if not 0.0 <= discard_ratio < 1.0:
        raise ValueError(f"discard_ratio {discard_ratio} is outside [0, 1).")
    if len(probs_list) == 0:
        raise ValueError("probs_list is empty: expected one array per block.")
    arrays = [np.asarray(p, dtype=np.float64) for p in probs_list]
    unbatched = arrays[0].ndim == 3
    shape = arrays[0].shape
    for index, probs in enumerate(arrays):
        if (
            probs.shape != shape
            or probs.ndim not in (3, 4)
            or (probs.shape[-1] != probs.shape[-2])
        ):
            raise ValueError(
                f"Block {index}'s probs have shape {probs.shape}; expected "
                f"(B, heads, N, N) or (heads, N, N), the same for every "
                f"block (block 0: {shape})."
            )
    rollout = None
    for probs in arrays:
        if unbatched:
            probs = probs[None]
        fused = _fuse(probs, head_fusion, discard_ratio)
        a = 0.5 * fused + 0.5 * np.eye(fused.shape[-1])
        a = a / a.sum(axis=-1, keepdims=True)
        rollout = a if rollout is None else a @ rollout
    return rollout[0] if unbatched else rollout


def rollout_map(
    rollout,
    layout: TokenLayout,
    token: int | None = 0,
    normalize: str = "max",
) -> np.ndarray:
    """One token's rollout over the patches, as a patch grid.

    Args:
        rollout: (B, N, N) or (N, N) from `attention_rollout`.
        layout: the token layout of the model at this input size.
        token: the output token whose row is mapped: 0, the class token,
            for the papers' figures; None takes the mean of the patch
            tokens' rows (models pooled by averaging, without a class
            token).
        normalize: "max" divides each map by its maximum (values in
            [0, 1], as displayed), "sum" by its sum (a distribution over
            the patches), "none" keeps the raw rollout weights (the mass
            on prefix tokens is not in the map).

    Returns:
        (B, h, w) float64 maps on the patch grid (or (h, w) for an
        unbatched rollout), row-major like the patches.

    Raises:
        ValueError: a shape that does not match the layout, a token out
            of range or an unknown normalisation.

    Example:
        >>> layout = TokenLayout(grid=(1, 2), patch_size=16,
        ...                      num_prefix_tokens=1)
        >>> rollout = np.array([[0.5, 0.1, 0.4], [0, 1, 0], [0, 0, 1]])
        >>> rollout_map(rollout, layout).tolist()
        [[0.25, 1.0]]
    """
    if normalize not in NORMALIZATIONS:
        raise ValueError(
            f"Unknown normalize {normalize!r}; expected one of "
            f"{NORMALIZATIONS}."
        )
    rollout = np.asarray(rollout, dtype=np.float64)
    n = layout.num_tokens
    unbatched = rollout.ndim == 2
    if unbatched:
        rollout = rollout[None]
    if rollout.ndim != 3 or rollout.shape[-2:] != (n, n):
        raise ValueError(
            f"rollout of shape {rollout.shape} does not match the token "
            f"layout: expected (B, {n}, {n}) or ({n}, {n})."
        )
    prefix = layout.num_prefix_tokens
    if token is None:
        row = rollout[:, prefix:, prefix:].mean(axis=1)
    else:
        if not -n <= token < n:
            raise ValueError(f"token {token} is out of range for {n} tokens.")
        row = rollout[:, token, prefix:]
    if normalize != "none":
        scale = row.max(axis=1) if normalize == "max" else row.sum(axis=1)
        scale = scale[:, None]
        row = np.divide(row, scale, out=np.zeros_like(row), where=scale > 0)
    maps = row.reshape(-1, *layout.grid)
    return maps[0] if unbatched else maps
