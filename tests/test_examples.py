"""The scripts in examples/ run and print what their headers show."""

import importlib.util
import json
from pathlib import Path

import keras
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load(name):
    spec = importlib.util.spec_from_file_location(
        name, ROOT / "examples" / f"{name}.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_convert_official_checkpoint(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    _load("convert_official_checkpoint").main()
    out = capsys.readouterr().out
    difference = float(out.split("logits: ")[1].split()[0])
    assert difference < 1e-5
    assert (tmp_path / "swin_tiny_golden.keras").exists()


def test_swin_feature_pyramid():
    features = _load("swin_feature_pyramid").main(250, 190)
    shapes = [tuple(features[f"layers_{i}"].shape) for i in range(4)]
    assert shapes == [
        (1, 63, 48, 96),
        (1, 32, 24, 192),
        (1, 16, 12, 384),
        (1, 8, 6, 768),
    ]
    assert all(np.isfinite(np.asarray(f)).all() for f in features.values())


@pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="the example script runs once, in the TensorFlow leg (its "
    "quickest; 2 minutes on PyTorch); every leg trains the digits to a "
    "floor in tests/recipes/test_reproducible.py",
)
def test_train_with_recipe(capsys):
    """3 epochs of 20 batches reach 0.7409 held-out accuracy on
    TensorFlow, 0.6992 on JAX and on PyTorch (measured on this project's
    2-core AMD EPYC machine; seeded, so each backend repeats its value).
    The floor leaves a margin of about 35 images."""
    results = _load("train_with_recipe").main(epochs=3)
    out = capsys.readouterr().out
    assert "recipe digits: adamw, peak lr 0.002, 3 epochs (2 warm-up)" in out
    assert results["examples"] == 359
    assert results["accuracy"] >= 0.6


def test_detect_shapes_map_by_hand():
    """VOC AP@0.5 of a case worked out by hand.

    Class 0, two images with one box each; detections by score: hit,
    miss (wrong place), hit, duplicate of the first hit (a miss).
    Precision 1, 1/2, 2/3, 1/2 at recall 1/2, 1/2, 1, 1: the envelope
    gives AP = 1/2 * 1 + 1/2 * 2/3 = 5/6. Class 1: a hit at IoU 0.8
    and a lower-scored miss at IoU 1/3 after it: AP 1. Class 2 has no
    ground truth (its detection is ignored). mAP = (5/6 + 1) / 2.
    """
    pytest.importorskip("keras_hub")
    shapes = _load("detect_shapes_with_kerashub")
    square = [0, 0, 10, 10]
    pad = [-1, -1, -1, -1]
    true_boxes = np.array([[square, [10, 10, 20, 20]], [square, pad]], "f4")
    true_labels = np.array([[0, 1], [0, -1]])
    boxes = np.array(
        [
            [square, square, [12, 10, 20, 20], [15, 10, 25, 20], square],
            [[20, 20, 30, 30], square, pad, pad, pad],
        ],
        "f4",
    )
    scores = np.array([[0.9, 0.6, 0.95, 0.5, 0.99], [0.8, 0.7, 0, 0, 0]])
    labels = np.array([[0, 0, 1, 1, 2], [0, 0, -1, -1, -1]])
    found = shapes.mean_average_precision(
        true_boxes, true_labels, boxes, scores, labels, num_classes=3
    )
    assert found["AP"][0] == pytest.approx(5 / 6, abs=1e-12)
    assert found["AP"][1] == 1.0
    assert found["AP"][2] is None
    assert found["mAP"] == pytest.approx((5 / 6 + 1) / 2, abs=1e-12)
    # IoU exactly 0.5 is a hit; just under it is not.
    half = np.array([[[0, 0, 10, 20]]], "f4")
    just_under = np.array([[[0, 0, 10, 20.01]]], "f4")
    one = np.array([[0]])
    for detected, expected in ((half, 1.0), (just_under, 0.0)):
        result = shapes.mean_average_precision(
            np.array([[square]], "f4"), one, detected, [[0.9]], one, 1
        )
        assert result["mAP"] == expected


def test_detect_shapes_data():
    """The shapes are deterministic from the seed, and a square's box is
    its painted pixels."""
    pytest.importorskip("keras_hub")
    shapes = _load("detect_shapes_with_kerashub")
    images, boxes, labels = shapes.make_shapes(6, 64, seed=3)
    again = shapes.make_shapes(6, 64, seed=3)
    for a, b in zip((images, boxes, labels), again, strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(images, shapes.make_shapes(6, 64, seed=4)[0])
    real = labels >= 0
    assert real[:, 0].all() and set(labels[real]) <= {0, 1, 2}
    assert (boxes[real] >= 0).all() and (boxes[real] <= 64).all()
    assert (boxes[~real] == -1).all()
    canvas = np.zeros((20, 20, 3))
    box = shapes._draw(1, canvas, 3.0, 5.0, 8.0, (1, 0, 0))
    assert box == [3, 5, 11, 13]
    painted = np.zeros((20, 20), bool)
    painted[5:13, 3:11] = True
    np.testing.assert_array_equal(canvas[..., 0] == 1, painted)


@pytest.mark.slow
@pytest.mark.skipif(
    keras.backend.backend() == "jax",
    reason="the script's own code (shapes, mAP, plots) is backend-"
    "independent; on JAX, where its RetinaNet compiles for a minute and a "
    "half, test_kerashub_interop.py fits and reloads RetinaNet on a Swin",
)
def test_detect_shapes_with_kerashub(tmp_path, capsys):
    """A tiny run: trains one epoch, evaluates, writes both outputs."""
    pytest.importorskip("keras_hub")
    results = _load("detect_shapes_with_kerashub").main(
        [
            "--train-images=8",
            "--test-images=5",
            "--image-size=64",
            "--epochs=1",
            "--batch-size=4",
            f"--output-dir={tmp_path}",
        ]
    )
    out = capsys.readouterr().out
    assert "held-out box mAP@0.5: " in out
    assert 0.0 <= results["mAP@0.5"] <= 1.0
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["mAP@0.5"] == results["mAP@0.5"]
    assert (tmp_path / "predictions.png").stat().st_size > 10_000


def test_position_embedding_ablation_table_by_hand():
    """Mean and sample std over seeds, and the table's cells, by hand:
    (0.5, 0.7, 0.6) has mean 0.6 and std sqrt(((-.1)^2 + .1^2 + 0) / 2)
    = 0.1; one seed has std 0."""
    ablation = _load("position_embedding_ablation")
    summary = ablation.summarise(
        {"none": [0.5, 0.7, 0.6], "2d/every_layer": [0.9]}
    )
    assert summary["none"] == dict(mean=0.6, std=0.1, seeds=3)
    assert summary["2d/every_layer"] == dict(mean=0.9, std=0.0, seeds=1)
    lines = ablation.markdown_table(summary).splitlines()
    assert lines[2] == "| none | 0.600 ± 0.100 / 0.614 | | |"
    assert lines[4] == (
        "| 2-D learned | - / 0.640 | 0.900 ± 0.000 / 0.640 | - / 0.640 |"
    )
    assert lines[5] == "| relative | - / 0.640 | - / n/a | - / n/a |"
    with pytest.raises(SystemExit):
        ablation.main(["--variants=none,3d/stem"])


@pytest.mark.slow
@pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="backend-independent script check; runs in the TensorFlow leg",
)
def test_position_embedding_ablation_quick(tmp_path, capsys):
    """One variant, 20 steps, one seed: a progress line, and the table in
    markdown and JSON (nothing half-written left behind)."""
    ablation = _load("position_embedding_ablation")
    results = ablation.main(
        ["--quick", "--variants=2d/every_layer", f"--output={tmp_path}"]
    )
    out = capsys.readouterr().out
    assert out.startswith("[ 1/1] 2d/every_layer ")
    assert "seed 0: held-out accuracy " in out.splitlines()[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "position_embedding_ablation.json",
        "position_embedding_ablation.md",
    ]
    saved = json.loads(
        (tmp_path / "position_embedding_ablation.json").read_text()
    )
    assert saved["summary"] == results["summary"]
    assert saved["training"]["steps"] == 20 and saved["seeds"] == [0]
    assert list(saved["accuracies"]) == ["2d/every_layer"]
    for variant, values in saved["accuracies"].items():
        assert len(values) == 1 and 0.0 <= values[0] <= 1.0
        # 539 held-out digits: accuracy is a count over 539.
        assert round(values[0] * 539, 6) == int(round(values[0] * 539))
        assert saved["summary"][variant]["mean"] == round(values[0], 6)
    table = (tmp_path / "position_embedding_ablation.md").read_text()
    rows = [line for line in table.splitlines() if line.startswith("|")]
    assert len(rows) == 6 and all(r.count("|") == 5 for r in rows)
    accuracy = saved["accuracies"]["2d/every_layer"][0]
    assert rows[2] == "| none | - / 0.614 | | |"
    assert rows[4] == (
        f"| 2-D learned | - / 0.640 | {accuracy:.3f} ± 0.000 / 0.640 "
        "| - / 0.640 |"
    )
