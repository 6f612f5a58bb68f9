"""Analytic FLOP counts against the numbers the papers report."""

import pytest

from keras_swin.flops import swin_flops, vit_flops

# Swin paper, Table 1 (GFLOPs as multiply-adds).
SWIN_PAPER = [
    (dict(), 4.5),
    (dict(depths=(2, 2, 18, 2)), 8.7),
    (dict(embed_dim=128, depths=(2, 2, 18, 2)), 15.4),
    (
        dict(
            embed_dim=128, depths=(2, 2, 18, 2), window_size=12, image_size=384
        ),
        47.0,
    ),
    (dict(embed_dim=192, depths=(2, 2, 18, 2)), 34.5),
    (
        dict(
            embed_dim=192, depths=(2, 2, 18, 2), window_size=12, image_size=384
        ),
        103.9,
    ),
]

# DeiT Table 1 (Ti, S, B at 224) and the usual ViT-L/H figures.
VIT_REPORTED = [
    (dict(hidden_size=192, mlp_dim=768), 1.3),
    (dict(hidden_size=384, mlp_dim=1536), 4.6),
    (dict(), 17.6),
    (dict(hidden_size=1024, num_layers=24, mlp_dim=4096), 61.6),
]


@pytest.mark.parametrize("kwargs,paper", SWIN_PAPER)
def test_swin_flops_match_the_paper(kwargs, paper):
    assert swin_flops(**kwargs) / 1e9 == pytest.approx(paper, abs=0.11)


@pytest.mark.parametrize("kwargs,reported", VIT_REPORTED)
def test_vit_flops_match_reported_numbers(kwargs, reported):
    assert vit_flops(**kwargs) / 1e9 == pytest.approx(reported, abs=0.06)


def test_swin_flops_grow_linearly_and_vit_quadratically():
    swin = [swin_flops(image_size=s, window_size=7) for s in (224, 448)]
    vit = [vit_flops(image_size=s) for s in (224, 448)]
    assert 3.9 < swin[1] / swin[0] < 4.2  # 4x pixels, ~4x cost
    assert vit[1] / vit[0] > 4.4  # attention grows with tokens^2
