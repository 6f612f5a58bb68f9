"""Vision Transformer encoder: pre-norm blocks and the final LayerNorm."""

from __future__ import annotations

import keras

from keras_swin.layers._serialization import ConfigFromArguments, register
from keras_swin.layers.attention import Attention
from keras_swin.layers.drop_path import DropPath, linear_drop_path_rates
from keras_swin.layers.gradient_barrier import gradient_barrier
from keras_swin.layers.mlp import Mlp
from keras_swin.layers.position import PositionEmbedding
from keras_swin.layers.position_2d import PositionEmbedding2D, grid_pair
from keras_swin.layers.relative_position_bias import RelativePositionBias

#: Position information an encoder can add itself ("none": nothing).
POSITION_EMBEDDINGS = ("none", "1d", "2d", "relative")
#: Where: before the first block only, before every block with its own
#: weights, or before every block with one set of weights.
POSITION_EMBEDDING_PLACES = ("stem", "every_layer", "every_layer_shared")


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
        attention_bias (call argument): additive attention-logits bias
            broadcastable to (B, heads, N, N) (a relative position bias,
            `RelativePositionBias`), or None.

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

    def call(self, inputs, attention_bias=None, training=None):
        inputs = gradient_barrier(inputs)
        x = self.norm1(inputs)
        if attention_bias is None:  # the call of every released model
            x = self.attn(x, training=training)
        else:
            x = self.attn(x, attention_bias=attention_bias, training=training)
        x = gradient_barrier(inputs + self.drop_path(x, training=training))
        y = self.mlp(self.norm2(x), training=training)
        return x + self.drop_path(y, training=training)

    def attention_probabilities(self, inputs, attention_bias=None):
        """The block's attention weights for `inputs` (inference).

        `norm1`, then `Attention.attention_probabilities` with the same
        `attention_bias` as `call`.

        Args:
            inputs: (B, N, D), the block's input.
            attention_bias: the bias `call` gets, or None.

        Returns:
            (B, heads, N, N) float32 softmax probabilities; each row sums
            to 1.

        Example:
            >>> block = ViTEncoderBlock(dim=16, num_heads=2, mlp_dim=32)
            >>> block.attention_probabilities(
            ...     keras.ops.ones((1, 5, 16))
            ... ).shape
            (1, 2, 5, 5)
        """
        if not self.built:
            self.build(tuple(inputs.shape))
        return self.attn.attention_probabilities(
            self.norm1(inputs), attention_bias=attention_bias
        )

    def compute_output_shape(self, inputs_shape, attention_bias_shape=None):
        return tuple(inputs_shape)

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
        position_embedding: position information the encoder adds
            itself (the ViT paper's Appendix D.4 variants): "none"
            (default; an absolute embedding at the stem is the model's
            `pos_embed`, added before the encoder), "1d" (learned
            (N, D), `PositionEmbedding`), "2d" (X- and Y-embeddings of
            D/2 concatenated, `PositionEmbedding2D`) or "relative" (a
            per-head attention-logits bias by 2-D offset,
            `RelativePositionBias`).
        position_embedding_at: "stem" (only before `blocks_0`),
            "every_layer" (each block its own weights: `pos_embed_{i}`
            or `rel_pos_bias_{i}`) or "every_layer_shared" (one
            `pos_embed` or `rel_pos_bias` used before every block). An
            absolute embedding is added to a block's input; a relative
            bias goes to the block's attention logits.
        grid_size: (gh, gw) static patch grid; needed by "2d" and
            "relative".
        num_prefix_tokens: P, class and register tokens before the
            patch tokens (for "2d" and "relative").
        **kwargs: base `Layer` arguments.

    Shapes:
        inputs: (B, N, D) -> (B, N, D), after the final LayerNorm. With a
        position embedding other than "none", N is static
        (P + gh * gw for "2d" and "relative").

    Example:
        >>> encoder = ViTEncoder(dim=64, num_layers=2, num_heads=4,
        ...                      mlp_dim=128)
        >>> encoder(keras.ops.ones((2, 197, 64))).shape
        (2, 197, 64)
        >>> relative = ViTEncoder(dim=16, num_layers=2, num_heads=2,
        ...     mlp_dim=32, position_embedding="relative",
        ...     position_embedding_at="every_layer", grid_size=(2, 2),
        ...     num_prefix_tokens=1)
        >>> relative(keras.ops.ones((1, 5, 16))).shape
        (1, 5, 16)
        >>> [layer.name for layer in relative.position_layers]
        ['rel_pos_bias_0', 'rel_pos_bias_1']
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
        position_embedding: str = "none",
        position_embedding_at: str = "stem",
        grid_size=None,
        num_prefix_tokens: int = 0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if position_embedding not in POSITION_EMBEDDINGS:
            raise ValueError(
                f"position_embedding must be one of {POSITION_EMBEDDINGS}, "
                f"got {position_embedding!r}."
            )
        if position_embedding_at not in POSITION_EMBEDDING_PLACES:
            raise ValueError(
                "position_embedding_at must be one of "
                f"{POSITION_EMBEDDING_PLACES}, got {position_embedding_at!r}."
            )
        if grid_size is not None:
            grid_size = grid_pair(grid_size, "grid_size")
        elif position_embedding in ("2d", "relative"):
            raise ValueError(
                f'position_embedding="{position_embedding}" needs the '
                "static patch grid: pass grid_size=(gh, gw)."
            )
        self.final_norm = final_norm
        self.position_embedding = position_embedding
        self.position_embedding_at = position_embedding_at
        self.grid_size = grid_size
        self.num_prefix_tokens = num_prefix_tokens
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
        #: The position layers, one per distinct set of weights.
        self.position_layers = self._make_position_layers()

    def _make_position_layers(self) -> list:
        kind = self.position_embedding
        if kind == "none":
            return []
        every = self.position_embedding_at == "every_layer"
        base = "rel_pos_bias" if kind == "relative" else "pos_embed"
        names = (
            [f"{base}_{i}" for i in range(self.num_layers)] if every else [base]
        )
        policy = self.dtype_policy
        if kind == "1d":
            return [PositionEmbedding(name=n, dtype=policy) for n in names]
        if kind == "2d":
            return [
                PositionEmbedding2D(
                    self.grid_size,
                    num_prefix_tokens=self.num_prefix_tokens,
                    name=n,
                    dtype=policy,
                )
                for n in names
            ]
        return [
            RelativePositionBias(
                self.grid_size,
                self.num_heads,
                num_prefix_tokens=self.num_prefix_tokens,
                name=n,
                dtype=policy,
            )
            for n in names
        ]

    def _position_layer(self, index: int):
        """The position layer used before block `index`, or None."""
        if not self.position_layers:
            return None
        if self.position_embedding_at == "every_layer":
            return self.position_layers[index]
        if self.position_embedding_at == "stem" and index > 0:
            return None
        return self.position_layers[0]

    def block_arguments(self, x, index: int):
        """Block `index`'s input and attention bias, as `call` makes them.

        Adds the block's absolute position embedding to `x`, or computes
        its relative attention bias; both unchanged without one. Works on
        symbolic tensors too (`vit_feature_model` calls the blocks one by
        one with it).

        Args:
            x: (B, N, D), the previous block's output (or the encoder's
                input for index 0).
            index: block index, 0 .. num_layers - 1.

        Returns:
            (x, attention_bias): x (B, N, D); attention_bias
            (1, heads, N, N) or None.

        Example:
            >>> encoder = ViTEncoder(16, 2, 2, 32, position_embedding="2d",
            ...     position_embedding_at="every_layer_shared",
            ...     grid_size=2)
            >>> x, bias = encoder.block_arguments(
            ...     keras.ops.zeros((1, 4, 16)), 1)
            >>> tuple(x.shape), bias
            ((1, 4, 16), None)
        """
        layer = self._position_layer(index)
        if layer is None:
            return x, None
        if self.position_embedding == "relative":
            return x, layer(x)
        return layer(x), None

    def build(self, input_shape):
        for layer in self.position_layers:
            layer.build(input_shape)
        for block in self.blocks:
            block.build(input_shape)
        if self.norm is not None:
            self.norm.build(input_shape)

    def call(self, inputs, training=None):
        x = inputs
        for index, block in enumerate(self.blocks):
            x, bias = self.block_arguments(x, index)
            x = block(x, attention_bias=bias, training=training)
        return x if self.norm is None else self.norm(x)

    def attention_probabilities(self, inputs):
        """Every block's attention weights, the blocks run as in `call`.

        Each block gets the input and bias `call` gives it (position
        embeddings and relative biases included); its probabilities are
        taken from that input, then the block runs to feed the next one.
        Inference only (no dropout).

        Args:
            inputs: (B, N, D), the encoder's input.

        Returns:
            A list of `num_layers` float32 tensors (B, heads, N, N),
            `blocks_0` first.

        Example:
            >>> encoder = ViTEncoder(dim=16, num_layers=2, num_heads=2,
            ...                      mlp_dim=32)
            >>> probs = encoder.attention_probabilities(
            ...     keras.ops.ones((1, 5, 16)))
            >>> [tuple(p.shape) for p in probs]
            [(1, 2, 5, 5), (1, 2, 5, 5)]
        """
        if not self.built:
            self.build(tuple(inputs.shape))
        x = inputs
        probabilities = []
        for index, block in enumerate(self.blocks):
            x, bias = self.block_arguments(x, index)
            probabilities.append(
                block.attention_probabilities(x, attention_bias=bias)
            )
            if index < len(self.blocks) - 1:  # the last output is unused
                x = block(x, attention_bias=bias)
        return probabilities

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)
