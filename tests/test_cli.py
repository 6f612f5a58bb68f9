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


def test_convert_to_safetensors_then_load_anywhere(tmp_path, capsys):
    """The neutral file: written without a model, loaded like the source."""
    out = tmp_path / "swin.safetensors"
    source = SWIN / "checkpoint.pth"
    assert main(["convert", str(source), str(out)]) == 0
    assert "no Keras needed" in capsys.readouterr().out
    assert _leftovers(tmp_path) == ["swin.safetensors"]
    x, logits = np.load(SWIN / "inputs_nhwc.npy"), np.load(SWIN / "logits.npy")
    model = ks.load_checkpoint(out)
    assert_parity(predict(model, x), logits)
    assert ks.weights_source(model) == str(out)
    # The builders take it as they take the original, strictly.
    config = checkpoint_config(source)
    config.pop("family"), config.pop("format")
    built = ks.SwinTransformer(
        **config, classifier_activation=None, weights=out
    )
    assert_parity(predict(built, x), logits)
    # Another size and window: resampled as the source format's library
    # does, exactly as from the original file.
    bigger = dict(input_shape=(96, 96, 3), window_size=6)
    from_saved = ks.load_checkpoint(out, **bigger)
    from_original = ks.load_checkpoint(source, **bigger)
    for a, b in zip(from_saved.weights, from_original.weights, strict=True):
        np.testing.assert_array_equal(
            keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b)
        )
    notes = ks.checkpoint_notes(from_saved)
    assert len(notes) == 8 and all("(bicubic)" in n for n in notes)


@pytest.mark.parametrize(
    "option", [["--classes", "3"], ["--image-size", "96"], ["--any-size"]]
)
def test_convert_to_safetensors_refuses_model_options(tmp_path, capsys, option):
    out = tmp_path / "swin.safetensors"
    argv = ["convert", str(SWIN / "checkpoint.pth"), str(out), *option]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert option[0] in err and "pass them when loading it" in err
    assert _leftovers(tmp_path) == []


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


def _parity(*extra: str, inputs=None, expected=None) -> int:
    """`keras-swin parity` on the official Swin tiny_w4_64 case."""
    return main(
        [
            "parity",
            str(SWIN / "checkpoint.pth"),
            "--inputs",
            str(inputs or SWIN / "inputs_nhwc.npy"),
            "--expected",
            str(expected or SWIN / "logits.npy"),
            *extra,
        ]
    )


def test_parity_passes_within_tolerance(tmp_path, capsys):
    report = tmp_path / "parity.json"
    features = str(SWIN / "features.npy")
    assert _parity("--expected-features", features, "--json", str(report)) == 0
    out = capsys.readouterr().out
    assert "read as NHWC" in out
    assert "| output | " in out and "| features | " in out
    assert "the top-1 class agrees on 2/2 inputs" in out
    assert "2/2 within tolerance" in out
    rows = json.loads(report.read_text())["rows"]
    assert [(r["output"], r["shape"]) for r in rows] == [
        ("output", [2, 5]),
        ("features", [2, 128]),
    ]
    assert all(r["passed"] and r["max_abs_diff"] < 1e-5 for r in rows)


#: The parity command's file reading, layouts, tolerance and report are
#: backend-independent: each leg runs a passing parity (above, and the
#: docs' `keras-swin parity` line); these cases, a model compile each on
#: JAX and TensorFlow, run once, in the torch leg.
_PARITY_CLI_ONCE = pytest.mark.skipif(
    BACKEND != "torch",
    reason="backend-independent parity-command logic; runs in the torch leg",
)


@_PARITY_CLI_ONCE
def test_parity_fails_out_of_tolerance_with_the_figure(tmp_path, capsys):
    logits = np.load(SWIN / "logits.npy")
    logits[1, 3] += 1e-3
    np.save(tmp_path / "logits.npy", logits)
    assert _parity(expected=tmp_path / "logits.npy") == 1
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if "logits.npy |" in line)
    cells = [c.strip() for c in row.split("|")]
    assert cells[-2] == "FAIL"
    assert float(cells[4]) == pytest.approx(1e-3, rel=1e-2)
    assert float(cells[4]) > float(cells[5])  # the bound
    assert "0/1 within tolerance" in out
    # The same difference passes a tolerance that covers it.
    assert _parity("--tolerance", "1e-3", expected=tmp_path / "logits.npy") == 0


@_PARITY_CLI_ONCE
def test_parity_reads_nchw_inputs_and_npz_arrays(tmp_path, capsys):
    """NCHW (axis 1 is 3, the last is not) is transposed; an .npz gives its
    first array, or the one named after a colon."""
    nchw = np.load(SWIN / "inputs_nhwc.npy").transpose(0, 3, 1, 2)
    np.savez(tmp_path / "batch.npz", labels=np.arange(2), images=nchw)
    np.savez(tmp_path / "reference.npz", logits=np.load(SWIN / "logits.npy"))
    status = _parity(
        inputs=f"{tmp_path / 'batch.npz'}:images",
        expected=tmp_path / "reference.npz",
    )
    assert status == 0
    out = capsys.readouterr().out
    assert "batch.npz:images (2, 64, 64, 3), read as NCHW" in out
    assert "reference.npz:logits" in out


@_PARITY_CLI_ONCE
def test_parity_bad_inputs_fail_in_one_line(tmp_path, capsys):
    np.save(tmp_path / "gray.npy", np.zeros((2, 1, 64, 64), "float32"))
    np.save(tmp_path / "three.npy", np.zeros((3, 5), "float32"))
    np.save(tmp_path / "features.npy", np.load(SWIN / "features.npy"))
    np.savez(tmp_path / "batch.npz", images=np.load(SWIN / "inputs_nhwc.npy"))
    (tmp_path / "inputs.txt").write_text("1 2 3")
    cases = [
        (
            dict(inputs=tmp_path / "inputs.txt"),
            "inputs.txt: expected a .npy file, or a .npz file",
        ),
        (
            dict(inputs=tmp_path / "missing.npy"),
            f"No such inputs file: {tmp_path / 'missing.npy'}",
        ),
        (
            dict(inputs=f"{tmp_path / 'batch.npz'}:pixels"),
            "batch.npz has no array 'pixels'; it holds images",
        ),
        (
            dict(inputs=tmp_path / "gray.npy"),
            "have shape (2, 1, 64, 64): neither the last axis nor axis 1 "
            "is 3 channels; expected images NHWC (B, H, W, 3) or NCHW",
        ),
        (
            dict(expected=tmp_path / "three.npy"),
            "has shape (3, 5) for 2 inputs",
        ),
        (
            dict(expected=tmp_path / "features.npy"),
            "features.npy has shape (2, 128), but the model outputs (2, 5)",
        ),
    ]
    for paths, message in cases:
        assert _parity(**paths) == 1, message
        err = capsys.readouterr().err
        assert len(err.splitlines()) == 1, err
        assert err.startswith("keras-swin parity: "), err
        assert message in err, err


def test_parity_help_says_how_to_make_the_reference_files(capsys):
    with pytest.raises(SystemExit):
        main(["parity", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert 'numpy.save("logits.npy", logits.numpy())' in text
    assert "read as NCHW (B, 3, H, W) and transposed" in text
    assert "python tests/golden_harness.py" in text


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


@pytest.mark.skipif(
    BACKEND != "torch",
    reason="a fresh process of another backend (tens of seconds of "
    "start-up and conversion): the same check from any leg, so it runs "
    "once, in the torch leg, with TensorFlow",
)
def test_module_entry_point_and_backend_flag(tmp_path):
    other = "tensorflow"
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
    from keras_swin.weights import pretrained

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
