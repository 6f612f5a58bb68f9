"""timm Swin V2 state dicts (`weights_tools.timm_swinv2`).

Golden case `timm_swinv2/timm_swinv2_e24_w8_256`: a seeded
`timm.create_model("swinv2_tiny_window8_256", img_size=256, embed_dim=24,
depths=(2, 2, 2, 2), num_heads=(1, 2, 3, 6), num_classes=10)` (timm
1.0.31, torch 2.13 CPU, float32); its `config.json` records that call.
Parity: 1e-5 * max(1, max |reference|) (the issue's tolerance) on
PyTorch and in float64; see `test_parity_float32` for JAX and
TensorFlow in float32.
"""

import contextlib
import json
import shutil

import keras
import numpy as np
import pytest
import safetensors.numpy
from helpers import BACKEND, assert_parity, golden, predict

from keras_swin import load_checkpoint
from weights_tools import timm_swinv2
from weights_tools.common import ConversionError
from weights_tools.convert import convert_checkpoint, read_source
from weights_tools.formats import detect_format

CASE = golden("timm_swinv2", "timm_swinv2_e24_w8_256")
WEIGHTS = CASE / "model.safetensors"
ARCH = dict(
    embed_dim=24,
    depths=(2, 2, 2, 2),
    num_heads=(1, 2, 3, 6),
    window_size=8,
    pretrained_window_sizes=(0, 0, 0, 0),
    classes=10,
    input_shape=(256, 256, 3),
)

#: float32 tolerance per backend (times max(1, max |ref|)): the official
#: V2 cases' (tests/models/test_swin_v2.py, same deliberately clamped
#: logit scales). TensorFlow lands inside 1e-5 on this case (measured in
#: `test_parity_float32`) but not on the official window-16 case, and
#: the margin here (81 % of the bound on the features) is rounding luck
#: another CPU's kernels need not repeat.
FLOAT32_TOLERANCE = {"torch": 1e-5, "jax": 3e-5, "tensorflow": 3e-5}


def _outputs(shape, dtype="float32"):
    x = np.load(CASE / "inputs_nhwc.npy").astype(dtype)
    logits = load_checkpoint(
        WEIGHTS, input_shape=shape, classifier_activation=None
    )
    features = load_checkpoint(WEIGHTS, input_shape=shape, classes=0)
    return predict(logits, x), predict(features, x)


def test_detected_with_its_record():
    file, tensors, meta = read_source(WEIGHTS)
    assert meta["timm_arch"] == "swinv2_tiny_window8_256"
    assert detect_format(tensors, file, meta) == "timm_swinv2"
    checkpoint = convert_checkpoint(WEIGHTS)
    assert checkpoint.family == "swin_v2"
    assert {k: checkpoint.config[k] for k in ARCH} == ARCH
    sources = checkpoint.weights.sources
    # timm keeps stage i's merging at the start of stage i + 1.
    assert sources["layers_0_downsample/reduction/kernel"] == (
        "layers.1.downsample.reduction.weight"
    )
    assert sources["head/kernel"] == "head.fc.weight"


@pytest.mark.parametrize("shape", [None, (None, None, 3)], ids=["256", "any"])
def test_parity_float32(shape):
    """Logits and pooled features in float32.

    PyTorch (the reference's own kernels) and TensorFlow meet the issue's
    tolerance, 1e-5 * max(1, max |ref|) (bounds: logits 1.74e-5,
    features 3.38e-5); JAX does not and is asserted at 3e-5. These seeded
    V2 models are ill-conditioned (the first head of every block has its
    logit scale clamped at log(100): attention logits times 100), so
    float32 rounding of other kernels is amplified. Measured max abs
    errors, logits / features, the same at 256 px and (None, None, 3):
    torch 5.5e-6 / 1.69e-5, TensorFlow 9.7e-6 / 2.74e-5, JAX 2.05e-5 /
    4.09e-5. In float64 every backend lands at 0.9-1.3e-5 / 2.4-3.1e-5
    (`test_parity_float64`): the float32 reference itself carries
    about 1.2e-5 of rounding, so JAX float32 is within twice the
    reference's own error, not a porting fault.
    """
    logits, features = _outputs(shape)
    tol = FLOAT32_TOLERANCE[BACKEND]
    assert_parity(logits, np.load(CASE / "logits.npy"), tol, "logits")
    assert_parity(features, np.load(CASE / "features.npy"), tol, "features")


@contextlib.contextmanager
def _float64():
    """The float64 policy (and JAX's 64-bit mode), restored after."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("float64")
    try:
        if BACKEND == "jax":
            import jax

            with jax.enable_x64(True):
                yield
        else:
            yield
    finally:
        keras.config.set_dtype_policy(previous)


@pytest.mark.parametrize("shape", [None, (None, None, 3)], ids=["256", "any"])
def test_parity_float64(shape):
    """In float64 every backend meets the issue's 1e-5 tolerance."""
    with _float64():
        logits, features = _outputs(shape, "float64")
    assert logits.dtype == np.float64
    assert_parity(logits, np.load(CASE / "logits.npy"), 1e-5, "logits")
    assert_parity(features, np.load(CASE / "features.npy"), 1e-5, "features")


def _copy(tmp_path, record=True, edit=None):
    """The golden weights in `tmp_path`, optionally edited."""
    tensors = safetensors.numpy.load_file(str(WEIGHTS))
    if edit is not None:
        edit(tensors)
    safetensors.numpy.save_file(tensors, str(tmp_path / "model.safetensors"))
    if record:
        shutil.copy(CASE / "config.json", tmp_path / "config.json")
    return tmp_path / "model.safetensors"


def test_no_window_information_says_what_to_pass(tmp_path):
    path = _copy(tmp_path, record=False)
    with pytest.raises(ConversionError) as error:
        convert_checkpoint(path)
    message = str(error.value)
    for wanted in ("window_size=", "pretrained_window_sizes=", "input_shape="):
        assert wanted in message
    # The caller's values are enough.
    config = convert_checkpoint(path, window_size=8).config
    assert config["window_size"] == 8
    assert config["pretrained_window_sizes"] == (0, 0, 0, 0)
    model = load_checkpoint(path, window_size=8, classifier_activation=None)
    x = np.load(CASE / "inputs_nhwc.npy")
    tol = FLOAT32_TOLERANCE[BACKEND]
    assert_parity(predict(model, x), np.load(CASE / "logits.npy"), tol)


def test_hub_config_json(tmp_path):
    path = _copy(tmp_path, record=False)
    hub = {
        "architecture": "swinv2_base_window12to16_192to256",
        "num_classes": 10,
        "model_args": {
            "embed_dim": 24,
            "depths": [2, 2, 2, 2],
            "num_heads": [1, 2, 3, 6],
        },
        "pretrained_cfg": {"input_size": [3, 256, 256], "crop_pct": 0.9},
    }
    (tmp_path / "config.json").write_text(json.dumps(hub))
    checkpoint = convert_checkpoint(path)
    assert checkpoint.config["window_size"] == 16
    assert checkpoint.config["pretrained_window_sizes"] == (12, 12, 12, 6)
    assert checkpoint.config["input_shape"] == (256, 256, 3)
    assert checkpoint.preprocessing["crop_pct"] == 0.9
    hub["model_args"]["window_size"] = 8
    hub["model_args"]["pretrained_window_sizes"] = [0, 0, 0, 0]
    (tmp_path / "config.json").write_text(json.dumps(hub))
    config = convert_checkpoint(path).config
    assert (config["window_size"], config["pretrained_window_sizes"]) == (
        8,
        (0, 0, 0, 0),
    )


@pytest.mark.parametrize(
    "name, expected",
    [
        ("swinv2_tiny_window8_256", (8, (0, 0, 0, 0), 256)),
        ("swinv2_small_window16_256", (16, (0, 0, 0, 0), 256)),
        ("swinv2_base_window12_192", (12, (0, 0, 0, 0), 192)),
        ("swinv2_large_window12to16_192to256", (16, (12, 12, 12, 6), 256)),
        ("swinv2_base_window12to24_192to384", (24, (12, 12, 12, 6), 384)),
    ],
)
def test_arch_defaults(name, expected):
    defaults = timm_swinv2.arch_defaults(name)
    assert (
        defaults["window_size"],
        defaults["pretrained_window_sizes"],
        defaults["img_size"],
    ) == expected


def test_extra_and_missing_keys_are_named(tmp_path):
    def edit(tensors):
        tensors["layers.0.blocks.0.attn.extra"] = np.zeros(3, "float32")
        del tensors["layers.2.downsample.norm.bias"]

    path = _copy(tmp_path, edit=edit)
    with pytest.raises(ConversionError) as error:
        load_checkpoint(path)
    message = str(error.value)
    assert "layers.0.blocks.0.attn.extra" in message
    assert "layers_1_downsample/norm/beta" in message


def test_swinv2_cr_is_refused(tmp_path):
    path = _copy(tmp_path, record=False)
    record = {"architecture": "swinv2_cr_tiny_ns_224"}
    (tmp_path / "config.json").write_text(json.dumps(record))
    with pytest.raises(ConversionError, match="swinv2_cr"):
        convert_checkpoint(path)
    tensors = {
        "patch_embed.proj.weight": np.zeros((24, 3, 4, 4), "float32"),
        "stages.0.blocks.0.attn.logit_scale": np.zeros((1, 1, 1), "float32"),
        "stages.0.blocks.0.attn.meta_mlp.fc1.weight": np.zeros(
            (8, 2), "float32"
        ),
    }
    assert timm_swinv2.matches(tensors)
    with pytest.raises(ConversionError, match="different architecture"):
        timm_swinv2.infer_config(tensors)


def test_cli_convert_with_window_flags(tmp_path, capsys):
    from keras_swin.cli import main

    lone = _copy(tmp_path, record=False)
    out = tmp_path / "v2.weights.h5"
    assert main(["convert", str(lone), str(out)]) == 1
    assert "window_size=" in capsys.readouterr().err
    argv = ["convert", str(lone), str(out), "--window-size", "16"]
    assert main(argv + ["--pretrained-window-sizes", "8"]) == 0
    printed = capsys.readouterr().out
    assert "(timm_swinv2)" in printed and "window_size=16" in printed
    assert "pretrained_window_sizes=8" in printed
    assert "note: " not in printed  # no V2 weight depends on the window
    assert out.exists()
