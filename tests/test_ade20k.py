"""ADE20K class names, palette, colour maps and label summaries.

numpy code, backend-independent: tested in the PyTorch run. Expected
values are copied from mmsegmentation's `mmseg/datasets/ade.py` and the
Places Challenge `instanceInfo100_train.txt`, or worked out by hand.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from helpers import BACKEND

from keras_swin import ade20k

pytestmark = pytest.mark.skipif(
    BACKEND != "torch",
    reason="numpy code, backend-independent: tested in the PyTorch run",
)


def test_class_names_follow_mmsegmentation():
    names = ade20k.class_names()
    assert len(names) == 150 and len(set(names)) == 150
    # mmseg ADE20KDataset.CLASSES, spot checks ('bed ' without its space).
    assert names[:8] == [
        "wall",
        "building",
        "sky",
        "floor",
        "tree",
        "ceiling",
        "road",
        "bed",
    ]
    assert names[12] == "person" and names[20] == "car"
    assert names[44] == "chest of drawers"
    assert names[-3:] == ["glass", "clock", "flag"]
    names.append("changed")  # a copy: the table is not modified
    assert len(ade20k.class_names()) == 150


def test_palette_is_mmsegmentations():
    colours = ade20k.palette()
    assert colours.shape == (150, 3) and colours.dtype == np.uint8
    assert colours[0].tolist() == [120, 120, 120]  # wall
    assert colours[2].tolist() == [6, 230, 230]  # sky
    assert colours[12].tolist() == [150, 5, 61]  # person
    assert colours[149].tolist() == [92, 0, 255]  # flag
    # The published palette repeats one colour (road, skyscraper).
    assert colours[6].tolist() == colours[48].tolist() == [140, 140, 140]
    assert len({tuple(c) for c in colours.tolist()}) == 149
    np.testing.assert_array_equal(ade20k.palette(150), colours)


def test_other_class_counts_get_mmsegmentations_seeded_palette():
    # mmseg: np.random.seed(42); np.random.randint(0, 255, size=(K, 3)).
    state = np.random.get_state()
    np.random.seed(42)
    expected = np.random.randint(0, 255, size=(7, 3))
    np.random.set_state(state)
    colours = ade20k.palette(7)
    assert colours.dtype == np.uint8
    np.testing.assert_array_equal(colours, expected)
    np.testing.assert_array_equal(ade20k.palette(7), colours)
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="positive integer"):
            ade20k.palette(bad)


def test_colorize_by_hand():
    labels = np.array([[[0, 2], [255, 1]]])
    out = ade20k.colorize(labels)
    assert out.shape == (1, 2, 2, 3) and out.dtype == np.uint8
    assert out[0].tolist() == [
        [[120, 120, 120], [6, 230, 230]],
        [[0, 0, 0], [180, 120, 120]],
    ]
    custom = np.array([[1, 2, 3], [4, 5, 6], [7, 8, 9]])
    assert ade20k.colorize(labels[0], palette=custom).tolist() == [
        [[1, 2, 3], [7, 8, 9]],
        [[0, 0, 0], [4, 5, 6]],
    ]
    with pytest.raises(ValueError, match="label 150 has no colour"):
        ade20k.colorize(np.array([[150, 0]]))
    with pytest.raises(ValueError, match="label -1 has no colour"):
        ade20k.colorize(np.array([[-1, 0]]))
    with pytest.raises(ValueError, match="argmax"):
        ade20k.colorize(np.array([[0.5, 1.0]]))
    with pytest.raises(ValueError, match=r"\(K, 3\)"):
        ade20k.colorize(labels, palette=np.zeros((3, 4)))
    # With no ignore label, 255 needs a colour like any other label.
    with pytest.raises(ValueError, match="label 255"):
        ade20k.colorize(labels, ignore_index=None)


def test_overlay_by_hand():
    image = np.full((2, 2, 3), 100, np.uint8)
    labels = np.array([[0, 255], [2, 0]])
    out = ade20k.overlay(image, labels, alpha=0.25)
    assert out.dtype == np.uint8
    # 0.75 * 100 + 0.25 * 120 = 105 (wall); sky: 0.75 * 100 + 0.25 *
    # (6, 230, 230) = (76.5, 132.5, 132.5) -> rounded half to even.
    assert out[0, 0].tolist() == [105, 105, 105]
    assert out[0, 1].tolist() == [100, 100, 100]  # ignored: the image
    assert out[1, 0].tolist() == [76, 132, 132]
    np.testing.assert_array_equal(ade20k.overlay(image, labels, 0.0), image)
    with pytest.raises(ValueError, match="alpha"):
        ade20k.overlay(image, labels, alpha=1.5)
    with pytest.raises(ValueError, match=r"\(\.\.\., H, W, 3\)"):
        ade20k.overlay(image[:1], labels)


def test_decode_segmentation_by_hand():
    labels = np.array(
        [
            [[3, 3, 3], [1, 1, 255]],  # 3: 3/6, 1: 2/6
            [[5, 2, 5], [2, 0, 0]],  # three ties of 2/6
        ]
    )
    names = ["a", "b", "c", "d", "e", "f"]
    decoded = ade20k.decode_segmentation(labels, class_names=names)
    assert decoded == [
        [(3, "d", 0.5), (1, "b", 2 / 6)],
        [(0, "a", 2 / 6), (2, "c", 2 / 6), (5, "f", 2 / 6)],
    ]
    assert ade20k.decode_segmentation(labels, names, top=1) == [
        [(3, "d", 0.5)],
        [(0, "a", 2 / 6)],
    ]
    # One (H, W) map is a batch of one; default names are ADE20K's.
    assert ade20k.decode_segmentation(np.array([[12, 12], [2, 12]])) == [
        [(12, "person", 0.75), (2, "sky", 0.25)]
    ]
    with pytest.raises(ValueError, match="label 6 has no name"):
        ade20k.decode_segmentation(np.array([[6]]), class_names=names)
    with pytest.raises(ValueError, match="top"):
        ade20k.decode_segmentation(labels, names, top=0)


def test_instance_category_map():
    table = ade20k.instance_category_map()
    names = ade20k.class_names()
    assert table.shape == (256,) and table.dtype == np.uint8
    assert table[0] == 255 and table[101] == 255 and table[255] == 255
    assert np.count_nonzero(table != 255) == 100
    # instanceInfo100_train.txt: 1 bed, 2 windowpane, 4 person, 9 car,
    # 58 television receiver, 100 flag.
    for category, name in [
        (1, "bed"),
        (2, "windowpane"),
        (4, "person"),
        (9, "car"),
        (58, "television receiver"),
        (100, "flag"),
    ]:
        assert names[table[category]] == name
    # The categories keep the ADE20K order.
    assert np.all(np.diff(table[1:101].astype(int)) > 0)


def test_reachable_from_the_package_without_keras():
    import keras_swin

    assert keras_swin.ade20k is ade20k
    code = (
        "import sys, keras_swin.ade20k as a; a.palette(); "
        "assert 'keras' not in sys.modules, 'keras imported'; "
        "assert 'tensorflow' not in sys.modules, 'tensorflow imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
