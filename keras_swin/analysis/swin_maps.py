"""Swin attention in image coordinates: windows stitched, shift undone.

A Swin block pads its (H, W) token map at the bottom/right to (Hp, Wp),
rolls it by -shift on both axes and cuts it into M x M windows (see
`WindowLayout`). Its attention arrays, (B, nW, heads, M*M, M*M), are
therefore indexed in that rolled, padded frame. The functions here put
them back where the tokens sit in the image: the token at rolled
position (r, c) is the original token ((r + shift) % Hp, (c + shift) %
Wp), and original tokens with row >= H or column >= W are padding.

Numpy only.
"""

from __future__ import annotations

import numpy as np

from keras_swin.analysis.layout import WindowLayout


def _check_layout(layout: WindowLayout) -> None:
    m = layout.window
    problems = []
    if m < 1:
        problems.append(f"window {m} < 1")
    elif layout.padded_height % m or layout.padded_width % m:
        problems.append(
            f"padded map {layout.padded_height}x{layout.padded_width} is "
            f"not a multiple of the window {m}"
        )
    if not 0 <= layout.shift < max(m, 1):
        problems.append(f"shift {layout.shift} is not in [0, window {m})")
    if not (
        0 < layout.height <= layout.padded_height
        and 0 < layout.width <= layout.padded_width
    ):
        problems.append(
            f"map {layout.height}x{layout.width} does not fit the padded map "
            f"{layout.padded_height}x{layout.padded_width}"
        )
    if problems:
        raise ValueError(
            f"Inconsistent WindowLayout {layout.name!r}: "
            + "; ".join(problems)
            + "."
        )


def window_token_positions(
    layout: WindowLayout,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Where each window token of a block sits in the stage's token map.

    Args:
        layout: the block's `WindowLayout`.

    Returns:
        `(rows, cols, valid)`, each (nW, M*M): the original (unshifted,
        unpadded) row and column of token t of window w, windows and
        tokens row-major as in the attention arrays; `valid` is False for
        padding tokens (row >= H or column >= W).

    Example:
        >>> layout = WindowLayout("b", 0, 1, 3, 3, 2, 1, 4, 4, 4, 12, 12)
        >>> rows, cols, valid = window_token_positions(layout)
        >>> rows[0].tolist(), cols[0].tolist(), valid[0].tolist()
        ([1, 1, 2, 2], [1, 2, 1, 2], [True, True, True, True])
    """
    _check_layout(layout)
    m, shift = layout.window, layout.shift
    hp, wp = layout.padded_height, layout.padded_width
    # (Hp, Wp) rolled-frame coordinates -> original coordinates
    r, c = np.meshgrid(np.arange(hp), np.arange(wp), indexing="ij")
    rows, cols = (r + shift) % hp, (c + shift) % wp

    def partition(x):
        # (Hp, Wp) -> (Hp/M, M, Wp/M, M) -> (nW, M*M)
        x = x.reshape(hp // m, m, wp // m, m).transpose(0, 2, 1, 3)
        return x.reshape(-1, m * m)

    rows, cols = partition(rows), partition(cols)
    valid = (rows < layout.height) & (cols < layout.width)
    return rows, cols, valid


def _check_windows(shape, layout: WindowLayout, what: str) -> None:
    m2 = layout.window**2
    if len(shape) < 3 or shape[1] != layout.num_windows or shape[-1] != m2:
        raise ValueError(
            f"{what} of shape {tuple(shape)} does not match {layout.name!r}: "
            f"expected (B, nW={layout.num_windows}, ..., M*M={m2}) for "
            f"{layout.padded_height}x{layout.padded_width} padded map and "
            f"window {layout.window}."
        )


def _check_block_probs(probs: np.ndarray, layout: WindowLayout) -> None:
    """Refuses what is not one Swin block's (B, nW, heads, M*M, M*M)."""
    m2 = layout.window**2
    if probs.ndim != 5 or probs.shape[-2] != m2:
        raise ValueError(
            f"probs of shape {probs.shape} is not one Swin block's "
            f"attention for {layout.name!r}: expected (B, "
            f"nW={layout.num_windows}, heads, {m2}, {m2})."
        )
    _check_windows(probs.shape, layout, "probs")


def stitch_windows(values, layout: WindowLayout) -> np.ndarray:
    """Per-token values given per window, back on the stage's image grid.

    Args:
        values: (B, nW, ..., M*M) one value per window token (e.g. the
            attention a query receives, or a per-token statistic), in the
            block's rolled, padded frame.
        layout: the block's `WindowLayout`.

    Returns:
        (B, ..., H, W) float array: windows stitched, the cyclic shift
        undone and the padding tokens removed. Every token of the map is
        in exactly one window, so nothing is summed or dropped.

    Raises:
        ValueError: the shape does not match the layout.

    Example:
        >>> layout = WindowLayout("b", 0, 0, 2, 2, 2, 0, 2, 2, 4, 8, 8)
        >>> stitch_windows(np.arange(4.0).reshape(1, 1, 4), layout).tolist()
        [[[0.0, 1.0], [2.0, 3.0]]]
    """
    values = np.asarray(values)
    _check_windows(values.shape, layout, "values")
    rows, cols, valid = window_token_positions(layout)
    batch, middle = values.shape[0], values.shape[2:-1]
    # (B, nW, ..., M*M) -> (B, ..., nW * M*M)
    flat = np.moveaxis(values, 1, -2).reshape(batch, *middle, -1)
    target = (rows * layout.width + cols).ravel()[valid.ravel()]
    out = np.zeros(
        (batch, *middle, layout.height * layout.width),
        dtype=np.result_type(values.dtype, np.float32),
    )
    out[..., target] = flat[..., valid.ravel()]
    return out.reshape(batch, *middle, layout.height, layout.width)


def query_token(layout: WindowLayout, query_yx) -> tuple[int, int]:
    """The token of a stage's map that covers input pixel (y, x).

    Args:
        layout: the block's `WindowLayout`.
        query_yx: (y, x) in input pixels, 0 <= y < image_height,
            0 <= x < image_width.

    Returns:
        (row, column) in the stage's (H, W) token map:
        (floor(y / stride), floor(x / stride)).

    Raises:
        ValueError: the pixel is outside the image, or maps to no token.

    Example:
        >>> layout = WindowLayout("b", 1, 0, 3, 3, 3, 0, 3, 3, 8, 24, 24)
        >>> query_token(layout, (17, 5))
        (2, 0)
    """
    y, x = (float(v) for v in query_yx)
    if not (0 <= y < layout.image_height and 0 <= x < layout.image_width):
        raise ValueError(
            f"Query pixel (y={y:g}, x={x:g}) is outside the "
            f"{layout.image_height}x{layout.image_width} input image; "
            f"expected 0 <= y < {layout.image_height} and "
            f"0 <= x < {layout.image_width}."
        )
    row, col = int(y // layout.stride), int(x // layout.stride)
    if row >= layout.height or col >= layout.width:
        raise ValueError(
            f"Query pixel (y={y:g}, x={x:g}) falls on token ({row}, {col}), "
            f"outside {layout.name!r}'s {layout.height}x{layout.width} map "
            f"(stride {layout.stride})."
        )
    return row, col


def swin_query_attention(probs, layout: WindowLayout, query_yx) -> np.ndarray:
    """The attention of one query pixel's token, in image coordinates.

    Finds the token of the stage that covers input pixel `query_yx`, its
    window and place in the block's rolled, padded frame, and puts the
    weights it gives to the keys of its window at the keys' original
    positions on the stage's (H, W) map. Tokens outside the query's
    window get 0 (they are not attended); weights on padding keys are
    dropped, so a row may sum to a little less than 1.

    Args:
        probs: (B, nW, heads, M*M, M*M) attention probabilities of one
            Swin block (query axis before key axis).
        layout: the block's `WindowLayout`.
        query_yx: (y, x) in input pixels.

    Returns:
        (B, heads, H, W) float array, row-major image coordinates of the
        stage's token map (token (i, j) covers input pixels
        [i*stride, (i+1)*stride) x [j*stride, (j+1)*stride)).

    Raises:
        ValueError: shapes that do not match the layout, or a query
            outside the image.

    Example:
        >>> layout = WindowLayout("b", 0, 0, 2, 2, 2, 0, 2, 2, 4, 8, 8)
        >>> probs = np.full((1, 1, 1, 4, 4), 0.25)
        >>> swin_query_attention(probs, layout, (0, 0)).shape
        (1, 1, 2, 2)
    """
    probs = np.asarray(probs)
    _check_block_probs(probs, layout)
    row, col = query_token(layout, query_yx)
    m = layout.window
    r = (row - layout.shift) % layout.padded_height
    c = (col - layout.shift) % layout.padded_width
    window = (r // m) * (layout.padded_width // m) + c // m
    token = (r % m) * m + c % m
    weights = probs[:, window, :, token, :]  # (B, heads, M*M)
    rows, cols, valid = window_token_positions(layout)
    keep = valid[window]
    target = rows[window][keep] * layout.width + cols[window][keep]
    out = np.zeros(
        (probs.shape[0], probs.shape[2], layout.height * layout.width),
        dtype=np.result_type(probs.dtype, np.float32),
    )
    out[..., target] = weights[..., keep]
    return out.reshape(*out.shape[:2], layout.height, layout.width)
