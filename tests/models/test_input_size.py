"""A model built for a static image size refuses every other size.

Before: Keras' own input check is skipped by JAX's `predict` (a stateless
call) and by TensorFlow's retraced `predict` (relaxed, unknown sizes), so a
64x64 Swin ran on 65x65 or 128x128 images with the stage windows chosen
for 64x64 and returned wrong logits; a ViT at 40x40 (same 2x2 patch grid
as 32x32 once the remainder is dropped) ran silently too.
"""

import keras
import numpy as np
import pytest
from helpers import BACKEND, max_abs_diff, predict

import keras_swin as ks
from keras_swin.layers import PatchEmbed

TINY = dict(
    embed_dim=8,
    depths=(1, 1, 1, 1),
    num_heads=(1, 1, 2, 2),
    window_size=4,
    classes=3,
)
VIT = dict(patch_size=16, hidden_size=16, num_layers=1, num_heads=2, mlp_dim=16)


def _images(size, batch=2, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((batch, size, size, 3)).astype("float32")


def _message(built, given):
    return (
        rf"built for {built}x{built} images and got {given}x{given} ones.*"
        r"input_shape=\(None, None, 3\) gives a model that takes any "
        rf"size; or input_shape=\({given}, {given}, 3\).*"
        rf"load_checkpoint\(original_checkpoint, "
        rf"input_shape=\({given}, {given}, 3\)\)"
    )


@pytest.mark.parametrize("size", [65, 128])
def test_static_swin_refuses_other_sizes_in_call_and_predict(size):
    model = ks.SwinTransformer(**TINY, input_shape=(64, 64, 3))
    with pytest.raises(ValueError, match=_message(64, size)):
        model(_images(size))
    # A fresh model: on JAX a failed predict leaves Keras' purged variables
    # behind (a Keras limitation), so each predict gets its own model.
    fresh = ks.SwinTransformer(**TINY, input_shape=(64, 64, 3))
    with pytest.raises(ValueError, match=_message(64, size)):
        fresh.predict(_images(size), verbose=0)


def test_static_swin_refuses_after_a_first_predict():
    # The reported path: predict at the built size, then at another one.
    # JAX and PyTorch see the new shape when tracing (ValueError); a
    # TensorFlow predict retraces with unknown sizes and the check runs in
    # the graph (InvalidArgumentError naming both shapes).
    model = ks.SwinTransformer(**TINY, input_shape=(64, 64, 3))
    assert predict(model, _images(64)).shape == (2, 3)
    if BACKEND == "tensorflow":
        import tensorflow as tf

        errors = (ValueError, tf.errors.InvalidArgumentError)
        match = r"65.*64|64.*65"
    else:
        errors, match = ValueError, _message(64, 65)
    with pytest.raises(errors, match=match):
        model.predict(_images(65), verbose=0)


@pytest.mark.skipif(
    BACKEND != "tensorflow",
    reason="unknown sizes at trace time exist on TensorFlow only",
)
def test_static_swin_refuses_in_a_graph_with_unknown_size():
    import tensorflow as tf

    model = ks.SwinTransformer(**TINY, input_shape=(64, 64, 3))
    graph = tf.function(
        lambda x: model.get_layer("patch_embed")(x),
        input_signature=[tf.TensorSpec((None, None, None, 3), tf.float32)],
    )
    assert tuple(graph(_images(64)).shape) == (2, 16, 16, 8)
    with pytest.raises(tf.errors.InvalidArgumentError, match="64x64"):
        graph(_images(65))


@pytest.mark.parametrize("size", [40, 48])
def test_static_vit_refuses_other_sizes(size):
    # 40: the 2x2 patch grid of 32 once the remainder is dropped; 48: 3x3.
    model = ks.VisionTransformer(**VIT, input_shape=(32, 32, 3), classes=3)
    with pytest.raises(ValueError, match=_message(32, size)):
        model(_images(size))
    fresh = ks.VisionTransformer(**VIT, input_shape=(32, 32, 3), classes=3)
    with pytest.raises(ValueError, match=_message(32, size)):
        fresh.predict(_images(size), verbose=0)


def test_any_size_swin_still_runs_at_65_and_matches_a_65_model():
    # Three stages: at 65 px the maps are 17, 9, 5, all above the window,
    # so the static model's tables have the any-size model's shapes.
    arch = dict(TINY, depths=(2, 2, 2), num_heads=(1, 1, 2))
    dynamic = ks.SwinTransformer(**arch, input_shape=(None, None, 3))
    static = ks.SwinTransformer(**arch, input_shape=(65, 65, 3))
    assert dynamic.get_layer("patch_embed").input_size is None
    static.set_weights(dynamic.get_weights())
    x = _images(65)
    out = predict(dynamic, x)
    assert out.shape == (2, 3)
    assert max_abs_diff(out, predict(static, x)) < 1e-5
    assert predict(dynamic, _images(128)).shape == (2, 3)


def test_static_model_still_runs_at_its_size():
    model = ks.SwinTransformer(**TINY, input_shape=(64, 64, 3))
    assert model.get_layer("patch_embed").input_size == (64, 64)
    out = predict(model, _images(64))
    assert out.shape == (2, 3) and np.isfinite(out).all()


def test_saved_static_model_keeps_the_check(tmp_path):
    model = ks.SwinTransformer(**TINY, input_shape=(64, 64, 3))
    path = tmp_path / "static.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.get_layer("patch_embed").input_size == (64, 64)
    # Keras' own input check speaks first where it runs (PyTorch and
    # TensorFlow predict); JAX's predict skips it and gets patch_embed's.
    with pytest.raises(ValueError, match=r"64.*64.*65.*65"):
        loaded.predict(_images(65), verbose=0)


def test_patch_embed_input_size_argument():
    embed = PatchEmbed(4, 8, input_size=(8, 12))
    with pytest.raises(ValueError, match="built for 8x12 images and got 8x8"):
        embed(np.zeros((1, 8, 8, 3), "float32"))
    layer = PatchEmbed(4, 8, input_size=(8, None))
    x = np.zeros((1, 8, 20, 3), "float32")
    assert tuple(layer(x).shape) == (1, 2, 5, 8)
    with pytest.raises(ValueError, match="built for 8xany images"):
        layer(np.zeros((1, 9, 20, 3), "float32"))
    config = layer.get_config()
    assert config["input_size"] == (8, None)
    assert PatchEmbed.from_config(config).input_size == (8, None)
    with pytest.raises(ValueError, match="input_size must be None or"):
        PatchEmbed(4, 8, input_size=(0, 8))
    # Without input_size the layer takes any size (the default).
    free = PatchEmbed(4, 8)
    assert tuple(free(np.zeros((1, 8, 8, 3), "float32")).shape) == (1, 2, 2, 8)
    assert tuple(free(np.zeros((1, 9, 9, 3), "float32")).shape) == (1, 3, 3, 8)
