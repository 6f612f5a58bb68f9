"""predict and load_checkpoint on .keras files; --weights paths."""

from __future__ import annotations

import json
import shutil

import keras
import numpy as np
import pytest
from helpers import golden, predict
from PIL import Image

import keras_swin
from keras_swin import checkpoint_notes, load_checkpoint
from keras_swin.cli import main
from keras_swin.imagenet import IMAGENET_MEAN, IMAGENET_STD, model_preprocessing
from weights_tools.common import ConversionError
from weights_tools.convert import checkpoint_config, is_keras_model_file

VIT = golden("hf", "vit_tiny_h64_224")
SAMPLE = golden("sample.png")
LABELS = [f"LABEL_{i}" for i in range(10)]


@pytest.fixture(scope="module")
def vit_keras(tmp_path_factory):
    """The golden HF ViT converted by `keras-swin convert` to .keras."""
    out = tmp_path_factory.mktemp("convert") / "vit.keras"
    assert main(["convert", str(VIT), str(out)]) == 0
    return out


def _predict_lines(capsys, image, weights, top=3):
    capsys.readouterr()
    assert (
        main(
            [
                "predict",
                str(image),
                "--weights",
                str(weights),
                "--top",
                str(top),
            ]
        )
        == 0
    )
    return capsys.readouterr().out.splitlines()


def test_convert_to_keras_carries_preprocessing(vit_keras):
    assert is_keras_model_file(vit_keras)
    model = load_checkpoint(vit_keras)
    assert model_preprocessing(model) == dict(
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        crop_pct=0.875,
        interpolation="bicubic",
        class_names=LABELS,  # the config.json id2label
    )
    assert checkpoint_notes(model) == []
    assert keras_swin.weights_source(model) == str(VIT / "model.safetensors")


def test_load_checkpoint_records_preprocessing_and_notes(tmp_path):
    model = load_checkpoint(VIT, classes=3)  # a new head: one note
    settings = model_preprocessing(model)
    assert settings["mean"] == IMAGENET_MEAN and settings["class_names"] is None
    (note,) = checkpoint_notes(model)
    assert "10-class head" in note and "new 3-class head" in note
    model.save(tmp_path / "m.keras")
    again = keras.saving.load_model(tmp_path / "m.keras")
    assert checkpoint_notes(again) == [note]
    assert model_preprocessing(again) == settings


def test_load_checkpoint_keras_gives_the_checkpoints_outputs(vit_keras, rng):
    images = rng.standard_normal((2, 224, 224, 3)).astype("float32")
    reference = predict(load_checkpoint(VIT), images)
    model = load_checkpoint(vit_keras)
    np.testing.assert_array_equal(predict(model, images), reference)
    # arguments it already satisfies are accepted
    same = load_checkpoint(vit_keras, input_shape=(224, 224, 3), classes=10)
    np.testing.assert_array_equal(predict(same, images), reference)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (
            dict(input_shape=(64, 64, 3)),
            r"input_shape=\(64, 64, 3\) \(saved: \(224, 224, 3\)\)",
        ),
        (dict(classes=5), r"classes=5 \(saved: 10\)"),
        (dict(classes=0), r"classes=0 \(saved: 10\)"),
        (dict(classifier_activation="softmax"), r"'softmax' \(saved: linear\)"),
        (dict(format="hf_vit"), "format only apply to checkpoints"),
        (dict(window_size=7), "window_size only apply"),
    ],
)
def test_load_checkpoint_keras_refuses_changes(vit_keras, kwargs, message):
    with pytest.raises(ConversionError, match=message):
        load_checkpoint(vit_keras, **kwargs)


def test_keras_file_is_no_checkpoint_of_tensors(vit_keras, capsys):
    with pytest.raises(ConversionError, match=r"vit\.keras is a Keras model"):
        checkpoint_config(vit_keras)
    assert main(["info", str(vit_keras)]) == 1
    assert "is a Keras model file" in capsys.readouterr().err


def test_predict_keras_matches_the_checkpoint(vit_keras, capsys):
    from_keras = _predict_lines(capsys, SAMPLE, vit_keras)
    from_checkpoint = _predict_lines(capsys, SAMPLE, VIT)
    assert from_keras == from_checkpoint
    assert from_keras[0] == str(SAMPLE) and len(from_keras) == 4
    assert from_keras[1].split()[:2] == ["1.", "LABEL_8"]
    scores = [float(line.split()[2]) for line in from_keras[1:]]
    assert scores == sorted(scores, reverse=True) and 0 < sum(scores) <= 1


def test_predict_keras_trained_with_logits_and_own_names(tmp_path, capsys):
    """A .keras as `train` writes it: logits head, names, own settings."""
    from keras_swin.imagenet import attach_preprocessing, preprocess_input
    from keras_swin.models import VisionTransformer

    model = VisionTransformer(
        input_shape=(32, 32, 3),
        patch_size=16,
        hidden_size=16,
        num_layers=1,
        num_heads=2,
        mlp_dim=32,
        classes=3,
        classifier_activation=None,
    )
    head = model.get_layer("head")  # one that separates the classes
    rng = np.random.default_rng(1)
    head.set_weights([rng.standard_normal(w.shape) for w in head.weights])
    settings = dict(
        mean=(0.5, 0.5, 0.5),
        std=(0.25, 0.25, 0.25),
        crop_pct=1.0,
        interpolation="bilinear",
    )
    path = tmp_path / "trained.keras"
    attach_preprocessing(model, **settings, class_names=["a", "b", "c"]).save(
        path
    )
    image = tmp_path / "x.png"
    pixels = np.random.default_rng(0).integers(0, 256, (32, 32, 3), "uint8")
    Image.fromarray(pixels).save(image)
    lines = _predict_lines(capsys, image, path)
    logits = predict(
        model,
        keras.ops.convert_to_numpy(
            preprocess_input(pixels[None].astype("float32"), 0.5, 0.25)
        ),
    )[0]
    probs = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    order = np.argsort(-probs)
    assert [line.split()[1] for line in lines[1:]] == ["abc"[i] for i in order]
    printed = [float(line.split()[2]) for line in lines[1:]]
    np.testing.assert_allclose(printed, probs[order], atol=1e-4)


def test_predict_keras_without_preprocessing_is_refused(tmp_path, capsys):
    from keras_swin.models import VisionTransformer

    path = tmp_path / "plain.keras"
    # A graph built without weights records no preprocessing.
    VisionTransformer(
        input_shape=(32, 32, 3),
        patch_size=16,
        hidden_size=16,
        num_layers=1,
        num_heads=2,
        mlp_dim=32,
        classes=3,
    ).save(path)
    assert main(["predict", str(SAMPLE), "--weights", str(path)]) == 1
    err = capsys.readouterr().err
    assert "plain.keras carries no preprocessing settings" in err
    assert "attach_preprocessing" in err and len(err.splitlines()) == 1


@pytest.mark.parametrize(
    "weights",
    ["./missing.pth", "missing.safetensors", "runs/x/model.keras", "m.npz"],
)
def test_predict_missing_path_is_no_such_file(
    tmp_path, capsys, weights, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    assert main(["predict", str(SAMPLE), "--weights", weights]) == 1
    err = capsys.readouterr().err
    assert "No such checkpoint file or folder" in err and weights in err
    assert "Unknown pretrained weights" not in err


def test_predict_unknown_name_still_names_the_registry(capsys):
    assert main(["predict", str(SAMPLE), "--weights", "no_such_model"]) == 1
    err = capsys.readouterr().err
    assert "Unknown pretrained weights 'no_such_model'" in err


def _bad_labels_folder(tmp_path):
    folder = tmp_path / "vit"
    shutil.copytree(VIT, folder)
    config = json.loads((folder / "config.json").read_text())
    labels = {str(i): f"L{i}" for i in range(9)}
    labels["nine"] = "L9"
    config["id2label"] = labels
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def test_bad_id2label_keys_are_named(tmp_path, capsys):
    folder = _bad_labels_folder(tmp_path)
    assert main(["predict", str(SAMPLE), "--weights", str(folder)]) == 1
    err = capsys.readouterr().err
    assert "config.json id2label keys must be exactly" in err
    assert "unexpected keys: ['nine'], missing: ['9']" in err
    assert "Traceback" not in err and len(err.splitlines()) == 1
    out = tmp_path / "out.keras"
    assert main(["convert", str(folder), str(out)]) == 1
    assert "unexpected keys: ['nine']" in capsys.readouterr().err
    assert not out.exists()


def test_predict_16bit_png_matches_its_8bit_image(vit_keras, tmp_path, capsys):
    ramp = np.tile(np.arange(256, dtype=np.uint16) * 257, (256, 1))
    deep = tmp_path / "deep.png"
    Image.fromarray(ramp).save(deep)  # 16-bit grayscale, mode I;16
    flat = tmp_path / "flat.png"
    Image.fromarray((ramp // 257).astype(np.uint8)).save(flat)
    from_deep = _predict_lines(capsys, deep, vit_keras, top=10)
    from_flat = _predict_lines(capsys, flat, vit_keras, top=10)
    assert from_deep[1:] == from_flat[1:]
    white = tmp_path / "white.png"
    Image.new("L", (256, 256), 255).save(white)
    assert _predict_lines(capsys, white, vit_keras, top=10)[1:] != from_deep[1:]
