"""Parity with the official Swin (PyTorch) and ViT (JAX) golden outputs,
and the golden harness (tests/golden_harness.py) that checks every case.

Tolerance everywhere: 1e-5 * max(1, max |reference|).
"""

import json
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import keras
import numpy as np
import pytest
from golden_harness import golden_stage_layers
from golden_harness import main as harness_main
from helpers import BACKEND, assert_parity, golden, predict

from keras_swin import load_checkpoint
from keras_swin.models.swin import swin_feature_model
from weights_tools.convert import checkpoint_config

SWIN = ["tiny_w7_224", "tiny_w4_64"]
VIT = ["tiny_token_224", "tiny_repr_32"]


def _headless(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return load_checkpoint(path, classes=0)


@pytest.mark.parametrize("case", SWIN)
def test_swin_logits_and_features(case):
    folder = golden("swin_official", case)
    x = np.load(folder / "inputs_nhwc.npy")
    model = load_checkpoint(folder / "checkpoint.pth")
    assert_parity(
        predict(model, x), np.load(folder / "logits.npy"), what=f"{case} logits"
    )
    features = predict(_headless(folder / "checkpoint.pth"), x)
    assert_parity(
        features, np.load(folder / "features.npy"), what=f"{case} features"
    )


@pytest.mark.parametrize("case", SWIN)
def test_swin_per_stage_outputs(case):
    folder = golden("swin_official", case)
    stages_file = folder / "stages.npz"
    if not stages_file.exists():
        stages_file = folder / "stages_first_image.npz"
    stages = np.load(stages_file)
    images = np.load(folder / "inputs_nhwc.npy")[: len(stages["embed"])]
    model = load_checkpoint(folder / "checkpoint.pth")
    depth = len(checkpoint_config(folder / "checkpoint.pth")["depths"])
    taps = golden_stage_layers(depth)
    assert len(taps) == 2 * depth + 2
    outputs = swin_feature_model(model, list(taps.values())).predict(
        images, verbose=0
    )
    for key, layer in taps.items():
        out = keras.ops.convert_to_numpy(outputs[layer])
        reference = stages[key]
        assert_parity(
            out.reshape(reference.shape), reference, what=f"{case} {key}"
        )


@pytest.mark.parametrize("case", VIT)
def test_vit_logits_and_pre_logits(case):
    folder = golden("vit_official", case)
    x = np.load(folder / "inputs_nhwc.npy")
    model = load_checkpoint(folder / "checkpoint.npz")
    assert_parity(
        predict(model, x), np.load(folder / "logits.npy"), what=f"{case} logits"
    )
    pooled = predict(_headless(folder / "checkpoint.npz"), x)
    assert_parity(
        pooled, np.load(folder / "pre_logits.npy"), what=f"{case} pre_logits"
    )


def test_vit_intermediates():
    folder = golden("vit_official", "tiny_repr_32")
    ref = np.load(folder / "intermediates.npz")
    x = np.load(folder / "inputs_nhwc.npy")
    model = load_checkpoint(folder / "checkpoint.npz")
    probe = keras.Model(
        model.inputs,
        {
            "embedding": model.get_layer("patch_embed").output,
            "Transformer/posembed_input": model.get_layer("pos_embed").output,
            "Transformer/encoder_norm": model.get_layer("encoder").output,
            "pooled": model.get_layer("pool").output,
        },
    )
    out = {
        k: keras.ops.convert_to_numpy(v)
        for k, v in probe.predict(x, verbose=0).items()
    }
    for key in (
        "embedding",
        "Transformer/posembed_input",
        "Transformer/encoder_norm",
    ):
        assert_parity(out[key], ref[key], what=key)
    tokens = out["Transformer/posembed_input"]
    for i, block in enumerate(model.get_layer("encoder").blocks):
        tokens = keras.ops.convert_to_numpy(block(tokens))
        assert_parity(
            tokens,
            ref[f"Transformer/encoderblock_{i}"],
            what=f"encoderblock_{i}",
        )
    dense = model.get_layer("pre_logits")
    before_tanh = out["pooled"] @ keras.ops.convert_to_numpy(
        dense.kernel
    ) + keras.ops.convert_to_numpy(dense.bias)
    assert_parity(
        before_tanh,
        ref["pre_logits_dense_before_tanh"],
        what="pre_logits before tanh",
    )


@pytest.mark.parametrize(
    "family,case,suffix",
    [
        ("swin_official", "tiny_w4_64", "pth"),
        ("vit_official", "tiny_repr_32", "npz"),
    ],
)
def test_builder_weights_argument_reads_official_files(family, case, suffix):
    import keras_swin as ks

    path = golden(family, case, f"checkpoint.{suffix}")
    config = checkpoint_config(path)
    builder = (
        ks.SwinTransformer
        if config.pop("family") == "swin"
        else ks.VisionTransformer
    )
    config.pop("format")
    model = builder(weights=str(path), classifier_activation=None, **config)
    x = np.load(golden(family, case, "inputs_nhwc.npy"))
    assert_parity(
        predict(model, x), np.load(golden(family, case, "logits.npy"))
    )


# -- the harness: python tests/golden_harness.py DIR ------------------------

ROOT = Path(__file__).resolve().parents[1]
HARNESS = ROOT / "tests" / "golden_harness.py"


def test_harness_passes_and_fails(tmp_path, capsys):
    case = tmp_path / "vit_official" / "tiny_repr_32"
    shutil.copytree(golden("vit_official", "tiny_repr_32"), case)
    report = tmp_path / "parity.json"
    assert harness_main([str(tmp_path), "--json", str(report)]) == 0
    rows = json.loads(report.read_text())["rows"]
    assert [(r["case"], r["output"]) for r in rows] == [
        ("vit_official/tiny_repr_32", "logits"),
        ("vit_official/tiny_repr_32", "pooled"),
    ]
    assert all(r["passed"] and r["max_abs_diff"] < 1e-5 for r in rows)
    assert "2/2 within tolerance" in capsys.readouterr().out
    logits = np.load(case / "logits.npy")
    np.save(case / "logits.npy", logits + 1e-3)
    assert harness_main([str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "| vit_official/tiny_repr_32 | logits | " in out
    assert "| FAIL |" in out and "1/2 within tolerance" in out
    assert harness_main([str(tmp_path / "empty")]) == 2
    assert "no reference case under" in capsys.readouterr().err


def _env(**changes) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.update(changes)
    return env


@pytest.mark.slow
@pytest.mark.skipif(
    BACKEND != "torch",
    reason="how the script starts (a path from another folder, -m from the "
    "clone) does not depend on the backend: two fresh processes, run once, "
    "in the torch leg, as test_readme.py's in-process harness command; "
    "every leg runs the harness in-process here (test_harness_passes_and_"
    "fails)",
)
def test_harness_runs_as_a_script_from_any_folder(tmp_path):
    """`python tests/golden_harness.py` and `python -m tests.golden_harness`
    (from the clone's root) both run the harness."""
    folder = golden("vit_official", "tiny_repr_32")
    for argv, cwd in (
        ([str(HARNESS)], tmp_path),
        (["-m", "tests.golden_harness"], ROOT),
    ):
        done = subprocess.run(
            [sys.executable, *argv, str(folder), "--backend", BACKEND],
            capture_output=True,
            text=True,
            cwd=cwd,
            env=dict(os.environ),
            timeout=600,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        assert f"| tiny_repr_32 | logits | {BACKEND} |" in done.stdout
        assert "2/2 within tolerance" in done.stdout


@pytest.mark.slow
@pytest.mark.skipif(
    BACKEND != "tensorflow", reason="tf.function retracing: TensorFlow only"
)
def test_harness_on_tensorflow_is_quiet(tmp_path):
    # Six models (three cases, each with and without its head): before,
    # each `predict` traced a new tf.function and TensorFlow warned about
    # retracing from the fifth on.
    for i in range(3):
        shutil.copytree(
            golden("vit_official", "tiny_repr_32"), tmp_path / f"case{i}"
        )
    done = subprocess.run(
        [sys.executable, str(HARNESS), str(tmp_path)],
        capture_output=True,
        text=True,
        env=_env(KERAS_BACKEND="tensorflow"),
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "6/6 within tolerance" in done.stdout
    assert done.stderr == ""
