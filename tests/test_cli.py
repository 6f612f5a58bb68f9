"""The keras-swin command: convert, info, parity, errors, atomic output."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from helpers import BACKEND, assert_parity, golden, predict

import keras_swin as ks
from keras_swin.cli import main
from weights_tools.convert import checkpoint_config

SWIN = golden("swin_official", "tiny_w4_64")
VIT = golden("vit_official", "tiny_repr_32")


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_convert_to_weights_h5_and_rebuild(tmp_path, capsys):
    out = tmp_path / "swin.weights.h5"
    assert main(["convert", str(SWIN / "checkpoint.pth"), str(out)]) == 0
    printed = capsys.readouterr().out
    assert "keras_swin.SwinTransformer(" in printed
    assert _leftovers(tmp_path) == ["swin.weights.h5"]
    config = checkpoint_config(SWIN / "checkpoint.pth")
    config.pop("family"), config.pop("format")
    model = ks.SwinTransformer(
        **config, classifier_activation=None, weights=out
    )
    assert_parity(
        predict(model, np.load(SWIN / "inputs_nhwc.npy")),
        np.load(SWIN / "logits.npy"),
    )


def test_convert_to_keras_file(tmp_path):
    out = tmp_path / "vit.keras"
    assert (
        main(
            [
                "convert",
                str(VIT / "checkpoint.npz"),
                str(out),
                "--classifier-activation",
                "softmax",
            ]
        )
        == 0
    )
    model = keras.saving.load_model(out)
    probs = predict(model, np.load(VIT / "inputs_nhwc.npy"))
    np.testing.assert_allclose(probs.sum(-1), 1.0, rtol=1e-5)


def test_convert_any_size_swin(tmp_path, capsys):
    out = tmp_path / "swin.keras"
    source = golden("swin_official", "tiny_w7_224", "checkpoint.pth")
    assert main(["convert", str(source), str(out), "--any-size"]) == 0
    assert keras.saving.load_model(out).input_shape == (None, None, None, 3)
    # At 64 px the last stage's table was made for a 2x2 window: it cannot
    # serve the 4x4 windows of larger inputs, and the error says where.
    assert (
        main(
            [
                "convert",
                str(SWIN / "checkpoint.pth"),
                str(tmp_path / "small.keras"),
                "--any-size",
            ]
        )
        == 1
    )
    assert (
        "layers.3.blocks.0.attn.relative_position_bias_table [9, 8]"
        in capsys.readouterr().err
    )


def test_info_prints_the_architecture(capsys):
    assert main(["info", str(VIT / "checkpoint.npz")]) == 0
    config = json.loads(capsys.readouterr().out)
    assert config["family"] == "vit"
    assert config["representation_size"] == 48


def test_parity_command_passes_and_fails(tmp_path, capsys):
    case = tmp_path / "vit_official" / "tiny_repr_32"
    shutil.copytree(VIT, case)
    report = tmp_path / "parity.json"
    assert main(["parity", str(tmp_path), "--json", str(report)]) == 0
    rows = json.loads(report.read_text())["rows"]
    assert [r["output"] for r in rows] == ["logits", "pooled"]
    assert all(r["passed"] and r["max_abs_diff"] < 1e-5 for r in rows)
    logits = np.load(case / "logits.npy")
    np.save(case / "logits.npy", logits + 1e-3)
    assert main(["parity", str(tmp_path)]) == 1
    assert "FAIL" in capsys.readouterr().out
    assert main(["parity", str(tmp_path / "empty")]) == 2


def test_bad_input_gives_an_error_and_no_output(tmp_path, capsys):
    broken = tmp_path / "broken.pth"
    broken.write_bytes((SWIN / "checkpoint.pth").read_bytes()[:3000])
    out = tmp_path / "out.weights.h5"
    assert main(["convert", str(broken), str(out)]) == 1
    assert "broken.pth" in capsys.readouterr().err
    assert (
        main(
            ["convert", str(SWIN / "checkpoint.pth"), str(tmp_path / "out.h5")]
        )
        == 2
    )
    assert ".weights.h5 or .keras" in capsys.readouterr().err
    assert _leftovers(tmp_path) == ["broken.pth"]


def test_failed_save_leaves_nothing_behind(tmp_path, monkeypatch):
    out = tmp_path / "swin.weights.h5"
    out.write_bytes(b"previous file")

    def failing_save(self, path, *args, **kwargs):
        Path(path).write_bytes(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(keras.Model, "save_weights", failing_save)
    with pytest.raises(OSError, match="disk full"):
        main(["convert", str(SWIN / "checkpoint.pth"), str(out)])
    assert _leftovers(tmp_path) == ["swin.weights.h5"]
    assert out.read_bytes() == b"previous file"


def test_module_entry_point_and_backend_flag(tmp_path):
    other = "torch" if BACKEND != "torch" else "jax"
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "keras_swin",
            "--backend",
            other,
            "convert",
            str(SWIN / "checkpoint.pth"),
            str(tmp_path / "m.keras"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "m.keras").exists()
    script = Path(sys.executable).parent / "keras-swin"
    done = subprocess.run(
        [str(script), "--help"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0 and "convert" in done.stdout


def test_backend_flag_cannot_switch_a_loaded_keras():
    other = "torch" if BACKEND != "torch" else "jax"
    with pytest.raises(SystemExit, match="already imported"):
        main(["--backend", other, "info", str(SWIN / "checkpoint.pth")])
