"""Class token and learned position embeddings (ViT, Swin's ape)."""

from __future__ import annotations

import keras
from keras import ops

from keras_swin.layers import interpolation
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


@register
class ResizedPositionEmbedding(ConfigFromArguments, keras.layers.Layer):
    """Adds a position embedding stored at one grid, resized to each map.

    The official detection backbone's `ape`: the embedding is a learned
    (1, gh, gw, C) grid at the pre-training size, interpolated to the
    (H, W) of every input (`F.interpolate(mode="bicubic")` there) and
    added. At the stored grid nothing is interpolated, so the result is
    the plain sum. Works with sizes known only at run time.

    Args:
        grid: (gh, gw), the stored grid.
        method: interpolation, one of `keras_swin.layers.interpolation`'s
            methods: "bicubic" (PyTorch, a = -0.75, align_corners False),
            "bicubic_antialias" (timm) or "zoom" (corner-aligned linear).
        initializer: initializer of the embedding; truncated N(0, 0.02).
        **kwargs: base `Layer` arguments.

    Shapes:
        inputs: (B, H, W, C) -> (B, H, W, C).

    Example:
        >>> layer = ResizedPositionEmbedding((56, 56))
        >>> layer(keras.ops.ones((2, 63, 84, 96))).shape
        (2, 63, 84, 96)
    """

    def __init__(
        self, grid, method: str = "bicubic", initializer=None, **kwargs
    ):
        super().__init__(**kwargs)
        grid = tuple(int(g) for g in grid)
        if len(grid) != 2 or min(grid) < 1:
            raise ValueError(
                f"grid must be (height, width) of positive ints, got {grid}."
            )
        if method not in interpolation.METHODS:
            raise ValueError(
                f"method must be one of {interpolation.METHODS}, got "
                f"{method!r}."
            )
        if initializer is None:
            initializer = keras.initializers.TruncatedNormal(stddev=0.02)
        self.grid = grid
        self.method = method
        self.initializer = keras.initializers.get(initializer)

    def build(self, input_shape):
        self.embedding = self.add_weight(
            shape=(1, *self.grid, input_shape[-1]),
            initializer=self.initializer,
            name="embedding",
        )

    def call(self, inputs):
        height, width = inputs.shape[1], inputs.shape[2]
        if height is None or width is None:
            shape = ops.shape(inputs)
            height, width = shape[1], shape[2]
        embedding = interpolation.resize_grid(
            ops.cast(self.embedding, "float32"), (height, width), self.method
        )
        return inputs + ops.cast(embedding, inputs.dtype)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)
