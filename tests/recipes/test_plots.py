"""The run's figures, checked on the matplotlib objects (not pixels)."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.colors import to_hex

from keras_swin.recipes.plots import (
    WRONG_COLOR,
    plot_attention_maps,
    plot_learning_curves,
)
from keras_swin.recipes.train import DIGITS_RECIPE, build_model

RED = to_hex(WRONG_COLOR)


def _no_marker(line):
    return line.get_marker() in (None, "", " ", "None", "none")


def test_one_epoch_of_learning_curves_shows_its_points(tmp_path):
    """A single epoch was a line of one point: invisible without markers."""
    history = {
        "loss": [2.4],
        "val_loss": [2.1],
        "accuracy": [0.2],
        "val_accuracy": [0.3],
    }
    fig = plot_learning_curves(history, None)
    panels = [ax for ax in fig.axes if ax.get_lines()]
    assert len(panels) == 2
    for ax in panels:
        lines = ax.get_lines()
        assert len(lines) == 2  # train and validation
        for line in lines:
            assert not _no_marker(line), line.get_label()
            assert list(line.get_xdata()) == [1]
        # Whole epochs on the axis, not 0.96 ... 1.04.
        assert all(float(t).is_integer() for t in ax.get_xticks())
    plot_learning_curves(history, tmp_path / "curves.png")
    assert (tmp_path / "curves.png").read_bytes()[:4] == b"\x89PNG"


@pytest.fixture(scope="module")
def digits_model():
    return build_model("swin_digits", DIGITS_RECIPE, 10, 16)


def test_attention_figure_gives_true_and_predicted_labels(digits_model):
    rng = np.random.default_rng(0)
    inputs = rng.normal(size=(3, 16, 16, 3)).astype("float32")
    raw = rng.integers(0, 256, (3, 8, 8, 1), dtype=np.uint8)
    predicted = np.argmax(digits_model.predict(inputs, verbose=0), -1)
    # Image 1 is mislabelled on purpose: its prediction is wrong.
    labels = [predicted[0], (predicted[1] + 1) % 10, predicted[2]]
    fig = plot_attention_maps(digits_model, inputs, raw, None, labels=labels)
    grid = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    images, maps = grid[:3], grid[3:6]
    for i, ax in enumerate(images):
        assert ax.get_title() == f"true {labels[i]} / pred {predicted[i]}"
    wrong = [to_hex(ax.title.get_color()) == RED for ax in images]
    assert wrong == [False, True, False]
    # The wrong one is framed in red, image and map; the others are not.
    for ax in (images[1], maps[1]):
        assert ax.axison
        assert {to_hex(s.get_edgecolor()) for s in ax.spines.values()} == {RED}
    assert not images[0].axison and not maps[2].axison
    # One colour bar, one scale shared by every map.
    colorbars = [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]
    assert len(colorbars) == 1
    assert colorbars[0].get_ylabel() == "share of attention"
    scales = {ax.get_images()[-1].get_clim() for ax in maps}
    assert len(scales) == 1


def test_attention_figure_without_labels_and_errors(digits_model, tmp_path):
    inputs = np.zeros((2, 16, 16, 3), "float32")
    raw = np.zeros((2, 8, 8), np.uint8)
    fig = plot_attention_maps(digits_model, inputs, raw, None)
    titles = [ax.get_title() for ax in fig.axes[:2]]
    assert all(t.startswith("pred ") for t in titles), titles
    with pytest.raises(ValueError, match="1 labels for 2 images"):
        plot_attention_maps(digits_model, inputs, raw, None, labels=[3])
    plot_attention_maps(
        digits_model, inputs, raw, tmp_path / "a.png", labels=[1, 2]
    )
    assert (tmp_path / "a.png").read_bytes()[:4] == b"\x89PNG"
