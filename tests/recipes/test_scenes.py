"""The generated segmentation scenes: determinism, labels, classes."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest
from matplotlib.path import Path

from keras_swin.recipes.scenes import (
    SCENE_CLASSES,
    make_scene,
    make_scenes,
    scene_splits,
    shape_mask,
)

pytestmark = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="backend-independent numpy; runs in the TensorFlow leg",
)


def _polygon_mask(vertices_xy, size):
    """Pixels whose centre lies inside a polygon, by matplotlib's Path."""
    yy, xx = np.mgrid[:size, :size] + 0.5
    points = np.stack([xx.ravel(), yy.ravel()], 1)
    return Path(vertices_xy).contains_points(points).reshape(size, size)


def _reference_mask(shape, size):
    """The shape's pixels from its own geometry, written independently."""
    cy, cx = shape["center"]
    r, a = shape["size"], shape["angle"]
    yy, xx = np.mgrid[:size, :size] + 0.5
    distance = np.hypot(yy - cy, xx - cx)
    if shape["kind"] == 1:
        return distance <= r
    if shape["kind"] == 4:
        return (distance <= r) & (distance >= 0.55 * r)
    if shape["kind"] == 2:  # corners (+-r, +-r) rotated by a
        corners = [(r, r), (-r, r), (-r, -r), (r, -r)]
    else:  # vertices on the circumcircle, 120 degrees apart
        corners = [
            (
                r * math.cos(2 * math.pi * k / 3),
                r * math.sin(2 * math.pi * k / 3),
            )
            for k in range(3)
        ]
    rotated = [
        (
            cx + u * math.cos(a) - v * math.sin(a),
            cy + u * math.sin(a) + v * math.cos(a),
        )
        for u, v in corners
    ]
    return _polygon_mask(rotated, size)


def test_the_same_seed_gives_the_same_scenes():
    a = make_scenes(6, 32, seed=3)
    b = make_scenes(6, 32, seed=3)
    c = make_scenes(6, 32, seed=4)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])
    assert a[0].dtype == np.uint8 and a[1].dtype == np.uint8
    assert a[0].shape == (6, 32, 32, 3) and a[1].shape == (6, 32, 32)


def test_labels_are_the_painted_shapes():
    rng = np.random.default_rng(7)
    checked = set()
    for index in range(60):
        # The default scenes, and overlapping rotated shapes.
        harder = dict(overlap=True, rotate=True) if index % 2 else {}
        image, labels, shapes = make_scene(rng, image_size=48, **harder)
        expected = np.zeros((48, 48), np.uint8)
        colours = np.zeros((48, 48, 3), np.int64) - 1
        for shape in shapes:
            mask = _reference_mask(shape, 48)
            expected[mask] = shape["kind"]
            colours[mask] = shape["colour"]
            checked.add(shape["kind"])
        # Pixel centres exactly on an edge are the only possible
        # disagreement between the two geometries: none in these scenes.
        np.testing.assert_array_equal(labels, expected)
        inside = expected > 0
        np.testing.assert_array_equal(image[inside], colours[inside])
    assert checked == {1, 2, 3, 4}


def test_default_shapes_are_whole_and_apart():
    rng = np.random.default_rng(3)
    for _ in range(30):
        _, labels, shapes = make_scene(rng, image_size=48)
        assert 1 <= len(shapes) <= 4
        for shape in shapes:
            # Whole: every pixel of the shape's own geometry is labelled.
            mask = _reference_mask(shape, 48)
            assert (labels[mask] == shape["kind"]).all()
            # Upright: squares at 0, triangles with a vertex straight up.
            expected = -math.pi / 2 if shape["kind"] == 3 else 0.0
            if shape["kind"] in (2, 3):
                assert shape["angle"] == expected
        # Apart: no two shapes' pixels touch (4-neighbourhood).
        masks = [_reference_mask(shape, 48) for shape in shapes]
        for i, a in enumerate(masks):
            grown = a.copy()
            grown[1:] |= a[:-1]
            grown[:-1] |= a[1:]
            grown[:, 1:] |= a[:, :-1]
            grown[:, :-1] |= a[:, 1:]
            for b in masks[i + 1 :]:
                assert not (grown & b).any()


def test_shape_mask_areas():
    # Areas by formula, on a large grid where pixel counting is close.
    size = 400
    r = 100.0
    areas = {
        1: math.pi * r**2,
        2: 4 * r**2,
        3: 3 * math.sqrt(3) / 4 * r**2,
        4: math.pi * r**2 * (1 - 0.55**2),
    }
    for kind, area in areas.items():
        mask = shape_mask(kind, (200.0, 200.0), r, 0.3, size, size)
        assert abs(mask.sum() - area) / area < 0.01, (kind, mask.sum(), area)
    with pytest.raises(ValueError, match="kind must be 1"):
        shape_mask(5, (4, 4), 2, 0.0, 8, 8)


def test_every_class_is_present_and_colour_says_nothing_of_the_class():
    images, labels = make_scenes(300, 48, seed=0)
    share = np.bincount(labels.ravel(), minlength=5) / labels.size
    assert len(share) == len(SCENE_CLASSES) == 5
    assert share[0] > 0.5  # background
    assert np.all(share[1:] > 0.02), share
    # Every class draws its colours from the same distribution: over
    # many shapes, each class's mean colour is near the mean of uniform
    # 0-255 colours (127.5; the standard error is about 4 here) and the
    # classes' means are close to each other.
    rng = np.random.default_rng(1)
    colours = {k: [] for k in range(1, 5)}
    for _ in range(1000):
        for shape in make_scene(rng, image_size=32)[2]:
            colours[shape["kind"]].append(shape["colour"])
    means = np.array([np.mean(colours[k], 0) for k in range(1, 5)])
    assert min(len(c) for c in colours.values()) > 250
    assert np.all(np.abs(means - 127.5) < 15), means
    assert np.ptp(means, axis=0).max() < 15, means


def test_splits_are_disjoint_and_independent_of_each_other():
    small = scene_splits({"train": 4, "validation": 3, "test": 3}, 32)
    large = scene_splits({"train": 8, "test": 3}, 32)
    assert {k: len(v[0]) for k, v in small.items()} == {
        "train": 4,
        "validation": 3,
        "test": 3,
    }
    # Growing the training split leaves the test split as it was.
    np.testing.assert_array_equal(small["test"][0], large["test"][0])
    np.testing.assert_array_equal(small["train"][0], large["train"][0][:4])
    assert not np.array_equal(small["train"][0][:3], small["test"][0])
    with pytest.raises(ValueError, match="unknown split"):
        scene_splits({"holdout": 2})
    with pytest.raises(ValueError, match="image_size >= 8"):
        make_scenes(2, 4)
