"""Adaptive average pooling with PyTorch's bins, for any map size."""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from keras_swin.layers._serialization import ConfigFromArguments, register


def adaptive_bins(length: int, bins: int) -> list[tuple[int, int]]:
    """PyTorch's `AdaptiveAvgPool` bins over `length` inputs.

    Bin i covers `[floor(i * L / s), ceil((i + 1) * L / s))`: bins
    overlap when `L` is not a multiple of `s`, and repeat inputs when
    `L < s`.

    Example:
        >>> adaptive_bins(5, 3)
        [(0, 2), (1, 4), (3, 5)]
    """
    return [
        ((i * length) // bins, -((-(i + 1) * length) // bins))
        for i in range(bins)
    ]


def adaptive_pool_matrix(length, bins: int):
    """(bins, length) averaging matrix of PyTorch's adaptive bins.

    Args:
        length: input length: a Python int (numpy result) or a scalar
            tensor (built in the graph).
        bins: output length.

    Returns:
        float32 matrix whose row i averages bin i.

    Example:
        >>> adaptive_pool_matrix(4, 2)
        array([[0.5, 0.5, 0. , 0. ],
               [0. , 0. , 0.5, 0.5]], dtype=float32)
    """
    if isinstance(length, int):
        matrix = np.zeros((bins, length), "float32")
        for i, (start, end) in enumerate(adaptive_bins(length, bins)):
            matrix[i, start:end] = 1.0 / (end - start)
        return matrix
    length = ops.cast(length, "int32")
    index = ops.arange(bins, dtype="int32")
    start = (index * length) // bins
    end = -((-(index + 1) * length) // bins)
    position = ops.arange(length, dtype="int32")
    inside = ops.logical_and(
        position[None, :] >= start[:, None], position[None, :] < end[:, None]
    )
    count = ops.cast(end - start, "float32")[:, None]
    return ops.cast(inside, "float32") / count


@register
class AdaptiveAveragePooling2D(ConfigFromArguments, keras.layers.Layer):
    """`nn.AdaptiveAvgPool2d(output_size)` on NHWC maps, exactly.

    Each output cell averages PyTorch's bin (`adaptive_bins`) of rows and
    of columns, for any input size (also sizes not divisible by the
    output, or smaller than it) and for sizes known only at run time. The
    pooling is two small matrix products.

    Args:
        output_size: int or (rows, cols) of the output.
        **kwargs: base `Layer` arguments.

    Shapes:
        inputs: (B, H, W, C) -> (B, rows, cols, C).

    Example:
        >>> pool = AdaptiveAveragePooling2D(3)
        >>> pool(keras.ops.ones((2, 7, 10, 4))).shape
        (2, 3, 3, 4)
    """

    def __init__(self, output_size, **kwargs):
        super().__init__(**kwargs)
        if isinstance(output_size, int):
            output_size = (output_size, output_size)
        output_size = tuple(int(s) for s in output_size)
        if len(output_size) != 2 or min(output_size) < 1:
            raise ValueError(
                "output_size must be a positive int or (rows, cols), got "
                f"{output_size!r}."
            )
        self.output_size = output_size

    def call(self, inputs):
        dynamic = ops.shape(inputs)
        rows, cols = (
            inputs.shape[axis]
            if inputs.shape[axis] is not None
            else dynamic[axis]
            for axis in (1, 2)
        )
        dtype = inputs.dtype
        row_matrix = ops.cast(
            adaptive_pool_matrix(rows, self.output_size[0]), dtype
        )
        col_matrix = ops.cast(
            adaptive_pool_matrix(cols, self.output_size[1]), dtype
        )
        x = ops.einsum("ih,bhwc->biwc", row_matrix, inputs)
        return ops.einsum("jw,biwc->bijc", col_matrix, x)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], *self.output_size, input_shape[-1])

    def get_config(self):
        config = super().get_config()
        config["output_size"] = list(self.output_size)
        return config
