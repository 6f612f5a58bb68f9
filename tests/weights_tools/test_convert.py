"""load_checkpoint: architecture inference, strictness, heads, formats."""

import json
import warnings

import keras
import numpy as np
import pytest
from helpers import assert_parity, golden, predict, to_numpy

from keras_swin import checkpoint_notes, load_checkpoint
from keras_swin.weights.loading import load_into
from weights_tools.common import ConversionError
from weights_tools.convert import (
    HeadWarning,
    checkpoint_config,
    convert_checkpoint,
)
from weights_tools.formats import detect_format
from weights_tools.readers import CheckpointError, read_npz, read_pth

SWIN_PTH = golden("swin_official", "tiny_w4_64", "checkpoint.pth")
VIT_NPZ = golden("vit_official", "tiny_repr_32", "checkpoint.npz")


def _save_pth(path, state):
    torch = pytest.importorskip("torch")
    torch.save(
        {
            "model": {
                k: torch.from_numpy(np.ascontiguousarray(v))
                for k, v in state.items()
            }
        },
        path,
    )
    return path


def _swin_inputs(case="tiny_w4_64"):
    return np.load(golden("swin_official", case, "inputs_nhwc.npy"))


@pytest.mark.parametrize("case", ["tiny_w7_224", "tiny_w4_64"])
def test_swin_architecture_is_read_from_tensors(case):
    config = checkpoint_config(golden("swin_official", case, "checkpoint.pth"))
    official = json.loads(
        golden("swin_official", case, "config.json").read_text()
    )["constructor_kwargs"]
    assert config["family"] == "swin"
    assert config["format"] == "official_swin"
    assert config["embed_dim"] == official["embed_dim"]
    assert list(config["depths"]) == official["depths"]
    assert list(config["num_heads"]) == official["num_heads"]
    assert config["window_size"] == official["window_size"]
    assert config["patch_size"] == official["patch_size"]
    assert config["mlp_ratio"] == official["mlp_ratio"]
    assert config["classes"] == official["num_classes"]
    assert config["absolute_position_embedding"] is official["ape"]
    size = official["img_size"]
    assert config["input_shape"] == (size, size, 3)


@pytest.mark.parametrize("case", ["tiny_token_224", "tiny_repr_32"])
def test_vit_architecture_is_read_from_tensors(case):
    config = checkpoint_config(golden("vit_official", case, "checkpoint.npz"))
    official = json.loads(
        golden("vit_official", case, "config.json").read_text()
    )
    model = official["model_config"]
    assert config["family"] == "vit"
    assert config["patch_size"] == model["patches"]["size"][0]
    assert config["hidden_size"] == model["hidden_size"]
    assert config["num_layers"] == model["transformer"]["num_layers"]
    assert config["num_heads"] == model["transformer"]["num_heads"]
    assert config["mlp_dim"] == model["transformer"]["mlp_dim"]
    assert config["classifier"] == model["classifier"]
    assert config["representation_size"] == model["representation_size"]
    assert config["classes"] == official["num_classes"]
    size = official["image_size"]
    assert config["input_shape"] == (size, size, 3)
    assert config["gelu_approximate"] is True
    assert config["layer_norm_epsilon"] == 1e-6


def test_unused_checkpoint_entry_is_an_error(tmp_path):
    state = read_pth(SWIN_PTH)
    state["layers.0.blocks.0.attn.extra.weight"] = np.zeros((3,), "float32")
    path = _save_pth(tmp_path / "extra.pth", state)
    with pytest.raises(ConversionError) as info:
        load_checkpoint(path)
    message = str(info.value)
    assert "does not use" in message
    assert "layers.0.blocks.0.attn.extra.weight [3]" in message


def test_unset_model_weight_is_an_error(tmp_path):
    state = read_pth(SWIN_PTH)
    del state["layers.1.blocks.0.mlp.fc1.bias"]
    path = _save_pth(tmp_path / "missing.pth", state)
    with pytest.raises(
        ConversionError,
        match=r"does not set:\n  "
        r"layers_1/blocks_0/mlp/fc1/bias \[128\]",
    ):
        load_checkpoint(path)


def test_shape_mismatch_lists_both_shapes_and_assigns_nothing():
    import keras_swin as ks

    config = checkpoint_config(SWIN_PTH)
    for key in ("family", "format", "classes"):
        config.pop(key)
    model = ks.SwinTransformer(**config, classes=3)
    before = [to_numpy(w).copy() for w in model.weights]
    with pytest.raises(ConversionError) as info:
        # fit=False: the exact load of `weights=<checkpoint>`.
        load_into(model, convert_checkpoint(SWIN_PTH), config, fit=False)
    assert (
        "head.weight [5, 128] -> head/kernel [128, 5], the model "
        "expects [128, 3]"
    ) in str(info.value)
    for old, new in zip(before, model.weights, strict=True):
        np.testing.assert_array_equal(old, to_numpy(new))


def test_headless_checkpoint_outputs_pooled_features(tmp_path):
    state = {
        k: v for k, v in read_pth(SWIN_PTH).items() if not k.startswith("head.")
    }
    path = _save_pth(tmp_path / "headless.pth", state)
    assert checkpoint_config(path)["classes"] == 0
    model = load_checkpoint(path)
    out = predict(model, _swin_inputs())
    assert out.shape == (2, 128)
    assert_parity(
        out, np.load(golden("swin_official", "tiny_w4_64", "features.npy"))
    )
    with pytest.warns(UserWarning, match="no classifier head.*4-class"):
        with_head = load_checkpoint(path, classes=4)
    np.testing.assert_array_equal(
        predict(with_head, _swin_inputs()), np.zeros((2, 4), "float32")
    )
    with pytest.raises(ValueError, match="classes=0"):
        load_checkpoint(path, include_top=False)


def test_other_classes_replace_the_head_with_a_warning():
    with pytest.warns(
        UserWarning,
        match=r"5-class head \(head.weight, "
        r"head.bias\) is not loaded.*3-class head",
    ):
        model = load_checkpoint(SWIN_PTH, classes=3)
    out = predict(model, _swin_inputs())
    np.testing.assert_array_equal(out, np.zeros((2, 3), "float32"))
    with warnings.catch_warnings():
        # classes=0 asks for no head: a note, not a warning.
        warnings.simplefilter("error")
        headless = load_checkpoint(VIT_NPZ, classes=0)
    assert headless.output_shape == (None, 48)
    assert any("pooled features" in n for n in checkpoint_notes(headless))


def test_head_warning_is_issued_once_per_load():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        load_checkpoint(SWIN_PTH, classes=3)
    heads = [w for w in caught if issubclass(w.category, HeadWarning)]
    assert len(heads) == 1 and "3-class head" in str(heads[0].message)


def test_activation_and_overrides_are_applied():
    model = load_checkpoint(
        SWIN_PTH, classifier_activation="softmax", drop_path_rate=0.3
    )
    probs = predict(model, _swin_inputs())
    np.testing.assert_allclose(probs.sum(-1), 1.0, rtol=1e-5)
    blocks = model.get_layer("layers_3").blocks
    assert blocks[-1].drop_path_rate == pytest.approx(0.3)


def test_swin_checkpoint_into_any_size_model():
    model = load_checkpoint(
        golden("swin_official", "tiny_w7_224", "checkpoint.pth"),
        input_shape=(None, None, 3),
    )
    assert model.input_shape == (None, None, None, 3)
    x = _swin_inputs("tiny_w7_224")
    assert_parity(
        predict(model, x),
        np.load(golden("swin_official", "tiny_w7_224", "logits.npy")),
    )


def test_linen_child_names_load_identically(tmp_path):
    renames = {
        "LayerNorm_2": "LayerNorm_1",
        "MultiHeadDotProductAttention_1": "MultiHeadDotProductAttention_0",
        "MlpBlock_3": "MlpBlock_0",
    }
    state = {}
    for key, value in read_npz(VIT_NPZ).items():
        for old, new in renames.items():
            key = key.replace(f"/{old}/", f"/{new}/")
        state[key] = value
    np.savez(tmp_path / "linen.npz", **state)
    x = np.load(golden("vit_official", "tiny_repr_32", "inputs_nhwc.npy"))
    out = predict(load_checkpoint(tmp_path / "linen.npz"), x)
    assert_parity(
        out, np.load(golden("vit_official", "tiny_repr_32", "logits.npy"))
    )


def test_vit_at_another_size_resamples_the_position_embedding():
    model = load_checkpoint(VIT_NPZ, input_shape=(48, 48, 3))
    assert checkpoint_notes(model) == [
        "Transformer/posembed_input/pos_embedding: resampled [1, 17, 48] "
        "-> [1, 37, 48] (zoom)"
    ]
    # A width the checkpoint does not have cannot be resampled: strict.
    with pytest.raises(ConversionError, match="shape mismatches"):
        load_checkpoint(VIT_NPZ, mlp_dim=64)


def test_image_size_from_absolute_position_embedding(tmp_path):
    state = read_pth(SWIN_PTH)
    rng = np.random.default_rng(0)
    state["absolute_pos_embed"] = rng.standard_normal((1, 256, 16)).astype(
        "float32"
    )
    path = _save_pth(tmp_path / "ape.pth", state)
    config = checkpoint_config(path)
    assert config["absolute_position_embedding"] is True
    assert config["input_shape"] == (64, 64, 3)
    model = load_checkpoint(path)
    np.testing.assert_array_equal(
        to_numpy(model.get_layer("absolute_pos_embed").embedding),
        state["absolute_pos_embed"].reshape(1, 16, 16, 16),
    )
    state["absolute_pos_embed"] = np.zeros((1, 400, 16), "float32")
    _save_pth(tmp_path / "ape.pth", state)
    with pytest.raises(ConversionError, match="disagree on the image size"):
        checkpoint_config(path)


def test_unknown_layout_and_bad_files_are_named(tmp_path):
    with pytest.raises(
        ConversionError,
        match="known: hf_swin_upernet, hf_swin_backbone, hf_swinv2, hf_swin, "
        "hf_vit, "
        "official_swin_upernet, official_swin_dense, timm_swin, "
        "official_swin",
    ):
        detect_format({"conv1.weight": np.zeros(1)}, "resnet.pth")
    np.savez(tmp_path / "resnet.npz", **{"conv1/kernel": np.zeros(3)})
    with pytest.raises(ConversionError, match="resnet.npz"):
        load_checkpoint(tmp_path / "resnet.npz")
    broken = tmp_path / "broken.pth"
    broken.write_bytes(SWIN_PTH.read_bytes()[:5000])
    with pytest.raises(CheckpointError, match="broken.pth"):
        load_checkpoint(broken)
    with pytest.raises(ValueError, match="format must be one of"):
        load_checkpoint(SWIN_PTH, format="timm")


def test_keras_weights_files_round_trip_through_builders(tmp_path):
    import keras_swin as ks

    model = load_checkpoint(SWIN_PTH)
    config = checkpoint_config(SWIN_PTH)
    for key in ("family", "format"):
        config.pop(key)
    model.save_weights(tmp_path / "w.weights.h5")
    model.save(tmp_path / "m.keras")
    x = _swin_inputs()
    reference = predict(model, x)
    for weights in ("w.weights.h5", "m.keras"):
        rebuilt = ks.SwinTransformer(
            **config, classifier_activation=None, weights=tmp_path / weights
        )
        np.testing.assert_array_equal(predict(rebuilt, x), reference)
    keras.backend.clear_session(free_memory=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert checkpoint_config(SWIN_PTH)["classes"] == 5


def test_moved_names_say_where_they_went():
    import weights_tools
    import weights_tools.convert

    for module in (weights_tools, weights_tools.convert):
        with pytest.raises(
            AttributeError, match=r"moved to keras_swin.load_checkpoint"
        ):
            module.load_checkpoint  # noqa: B018
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        weights_tools.convert.nope  # noqa: B018


def test_saved_checkpoint_round_trip_and_refusals(tmp_path):
    from weights_tools.convert import (
        SAVED_CHECKPOINT_KEY,
        convert_checkpoint,
        save_checkpoint,
    )
    from weights_tools.readers import read_safetensors_metadata

    original = convert_checkpoint(VIT_NPZ)
    path = tmp_path / "vit.safetensors"
    save_checkpoint(original, path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["vit.safetensors"]
    again = convert_checkpoint(path)
    assert (again.format, again.family) == ("official_vit", "vit")
    assert again.config == original.config
    assert again.preprocessing == original.preprocessing
    assert again.weights.sources == original.weights.sources
    for name, array in original.weights.weights.items():
        np.testing.assert_array_equal(again.weights.weights[name], array)
    with pytest.raises(ConversionError, match="already converted from "):
        convert_checkpoint(path, format="timm_vit")
    # A damaged description is named, not taken for another format.
    import safetensors.numpy

    damaged = tmp_path / "damaged.safetensors"
    safetensors.numpy.save_file(
        {"head/kernel": np.zeros((2, 2), "float32")},
        str(damaged),
        metadata={SAVED_CHECKPOINT_KEY: "{not json"},
    )
    assert SAVED_CHECKPOINT_KEY in read_safetensors_metadata(damaged)
    with pytest.raises(ConversionError, match="description is damaged"):
        convert_checkpoint(damaged)
