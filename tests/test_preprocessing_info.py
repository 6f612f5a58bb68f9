"""PreprocessingInfo, attach_preprocessing and model_preprocessing."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
from helpers import max_abs_diff, predict

import keras_swin.layers  # noqa: F401  registers the layers for load_model
from keras_swin.imagenet import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    attach_preprocessing,
    model_preprocessing,
)
from keras_swin.layers import PreprocessingInfo
from keras_swin.models import SwinTransformer, VisionTransformer
from keras_swin.weights.loading import checkpoint_notes, weights_source

SETTINGS = dict(
    mean=(0.5, 0.25, 0.125),
    std=(0.2, 0.3, 0.4),
    crop_pct=0.9,
    interpolation="bilinear",
)


def _swin(**kwargs):
    return SwinTransformer(
        input_shape=(32, 32, 3),
        patch_size=4,
        embed_dim=8,
        depths=(1, 1),
        num_heads=(1, 2),
        window_size=4,
        classes=3,
        **kwargs,
    )


def _vit():
    return VisionTransformer(
        input_shape=(32, 32, 3),
        patch_size=16,
        hidden_size=16,
        num_layers=1,
        num_heads=2,
        mlp_dim=32,
        classes=3,
    )


def _images(n=2, size=32):
    rng = np.random.default_rng(0)
    return rng.standard_normal((n, size, size, 3)).astype("float32")


# ------------------------------------------------------------ the layer
def test_layer_is_identity_and_round_trips():
    layer = PreprocessingInfo(**SETTINGS, class_names=["a", "b"])
    x = keras.ops.convert_to_tensor(_images())
    assert max_abs_diff(layer(x), x) == 0.0
    assert layer.weights == []
    config = layer.get_config()
    assert {k: config[k] for k in SETTINGS} == SETTINGS
    assert config["class_names"] == ["a", "b"]
    clone = PreprocessingInfo.from_config(json.loads(json.dumps(config)))
    assert clone.get_config() == config  # JSON lists back to tuples
    again = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(layer)
    )
    assert type(again) is PreprocessingInfo and again.mean == layer.mean
    symbolic = layer(keras.Input((None, None, 3)))
    assert tuple(symbolic.shape) == (None, None, None, 3)


def test_layer_does_not_cast_under_mixed_precision():
    keras.config.set_dtype_policy("mixed_bfloat16")
    layer = PreprocessingInfo(**SETTINGS)
    x = keras.ops.convert_to_tensor(np.float32([[1.0 + 2**-12]]))
    out = layer(x)
    assert keras.backend.standardize_dtype(out.dtype) == "float32"
    assert max_abs_diff(out, x) == 0.0


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(std=(0.2, 0.3)), "different lengths"),
        (dict(std=(0.2, 0.0, 0.4)), "non-zero"),
        (dict(mean="abc"), "sequence of numbers"),
        (dict(mean=(0.1, float("nan"), 0.2)), "finite"),
        (dict(crop_pct=0.0), r"crop_pct must be in \(0, 1\]"),
        (dict(crop_pct=True), "crop_pct"),
        (dict(interpolation="lanczos"), "'lanczos'"),
        (dict(class_names="abc"), "class_names"),
        (dict(class_names=["a", 3]), r"\(1, 3\)"),
    ],
)
def test_layer_refuses_bad_settings(change, message):
    with pytest.raises(ValueError, match=message):
        PreprocessingInfo(**{**SETTINGS, **change})


# ------------------------------------------------------- attach and read
@pytest.mark.parametrize("build", [_swin, _vit], ids=["swin", "vit"])
def test_attach_keeps_layers_weights_and_outputs(build, tmp_path):
    model = build()
    images = _images()
    reference = predict(model, images)
    names = ["cat", "dog", "emu"]
    attached = attach_preprocessing(model, **SETTINGS, class_names=names)
    layers = [layer.name for layer in attached.layers]
    assert layers[1] == "preprocessing_info"
    assert layers[:1] + layers[2:] == [layer.name for layer in model.layers]
    assert attached.name == model.name
    assert attached.input_shape == model.input_shape
    assert [w.path for w in attached.weights] == [w.path for w in model.weights]
    assert all(
        a is b for a, b in zip(attached.weights, model.weights, strict=True)
    )
    assert max_abs_diff(predict(attached, images), reference) == 0.0
    expected = {**SETTINGS, "class_names": names}
    assert model_preprocessing(attached) == expected
    assert model_preprocessing(model) is None

    path = tmp_path / "model.keras"
    attached.save(path)
    loaded = keras.saving.load_model(path)
    assert model_preprocessing(loaded) == expected
    assert [layer.name for layer in loaded.layers] == layers
    assert max_abs_diff(predict(loaded, images), reference) == 0.0


def test_attach_replaces_an_existing_record_and_keeps_compiled_model():
    model = _swin()
    model.compile(optimizer="adam", loss="mse")
    first = attach_preprocessing(model, **SETTINGS)
    second = attach_preprocessing(
        first,
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        crop_pct=1.0,
        interpolation="nearest",
    )
    infos = [x for x in second.layers if isinstance(x, PreprocessingInfo)]
    assert len(infos) == 1 and infos[0].crop_pct == 1.0
    assert infos[0].source is None and infos[0].notes == []
    assert model_preprocessing(second)["mean"] == IMAGENET_MEAN
    assert not second.compiled and model.compiled
    images = _images()
    assert max_abs_diff(predict(second, images), predict(model, images)) == 0


def test_attach_keeps_the_record_of_the_weights(tmp_path):
    """Re-attaching (e.g. after fine-tuning) keeps source and notes."""
    model = attach_preprocessing(_swin(), **SETTINGS)
    model.get_layer("preprocessing_info").record("t.pth", ["head replaced"])
    again = attach_preprocessing(model, **{**SETTINGS, "crop_pct": 1.0})
    assert checkpoint_notes(again) == ["head replaced"]
    assert weights_source(again) == "t.pth"
    again.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert checkpoint_notes(loaded) == ["head replaced"]
    assert model_preprocessing(loaded)["crop_pct"] == 1.0


@pytest.mark.parametrize(
    "source, notes, message",
    [(3, [], "source must be a string"), ("x", "a note", "list of strings")],
)
def test_record_refuses_bad_values(source, notes, message):
    info = PreprocessingInfo(**SETTINGS)
    with pytest.raises(ValueError, match=message):
        info.record(source, notes)


def test_attach_errors():
    model = _swin()
    with pytest.raises(ValueError, match="2 entries.*3 classes"):
        attach_preprocessing(model, **SETTINGS, class_names=["a", "b"])
    a, b = keras.Input((4,)), keras.Input((4,))
    two = keras.Model([a, b], keras.layers.Add()([a, b]))
    with pytest.raises(ValueError, match="one input.*has 2"):
        attach_preprocessing(two, **SETTINGS)

    class Sub(keras.Model):
        def call(self, x):
            return x

    with pytest.raises(TypeError, match="subclassed"):
        attach_preprocessing(Sub(), **SETTINGS)
