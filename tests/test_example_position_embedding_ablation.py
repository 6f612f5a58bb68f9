"""examples/position_embedding_ablation.py: its table and a tiny run."""

import importlib.util
import json
from pathlib import Path

import keras
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load(name):
    spec = importlib.util.spec_from_file_location(
        name, ROOT / "examples" / f"{name}.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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
