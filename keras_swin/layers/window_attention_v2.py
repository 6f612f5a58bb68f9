"""Swin V2 window attention: scaled cosine attention, continuous bias."""

from __future__ import annotations

import math

import keras
from keras import ops

from keras_swin.layers import windows
from keras_swin.layers._serialization import register
from keras_swin.layers.attention import Attention
from keras_swin.layers.linear import Linear
from keras_swin.layers.window_attention import WindowAttention

#: Upper bound of the learned log temperature, log(1 / 0.01).
MAX_LOGIT_SCALE = math.log(100.0)

#: Width of the continuous position bias MLP (2 -> 512 -> heads).
CPB_HIDDEN = 512


def _l2_normalize(x):
    # F.normalize: x / max(||x||_2, 1e-12) along head_dim.
    norm = ops.sqrt(ops.sum(ops.square(x), axis=-1, keepdims=True))
    return x / ops.maximum(norm, ops.cast(1e-12, x.dtype))


@register
class WindowAttentionV2(WindowAttention):
    """Swin V2 window attention (Liu et al., 2022).

    Scaled cosine attention with a continuous position bias:

        logits = cos(q, k) * exp(min(logit_scale, log 100))
                 + 16 * sigmoid(cpb_mlp(table)[index]) + mask

    q and k are L2-normalised along head_dim (no head_dim^-0.5 scale);
    `logit_scale` is learned per head. `cpb_mlp` (Linear 2 -> 512, ReLU,
    Linear 512 -> heads without bias) maps the log-spaced relative
    coordinates of the window (`relative_coords_table`) to one bias per
    head; the V1 relative position index gathers it. The qkv projection
    has no bias of its own: q and v have `q_bias` and `v_bias`, k none.

    No weight depends on the window: windows of any side M are attended
    (a stage clamped to a small map, or a window enlarged for
    fine-tuning), the table spread over `pretrained_window_size` when it
    is set (the window the MLP was trained at), else over M.

    Weight paths mirror the official module: `qkv/kernel`, `q_bias`,
    `v_bias`, `logit_scale` (heads, 1, 1), `cpb_mlp_0/{kernel,bias}`,
    `cpb_mlp_2/kernel`, `proj/{kernel,bias}`.

    Args:
        dim: token width C.
        num_heads: number of heads.
        window_size: the window side M the block was made for (the bias
            is computed for the side the input windows have).
        pretrained_window_size: window side the position MLP was trained
            at, or 0 (none: the table spans the window itself).
        qkv_bias: whether q and v have biases (`q_bias`, `v_bias`).
        attention_dropout_rate: dropout on attention probabilities.
        proj_dropout_rate: dropout after `proj`.
        **kwargs: base `Layer` arguments.

    Shapes:
        inputs: (B * nW, M * M, C) windows from `window_partition`.
        attention_mask (call argument): (nW, M*M, M*M) additive mask, or
            None.
        output: (B * nW, M * M, C).

    Example:
        >>> attn = WindowAttentionV2(dim=32, num_heads=2, window_size=8)
        >>> attn(keras.ops.ones((4, 64, 32))).shape
        (4, 64, 32)
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        window_size: int,
        pretrained_window_size: int = 0,
        qkv_bias: bool = True,
        attention_dropout_rate: float = 0.0,
        proj_dropout_rate: float = 0.0,
        **kwargs,
    ):
        # qkv without a bias of its own; q is scaled before the kernel
        # (per head), so the kernel's scale is 1.
        super().__init__(
            dim,
            num_heads,
            window_size,
            qkv_bias=False,
            qk_scale=1.0,
            attention_dropout_rate=attention_dropout_rate,
            proj_dropout_rate=proj_dropout_rate,
            **kwargs,
        )
        if pretrained_window_size < 0 or pretrained_window_size == 1:
            raise ValueError(
                "pretrained_window_size must be 0 (none) or >= 2, got "
                f"{pretrained_window_size}."
            )
        self.qkv_bias = qkv_bias
        self.pretrained_window_size = pretrained_window_size
        policy = self.dtype_policy
        self.cpb_mlp_0 = Linear(CPB_HIDDEN, name="cpb_mlp_0", dtype=policy)
        self.cpb_mlp_2 = Linear(
            num_heads, use_bias=False, name="cpb_mlp_2", dtype=policy
        )

    def build(self, input_shape):
        # Attention's qkv and proj; no V1 table.
        Attention.build(self, input_shape)
        if self.qkv_bias:
            self.q_bias = self.add_weight(
                shape=(self.dim,), initializer="zeros", name="q_bias"
            )
            self.v_bias = self.add_weight(
                shape=(self.dim,), initializer="zeros", name="v_bias"
            )
        self.logit_scale = self.add_weight(
            shape=(self.num_heads, 1, 1),
            initializer=keras.initializers.Constant(math.log(10.0)),
            name="logit_scale",
        )
        self.cpb_mlp_0.build((None, 2))
        self.cpb_mlp_2.build((None, CPB_HIDDEN))

    def prepare_window(self, window_size: int) -> None:
        """Converts the index and coordinate table of an M x M window now.

        Args:
            window_size: M, the block's window side at its input size.
        """
        windows.constant(windows.relative_position_index, window_size)
        windows.constant(
            windows.relative_coords_table,
            window_size,
            self.pretrained_window_size,
        )

    def relative_position_bias(self, window_size):
        """16 * sigmoid of the continuous bias of an M x M window.

        Args:
            window_size: M, an int (static) or scalar int tensor.

        Returns:
            (heads, M*M, M*M) tensor in the layer's compute dtype.
        """
        like = self.cpb_mlp_0.kernel.value
        if isinstance(window_size, int):
            table = windows.constant(
                windows.relative_coords_table,
                window_size,
                self.pretrained_window_size,
                like=like,
            )
            index = windows.constant(
                windows.relative_position_index, window_size, like=like
            )
        else:
            table = windows.dynamic_relative_coords_table(
                window_size, self.pretrained_window_size
            )
            index = windows.dynamic_relative_position_index(
                window_size, window_size
            )
        table = ops.cast(table, self.compute_dtype)
        # ((2M - 1)^2, heads): the MLP on every relative offset.
        rows = self.cpb_mlp_2(ops.relu(self.cpb_mlp_0(table)))
        # (M*M, M*M, heads) -> (heads, M*M, M*M), as in V1.
        bias = ops.take(rows, index, axis=0)
        return 16.0 * ops.sigmoid(ops.transpose(bias, (2, 0, 1)))

    def _project(self, inputs):
        """qkv (+ q_bias, 0, v_bias), heads, cosine-normalised q and k.

        Args:
            inputs: (B, N, C).

        Returns:
            (N, q, k, v), each (B, N, heads, head_dim), q and k
            L2-normalised along head_dim.
        """
        tokens = inputs.shape[1]
        if tokens is None:
            tokens = ops.shape(inputs)[1]
        qkv = self.qkv(inputs)
        if self.qkv_bias:
            zeros = ops.zeros((self.dim,), dtype=self.q_bias.dtype)
            bias = ops.concatenate([self.q_bias, zeros, self.v_bias])
            qkv = qkv + ops.cast(bias, qkv.dtype)
        qkv = ops.reshape(qkv, (-1, tokens, 3, self.num_heads, self.head_dim))
        q, k, v = qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]
        return tokens, _l2_normalize(q), _l2_normalize(k), v

    def _probabilities(self, q, k, bias):
        """float32 softmax(cos(q, k) * exp(min(logit_scale, log 100)) + bias).

        The temperature multiplies the cosine similarities after the
        matrix product, in float32, as the official code does: it reaches
        100, so scaling q first (one fused kernel with a per-head scale)
        would amplify rounding differences 100-fold before the softmax
        (1.8e-5 against 1.1e-5 on a golden case with clamped heads).

        Args:
            q, k: (B, N, heads, head_dim), L2-normalised.
            bias: additive logits bias broadcastable to (B, heads, N, N),
                or None.

        Returns:
            (B, heads, N, N) float32.
        """
        logits = ops.cast(ops.einsum("bqhd,bkhd->bhqk", q, k), "float32")
        scale = ops.exp(
            ops.minimum(ops.cast(self.logit_scale, "float32"), MAX_LOGIT_SCALE)
        )
        # (heads, 1, 1) broadcasts over (B, heads, N, N).
        logits = logits * scale
        if bias is not None:
            logits = logits + ops.cast(bias, "float32")
        return ops.softmax(logits)

    def _attend(self, inputs, bias=None, training=None):
        """Explicit attention: the temperature is per head (see above).

        Args:
            inputs: (B, N, C).
            bias: additive logits bias broadcastable to (B, heads, N, N),
                or None.
            training: Keras training flag.

        Returns:
            (B, N, C) after `proj`.
        """
        tokens, q, k, v = self._project(inputs)
        out = self._explicit_attention(q, k, v, bias, training)
        out = ops.reshape(out, (-1, tokens, self.dim))
        return self.proj_drop(self.proj(out), training=training)
