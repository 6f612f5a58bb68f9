"""Learning curves and attention maps of a training run (PNG files)."""

from __future__ import annotations

import math
import os

import keras
import numpy as np

from keras_swin import analysis
from keras_swin.ade20k import colorize
from keras_swin.analysis.figures import pyplot, save_png

#: Marks of a correct and a wrong prediction in the attention figure.
RIGHT_COLOR, WRONG_COLOR = "black", "red"


def plot_learning_curves(
    history: dict,
    path: str | os.PathLike | None,
    panels=("loss", "accuracy"),
):
    """Loss and accuracy per epoch, train and validation, as a PNG.

    Every epoch is a marked point, so that a 1-epoch run shows its value.

    Args:
        history: `History.history` of `fit` (keys "loss", "accuracy",
            "val_loss", "val_accuracy", ...).
        path: PNG file to write (atomically); None: write nothing and
            return the open figure (to inspect or save yourself).
        panels: the history keys to draw, one panel each (with their
            "val_" twins); keys missing from `history` are skipped.

    Returns:
        None, or the matplotlib `Figure` when `path` is None.

    Example:
        >>> plot_learning_curves({"loss": [1.0, 0.5]}, "/tmp/curves.png")
    """
    plt = pyplot()
    panels = [k for k in panels if k in history]
    fig, axes = plt.subplots(
        1, max(1, len(panels)), figsize=(5 * max(1, len(panels)), 3.6)
    )
    axes = np.atleast_1d(axes)
    for ax, key in zip(axes, panels, strict=False):
        epochs = np.arange(1, len(history[key]) + 1)
        marker = dict(marker="o", markersize=3 if len(epochs) > 20 else 5)
        ax.plot(epochs, history[key], label=f"train {key}", **marker)
        if f"val_{key}" in history:
            ax.plot(
                epochs,
                history[f"val_{key}"],
                label=f"validation {key}",
                **{**marker, "marker": "s"},
            )
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True, min_n_ticks=1))
        ax.set_ylabel(key)
        ax.grid(alpha=0.3)
        ax.legend()
    if "accuracy" in panels:
        axes[panels.index("accuracy")].set_title(
            "train accuracy is on mixed/augmented batches", fontsize=9
        )
    fig.tight_layout()
    if path is None:
        return fig
    save_png(fig, path)
    plt.close(fig)
    return None


def attention_maps(model: keras.Model, images) -> np.ndarray:
    """Where the last attention block looks, per image.

    Swin: the last block of the last stage; the map is the attention each
    token receives, averaged over the queries of its window and the
    heads, with the windows stitched back onto the stage's map
    (`keras_swin.analysis.stitch_windows`). ViT (with a class token): the
    class token's attention to the patches in the last block, averaged
    over heads.

    Args:
        model: a Swin (`layers_{i}` stages) or ViT (`encoder`) model.
        images: (B, H, W, 3) model inputs (already preprocessed).

    Returns:
        (B, h, w) float array, each map summing to 1.

    Example:
        >>> from keras_swin.recipes.train import build_model, DIGITS_RECIPE
        >>> m = build_model("swin_digits", DIGITS_RECIPE, 10, 16)
        >>> attention_maps(m, np.zeros((2, 16, 16, 3))).shape
        (2, 4, 4)
    """
    images = np.asarray(images, dtype="float32")
    names = {layer.name for layer in model.layers}
    if "layers_0" not in names and "encoder" not in names:
        raise ValueError(
            f"attention_maps needs a Swin (layers_0, ...) or ViT (encoder) "
            f"model; {model.name!r} has neither."
        )
    size = images.shape[1:3]
    if "encoder" in names:
        layout = analysis.vit_token_layout(model, size)
        if layout.num_prefix_tokens < 1:
            raise ValueError(
                "attention_maps: this ViT has no class token to take the "
                "attention of."
            )
        (probs,) = (
            analysis.attention_model(model, block_indices=-1)
            .predict(images, verbose=0)
            .values()
        )
        prefix = layout.num_prefix_tokens
        cls = probs[:, :, 0, prefix:].mean(axis=1).astype(np.float64)
        cls = cls / cls.sum(-1, keepdims=True)
        return cls.reshape(-1, *layout.grid)
    layouts = analysis.swin_window_layouts(model, size)
    last = max(layouts.values(), key=lambda b: (b.stage, b.block))
    (probs,) = (
        analysis.attention_model(model, block_indices=[last.name])
        .predict(images, verbose=0)
        .values()
    )
    # (B, nW, heads, M*M queries, M*M keys) -> received per key (B, nW, M*M)
    received = probs.astype(np.float64).mean(axis=(2, 3))
    grid = analysis.stitch_windows(received, last)  # (B, H, W)
    return grid / grid.sum(axis=(1, 2), keepdims=True)


def plot_attention_maps(
    model: keras.Model,
    inputs,
    images,
    path: str | os.PathLike | None,
    class_names=None,
    labels=None,
):
    """Images with the model's attention map and prediction, as a PNG.

    Each image is shown above its attention map. The image's title gives
    the true and the predicted class ("true 5 / pred 9"); a wrong
    prediction has a red title and a red frame round both panels. The
    attention maps share one colour scale, shown by a colour bar: the
    share of the last block's attention each token receives.

    Args:
        model: a Swin or ViT classifier (logits or probabilities).
        inputs: (B, S, S, 3) preprocessed model inputs.
        images: (B, H, W, C) the same images for display (uint8).
        path: PNG file to write (atomically); None: write nothing and
            return the open figure.
        class_names: optional names of the classes.
        labels: optional (B,) true classes; without them the titles give
            the prediction only ("pred 9") and nothing is marked.

    Returns:
        None, or the matplotlib `Figure` when `path` is None.

    Example:
        >>> plot_attention_maps(m, x, raw, "/tmp/attention.png",
        ...                     labels=[5, 9])
    """
    plt = pyplot()
    maps = attention_maps(model, inputs)
    predictions = np.argmax(model.predict(inputs, verbose=0), -1)
    count = len(inputs)
    if labels is not None and len(labels) != count:
        raise ValueError(
            f"plot_attention_maps: {len(labels)} labels for {count} images; "
            "give one true class per image."
        )

    def name(index):
        return class_names[index] if class_names is not None else index

    columns = min(count, 6)
    rows = 2 * math.ceil(count / columns)
    fig, axes = plt.subplots(
        rows,
        columns,
        figsize=(1.8 * columns + 0.8, 1.9 * rows + 0.4),
        squeeze=False,
    )
    for ax in axes.ravel():
        ax.axis("off")
    # One colour scale for every map, so that they can be compared.
    scale = dict(vmin=0.0, vmax=float(maps.max()))
    shown = None
    for i in range(count):
        r, c = 2 * (i // columns), i % columns
        image = np.asarray(images[i])
        if image.ndim == 3 and image.shape[-1] == 1:
            image = image[..., 0]
        predicted = name(int(predictions[i]))
        wrong = labels is not None and int(labels[i]) != int(predictions[i])
        color = WRONG_COLOR if wrong else RIGHT_COLOR
        title = f"pred {predicted}"
        if labels is not None:
            title = f"true {name(int(labels[i]))} / {title}"
        axes[r, c].imshow(image, cmap="gray")
        axes[r, c].set_title(
            title, fontsize=8, color=color, fontweight="bold" if wrong else None
        )
        axes[r + 1, c].imshow(image, cmap="gray")
        shown = axes[r + 1, c].imshow(
            maps[i],
            cmap="inferno",
            alpha=0.6,
            extent=(-0.5, image.shape[1] - 0.5, image.shape[0] - 0.5, -0.5),
            interpolation="bilinear",
            **scale,
        )
        axes[r + 1, c].set_title("attention", fontsize=8, color=color)
        if wrong:
            for ax in (axes[r, c], axes[r + 1, c]):
                # A frame: the spines, shown again without the ticks.
                ax.axis("on")
                ax.set_xticks([])
                ax.set_yticks([])
                for spine in ax.spines.values():
                    spine.set_edgecolor(WRONG_COLOR)
                    spine.set_linewidth(2.5)
    fig.suptitle("last attention block: attention received per token")
    fig.tight_layout()
    colorbar = fig.colorbar(
        shown, ax=axes.ravel().tolist(), shrink=0.8, pad=0.02
    )
    colorbar.set_label("share of attention", fontsize=8)
    colorbar.ax.tick_params(labelsize=7)
    if path is None:
        return fig
    save_png(fig, path)
    plt.close(fig)
    return None


def plot_segmentation_predictions(
    images,
    labels,
    predictions,
    path: str | os.PathLike | None,
    class_names=None,
    palette=None,
    ignore_index: int | None = 255,
    title: str | None = None,
):
    """A grid of images, their true label maps and the predicted ones.

    One row per image: the image, the truth and the prediction coloured
    with `palette` (`keras_swin.ade20k.colorize`), the prediction titled
    with its pixel accuracy over the labelled pixels. A legend names the
    classes that appear.

    Args:
        images: (N, H, W, 3) uint8 RGB images (or a list of them).
        labels: (N, H, W) true class ids (`ignore_index` drawn black).
        predictions: (N, H, W) predicted class ids.
        path: PNG file to write (atomically); None: write nothing and
            return the open figure.
        class_names: names of the classes, for the legend.
        palette: (K, 3) uint8 colours, or None for ADE20K's (see
            `keras_swin.ade20k.palette`).
        ignore_index: label of unlabelled pixels.
        title: figure title.

    Returns:
        None, or the matplotlib `Figure` when `path` is None.

    Example:
        >>> plot_segmentation_predictions(images, labels, preds,
        ...                               "/tmp/predictions.png",
        ...                               class_names=SCENE_CLASSES,
        ...                               palette=SCENE_PALETTE)
    """
    count = len(images)
    if not count or len(labels) != count or len(predictions) != count:
        raise ValueError(
            "plot_segmentation_predictions: give as many label maps and "
            f"predictions as images (at least one), got {count} images, "
            f"{len(labels)} label maps, {len(predictions)} predictions."
        )
    plt = pyplot()
    fig, axes = plt.subplots(
        count, 3, figsize=(6.6, 2.1 * count + 0.6), squeeze=False
    )
    shown = set()
    for i in range(count):
        label = np.asarray(labels[i])
        prediction = np.asarray(predictions[i])
        if label.shape != prediction.shape:
            raise ValueError(
                f"plot_segmentation_predictions: image {i}'s label map is "
                f"{label.shape} but its prediction {prediction.shape}."
            )
        kept = label != ignore_index if ignore_index is not None else None
        valid = label[kept] if kept is not None else label.ravel()
        correct = (
            prediction[kept] if kept is not None else prediction.ravel()
        ) == valid
        accuracy = float(correct.mean()) if valid.size else math.nan
        shown.update(int(v) for v in np.unique(valid))
        shown.update(int(v) for v in np.unique(prediction))
        panels = (
            (np.asarray(images[i]), "image"),
            (colorize(label, palette, ignore_index), "truth"),
            (
                colorize(prediction, palette, ignore_index),
                f"prediction ({accuracy:.0%} of pixels)",
            ),
        )
        for ax, (picture, name) in zip(axes[i], panels, strict=True):
            ax.imshow(picture, interpolation="nearest")
            ax.set_title(name, fontsize=8)
            ax.axis("off")
    if class_names is not None:
        from matplotlib.patches import Patch

        colours = colorize(np.array([sorted(shown)]), palette, ignore_index)[0]
        fig.legend(
            handles=[
                Patch(color=colour / 255.0, label=class_names[k])
                for k, colour in zip(sorted(shown), colours, strict=True)
                if k < len(class_names)
            ],
            loc="lower center",
            ncol=min(len(shown), 5),
            fontsize=8,
            frameon=False,
        )
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0.06 if class_names is not None else 0, 1, 1))
    if path is None:
        return fig
    save_png(fig, path)
    plt.close(fig)
    return None
