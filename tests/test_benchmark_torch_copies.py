"""benchmarks/torch_copies.py: the attention copies, before and after.

Speed is only reported, never asserted; the copies are counted: the old
path (Keras' dot_product_attention) copies q, k, v and the output of
every block, the strided-view path none of them, with the same logits.
"""

from __future__ import annotations

import pytest
from helpers import BACKEND

pytestmark = pytest.mark.skipif(
    BACKEND != "torch",
    reason="the PyTorch backend's attention path: torch leg only",
)


@pytest.fixture
def tiny(monkeypatch):
    from benchmarks import bench

    monkeypatch.setitem(
        bench.MODELS,
        "vit_tiny",
        {
            "family": "vit",
            "title": "ViT tiny",
            "config": dict(
                patch_size=8,
                hidden_size=32,
                num_layers=3,
                num_heads=2,
                mlp_dim=64,
            ),
        },
    )
    monkeypatch.setitem(
        bench.MODELS,
        "swin_tiny",
        {
            "family": "swin",
            "title": "Swin tiny",
            "config": dict(
                embed_dim=16,
                depths=(2, 2),
                # Two heads or more: with one, the (B, N, 1, d) transposes
                # are contiguous already and the old path copies less.
                num_heads=(2, 2),
                window_size=4,
                patch_size=2,
            ),
        },
    )


def test_the_view_path_drops_four_copies_per_block_with_the_same_logits(
    tiny, tmp_path
):
    from benchmarks import torch_copies

    rows = torch_copies.measure(
        ["vit_tiny", "swin_tiny"], [2], size=32, min_time=0.0
    )
    assert [(r["model"], r["batch"]) for r in rows] == [
        ("vit_tiny", 2),
        ("swin_tiny", 2),
    ]
    for row, blocks in zip(rows, (3, 4), strict=True):
        # q, k, v made contiguous and the output's copy, in every block.
        assert row["before_copies"] - row["after_copies"] == 4 * blocks, row
        assert row["max_abs_difference"] == 0.0
        assert row["rounds"] >= 3
        for impl in torch_copies.IMPLEMENTATIONS:
            assert row[f"{impl}_images_per_s"] > 0
    table = torch_copies.markdown(
        rows,
        {"cpu": "Test CPU", "cpu_count": 2, "versions": {"torch": "x"}},
        32,
    )
    assert "| ViT tiny | 2 |" in table and "| Swin tiny | 2 |" in table
    assert "Test CPU, 2 cores, torch x, float32, 32 px." in table


def test_refuses_another_backend_or_model(tiny, capsys):
    from benchmarks import torch_copies

    with pytest.raises(SystemExit):
        torch_copies.main(["--models", "resnet50"])
    assert "unknown models ['resnet50']" in capsys.readouterr().err
