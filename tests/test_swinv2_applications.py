"""Swin V2 applications: `SwinTransformerV2(weights=...)`, the variants,
the registered releases and loading at another window.

No test touches the network: a test-only release points at the official
golden checkpoint (`swinv2_official/v2_e24_w8_256`, embed 24, window 8,
256 px, 10 classes) through a `file://` URL, and KERAS_HOME at a
temporary folder.
"""

import dataclasses

import keras
import numpy as np
import pytest
from helpers import golden, predict, to_numpy

import keras_swin
import keras_swin.weights.families
from keras_swin import (
    SwinTransformerV2,
    checkpoint_notes,
    load_checkpoint,
)
from keras_swin.imagenet import model_preprocessing
from keras_swin.models.swin_v2 import SWINV2_CONFIGS
from keras_swin.weights import pretrained
from keras_swin.weights.families import FAMILIES
from keras_swin.weights.loading import weights_source

CASE = golden("swinv2_official", "v2_e24_w8_256")
CHECKPOINT = CASE / "checkpoint.pth"
ARCH = dict(embed_dim=24, depths=(2, 2, 2, 2), num_heads=(1, 2, 3, 6))
NAME = "swinv2_golden_patch4_window8_256.golden"
FINETUNE = "swinv2_golden_patch4_window8to16_256to256.golden"


def _weights(model) -> dict:
    return {v.path: to_numpy(v) for v in model.weights}


def _pretrained_windows(model) -> tuple:
    return tuple(
        model.get_layer(f"layers_{i}").get_config()["pretrained_window_size"]
        for i in range(4)
    )


def test_exports_and_listing():
    for name in ("SwinV2Tiny", "SwinV2Small", "SwinV2Base", "SwinV2Large"):
        assert callable(getattr(keras_swin, name))
        assert name in keras_swin.__all__
    assert keras_swin.SWINV2_CONFIGS is SWINV2_CONFIGS
    names = keras_swin.available_weights("swin_v2")
    assert len(names) == 12
    assert "swinv2_tiny_patch4_window8_256.ms_in1k" in names
    assert "swinv2_base_patch4_window12to24_192to384.ms_in22k_ft_in1k" in names
    assert set(names) <= set(keras_swin.available_weights())


def test_variant_defaults_to_256_px_window_8():
    with keras.StatelessScope(initialize_variables=False):
        model = keras_swin.SwinV2Tiny()
        assert model.input_shape == (None, 256, 256, 3)
        stage = model.get_layer("layers_0").get_config()
        assert stage["window_size"] == 8
        assert model.output_shape == (None, 1000)
    keras.backend.clear_session(free_memory=False)


def test_window_8_checkpoint_in_a_window_16_model():
    """No V2 weight depends on the window: nothing is resampled."""
    x = np.load(CASE / "inputs_nhwc.npy")
    own = load_checkpoint(CHECKPOINT, classifier_activation=None)
    wider = load_checkpoint(
        CHECKPOINT,
        window_size=16,
        pretrained_window_sizes=8,
        classifier_activation=None,
    )
    assert checkpoint_notes(wider) == []
    assert wider.get_layer("layers_0").get_config()["window_size"] == 16
    assert _pretrained_windows(wider) == (8, 8, 8, 8)
    mine, theirs = _weights(own), _weights(wider)
    assert mine.keys() == theirs.keys()
    for path, array in mine.items():
        np.testing.assert_array_equal(theirs[path], array, err_msg=path)
    logits = predict(wider, x)
    assert logits.shape == (len(x), 10) and np.isfinite(logits).all()
    # Another window changes the attention: not the same function.
    assert not np.allclose(logits, predict(own, x), atol=1e-3)
    # Any size too, without complaint.
    any_size = load_checkpoint(
        CHECKPOINT,
        input_shape=(None, None, 3),
        window_size=16,
        pretrained_window_sizes=8,
        classifier_activation=None,
    )
    np.testing.assert_allclose(predict(any_size, x), logits, rtol=0, atol=1e-5)


@pytest.fixture
def registry(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    base = pretrained.PRETRAINED["swinv2_tiny_patch4_window8_256.ms_in1k"]
    spec = dataclasses.replace(
        base,
        name=NAME,
        url=CHECKPOINT.as_uri(),
        classes=10,
        variant="swinv2_golden",
    )
    finetune = dataclasses.replace(
        spec,
        name=FINETUNE,
        window_size=16,
        pretrained_window_sizes=(8, 8, 8, 4),
    )
    entries = dict(pretrained.PRETRAINED, **{NAME: spec, FINETUNE: finetune})
    monkeypatch.setattr(pretrained, "PRETRAINED", entries)
    configs = dict(SWINV2_CONFIGS, swinv2_golden=dict(ARCH))
    family = dataclasses.replace(FAMILIES["swin_v2"], configs=configs)
    monkeypatch.setitem(keras_swin.weights.families.FAMILIES, "swin_v2", family)
    tags = dict(pretrained.DEFAULT_TAGS)
    tags["swinv2_golden_patch4_window8_256"] = {"imagenet": NAME}
    monkeypatch.setattr(pretrained, "DEFAULT_TAGS", tags)
    return spec


def test_weights_by_name_and_alias(registry):
    x = np.load(CASE / "inputs_nhwc.npy")
    reference = predict(
        load_checkpoint(CHECKPOINT, classifier_activation=None), x
    )
    kwargs = dict(ARCH, classes=10, classifier_activation=None)
    model = SwinTransformerV2(weights=NAME, **kwargs)
    assert weights_source(model) == NAME
    assert checkpoint_notes(model) == []
    assert model_preprocessing(model)["crop_pct"] == 0.875
    np.testing.assert_array_equal(predict(model, x), reference)
    # "imagenet" at the builder's default size (256) and window (8).
    alias = SwinTransformerV2(weights="imagenet", **kwargs)
    assert weights_source(alias) == NAME
    np.testing.assert_array_equal(predict(alias, x), reference)


def test_build_pretrained_sets_the_release_windows(registry):
    own = keras_swin.build_pretrained(NAME)
    assert own.input_shape == (None, 256, 256, 3)
    assert _pretrained_windows(own) == (0, 0, 0, 0)
    tuned = keras_swin.build_pretrained(FINETUNE)
    assert tuned.get_layer("layers_0").get_config()["window_size"] == 16
    assert _pretrained_windows(tuned) == (8, 8, 8, 4)
    mine, theirs = _weights(own), _weights(tuned)
    for path, array in mine.items():
        np.testing.assert_array_equal(theirs[path], array, err_msg=path)


def test_real_releases_resolve():
    spec = pretrained.resolve_weights(
        "imagenet",
        family="swin_v2",
        variant="swinv2_small",
        image_size=256,
        window_size=16,
    )
    assert spec.name == "swinv2_small_patch4_window16_256.ms_in1k"
    spec = pretrained.resolve_weights(
        "imagenet22k",
        family="swin_v2",
        variant="swinv2_large",
        image_size=192,
        window_size=12,
    )
    assert spec.classes == 21841 and spec.format == "official_swinv2"
    with pytest.raises(ValueError, match="are swin_v2 weights"):
        pretrained.resolve_weights(
            "swinv2_tiny_patch4_window8_256.ms_in1k",
            family="swin",
            variant="swin_tiny",
            image_size=224,
        )
