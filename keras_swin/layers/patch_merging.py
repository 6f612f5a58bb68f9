"""Swin patch merging: 2x2 neighbourhood to channels, then a projection."""

from __future__ import annotations

import keras
from keras import ops

from keras_swin.layers._serialization import ConfigFromArguments, register
from keras_swin.layers.linear import Linear
from keras_swin.layers.windows import pad_bottom_right


@register
class PatchMerging(ConfigFromArguments, keras.layers.Layer):
    """Halves the resolution and doubles the channels of a feature map.

    Each 2x2 neighbourhood is concatenated along channels in the official
    order x0 = (even row, even col), x1 = (odd row, even col),
    x2 = (even row, odd col), x3 = (odd row, odd col), then LayerNorm(4C)
    and a bias-free Dense(4C -> 2C). The gather is one reshape and one
    transpose. An odd H or W is zero-padded on the bottom/right first
    (Hugging Face and the official detection code).

    Args:
        dim: input channels C.
        layer_norm_epsilon: epsilon of the 4C LayerNorm (1e-5 in Swin).
        **kwargs: base `Layer` arguments.

    Shapes:
        inputs: (B, H, W, C) -> (B, ceil(H/2), ceil(W/2), 2C).

    Example:
        >>> merge = PatchMerging(dim=96)
        >>> merge(keras.ops.ones((2, 56, 56, 96))).shape
        (2, 28, 28, 192)
    """

    def __init__(self, dim: int, layer_norm_epsilon: float = 1e-5, **kwargs):
        super().__init__(**kwargs)
        self.dim = dim
        self.layer_norm_epsilon = layer_norm_epsilon
        self.norm = keras.layers.LayerNormalization(
            epsilon=layer_norm_epsilon, name="norm", dtype=self.dtype_policy
        )
        self.reduction = Linear(
            2 * dim, use_bias=False, name="reduction", dtype=self.dtype_policy
        )

    def build(self, input_shape):
        if len(input_shape) != 4 or input_shape[-1] != self.dim:
            raise ValueError(
                f"{self.name} expects (B, H, W, {self.dim}) inputs, got "
                f"{tuple(input_shape)}."
            )
        merged = (None, None, None, 4 * self.dim)
        self.norm.build(merged)
        self.reduction.build(merged)

    def call(self, inputs):
        return self.reduction(self.norm(self._gather(inputs)))

    def _gather(self, inputs):
        """(B, H, W, C) -> (B, ceil(H/2), ceil(W/2), 4C), x0|x1|x2|x3."""
        height, width = inputs.shape[1], inputs.shape[2]
        if height is None or width is None:
            shape = ops.shape(inputs)
            height, width = shape[1], shape[2]
        x = pad_bottom_right(inputs, height % 2, width % 2)
        half_h, half_w = (height + 1) // 2, (width + 1) // 2
        x = ops.reshape(x, (-1, half_h, 2, half_w, 2, self.dim))
        # (B, H/2, W/2, col offset, row offset, C): channel block index is
        # 2 * col + row, i.e. the order x0, x1, x2, x3.
        x = ops.transpose(x, (0, 1, 3, 4, 2, 5))
        return ops.reshape(x, (-1, half_h, half_w, 4 * self.dim))

    def compute_output_shape(self, input_shape):
        def half(size):
            return None if size is None else (size + 1) // 2

        return (
            input_shape[0],
            half(input_shape[1]),
            half(input_shape[2]),
            2 * self.dim,
        )
