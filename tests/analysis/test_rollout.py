"""Attention rollout on 2-token cases multiplied out by hand.

numpy code, backend-independent: tested in the TensorFlow run.
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import BACKEND

from keras_swin.analysis import TokenLayout, attention_rollout, rollout_map

pytestmark = pytest.mark.skipif(
    BACKEND != "tensorflow",
    reason="numpy code, backend-independent: tested in the TensorFlow run",
)

TO_1 = np.array([[0.0, 1.0], [0.0, 1.0]])  # everyone attends to token 1
TO_0 = np.array([[1.0, 0.0], [1.0, 0.0]])


def test_one_block_adds_the_residual():
    # A = 0.5 * W + 0.5 * I
    np.testing.assert_allclose(
        attention_rollout([TO_1[None]]), [[0.5, 0.5], [0.0, 1.0]]
    )


def test_blocks_multiply_last_on_the_left():
    # A1 = [[.5, .5], [0, 1]], A2 = [[1, 0], [.5, .5]];
    # A2 @ A1 = [[.5, .5], [.25, .75]] (A1 @ A2 would be [[.75, .25],
    # [.5, .5]]).
    out = attention_rollout([TO_1[None, None], TO_0[None, None]])
    np.testing.assert_allclose(out, [[[0.5, 0.5], [0.25, 0.75]]])


def test_head_fusions():
    heads = np.stack([np.eye(2), np.eye(2)[::-1]])[None]  # (1, 2, 2, 2)
    # mean W = all 0.5 -> A = [[.75, .25], [.25, .75]]
    np.testing.assert_allclose(
        attention_rollout([heads], "mean"), [[[0.75, 0.25], [0.25, 0.75]]]
    )
    # max W = all 1 -> 0.5 W + 0.5 I = [[1, .5], [.5, 1]], rows / 1.5
    np.testing.assert_allclose(
        attention_rollout([heads], "max"), [[[2 / 3, 1 / 3], [1 / 3, 2 / 3]]]
    )
    # min W = 0 -> 0.5 I, renormalised to I
    np.testing.assert_allclose(attention_rollout([heads], "min"), [np.eye(2)])


def test_discard_ratio_drops_the_lowest_weights():
    w = np.array([[0.7, 0.3], [0.4, 0.6]])
    # int(0.25 * 4) = 1 entry dropped: 0.3 -> W' = [[.7, 0], [.4, .6]];
    # A = [[.85, 0], [.2, .8]] -> rows renormalised [[1, 0], [.2, .8]].
    np.testing.assert_allclose(
        attention_rollout([w[None]], discard_ratio=0.25),
        [[1.0, 0.0], [0.2, 0.8]],
    )
    # The images of a batch are filtered on their own.
    batch = np.stack([w, w[::-1]])[:, None]  # (2, 1, 2, 2)
    out = attention_rollout([batch], discard_ratio=0.25)
    # Image 1: W = [[.4, .6], [.7, .3]], drops the 0.3 -> A = [[.7, .3],
    # [.35, .5]] -> [[.7, .3], [.35 / .85, .5 / .85]].
    np.testing.assert_allclose(out[1], [[0.7, 0.3], [0.35 / 0.85, 0.5 / 0.85]])


def test_rows_sum_to_one():
    rng = np.random.default_rng(0)
    probs = [rng.random((2, 3, 5, 5)) for _ in range(4)]
    for fusion in ("mean", "max", "min"):
        out = attention_rollout(probs, fusion, discard_ratio=0.5)
        np.testing.assert_allclose(out.sum(-1), np.ones((2, 5)))


LAYOUT = TokenLayout(grid=(2, 2), patch_size=16, num_prefix_tokens=1)


def test_rollout_map():
    rollout = np.eye(5)
    rollout[0] = [0.2, 0.1, 0.4, 0.2, 0.1]
    np.testing.assert_allclose(
        rollout_map(rollout, LAYOUT), [[0.25, 1.0], [0.5, 0.25]]
    )
    np.testing.assert_allclose(
        rollout_map(rollout[None], LAYOUT, normalize="sum"),
        [[[0.125, 0.5], [0.25, 0.125]]],
    )
    np.testing.assert_allclose(
        rollout_map(rollout, LAYOUT, normalize="none"), [[0.1, 0.4], [0.2, 0.1]]
    )
    # token=None: the mean of the 4 patch rows of eye(4) = 0.25 each.
    np.testing.assert_allclose(
        rollout_map(rollout, LAYOUT, token=None, normalize="none"),
        np.full((2, 2), 0.25),
    )
    # Patch token 2's row (index 3): itself only.
    np.testing.assert_allclose(
        rollout_map(rollout, LAYOUT, token=3), [[0.0, 0.0], [1.0, 0.0]]
    )


def test_errors():
    with pytest.raises(ValueError, match="Unknown head_fusion 'sum'"):
        attention_rollout([TO_1[None]], "sum")
    with pytest.raises(ValueError, match=r"outside \[0, 1\)"):
        attention_rollout([TO_1[None]], discard_ratio=1.0)
    with pytest.raises(ValueError, match="empty"):
        attention_rollout([])
    with pytest.raises(ValueError, match="Block 1's probs have shape"):
        attention_rollout([TO_1[None], np.eye(3)[None]])
    with pytest.raises(ValueError, match=r"expected \(B, 5, 5\)"):
        rollout_map(np.eye(4), LAYOUT)
    with pytest.raises(ValueError, match="token 5 is out of range"):
        rollout_map(np.eye(5), LAYOUT, token=5)
    with pytest.raises(ValueError, match="Unknown normalize"):
        rollout_map(np.eye(5), LAYOUT, normalize="l2")
