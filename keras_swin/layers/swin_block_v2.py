"""Swin V2 block and stage: res-post-norm and cosine window attention."""

from __future__ import annotations

import keras

from keras_swin.layers._serialization import register
from keras_swin.layers.gradient_barrier import gradient_barrier
from keras_swin.layers.swin_block import SwinBlock, SwinStage
from keras_swin.layers.window_attention_v2 import WindowAttentionV2


@register
class SwinBlockV2(SwinBlock):
    """One (shifted) window block of Swin V2, res-post-norm.

    x = x + DropPath(norm1(W-MSA(x))); x = x + DropPath(norm2(MLP(x))):
    the LayerNorms close the residual branches instead of opening them
    (the official `swin_transformer_v2.py`, timm, Hugging Face). The
    attention is `WindowAttentionV2`. Windows, shift, padding, masks and
    any input size are V1's (`SwinBlock`): a map not larger than the
    window is attended whole, without shift (`window_mode="clamp"`),
    and the continuous bias is evaluated for the window actually used.

    Args:
        dim: channels C.
        num_heads: attention heads.
        window_size: window side M.
        shift_size: cyclic shift, 0 or usually M // 2.
        pretrained_window_size: window the position MLP was trained at,
            or 0 (see `WindowAttentionV2`).
        mlp_ratio: MLP hidden width as a multiple of C.
        qkv_bias: whether q and v have biases.
        dropout_rate: dropout in the MLP and after the projection.
        attention_dropout_rate: dropout on attention probabilities.
        drop_path_rate: stochastic depth rate of both branches.
        layer_norm_epsilon: epsilon of norm1 and norm2 (1e-5).
        window_mode: "clamp" or "pad", see `SwinBlock`.
        **kwargs: base `Layer` arguments.

    Shapes:
        inputs: (B, H, W, C) -> (B, H, W, C).

    Example:
        >>> block = SwinBlockV2(dim=32, num_heads=2, window_size=8,
        ...                     shift_size=4)
        >>> block(keras.ops.ones((2, 64, 64, 32))).shape
        (2, 64, 64, 32)
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        window_size: int = 8,
        shift_size: int = 0,
        pretrained_window_size: int = 0,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        dropout_rate: float = 0.0,
        attention_dropout_rate: float = 0.0,
        drop_path_rate: float = 0.0,
        layer_norm_epsilon: float = 1e-5,
        window_mode: str = "clamp",
        **kwargs,
    ):
        # Read by `_make_attention` inside SwinBlock's constructor.
        self.pretrained_window_size = pretrained_window_size
        super().__init__(
            dim,
            num_heads,
            window_size=window_size,
            shift_size=shift_size,
            mlp_ratio=mlp_ratio,
            qkv_bias=qkv_bias,
            dropout_rate=dropout_rate,
            attention_dropout_rate=attention_dropout_rate,
            drop_path_rate=drop_path_rate,
            layer_norm_epsilon=layer_norm_epsilon,
            window_mode=window_mode,
            **kwargs,
        )

    def _make_attention(self) -> keras.layers.Layer:
        return WindowAttentionV2(
            self.dim,
            self.num_heads,
            self.window_size,
            pretrained_window_size=self.pretrained_window_size,
            qkv_bias=self.qkv_bias,
            attention_dropout_rate=self.attention_dropout_rate,
            proj_dropout_rate=self.dropout_rate,
            name="attn",
            dtype=self.dtype_policy,
        )

    def _attention_input(self, inputs):
        # Post-norm: the attention reads the block's input as it is.
        return inputs

    def call(self, inputs, training=None):
        if not self.trainable:
            training = False
        inputs = gradient_barrier(inputs)
        height, width = self._size(inputs)
        x = self._window_attention(inputs, height, width, training)
        x = gradient_barrier(
            inputs + self.drop_path(self.norm1(x), training=training)
        )
        return x + self.drop_path(
            self.norm2(self.mlp(x, training=training)), training=training
        )


@register
class SwinStageV2(SwinStage):
    """A stage of Swin V2 blocks at one resolution, alternating W-/SW-MSA.

    `SwinStage` with `SwinBlockV2` blocks (`blocks_{j}`, shift 0 for even
    j, window // 2 for odd j) that share one `pretrained_window_size`.

    Args:
        dim: channels C.
        depth: number of blocks.
        num_heads: attention heads.
        window_size: window side M.
        pretrained_window_size: window the stage's position MLPs were
            trained at, or 0.
        mlp_ratio: MLP hidden width as a multiple of C.
        qkv_bias: whether q and v have biases.
        dropout_rate: dropout rate inside the blocks.
        attention_dropout_rate: dropout on attention probabilities.
        drop_path_rate: a float, or one rate per block.
        layer_norm_epsilon: LayerNorm epsilon.
        window_mode: "clamp" or "pad", see `SwinBlock`.
        gradient_checkpointing: recompute block activations in the
            backward pass (see `SwinStage`).
        **kwargs: base `Layer` arguments.

    Shapes:
        inputs: (B, H, W, C) -> (B, H, W, C).

    Example:
        >>> stage = SwinStageV2(dim=32, depth=2, num_heads=2,
        ...                     window_size=8)
        >>> stage(keras.ops.ones((1, 32, 32, 32))).shape
        (1, 32, 32, 32)
    """

    def __init__(
        self,
        dim: int,
        depth: int,
        num_heads: int,
        window_size: int = 8,
        pretrained_window_size: int = 0,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        dropout_rate: float = 0.0,
        attention_dropout_rate: float = 0.0,
        drop_path_rate: float | list[float] = 0.0,
        layer_norm_epsilon: float = 1e-5,
        window_mode: str = "clamp",
        gradient_checkpointing: bool = False,
        **kwargs,
    ):
        # Read by `_make_block` inside SwinStage's constructor.
        self.pretrained_window_size = pretrained_window_size
        super().__init__(
            dim,
            depth,
            num_heads,
            window_size=window_size,
            mlp_ratio=mlp_ratio,
            qkv_bias=qkv_bias,
            dropout_rate=dropout_rate,
            attention_dropout_rate=attention_dropout_rate,
            drop_path_rate=drop_path_rate,
            layer_norm_epsilon=layer_norm_epsilon,
            window_mode=window_mode,
            gradient_checkpointing=gradient_checkpointing,
            **kwargs,
        )

    def _make_block(self, index: int, shift: int, drop_path_rate: float):
        return SwinBlockV2(
            self.dim,
            self.num_heads,
            window_size=self.window_size,
            shift_size=shift,
            pretrained_window_size=self.pretrained_window_size,
            mlp_ratio=self.mlp_ratio,
            qkv_bias=self.qkv_bias,
            dropout_rate=self.dropout_rate,
            attention_dropout_rate=self.attention_dropout_rate,
            drop_path_rate=drop_path_rate,
            layer_norm_epsilon=self.layer_norm_epsilon,
            window_mode=self.window_mode,
            name=f"blocks_{index}",
            dtype=self.dtype_policy,
        )
