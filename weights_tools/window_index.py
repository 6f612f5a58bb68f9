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
