"""Swin attention in image coordinates, on hand-worked window layouts.

numpy code, backend-independent: tested in the TensorFlow run.
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import BACKEND

from keras_swin.analysis import (
    WindowLayout,
    query_token,
    stitch_windows,
    swin_query_attention,
    window_token_positions,
)

pytestmark = pytest.mark.skipif(
    BACKEND != "tensorflow",
    reason="numpy code, backend-independent: tested in the TensorFlow run",
)

# A 3x3 map of stride 4 (a 12x12 image) padded to 4x4, window 2, shift 1:
# rolled position (r, c) holds original ((r + 1) % 4, (c + 1) % 4).
SHIFTED = WindowLayout("layers_0_blocks_1", 0, 1, 3, 3, 2, 1, 4, 4, 4, 12, 12)
# Original (row, col) of each window's tokens, worked out by hand; row or
# col 3 is padding.
POSITIONS = [
    [(1, 1), (1, 2), (2, 1), (2, 2)],  # rolled rows 0-1, cols 0-1
    [(1, 3), (1, 0), (2, 3), (2, 0)],  # rolled rows 0-1, cols 2-3
    [(3, 1), (3, 2), (0, 1), (0, 2)],  # rolled rows 2-3, cols 0-1
    [(3, 3), (3, 0), (0, 3), (0, 0)],  # rolled rows 2-3, cols 2-3
]


def test_window_token_positions_by_hand():
    rows, cols, valid = window_token_positions(SHIFTED)
    expected = np.array(POSITIONS)
    np.testing.assert_array_equal(rows, expected[..., 0])
    np.testing.assert_array_equal(cols, expected[..., 1])
    np.testing.assert_array_equal(
        valid, (expected[..., 0] < 3) & (expected[..., 1] < 3)
    )


def test_stitch_undoes_shift_and_padding():
    values = 10.0 * np.arange(4)[:, None] + np.arange(4)  # window*10 + token
    stitched = stitch_windows(values[None], SHIFTED)
    # From POSITIONS: (1,1)=0 (1,2)=1 (2,1)=2 (2,2)=3, (1,0)=11 (2,0)=13,
    # (0,1)=22 (0,2)=23, (0,0)=33.
    expected = [[33, 22, 23], [11, 0, 1], [13, 2, 3]]
    np.testing.assert_array_equal(stitched, [expected])
    # Middle axes (e.g. heads) ride along: (B=2, nW, heads=2, M*M).
    batch = np.stack([values, -values], axis=1)[None].repeat(2, axis=0)
    batch[1] *= 2
    out = stitch_windows(batch, SHIFTED)
    assert out.shape == (2, 2, 3, 3)
    np.testing.assert_array_equal(out[0, 1], -np.array(expected))
    np.testing.assert_array_equal(out[1, 0], 2 * np.array(expected))


def test_stitch_without_shift_is_window_reverse():
    layout = WindowLayout(
        "layers_0_blocks_0", 0, 0, 4, 4, 2, 0, 4, 4, 4, 16, 16
    )
    stitched = stitch_windows(np.arange(16.0).reshape(1, 4, 4), layout)
    expected = [[0, 1, 4, 5], [2, 3, 6, 7], [8, 9, 12, 13], [10, 11, 14, 15]]
    np.testing.assert_array_equal(stitched, [expected])


@pytest.fixture
def probs():
    # (B=2, nW=4, heads=2, 4, 4), random: only the query's row may matter.
    return np.random.default_rng(0).random((2, 4, 2, 4, 4))


def test_query_in_a_full_window(probs):
    # Pixel (10, 10) -> token (2, 2) -> rolled (1, 1): window 0, token 3;
    # its keys sit at (1,1), (1,2), (2,1), (2,2).
    out = swin_query_attention(probs, SHIFTED, (10, 10))
    row = probs[:, 0, :, 3, :]  # (B, heads, 4)
    expected = np.zeros((2, 2, 3, 3))
    expected[..., 1, 1], expected[..., 1, 2] = row[..., 0], row[..., 1]
    expected[..., 2, 1], expected[..., 2, 2] = row[..., 2], row[..., 3]
    np.testing.assert_array_equal(out, expected)


def test_query_in_a_wrapped_padded_window(probs):
    # Pixel (5, 1) -> token (1, 0) -> rolled (0, 3): window 1, token 1;
    # keys 1 and 3 are (1, 0) and (2, 0), keys 0 and 2 padding (dropped).
    out = swin_query_attention(probs, SHIFTED, (5.5, 1.0))
    row = probs[:, 1, :, 1, :]
    expected = np.zeros((2, 2, 3, 3))
    expected[..., 1, 0], expected[..., 2, 0] = row[..., 1], row[..., 3]
    np.testing.assert_array_equal(out, expected)
    # Pixel (1, 2) -> token (0, 0) -> rolled (3, 3): window 3, token 3,
    # the only real token of its window.
    out = swin_query_attention(probs, SHIFTED, (1, 2))
    expected = np.zeros((2, 2, 3, 3))
    expected[..., 0, 0] = probs[:, 3, :, 3, 3]
    np.testing.assert_array_equal(out, expected)


def test_query_token():
    assert query_token(SHIFTED, (0, 0)) == (0, 0)
    assert query_token(SHIFTED, (11.9, 4.0)) == (2, 1)
    with pytest.raises(ValueError, match="outside the 12x12 input image"):
        query_token(SHIFTED, (12, 0))
    with pytest.raises(ValueError, match="outside the 12x12 input image"):
        query_token(SHIFTED, (0, -1))
    # A map that covers less than the image (no padding to the stride).
    short = WindowLayout("b", 0, 0, 2, 2, 2, 0, 2, 2, 4, 10, 10)
    with pytest.raises(ValueError, match=r"token \(2, 0\), outside 'b'"):
        query_token(short, (9, 0))


def test_shape_errors(probs):
    with pytest.raises(ValueError, match=r"expected \(B, nW=4, heads, 4, 4\)"):
        swin_query_attention(probs[0], SHIFTED, (0, 0))
    with pytest.raises(ValueError, match=r"nW=4"):
        swin_query_attention(probs[:, :3], SHIFTED, (0, 0))
    with pytest.raises(ValueError, match=r"M\*M=4"):
        stitch_windows(np.zeros((1, 4, 9)), SHIFTED)
    with pytest.raises(ValueError, match="does not match 'layers_0_blocks_1'"):
        stitch_windows(np.zeros((4, 4)), SHIFTED)


@pytest.mark.parametrize(
    "height, width, window, shift", [(7, 5, 3, 1), (5, 8, 4, 2), (6, 6, 3, 0)]
)
def test_positions_match_pad_roll_partition(height, width, window, shift):
    # Reference: what the block does to its map, on a map of token ids:
    # pad bottom/right (-1), roll by -shift, cut into windows row-major.
    hp, wp = -(-height // window) * window, -(-width // window) * window
    ids = np.full((hp, wp), -1)
    ids[:height, :width] = np.arange(height * width).reshape(height, width)
    rolled = np.roll(ids, (-shift, -shift), axis=(0, 1))
    windows = (
        rolled.reshape(hp // window, window, wp // window, window)
        .transpose(0, 2, 1, 3)
        .reshape(-1, window * window)
    )
    layout = WindowLayout(
        "b",
        0,
        1,
        height,
        width,
        window,
        shift,
        hp,
        wp,
        4,
        4 * height,
        4 * width,
    )
    rows, cols, valid = window_token_positions(layout)
    np.testing.assert_array_equal(valid, windows >= 0)
    np.testing.assert_array_equal((rows * width + cols)[valid], windows[valid])
    # Stitching the ids back gives the map.
    stitched = stitch_windows(windows[None].astype(float), layout)
    np.testing.assert_array_equal(stitched[0], ids[:height, :width])
