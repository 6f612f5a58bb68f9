"""A ViT position embedding kept at its grid and resized at every call."""

from __future__ import annotations

import keras
from keras import ops

from keras_swin.layers._serialization import ConfigFromArguments, register
from keras_swin.layers.interpolation import METHODS, resize_grid
from keras_swin.layers.position_2d import grid_pair


@register
class ViTPositionEmbedding(ConfigFromArguments, keras.layers.Layer):
    """Adds a position embedding stored at one grid to tokens of any grid.

    The embedding `(1, P + gh * gw, D)` holds `P` prefix rows (class and
    register tokens, kept as they are) and a `gh x gw` patch grid in
    row-major order, the layout of `PositionEmbedding` and of the
    checkpoints. At each call the grid is resized to the patch grid of the
    input (`keras_swin.layers.interpolation.resize_grid`, in-graph, so the
    image size may change from call to call) the way the weights' source
    library resizes it when fine-tuning at another size:

    * `"zoom"`: official ViT (`scipy.ndimage.zoom`, order 1);
    * `"bicubic"`: Hugging Face ViT (torch bicubic, no antialias);
    * `"bicubic_antialias"`: timm (`resample_abs_pos_embed`).

    At the stored grid nothing is resized: the output is the one of
    `PositionEmbedding` with the same weights, bit for bit.

    Args:
        grid_size: (gh, gw) patch grid the embedding is stored at; an int
            means a square grid.
        num_prefix_tokens: P, leading rows that are not on the grid (0
            when the embedding covers the patch tokens only).
        method: `"zoom"`, `"bicubic"` or `"bicubic_antialias"`.
        initializer: initializer of the embedding; N(0, 0.02) by default,
            as `PositionEmbedding`.
        **kwargs: base `Layer` arguments.

    Shapes:
        inputs: `[tokens, patches]`: tokens (B, P + h * w, D), the
        sequence the embedding is added to; patches (B, h, w, C), the
        patch map whose (h, w) is the grid of this call (only its shape
        is read). Output: (B, P + h * w, D).

    Example:
        >>> patches = keras.ops.ones((2, 6, 8, 32))
        >>> tokens = keras.ops.ones((2, 1 + 48, 32))  # class token first
        >>> embed = ViTPositionEmbedding((4, 4), num_prefix_tokens=1,
        ...                              method="bicubic")
        >>> embed([tokens, patches]).shape
        (2, 49, 32)
        >>> tuple(embed.embedding.shape)
        (1, 17, 32)
    """

    def __init__(
        self,
        grid_size,
        num_prefix_tokens: int = 0,
        method: str = "zoom",
        initializer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if method not in METHODS:
            raise ValueError(
                f"method must be one of {METHODS}, got {method!r}."
            )
        if (
            not isinstance(num_prefix_tokens, int)
            or isinstance(num_prefix_tokens, bool)
            or num_prefix_tokens < 0
        ):
            raise ValueError(
                "num_prefix_tokens must be an int >= 0, got "
                f"{num_prefix_tokens!r}."
            )
        if initializer is None:
            initializer = keras.initializers.RandomNormal(stddev=0.02)
        self.grid_size = grid_pair(grid_size, "grid_size")
        self.num_prefix_tokens = num_prefix_tokens
        self.method = method
        self.initializer = keras.initializers.get(initializer)

    def _split_shapes(self, input_shape):
        if len(input_shape) != 2 or len(input_shape[1]) != 4:
            raise ValueError(
                f"{self.name} expects [tokens (B, N, D), patches (B, h, w, "
                f"C)], got shapes {input_shape}."
            )
        tokens, patches = (tuple(s) for s in input_shape)
        if len(tokens) != 3 or tokens[-1] is None:
            raise ValueError(
                f"{self.name} expects tokens (B, N, D) with a known D, got "
                f"{tokens}."
            )
        rows, cols = patches[1], patches[2]
        if tokens[1] is not None and rows is not None and cols is not None:
            expected = self.num_prefix_tokens + rows * cols
            if tokens[1] != expected:
                raise ValueError(
                    f"{self.name}: {tokens[1]} tokens do not fit a {rows}x"
                    f"{cols} patch grid with {self.num_prefix_tokens} prefix "
                    f"token(s) ({expected} expected)."
                )
        return tokens, patches

    def build(self, input_shape):
        tokens, _ = self._split_shapes(input_shape)
        rows = self.num_prefix_tokens + self.grid_size[0] * self.grid_size[1]
        self.embedding = self.add_weight(
            shape=(1, rows, tokens[-1]),
            initializer=self.initializer,
            name="embedding",
        )

    def call(self, inputs):
        tokens, patches = inputs
        shape = ops.shape(patches)
        prefix = self.num_prefix_tokens
        dim = self.embedding.shape[-1]
        embedding = ops.convert_to_tensor(self.embedding)
        # (1, P + gh * gw, D) -> prefix rows, (1, gh, gw, D) grid.
        grid = ops.reshape(embedding[:, prefix:], (1, *self.grid_size, dim))
        grid = resize_grid(grid, (shape[1], shape[2]), self.method)
        grid = ops.reshape(grid, (1, -1, dim))  # (1, h * w, D)
        if prefix:
            grid = ops.concatenate([embedding[:, :prefix], grid], axis=1)
        return tokens + ops.cast(grid, tokens.dtype)

    def compute_output_shape(self, input_shape):
        tokens, _ = self._split_shapes(input_shape)
        return tokens
