"""A learned relative-position attention bias for ViT (BEiT's scheme)."""

from __future__ import annotations

import functools

import keras
import numpy as np
from keras import ops

from keras_swin.layers import windows
from keras_swin.layers._serialization import ConfigFromArguments, register
from keras_swin.layers.position_2d import check_prefix, grid_pair


@functools.cache
def vit_relative_position_index(
    rows: int, cols: int, num_prefix_tokens: int
) -> np.ndarray:
    """Table row of every (query, key) pair of a ViT token sequence.

    Tokens are P prefix tokens, then a rows x cols patch grid in
    row-major order. For two patches a, b the row is
    (y_a - y_b + rows - 1) * (2 cols - 1) + (x_a - x_b + cols - 1), one
    of R = (2 rows - 1)(2 cols - 1) offsets (Swin's index for a
    rectangular window). Pairs with a prefix token use three more rows,
    as BEiT: R (prefix query, patch key), R + 1 (patch query, prefix key)
    and R + 2 (prefix query, prefix key).

    Args:
        rows: gh.
        cols: gw.
        num_prefix_tokens: P.

    Returns:
        Read-only int32 array (N, N), N = P + rows * cols.

    Example:
        >>> vit_relative_position_index(1, 2, 1)
        array([[5, 3, 3],
               [4, 1, 0],
               [4, 2, 1]], dtype=int32)
    """
    y, x = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
    y, x = y.reshape(-1), x.reshape(-1)
    patches = (y[:, None] - y[None, :] + rows - 1) * (2 * cols - 1) + (
        x[:, None] - x[None, :] + cols - 1
    )
    offsets = (2 * rows - 1) * (2 * cols - 1)
    prefix = num_prefix_tokens
    index = np.empty((prefix + rows * cols,) * 2, np.int32)
    index[prefix:, prefix:] = patches
    index[:prefix, prefix:] = offsets
    index[prefix:, :prefix] = offsets + 1
    index[:prefix, :prefix] = offsets + 2
    index.setflags(write=False)
    return index


@register
class RelativePositionBias(ConfigFromArguments, keras.layers.Layer):
    """Per-head attention bias indexed by the 2-D offset of two patches.

    The "relative" position embedding of the ViT paper's Appendix D.4,
    in the form of Swin and BEiT: a learned table
    ((2 gh - 1)(2 gw - 1) + 3, heads) holds one scalar per head for each
    relative offset (dy, dx) between two patches, plus three rows for the
    pairs with a prefix token (prefix -> patch, patch -> prefix,
    prefix -> prefix; `vit_relative_position_index`). The layer returns
    the bias to add to the attention logits (`Attention`'s
    `attention_bias`). The index is a numpy constant of the static grid.

    Args:
        grid_size: (gh, gw) patch grid; an int means a square grid.
        num_heads: attention heads.
        num_prefix_tokens: P, leading tokens that are not on the grid.
        initializer: initializer of the table; truncated N(0, 0.02) by
            default, as Swin's table.
        **kwargs: base `Layer` arguments.

    Shapes:
        inputs: tokens (B, N, D), N = P + gh * gw (only the shape is
        read) -> bias (1, heads, N, N).

    Example:
        >>> bias = RelativePositionBias((2, 3), num_heads=4,
        ...                             num_prefix_tokens=1)
        >>> bias(keras.ops.zeros((2, 7, 16))).shape
        (1, 4, 7, 7)
        >>> tuple(bias.table.shape)
        (18, 4)
    """

    def __init__(
        self,
        grid_size,
        num_heads: int,
        num_prefix_tokens: int = 0,
        initializer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if isinstance(num_heads, bool) or not isinstance(num_heads, int):
            raise ValueError(f"num_heads must be an int, got {num_heads!r}.")
        if num_heads < 1:
            raise ValueError(f"num_heads must be >= 1, got {num_heads}.")
        if initializer is None:
            initializer = keras.initializers.TruncatedNormal(stddev=0.02)
        self.grid_size = grid_pair(grid_size, "grid_size")
        self.num_heads = num_heads
        self.num_prefix_tokens = check_prefix(num_prefix_tokens)
        self.initializer = keras.initializers.get(initializer)

    @property
    def num_tokens(self) -> int:
        """N = P + gh * gw."""
        rows, cols = self.grid_size
        return self.num_prefix_tokens + rows * cols

    def build(self, input_shape):
        if len(input_shape) != 3 or input_shape[1] not in (
            None,
            self.num_tokens,
        ):
            raise ValueError(
                f"{self.name} expects tokens (B, {self.num_tokens}, D) for a "
                f"{self.grid_size[0]}x{self.grid_size[1]} grid with "
                f"{self.num_prefix_tokens} prefix token(s), got "
                f"{tuple(input_shape)}."
            )
        rows, cols = self.grid_size
        self.table = self.add_weight(
            shape=((2 * rows - 1) * (2 * cols - 1) + 3, self.num_heads),
            initializer=self.initializer,
            name="table",
        )

    def call(self, inputs):
        table = ops.convert_to_tensor(self.table)
        index = windows.constant(
            vit_relative_position_index,
            *self.grid_size,
            self.num_prefix_tokens,
            like=table,
        )
        n = self.num_tokens
        bias = ops.take(table, ops.reshape(index, (-1,)), axis=0)
        bias = ops.reshape(bias, (n, n, self.num_heads))
        return ops.transpose(bias, (2, 0, 1))[None]  # (1, heads, N, N)

    def compute_output_shape(self, input_shape):
        n = self.num_tokens
        return (1, self.num_heads, n, n)
