"""The relative position index of a Swin window, in numpy.

Kept here, outside `keras_swin.layers`, so that reading an official Swin
checkpoint (`weights_tools.official_swin` checks its stored index buffers
against this one) and `keras-swin info` need no Keras; the layers import
it from here.
"""

from __future__ import annotations

import functools

import numpy as np


@functools.cache
def relative_position_index(
    window_size: int, table_window: int | None = None
) -> np.ndarray:
    """Row of the relative-position table for every (query, key) pair.

    index[a, b] = (h_a - h_b + T - 1) * (2T - 1) + (w_a - w_b + T - 1)
    for tokens a, b of an M x M window numbered row-major, where T is the
    window the table was made for (T >= M). With T == M this is the
    official `relative_position_index` buffer; with T > M it reads the
    offsets of a smaller window out of a larger table.

    Args:
        window_size: window side M actually used.
        table_window: window side T of the (2T-1)^2-row table; default M.

    Returns:
        Read-only int32 array (M*M, M*M).

    Example:
        >>> relative_position_index(2)
        array([[4, 3, 1, 0],
               [5, 4, 2, 1],
               [7, 6, 4, 3],
               [8, 7, 5, 4]], dtype=int32)
    """
    table_window = window_size if table_window is None else table_window
    if not 0 < window_size <= table_window:
        raise ValueError(
            f"window_size must be in [1, table_window={table_window}], "
            f"got {window_size}."
        )
    coords = np.stack(
        np.meshgrid(
            np.arange(window_size), np.arange(window_size), indexing="ij"
        )
    ).reshape(2, -1)
    rel = coords[:, :, None] - coords[:, None, :] + (table_window - 1)
    index = (rel[0] * (2 * table_window - 1) + rel[1]).astype(np.int32)
    index.setflags(write=False)
    return index


#: log2 of the coordinate range the V2 table is spread over (+-8).
_LOG_RANGE = np.float32(3.0)


@functools.cache
def relative_coords_table(
    window_size: int, pretrained_window_size: int = 0
) -> np.ndarray:
    """Swin V2's log-spaced relative coordinates of an M x M window.

    Row r = (dh + M - 1) * (2M - 1) + (dw + M - 1) holds the offset
    (dh, dw) (so `relative_position_index` reads it, as the official
    `relative_coords_table` buffer flattened), each axis divided by
    P - 1 for a pretrained window P > 0, else by M - 1, times 8, then
    sign(t) * log2(|t| + 1) / log2(8). Computed in float32 like the
    official code. A 1 x 1 window has the single offset 0 (the official
    code would divide 0 by 0; Hugging Face skips the division).

    Args:
        window_size: window side M actually attended.
        pretrained_window_size: window side P the continuous position
            bias was trained at, or 0 (the table spans M).

    Returns:
        Read-only float32 array ((2M - 1)^2, 2).

    Example:
        >>> relative_coords_table(2)
        array([[-1.0566417, -1.0566417],
               [-1.0566417,  0.       ],
               [-1.0566417,  1.0566417],
               [ 0.       , -1.0566417],
               [ 0.       ,  0.       ],
               [ 0.       ,  1.0566417],
               [ 1.0566417, -1.0566417],
               [ 1.0566417,  0.       ],
               [ 1.0566417,  1.0566417]], dtype=float32)
    """
    if window_size < 1 or pretrained_window_size < 0:
        raise ValueError(
            f"window_size must be >= 1 and pretrained_window_size >= 0, got "
            f"{window_size} and {pretrained_window_size}."
        )
    if pretrained_window_size == 1:
        raise ValueError(
            "pretrained_window_size must be 0 (none) or >= 2: the table is "
            "divided by pretrained_window_size - 1."
        )
    offsets = np.arange(-(window_size - 1), window_size, dtype=np.float32)
    span = pretrained_window_size or window_size
    if span > 1:
        offsets = offsets / np.float32(span - 1)
    offsets = offsets * np.float32(8)
    axis = np.sign(offsets) * np.log2(np.abs(offsets) + 1) / _LOG_RANGE
    grid = np.stack(np.meshgrid(axis, axis, indexing="ij"), axis=-1)
    table = grid.reshape(-1, 2).astype(np.float32)
    table.setflags(write=False)
    return table
