"""Learning curves and attention maps of a training run (PNG files)."""

from __future__ import annotations

import math
import os

import keras
import numpy as np
from keras import ops


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_learning_curves(history: dict, path: str | os.PathLike) -> None:
    """Loss and accuracy per epoch, train and validation, as a PNG.

    Args:
        history: `History.history` of `fit` (keys "loss", "accuracy",
            "val_loss", "val_accuracy", ...).
        path: PNG file to write (atomically).

    Example:
        >>> plot_learning_curves({"loss": [1.0, 0.5]}, "/tmp/curves.png")
    """
    from keras_swin.utils import atomic_path

    plt = _pyplot()
    panels = [k for k in ("loss", "accuracy") if k in history]
    fig, axes = plt.subplots(
        1, max(1, len(panels)), figsize=(5 * max(1, len(panels)), 3.6)
    )
    axes = np.atleast_1d(axes)
    for ax, key in zip(axes, panels, strict=False):
        epochs = np.arange(1, len(history[key]) + 1)
        ax.plot(epochs, history[key], label=f"train {key}")
        if f"val_{key}" in history:
            ax.plot(epochs, history[f"val_{key}"], label=f"validation {key}")
        ax.set_xlabel("epoch")
        ax.set_ylabel(key)
        ax.grid(alpha=0.3)
        ax.legend()
    if "accuracy" in panels:
        axes[panels.index("accuracy")].set_title(
            "train accuracy is on mixed/augmented batches", fontsize=9
        )
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


def _softmax(x):
    x = x - x.max(-1, keepdims=True)
    e = np.exp(x)
    return e / e.sum(-1, keepdims=True)


def _attention_probs(attn, tokens, bias=None):
    """Attention probabilities (B, heads, N, N) of an `Attention` layer."""
    batch, count = tokens.shape[0], tokens.shape[1]
    qkv = ops.convert_to_numpy(attn.qkv(tokens)).astype(np.float64)
    qkv = qkv.reshape(batch, count, 3, attn.num_heads, attn.head_dim)
    q = qkv[:, :, 0].transpose(0, 2, 1, 3)
    k = qkv[:, :, 1].transpose(0, 2, 1, 3)
    logits = (q * attn.scale) @ k.transpose(0, 1, 3, 2)
    if bias is not None:
        logits = logits + bias
    return _softmax(logits)


def attention_maps(model: keras.Model, images) -> np.ndarray:
    """Where the last attention block looks, per image.

    Swin: the last block of the last stage, whose map must fit one window
    (true for the released configurations at their native size); the map
    is the attention each token receives, averaged over queries and heads.
    ViT (with a class token): the class token's attention to the patches
    in the last block, averaged over heads.

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
    if "layers_0" in names:
        return _swin_attention_maps(model, images)
    if "encoder" in names:
        return _vit_attention_maps(model, images)
    raise ValueError(
        f"attention_maps needs a Swin (layers_0, ...) or ViT (encoder) "
        f"model; {model.name!r} has neither."
    )


def _last_block_input(model, layer_name, blocks, images):
    """Input of `blocks[-1]` of a stage layer, by one compiled predict."""
    layer = model.get_layer(layer_name)
    x = layer.input
    for block in blocks[:-1]:
        x = block(x)
    return keras.Model(model.inputs, x).predict(images, verbose=0)


def _swin_attention_maps(model, images):
    stages = sorted(
        (
            layer
            for layer in model.layers
            if layer.name.startswith("layers_")
            and not layer.name.endswith("_downsample")
        ),
        key=lambda layer: int(layer.name.split("_")[1]),
    )
    stage = stages[-1]
    block = stage.blocks[-1]
    x = _last_block_input(model, stage.name, stage.blocks, images)
    height, width = x.shape[1], x.shape[2]
    if height != width or height > block.window_size:
        raise ValueError(
            f"attention_maps: the last stage's {height}x{width} map is not "
            f"one square window (window {block.window_size}); use an input "
            "size whose last stage fits one window."
        )
    tokens = ops.reshape(
        block.norm1(x), (x.shape[0], height * width, x.shape[-1])
    )
    bias = None
    if block.attn.use_relative_position_bias:
        bias = ops.convert_to_numpy(block.attn.relative_position_bias(height))[
            None
        ].astype(np.float64)
    probs = _attention_probs(block.attn, tokens, bias)
    received = probs.mean(axis=(1, 2))  # (B, N)
    return received.reshape(-1, height, width)


def _vit_attention_maps(model, images):
    encoder = model.get_layer("encoder")
    x = _last_block_input(model, "encoder", encoder.blocks, images)
    block = encoder.blocks[-1]
    probs = _attention_probs(block.attn, block.norm1(x))
    grid = model.get_layer("patch_embed").output.shape[1:3]
    patches = grid[0] * grid[1]
    prefix = x.shape[1] - patches
    if prefix < 1:
        raise ValueError(
            "attention_maps: this ViT has no class token to take the "
            "attention of."
        )
    cls = probs[:, :, 0, prefix:].mean(axis=1)
    cls = cls / cls.sum(-1, keepdims=True)
    return cls.reshape(-1, grid[0], grid[1])


def plot_attention_maps(
    model: keras.Model,
    inputs,
    images,
    path: str | os.PathLike,
    class_names=None,
) -> None:
    """Images with the model's attention map and prediction, as a PNG.

    Args:
        model: a Swin or ViT classifier (logits or probabilities).
        inputs: (B, S, S, 3) preprocessed model inputs.
        images: (B, H, W, C) the same images for display (uint8).
        path: PNG file to write (atomically).
        class_names: optional names of the classes.

    Example:
        >>> plot_attention_maps(m, x, raw, "/tmp/attention.png")
    """
    from keras_swin.utils import atomic_path

    plt = _pyplot()
    maps = attention_maps(model, inputs)
    predictions = np.argmax(model.predict(inputs, verbose=0), -1)
    count = len(inputs)
    columns = min(count, 6)
    rows = 2 * math.ceil(count / columns)
    fig, axes = plt.subplots(
        rows, columns, figsize=(1.8 * columns, 1.9 * rows), squeeze=False
    )
    for ax in axes.ravel():
        ax.axis("off")
    for i in range(count):
        r, c = 2 * (i // columns), i % columns
        image = np.asarray(images[i])
        if image.ndim == 3 and image.shape[-1] == 1:
            image = image[..., 0]
        label = predictions[i]
        name = class_names[label] if class_names is not None else label
        axes[r, c].imshow(image, cmap="gray")
        axes[r, c].set_title(f"predicted {name}", fontsize=8)
        axes[r + 1, c].imshow(image, cmap="gray")
        axes[r + 1, c].imshow(
            maps[i],
            cmap="inferno",
            alpha=0.6,
            extent=(-0.5, image.shape[1] - 0.5, image.shape[0] - 0.5, -0.5),
            interpolation="bilinear",
        )
        axes[r + 1, c].set_title("attention", fontsize=8)
    fig.suptitle("last attention block: attention received per token")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
