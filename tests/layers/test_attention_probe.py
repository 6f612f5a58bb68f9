"""`attention_probabilities` of the attention layers and `AttentionProbe`.

The probabilities must be the weights `call` applies: probabilities @ v
through `proj` gives the layer's output. The probe must work in a
functional graph for static and unknown sizes, and TensorFlow's in-graph
layout (unknown H, W) must give what the static one gives.
"""

import keras
import numpy as np
import pytest
from helpers import BACKEND, assert_parity, to_numpy

from keras_swin.layers import Attention, AttentionProbe, SwinStage


def test_probabilities_are_the_weights_call_applies():
    attn = Attention(8, 2)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 5, 8)).astype("float32")
    bias = rng.standard_normal((1, 2, 5, 5)).astype("float32")
    out = to_numpy(attn(x, attention_bias=bias))
    probs = to_numpy(attn.attention_probabilities(x, attention_bias=bias))
    assert probs.shape == (2, 2, 5, 5) and probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-6)
    # Values from the layer's own qkv kernel, (3, heads, head_dim) outer.
    kernel, qkv_bias = (np.asarray(w) for w in attn.qkv.get_weights())
    v = (x @ kernel + qkv_bias).reshape(2, 5, 3, 2, 4)[:, :, 2]
    mixed = np.einsum("bhqk,bkhd->bqhd", probs, v).reshape(2, 5, 8)
    proj_kernel, proj_bias = (np.asarray(w) for w in attn.proj.get_weights())
    assert_parity(mixed @ proj_kernel + proj_bias, out, what="output")


@pytest.fixture(scope="module")
def stage():
    stage = SwinStage(dim=8, depth=2, num_heads=2, window_size=4)
    stage.build((None, None, None, 8))
    return stage


def test_probe_in_a_graph_of_any_size(stage):
    # 6 x 5: padded to 8 x 8, four windows; the odd block shifted by 2.
    # The values themselves are checked against Hugging Face and numpy in
    # tests/analysis/test_attention_outputs.py; here the graph of unknown
    # size must give what the graph of the static size gives.
    x = np.random.default_rng(1).standard_normal((2, 6, 5, 8))
    x = x.astype("float32")
    results = []
    for shape in [(6, 5, 8), (None, None, 8)]:
        inputs = keras.Input(shape)
        outputs = AttentionProbe(stage)(inputs)
        assert isinstance(outputs, list) and len(outputs) == 2
        if shape[0] is not None:
            assert tuple(outputs[1].shape) == (None, 4, 2, 16, 16)
        else:
            # The number of windows, and a clamped window, vary.
            assert tuple(outputs[1].shape)[1:3] == (None, 2)
        got = keras.Model(inputs, outputs).predict(x, verbose=0)
        assert [p.shape for p in got] == [(2, 4, 2, 16, 16)] * 2
        np.testing.assert_allclose(got[1].sum(-1), 1.0, atol=1e-5)
        results.append(got)
    for a, b in zip(*results, strict=True):
        assert_parity(a, b, tol=1e-6, what="any size vs static")


@pytest.mark.skipif(
    BACKEND != "tensorflow", reason="only TensorFlow traces unknown sizes"
)
def test_tensorflow_graph_of_unknown_size(stage):
    import tensorflow as tf

    # The in-graph layout and masks (no static H, W in the trace).
    x = np.random.default_rng(2).standard_normal((1, 7, 9, 8))
    x = x.astype("float32")
    traced = tf.function(
        stage.attention_probabilities,
        input_signature=[tf.TensorSpec((None, None, None, 8))],
    )
    for a, b in zip(traced(x), stage.attention_probabilities(x), strict=True):
        assert_parity(a, b, tol=1e-6, what="unknown size")


def test_probe_refuses_other_layers_and_does_not_serialise(stage):
    with pytest.raises(ValueError, match="attention_probabilities"):
        AttentionProbe(keras.layers.Dense(2))
    with pytest.raises(NotImplementedError, match="does not serialise"):
        AttentionProbe(stage).get_config()
