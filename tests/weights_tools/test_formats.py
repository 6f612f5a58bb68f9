"""timm and Hugging Face checkpoints: detection, parity, key schemes.

Parity tolerance: 1e-5 * max(1, max |reference|), as for the official
sets. The references are the goldens' own outputs (timm 1.0.31,
transformers 5.23.0).
"""

import csv
import warnings

import numpy as np
import pytest
from helpers import assert_parity, golden, golden_inputs, predict

from keras_swin import load_checkpoint
from weights_tools.common import ConversionError
from weights_tools.convert import checkpoint_config, read_source
from weights_tools.formats import FORMATS, detect_format
from weights_tools.readers import read_safetensors

CASES = {
    ("timm", "swin_tiny_e24_w7_224"): "timm_swin",
    ("timm", "vit_tiny_e64_d2_224"): "timm_vit",
    ("hf", "swin_tiny_e24_w7_224"): "hf_swin",
    ("hf", "vit_tiny_h64_224"): "hf_vit",
}


def _headless(path, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return load_checkpoint(path, classes=0, **kwargs)


def _converted(path, fmt=None):
    file, tensors, meta = read_source(path)
    name = fmt or detect_format(tensors, file, meta)
    return FORMATS[name].convert(tensors, meta).weights


@pytest.mark.parametrize("case", sorted(CASES), ids="/".join)
def test_logits_and_pooled_features(case):
    folder = golden(*case)
    assert checkpoint_config(folder)["format"] == CASES[case]
    x = golden_inputs(*case)
    logits = predict(load_checkpoint(folder), x)
    assert_parity(logits, np.load(folder / "logits.npy"), what="logits")
    pooled = predict(_headless(folder), x)
    assert_parity(pooled, np.load(folder / "pre_logits.npy"), what="pooled")


@pytest.mark.parametrize("shape", [(250, 250, 3), (None, None, 3)])
def test_hf_swin_padded_250(shape):
    # 250 px: padding to the patch, to the window before the shift, and
    # odd maps before merging; the last 8x8 stage is shifted.
    folder = golden("hf", "swin_tiny_e24_w7_224")
    x = golden_inputs("hf", "swin_tiny_e24_w7_224", "padded_250")
    reference = folder / "padded_250"
    model = load_checkpoint(folder, input_shape=shape)
    assert_parity(
        predict(model, x), np.load(reference / "logits.npy"), what="logits"
    )
    if shape[0] is None:
        pooled = predict(_headless(folder, input_shape=shape), x)
        assert_parity(pooled, np.load(reference / "pre_logits.npy"))


def test_file_inside_folder_uses_its_config():
    folder = golden("timm", "vit_tiny_e64_d2_224")
    for name in ("model.safetensors", "pytorch_model.bin"):
        config = checkpoint_config(folder / name)
        assert config["format"] == "timm_vit"
        assert config["num_heads"] == 4  # only config.json knows this


def test_timm_bin_and_safetensors_convert_identically():
    folder = golden("timm", "vit_tiny_e64_d2_224")
    a = _converted(folder / "model.safetensors")
    b = _converted(folder / "pytorch_model.bin")
    assert sorted(a) == sorted(b)
    for path in a:
        np.testing.assert_array_equal(a[path], b[path])


def test_timm_vit_without_config_asks_for_heads(tmp_path):
    source = golden("timm", "vit_tiny_e64_d2_224", "model.safetensors")
    lone = tmp_path / "model.safetensors"
    lone.write_bytes(source.read_bytes())
    with pytest.raises(ConversionError, match="num_heads"):
        checkpoint_config(lone)
    config = checkpoint_config(lone, num_heads=4)
    assert config["num_heads"] == 4 and config["classifier"] == "token"


def _write_safetensors(path, tensors):
    from safetensors.numpy import save_file

    save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, path)


def _relative_position_index(window):
    # The formula of the golden FORMAT.md, written out independently.
    coords = [(h, w) for h in range(window) for w in range(window)]
    return np.array(
        [
            [
                (hi - hj + window - 1) * (2 * window - 1)
                + (wi - wj + window - 1)
                for hj, wj in coords
            ]
            for hi, wi in coords
        ],
        dtype=np.int64,
    )


def test_hf_swin_key_schemes_give_the_same_weights(tmp_path):
    folder = golden("hf", "swin_tiny_e24_w7_224")
    legacy = read_safetensors(folder / "model.safetensors")
    with open(folder / "key_map.tsv") as handle:
        rows = [r for r in csv.reader(handle, delimiter="\t") if r]
    to_v5 = {old: new for new, old in rows if new != old and old in legacy}
    assert to_v5, "the key map renames nothing"
    v5 = {to_v5.get(k, k): v for k, v in legacy.items()}
    with_index = dict(legacy)
    for key, table in legacy.items():
        if key.endswith("relative_position_bias_table"):
            window = (int(np.sqrt(table.shape[0])) + 1) // 2
            index_key = key.replace("_bias_table", "_index")
            with_index[index_key] = _relative_position_index(window)
    reference = _converted(folder)
    for name, tensors in (("v5", v5), ("legacy_index", with_index)):
        case = tmp_path / name
        case.mkdir()
        (case / "config.json").write_text((folder / "config.json").read_text())
        _write_safetensors(case / "model.safetensors", tensors)
        weights = _converted(case)
        assert sorted(weights) == sorted(reference), name
        for path, array in reference.items():
            np.testing.assert_array_equal(weights[path], array)


def test_hf_vit_v5_names_match_legacy():
    folder = golden("hf", "vit_tiny_h64_224")
    reference = _converted(folder)
    v5 = _converted(folder / "model_v5names.safetensors")
    assert sorted(v5) == sorted(reference)
    for path, array in reference.items():
        np.testing.assert_array_equal(v5[path], array)


def test_hf_vit_uses_config_epsilon_and_gelu():
    config = checkpoint_config(golden("hf", "vit_tiny_h64_224"))
    assert config["layer_norm_epsilon"] == 1e-12
    assert config["gelu_approximate"] is False


def test_timm_swin_downsample_moves_to_the_end_of_the_previous_stage():
    weights = _converted(golden("timm", "swin_tiny_e24_w7_224"))
    assert "layers_0_downsample/reduction/kernel" in weights
    assert not any(p.startswith("layers_3_downsample") for p in weights)
    assert weights["head/kernel"].shape == (192, 10)


def test_forced_wrong_format_is_a_clear_error():
    folder = golden("timm", "vit_tiny_e64_d2_224")
    with pytest.raises(
        ConversionError, match="not in the official_vit layout.*timm_vit"
    ):
        load_checkpoint(folder, format="official_vit")
    with pytest.raises(ValueError, match="format must be one of"):
        load_checkpoint(folder, format="nonsense")
