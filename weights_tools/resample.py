"""Resampling of position tables when a checkpoint meets another size.

A checkpoint trained at one input size or window size stores position
embeddings (ViT, Swin with `ape`) and relative position bias tables (Swin)
that fit only that size. The functions here resize them the way the
reference code bases do, so that a converted model matches the original
fine-tuned at the new size:

* `bicubic_resize`: `torch.nn.functional.interpolate(mode="bicubic")`,
  with or without `antialias`;
* `linear_zoom`: `scipy.ndimage.zoom(order=1)`, the official ViT;
* `geometric_table_resize`: timm's `resize_rel_pos_bias_table`;
* `resize_relative_position_table` and `resize_position_embedding`: the
  recipes of the official Swin, official ViT, Hugging Face and timm built
  from the three above.

Everything is plain numpy. The arithmetic is float64; the result has the
input's dtype (integer and boolean inputs give float64). The references
compute in float32, so results agree with them to float32 rounding, not
bit for bit.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

# Cubic convolution coefficients: torch's plain bicubic uses -0.75, its
# antialiased (PIL style) bicubic uses -0.5.
_CUBIC_A = -0.75
_CUBIC_AA_A = -0.5


def _cubic(x: np.ndarray, a: float) -> np.ndarray:
    """Keys' cubic convolution kernel with coefficient `a` (support 2)."""
    x = np.abs(x)
    near = ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0
    far = ((a * x - 5.0 * a) * x + 8.0 * a) * x - 4.0 * a
    return np.where(x < 1.0, near, np.where(x < 2.0, far, 0.0))


def _bicubic_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) weights of torch bicubic, align_corners=False."""
    scale = n_in / n_out
    src = (np.arange(n_out) + 0.5) * scale - 0.5  # not clamped for cubic
    base = np.floor(src)
    t = src - base
    taps = np.stack([t + 1.0, t, 1.0 - t, 2.0 - t], axis=1)
    weights = _cubic(taps, _CUBIC_A)
    index = base.astype(np.int64)[:, None] + np.arange(-1, 3)[None, :]
    index = np.clip(index, 0, n_in - 1)  # border replicate
    matrix = np.zeros((n_out, n_in))
    rows = np.repeat(np.arange(n_out), 4)
    np.add.at(matrix, (rows, index.ravel()), weights.ravel())
    return matrix


def _bicubic_aa_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) weights of torch's antialiased bicubic (PIL style)."""
    scale = n_in / n_out
    stretch = max(scale, 1.0)
    support = 2.0 * stretch
    matrix = np.zeros((n_out, n_in))
    for i in range(n_out):
        center = scale * (i + 0.5)
        # int() truncates toward zero, as the C++ cast does.
        lo = max(int(center - support + 0.5), 0)
        hi = min(int(center + support + 0.5), n_in)
        taps = np.arange(lo, hi)
        weights = _cubic((taps - center + 0.5) / stretch, _CUBIC_AA_A)
        total = weights.sum()
        if total != 0.0:
            weights = weights / total
        matrix[i, lo:hi] = weights
    return matrix


def _linear_zoom_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) weights of scipy.ndimage.zoom(order=1), corners kept."""
    step = (n_in - 1) / (n_out - 1) if n_out > 1 else 1.0
    src = np.minimum(np.arange(n_out) * step, n_in - 1)
    left = np.clip(np.floor(src).astype(np.int64), 0, n_in - 1)
    right = np.minimum(left + 1, n_in - 1)
    frac = src - left
    matrix = np.zeros((n_out, n_in))
    rows = np.arange(n_out)
    np.add.at(matrix, (rows, left), 1.0 - frac)
    np.add.at(matrix, (rows, right), frac)
    return matrix


def _uneven_linear_matrix(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """(len(target), len(source)) linear weights on an increasing grid.

    Targets outside the source grid take the edge value, like timm's
    `RegularGridInterpolator`.
    """
    n = len(source)
    right = np.minimum(np.searchsorted(source, target, side="left"), n - 1)
    left = np.clip(right - 1, 0, n - 1)
    dist_left = np.maximum(target - source[left], 0.0)
    dist_right = np.maximum(source[right] - target, 0.0)
    both_zero = (dist_left == 0.0) & (dist_right == 0.0)
    dist_left[both_zero] = 1.0
    dist_right[both_zero] = 1.0
    total = dist_left + dist_right
    matrix = np.zeros((len(target), n))
    rows = np.arange(len(target))
    np.add.at(matrix, (rows, left), dist_right / total)
    np.add.at(matrix, (rows, right), dist_left / total)
    return matrix


def _pair(value, name: str) -> tuple[int, int]:
    """An int or a pair of ints -> a pair of positive ints."""
    if isinstance(value, (int, np.integer)):
        value = (value, value)
    try:
        pair = tuple(int(v) for v in value)
    except TypeError:
        raise ValueError(
            f"{name} must be an int or (h, w), got {value!r}."
        ) from None
    if len(pair) != 2 or min(pair) < 1:
        raise ValueError(
            f"{name} must be two positive ints (h, w), got {value!r}."
        )
    return pair


def _out_dtype(array: np.ndarray) -> np.dtype:
    return np.dtype(np.float64) if array.dtype.kind in "iub" else array.dtype


def _resize_axes(
    array: np.ndarray,
    size,
    axes: Sequence[int],
    matrix_fn: Callable[[int, int], np.ndarray],
    skip_equal: bool = True,
) -> np.ndarray:
    """Applies `matrix_fn(n_in, n_out)` along each of the two `axes`.

    An axis whose size does not change is left alone when `skip_equal`.
    """
    array = np.asarray(array)
    size = _pair(size, "size")
    if array.ndim < 2:
        raise ValueError(
            f"Expected an array with at least 2 axes, got shape {array.shape}."
        )
    if len(axes) != 2:
        raise ValueError(f"axes must name two axes, got {axes!r}.")
    for a in axes:
        if not -array.ndim <= a < array.ndim:
            raise ValueError(
                f"Axis {a} is out of range for shape {array.shape}."
            )
    axes = tuple(int(a) % array.ndim for a in axes)
    if axes[0] == axes[1]:
        raise ValueError(f"axes must be two different axes, got {axes!r}.")
    dtype = _out_dtype(array)
    if tuple(array.shape[a] for a in axes) == size:
        return np.array(array, dtype=dtype, copy=True)
    out = np.asarray(array, dtype=np.float64)
    for axis, n_out in zip(axes, size, strict=True):
        n_in = out.shape[axis]
        if n_in == 0:
            raise ValueError(f"Cannot resize an empty axis {axis}.")
        if n_in == n_out and skip_equal:
            continue
        matrix = matrix_fn(n_in, n_out)
        moved = np.moveaxis(out, axis, -1)
        out = np.moveaxis(moved @ matrix.T, -1, axis)
    return np.ascontiguousarray(out).astype(dtype, copy=False)


def bicubic_resize(
    array: np.ndarray,
    size,
    *,
    axes: Sequence[int] = (0, 1),
    antialias: bool = False,
) -> np.ndarray:
    """Bicubic resize of two axes, as torch's `interpolate(mode="bicubic")`.

    Same weights as `torch.nn.functional.interpolate(x, size,
    mode="bicubic", align_corners=False, antialias=antialias)` applied to
    the two `axes`; the other axes are left alone.

    * `antialias=False`: source coordinate `(i + 0.5) * n_in / n_out - 0.5`
      (not clamped), cubic convolution with A = -0.75 on the 4 nearest
      samples, sample indices clamped to the border (replicate).
    * `antialias=True`: torch's PIL style filter. With `scale = n_in /
      n_out` and `stretch = max(scale, 1)`, output `i` is a normalised
      sum over the inputs within `2 * stretch` of `scale * (i + 0.5)`,
      cubic convolution with A = -0.5 evaluated at the distance divided
      by `stretch`. Identical to the plain filter's shape when upsampling
      except for A and for the border, where taps are dropped instead of
      replicated.

    Args:
        array: any array with at least two axes, e.g. (H, W, C).
        size: new `(h, w)` of the two axes; an int means `(size, size)`.
        axes: the two axes to resize, in the order of `size`.
        antialias: torch's `antialias` flag.

    Returns:
        `array` with `shape[axes[0]] == h` and `shape[axes[1]] == w`, the
        input's dtype. A size equal to the input's returns a copy.

    Example:
        >>> grid = np.random.rand(14, 14, 768).astype("float32")
        >>> bicubic_resize(grid, (24, 24)).shape
        (24, 24, 768)
        >>> bicubic_resize(np.zeros((1, 3, 7, 7)), 12, axes=(2, 3)).shape
        (1, 3, 12, 12)
    """
    matrix_fn = _bicubic_aa_matrix if antialias else _bicubic_matrix
    return _resize_axes(array, size, axes, matrix_fn)


def linear_zoom(
    array: np.ndarray,
    size,
    *,
    axes: Sequence[int] = (0, 1),
) -> np.ndarray:
    """Corner-aligned bilinear resize, as `scipy.ndimage.zoom(order=1)`.

    Output index `j` of an axis reads input coordinate
    `j * (n_in - 1) / (n_out - 1)` (0 when `n_out == 1`, as scipy does),
    linearly interpolated, so the corner samples are kept. Same result as
    `scipy.ndimage.zoom(array, (h / n_h, w / n_w, 1, ...), order=1)` when
    that zoom gives the shape `(h, w, ...)`. This is how the official ViT
    (`load_pretrained`) resizes its position embedding grid.

    Args:
        array: any array with at least two axes, e.g. (H, W, C).
        size: new `(h, w)` of the two axes; an int means `(size, size)`.
        axes: the two axes to resize, in the order of `size`.

    Returns:
        `array` with the two axes resized, the input's dtype. A size equal
        to the input's returns a copy.

    Example:
        >>> linear_zoom(np.zeros((14, 14, 5)), (24, 24)).shape
        (24, 24, 5)
        >>> linear_zoom(np.array([[0.0, 1.0]]), (1, 3))
        array([[0. , 0.5, 1. ]])
    """
    return _resize_axes(array, size, axes, _linear_zoom_matrix)


def _geometric_positions(src: int, dst: int) -> np.ndarray:
    """timm's source positions: geometric spacing reaching about dst // 2."""
    left, right = 1.01, 1.5
    q = (left + right) / 2.0
    while right - left > 1e-6:
        q = (left + right) / 2.0
        span = (1.0 - q ** (src // 2)) / (1.0 - q)
        if span > dst // 2:
            right = q
        else:
            left = q
    dis = []
    cur = 1.0
    for i in range(src // 2):
        dis.append(cur)
        cur += q ** (i + 1)
    return np.array([-d for d in reversed(dis)] + [0.0] + dis)


def _table_side(table: np.ndarray) -> int:
    """Side `2M - 1` of a flat ((2M-1)^2, heads) table, or ValueError."""
    if table.ndim != 2:
        raise ValueError(
            f"Expected a relative position table of shape ((2M-1)^2, heads),"
            f" got shape {table.shape}."
        )
    rows = table.shape[0]
    side = int(np.sqrt(rows) + 0.5)
    if rows == 0 or side * side != rows or side % 2 != 1:
        raise ValueError(
            f"A relative position table needs (2M-1)^2 rows (an odd "
            f"square), got shape {table.shape}."
        )
    return side


def geometric_table_resize(table: np.ndarray, new_window) -> np.ndarray:
    """Resize a Swin relative position table the way timm does.

    timm 1.0's `resize_rel_pos_bias_table` (default, no scipy) for a flat
    table. Each head's `(2M-1, 2M-1)` grid (rows = dy, columns = dx) is
    placed on source positions spaced in a geometric progression whose
    ratio `q` is found by bisection in [1.01, 1.5] so that the outermost
    position lands near `N - 1`; the new integer offsets
    `-(N-1) .. N-1` are then read by separable linear interpolation on
    that uneven grid, offsets beyond the outermost source position taking
    its value. timm computes in float32 (including the source positions);
    this computes in float64, so results differ at float32 rounding level.

    Args:
        table: `((2M-1)^2, heads)` relative position bias table.
        new_window: `N`, the new window size; `(Nh, Nw)` is also accepted.

    Returns:
        `((2Nh-1) * (2Nw-1), heads)` table, the input's dtype. A table that
        already has that size is returned as a copy.

    Raises:
        ValueError: `table` is not `((2M-1)^2, heads)`.

    Example:
        >>> table = np.random.rand(13 * 13, 4).astype("float32")  # M = 7
        >>> geometric_table_resize(table, 12).shape  # N = 12
        (529, 4)
    """
    table = np.asarray(table)
    side = _table_side(table)
    new_h, new_w = _pair(new_window, "new_window")
    dst = (2 * new_h - 1, 2 * new_w - 1)
    grid = table.reshape(side, side, table.shape[1])
    if dst == (side, side):
        out = np.array(grid, dtype=_out_dtype(table), copy=True)
        return out.reshape(-1, table.shape[1])

    def matrix_fn(n_in: int, n_out: int) -> np.ndarray:
        source = _geometric_positions(n_in, n_out)
        half = n_out // 2
        target = np.arange(-half, half + 1, dtype=np.float64)
        return _uneven_linear_matrix(source, target)

    # timm resamples both axes once either changes (a (Nh, Nw) window with
    # Nh == M still moves the dy axis onto the geometric grid).
    out = _resize_axes(grid, dst, (0, 1), matrix_fn, skip_equal=False)
    return out.reshape(dst[0] * dst[1], table.shape[1])


_TABLE_METHODS = ("bicubic", "timm")


def resize_relative_position_table(
    table: np.ndarray,
    new_window,
    *,
    method: str = "bicubic",
) -> np.ndarray:
    """Resize a Swin relative position bias table to another window size.

    Methods:
        * `"bicubic"`: the official Swin `load_pretrained`: the table,
          viewed as `(1, heads, 2M-1, 2M-1)`, goes through
          `torch.nn.functional.interpolate(size=(2N-1, 2N-1),
          mode="bicubic")` (align_corners False, no antialias).
        * `"timm"`: timm's geometric resize, see `geometric_table_resize`.

    Args:
        table: `((2M-1)^2, heads)` table, rows ordered (dy, dx) row-major.
        new_window: `N`, the new window size; `(Nh, Nw)` is also accepted.
        method: `"bicubic"` or `"timm"`.

    Returns:
        `((2Nh-1) * (2Nw-1), heads)` table, the input's dtype.

    Raises:
        ValueError: the row count is not an odd square, or `method` is
            unknown.

    Example:
        >>> table = np.random.rand(13 * 13, 3).astype("float32")  # M = 7
        >>> resize_relative_position_table(table, 12).shape
        (529, 3)
        >>> resize_relative_position_table(table, 12, method="timm").shape
        (529, 3)
    """
    if method not in _TABLE_METHODS:
        raise ValueError(
            f"Unknown method {method!r}; choose one of "
            f"{', '.join(repr(m) for m in _TABLE_METHODS)}."
        )
    table = np.asarray(table)
    side = _table_side(table)
    if method == "timm":
        return geometric_table_resize(table, new_window)
    new_h, new_w = _pair(new_window, "new_window")
    dst = (2 * new_h - 1, 2 * new_w - 1)
    grid = table.reshape(side, side, table.shape[1])
    out = bicubic_resize(grid, dst, axes=(0, 1))
    return out.reshape(dst[0] * dst[1], table.shape[1])


_EMBEDDING_METHODS = {
    "zoom": lambda grid, size: linear_zoom(grid, size, axes=(1, 2)),
    "bicubic": lambda grid, size: bicubic_resize(grid, size, axes=(1, 2)),
    "bicubic_antialias": lambda grid, size: bicubic_resize(
        grid, size, axes=(1, 2), antialias=True
    ),
}


def resize_position_embedding(
    embedding: np.ndarray,
    new_grid,
    *,
    num_prefix_tokens: int = 0,
    old_grid=None,
    method: str = "bicubic",
) -> np.ndarray:
    """Resize an absolute position embedding to another patch grid.

    The first `num_prefix_tokens` rows (class, distillation or register
    tokens) are kept as they are; the other rows are the patch grid in
    row-major order, which is resized to `new_grid`.

    Methods:
        * `"zoom"`: official ViT `load_pretrained`, `scipy.ndimage.zoom`
          with order 1 (see `linear_zoom`).
        * `"bicubic"`: torch bicubic, align_corners False, no antialias:
          Hugging Face ViT/Swin `interpolate_pos_encoding` and the official
          Swin `load_pretrained` for `absolute_pos_embed`.
        * `"bicubic_antialias"`: torch bicubic with antialias, the default
          of timm's `resample_abs_pos_embed`.

    Args:
        embedding: `(1, L, D)` with `L = num_prefix_tokens + gh * gw`.
        new_grid: new `(h, w)` patch grid; an int means `(h, h)`.
        num_prefix_tokens: leading rows that are not on the grid.
        old_grid: `(gh, gw)` of the stored grid; by default the grid is
            square.
        method: `"zoom"`, `"bicubic"` or `"bicubic_antialias"`.

    Returns:
        `(1, num_prefix_tokens + h * w, D)`, the input's dtype.

    Raises:
        ValueError: the shape does not fit `old_grid` (or is not square
            when `old_grid` is not given), or `method` is unknown.

    Example:
        >>> pos = np.random.rand(1, 1 + 14 * 14, 768).astype("float32")
        >>> resize_position_embedding(pos, (24, 24), num_prefix_tokens=1,
        ...                           method="zoom").shape
        (1, 577, 768)
    """
    if method not in _EMBEDDING_METHODS:
        raise ValueError(
            f"Unknown method {method!r}; choose one of "
            f"{', '.join(repr(m) for m in _EMBEDDING_METHODS)}."
        )
    embedding = np.asarray(embedding)
    if embedding.ndim != 3:
        raise ValueError(
            f"Expected a position embedding of shape (1, L, D), got shape "
            f"{embedding.shape}."
        )
    batch, length, dim = embedding.shape
    prefix = int(num_prefix_tokens)
    if not 0 <= prefix <= length:
        raise ValueError(
            f"num_prefix_tokens={prefix} does not fit an embedding of "
            f"shape {embedding.shape}."
        )
    count = length - prefix
    if old_grid is None:
        side = int(np.sqrt(count) + 0.5)
        if side * side != count or count == 0:
            raise ValueError(
                f"The embedding has L={length} rows, {prefix} prefix "
                f"token(s) and {count} grid rows, which is not a square; "
                f"pass old_grid=(h, w)."
            )
        old_grid = (side, side)
    old_grid = _pair(old_grid, "old_grid")
    if old_grid[0] * old_grid[1] != count:
        raise ValueError(
            f"old_grid={old_grid} needs {old_grid[0] * old_grid[1]} grid "
            f"rows, but the embedding has L={length} rows with {prefix} "
            f"prefix token(s)."
        )
    new_grid = _pair(new_grid, "new_grid")
    grid = embedding[:, prefix:].reshape(batch, *old_grid, dim)
    grid = _EMBEDDING_METHODS[method](grid, new_grid)
    grid = grid.reshape(batch, new_grid[0] * new_grid[1], dim)
    head = embedding[:, :prefix].astype(grid.dtype)
    return np.concatenate([head, grid], axis=1)
