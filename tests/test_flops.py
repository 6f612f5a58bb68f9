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

# Swin V2: the official repository's model zoo (ImageNet-1K and the
# 22K -> 1K fine-tunes), GFLOPs as multiply-adds.
_T = dict(embed_dim=96, depths=(2, 2, 6, 2))
_S = dict(embed_dim=96, depths=(2, 2, 18, 2))
_B = dict(embed_dim=128, depths=(2, 2, 18, 2))
_L = dict(embed_dim=192, depths=(2, 2, 18, 2))
SWINV2_REPORTED = [
    (dict(_T, window_size=8, image_size=256), 5.9),
    (dict(_S, window_size=8, image_size=256), 11.5),
    (dict(_B, window_size=8, image_size=256), 20.3),
    (dict(_T, window_size=16, image_size=256), 6.6),
    (dict(_S, window_size=16, image_size=256), 12.6),
    (dict(_B, window_size=16, image_size=256), 21.8),
    (dict(_B, window_size=24, image_size=384), 54.7),
    (dict(_L, window_size=16, image_size=256), 47.5),
    (dict(_L, window_size=24, image_size=384), 115.4),
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


@pytest.mark.parametrize("kwargs,reported", SWINV2_REPORTED)
def test_swinv2_flops_match_the_official_numbers(kwargs, reported):
    flops = swin_flops(**kwargs, version=2) / 1e9
    assert flops == pytest.approx(reported, abs=0.06)


def test_swin_flops_refuse_an_unknown_version():
    with pytest.raises(ValueError, match="version must be 1 or 2"):
        swin_flops(version=3)


@pytest.mark.parametrize("kwargs,reported", VIT_REPORTED)
def test_vit_flops_match_reported_numbers(kwargs, reported):
    assert vit_flops(**kwargs) / 1e9 == pytest.approx(reported, abs=0.06)


def test_swin_flops_grow_linearly_and_vit_quadratically():
    swin = [swin_flops(image_size=s, window_size=7) for s in (224, 448)]
    vit = [vit_flops(image_size=s) for s in (224, 448)]
    assert 3.9 < swin[1] / swin[0] < 4.2  # 4x pixels, ~4x cost
    assert vit[1] / vit[0] > 4.4  # attention grows with tokens^2
