"""The model `keras-swin train` writes can be used the obvious ways.

`tests/golden/digits/model.keras` is the `model.keras` of a default
`keras-swin train --seed 0` run (see `tests/golden/digits/README.md`);
`3.png` is a test-split image of that run (never trained on).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import keras
import pytest

from keras_swin.cli import main
from keras_swin.imagenet import model_preprocessing
from keras_swin.recipes.train import DIGITS_RECIPE, build_model
from keras_swin.recipes.train import with_preprocessing as attach

ROOT = Path(__file__).resolve().parents[2]
DIGITS = ROOT / "tests" / "golden" / "digits"


def _readme_snippet() -> str:
    """The README's "load and use the trained model" Python block."""
    readme = (ROOT / "README.md").read_text()
    blocks = [
        block
        for block in re.findall(r"```python\n(.*?)```", readme, re.S)
        if "load_model(" in block and "model_preprocessing" in block
    ]
    assert len(blocks) == 1, "the README's load-and-use snippet is missing"
    return blocks[0]


def test_with_preprocessing_records_the_recipes_transform():
    model = build_model("swin_digits", DIGITS_RECIPE, 10, 16)
    names = [str(d) for d in range(10)]
    saved = attach(model, DIGITS_RECIPE, names)
    assert model_preprocessing(saved) == {
        "mean": (0.485, 0.456, 0.406),
        "std": (0.229, 0.224, 0.225),
        "crop_pct": 1.0,
        "interpolation": "bilinear",
        "class_names": names,
    }
    vit = attach(model, "vit_finetune")
    assert model_preprocessing(vit)["mean"] == (0.5, 0.5, 0.5)
    assert model_preprocessing(vit)["class_names"] is None


def test_the_readme_snippet_runs_in_a_fresh_process():
    """`load_model` failed in a fresh process ("Could not locate class
    'PatchEmbed'") and no documented way prepared an image."""
    snippet = _readme_snippet()
    statements = [
        line
        for line in snippet.splitlines()
        if line.strip() and not line.startswith((" ", "import ", "from "))
    ]
    assert len(statements) <= 5, statements  # "in five lines"
    expected = re.search(r"# (\d)\s*$", snippet.strip()).group(1)
    done = subprocess.run(
        [sys.executable, "-c", snippet],
        cwd=ROOT,
        env={**os.environ, "KERAS_BACKEND": keras.backend.backend()},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == expected == "3"


def test_keras_swin_predict_reads_the_trained_model(capsys):
    status = main(
        [
            "predict",
            str(DIGITS / "3.png"),
            "--weights",
            str(DIGITS / "model.keras"),
        ]
    )
    assert status == 0
    out = capsys.readouterr().out
    best = next(ln for ln in out.splitlines() if ln.strip().startswith("1."))
    assert best.split()[1] == "3", out


@pytest.mark.parametrize("name", ["model.keras", "3.png"])
def test_fixtures_are_small(name):
    assert (DIGITS / name).stat().st_size < 2_000_000
