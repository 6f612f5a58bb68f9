"""In-graph resize matrices: torch bicubic (plain, antialiased), scipy zoom.

A position embedding stored at a checkpoint's grid must be resized to the
grid of each input when a model runs at a size chosen per call
(`input_shape=(None, None, 3)`). The reference code bases resize it with
three different filters, none of which is the bicubic of
`tf.image.resize` or `jax.image.resize` (A = -0.5, other borders):

* `"bicubic"`: `torch.nn.functional.interpolate(mode="bicubic",
  align_corners=False, antialias=False)`: cubic convolution with
  A = -0.75 on the 4 nearest samples, border samples replicated (the
  official Swin detection backbone's `ape`, Hugging Face
  `interpolate_pos_encoding`);
* `"bicubic_antialias"`: the same with `antialias=True` (timm's
  `resample_abs_pos_embed`): PIL-style, A = -0.5, support stretched by
  the scale when downsampling, taps outside the grid dropped and the
  weights normalised;
* `"zoom"`: `scipy.ndimage.zoom(order=1)`, corner-aligned linear (the
  official ViT's `load_pretrained`).

Each is separable, so a resize of an (h, w) grid is two matrix products:
`resize_matrix(n_in, n_out, method)` gives the (n_out, n_in) weights and
`resize_grid` applies them to a (B, h, w, C) map. A size known when the
graph is built (a Python int: every shape under `jax.jit`, in PyTorch and
in eager TensorFlow) gets the weights of the numpy functions that convert
checkpoints (`weights_tools.resample`, float64, rounded once to float32),
a constant of the graph; a size known only at run time (a tensor: an
input of unknown size in a TensorFlow graph) gets the same weights built
in-graph with `keras.ops`, in float32.

In-graph, sample positions come from integer numerators and denominators
(e.g. torch's source coordinate `(i + 0.5) * n_in / n_out - 0.5` is
`((2i + 1) n_in - n_out) / (2 n_out)`), so the tap indices are exact and
only the fractional offsets are rounded to float32; the two paths agree
to about 2e-7.
"""

from __future__ import annotations

import functools

import numpy as np
from keras import ops

from keras_swin.layers import windows
from weights_tools.resample import (
    _bicubic_aa_matrix,
    _bicubic_matrix,
    _linear_zoom_matrix,
)

#: The methods of `resize_matrix` and `resize_grid`.
METHODS = ("bicubic", "bicubic_antialias", "zoom")

# Cubic convolution coefficients: torch's plain bicubic uses -0.75, its
# antialiased (PIL style) bicubic uses -0.5.
_CUBIC_A = -0.75
_CUBIC_AA_A = -0.5


def _check_method(method: str) -> None:
    if method not in METHODS:
        raise ValueError(
            f"Unknown resize method {method!r}; choose one of "
            f"{', '.join(repr(m) for m in METHODS)}."
        )


def _is_static(n) -> bool:
    """True for a Python (or numpy) int, False for a tensor."""
    return isinstance(n, (int, np.integer)) and not isinstance(n, bool)


def _cubic(x, a: float):
    """Keys' cubic convolution kernel with coefficient `a` (support 2)."""
    # Factored about the kernel's roots (x = 1, x = 2), which keeps float32
    # rounding near 1e-7 where the expanded polynomials lose about 1e-6.
    x = ops.abs(x)
    near = (x - 1.0) * (((a + 2.0) * x - 1.0) * x - 1.0)
    far = a * (x - 1.0) * (x - 2.0) * (x - 2.0)
    zero = ops.zeros_like(x)
    return ops.where(x < 1.0, near, ops.where(x < 2.0, far, zero))


def _fraction(numerator, denominator):
    """`numerator / denominator` of int tensors, as float32."""
    return ops.divide(
        ops.cast(numerator, "float32"), ops.cast(denominator, "float32")
    )


def _bicubic(n_in: int, n_out, rows, columns):
    """torch bicubic, align_corners False: 4 taps, border replicated."""
    # Source coordinate (i + 0.5) * n_in / n_out - 0.5 = num / den.
    num = (2 * rows + 1) * n_in - n_out
    den = 2 * n_out
    base = ops.floor_divide(num, den)
    t = _fraction(num - base * den, den)  # in [0, 1)
    matrix = 0.0
    for offset, distance in zip(
        (-1, 0, 1, 2), (t + 1.0, t, 1.0 - t, 2.0 - t), strict=True
    ):
        index = ops.clip(base + offset, 0, n_in - 1)
        hit = ops.cast(ops.equal(index, columns), "float32")
        matrix = matrix + hit * _cubic(distance, _CUBIC_A)
    return matrix


def _bicubic_antialias(n_in: int, n_out, rows, columns):
    """torch bicubic with antialias (PIL style), normalised taps."""
    # With s = max(n_in, n_out): scale = n_in / n_out, stretch = s / n_out,
    # support = 2 * stretch, center = (2i + 1) n_in / (2 n_out); taps
    # floor(center -+ support + 0.5), clipped to the grid.
    widest = ops.maximum(n_out, n_in)
    den = 2 * n_out
    center = (2 * rows + 1) * n_in
    lo = ops.maximum(ops.floor_divide(center - 4 * widest + n_out, den), 0)
    hi = ops.minimum(ops.floor_divide(center + 4 * widest + n_out, den), n_in)
    inside = ops.logical_and(columns >= lo, columns < hi)
    # (j - center + 0.5) / stretch = ((2j + 1) n_out - (2i + 1) n_in) / 2s.
    distance = _fraction((2 * columns + 1) * n_out - center, 2 * widest)
    weights = ops.where(
        inside, _cubic(distance, _CUBIC_AA_A), ops.zeros_like(distance)
    )
    total = ops.sum(weights, axis=1, keepdims=True)
    safe = ops.where(ops.equal(total, 0.0), ops.ones_like(total), total)
    return weights / safe


def _zoom(n_in: int, n_out, rows, columns):
    """scipy.ndimage.zoom(order=1): corners aligned, linear."""
    # Source coordinate i * (n_in - 1) / (n_out - 1) (0 when n_out == 1).
    num = rows * (n_in - 1)
    den = ops.maximum(n_out - 1, 1)
    left = ops.floor_divide(num, den)
    frac = _fraction(num - left * den, den)
    right = ops.minimum(left + 1, n_in - 1)
    on_left = ops.cast(ops.equal(left, columns), "float32")
    on_right = ops.cast(ops.equal(right, columns), "float32")
    return on_left * (1.0 - frac) + on_right * frac


_MATRICES = {
    "bicubic": _bicubic,
    "bicubic_antialias": _bicubic_antialias,
    "zoom": _zoom,
}
_NUMPY_MATRICES = {
    "bicubic": _bicubic_matrix,
    "bicubic_antialias": _bicubic_aa_matrix,
    "zoom": _linear_zoom_matrix,
}


@functools.lru_cache(maxsize=256)
def static_resize_matrix(method: str, n_in: int, n_out: int) -> np.ndarray:
    """The numpy weights of `resize_matrix` for int sizes, cached.

    Read-only float32 (n_out, n_in), computed once per sizes, so a model
    called again at one size rebuilds nothing (and `windows.constant`
    converts it to a tensor once).

    Example:
        >>> static_resize_matrix("zoom", 3, 5).shape
        (5, 3)
    """
    matrix = _NUMPY_MATRICES[method](n_in, n_out).astype("float32")
    matrix.setflags(write=False)
    return matrix


def _graph_matrix(n_in: int, n_out, method: str):
    """`resize_matrix` built with keras.ops, for any int or tensor n_out."""
    n_out = int(n_out) if _is_static(n_out) else ops.cast(n_out, "int32")
    rows = ops.expand_dims(ops.arange(n_out, dtype="int32"), 1)
    columns = ops.expand_dims(ops.arange(n_in, dtype="int32"), 0)
    matrix = _MATRICES[method](n_in, n_out, rows, columns)
    return ops.cast(matrix, "float32")


def resize_matrix(n_in: int, n_out, method: str, like=None):
    """The (n_out, n_in) weights resizing one axis from n_in to n_out.

    `n_out` may be a scalar int tensor, e.g. a dimension of
    `keras.ops.shape(x)` in a TensorFlow graph of unknown input size: the
    weights are then built in-graph with `keras.ops`. A Python int gets
    the numpy weights of `weights_tools.resample` (`_bicubic_matrix`,
    `_bicubic_aa_matrix`, `_linear_zoom_matrix`) as a constant. Both
    agree to float32 rounding; at `n_out == n_in` both are the identity
    matrix exactly.

    Args:
        n_in: the input size, a positive Python int.
        n_out: the output size, a positive int or a scalar int tensor.
        method: `"bicubic"` (torch, A = -0.75, no antialias),
            `"bicubic_antialias"` (torch with `antialias=True`) or
            `"zoom"` (`scipy.ndimage.zoom(order=1)`).
        like: optional tensor whose device a static matrix must be on
            (PyTorch; see `windows.constant`).

    Returns:
        A float32 tensor of shape (n_out, n_in): `output = matrix @ input`
        along the axis.

    Raises:
        ValueError: `method` is unknown, or a static size is not positive.

    Example:
        >>> m = resize_matrix(4, 8, "bicubic")
        >>> tuple(m.shape)
        (8, 4)
        >>> keras.ops.convert_to_numpy(resize_matrix(3, 3, "zoom"))
        array([[1., 0., 0.],
               [0., 1., 0.],
               [0., 0., 1.]], dtype=float32)
    """
    _check_method(method)
    if not _is_static(n_in) or int(n_in) < 1:
        raise ValueError(f"n_in must be a positive int, got {n_in!r}.")
    n_in = int(n_in)
    if _is_static(n_out):
        if int(n_out) < 1:
            raise ValueError(f"n_out must be a positive size, got {n_out!r}.")
        return windows.constant(
            static_resize_matrix, method, n_in, int(n_out), like=like
        )
    return _graph_matrix(n_in, n_out, method)


def _resize_axis(x, axis: int, n_out, method: str):
    """Resizes axis 1 or 2 of a float32 (B, h, w, C) map to n_out."""
    n_in = x.shape[axis]
    if _is_static(n_out) and int(n_out) == n_in:
        return x
    matrix = resize_matrix(n_in, n_out, method, like=x)
    equation = "Hh,bhwc->bHwc" if axis == 1 else "Ww,bhwc->bhWc"
    if _is_static(n_out):
        return ops.einsum(equation, matrix, x)
    # A size known only at run time: skip the product when it equals the
    # stored one, so the result is the input bit for bit whatever the
    # precision of matrix products on the device (TF32).
    return ops.cond(
        ops.equal(n_out, n_in),
        lambda: x,
        lambda: ops.einsum(equation, matrix, x),
    )


def resize_grid(x, size, method: str):
    """Resizes a (B, h, w, C) map to (B, H, W, C) with a torch/scipy filter.

    Two matrix products (`resize_matrix` on the height, then the width),
    in float32; the result has the input's dtype. An axis whose static
    size does not change is left alone, so a map at its own size comes
    back unchanged, bit for bit. A size known only at run time (a tensor)
    is compared in-graph and skips the products when equal too.

    Args:
        x: (B, h, w, C) tensor with static h and w.
        size: (H, W), each a positive int or a scalar int tensor; an int
            means (size, size).
        method: `"bicubic"`, `"bicubic_antialias"` or `"zoom"`, see
            `resize_matrix`.

    Returns:
        (B, H, W, C) tensor, `x.dtype`.

    Raises:
        ValueError: `method` is unknown, `x` is not 4-D, or its h and w
            are not static.

    Example:
        >>> grid = keras.random.normal((1, 14, 14, 64))
        >>> resize_grid(grid, (24, 32), "bicubic").shape
        (1, 24, 32, 64)
        >>> resize_grid(grid, 14, "zoom") is grid
        True
    """
    _check_method(method)
    if len(x.shape) != 4 or x.shape[1] is None or x.shape[2] is None:
        raise ValueError(
            "resize_grid expects a (B, h, w, C) map with static h and w, "
            f"got shape {tuple(x.shape)}."
        )
    if _is_static(size):
        size = (size, size)
    size = tuple(size)
    if len(size) != 2:
        raise ValueError(f"size must be (H, W), got {size!r}.")
    if all(_is_static(n) for n in size) and (
        (int(size[0]), int(size[1])) == (x.shape[1], x.shape[2])
    ):
        return x
    dtype = x.dtype
    y = ops.cast(x, "float32")
    y = _resize_axis(y, 1, size[0], method)
    y = _resize_axis(y, 2, size[1], method)
    return ops.cast(y, dtype)
