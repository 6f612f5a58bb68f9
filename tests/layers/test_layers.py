"""Every public layer: config round trip, symbolic shapes, fit, bfloat16."""

import keras
import numpy as np
import pytest
from helpers import max_abs_diff, to_numpy

from keras_swin import layers as L

# name -> (factory(**extra), input shape, extra kwargs that turn on drop path)
SPECS = {
    "PatchEmbed": (lambda **k: L.PatchEmbed(4, 16, **k), (2, 30, 26, 3), {}),
    "PatchEmbedViT": (
        lambda **k: L.PatchEmbed(
            8, 16, use_norm=False, pad_to_patch=False, **k
        ),
        (2, 32, 32, 3),
        {},
    ),
    "Attention": (lambda **k: L.Attention(16, 2, **k), (2, 10, 16), {}),
    "WindowAttention": (
        lambda **k: L.WindowAttention(16, 2, 4, **k),
        (6, 16, 16),
        {},
    ),
    "PatchMerging": (lambda **k: L.PatchMerging(8, **k), (2, 9, 6, 8), {}),
    "Mlp": (lambda **k: L.Mlp(32, 16, **k), (2, 5, 16), {}),
    "SwinBlock": (
        lambda **k: L.SwinBlock(16, 2, 4, 2, **k),
        (2, 9, 10, 16),
        {"drop_path_rate": 0.5},
    ),
    "SwinStage": (
        lambda **k: L.SwinStage(16, 2, 2, 4, **k),
        (2, 8, 8, 16),
        {"drop_path_rate": [0.3, 0.5]},
    ),
    "WindowAttentionV2": (
        lambda **k: L.WindowAttentionV2(
            16, 2, 4, pretrained_window_size=3, **k
        ),
        (6, 16, 16),
        {},
    ),
    "PatchMergingV2": (lambda **k: L.PatchMergingV2(8, **k), (2, 9, 6, 8), {}),
    "SwinBlockV2": (
        lambda **k: L.SwinBlockV2(16, 2, 4, 2, **k),
        (2, 9, 10, 16),
        {"drop_path_rate": 0.5},
    ),
    "SwinStageV2": (
        lambda **k: L.SwinStageV2(16, 2, 2, 4, **k),
        (2, 8, 8, 16),
        {"drop_path_rate": [0.3, 0.5]},
    ),
    "ViTEncoderBlock": (
        lambda **k: L.ViTEncoderBlock(16, 2, 32, **k),
        (2, 5, 16),
        {"drop_path_rate": 0.5},
    ),
    "ViTEncoder": (
        lambda **k: L.ViTEncoder(16, 2, 2, 32, **k),
        (2, 5, 16),
        {"drop_path_rate": 0.5},
    ),
    "DropPath": (lambda **k: L.DropPath(**k), (4, 3, 16), {"rate": 0.5}),
    "ClassToken": (lambda **k: L.ClassToken(**k), (2, 5, 16), {}),
    "PositionEmbedding": (lambda **k: L.PositionEmbedding(**k), (2, 5, 16), {}),
    "TokenPooling": (lambda **k: L.TokenPooling("avg", 1, **k), (2, 5, 16), {}),
}


def _inputs(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype("float32")


def _built(name, **extra):
    factory, shape, _ = SPECS[name]
    layer = factory(**extra)
    x = _inputs(shape)
    layer(x)
    # Random, non-trivial weights so that comparisons mean something.
    rng = np.random.default_rng(1)
    for w in layer.weights:
        w.assign(rng.standard_normal(w.shape).astype("float32") * 0.3)
    return layer, x, layer(x)


@pytest.mark.parametrize("name", sorted(SPECS))
def test_config_round_trip(name):
    layer, x, _ = _built(name)
    config = layer.get_config()
    clone = type(layer).from_config(config)
    assert clone.get_config() == config
    clone(x)
    clone.set_weights(layer.get_weights())
    assert max_abs_diff(clone(x), layer(x)) == 0.0
    # Serialization through the registered name, as in .keras files.
    revived = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(layer)
    )
    assert type(revived) is type(layer)
    assert revived.get_config() == config


@pytest.mark.parametrize("name", sorted(SPECS))
def test_symbolic_shape_matches_eager(name):
    factory, shape, _ = SPECS[name]
    layer = factory()
    eager = tuple(layer(_inputs(shape)).shape)
    symbolic = factory()(keras.Input(shape[1:], batch_size=shape[0]))
    assert tuple(symbolic.shape) == eager
    unbatched = factory()(keras.Input(shape[1:]))
    assert tuple(unbatched.shape) == (None,) + eager[1:]


@pytest.mark.parametrize(
    "name",
    [
        "PatchEmbed",
        "PatchMerging",
        "PatchMergingV2",
        "SwinBlock",
        "SwinBlockV2",
        "SwinStage",
        "SwinStageV2",
    ],
)
def test_dynamic_spatial_shapes_symbolic(name):
    factory, shape, _ = SPECS[name]
    out = factory()(keras.Input((None, None, shape[-1])))
    assert out.shape[1:3] == (None, None)


@pytest.mark.parametrize("name", sorted(SPECS))
def test_compiled_fit_step_with_drop_path(name):
    factory, shape, drop = SPECS[name]
    layer = factory(**drop)
    inputs = keras.Input(shape[1:])
    features = keras.layers.Flatten()(layer(inputs))
    outputs = keras.layers.Dense(1)(features)
    model = keras.Model(inputs, outputs)
    model.compile(
        optimizer=keras.optimizers.SGD(0.01), loss="mse", jit_compile="auto"
    )
    # 16 samples: every branch of every sample dropped (no gradient at
    # all) has probability 2^-32 at rate 0.5.
    x = _inputs((16,) + shape[1:])
    y = np.ones((16, 1), "float32")
    before = [to_numpy(w).copy() for w in layer.trainable_weights]
    history = model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    after = [to_numpy(w) for w in layer.trainable_weights]
    if before:
        assert any(
            not np.array_equal(a, b) for a, b in zip(before, after, strict=True)
        )
    if drop:
        # Drop path is live in training and off at inference. With 64
        # samples two identical keep masks have probability ~2^-64.
        many = _inputs((64,) + shape[1:])
        a = to_numpy(layer(many, training=True))
        b = to_numpy(layer(many, training=True))
        assert not np.array_equal(a, b)
        np.testing.assert_array_equal(
            to_numpy(layer(many)), to_numpy(layer(many))
        )


@pytest.mark.parametrize("name", sorted(SPECS))
def test_mixed_bfloat16(name):
    reference, x, y32 = _built(name)
    factory, _, _ = SPECS[name]
    layer = factory(dtype="mixed_bfloat16")
    layer(x)
    layer.set_weights(reference.get_weights())
    assert all(w.dtype == "float32" for w in layer.weights)
    y16 = layer(x)
    assert keras.backend.standardize_dtype(y16.dtype) == "bfloat16"
    scale = max(1.0, float(np.max(np.abs(to_numpy(y32)))))
    assert max_abs_diff(keras.ops.cast(y16, "float32"), y32) < 0.05 * scale


def test_mixed_bfloat16_global_policy_model_runs():
    keras.config.set_dtype_policy("mixed_bfloat16")
    layer = L.SwinStage(16, 2, 2, 4, drop_path_rate=0.2)
    out = layer(_inputs((2, 8, 8, 16)), training=True)
    assert keras.backend.standardize_dtype(out.dtype) == "bfloat16"
    assert np.isfinite(to_numpy(keras.ops.cast(out, "float32"))).all()


@pytest.mark.parametrize("dtype", ["mixed_bfloat16", "float32"])
def test_window_attention_training_path_matches_inference(dtype, monkeypatch):
    """A biased training call takes explicit attention exactly where the
    fused kernel's backward would be slow (PyTorch, CPU, 16-bit), and both
    paths compute the same attention."""
    layer = L.WindowAttention(16, 2, 4, dtype=dtype)
    x = _inputs((6, 16, 16))
    expected = to_numpy(keras.ops.cast(layer(x, training=False), "float32"))
    calls = []
    explicit = L.WindowAttention._explicit_attention

    def spy(self, *args, **kwargs):
        calls.append(1)
        return explicit(self, *args, **kwargs)

    monkeypatch.setattr(L.WindowAttention, "_explicit_attention", spy)
    trained = keras.ops.cast(layer(x, training=True), "float32")
    slow = keras.backend.backend() == "torch" and dtype == "mixed_bfloat16"
    assert len(calls) == int(slow)
    tol = 0.05 if dtype == "mixed_bfloat16" else 1e-5
    scale = max(1.0, float(np.max(np.abs(expected))))
    assert max_abs_diff(trained, expected) < tol * scale


@pytest.mark.parametrize("final_norm", [True, False])
def test_vit_block_configs_with_the_old_final_norm_still_load(final_norm):
    # Version 0.1.0 saved `final_norm` with every ViTEncoderBlock; the block
    # never used it, so either value loads as the same block.
    layer, x, y = _built("ViTEncoderBlock")
    config = {**layer.get_config(), "final_norm": final_norm}
    for revived in (
        L.ViTEncoderBlock.from_config(config),
        keras.saving.deserialize_keras_object(
            {**keras.saving.serialize_keras_object(layer), "config": config}
        ),
    ):
        assert "final_norm" not in revived.get_config()
        revived(x)
        revived.set_weights(layer.get_weights())
        assert max_abs_diff(revived(x), y) == 0.0
