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
    # At 64 px the last stage's table was made for a 2x2 window; a model
    # for any size has 4x4 windows there, so the table is resampled
    # (bicubic, as the official load_pretrained) and the note says so.
    small = tmp_path / "small.keras"
    assert (
        main(
            ["convert", str(SWIN / "checkpoint.pth"), str(small), "--any-size"]
        )
        == 0
    )
    assert (
        "note: layers.3.blocks.0.attn.relative_position_bias_table: "
        "resampled [9, 8] -> [49, 8] (bicubic)" in capsys.readouterr().out
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


def test_failed_save_leaves_nothing_behind(tmp_path, monkeypatch, capsys):
    out = tmp_path / "swin.weights.h5"
    out.write_bytes(b"previous file")

    def failing_save(self, path, *args, **kwargs):
        Path(path).write_bytes(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(keras.Model, "save_weights", failing_save)
    argv = ["convert", str(SWIN / "checkpoint.pth"), str(out)]
    assert main(argv) == 1
    assert capsys.readouterr().err == "keras-swin convert: disk full\n"
    assert _leftovers(tmp_path) == ["swin.weights.h5"]
    assert out.read_bytes() == b"previous file"
    with pytest.raises(OSError, match="disk full"):  # --debug: raised
        main(["--debug", *argv])
    assert _leftovers(tmp_path) == ["swin.weights.h5"]


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


def test_convert_hf_folder_with_window_transfer(tmp_path, capsys):
    folder = golden("hf", "swin_tiny_e24_w7_224")
    out = tmp_path / "swin384.weights.h5"
    argv = ["convert", str(folder), str(out), "--image-size", "384"]
    assert main(argv + ["--window-size", "12"]) == 0
    printed = capsys.readouterr().out
    assert "(hf_swin)" in printed and "window_size=12" in printed
    assert printed.count("note: ") == 8  # one resampled table per block
    assert _leftovers(tmp_path) == ["swin384.weights.h5"]


def test_info_timm_vit_needs_heads_without_config(tmp_path, capsys):
    lone = tmp_path / "model.safetensors"
    shutil.copy(
        golden("timm", "vit_tiny_e64_d2_224", "model.safetensors"), lone
    )
    assert main(["info", str(lone)]) == 1
    assert "--num-heads" in capsys.readouterr().err
    assert main(["info", str(lone), "--num-heads", "4"]) == 0
    assert json.loads(capsys.readouterr().out)["num_heads"] == 4


def test_predict_prints_top_classes(tmp_path, capsys):
    from PIL import Image

    image = tmp_path / "image.png"
    pixels = np.random.default_rng(0).integers(0, 255, (240, 300, 3))
    Image.fromarray(pixels.astype("uint8")).save(image)
    folder = golden("hf", "swin_tiny_e24_w7_224")
    argv = ["predict", str(image), "--weights", str(folder), "--top", "3"]
    assert main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == str(image) and len(lines) == 4
    assert all("LABEL_" in line for line in lines[1:])  # config id2label
    scores = [float(line.split()[2]) for line in lines[1:]]
    assert scores == sorted(scores, reverse=True) and sum(scores) <= 1


def test_predict_offline_names_the_url(tmp_path, capsys, monkeypatch):
    from keras_swin import pretrained

    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    spec = pretrained.PRETRAINED["swin_tiny_patch4_window7_224.ms_in1k"]
    monkeypatch.setattr(
        pretrained,
        "download",
        lambda s: (_ for _ in ()).throw(
            RuntimeError(f"Could not get {s.url}; pass the file")
        ),
    )
    image = tmp_path / "x.png"
    from PIL import Image

    Image.new("RGB", (32, 32)).save(image)
    assert main(["predict", str(image), "--weights", spec.name]) == 1
    assert spec.url in capsys.readouterr().err
