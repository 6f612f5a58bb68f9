"""Vision Transformer encoder: pre-norm blocks and the final LayerNorm."""

from __future__ import annotations

import keras

from keras_swin.layers._serialization import ConfigFromArguments, register
from keras_swin.layers.attention import Attention
from keras_swin.layers.drop_path import DropPath, linear_drop_path_rates
from keras_swin.layers.gradient_barrier import gradient_barrier
from keras_swin.layers.mlp import Mlp


@register
class ViTEncoderBlock(ConfigFromArguments, keras.layers.Layer):
    """One pre-norm transformer block of ViT.

    x = x + DropPath(Dropout(MSA(norm1(x)))); x = x + DropPath(MLP(norm2(x))).

    Args:
        dim: token width D.
        num_heads: attention heads.
        mlp_dim: MLP hidden width.
        qkv_bias: whether `qkv` has a bias.
        dropout_rate: dropout after attention and inside the MLP.
        attention_dropout_rate: dropout on attention probabilities.
        drop_path_rate: stochastic depth rate.
        layer_norm_epsilon: LayerNorm epsilon: 1e-6 for the official ViT
            and timm, 1e-12 for Hugging Face ViT.
        gelu_approximate: tanh GELU (official JAX ViT) instead of exact.
        **kwargs: base `Layer` arguments.

    Shapes:
        inputs: (B, N, D) -> (B, N, D).

    Example:
        >>> block = ViTEncoderBlock(dim=64, num_heads=4, mlp_dim=128)
        >>> block(keras.ops.ones((2, 197, 64))).shape
        (2, 197, 64)
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        mlp_dim: int,
        qkv_bias: bool = True,
        dropout_rate: float = 0.0,
        attention_dropout_rate: float = 0.0,
        drop_path_rate: float = 0.0,
        layer_norm_epsilon: float = 1e-6,
        gelu_approximate: bool = False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.dim = dim
        self.num_heads = num_heads
        self.mlp_dim = mlp_dim
        self.qkv_bias = qkv_bias
        self.dropout_rate = dropout_rate
        self.attention_dropout_rate = attention_dropout_rate
        self.drop_path_rate = drop_path_rate
        self.layer_norm_epsilon = layer_norm_epsilon
        self.gelu_approximate = gelu_approximate
        policy = self.dtype_policy
        self.norm1 = keras.layers.LayerNormalization(
            epsilon=layer_norm_epsilon, name="norm1", dtype=policy
        )
        self.attn = Attention(
            dim,
            num_heads,
            qkv_bias=qkv_bias,
            attention_dropout_rate=attention_dropout_rate,
            proj_dropout_rate=dropout_rate,
            name="attn",
            dtype=policy,
        )
        self.drop_path = DropPath(
            drop_path_rate, name="drop_path", dtype=policy
        )
        self.norm2 = keras.layers.LayerNormalization(
            epsilon=layer_norm_epsilon, name="norm2", dtype=policy
        )
        self.mlp = Mlp(
            mlp_dim,
            dim,
            gelu_approximate=gelu_approximate,
            dropout_rate=dropout_rate,
            name="mlp",
            dtype=policy,
        )

    def build(self, input_shape):
        if len(input_shape) != 3 or input_shape[-1] != self.dim:
            raise ValueError(
                f"{self.name} expects (B, N, {self.dim}) inputs, got "
                f"{tuple(input_shape)}."
            )
        for layer in (
            self.norm1,
            self.attn,
            self.norm2,
            self.mlp,
            self.drop_path,
        ):
            layer.build(input_shape)

    def call(self, inputs, training=None):
        inputs = gradient_barrier(inputs)
        x = self.attn(self.norm1(inputs), training=training)
        x = gradient_barrier(inputs + self.drop_path(x, training=training))
        y = self.mlp(self.norm2(x), training=training)
        return x + self.drop_path(y, training=training)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    @classmethod
    def from_config(cls, config):
        """The block of a saved config, older configs included.

        Configs saved by version 0.1.0 may hold `final_norm`, which the
        block accepted but never used (the final LayerNorm belongs to
        `ViTEncoder`): whatever its value, the block was the one built
        without it, so the key is dropped.

        Args:
            config: a dict from `get_config`.

        Returns:
            A `ViTEncoderBlock`.

        Example:
            >>> config = ViTEncoderBlock(64, 4, 128).get_config()
            >>> block = ViTEncoderBlock.from_config(
            ...     {**config, "final_norm": True}
            ... )
            >>> block.mlp_dim
            128
        """
        config = {k: v for k, v in config.items() if k != "final_norm"}
        return super().from_config(config)


@register
class ViTEncoder(ConfigFromArguments, keras.layers.Layer):
    """The ViT transformer: `num_layers` blocks, then LayerNorm (`norm`).

    Stochastic depth grows linearly from 0 to `drop_path_rate` over the
    blocks (the DeiT/timm schedule; the official ViT uses none).

    Args:
        dim: token width D.
        num_layers: number of blocks (`blocks_0` ... `blocks_{L-1}`).
        num_heads: attention heads.
        mlp_dim: MLP hidden width.
        qkv_bias: whether `qkv` has a bias.
        dropout_rate: dropout inside the blocks.
        attention_dropout_rate: dropout on attention probabilities.
        drop_path_rate: stochastic depth rate of the last block.
        layer_norm_epsilon: LayerNorm epsilon of every norm.
        gelu_approximate: tanh GELU instead of the exact one.
        final_norm: end with the LayerNorm `norm` (True, official ViT);
            False leaves it out, for models that normalise the pooled
            vector instead (timm's `fc_norm`).
        **kwargs: base `Layer` arguments.

    Shapes:
        inputs: (B, N, D) -> (B, N, D), after the final LayerNorm.

    Example:
        >>> encoder = ViTEncoder(dim=64, num_layers=2, num_heads=4,
        ...                      mlp_dim=128)
        >>> encoder(keras.ops.ones((2, 197, 64))).shape
        (2, 197, 64)
    """

    def __init__(
        self,
        dim: int,
        num_layers: int,
        num_heads: int,
        mlp_dim: int,
        qkv_bias: bool = True,
        dropout_rate: float = 0.0,
        attention_dropout_rate: float = 0.0,
        drop_path_rate: float = 0.0,
        layer_norm_epsilon: float = 1e-6,
        gelu_approximate: bool = False,
        final_norm: bool = True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.final_norm = final_norm
        self.dim = dim
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.mlp_dim = mlp_dim
        self.qkv_bias = qkv_bias
        self.dropout_rate = dropout_rate
        self.attention_dropout_rate = attention_dropout_rate
        self.drop_path_rate = drop_path_rate
        self.layer_norm_epsilon = layer_norm_epsilon
        self.gelu_approximate = gelu_approximate
        rates = linear_drop_path_rates(drop_path_rate, num_layers)
        self.blocks = [
            ViTEncoderBlock(
                dim,
                num_heads,
                mlp_dim,
                qkv_bias=qkv_bias,
                dropout_rate=dropout_rate,
                attention_dropout_rate=attention_dropout_rate,
                drop_path_rate=rates[i],
                layer_norm_epsilon=layer_norm_epsilon,
                gelu_approximate=gelu_approximate,
                name=f"blocks_{i}",
                dtype=self.dtype_policy,
            )
            for i in range(num_layers)
        ]
        self.norm = None
        if final_norm:
            self.norm = keras.layers.LayerNormalization(
                epsilon=layer_norm_epsilon,
                name="norm",
                dtype=self.dtype_policy,
            )

    def build(self, input_shape):
        for block in self.blocks:
            block.build(input_shape)
        if self.norm is not None:
            self.norm.build(input_shape)

    def call(self, inputs, training=None):
        x = inputs
        for block in self.blocks:
            x = block(x, training=training)
        return x if self.norm is None else self.norm(x)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)
