"""Class token and learned position embeddings (ViT, Swin's ape)."""

from __future__ import annotations

import keras
from keras import ops

from keras_swin.layers._serialization import ConfigFromArguments, register


@register
class ClassToken(ConfigFromArguments, keras.layers.Layer):
    """Prepends learned tokens (class token, register tokens) to a sequence.

    Args:
        initializer: initializer of the (1, T, D) tokens; zeros as in the
            official ViT.
        num_tokens: T, how many tokens are prepended (1 for a class
            token; 4 for the registers of "Vision Transformers Need
            Registers").
        **kwargs: base `Layer` arguments.

    Shapes:
        inputs: (B, N, D) -> (B, N + T, D).

    Example:
        >>> ClassToken()(keras.ops.ones((2, 196, 64))).shape
        (2, 197, 64)
    """

    def __init__(self, initializer="zeros", num_tokens: int = 1, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(num_tokens, int) or num_tokens < 1:
            raise ValueError(
                f"num_tokens must be a positive int, got {num_tokens!r}."
            )
        self.initializer = keras.initializers.get(initializer)
        self.num_tokens = num_tokens

    def build(self, input_shape):
        self.cls = self.add_weight(
            shape=(1, self.num_tokens, input_shape[-1]),
            initializer=self.initializer,
            name="cls",
        )

    def call(self, inputs):
        token = ops.cast(self.cls, inputs.dtype)
        token = ops.broadcast_to(
            token,
            (ops.shape(inputs)[0], self.num_tokens, ops.shape(inputs)[-1]),
        )
        return ops.concatenate([token, inputs], axis=1)

    def compute_output_shape(self, input_shape):
        tokens = (
            None if input_shape[1] is None else input_shape[1] + self.num_tokens
        )
        return (input_shape[0], tokens, input_shape[2])


@register
class PositionEmbedding(ConfigFromArguments, keras.layers.Layer):
    """Adds a learned position embedding of the input's exact shape.

    Works on token sequences (B, N, D), as in ViT, and on feature maps
    (B, H, W, C), as Swin's absolute position embedding (`ape`). The
    embedding has the input's shape without the batch axis, so the input
    size must be static.

    Args:
        initializer: initializer of the embedding; N(0, 0.02) by default
            (official ViT; truncated in Swin and timm).
        **kwargs: base `Layer` arguments.

    Shapes:
        inputs: (B, ...) -> same shape.

    Example:
        >>> PositionEmbedding()(keras.ops.ones((2, 197, 64))).shape
        (2, 197, 64)
    """

    def __init__(self, initializer=None, **kwargs):
        super().__init__(**kwargs)
        if initializer is None:
            initializer = keras.initializers.RandomNormal(stddev=0.02)
        self.initializer = keras.initializers.get(initializer)

    def build(self, input_shape):
        shape = tuple(input_shape[1:])
        if any(size is None for size in shape):
            raise ValueError(
                f"{self.name} needs a static input size to create its "
                f"embedding, got input shape {tuple(input_shape)}. Pass a "
                "fixed `input_shape`."
            )
        self.embedding = self.add_weight(
            shape=(1,) + shape, initializer=self.initializer, name="embedding"
        )

    def call(self, inputs):
        return inputs + ops.cast(self.embedding, inputs.dtype)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)
