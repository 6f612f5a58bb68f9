"""Window helpers for Swin: partition, reverse, relative index, shift mask.

Two kinds of function live here:

* tensor functions (`window_partition`, `window_reverse`) built on
  `keras.ops`; they accept static (int) or dynamic (tensor) sizes, so the
  same code serves eager calls, `jax.jit` traces and TensorFlow graphs with
  unknown height and width;
* numpy functions (`relative_position_index`, `shift_window_mask`) that
  compute the static structure of a window layout once per spatial size.
  They are cached, and their arrays are read-only so the cache cannot be
  corrupted by a caller; `constant` turns them into backend tensors once;
* the in-graph twins (`dynamic_padded_window`,
  `dynamic_relative_position_index`, `dynamic_shift_window_mask`) for
  sizes known only when a TensorFlow graph runs.

Conventions follow the official Swin code: windows are enumerated
row-major over the window grid, batch-major over images; tokens inside a
window are row-major.
"""

from __future__ import annotations

import functools

import keras
import numpy as np
from keras import ops

# Re-exported: numpy, shared with the Keras-free checkpoint readers.
from weights_tools.window_index import (  # noqa: F401
    relative_coords_table,
    relative_position_index,
)

#: Value added to attention logits between tokens of different shifted
#: regions. The official code adds a finite -100 rather than -inf.
MASK_VALUE = -100.0


_CONSTANTS: dict = {}
_TORCH_CONVERT = None


def constant(builder, *args, like=None):
    """The backend tensor of a cached numpy constant, converted once.

    `builder(*args)` is one of this module's cached numpy functions
    (`relative_position_index`, `shift_window_mask`). The array becomes a
    tensor once per backend and device, so eager calls (PyTorch, eager
    TensorFlow or JAX) do not copy it from the host again and traces embed
    it as a constant. Inside a TensorFlow graph it is a graph constant
    (nothing made inside a trace is kept).

    On PyTorch the tensor is placed on `like`'s device, the device of the
    tensor it will meet, so the constant is where the model runs whatever
    device Keras defaulted to. Without `like` it goes where Keras puts new
    tensors (its default device or a `keras.device` scope), and since only
    the converted tensor tells which device that is, each such call
    converts again (layers do it once, in `build`) and keeps the first
    tensor of each device. `torch.compile` reads the cached tensor; a miss
    inside a compiled region runs outside the graph rather than tracing
    numpy. Builders are told apart by name (a function in a dict key
    breaks a `torch.compile` graph).

    Args:
        builder: a cached function returning a read-only numpy array.
        *args: its hashable arguments (ints).
        like: optional tensor whose device the constant must be on
            (PyTorch only; other backends place constants themselves).

    Returns:
        A tensor of the current backend with the array's shape and dtype.

    Example:
        >>> constant(relative_position_index, 2).shape
        (4, 4)
    """
    backend = keras.config.backend()
    device = None
    convert = _convert
    if backend == "tensorflow":
        import tensorflow as tf

        if not tf.executing_eagerly():
            return tf.constant(builder(*args))
    elif backend == "torch":
        global _TORCH_CONVERT
        import torch

        if _TORCH_CONVERT is None:
            _TORCH_CONVERT = torch.compiler.disable(_torch_convert)
        convert = _TORCH_CONVERT
        if like is None:
            # Keras chooses the device; learn it from the converted tensor.
            tensor = convert(builder, args, None)
            key = (backend, tensor.device, builder.__name__, args)
            return _CONSTANTS.setdefault(key, tensor)
        device = like.device
    elif backend == "jax":
        convert = _jax_convert
    key = (backend, device, builder.__name__, args)
    tensor = _CONSTANTS.get(key)
    if tensor is None:
        tensor = _CONSTANTS[key] = convert(builder, args, device)
    return tensor


def _convert(builder, args, device=None):
    return ops.convert_to_tensor(np.array(builder(*args)))


def _torch_convert(builder, args, device):
    if device is None:
        return _convert(builder, args)
    import torch

    # One host-to-device copy straight to the device asked for.
    return torch.as_tensor(np.array(builder(*args)), device=device)


def _jax_convert(builder, args, device=None):
    import jax

    # A concrete array even inside a jit trace (there a plain conversion
    # gives a tracer, which must not outlive the trace).
    with jax.ensure_compile_time_eval():
        return _convert(builder, args)


def pad_bottom_right(x, pad_height, pad_width):
    """Zero-pads a feature map at the bottom and on the right.

    Args:
        x: tensor (B, H, W, C).
        pad_height: rows to add (int or scalar int tensor).
        pad_width: columns to add (int or scalar int tensor).

    Returns:
        Tensor (B, H + pad_height, W + pad_width, C); `x` itself when both
        pads are the int 0.

    Example:
        >>> pad_bottom_right(keras.ops.ones((1, 5, 6, 2)), 2, 1).shape
        (1, 7, 7, 2)
    """
    if (
        isinstance(pad_height, int)
        and isinstance(pad_width, int)
        and not (pad_height or pad_width)
    ):
        return x
    return ops.pad(x, ((0, 0), (0, pad_height), (0, pad_width), (0, 0)))


def window_partition(x, window_size):
    """Splits a feature map into non-overlapping square windows.

    Args:
        x: tensor (B, H, W, C); H and W must be multiples of `window_size`.
        window_size: window side M, an int or a scalar int tensor.

    Returns:
        Tensor (B * nW, M * M, C) with nW = (H / M) * (W / M); windows are
        ordered batch-major, then row-major over the window grid.

    Example:
        >>> x = keras.ops.zeros((2, 8, 8, 16))
        >>> window_partition(x, 4).shape
        (8, 16, 16)
    """
    shape = ops.shape(x)
    height, width, channels = shape[1], shape[2], shape[3]
    m = window_size
    x = ops.reshape(x, (-1, height // m, m, width // m, m, channels))
    # (B, H/M, W/M, M, M, C): window grid first, then tokens of a window.
    x = ops.transpose(x, (0, 1, 3, 2, 4, 5))
    return ops.reshape(x, (-1, m * m, channels))


def window_reverse(windows, window_size, height, width):
    """Inverse of `window_partition`.

    Args:
        windows: tensor (B * nW, M * M, C).
        window_size: window side M (int or scalar int tensor).
        height: map height H, a multiple of M (int or scalar int tensor).
        width: map width W, a multiple of M (int or scalar int tensor).

    Returns:
        Tensor (B, H, W, C).

    Example:
        >>> w = keras.ops.zeros((8, 16, 16))
        >>> window_reverse(w, 4, 8, 8).shape
        (2, 8, 8, 16)
    """
    channels = ops.shape(windows)[-1]
    m = window_size
    x = ops.reshape(windows, (-1, height // m, width // m, m, m, channels))
    x = ops.transpose(x, (0, 1, 3, 2, 4, 5))
    return ops.reshape(x, (-1, height, width, channels))


def effective_window(
    height: int, width: int, window_size: int, shift_size: int
) -> tuple[int, int]:
    """Window and shift a block really uses on an (H, W) map.

    The official rule: if min(H, W) <= window, the window becomes min(H, W)
    and the shift 0 (so a map equal to the window is not shifted).

    Args:
        height: map height H.
        width: map width W.
        window_size: configured window M.
        shift_size: configured shift (0 or M // 2 in the papers).

    Returns:
        (window, shift) as ints.

    Example:
        >>> effective_window(7, 7, 7, 3)
        (7, 0)
        >>> effective_window(2, 2, 4, 2)
        (2, 0)
    """
    smallest = min(height, width)
    if smallest <= window_size:
        return smallest, 0
    return window_size, shift_size


#: How a Swin block lays out windows on a map not larger than the window.
#: "clamp": the window shrinks to min(H, W) and the shift to 0 (official
#: classification code, Hugging Face `SwinModel`); "pad": the window and
#: shift stay, the map is zero-padded up to the window (official detection
#: and segmentation backbone, Hugging Face `SwinBackbone`).
WINDOW_MODES = ("clamp", "pad")


def check_window_mode(window_mode: str) -> str:
    """`window_mode` if it is one of `WINDOW_MODES`, else a ValueError.

    Example:
        >>> check_window_mode("pad")
        'pad'
    """
    if window_mode not in WINDOW_MODES:
        raise ValueError(
            f"window_mode must be one of {WINDOW_MODES}, got "
            f"{window_mode!r}: 'clamp' shrinks the window of a small map "
            "(classification code), 'pad' pads the map up to the window "
            "(detection/segmentation code)."
        )
    return window_mode


def padded_window(
    height: int,
    width: int,
    window_size: int,
    shift_size: int,
    window_mode: str = "clamp",
) -> tuple[int, int, int, int]:
    """The window, shift and padded map size a block uses on (H, W).

    Pure Python (no numpy), so compilers can trace it.

    Args:
        height: map height H before padding.
        width: map width W before padding.
        window_size: configured window M.
        shift_size: configured shift.
        window_mode: "clamp" (`effective_window`: a map not larger than
            the window is attended whole, unshifted) or "pad" (window and
            shift unchanged whatever the map size).

    Returns:
        (window, shift, padded_height, padded_width) as ints.

    Example:
        >>> padded_window(8, 8, 7, 3)
        (7, 3, 14, 14)
        >>> padded_window(4, 3, 7, 3, "pad")
        (7, 3, 7, 7)
    """
    if window_mode == "pad":
        window, shift = window_size, shift_size
    else:
        window, shift = effective_window(height, width, window_size, shift_size)
    return (
        window,
        shift,
        -(-height // window) * window,
        -(-width // window) * window,
    )


def dynamic_padded_window(
    height, width, window_size: int, shift_size: int, window_mode="clamp"
):
    """In-graph twin of `padded_window` for tensor map sizes.

    Args:
        height: map height H before padding (scalar int tensor).
        width: map width W before padding (scalar int tensor).
        window_size: configured window M (int).
        shift_size: configured shift (int).
        window_mode: "clamp" or "pad", as in `padded_window`; with "pad"
            the window and shift are the ints given.

    Returns:
        (window, shift, padded_height, padded_width) as scalar int tensors.

    Example:
        >>> t = keras.ops.convert_to_tensor
        >>> [int(v) for v in dynamic_padded_window(t(8), t(8), 7, 3)]
        [7, 3, 14, 14]
    """
    if window_mode == "pad":
        window = window_size
        return (
            window,
            shift_size,
            (height + window - 1) // window * window,
            (width + window - 1) // window * window,
        )
    smallest = ops.minimum(height, width)
    clamp = smallest <= window_size
    window = ops.where(clamp, smallest, window_size)
    shift = ops.where(clamp, 0, shift_size)
    return (
        window,
        shift,
        (height + window - 1) // window * window,
        (width + window - 1) // window * window,
    )


def _region_labels(size: int, window_size: int, shift_size: int):
    labels = np.zeros(size, np.int32)
    labels[size - window_size : size - shift_size] = 1
    labels[size - shift_size :] = 2
    return labels


@functools.lru_cache(maxsize=256)
def shift_window_mask(
    height: int, width: int, window_size: int, shift_size: int
) -> np.ndarray:
    """Additive attention mask of a cyclically shifted window layout.

    The (H, W) map is labelled with up to 9 regions (three slices per axis:
    [0, H-M), [H-M, H-s), [H-s, H)); two tokens of a window that come from
    different regions get `MASK_VALUE` (-100), others 0.

    Args:
        height: (padded) map height H, a multiple of `window_size`.
        width: (padded) map width W, a multiple of `window_size`.
        window_size: window side M.
        shift_size: shift s, 0 < s < M.

    Returns:
        Read-only float32 array (nW, M*M, M*M), nW = (H/M) * (W/M).

    Example:
        >>> shift_window_mask(4, 4, 2, 1).shape
        (4, 4, 4)
    """
    if height % window_size or width % window_size:
        raise ValueError(
            f"The map {height}x{width} must be a multiple of the window "
            f"{window_size} on both sides."
        )
    rows = _region_labels(height, window_size, shift_size)
    cols = _region_labels(width, window_size, shift_size)
    labels = (rows[:, None] * 3 + cols[None, :]).astype(np.float32)
    windows = (
        labels.reshape(
            height // window_size,
            window_size,
            width // window_size,
            window_size,
        )
        .transpose(0, 2, 1, 3)
        .reshape(-1, window_size * window_size)
    )
    different = windows[:, :, None] != windows[:, None, :]
    mask = np.where(different, MASK_VALUE, 0.0).astype(np.float32)
    mask.setflags(write=False)
    return mask


def dynamic_relative_position_index(window_size, table_window: int):
    """In-graph twin of `relative_position_index` for a tensor window size.

    Args:
        window_size: scalar int tensor M (M <= table_window).
        table_window: int T, the table's window.

    Returns:
        int32 tensor (M*M, M*M).

    Example:
        >>> dynamic_relative_position_index(keras.ops.convert_to_tensor(2), 2)
    """
    coords = ops.arange(window_size, dtype="int32")
    h = ops.reshape(ops.repeat(coords, window_size), (-1,))
    w = ops.tile(coords, [window_size])
    dh = h[:, None] - h[None, :] + (table_window - 1)
    dw = w[:, None] - w[None, :] + (table_window - 1)
    return dh * (2 * table_window - 1) + dw


def dynamic_relative_coords_table(window_size, pretrained_window_size: int):
    """In-graph twin of `relative_coords_table` for a tensor window size.

    Args:
        window_size: scalar int tensor M.
        pretrained_window_size: int P, or 0 (the table spans M).

    Returns:
        float32 tensor ((2M - 1)^2, 2).

    Example:
        >>> dynamic_relative_coords_table(
        ...     keras.ops.convert_to_tensor(2), 0).shape
        (9, 2)
    """
    offsets = ops.cast(
        ops.arange(-(window_size - 1), window_size, dtype="int32"), "float32"
    )
    if pretrained_window_size:
        span = ops.cast(pretrained_window_size - 1, "float32")
    else:
        # A 1 x 1 window keeps its single offset 0 (no 0 / 0).
        span = ops.cast(ops.maximum(window_size - 1, 1), "float32")
    offsets = offsets / span * 8.0
    axis = ops.sign(offsets) * ops.log2(ops.abs(offsets) + 1.0) / 3.0
    size = ops.shape(axis)[0]
    rows = ops.reshape(ops.repeat(axis, size), (-1,))
    cols = ops.tile(axis, [size])
    return ops.stack([rows, cols], axis=-1)


def dynamic_shift_window_mask(height, width, window_size, shift_size):
    """In-graph twin of `shift_window_mask` for tensor sizes.

    With shift 0 every window lies inside one region, so the mask is all
    zeros; callers may therefore apply it unconditionally.

    Args:
        height: scalar int tensor, padded height (multiple of the window).
        width: scalar int tensor, padded width.
        window_size: scalar int tensor M.
        shift_size: scalar int tensor s (may be 0).

    Returns:
        float32 tensor (nW, M*M, M*M) of 0 and `MASK_VALUE`.

    Example:
        >>> t = keras.ops.convert_to_tensor
        >>> dynamic_shift_window_mask(t(4), t(4), t(2), t(1)).shape
        (4, 4, 4)
    """

    def labels(size):
        pos = ops.arange(size, dtype="int32")
        return ops.cast(pos >= size - window_size, "int32") + ops.cast(
            pos >= size - shift_size, "int32"
        )

    grid = labels(height)[:, None] * 3 + labels(width)[None, :]
    grid = ops.cast(grid, "float32")[None, :, :, None]
    windows = ops.squeeze(window_partition(grid, window_size), -1)
    different = windows[:, :, None] != windows[:, None, :]
    return ops.where(different, MASK_VALUE, 0.0)
