"""Transformer feed-forward block."""

from __future__ import annotations

import keras
from keras import ops

from keras_swin.layers._serialization import ConfigFromArguments, register
from keras_swin.layers.linear import Linear


@register
class Mlp(ConfigFromArguments, keras.layers.Layer):
    """Two-layer perceptron of transformer blocks: fc1, GELU, fc2.

    Dropout follows fc1's activation and fc2, as in the official Swin and
    ViT code.

    Args:
        hidden_dim: width of fc1.
        output_dim: width of fc2 (the block's width).
        gelu_approximate: tanh GELU (official JAX ViT) instead of the exact
            erf GELU (official Swin, timm, Hugging Face).
        dropout_rate: dropout after the activation and after fc2.
        **kwargs: base `Layer` arguments.

    Shapes:
        inputs: (..., C) -> (..., output_dim).

    Example:
        >>> mlp = Mlp(hidden_dim=64, output_dim=16)
        >>> mlp(keras.ops.ones((2, 10, 16))).shape
        (2, 10, 16)
    """

    def __init__(
        self,
        hidden_dim: int,
        output_dim: int,
        gelu_approximate: bool = False,
        dropout_rate: float = 0.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.hidden_dim = hidden_dim
        self.output_dim = output_dim
        self.gelu_approximate = gelu_approximate
        self.dropout_rate = dropout_rate
        self.fc1 = Linear(hidden_dim, name="fc1", dtype=self.dtype_policy)
        self.fc2 = Linear(output_dim, name="fc2", dtype=self.dtype_policy)
        self.drop = keras.layers.Dropout(
            dropout_rate, name="drop", dtype=self.dtype_policy
        )

    def build(self, input_shape):
        self.fc1.build(input_shape)
        self.fc2.build(tuple(input_shape[:-1]) + (self.hidden_dim,))

    def call(self, inputs, training=None):
        x = self.fc1(inputs)
        x = ops.gelu(x, approximate=self.gelu_approximate)
        x = self.drop(x, training=training)
        x = self.fc2(x)
        return self.drop(x, training=training)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.output_dim,)
