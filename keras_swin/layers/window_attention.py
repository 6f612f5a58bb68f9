"""Window multi-head self-attention with relative position bias (Swin)."""

from __future__ import annotations

import math

import keras
from keras import ops

from keras_swin.layers import windows
from keras_swin.layers._serialization import register
from keras_swin.layers.attention import Attention


@register
class WindowAttention(Attention):
    """Self-attention inside M x M windows, with relative position bias.

    Adds `relative_position_bias_table[index]` (one learned scalar per head
    and relative offset) and an optional shift mask to the logits, in the
    official order: (q * scale) @ k^T + bias + mask, softmax, @ v.

    The table is made for `window_size` T; windows of any side M <= T can
    be attended (the index then reads the central part of the table), which
    lets a block clamp its window on small maps. Index arrays are computed
    once per M in numpy (cached); an in-graph path serves unknown M.

    Args:
        dim: token width C.
        num_heads: number of heads.
        window_size: window side T the bias table is made for; the table
            has (2T - 1)^2 rows.
        qkv_bias: whether `qkv` has a bias.
        qk_scale: override of the head_dim^-0.5 scale.
        attention_dropout_rate: dropout on attention probabilities.
        proj_dropout_rate: dropout after `proj`.
        use_relative_position_bias: False drops the table (the Swin paper's
            Table 4 ablation).
        **kwargs: base `Layer` arguments.

    Shapes:
        inputs: (B * nW, M * M, C) windows from `window_partition`.
        attention_mask (call argument): (nW, M*M, M*M) additive mask, e.g.
            `shift_window_mask(...)`, or None.
        output: (B * nW, M * M, C).

    Example:
        >>> attn = WindowAttention(dim=32, num_heads=2, window_size=7)
        >>> attn(keras.ops.ones((8, 49, 32))).shape
        (8, 49, 32)
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        window_size: int,
        qkv_bias: bool = True,
        qk_scale: float | None = None,
        attention_dropout_rate: float = 0.0,
        proj_dropout_rate: float = 0.0,
        use_relative_position_bias: bool = True,
        **kwargs,
    ):
        super().__init__(
            dim,
            num_heads,
            qkv_bias=qkv_bias,
            qk_scale=qk_scale,
            attention_dropout_rate=attention_dropout_rate,
            proj_dropout_rate=proj_dropout_rate,
            **kwargs,
        )
        self.window_size = window_size
        self.use_relative_position_bias = use_relative_position_bias

    def build(self, input_shape):
        super().build(input_shape)
        if self.use_relative_position_bias:
            rows = (2 * self.window_size - 1) ** 2
            self.relative_position_bias_table = self.add_weight(
                shape=(rows, self.num_heads),
                initializer=keras.initializers.TruncatedNormal(stddev=0.02),
                name="relative_position_bias_table",
            )

    def prepare_window(self, window_size: int) -> None:
        """Converts the constants of an M x M window now, outside a trace.

        Called by `SwinBlock.build` for a static window, so eager calls
        and traces find the index already a backend tensor.

        Args:
            window_size: M, the block's window side at its input size.
        """
        if self.use_relative_position_bias:
            windows.constant(
                windows.relative_position_index, window_size, self.window_size
            )

    def relative_position_bias(self, window_size):
        """Bias of every (query, key) pair of an M x M window.

        Args:
            window_size: M, an int (static) or scalar int tensor.

        Returns:
            (heads, M*M, M*M) tensor in the table's dtype.
        """
        if isinstance(window_size, int):
            if window_size > self.window_size:
                raise ValueError(
                    f"{self.name}: windows of side {window_size} exceed the "
                    f"relative position table's window {self.window_size}."
                )
            index = windows.constant(
                windows.relative_position_index,
                window_size,
                self.window_size,
                like=self.relative_position_bias_table.value,
            )
        else:
            index = windows.dynamic_relative_position_index(
                window_size, self.window_size
            )
        # (heads, M*M, M*M): one gather of table rows, then the heads
        # first. Gathering rows (axis 0) rather than columns of the
        # transposed table keeps PyTorch on `embedding`: Keras' torch
        # `take` on another axis ends in a `squeeze` that the ONNX
        # exporter turns into an invalid node (keras_swin.export).
        bias = ops.take(self.relative_position_bias_table, index, axis=0)
        return ops.transpose(bias, (2, 0, 1))

    def _bias(self, inputs, attention_mask):
        """Relative bias plus shift mask, tiled over the batch, or None.

        Args:
            inputs: (B * nW, M * M, C) windows.
            attention_mask: (nW, M*M, M*M) additive mask, or None.

        Returns:
            (B * nW or 1, heads or 1, M*M, M*M), or None when the layer
            has no relative bias and no mask is given.
        """
        tokens = inputs.shape[1]
        if tokens is not None:
            side = math.isqrt(tokens)
            if side * side != tokens:
                raise ValueError(
                    f"{self.name} expects square windows (M*M tokens), got "
                    f"{tokens} tokens per window."
                )
        else:
            tokens = ops.shape(inputs)[1]
            side = ops.cast(
                ops.round(ops.sqrt(ops.cast(tokens, "float32"))), "int32"
            )

        bias = None
        if self.use_relative_position_bias:
            bias = self.relative_position_bias(side)[None]
        if attention_mask is not None:
            mask = ops.cast(attention_mask, self.compute_dtype)[:, None]
            # (nW, heads or 1, N, N): bias and mask folded into one add.
            bias = mask if bias is None else bias + mask
        if bias is None:
            return None

        num_windows = ops.shape(bias)[0]
        if bias.shape[0] != 1:
            batch = ops.shape(inputs)[0] // num_windows
            bias = ops.tile(bias, (batch, 1, 1, 1))
        return bias

    def call(self, inputs, attention_mask=None, training=None):
        bias = self._bias(inputs, attention_mask)
        return self._attend(inputs, bias, training=training)

    def attention_probabilities(self, inputs, attention_mask=None):
        """The attention weights of every window, as `call` applies them.

        softmax((q * scale) k^T + relative bias + attention_mask) in
        float32, without attention dropout.

        Args:
            inputs: (B * nW, M * M, C) windows, as for `call`.
            attention_mask: the same (nW, M*M, M*M) mask as `call`'s, or
                None.

        Returns:
            (B * nW, heads, M*M, M*M) float32, windows in the order of
            `window_partition` (batch outermost), tokens row-major in
            each window.

        Example:
            >>> attn = WindowAttention(dim=32, num_heads=2, window_size=7)
            >>> attn.attention_probabilities(
            ...     keras.ops.ones((8, 49, 32))).shape
            (8, 2, 49, 49)
        """
        if not self.built:
            self.build(inputs.shape)
        return super().attention_probabilities(
            inputs, self._bias(inputs, attention_mask)
        )

    def compute_output_shape(self, inputs_shape, attention_mask_shape=None):
        return tuple(inputs_shape[:-1]) + (self.dim,)
