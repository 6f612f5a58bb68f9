"""Swin Transformer block and stage on (B, H, W, C) feature maps."""

from __future__ import annotations

import functools

import keras
from keras import ops

from keras_swin.layers import windows
from keras_swin.layers._serialization import ConfigFromArguments, register
from keras_swin.layers.drop_path import DropPath
from keras_swin.layers.gradient_barrier import gradient_barrier
from keras_swin.layers.mlp import Mlp
from keras_swin.layers.window_attention import WindowAttention


def _roll(x, shift):
    """Cyclic shift of a map's H and W axes; nothing for the int 0.

    A static shift is two slices and a concatenation per axis, as
    `roll` computes it: the same numbers, and ops that every export
    format has (TensorFlow's `Roll` is no LiteRT builtin and would need
    the Flex delegate; keras_swin.export).
    """
    if isinstance(shift, int):
        if not shift:
            return x
        # Rolled by s (|s| < the padded map, a window multiple): the
        # last s rows come first for s > 0, the first -s go last for s < 0;
        # both are x[-s:] then x[:-s].
        for axis in (1, 2):
            head = (slice(None),) * axis
            parts = [
                x[(*head, slice(-shift, None))],
                x[(*head, slice(None, -shift))],
            ]
            x = ops.concatenate(parts, axis=axis)
        return x
    return ops.roll(x, (shift, shift), axis=(1, 2))


@register
class SwinBlock(ConfigFromArguments, keras.layers.Layer):
    """One (shifted) window attention block of Swin, pre-norm.

    x = x + DropPath(W-MSA(norm1(x))); x = x + DropPath(MLP(norm2(x))).

    The window layout follows the official code and Hugging Face for any
    map size: with `window_mode="clamp"` (official classification code,
    Hugging Face `SwinModel`), if min(H, W) <= window the window becomes
    min(H, W) and the shift 0; with `window_mode="pad"` (official
    detection/segmentation backbone, Hugging Face `SwinBackbone`) window
    and shift never change. The normalised map is zero-padded on the
    bottom/right to a multiple of the window, then cyclically shifted by
    -shift, attended in windows (with the shift mask of the padded grid;
    the padded zeros are attended, not masked), shifted back and cropped.
    For static sizes the layout and mask come from numpy once per size; a
    TensorFlow graph with unknown H, W builds them in-graph.

    A block with `trainable=False` runs in inference mode (no dropout or
    drop path) even inside `fit`, as a frozen stage of the official
    detection code (`_freeze_stages` puts it in `eval()`) and as Keras'
    `BatchNormalization` does.

    Args:
        dim: channels C.
        num_heads: attention heads.
        window_size: window side M (also the relative table's window).
        shift_size: cyclic shift, 0 (W-MSA) or usually M // 2 (SW-MSA).
        mlp_ratio: MLP hidden width as a multiple of C.
        qkv_bias: whether `qkv` has a bias.
        qk_scale: override of the head_dim^-0.5 attention scale.
        dropout_rate: dropout in the MLP and after the attention projection.
        attention_dropout_rate: dropout on attention probabilities.
        drop_path_rate: stochastic depth rate of both residual branches.
        layer_norm_epsilon: epsilon of norm1 and norm2 (1e-5 in Swin).
        use_relative_position_bias: False removes the relative bias.
        window_mode: "clamp" or "pad" (see above).
        **kwargs: base `Layer` arguments.

    Shapes:
        inputs: (B, H, W, C) -> (B, H, W, C).

    Example:
        >>> block = SwinBlock(dim=32, num_heads=2, window_size=7,
        ...                   shift_size=3)
        >>> block(keras.ops.ones((2, 56, 56, 32))).shape
        (2, 56, 56, 32)
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        window_size: int = 7,
        shift_size: int = 0,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        qk_scale: float | None = None,
        dropout_rate: float = 0.0,
        attention_dropout_rate: float = 0.0,
        drop_path_rate: float = 0.0,
        layer_norm_epsilon: float = 1e-5,
        use_relative_position_bias: bool = True,
        window_mode: str = "clamp",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.window_mode = windows.check_window_mode(window_mode)
        if not 0 <= shift_size < window_size:
            raise ValueError(
                f"shift_size must be in [0, window_size={window_size}), got "
                f"{shift_size}."
            )
        self.dim = dim
        self.num_heads = num_heads
        self.window_size = window_size
        self.shift_size = shift_size
        self.mlp_ratio = mlp_ratio
        self.qkv_bias = qkv_bias
        self.qk_scale = qk_scale
        self.dropout_rate = dropout_rate
        self.attention_dropout_rate = attention_dropout_rate
        self.drop_path_rate = drop_path_rate
        self.layer_norm_epsilon = layer_norm_epsilon
        self.use_relative_position_bias = use_relative_position_bias
        policy = self.dtype_policy
        self.norm1 = keras.layers.LayerNormalization(
            epsilon=layer_norm_epsilon, name="norm1", dtype=policy
        )
        self.attn = self._make_attention()
        self.drop_path = DropPath(
            drop_path_rate, name="drop_path", dtype=policy
        )
        self.norm2 = keras.layers.LayerNormalization(
            epsilon=layer_norm_epsilon, name="norm2", dtype=policy
        )
        self.mlp = Mlp(
            int(dim * mlp_ratio),
            dim,
            dropout_rate=dropout_rate,
            name="mlp",
            dtype=policy,
        )

    def _make_attention(self) -> keras.layers.Layer:
        """The block's window attention, from its stored arguments."""
        return WindowAttention(
            self.dim,
            self.num_heads,
            self.window_size,
            qkv_bias=self.qkv_bias,
            qk_scale=self.qk_scale,
            attention_dropout_rate=self.attention_dropout_rate,
            proj_dropout_rate=self.dropout_rate,
            use_relative_position_bias=self.use_relative_position_bias,
            name="attn",
            dtype=self.dtype_policy,
        )

    def _attention_input(self, inputs):
        """What the attention branch attends: norm1(x) (pre-norm)."""
        return self.norm1(inputs)

    def build(self, input_shape):
        if len(input_shape) != 4 or input_shape[-1] != self.dim:
            raise ValueError(
                f"{self.name} expects (B, H, W, {self.dim}) inputs, got "
                f"{tuple(input_shape)}."
            )
        self.norm1.build(input_shape)
        self.attn.build((None, None, self.dim))
        height, width = input_shape[1], input_shape[2]
        if height is not None and width is not None:
            # Convert the layout's constants now, outside any trace.
            m, shift, hp, wp = windows.padded_window(
                height,
                width,
                self.window_size,
                self.shift_size,
                self.window_mode,
            )
            self.attn.prepare_window(m)
            if shift:
                windows.constant(windows.shift_window_mask, hp, wp, m, shift)
        self.norm2.build(input_shape)
        self.mlp.build(input_shape)
        self.drop_path.build(input_shape)

    def _layout(self, x, height, width):
        """Window, shift, padded size and shift mask for an (H, W) map.

        Two branches because only a static size lets the layout be Python
        ints and the mask a cached constant (converted once, embedded in
        traces); a TensorFlow graph traced for unknown H, W computes the
        same layout in-graph, where a zero shift gives an all-zero mask.

        Args:
            x: the map (B, H, W, C) the mask will meet (its device).
            height: H, an int or a scalar int tensor.
            width: W, likewise.

        Returns:
            (window, shift, padded_height, padded_width, mask): ints and a
            constant mask or None when H and W are ints; scalar tensors
            and an in-graph mask otherwise.
        """
        if isinstance(height, int) and isinstance(width, int):
            m, shift, hp, wp = windows.padded_window(
                height,
                width,
                self.window_size,
                self.shift_size,
                self.window_mode,
            )
            mask = None
            if shift:
                mask = windows.constant(
                    windows.shift_window_mask, hp, wp, m, shift, like=x
                )
            return m, shift, hp, wp, mask
        m, shift, hp, wp = windows.dynamic_padded_window(
            height, width, self.window_size, self.shift_size, self.window_mode
        )
        return (
            m,
            shift,
            hp,
            wp,
            windows.dynamic_shift_window_mask(hp, wp, m, shift),
        )

    def _partition(self, x, height, width):
        """Pad, shift and cut a normalised map into windows, as `call`.

        Args:
            x: normalised map (B, H, W, C).
            height: H, an int (static) or a scalar int tensor (dynamic).
            width: W, likewise.

        Returns:
            (windows (B * nW, M * M, C), (window, shift, padded_height,
            padded_width, mask)) with the layout of `_layout`.
        """
        layout = self._layout(x, height, width)
        m, shift, hp, wp, _ = layout
        x = windows.pad_bottom_right(x, hp - height, wp - width)
        x = _roll(x, -shift)
        return windows.window_partition(x, m), layout

    def _window_attention(self, x, height, width, training):
        """(S)W-MSA on a normalised map: pad, shift, attend, undo.

        Args:
            x: normalised map (B, H, W, C).
            height: H, an int (static) or a scalar int tensor (dynamic).
            width: W, likewise.
            training: Keras training flag.

        Returns:
            (B, H, W, C).
        """
        x, (m, shift, hp, wp, mask) = self._partition(x, height, width)
        x = self.attn(x, attention_mask=mask, training=training)
        x = windows.window_reverse(x, m, hp, wp)
        x = _roll(x, shift)
        if not (isinstance(hp, int) and (hp, wp) == (height, width)):
            x = x[:, :height, :width]
        return x

    @staticmethod
    def _size(inputs):
        """(H, W) of a map: ints when static, scalar tensors otherwise."""
        height, width = inputs.shape[1], inputs.shape[2]
        if height is None or width is None:
            shape = ops.shape(inputs)
            height, width = shape[1], shape[2]
        return height, width

    def call(self, inputs, training=None):
        if not self.trainable:
            training = False
        inputs = gradient_barrier(inputs)
        height, width = self._size(inputs)
        x = self._window_attention(self.norm1(inputs), height, width, training)
        x = gradient_barrier(inputs + self.drop_path(x, training=training))
        return x + self.drop_path(
            self.mlp(self.norm2(x), training=training), training=training
        )

    def attention_probabilities(self, inputs):
        """Every window's attention weights, as `call` applies them.

        The block's own path (norm1, bottom/right padding to window
        multiples, cyclic shift by -shift, window partition, relative
        bias and shift mask), then float32 softmax probabilities without
        attention dropout. `keras_swin.analysis.swin_window_layouts`
        gives the window, shift and padded size used at an input size.

        Args:
            inputs: (B, H, W, C), the block's input.

        Returns:
            (B, nW, heads, M*M, M*M) float32. Windows are numbered
            row-major on the padded, shifted (Hp, Wp) grid (the order of
            `window_partition`), nW = (Hp / M) * (Wp / M); the M*M
            queries and keys of a window are row-major inside it. Window
            (r, c), token (a, b) is the map position
            ((r * M + a + shift) mod Hp, (c * M + b + shift) mod Wp);
            positions at or past (H, W) are padding.

        Example:
            >>> block = SwinBlock(dim=32, num_heads=2, window_size=7,
            ...                   shift_size=3)
            >>> block.attention_probabilities(
            ...     keras.ops.ones((2, 56, 56, 32))).shape
            (2, 64, 2, 49, 49)
        """
        if not self.built:
            self.build(inputs.shape)
        height, width = self._size(inputs)
        x, layout = self._partition(
            self._attention_input(inputs), height, width
        )
        m, _, hp, wp, mask = layout
        probs = self.attn.attention_probabilities(x, attention_mask=mask)
        if isinstance(hp, int):
            # Static layout: nW and M*M are known, keep them in the shape.
            shape = (-1, (hp // m) * (wp // m), self.num_heads, m * m, m * m)
        else:
            batch = inputs.shape[0]
            if batch is None:
                batch = ops.shape(inputs)[0]
            tokens = ops.shape(probs)[-1]
            shape = (batch, -1, self.num_heads, tokens, tokens)
        # (B * nW, heads, M*M, M*M) -> (B, nW, heads, M*M, M*M)
        return ops.reshape(probs, shape)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)


@register
class SwinStage(ConfigFromArguments, keras.layers.Layer):
    """A stage of Swin blocks at one resolution, alternating W-/SW-MSA.

    Block j uses shift 0 for even j and window // 2 for odd j (when
    `shifted_windows`). Blocks are named `blocks_{j}` so weight paths read
    `layers_{i}/blocks_{j}/attn/qkv/kernel`, the official module path.
    Patch merging is a separate `PatchMerging` layer after the stage, so a
    stage's output is the feature map used for dense prediction.

    Args:
        dim: channels C.
        depth: number of blocks.
        num_heads: attention heads.
        window_size: window side M.
        mlp_ratio: MLP hidden width as a multiple of C.
        qkv_bias: whether `qkv` has a bias.
        qk_scale: override of the attention scale.
        dropout_rate: dropout rate inside the blocks.
        attention_dropout_rate: dropout on attention probabilities.
        drop_path_rate: a float for every block or a list with one rate per
            block (the linear stochastic-depth schedule of the paper).
        layer_norm_epsilon: LayerNorm epsilon.
        shifted_windows: False disables the shift in every block (Table 4
            ablation).
        use_relative_position_bias: False removes the relative bias.
        window_mode: "clamp" or "pad", see `SwinBlock`.
        gradient_checkpointing: in training, recompute each block's
            activations in the backward pass instead of keeping them (the
            official `use_checkpoint`; `keras.remat`), trading compute for
            training memory. Outputs are unchanged.
        **kwargs: base `Layer` arguments.

    Shapes:
        inputs: (B, H, W, C) -> (B, H, W, C).

    Example:
        >>> stage = SwinStage(dim=32, depth=2, num_heads=2, window_size=7)
        >>> stage(keras.ops.ones((1, 28, 28, 32))).shape
        (1, 28, 28, 32)
    """

    def __init__(
        self,
        dim: int,
        depth: int,
        num_heads: int,
        window_size: int = 7,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        qk_scale: float | None = None,
        dropout_rate: float = 0.0,
        attention_dropout_rate: float = 0.0,
        drop_path_rate: float | list[float] = 0.0,
        layer_norm_epsilon: float = 1e-5,
        shifted_windows: bool = True,
        use_relative_position_bias: bool = True,
        window_mode: str = "clamp",
        gradient_checkpointing: bool = False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if isinstance(drop_path_rate, (list, tuple)):
            if len(drop_path_rate) != depth:
                raise ValueError(
                    f"drop_path_rate has {len(drop_path_rate)} entries for "
                    f"{depth} blocks."
                )
            rates = [float(r) for r in drop_path_rate]
            drop_path_rate = rates
        else:
            rates = [float(drop_path_rate)] * depth
        self.dim = dim
        self.depth = depth
        self.num_heads = num_heads
        self.window_size = window_size
        self.mlp_ratio = mlp_ratio
        self.qkv_bias = qkv_bias
        self.qk_scale = qk_scale
        self.dropout_rate = dropout_rate
        self.attention_dropout_rate = attention_dropout_rate
        self.drop_path_rate = drop_path_rate
        self.layer_norm_epsilon = layer_norm_epsilon
        self.shifted_windows = shifted_windows
        self.use_relative_position_bias = use_relative_position_bias
        self.window_mode = windows.check_window_mode(window_mode)
        self.gradient_checkpointing = bool(gradient_checkpointing)
        shift = window_size // 2 if shifted_windows else 0
        self.blocks = [
            self._make_block(j, shift if j % 2 else 0, rates[j])
            for j in range(depth)
        ]

    def _make_block(self, index: int, shift: int, drop_path_rate: float):
        """Block `index` of the stage, from the stage's arguments."""
        return SwinBlock(
            self.dim,
            self.num_heads,
            window_size=self.window_size,
            shift_size=shift,
            mlp_ratio=self.mlp_ratio,
            qkv_bias=self.qkv_bias,
            qk_scale=self.qk_scale,
            dropout_rate=self.dropout_rate,
            attention_dropout_rate=self.attention_dropout_rate,
            drop_path_rate=drop_path_rate,
            layer_norm_epsilon=self.layer_norm_epsilon,
            use_relative_position_bias=self.use_relative_position_bias,
            window_mode=self.window_mode,
            name=f"blocks_{index}",
            dtype=self.dtype_policy,
        )

    def build(self, input_shape):
        for block in self.blocks:
            block.build(input_shape)

    def attention_probabilities(self, inputs):
        """Each block's attention weights while running the stage.

        Block j's probabilities are taken on the output of blocks
        0 .. j-1, computed as `call` computes them (inference).

        Args:
            inputs: (B, H, W, C), the stage's input.

        Returns:
            A list of `depth` float32 tensors (B, nW, heads, M*M, M*M),
            see `SwinBlock.attention_probabilities`; even blocks use
            unshifted windows, odd ones shifted windows.

        Example:
            >>> stage = SwinStage(dim=32, depth=2, num_heads=2,
            ...                   window_size=7)
            >>> probs = stage.attention_probabilities(
            ...     keras.ops.ones((1, 28, 28, 32)))
            >>> [tuple(p.shape) for p in probs]
            [(1, 16, 2, 49, 49), (1, 16, 2, 49, 49)]
        """
        if not self.built:
            self.build(inputs.shape)
        probs = []
        x = inputs
        for j, block in enumerate(self.blocks):
            probs.append(block.attention_probabilities(x))
            if j < len(self.blocks) - 1:
                x = block(x, training=False)
        return probs

    def call(self, inputs, training=None):
        x = inputs
        for block in self.blocks:
            if self.gradient_checkpointing and training:
                # `training` is bound here, not passed through the
                # rematerialised function: JAX would trace it and
                # TensorFlow's recompute_grad takes no keyword arguments.
                x = keras.remat(functools.partial(block, training=True))(x)
            else:
                x = block(x, training=training)
        return x

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)
