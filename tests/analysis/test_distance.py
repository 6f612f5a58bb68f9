"""Mean attention distance (ViT and Swin) on small hand-computed cases.

numpy code, backend-independent: tested in the TensorFlow run. Every
expected number is worked out by hand in the comments.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers import BACKEND

from keras_swin.analysis import (
    TokenLayout,
    WindowLayout,
    mean_attention_distance,
    mean_attention_distance_per_block,
    swin_mean_attention_distance,
    swin_mean_attention_distance_per_block,
)

pytestmark = pytest.mark.skipif(
    BACKEND != "tensorflow",
    reason="numpy code, backend-independent: tested in the TensorFlow run",
)

# 2x2 patch grid of 4-pixel patches, centres (2, 2), (2, 6), (6, 2), (6, 6).
GRID = TokenLayout(grid=(2, 2), patch_size=4, num_prefix_tokens=0)
WITH_CLS = TokenLayout(grid=(2, 2), patch_size=4, num_prefix_tokens=1)
# Patch k's horizontal neighbour (0<->1, 2<->3) and diagonal opposite.
NEIGHBOUR = [1, 0, 3, 2]
OPPOSITE = [3, 2, 1, 0]


def one_hot(targets, n=4):
    return np.eye(n)[targets]  # (n, n): row q is one-hot on targets[q]


def test_one_hot_neighbour_is_one_patch_away():
    probs = one_hot(NEIGHBOUR)[None, None]  # (B=1, heads=1, 4, 4)
    np.testing.assert_allclose(mean_attention_distance(probs, GRID), [4.0])


def test_diagonal_is_patch_times_root_two():
    probs = one_hot(OPPOSITE)[None]  # (heads=1, 4, 4), unbatched
    np.testing.assert_allclose(
        mean_attention_distance(probs, GRID), [4 * math.sqrt(2)]
    )


def test_heads_and_batch():
    # Head 0 attends to itself (0 px). Head 1 is uniform: from any patch
    # (0 + 4 + 4 + 4*sqrt(2)) / 4 = 2 + sqrt(2) px.
    head0 = np.eye(4)
    head1 = np.full((4, 4), 0.25)
    image0 = np.stack([head0, head1])
    # Image 1: head 0 to the neighbour (4 px), head 1 to itself (0 px).
    image1 = np.stack([one_hot(NEIGHBOUR), np.eye(4)])
    probs = np.stack([image0, image1])  # (2, 2, 4, 4)
    np.testing.assert_allclose(
        mean_attention_distance(probs, GRID),
        [(0 + 4) / 2, (2 + math.sqrt(2) + 0) / 2],
    )


def cls_probs():
    # Patch queries: half on the class token, half on the neighbour.
    probs = np.zeros((5, 5))
    probs[1:, 0] = 0.5
    for q, k in enumerate(NEIGHBOUR):
        probs[1 + q, 1 + k] = 0.5
    # The class token's own row looks far; it is not a query.
    probs[0, 4] = 1.0
    return probs[None, None]


def test_prefix_tokens_are_left_out_and_renormalised():
    probs = cls_probs()
    # Renormalised: all patch mass on the neighbour -> 4 px.
    np.testing.assert_allclose(mean_attention_distance(probs, WITH_CLS), [4.0])
    # Raw: 0.5 * 4 px; the class token's 0.5 counts as distance 0.
    np.testing.assert_allclose(
        mean_attention_distance(probs, WITH_CLS, renormalize=False), [2.0]
    )


def test_query_with_all_mass_on_the_class_token_counts_zero():
    probs = np.zeros((5, 5))
    probs[:, 0] = 1.0
    probs[1, 0], probs[1, 2] = 0.0, 1.0  # patch 0 -> patch 1: 4 px
    # Mean over the 4 patch queries: (4 + 0 + 0 + 0) / 4.
    np.testing.assert_allclose(
        mean_attention_distance(probs[None], WITH_CLS), [1.0]
    )


def test_per_block():
    blocks = [
        np.eye(4)[None],
        one_hot(OPPOSITE)[None],
        one_hot(NEIGHBOUR)[None],
    ]
    np.testing.assert_allclose(
        mean_attention_distance_per_block(blocks, GRID),
        [[0.0], [4 * math.sqrt(2)], [4.0]],
    )


def test_vit_errors():
    with pytest.raises(ValueError, match=r"expected \(B, heads, 5, 5\)"):
        mean_attention_distance(np.zeros((1, 1, 4, 4)), WITH_CLS)
    with pytest.raises(ValueError, match="does not match the token layout"):
        mean_attention_distance(np.zeros((4, 4)), GRID)
    with pytest.raises(ValueError, match="different head counts"):
        mean_attention_distance_per_block(
            [np.zeros((1, 4, 4)), np.zeros((2, 4, 4))], GRID
        )
    with pytest.raises(ValueError, match="empty"):
        mean_attention_distance_per_block([], GRID)


# A 3x3 map of stride 4 padded to 4x4, window 2, shift 1. Rolled
# position (r, c) holds original ((r + 1) % 4, (c + 1) % 4); rows/cols 3
# are padding. Real tokens per window (token index: original position):
#   window 0: 0:(1,1) 1:(1,2) 2:(2,1) 3:(2,2)
#   window 1: 1:(1,0) 3:(2,0)            (0, 2: padding)
#   window 2: 2:(0,1) 3:(0,2)            (0, 1: padding)
#   window 3: 3:(0,0)                    (0, 1, 2: padding)
SHIFTED = WindowLayout("layers_0_blocks_1", 0, 1, 3, 3, 2, 1, 4, 4, 4, 12, 12)


def test_swin_uniform_windows_shift_undone_padding_dropped():
    # Every query (padding ones too) uniform over its window's 4 keys.
    probs = np.full((1, 4, 1, 4, 4), 0.25)
    # Renormalised over the real keys, per query, in tokens:
    #   window 0: (0 + 1 + 1 + sqrt(2)) / 4, 4 queries;
    #   windows 1, 2: (0 + 1) / 2, 2 queries each; window 3: 0.
    # Sum 4 * (2 + sqrt(2)) / 4 + 4 * 0.5 = 4 + sqrt(2) tokens over 9
    # queries, times the stride 4.
    expected = 4 * (4 + math.sqrt(2)) / 9
    np.testing.assert_allclose(
        swin_mean_attention_distance(probs, SHIFTED), [expected]
    )
    # Raw weights: windows 1 and 2 give 0.25 * 1 token per query.
    raw = 4 * ((2 + math.sqrt(2)) + 4 * 0.25) / 9
    np.testing.assert_allclose(
        swin_mean_attention_distance(probs, SHIFTED, renormalize=False), [raw]
    )


def test_swin_padding_queries_are_ignored():
    probs = np.zeros((2, 4, 2, 4, 4))
    probs[..., np.arange(4), np.arange(4)] = 1.0  # everyone to itself: 0
    # Padding queries (window 3's tokens 0-2) look at the far corner.
    probs[:, 3, :, :3, :] = 0.0
    probs[:, 3, :, :3, 3] = 1.0
    np.testing.assert_allclose(
        swin_mean_attention_distance(probs, SHIFTED), [0.0, 0.0]
    )


def test_swin_wrapped_pairs_use_the_distance_in_the_image():
    # 4x4 map, no padding, window 2, shift 1: window 3 holds (3,3), (3,0),
    # (0,3), (0,0). Token (0,0) (index 3) attends to (3,3) (index 0): in
    # the image that is 3*sqrt(2) tokens, 12*sqrt(2) px at stride 4. The
    # other 15 queries attend to themselves.
    layout = WindowLayout("b", 0, 1, 4, 4, 2, 1, 4, 4, 4, 16, 16)
    probs = np.zeros((1, 4, 1, 4, 4))
    probs[..., np.arange(4), np.arange(4)] = 1.0
    probs[0, 3, 0, 3] = [1.0, 0.0, 0.0, 0.0]
    np.testing.assert_allclose(
        swin_mean_attention_distance(probs, layout), [12 * math.sqrt(2) / 16]
    )


def test_swin_unshifted_stride():
    # 2x2 map at stride 8, one window: one-hot to the horizontal
    # neighbour -> 8 px; head 1 to the vertical one, also 8 px, head 2 to
    # the diagonal: 8*sqrt(2).
    layout = WindowLayout(
        "layers_1_blocks_0", 1, 0, 2, 2, 2, 0, 2, 2, 8, 16, 16
    )
    heads = np.stack(
        [one_hot(NEIGHBOUR), one_hot([2, 3, 0, 1]), one_hot(OPPOSITE)]
    )
    probs = heads[None, None]  # (1, 1, 3, 4, 4)
    np.testing.assert_allclose(
        swin_mean_attention_distance(probs, layout),
        [8.0, 8.0, 8 * math.sqrt(2)],
    )


def test_swin_errors():
    with pytest.raises(ValueError, match=r"nW=4"):
        swin_mean_attention_distance(np.zeros((1, 3, 1, 4, 4)), SHIFTED)
    with pytest.raises(ValueError, match="not one Swin block's attention"):
        swin_mean_attention_distance(np.zeros((4, 1, 4, 4)), SHIFTED)
    with pytest.raises(ValueError, match="not one Swin block's attention"):
        swin_mean_attention_distance(np.zeros((1, 4, 1, 9, 9)), SHIFTED)
    bad = WindowLayout("b", 0, 0, 3, 3, 2, 0, 3, 4, 4, 12, 12)
    with pytest.raises(ValueError, match="Inconsistent WindowLayout 'b'"):
        swin_mean_attention_distance(np.zeros((1, 2, 1, 4, 4)), bad)


def test_swin_per_block_in_depth_order():
    # Names that sort wrongly as strings ("blocks_10" < "blocks_2").
    def layout(stage, block):
        name = f"layers_{stage}_blocks_{block}"
        return WindowLayout(name, stage, block, 2, 2, 2, 0, 2, 2, 8, 16, 16)

    layouts = {
        lay.name: lay for lay in (layout(1, 10), layout(0, 1), layout(1, 2))
    }
    # One-hot to the horizontal neighbour: 8 px; to itself: 0 px.
    near = one_hot(NEIGHBOUR)[None, None, None]
    itself = np.eye(4)[None, None, None]
    probs = {
        "layers_1_blocks_10": near,
        "layers_1_blocks_2": itself,
        "layers_0_blocks_1": near,
    }
    out = swin_mean_attention_distance_per_block(probs, layouts)
    assert list(out) == [
        "layers_0_blocks_1",
        "layers_1_blocks_2",
        "layers_1_blocks_10",
    ]
    np.testing.assert_allclose(list(out.values()), [[8.0], [0.0], [8.0]])
    with pytest.raises(ValueError, match=r"No WindowLayout for block\(s\)"):
        swin_mean_attention_distance_per_block({"x": near}, layouts)
