"""Position-embedding similarity and patch-embedding components by hand.

numpy code, backend-independent: tested in the TensorFlow run.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers import BACKEND

from keras_swin.analysis import (
    patch_embedding_components,
    position_embedding_similarity,
)

pytestmark = pytest.mark.skipif(
    BACKEND != "tensorflow",
    reason="numpy code, backend-independent: tested in the TensorFlow run",
)

R = 1 / math.sqrt(2)


def test_cosine_similarity_grid():
    # Class token, then patches (0,0)=[1,0], (0,1)=[0,1], (1,0)=[1,1],
    # (1,1)=[-1,0] (lengths differ: cosine ignores them).
    embedding = np.array([[9, 9], [2, 0], [0, 1], [3, 3], [-1, 0]], float)
    sim = position_embedding_similarity(embedding[None], (2, 2), 1)
    assert sim.shape == (2, 2, 2, 2)
    np.testing.assert_allclose(sim[0, 0], [[1, 0], [R, -1]], atol=1e-12)
    np.testing.assert_allclose(sim[1, 0], [[R, R], [1, -R]], atol=1e-12)
    np.testing.assert_allclose(sim[0, 1], [[0, 1], [R, 0]], atol=1e-12)


def test_zero_embedding_has_zero_similarity():
    sim = position_embedding_similarity(
        np.array([[0.0, 0.0], [1.0, 2.0]]), (1, 2)
    )
    np.testing.assert_allclose(sim[0, 0], [[0.0, 0.0]])
    np.testing.assert_allclose(sim[0, 1], [[0.0, 1.0]])


def test_similarity_errors():
    with pytest.raises(ValueError, match=r"expected \(5, D\) or \(1, 5, D\)"):
        position_embedding_similarity(np.zeros((4, 3)), (2, 2), 1)


def test_components_by_hand():
    # p=2, C=1, D=4 filters, flattened (i, j, c): pixel (0,1) takes
    # [1, -1, 3, -3] (variance 20), pixel (1,0) takes [.5, .5, -.5, -.5]
    # (variance 1, orthogonal), pixel (1,1) a constant 5 (removed by the
    # centring). PC1 = pixel (0,1), PC2 = pixel (1,0); ratios 20/21, 1/21.
    kernel = np.zeros((2, 2, 1, 4))
    kernel[0, 1, 0] = [1, -1, 3, -3]
    kernel[1, 0, 0] = [0.5, 0.5, -0.5, -0.5]
    kernel[1, 1, 0] = 5.0
    components, ratio = patch_embedding_components(kernel, count=2)
    assert components.shape == (2, 2, 2, 1)
    first, second = np.zeros((2, 2, 1)), np.zeros((2, 2, 1))
    first[0, 1, 0], second[1, 0, 0] = 1.0, 1.0
    np.testing.assert_allclose(components[0], first, atol=1e-12)
    np.testing.assert_allclose(components[1], second, atol=1e-12)
    np.testing.assert_allclose(ratio, [20 / 21, 1 / 21])


def test_components_sign_and_channels():
    # C=2: filters +-(2, 0) and +-(0, 1) per channel pair; PC1 = channel 0
    # (variance 8), PC2 = channel 1 (variance 2); the largest entry of each
    # component is positive even when the data are negated.
    kernel = np.zeros((1, 1, 2, 4))
    kernel[0, 0, 0, :2] = [2.0, -2.0]
    kernel[0, 0, 1, 2:] = [1.0, -1.0]
    for sign in (1.0, -1.0):
        components, ratio = patch_embedding_components(sign * kernel, 2)
        np.testing.assert_allclose(
            components.reshape(2, 2), np.eye(2), atol=1e-12
        )
        np.testing.assert_allclose(ratio, [0.8, 0.2])


def test_component_errors():
    with pytest.raises(ValueError, match=r"expected 1 <= count <= 4"):
        patch_embedding_components(np.zeros((2, 2, 1, 8)), count=5)
    with pytest.raises(ValueError, match=r"expected \(p, p, C, D\)"):
        patch_embedding_components(np.zeros((4, 4, 8)))
