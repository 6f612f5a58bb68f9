"""`keras-swin analyze`: the papers' analyses of a model as figures.

The analyses themselves are checked against hand-computed cases in
tests/analysis/ and the attention probabilities against Hugging Face on
every backend (tests/analysis/test_attention_outputs.py,
tests/models/test_vit_attention.py); here the command's plumbing, which
does not depend on the backend: it runs in the PyTorch leg only.
"""

import json
import math

import keras
import pytest
from helpers import golden

from keras_swin.cli import main

pytestmark = pytest.mark.skipif(
    keras.backend.backend() != "torch",
    reason="the command's plumbing is backend-independent; runs in the "
    "PyTorch leg",
)

DIGIT = str(golden("digits/3.png"))
SWIN = str(golden("digits/model.keras"))
VIT = str(golden("hf/vit_tiny_h64_224"))
PNG = b"\x89PNG\r\n\x1a\n"


def _png(path) -> bool:
    return path.is_file() and path.read_bytes()[:8] == PNG


def test_swin_figures_and_summary(tmp_path, capsys):
    out = tmp_path / "swin"
    assert main(
        ["analyze", DIGIT, "--weights", SWIN, "--output", str(out),
         "--query", "8,4"]
    ) == 0  # fmt: skip
    printed = capsys.readouterr().out
    for name in (
        "attention_distance.png",
        "swin_query_attention.png",
        "embedding_filters.png",
    ):
        assert _png(out / name), name
        assert f"wrote {out / name}" in printed
    assert not (out / "rollout.png").exists()
    assert "left out rollout.png: rollout needs global attention" in printed
    summary = json.loads((out / "summary.json").read_text())
    assert summary["input_size"] == [16, 16]
    assert summary["query_yx"] == [8, 4]
    assert summary["images"] == ["3.png"]
    distances = summary["mean_attention_distance_px"]
    # swin_digits: depths (2, 2), heads (3, 6), window 4, patch 2.
    assert list(distances) == [
        "layers_0_blocks_0",
        "layers_0_blocks_1",
        "layers_1_blocks_0",
        "layers_1_blocks_1",
    ]
    assert [len(v) for v in distances.values()] == [3, 3, 6, 6]
    # Inside a 4 x 4 window no two tokens are further apart than the
    # diagonal 3 * sqrt(2) tokens: 2 px per token in stage 0, 4 in 1.
    for name, heads in distances.items():
        stride = 2 if name.startswith("layers_0") else 4
        assert all(0 < d <= 3 * math.sqrt(2) * stride + 1e-9 for d in heads)
    assert set(summary["left_out"]) == {
        "rollout.png",
        "position_embedding_similarity.png",
    }


def test_vit_figures(tmp_path, capsys):
    out = tmp_path / "vit"
    assert main(
        ["analyze", DIGIT, "--weights", VIT, "--output", str(out),
         "--head-fusion", "max"]
    ) == 0  # fmt: skip
    for name in (
        "attention_distance.png",
        "rollout.png",
        "position_embedding_similarity.png",
        "embedding_filters.png",
    ):
        assert _png(out / name), name
    summary = json.loads((out / "summary.json").read_text())
    assert summary["input_size"] == [224, 224]
    assert summary["head_fusion"] == "max"
    assert summary["left_out"] == {}
    assert summary["query_yx"] is None  # no query for a ViT
    distances = summary["mean_attention_distance_px"]
    config = json.loads((golden("hf/vit_tiny_h64_224") / "config.json")
                        .read_text())  # fmt: skip
    assert len(distances) == config["num_hidden_layers"]
    diagonal = 13 * 16 * math.sqrt(2)  # patch centres of a 14 x 14 grid
    for heads in distances.values():
        assert len(heads) == config["num_attention_heads"]
        assert all(0 < d <= diagonal for d in heads)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--query", "16,0"], "query point (y=16, x=0) is outside the 16x16"),
        (["--image-size", "32"], "built for 16x16 images"),
    ],
)
def test_bad_request_is_one_line(extra, message, tmp_path, capsys):
    argv = ["analyze", DIGIT, "--weights", SWIN, "--output", str(tmp_path)]
    assert main(argv + extra) == 1
    assert message in capsys.readouterr().err


def test_missing_image_fails_before_loading(tmp_path, capsys):
    missing = str(tmp_path / "nope.png")
    argv = ["analyze", missing, "--weights", SWIN, "--output", str(tmp_path)]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "No such image file" in err and "nope.png" in err


def test_query_needs_two_numbers(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["analyze", DIGIT, "--weights", SWIN, "--output", "x",
              "--query", "5"])  # fmt: skip
    assert exit_.value.code == 2
    assert "must be Y,X" in capsys.readouterr().err
