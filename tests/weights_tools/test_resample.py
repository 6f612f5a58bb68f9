"""weights_tools.resample against torch, scipy and a torch rewrite of timm.

torch computes in the input's precision. On float32 noise its own result
moves by up to ~2e-6 (relative) from the exact one when downsampling, so
the float32 inputs are checked against torch run in float64 on the same
values: the exact answer for those inputs.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import scipy.ndimage
import torch
import torch.nn.functional as F
from helpers import BACKEND

from weights_tools.resample import (
    bicubic_resize,
    geometric_table_resize,
    linear_zoom,
    resize_position_embedding,
    resize_relative_position_table,
)

#: Backend-independent (weights_tools needs no Keras backend): one leg.
pytestmark = pytest.mark.skipif(
    BACKEND != "torch",
    reason="backend-independent; runs in the PyTorch leg",
)

SIZES = [
    ((14, 14), (24, 24)),
    ((13, 13), (23, 23)),  # a 7 -> 12 window's table
    ((24, 24), (14, 14)),
    ((14, 14), (16, 20)),
]


def _close(actual, reference, rtol=1e-6):
    """max |actual - reference| <= rtol * max(1, max |reference|)."""
    actual = np.asarray(actual, dtype=np.float64)
    reference = np.asarray(reference, dtype=np.float64)
    assert actual.shape == reference.shape
    diff = np.abs(actual - reference).max()
    bound = rtol * max(1.0, np.abs(reference).max())
    assert diff <= bound, f"max diff {diff:.3g} > {bound:.3g}"


def _torch_bicubic(nchw, size, antialias):
    """torch interpolate in float64, the exact result for `nchw`."""
    x = torch.from_numpy(np.asarray(nchw, dtype=np.float64))
    out = F.interpolate(
        x, size=size, mode="bicubic", align_corners=False, antialias=antialias
    )
    return out.numpy()


@pytest.mark.parametrize("antialias", [False, True])
@pytest.mark.parametrize(("old", "new"), SIZES)
def test_bicubic_resize_matches_torch(rng, old, new, antialias):
    nchw = rng.standard_normal((2, 3, *old)).astype(np.float32)
    reference = _torch_bicubic(nchw, new, antialias)
    out = bicubic_resize(nchw, new, axes=(2, 3), antialias=antialias)
    assert out.dtype == np.float32
    _close(out, reference)
    # Channels-last layout, default axes.
    hwc = bicubic_resize(nchw[0].transpose(1, 2, 0), new, antialias=antialias)
    _close(hwc, reference[0].transpose(1, 2, 0))
    # In float64 the two agree to rounding.
    out64 = bicubic_resize(
        nchw.astype(np.float64), new, axes=(-2, -1), antialias=antialias
    )
    assert out64.dtype == np.float64
    _close(out64, reference, rtol=1e-12)


def test_bicubic_resize_small_and_odd_sizes(rng):
    for old, new in [((7, 5), (3, 11)), ((1, 3), (4, 2)), ((30, 30), (7, 4))]:
        x = rng.standard_normal((1, 2, *old))
        for antialias in (False, True):
            out = bicubic_resize(x, new, axes=(2, 3), antialias=antialias)
            _close(out, _torch_bicubic(x, new, antialias), rtol=1e-12)


def test_bicubic_resize_same_size_is_a_copy(rng):
    x = rng.standard_normal((5, 6, 2)).astype(np.float32)
    for antialias in (False, True):
        out = bicubic_resize(x, (5, 6), antialias=antialias)
        assert out is not x and out.dtype == x.dtype
        np.testing.assert_array_equal(out, x)


def test_bicubic_resize_rejects_bad_arguments():
    with pytest.raises(ValueError, match="at least 2 axes"):
        bicubic_resize(np.zeros(4), (2, 2))
    with pytest.raises(ValueError, match="two different axes"):
        bicubic_resize(np.zeros((4, 4)), (2, 2), axes=(0, -2))
    with pytest.raises(ValueError, match="out of range"):
        bicubic_resize(np.zeros((4, 4)), (2, 2), axes=(0, 2))
    with pytest.raises(ValueError, match="two positive ints"):
        bicubic_resize(np.zeros((4, 4)), (0, 2))


@pytest.mark.parametrize(
    ("old", "new"),
    [((14, 14), (24, 24)), ((24, 24), (14, 14)), ((14, 14), (16, 20))],
)
def test_linear_zoom_matches_scipy(rng, old, new):
    x = rng.standard_normal((*old, 5)).astype(np.float32)
    zoom = (new[0] / old[0], new[1] / old[1], 1)
    reference = scipy.ndimage.zoom(x, zoom, order=1)
    assert reference.shape == (*new, 5)
    out = linear_zoom(x, new)
    assert out.dtype == np.float32
    _close(out, reference)


def test_linear_zoom_edge_sizes_match_scipy(rng):
    for old, new in [((5, 5), (1, 3)), ((1, 4), (3, 7)), ((6, 2), (6, 5))]:
        x = rng.standard_normal(old)
        zoom = (new[0] / old[0], new[1] / old[1])
        reference = scipy.ndimage.zoom(x, zoom, order=1)
        assert reference.shape == new
        _close(linear_zoom(x, new), reference, rtol=1e-12)
    np.testing.assert_array_equal(
        linear_zoom(np.array([[0.0, 1.0]]), (1, 3)), [[0.0, 0.5, 1.0]]
    )


def _timm_table_resize(table, new_window, dtype=torch.float32):
    """timm 1.0 resize_rel_pos_bias_table (no scipy), rewritten in torch."""
    values = torch.from_numpy(table)
    rows, heads = values.shape
    src = round(rows**0.5)
    dst = 2 * new_window - 1
    if src == dst:
        return table
    left, right = 1.01, 1.5
    while right - left > 1e-6:
        q = (left + right) / 2.0
        if (1.0 - q ** (src // 2)) / (1.0 - q) > dst // 2:
            right = q
        else:
            left = q
    dis, cur = [], 1
    for i in range(src // 2):
        dis.append(cur)
        cur += q ** (i + 1)
    points = torch.tensor([-d for d in reversed(dis)] + [0] + dis, dtype=dtype)
    offsets = torch.arange(-(dst // 2.0), dst // 2.0 + 0.1, 1.0, dtype=dtype)
    grid = torch.meshgrid(offsets, offsets, indexing="ij")
    idxs, dists, overall = [], [], []
    for x in grid:
        right_idx = torch.bucketize(x.contiguous(), points)
        right_idx[right_idx >= len(points)] = len(points) - 1
        left_idx = (right_idx - 1).clamp(0, len(points) - 1)
        dist_left = x - points[left_idx]
        dist_right = points[right_idx] - x
        dist_left[dist_left < 0] = 0.0
        dist_right[dist_right < 0] = 0.0
        both = (dist_left == 0) & (dist_right == 0)
        dist_left[both] = 1.0
        dist_right[both] = 1.0
        idxs.append((left_idx, right_idx))
        dists.append((dist_left, dist_right))
        overall.append(dist_left + dist_right)
    denominator = torch.prod(torch.stack(overall), dim=0)
    columns = []
    for head in range(heads):
        z = values[:, head].reshape(src, src).to(dtype)
        numerator = 0.0
        for corner in itertools.product([0, 1], repeat=2):
            at = tuple(idx[c] for c, idx in zip(corner, idxs, strict=True))
            weights = [d[1 - c] for c, d in zip(corner, dists, strict=True)]
            numerator = numerator + z[at] * torch.prod(
                torch.stack(weights), dim=0
            )
        columns.append((numerator / denominator).reshape(-1, 1))
    return torch.cat(columns, dim=-1).numpy()


@pytest.mark.parametrize(("old", "new"), [(7, 12), (12, 7), (7, 8), (2, 7)])
def test_geometric_table_resize_matches_timm(rng, old, new):
    table = rng.standard_normal(((2 * old - 1) ** 2, 4)).astype(np.float32)
    out = geometric_table_resize(table, new)
    assert out.shape == ((2 * new - 1) ** 2, 4)
    assert out.dtype == np.float32
    _close(out, _timm_table_resize(table, new))
    out64 = geometric_table_resize(table.astype(np.float64), new)
    reference64 = _timm_table_resize(
        table.astype(np.float64), new, torch.float64
    )
    _close(out64, reference64, rtol=1e-12)
    # Same entry point through resize_relative_position_table.
    np.testing.assert_array_equal(
        resize_relative_position_table(table, new, method="timm"), out
    )


def test_geometric_table_resize_same_size_is_a_copy(rng):
    table = rng.standard_normal((169, 3)).astype(np.float32)
    out = geometric_table_resize(table, 7)
    assert out is not table
    np.testing.assert_array_equal(out, table)


@pytest.mark.parametrize(("old", "new"), [(7, 12), (12, 7)])
def test_relative_position_table_bicubic_matches_official_swin(rng, old, new):
    table = rng.standard_normal(((2 * old - 1) ** 2, 3)).astype(np.float32)
    side, new_side = 2 * old - 1, 2 * new - 1
    # Official Swin load_pretrained, in float64.
    grid = torch.from_numpy(table.astype(np.float64)).permute(1, 0)
    grid = grid.reshape(1, 3, side, side)
    resized = F.interpolate(grid, size=(new_side, new_side), mode="bicubic")
    reference = resized.reshape(3, new_side**2).permute(1, 0).numpy()
    out = resize_relative_position_table(table, new)
    assert out.dtype == np.float32
    _close(out, reference)


def test_relative_position_table_errors():
    with pytest.raises(ValueError, match=r"odd square.*\(168, 3\)"):
        resize_relative_position_table(np.zeros((168, 3)), 12)
    with pytest.raises(ValueError, match=r"odd square.*\(144, 3\)"):
        geometric_table_resize(np.zeros((144, 3)), 12)
    with pytest.raises(ValueError, match=r"\(169,\)"):
        resize_relative_position_table(np.zeros(169), 12)
    with pytest.raises(ValueError, match="'bicubic', 'timm'"):
        resize_relative_position_table(np.zeros((169, 3)), 12, method="x")


def _grid_reference(grid_hwd, new, method):
    """The reference code's own resize of a (h, w, D) grid, float64."""
    if method == "zoom":
        zoom = (new[0] / grid_hwd.shape[0], new[1] / grid_hwd.shape[1], 1)
        return scipy.ndimage.zoom(grid_hwd.astype(np.float64), zoom, order=1)
    nchw = grid_hwd.transpose(2, 0, 1)[None]
    out = _torch_bicubic(nchw, new, method == "bicubic_antialias")
    return out[0].transpose(1, 2, 0)


@pytest.mark.parametrize("method", ["zoom", "bicubic", "bicubic_antialias"])
def test_position_embedding_matches_references(rng, method):
    dim, prefix = 5, 1
    embedding = rng.standard_normal((1, prefix + 14 * 14, dim))
    embedding = embedding.astype(np.float32)
    out = resize_position_embedding(
        embedding, (24, 24), num_prefix_tokens=prefix, method=method
    )
    assert out.shape == (1, prefix + 24 * 24, dim)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out[:, :prefix], embedding[:, :prefix])
    grid = embedding[0, prefix:].reshape(14, 14, dim)
    reference = _grid_reference(grid, (24, 24), method)
    _close(out[0, prefix:], reference.reshape(-1, dim))


def test_position_embedding_non_square_grids_and_prefix(rng):
    dim, prefix = 4, 5  # class token + 4 registers
    embedding = rng.standard_normal((1, prefix + 6 * 9, dim))
    out = resize_position_embedding(
        embedding,
        (8, 4),
        num_prefix_tokens=prefix,
        old_grid=(6, 9),
        method="bicubic_antialias",
    )
    assert out.shape == (1, prefix + 32, dim)
    np.testing.assert_array_equal(out[:, :prefix], embedding[:, :prefix])
    grid = embedding[0, prefix:].reshape(6, 9, dim)
    reference = _grid_reference(grid, (8, 4), "bicubic_antialias")
    _close(out[0, prefix:], reference.reshape(-1, dim), rtol=1e-12)
    # Swin's absolute_pos_embed has no prefix; int grid means square.
    swin = rng.standard_normal((1, 56 * 56, 3))
    assert resize_position_embedding(swin, 96).shape == (1, 96 * 96, 3)


def test_position_embedding_errors():
    embedding = np.zeros((1, 1 + 14 * 14, 8))
    with pytest.raises(ValueError, match=r"L=197 rows.*not a square"):
        resize_position_embedding(embedding, (24, 24))
    with pytest.raises(ValueError, match=r"old_grid=\(14, 15\).*L=197"):
        resize_position_embedding(
            embedding, 24, num_prefix_tokens=1, old_grid=(14, 15)
        )
    with pytest.raises(
        ValueError, match="'zoom', 'bicubic', 'bicubic_antialias'"
    ):
        resize_position_embedding(
            embedding, 24, num_prefix_tokens=1, method="bilinear"
        )
    with pytest.raises(ValueError, match=r"\(1, L, D\)"):
        resize_position_embedding(np.zeros((197, 8)), 24)
