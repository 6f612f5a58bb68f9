"""The ViT paper's 2-D learned position embedding (Appendix D.4)."""

from __future__ import annotations

import keras
from keras import ops

from keras_swin.layers._serialization import ConfigFromArguments, register


def grid_pair(value, name: str) -> tuple[int, int]:
    """(rows, columns) of positive ints from an int or a pair.

    Args:
        value: an int (a square grid) or a pair of ints.
        name: the argument's name, for the error.

    Returns:
        (rows, columns).

    Example:
        >>> grid_pair(4, "grid_size")
        (4, 4)
    """
    if isinstance(value, int) and not isinstance(value, bool):
        value = (value, value)
    try:
        pair = tuple(int(v) for v in value)
    except (TypeError, ValueError):
        pair = ()
    if len(pair) != 2 or min(pair) < 1:
        raise ValueError(
            f"{name} must be a positive int or (rows, columns), got {value!r}."
        )
    return pair


def check_prefix(num_prefix_tokens) -> int:
    """`num_prefix_tokens` checked: an int >= 0."""
    if (
        not isinstance(num_prefix_tokens, int)
        or isinstance(num_prefix_tokens, bool)
        or num_prefix_tokens < 0
    ):
        raise ValueError(
            f"num_prefix_tokens must be an int >= 0, got {num_prefix_tokens!r}."
        )
    return num_prefix_tokens


@register
class PositionEmbedding2D(ConfigFromArguments, keras.layers.Layer):
    """Adds a learned 2-D position embedding (ViT paper, Appendix D.4).

    Two embeddings of width D/2 are learned, one per axis: an
    X-embedding `column_embedding` (gw, D/2) and a Y-embedding
    `row_embedding` (gh, D/2). The patch at row i, column j gets the
    concatenation [X[j], Y[i]] (D wide). The P prefix tokens (class and
    register tokens) have their own learned rows `prefix_embedding`
    (P, D). The grid is static: the tokens must be exactly
    P + gh * gw long.

    Args:
        grid_size: (gh, gw) patch grid; an int means a square grid.
        num_prefix_tokens: P, leading tokens that are not on the grid.
        initializer: initializer of the three embeddings; N(0, 0.02) by
            default, as the 1-D `PositionEmbedding`.
        **kwargs: base `Layer` arguments.

    Shapes:
        inputs: (B, P + gh * gw, D) with an even D -> the same shape.

    Example:
        >>> embed = PositionEmbedding2D((2, 3), num_prefix_tokens=1)
        >>> embed(keras.ops.zeros((2, 1 + 6, 8))).shape
        (2, 7, 8)
        >>> tuple(embed.column_embedding.shape)
        (3, 4)
    """

    def __init__(
        self,
        grid_size,
        num_prefix_tokens: int = 0,
        initializer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if initializer is None:
            initializer = keras.initializers.RandomNormal(stddev=0.02)
        self.grid_size = grid_pair(grid_size, "grid_size")
        self.num_prefix_tokens = check_prefix(num_prefix_tokens)
        self.initializer = keras.initializers.get(initializer)

    def _check(self, input_shape):
        rows, cols = self.grid_size
        expected = self.num_prefix_tokens + rows * cols
        if (
            len(input_shape) != 3
            or input_shape[-1] is None
            or input_shape[1] not in (None, expected)
        ):
            raise ValueError(
                f"{self.name} expects tokens (B, {expected}, D) for a "
                f"{rows}x{cols} grid with {self.num_prefix_tokens} prefix "
                f"token(s), got {tuple(input_shape)}."
            )
        if input_shape[-1] % 2:
            raise ValueError(
                f"{self.name}: the 2-D position embedding concatenates an "
                "X- and a Y-embedding of D/2 each, so the token width D "
                f"must be even, got D={input_shape[-1]}."
            )

    def build(self, input_shape):
        self._check(input_shape)
        half = input_shape[-1] // 2
        rows, cols = self.grid_size
        self.row_embedding = self.add_weight(
            shape=(rows, half), initializer=self.initializer, name="row"
        )
        self.column_embedding = self.add_weight(
            shape=(cols, half), initializer=self.initializer, name="column"
        )
        self.prefix_embedding = None
        if self.num_prefix_tokens:
            self.prefix_embedding = self.add_weight(
                shape=(self.num_prefix_tokens, input_shape[-1]),
                initializer=self.initializer,
                name="prefix",
            )

    def embedding(self):
        """The full embedding, prefix rows first.

        Returns:
            (1, P + gh * gw, D) float tensor in the variables' dtype;
            patch (i, j) (row-major) is [X[j], Y[i]].

        Example:
            >>> embed = PositionEmbedding2D(2)
            >>> embed.build((1, 4, 4))
            >>> tuple(embed.embedding().shape)
            (1, 4, 4)
        """
        rows, cols = self.grid_size
        x = ops.convert_to_tensor(self.column_embedding)  # (gw, D/2)
        y = ops.convert_to_tensor(self.row_embedding)  # (gh, D/2)
        half = x.shape[-1]
        x = ops.broadcast_to(x[None, :, :], (rows, cols, half))
        y = ops.broadcast_to(y[:, None, :], (rows, cols, half))
        grid = ops.reshape(
            ops.concatenate([x, y], axis=-1), (rows * cols, 2 * half)
        )  # (gh * gw, D), row-major
        if self.prefix_embedding is not None:
            prefix = ops.convert_to_tensor(self.prefix_embedding)
            grid = ops.concatenate([prefix, grid], axis=0)
        return grid[None]

    def call(self, inputs):
        return inputs + ops.cast(self.embedding(), inputs.dtype)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)
