"""The figures of `keras-swin analyze`, as PNG files.

Each function takes the numpy results of the analyses
(`keras_swin.analysis`), writes one PNG atomically (a temporary file
renamed into place, `keras_swin.utils.atomic_path`) and returns its
path. matplotlib is imported on the first call, with the Agg backend.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence

import numpy as np

from keras_swin.analysis.layout import WindowLayout
from keras_swin.utils import atomic_path


def pyplot():
    """matplotlib's pyplot on the Agg backend (files only, no display).

    Returns:
        The `matplotlib.pyplot` module.

    Example:
        >>> fig = pyplot().figure()
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_png(fig, path: str | os.PathLike) -> str:
    """Writes a figure to a PNG file atomically (a temporary, renamed).

    Args:
        fig: a matplotlib figure (left open).
        path: the PNG file.

    Returns:
        `path`, as a string.

    Example:
        >>> save_png(pyplot().figure(), "empty.png")
        'empty.png'
    """
    path = os.fspath(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    return path


def _save(plt, fig, path) -> str:
    try:
        return save_png(fig, path)
    finally:
        plt.close(fig)


def _display_image(image) -> np.ndarray:
    """(H, W, 3|1) or (H, W) -> displayable: uint8 as is, floats to [0, 1]."""
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[-1] != 3):
        raise ValueError(
            f"Image of shape {image.shape}; expected (H, W, 3), (H, W, 1) or "
            "(H, W)."
        )
    if image.dtype == np.uint8:
        return image
    image = image.astype(np.float64)
    low, high = float(image.min()), float(image.max())
    if low < 0.0 or high > 1.0:  # e.g. a normalised model input
        image = (image - low) / (high - low) if high > low else image * 0.0
    return image


def _show_image(ax, image: np.ndarray) -> None:
    """Draw `image` so pixel (y, x) covers [x, x + 1) x [y, y + 1).

    The same pixel-edge coordinates as the overlays' `extent`, so a map
    and the image it is laid on line up to the pixel.
    """
    ax.imshow(
        image,
        cmap="gray",
        extent=(0, image.shape[1], image.shape[0], 0),
        interpolation="nearest",
    )


def _series(distances) -> dict[str, list[np.ndarray]]:
    if isinstance(distances, Mapping):
        items = distances.items()
    else:
        items = [("", distances)]
    out = {}
    for label, blocks in items:
        blocks = [
            np.atleast_1d(np.asarray(b, dtype=np.float64)) for b in blocks
        ]
        if not blocks or any(b.ndim != 1 for b in blocks):
            raise ValueError(
                f"Distances of series {label!r}: expected (blocks, heads) or "
                "a list of (heads,) arrays, one per block."
            )
        out[str(label)] = blocks
    return out


def plot_attention_distance(
    distances,
    path: str | os.PathLike,
    *,
    title: str = "Mean attention distance per head",
    block_labels: Sequence[str] | None = None,
) -> str:
    """Attention distance vs depth, one dot per head (ViT paper, Fig. 7).

    Args:
        distances: (blocks, heads) array (`mean_attention_distance_per_
            block`), or a list with one (heads,) array per block (Swin,
            where the head count grows by stage), or a dict
            {series label: either} to compare models, drawn side by side
            in different colours with a legend.
        path: PNG file to write.
        title: the figure's title.
        block_labels: optional tick labels, one per block (e.g. the
            attention outputs' names); by default the block index.

    Returns:
        `path`, as a string.

    Example:
        >>> plot_attention_distance(np.array([[3.0, 9.0], [12.0, 20.0]]),
        ...                         "distance.png")
        'distance.png'
    """
    series = _series(distances)
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7.0, 4.5))
    width = 0.6 / len(series)
    for s, (label, blocks) in enumerate(series.items()):
        offset = (s - (len(series) - 1) / 2) * width if len(series) > 1 else 0
        xs = np.concatenate(
            [np.full(len(b), i + offset) for i, b in enumerate(blocks)]
        )
        ax.scatter(
            xs, np.concatenate(blocks), s=14, alpha=0.8, label=label or None
        )
    count = max(len(b) for b in series.values())
    if block_labels is not None:
        if len(block_labels) != count:
            raise ValueError(
                f"{len(block_labels)} block labels for {count} blocks."
            )
        ax.set_xticks(range(count))
        ax.set_xticklabels(block_labels, rotation=60, ha="right", fontsize=7)
    elif count <= 30:
        ax.set_xticks(range(count))
    ax.set_xlabel("Network depth (block index)")
    ax.set_ylabel("Mean attention distance (pixels)")
    ax.set_title(title)
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    if len(series) > 1:
        ax.legend(fontsize=8)
    fig.tight_layout()
    return _save(plt, fig, path)


def plot_rollout_overlays(
    images,
    maps,
    path: str | os.PathLike,
    *,
    titles: Sequence[str] | None = None,
    map_extent: tuple[float, float] | None = None,
    title: str = "Attention rollout (class token)",
    alpha: float = 0.5,
) -> str:
    """Images beside their attention-rollout maps (ViT paper, Figs. 6, 14).

    One row per image: the input, and the input under its map (upsampled
    bilinearly), with a colour bar.

    Args:
        images: (B, H, W, 3) or (B, H, W) images for display (uint8, or
            floats: values outside [0, 1] are rescaled), or one (H, W, 3).
        maps: (B, h, w) rollout maps (`rollout_map`), or one (h, w).
        path: PNG file to write.
        titles: optional one title per image.
        map_extent: (height, width) in pixels that the map covers, from
            the top-left corner (a ViT's h*p x w*p patch area); default
            the whole image.
        title: the figure's title.
        alpha: opacity of the map over the image.

    Returns:
        `path`, as a string.

    Example:
        >>> plot_rollout_overlays(np.zeros((32, 32, 3)), np.eye(2),
        ...                       "rollout.png")
        'rollout.png'
    """
    maps = np.asarray(maps, dtype=np.float64)
    if maps.ndim == 2:
        maps, images = maps[None], [images]
    if maps.ndim != 3 or len(images) != len(maps):
        raise ValueError(
            f"{len(images)} images and maps of shape {maps.shape}; expected "
            "one (h, w) map per image."
        )
    if titles is not None and len(titles) != len(maps):
        raise ValueError(f"{len(titles)} titles for {len(maps)} images.")
    plt = pyplot()
    fig, axes = plt.subplots(
        len(maps), 2, figsize=(6.4, 3.0 * len(maps)), squeeze=False
    )
    for i, (image, amap) in enumerate(zip(images, maps, strict=True)):
        image = _display_image(image)
        height, width = map_extent or image.shape[:2]
        left, right = axes[i]
        _show_image(left, image)
        left.set_title(titles[i] if titles else f"Image {i}", fontsize=9)
        _show_image(right, image)
        shown = right.imshow(
            amap,
            cmap="jet",
            alpha=alpha,
            extent=(0, width, height, 0),
            interpolation="bilinear",
        )
        right.set_xlim(0, image.shape[1])
        right.set_ylim(image.shape[0], 0)
        right.set_title("Rollout", fontsize=9)
        for ax in (left, right):
            ax.set_xlabel("x (pixels)", fontsize=8)
            ax.set_ylabel("y (pixels)", fontsize=8)
            ax.tick_params(labelsize=7)
        bar = fig.colorbar(shown, ax=right, fraction=0.046, pad=0.04)
        bar.set_label("Rollout weight", fontsize=8)
        bar.ax.tick_params(labelsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    return _save(plt, fig, path)


def plot_swin_query_attention(
    image,
    maps: Sequence,
    layouts: Sequence[WindowLayout],
    query_yx,
    path: str | os.PathLike,
    *,
    title: str | None = None,
    alpha: float = 0.55,
) -> str:
    """Swin attention of one query pixel, one panel per stage or block.

    Each panel shows the image under the attention the query's token gives
    to the tokens of its window (`swin_query_attention`, shift undone and
    padding removed), each token drawn over the stride x stride pixels it
    covers; the query is marked with a cross. Tokens with weight exactly
    0 (outside the window) are not coloured.

    Args:
        image: (H, W, 3) or (H, W) image for display.
        maps: one (H_i, W_i) map per panel, or (heads, H_i, W_i) (the
            heads are averaged), on each block's token map.
        layouts: the matching `WindowLayout`s (for the stride and the
            panel titles).
        query_yx: (y, x) of the query pixel in the input; the cross is
            drawn at its centre.
        path: PNG file to write.
        title: the figure's title; by default it names the query.
        alpha: opacity of the maps over the image.

    Returns:
        `path`, as a string.

    Example:
        >>> plot_swin_query_attention(img, [m0, m1], [l0, l1], (40, 60),
        ...                           "swin_query.png")
        'swin_query.png'
    """
    if len(maps) != len(layouts) or not len(maps):
        raise ValueError(
            f"{len(maps)} maps and {len(layouts)} layouts; expected one "
            "layout per map, at least one."
        )
    image = _display_image(image)
    y, x = (float(v) for v in query_yx)
    plt = pyplot()
    columns = min(len(maps), 4)
    rows = math.ceil(len(maps) / columns)
    fig, axes = plt.subplots(
        rows, columns, figsize=(3.6 * columns, 3.4 * rows), squeeze=False
    )
    for ax in axes.ravel()[len(maps) :]:
        ax.axis("off")
    for ax, amap, layout in zip(
        axes.ravel()[: len(maps)], maps, layouts, strict=True
    ):
        amap = np.asarray(amap, dtype=np.float64)
        if amap.ndim == 3:
            amap = amap.mean(axis=0)
        if amap.shape != (layout.height, layout.width):
            raise ValueError(
                f"Map of shape {amap.shape} for {layout.name!r}; expected "
                f"({layout.height}, {layout.width})."
            )
        _show_image(ax, image)
        shown = ax.imshow(
            # Exact zeros are the tokens outside the query's window (not
            # attended): left transparent, so the image shows there.
            np.ma.masked_equal(amap, 0.0),
            cmap="jet",
            alpha=alpha,
            extent=(
                0,
                layout.width * layout.stride,
                layout.height * layout.stride,
                0,
            ),
            interpolation="nearest",
        )
        # At the centre of the query pixel (pixel-edge coordinates).
        ax.plot(
            x + 0.5, y + 0.5, marker="x", color="white", markersize=10, mew=3
        )
        ax.plot(
            x + 0.5, y + 0.5, marker="x", color="black", markersize=8, mew=1.5
        )
        ax.set_xlim(0, image.shape[1])
        ax.set_ylim(image.shape[0], 0)
        ax.set_title(
            f"{layout.name}\nwindow {layout.window}, shift {layout.shift}, "
            f"stride {layout.stride}",
            fontsize=8,
        )
        ax.set_xlabel("x (pixels)", fontsize=8)
        ax.set_ylabel("y (pixels)", fontsize=8)
        ax.tick_params(labelsize=7)
        bar = fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.04)
        bar.set_label("Attention weight", fontsize=7)
        bar.ax.tick_params(labelsize=6)
    fig.suptitle(title or f"Swin attention of the query at (y={y:g}, x={x:g})")
    fig.tight_layout()
    return _save(plt, fig, path)


def plot_position_embedding_similarity(
    similarity,
    path: str | os.PathLike,
    *,
    title: str = "Position embedding similarity",
) -> str:
    """The cosine-similarity grid of the ViT paper's Figure 7 (centre).

    Panel (i, j) of the gh x gw grid shows the similarity of patch (i,
    j)'s position embedding with every patch's, as a gh x gw image; one
    colour bar for all panels, from -1 to 1.

    Args:
        similarity: (gh, gw, gh, gw) from `position_embedding_similarity`.
        path: PNG file to write.
        title: the figure's title.

    Returns:
        `path`, as a string.

    Example:
        >>> sim = position_embedding_similarity(emb, (14, 14), 1)
        >>> plot_position_embedding_similarity(sim, "pos_sim.png")
        'pos_sim.png'
    """
    similarity = np.asarray(similarity, dtype=np.float64)
    if similarity.ndim != 4 or similarity.shape[:2] != similarity.shape[2:]:
        raise ValueError(
            f"Similarity of shape {similarity.shape}; expected (gh, gw, gh, "
            "gw)."
        )
    gh, gw = similarity.shape[:2]
    # One mosaic with a one-cell gap between panels: fast for 14x14 panels
    mosaic = np.full((gh * (gh + 1) - 1, gw * (gw + 1) - 1), np.nan)
    for i in range(gh):
        for j in range(gw):
            top, left = i * (gh + 1), j * (gw + 1)
            mosaic[top : top + gh, left : left + gw] = similarity[i, j]
    plt = pyplot()
    side = min(9.0, 2.0 + 0.45 * max(gh, gw))
    fig, ax = plt.subplots(figsize=(side + 1.2, side))
    cmap = plt.get_cmap("viridis").with_extremes(bad="white")
    shown = ax.imshow(mosaic, cmap=cmap, vmin=-1.0, vmax=1.0)
    ax.set_xticks([j * (gw + 1) + (gw - 1) / 2 for j in range(gw)])
    ax.set_xticklabels([str(j + 1) for j in range(gw)], fontsize=7)
    ax.set_yticks([i * (gh + 1) + (gh - 1) / 2 for i in range(gh)])
    ax.set_yticklabels([str(i + 1) for i in range(gh)], fontsize=7)
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.set_xlabel("Input patch column")
    ax.set_ylabel("Input patch row")
    ax.set_title(title)
    bar = fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.04)
    bar.set_label("Cosine similarity")
    fig.tight_layout()
    return _save(plt, fig, path)


def plot_embedding_filters(
    components,
    path: str | os.PathLike,
    *,
    explained_variance=None,
    columns: int = 7,
    title: str = "Principal components of the patch-embedding filters",
) -> str:
    """The patch-embedding filter components (ViT paper, Fig. 7, left).

    Each component is scaled to [0, 1] on its own (signs and scales of
    components are arbitrary) and shown as an RGB patch when it has 3
    channels, else as the mean over its channels in grey.

    Args:
        components: (count, p, p, C) from `patch_embedding_components`.
        path: PNG file to write.
        explained_variance: optional (count,) ratios, shown in the panel
            titles.
        columns: panels per row.
        title: the figure's title.

    Returns:
        `path`, as a string.

    Example:
        >>> comps, ratio = patch_embedding_components(kernel)
        >>> plot_embedding_filters(comps, "filters.png",
        ...                        explained_variance=ratio)
        'filters.png'
    """
    components = np.asarray(components, dtype=np.float64)
    if components.ndim != 4 or len(components) == 0:
        raise ValueError(
            f"Components of shape {components.shape}; expected (count, p, p,"
            " C) with count >= 1."
        )
    if explained_variance is not None and len(explained_variance) != len(
        components
    ):
        raise ValueError(
            f"{len(explained_variance)} explained-variance ratios for "
            f"{len(components)} components."
        )
    plt = pyplot()
    count = len(components)
    columns = max(1, min(columns, count))
    rows = math.ceil(count / columns)
    fig, axes = plt.subplots(
        rows, columns, figsize=(1.3 * columns, 1.45 * rows + 0.6), squeeze=False
    )
    for ax in axes.ravel():
        ax.axis("off")
    for k, (ax, comp) in enumerate(
        zip(axes.ravel()[:count], components, strict=True)
    ):
        low, high = comp.min(), comp.max()
        comp = (comp - low) / (high - low) if high > low else comp * 0 + 0.5
        if comp.shape[-1] == 3:
            ax.imshow(comp, interpolation="nearest")
        else:
            ax.imshow(
                comp.mean(axis=-1),
                cmap="gray",
                vmin=0,
                vmax=1,
                interpolation="nearest",
            )
        label = f"PC {k + 1}"
        if explained_variance is not None:
            label += f"\n{100 * float(explained_variance[k]):.1f}%"
        ax.set_title(label, fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _save(plt, fig, path)
