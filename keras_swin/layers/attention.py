"""Multi-head self-attention with a fused qkv projection."""

from __future__ import annotations

import contextlib
import contextvars

import keras
from keras import ops

from keras_swin.layers._serialization import (
    ConfigFromArguments,
    RecordedArguments,
    register,
)
from keras_swin.layers.linear import Linear


def _slow_fused_backward(q, bias, training) -> bool:
    """Whether the fused kernel would train slower than explicit attention.

    PyTorch's fused CPU attention cannot differentiate an additive bias;
    when the bias needs a gradient (Swin's relative-position table) it
    falls back to its reference kernel, which computes 16-bit inputs in
    float32. Explicit attention keeps the matmuls in bfloat16: a Swin-T
    mixed-bfloat16 training step measured 1.33x faster on a CPU with
    bfloat16 matrix units (5.64 -> 7.48 images/s, batch 8), while in
    float32 the fused path is as fast or faster (4.52 against 4.13).

    Args:
        q: queries (B, N, heads, head_dim).
        bias: the additive logits bias, or None.
        training: Keras training flag.

    Returns:
        True on the PyTorch backend, on CPU, for a training call with a
        bias and 16-bit queries.
    """
    if bias is None or not training or keras.backend.backend() != "torch":
        return False
    device = getattr(getattr(q, "device", None), "type", None)
    dtype = keras.backend.standardize_dtype(q.dtype)
    return device == "cpu" and dtype in ("bfloat16", "float16")


_SEPARATE_PROJECTIONS = contextvars.ContextVar(
    "keras_swin_separate_projections", default=False
)


@contextlib.contextmanager
def separate_projections():
    """Inference calls inside compute q, k and v as three projections.

    For exporters: inside the context, an inference call of `Attention`
    (and `WindowAttention`, not Swin V2's cosine attention) projects q, k
    and v with three matmuls on slices of the `qkv` kernel, the scale
    folded into q's slice, and attends with plain matmuls and a softmax:
    the subgraph that onnxscript's ONNX Runtime rewriter fuses into
    `com.microsoft.Attention` (`keras_swin.export`, `fuse_attention`).
    Same weights, the same numbers up to float32 rounding; training
    calls are unchanged.

    Example:
        >>> attn = Attention(dim=64, num_heads=4)
        >>> x = keras.ops.ones((2, 197, 64))
        >>> with separate_projections():
        ...     y = attn(x)
        >>> y.shape
        (2, 197, 64)
    """
    token = _SEPARATE_PROJECTIONS.set(True)
    try:
        yield
    finally:
        _SEPARATE_PROJECTIONS.reset(token)


@register
class Attention(RecordedArguments, ConfigFromArguments, keras.layers.Layer):
    """Multi-head self-attention as in ViT and Swin (fused `qkv`, `proj`).

    The `qkv` Dense maps C to 3C; its output axis is (3, heads, head_dim)
    with q|k|v outermost, the layout of the official Swin code, timm and a
    concatenation of Hugging Face's / the official ViT's q, k, v kernels.
    q is scaled by `qk_scale` (default head_dim^-0.5) after its bias.

    Saved weights record `num_heads` beside the layer's variables (the
    `qkv` kernel has the same shape for any head count), and loading
    weights saved with another head count raises a ValueError.

    Args:
        dim: token width C (input and output).
        num_heads: number of heads; must divide `dim`.
        qkv_bias: whether `qkv` has a bias.
        qk_scale: override of the head_dim^-0.5 scale.
        attention_dropout_rate: dropout on the attention probabilities.
        proj_dropout_rate: dropout after `proj`.
        **kwargs: base `Layer` arguments.

    Shapes:
        inputs: (B, N, C) -> (B, N, C).
        attention_bias (call argument): additive logits bias broadcastable
            to (B, heads, N, N), or None.

    Example:
        >>> attn = Attention(dim=64, num_heads=4)
        >>> attn(keras.ops.ones((2, 197, 64))).shape
        (2, 197, 64)
    """

    recorded_arguments = ("num_heads",)

    def __init__(
        self,
        dim: int,
        num_heads: int,
        qkv_bias: bool = True,
        qk_scale: float | None = None,
        attention_dropout_rate: float = 0.0,
        proj_dropout_rate: float = 0.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if dim % num_heads:
            raise ValueError(
                f"dim={dim} must be divisible by num_heads={num_heads}."
            )
        self.dim = dim
        self.num_heads = num_heads
        self.qkv_bias = qkv_bias
        self.qk_scale = qk_scale
        self.attention_dropout_rate = attention_dropout_rate
        self.proj_dropout_rate = proj_dropout_rate
        self.head_dim = dim // num_heads
        self.scale = qk_scale or self.head_dim**-0.5
        policy = self.dtype_policy
        self.qkv = Linear(3 * dim, use_bias=qkv_bias, name="qkv", dtype=policy)
        self.attn_drop = keras.layers.Dropout(
            attention_dropout_rate, name="attn_drop", dtype=policy
        )
        self.proj = Linear(dim, name="proj", dtype=policy)
        self.proj_drop = keras.layers.Dropout(
            proj_dropout_rate, name="proj_drop", dtype=policy
        )

    def build(self, input_shape):
        if input_shape[-1] is not None and input_shape[-1] != self.dim:
            raise ValueError(
                f"{self.name} expects {self.dim} channels, got input shape "
                f"{tuple(input_shape)}."
            )
        self.qkv.build(input_shape)
        self.proj.build(tuple(input_shape[:-1]) + (self.dim,))

    def _attend(self, inputs, bias=None, training=None):
        """Scaled dot-product attention with an optional additive bias.

        Args:
            inputs: (B, N, C).
            bias: additive logits bias broadcastable to (B, heads, N, N),
                or None.
            training: Keras training flag.

        Returns:
            (B, N, C) after `proj`.
        """
        if _SEPARATE_PROJECTIONS.get() and not training:
            return self._separate_attention(inputs, bias)
        tokens, q, k, v = self._project(inputs)
        if bias is not None:
            bias = ops.cast(bias, q.dtype)
        if (training and self.attention_dropout_rate) or _slow_fused_backward(
            q, bias, training
        ):
            out = self._explicit_attention(q, k, v, bias, training)
        elif keras.backend.backend() == "torch":
            out = self._torch_fused_attention(q, k, v, bias)
        else:
            out = ops.dot_product_attention(
                q, k, v, bias=bias, scale=self.scale
            )
        out = ops.reshape(out, (-1, tokens, self.dim))
        return self.proj_drop(self.proj(out), training=training)

    def _separate_attention(self, inputs, bias):
        """Inference attention as `separate_projections` describes it.

        Args:
            inputs: (B, N, C).
            bias: additive logits bias broadcastable to (B, heads, N, N),
                or None.

        Returns:
            (B, N, C) after `proj`.
        """
        tokens = inputs.shape[1]
        if tokens is None:
            tokens = ops.shape(inputs)[1]
        width = self.dim
        kernel = self.qkv.kernel
        scale = ops.cast(self.scale, kernel.dtype)

        def heads(part, perm, factor=None):
            # (B, N, C) -> (B, N, heads, head_dim), permuted by `perm`.
            columns = slice(part * width, (part + 1) * width)
            weights = kernel[:, columns]
            if factor is not None:
                weights = weights * factor
            y = ops.matmul(inputs, ops.cast(weights, inputs.dtype))
            if self.qkv.bias is not None:
                offset = self.qkv.bias[columns]
                if factor is not None:
                    offset = offset * factor
                y = y + ops.cast(offset, y.dtype)
            y = ops.reshape(y, (-1, tokens, self.num_heads, self.head_dim))
            return ops.transpose(y, perm)

        q = heads(0, (0, 2, 1, 3), scale)
        k_t = heads(1, (0, 2, 3, 1))
        v = heads(2, (0, 2, 1, 3))
        logits = ops.matmul(q, k_t)
        if bias is not None:
            logits = logits + ops.cast(bias, logits.dtype)
        probs = ops.cast(ops.softmax(ops.cast(logits, "float32")), v.dtype)
        out = ops.transpose(ops.matmul(probs, v), (0, 2, 1, 3))
        out = ops.reshape(out, (-1, tokens, self.dim))
        return self.proj(out)

    def _torch_fused_attention(self, q, k, v, bias):
        """PyTorch's fused attention on the heads as strided views.

        Keras' torch `dot_product_attention` copies q, k and v into
        contiguous (B, heads, N, head_dim) tensors before the kernel: three
        copies of the activations per block (36 of the 99 `aten::copy_`
        of a ViT-B/16 forward). The kernel reads strided inputs, so the
        transposes here are views, and its output transposed back to
        (B, N, heads, head_dim) is contiguous: the reshape to (B, N, C)
        is free too. The same kernel and numbers, without the copies.

        Args:
            q, k, v: (B, N, heads, head_dim) views of the `qkv` output.
            bias: additive logits bias broadcastable to (B, heads, N, N),
                or None.

        Returns:
            (B, N, heads, head_dim).
        """
        import torch.nn.functional as F

        out = F.scaled_dot_product_attention(
            q.transpose(1, 2),
            k.transpose(1, 2),
            v.transpose(1, 2),
            attn_mask=bias,
            scale=self.scale,
        )
        return out.transpose(1, 2)

    def _project(self, inputs):
        """`qkv` and its split into heads.

        Args:
            inputs: (B, N, C).

        Returns:
            (N, q, k, v): N an int or a scalar tensor; q, k, v each
            (B, N, heads, head_dim), q not yet scaled.
        """
        tokens = inputs.shape[1]
        if tokens is None:
            tokens = ops.shape(inputs)[1]
        qkv = ops.reshape(
            self.qkv(inputs), (-1, tokens, 3, self.num_heads, self.head_dim)
        )
        return tokens, qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]

    def _probabilities(self, q, k, bias):
        """float32 softmax((q * scale) k^T + bias): (B, heads, N, N).

        The one place the logits are formed, for explicit attention and
        for `attention_probabilities`. The softmax runs in float32 under
        any policy.
        """
        logits = ops.einsum(
            "bqhd,bkhd->bhqk", q * ops.cast(self.scale, q.dtype), k
        )
        if bias is not None:
            logits = logits + bias
        return ops.softmax(ops.cast(logits, "float32"))

    def _explicit_attention(self, q, k, v, bias, training):
        probs = ops.cast(self._probabilities(q, k, bias), q.dtype)
        probs = self.attn_drop(probs, training=training)
        return ops.einsum("bhqk,bkhd->bqhd", probs, v)

    def attention_probabilities(self, inputs, attention_bias=None):
        """The attention weights `call` applies to the values.

        softmax((q * scale) k^T + attention_bias) in float32, without
        attention dropout (inference): the matrix the fused kernel uses
        implicitly, computed explicitly. Costs one (B, heads, N, N) array.

        Args:
            inputs: (B, N, C) tokens, as for `call`.
            attention_bias: the same additive logits bias as `call`'s,
                broadcastable to (B, heads, N, N), or None.

        Returns:
            (B, heads, N, N) float32; row [b, h, i] is query i's
            distribution over the N keys (sums to 1).

        Example:
            >>> attn = Attention(dim=64, num_heads=4)
            >>> attn.attention_probabilities(
            ...     keras.ops.ones((2, 197, 64))).shape
            (2, 4, 197, 197)
        """
        if not self.built:
            self.build(inputs.shape)
        _, q, k, _ = self._project(inputs)
        bias = attention_bias
        if bias is not None:
            bias = ops.cast(bias, q.dtype)
        return self._probabilities(q, k, bias)

    def call(self, inputs, attention_bias=None, training=None):
        return self._attend(inputs, attention_bias, training=training)

    def compute_output_shape(self, inputs_shape, attention_bias_shape=None):
        return tuple(inputs_shape[:-1]) + (self.dim,)
