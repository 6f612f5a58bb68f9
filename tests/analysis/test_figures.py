"""The analysis figures: each writes a readable PNG from tiny arrays.

matplotlib only, backend-independent: tested in the TensorFlow run.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from helpers import BACKEND

from keras_swin.analysis import WindowLayout, figures

pytestmark = pytest.mark.skipif(
    BACKEND != "tensorflow",
    reason="matplotlib code, backend-independent: tested in the TensorFlow run",
)


def check_png(path, folder):
    from matplotlib.image import imread

    assert os.path.isfile(path)
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert os.path.getsize(path) > 5_000  # more than an empty canvas
    pixels = imread(path)
    assert pixels.ndim == 3 and min(pixels.shape[:2]) >= 200
    assert float(pixels[..., :3].std()) > 0.01  # something was drawn
    # Written atomically: no temporary left beside it.
    assert not [n for n in os.listdir(folder) if n.startswith(".")]


def test_every_figure_writes_a_png(tmp_path):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)
    written = []

    written.append(
        figures.plot_attention_distance(
            {"a": rng.random((3, 2)) * 20, "b": [rng.random(2), rng.random(4)]},
            tmp_path / "distance.png",
        )
    )
    written.append(
        figures.plot_rollout_overlays(
            np.stack([image, image[::-1]]),
            rng.random((2, 4, 4)),
            tmp_path / "rollout.png",
            titles=["one", "two"],
        )
    )
    layouts = [
        WindowLayout("layers_0_blocks_1", 0, 1, 8, 8, 4, 2, 8, 8, 4, 32, 32),
        WindowLayout("layers_1_blocks_1", 1, 1, 4, 4, 4, 0, 4, 4, 8, 32, 32),
    ]
    written.append(
        figures.plot_swin_query_attention(
            image.astype(np.float32) / 255,
            [rng.random((2, 8, 8)), rng.random((4, 4))],
            layouts,
            (12, 20),
            tmp_path / "swin_query.png",
        )
    )
    written.append(
        figures.plot_position_embedding_similarity(
            rng.uniform(-1, 1, (3, 4, 3, 4)), tmp_path / "pos_sim.png"
        )
    )
    written.append(
        figures.plot_embedding_filters(
            rng.normal(size=(5, 4, 4, 3)),
            tmp_path / "filters.png",
            explained_variance=np.linspace(0.3, 0.1, 5),
        )
    )
    assert written == [
        str(tmp_path / name)
        for name in (
            "distance.png",
            "rollout.png",
            "swin_query.png",
            "pos_sim.png",
            "filters.png",
        )
    ]
    for path in written:
        check_png(path, tmp_path)


def test_figure_input_errors(tmp_path):
    layout = WindowLayout("b", 0, 0, 2, 2, 2, 0, 2, 2, 4, 8, 8)
    with pytest.raises(ValueError, match=r"expected \(2, 2\)"):
        figures.plot_swin_query_attention(
            np.zeros((8, 8)),
            [np.zeros((3, 3))],
            [layout],
            (0, 0),
            tmp_path / "x.png",
        )
    with pytest.raises(ValueError, match="one layout per map"):
        figures.plot_swin_query_attention(
            np.zeros((8, 8)), [], [layout], (0, 0), tmp_path / "x.png"
        )
    with pytest.raises(ValueError, match=r"expected \(gh, gw, gh, gw\)"):
        figures.plot_position_embedding_similarity(
            np.zeros((2, 2, 3, 3)), tmp_path / "x.png"
        )
    with pytest.raises(ValueError, match="one \\(h, w\\) map per image"):
        figures.plot_rollout_overlays(
            np.zeros((2, 8, 8, 3)), np.zeros((3, 2, 2)), tmp_path / "x.png"
        )
    assert not os.listdir(tmp_path)


def test_images_and_maps_share_pixel_edge_coordinates():
    # Pixel (y, x) covers [x, x + 1) x [y, y + 1) in the image as in the
    # overlays' extent (0, W, H, 0): a map lines up to the pixel. The
    # default imshow extent (-0.5, W - 0.5, H - 0.5, -0.5) would be half a
    # pixel off the overlay.
    plt = figures.pyplot()
    fig, ax = plt.subplots()
    try:
        figures._show_image(ax, np.zeros((6, 10, 3), np.uint8))
        assert tuple(ax.images[0].get_extent()) == (0, 10, 6, 0)
    finally:
        plt.close(fig)
