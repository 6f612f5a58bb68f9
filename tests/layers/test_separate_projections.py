"""`layers.attention.separate_projections`: the exporters' attention
layout computes what `call` computes, on every backend."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from helpers import assert_parity, to_numpy

from keras_swin.layers import Attention, WindowAttention
from keras_swin.layers.attention import separate_projections


def _numpy_attention(layer, x, bias):
    """Multi-head attention in numpy from the layer's own weights."""
    kernel, offset = (to_numpy(w) for w in (layer.qkv.kernel, layer.qkv.bias))
    batch, tokens, width = x.shape
    qkv = (x @ kernel + offset).reshape(
        batch, tokens, 3, layer.num_heads, layer.head_dim
    )
    q, k, v = (np.moveaxis(qkv[:, :, i], 2, 1) for i in range(3))
    logits = (q * layer.scale) @ np.swapaxes(k, -1, -2) + bias
    probs = np.exp(logits - logits.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    out = np.moveaxis(probs @ v, 1, 2).reshape(batch, tokens, width)
    proj_kernel, proj_bias = (to_numpy(w) for w in layer.proj.weights)
    return out @ proj_kernel + proj_bias


@pytest.mark.parametrize("windowed", [False, True])
def test_separate_projections_compute_the_same_attention(windowed):
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    if windowed:
        layer = WindowAttention(dim=32, num_heads=4, window_size=4)
        x = rng.standard_normal((6, 16, 32)).astype("float32")
        # Two windows' shift masks, tiled over a batch of 3.
        mask = np.where(rng.random((2, 16, 16)) < 0.3, -100.0, 0.0)
        mask = mask.astype("float32")
        layer(x, attention_mask=mask)
        table = rng.standard_normal(
            tuple(layer.relative_position_bias_table.shape)
        )
        layer.relative_position_bias_table.assign(table.astype("float32"))
        relative = to_numpy(layer.relative_position_bias(4))
        bias = relative[None] + np.tile(mask[:, None], (3, 1, 1, 1))
        call = {"attention_mask": mask}
    else:
        layer = Attention(dim=32, num_heads=4)
        x = rng.standard_normal((2, 10, 32)).astype("float32")
        layer(x)
        bias = 0.0
        call = {}
    # Non-zero biases, so the bias slices are checked as well.
    layer.qkv.bias.assign(rng.standard_normal(96).astype("float32") * 0.1)
    expected = _numpy_attention(layer, x, bias)
    plain = to_numpy(layer(x, **call))
    with separate_projections():
        separate = to_numpy(layer(x, **call))
        # Training calls keep the fused layout (dropout, gradients).
        trained = to_numpy(layer(x, training=True, **call))
    assert_parity(plain, expected, tol=1e-5, what="call")
    assert_parity(separate, expected, tol=1e-5, what="separate projections")
    assert_parity(trained, plain, tol=1e-6, what="training call")
