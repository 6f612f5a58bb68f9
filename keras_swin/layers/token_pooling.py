"""Pooling of a token sequence to one vector (class token, mean, max)."""

from __future__ import annotations

import keras
from keras import ops

from keras_swin.layers._serialization import ConfigFromArguments, register

_METHODS = ("token", "avg", "max")


@register
class TokenPooling(ConfigFromArguments, keras.layers.Layer):
    """Reduces (B, N, D) tokens to (B, D).

    Args:
        method: "token" takes token 0 (the class token); "avg" and "max"
            reduce over tokens `num_prefix_tokens:`.
        num_prefix_tokens: leading tokens (class token, registers) that
            "avg"/"max" leave out.
        **kwargs: base `Layer` arguments.

    Shapes:
        inputs: (B, N, D) -> (B, D).

    Example:
        >>> TokenPooling("avg")(keras.ops.ones((2, 196, 64))).shape
        (2, 64)
    """

    def __init__(
        self, method: str = "token", num_prefix_tokens: int = 0, **kwargs
    ):
        super().__init__(**kwargs)
        if method not in _METHODS:
            raise ValueError(
                f"method must be one of {_METHODS}, got {method!r}."
            )
        self.method = method
        self.num_prefix_tokens = num_prefix_tokens

    def call(self, inputs):
        if self.method == "token":
            return inputs[:, 0]
        tokens = inputs[:, self.num_prefix_tokens :]
        if self.method == "avg":
            return ops.mean(tokens, axis=1)
        return ops.max(tokens, axis=1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[-1])
