"""Layer outputs against independent numpy formulas (no golden files)."""

import keras
import numpy as np
import pytest
from helpers import max_abs_diff, to_numpy
from keras import ops

from keras_swin import layers as L
from keras_swin.layers import windows


def _randomize(layer, seed=1, scale=0.3):
    rng = np.random.default_rng(seed)
    for w in layer.weights:
        w.assign(rng.standard_normal(w.shape).astype("float32") * scale)


def _layer_norm(x, gamma, beta, eps):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * gamma + beta


def _softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _window_attention_reference(x, layer, m, mask):
    """Official W-MSA in float64 numpy."""
    x = x.astype(np.float64)
    qkv_k, qkv_b, proj_k, proj_b = (
        to_numpy(w).astype(np.float64)
        for w in (
            layer.qkv.kernel,
            layer.qkv.bias,
            layer.proj.kernel,
            layer.proj.bias,
        )
    )
    table = to_numpy(layer.relative_position_bias_table).astype(np.float64)
    b_, n, c = x.shape
    h, d = layer.num_heads, c // layer.num_heads
    qkv = (x @ qkv_k + qkv_b).reshape(b_, n, 3, h, d).transpose(2, 0, 3, 1, 4)
    q, k, v = qkv[0] * d**-0.5, qkv[1], qkv[2]
    attn = q @ k.transpose(0, 1, 3, 2)
    index = windows.relative_position_index(m, layer.window_size)
    bias = table[index.reshape(-1)].reshape(n, n, h).transpose(2, 0, 1)
    attn = attn + bias[None]
    if mask is not None:
        nw = mask.shape[0]
        attn = attn.reshape(b_ // nw, nw, h, n, n) + mask[None, :, None]
        attn = attn.reshape(b_, h, n, n)
    out = (_softmax(attn) @ v).transpose(0, 2, 1, 3).reshape(b_, n, c)
    return out @ proj_k + proj_b


@pytest.mark.parametrize("m,table", [(4, 4), (2, 4)])
def test_window_attention_matches_numpy(rng, m, table):
    layer = L.WindowAttention(12, 3, table)
    mask = windows.shift_window_mask(2 * m, 2 * m, m, 1) if m > 1 else None
    x = rng.standard_normal((2 * 4, m * m, 12)).astype("float32")
    layer(x)
    _randomize(layer)
    out = layer(x, attention_mask=mask)
    ref = _window_attention_reference(x, layer, m, mask)
    assert max_abs_diff(out, ref) < 1e-5


def test_patch_merging_gather_order(rng):
    x = rng.standard_normal((2, 6, 4, 3)).astype("float32")
    layer = L.PatchMerging(3, layer_norm_epsilon=1e-5)
    layer(x)
    _randomize(layer)
    gamma, beta, kernel = (
        to_numpy(w)
        for w in (layer.norm.gamma, layer.norm.beta, layer.reduction.kernel)
    )
    x0, x1 = x[:, 0::2, 0::2], x[:, 1::2, 0::2]
    x2, x3 = x[:, 0::2, 1::2], x[:, 1::2, 1::2]
    merged = np.concatenate([x0, x1, x2, x3], -1)
    ref = _layer_norm(merged, gamma, beta, 1e-5) @ kernel
    assert max_abs_diff(layer(x), ref) < 1e-5


def test_patch_merging_pads_odd_sizes(rng):
    x = rng.standard_normal((1, 5, 3, 2)).astype("float32")
    layer = L.PatchMerging(2)
    layer(x)
    _randomize(layer)
    padded = np.pad(x, ((0, 0), (0, 1), (0, 1), (0, 0)))
    assert tuple(layer(x).shape) == (1, 3, 2, 4)
    assert max_abs_diff(layer(x), layer(padded)) == 0.0


def test_patch_embed_pads_and_truncates(rng):
    x = rng.standard_normal((1, 10, 7, 3)).astype("float32")
    pad = L.PatchEmbed(4, 8, use_norm=False)
    pad(x)
    _randomize(pad)
    padded = np.pad(x, ((0, 0), (0, 2), (0, 1), (0, 0)))
    assert tuple(pad(x).shape) == (1, 3, 2, 8)
    assert max_abs_diff(pad(x), pad(padded)) == 0.0
    kernel, bias = (to_numpy(w) for w in pad.proj.weights)
    patch = padded[0, 4:8, 0:4]  # patch (1, 0)
    ref = np.einsum("hwc,hwco->o", patch, kernel) + bias
    assert max_abs_diff(pad(x)[0, 1, 0], ref) < 1e-5
    valid = L.PatchEmbed(4, 8, use_norm=False, pad_to_patch=False)
    assert tuple(valid(x).shape) == (1, 2, 1, 8)


@pytest.mark.parametrize("size", [(9, 10), (4, 4), (3, 7), (16, 12)])
def test_swin_block_dynamic_path_equals_static(rng, size):
    block = L.SwinBlock(8, 2, 4, 2)
    x = rng.standard_normal((2,) + size + (8,)).astype("float32")
    block(x)
    _randomize(block)
    normed = block.norm1(x)
    # Int sizes take the static layout, tensor sizes the in-graph one.
    static = block._window_attention(normed, *size, training=False)
    height, width = (ops.convert_to_tensor(v, "int32") for v in size)
    dynamic = block._window_attention(normed, height, width, training=False)
    assert max_abs_diff(static, dynamic) < 1e-5


def test_swin_block_equals_explicit_official_steps(rng):
    """Pad, roll, partition, masked attention, reverse, roll back, crop."""
    block = L.SwinBlock(8, 2, 4, 2, layer_norm_epsilon=1e-5)
    x = rng.standard_normal((1, 6, 7, 8)).astype("float32")
    block(x)
    _randomize(block)
    normed = to_numpy(block.norm1(x))
    padded = np.pad(normed, ((0, 0), (0, 2), (0, 1), (0, 0)))
    rolled = np.roll(padded, (-2, -2), axis=(1, 2))
    parts = to_numpy(windows.window_partition(ops.convert_to_tensor(rolled), 4))
    attended = _window_attention_reference(
        parts, block.attn, 4, windows.shift_window_mask(8, 8, 4, 2)
    )
    merged = to_numpy(
        windows.window_reverse(
            ops.convert_to_tensor(attended.astype("float32")), 4, 8, 8
        )
    )
    y = np.roll(merged, (2, 2), axis=(1, 2))[:, :6, :7] + x
    ref = y + to_numpy(block.mlp(block.norm2(y)))
    assert max_abs_diff(block(x), ref) < 1e-5


def test_drop_path_statistics():
    layer = L.DropPath(0.25, seed=3)
    x = np.ones((4000, 2, 3), "float32")
    y = to_numpy(layer(x, training=True))
    per_sample = y.reshape(4000, -1)
    # Whole samples are kept (scaled by 1/0.75) or zeroed.
    kept = per_sample != 0
    np.testing.assert_allclose(per_sample[kept], 1 / 0.75, rtol=1e-6)
    assert (per_sample.min(1) == per_sample.max(1)).all()
    assert abs((per_sample[:, 0] == 0).mean() - 0.25) < 0.03
    assert abs(y.mean() - 1.0) < 0.05
    np.testing.assert_array_equal(to_numpy(layer(x)), x)
    with pytest.raises(ValueError, match="rate"):
        L.DropPath(1.0)


def test_drop_path_rates_are_linear():
    assert L.linear_drop_path_rates(0.2, 5) == pytest.approx(
        [0.0, 0.05, 0.1, 0.15, 0.2]
    )
    assert L.linear_drop_path_rates(0.3, 1) == [0.0]


def test_token_layers(rng):
    x = rng.standard_normal((2, 5, 4)).astype("float32")
    cls = L.ClassToken()
    y = to_numpy(cls(x))
    assert y.shape == (2, 6, 4)
    np.testing.assert_array_equal(y[:, 1:], x)
    np.testing.assert_array_equal(y[0, 0], to_numpy(cls.cls)[0, 0])
    pos = L.PositionEmbedding()
    assert max_abs_diff(pos(x), x + to_numpy(pos.embedding)) == 0.0
    np.testing.assert_array_equal(to_numpy(L.TokenPooling("token")(x)), x[:, 0])
    np.testing.assert_allclose(
        to_numpy(L.TokenPooling("avg", 1)(x)), x[:, 1:].mean(1), rtol=1e-6
    )
    np.testing.assert_array_equal(to_numpy(L.TokenPooling("max")(x)), x.max(1))


def test_bad_input_errors_name_the_problem():
    with pytest.raises(ValueError, match="divisible"):
        L.Attention(10, 3)
    with pytest.raises(ValueError, match="expects .* 8"):
        L.SwinBlock(8, 2, 4)(np.zeros((1, 4, 4, 6), "float32"))
    with pytest.raises(ValueError, match="shift_size"):
        L.SwinBlock(8, 2, 4, 4)
    with pytest.raises(ValueError, match="square windows"):
        L.WindowAttention(8, 2, 4)(np.zeros((2, 10, 8), "float32"))
    with pytest.raises(ValueError, match="exceed"):
        L.WindowAttention(8, 2, 2)(np.zeros((2, 16, 8), "float32"))
    with pytest.raises(ValueError, match="static input size"):
        L.PositionEmbedding()(keras.Input((None, 4)))
    with pytest.raises(ValueError, match="method"):
        L.TokenPooling("first")
    with pytest.raises(ValueError, match="drop_path_rate"):
        L.SwinStage(8, 2, 2, 4, drop_path_rate=[0.1])
