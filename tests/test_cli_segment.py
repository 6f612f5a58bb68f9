"""`keras-swin segment`: a tiny Swin UperNet saved as .keras, run by the
command line on a PNG; its label PNG is `keras_swin.segment`'s map of the
model the command loaded (reused, so JAX compiles it once)."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from PIL import Image

import keras_swin
from keras_swin import ade20k, cli
from keras_swin.cli import main


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """(its .keras file, an image file, the image) for the module."""
    folder = tmp_path_factory.mktemp("segment")
    model = keras_swin.SwinUperNet(
        num_classes=3,
        embed_dim=8,
        depths=(1, 1, 1, 1),
        num_heads=(1, 1, 1, 1),
        window_size=4,
        channels=8,
        auxiliary_channels=None,
    )
    model.save(folder / "tiny.keras")
    image = np.random.default_rng(0).integers(0, 256, (45, 70, 3), np.uint8)
    Image.fromarray(image).save(folder / "street.png")
    return folder / "tiny.keras", folder / "street.png", image


@pytest.mark.slow
@pytest.mark.skipif(
    keras.backend.backend() == "jax",
    reason="the command around keras_swin.segment is backend-independent "
    "numpy and PIL (segment itself is checked on JAX in test_segment.py); "
    "on JAX, where this model compiles for tens of seconds, the docs' "
    "`keras-swin segment` line (test_readme.py) runs the command",
)
def test_segment_writes_the_label_map_and_overlay(
    saved, tmp_path, capsys, monkeypatch
):
    weights, png, image = saved
    loaded = []

    def load(name):
        loaded.append(cli_segment_model(name))
        return loaded[-1]

    cli_segment_model = cli._segment_model
    monkeypatch.setattr(cli, "_segment_model", load)
    out = tmp_path / "out"  # created by the command
    argv = ["segment", str(png), "--weights", str(weights)]
    argv += ["--output", str(out), "--scale", "none", "--alpha", "0.6"]
    assert main(argv) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "street_labels.png",
        "street_overlay.png",
    ]
    with Image.open(out / "street_labels.png") as labels_png:
        assert labels_png.mode == "L"
        labels = np.asarray(labels_png)
    (model,) = loaded
    assert isinstance(model, keras_swin.models.upernet.UperNet)
    expected = keras_swin.segment(model, image, scale=None)
    np.testing.assert_array_equal(labels, expected)
    with Image.open(out / "street_overlay.png") as overlay_png:
        overlay = np.asarray(overlay_png.convert("RGB"))
    # 3 classes: mmseg's fixed pseudo-random palette of 3 colours
    colours = ade20k.palette(3)[labels].astype(np.float64)
    blended = np.floor(0.4 * image + 0.6 * colours + 0.5)
    assert np.abs(overlay - blended).max() <= 1  # half-way rounding
    printed = capsys.readouterr().out
    shares = [(labels == k).mean() for k in range(3)]
    top = int(np.argmax(shares))
    assert f"street.png (45x70): class {top} {shares[top]:.1%}" in printed
    keras.backend.clear_session(free_memory=False)


def test_missing_image_fails_before_loading(tmp_path, capsys):
    argv = ["segment", str(tmp_path / "nowhere.png"), "--weights"]
    argv += [str(tmp_path / "never_read.keras"), "--output", str(tmp_path)]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "keras-swin segment: No such image file" in err
    assert "nowhere.png" in err


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--scales", "0.5,x", "positive numbers separated by commas"),
        ("--scales", "1.0,-2", "'-2'"),
        ("--scale", "2048", "LONG,SHORT"),
        ("--crop-size", "0", "positive integer"),
    ],
)
def test_bad_options_are_named(option, value, message, tmp_path, capsys):
    argv = ["segment", "a.png", "--weights", "w.keras"]
    argv += ["--output", str(tmp_path), option, value]
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {option}" in err and message in err


def test_two_images_with_one_name_are_refused(tmp_path, capsys):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        Image.new("RGB", (4, 4)).save(tmp_path / folder / "x.png")
    argv = ["segment", str(tmp_path / "a/x.png"), str(tmp_path / "b/x.png")]
    argv += ["--weights", "w.keras", "--output", str(tmp_path / "out")]
    assert main(argv) == 1
    assert "would both write x_overlay.png" in capsys.readouterr().err
