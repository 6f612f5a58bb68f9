"""Every analysis of a model on a few images, written as figures.

`analyze_model` is what `keras-swin analyze` runs: it computes each
block's attention probabilities once (`attention_model`), then the
analyses that apply to the model (ViT or Swin) and writes one PNG per
figure and a `summary.json` with the numbers behind them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import keras
import numpy as np

from keras_swin.analysis import figures
from keras_swin.analysis.attention import (
    attention_model,
    swin_window_layouts,
    vit_token_layout,
)
from keras_swin.analysis.distance import (
    mean_attention_distance_per_block,
    swin_mean_attention_distance_per_block,
)
from keras_swin.analysis.embeddings import (
    patch_embedding_components,
    position_embedding_similarity,
)
from keras_swin.analysis.rollout import attention_rollout, rollout_map
from keras_swin.analysis.swin_maps import swin_query_attention
from keras_swin.layers import (
    PatchEmbed,
    PositionEmbedding,
    PositionEmbedding2D,
    ViTPositionEmbedding,
)
from keras_swin.utils import atomic_path

#: The figures `analyze_model` can write, by file name.
FIGURES = (
    "attention_distance.png",
    "rollout.png",
    "swin_query_attention.png",
    "position_embedding_similarity.png",
    "embedding_filters.png",
)

_HEAD_FUSIONS = ("mean", "max", "min")


def _block_number(name: str) -> int:
    return int(name.rsplit("_", 1)[1])


def _position_table(model: keras.Model):
    """(embedding (N, D), grid, prefix, layer name) or None.

    The first learned absolute position embedding of the model: the
    stem's `pos_embed` (1-D, 2-D or stored at another grid), else the
    first block's of a ViT that adds one at every layer, else Swin's
    `absolute_pos_embed`.
    """
    candidates = list(model.layers)
    for layer in model.layers:
        candidates.extend(getattr(layer, "position_layers", None) or ())
    for layer in candidates:
        if isinstance(layer, PositionEmbedding2D):
            table = keras.ops.convert_to_numpy(layer.embedding())
            return table[0], layer.grid_size, layer.num_prefix_tokens, layer
        if isinstance(layer, ViTPositionEmbedding):
            table = keras.ops.convert_to_numpy(layer.embedding)
            return table[0], layer.grid_size, layer.num_prefix_tokens, layer
        if isinstance(layer, PositionEmbedding):
            table = keras.ops.convert_to_numpy(layer.embedding)[0]
            if table.ndim == 3:  # Swin's (H, W, C) map
                grid = table.shape[:2]
                return table.reshape(-1, table.shape[-1]), grid, 0, layer
            patches = model.get_layer("patch_embed").output.shape[1:3]
            prefix = table.shape[0] - patches[0] * patches[1]
            return table, tuple(patches), prefix, layer
    return None


def _patch_kernel(model: keras.Model):
    """The patch embedding's (p, p, C, D) kernel, or None."""
    for layer in model.layers:
        if isinstance(layer, PatchEmbed):
            return keras.ops.convert_to_numpy(layer.proj.kernel)
    return None


def _check_query(query, height: int, width: int) -> tuple[int, int]:
    if query is None:
        return (height // 2, width // 2)
    y, x = (int(v) for v in query)
    if not (0 <= y < height and 0 <= x < width):
        raise ValueError(
            f"The query point (y={y}, x={x}) is outside the {height}x"
            f"{width} model input; choose 0 <= y < {height}, 0 <= x < "
            f"{width}."
        )
    return (y, x)


def analyze_model(
    model: keras.Model,
    images,
    output: str | os.PathLike,
    *,
    pixels=None,
    names: Sequence[str] | None = None,
    query=None,
    head_fusion: str = "mean",
    log: Callable[[str], None] | None = None,
) -> dict:
    """Runs every analysis that applies to `model` and writes its figures.

    * all models: `attention_distance.png` (mean attention distance of
      each head against depth, the ViT paper's Figure 7 right) and
      `embedding_filters.png` (principal components of the patch
      embedding's filters, Figure 7 left);
    * ViT with a class token: `rollout.png` (attention rollout of the
      class token over the patches, one row per image; Figures 6, 14);
    * ViT or Swin with a learned absolute position embedding:
      `position_embedding_similarity.png` (Figure 7 centre);
    * Swin: `swin_query_attention.png` (the attention of the token under
      `query` in the last block of each stage, heads averaged, in image
      coordinates; the first image).

    Args:
        model: a ViT or Swin model of keras_swin (classifier, backbone or
            UperNet) with a static input size.
        images: (B, H, W, 3) model inputs, already preprocessed.
        output: folder for the figures and `summary.json` (created).
        pixels: (B, H, W, 3) the same images for display (uint8); default
            `images` rescaled.
        names: one title per image (e.g. file names).
        query: (y, x) pixel of the Swin query point in the model input;
            default the centre.
        head_fusion: "mean", "max" or "min" over heads, for rollout.
        log: called with a line per figure written (e.g. `print`).

    Returns:
        dict: `figures` (file name -> path written), `notes` (figures
        left out and why), `distances` (block -> per-head mean attention
        distance in pixels, averaged over the images).

    Raises:
        ValueError: bad images, query or head fusion, or a model that is
            neither ViT nor Swin.

    Example:
        >>> swin = keras_swin.SwinTransformer(embed_dim=8, depths=(2, 2),
        ...     num_heads=(1, 2), window_size=4, patch_size=2,
        ...     input_shape=(32, 32, 3), classes=3)
        >>> result = analyze_model(swin, np.zeros((1, 32, 32, 3)), "out")
        >>> len(result["figures"]), sorted(result["notes"])
        (3, ['position_embedding_similarity.png', 'rollout.png'])
    """
    if head_fusion not in _HEAD_FUSIONS:
        raise ValueError(
            f"head_fusion must be one of {_HEAD_FUSIONS}, got {head_fusion!r}."
        )
    images = np.asarray(images, dtype="float32")
    if images.ndim != 4 or images.shape[-1] != 3 or not len(images):
        raise ValueError(
            f"images must be a (B, H, W, 3) batch, got shape {images.shape}."
        )
    height, width = images.shape[1:3]
    if pixels is None:
        low, high = images.min(), images.max()
        pixels = (images - low) / max(high - low, 1e-12)
    pixels = np.asarray(pixels)
    if names is None:
        names = [f"image {i}" for i in range(len(images))]
    query = _check_query(query, height, width)
    log = log or (lambda line: None)
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    probs = attention_model(model).predict(images, verbose=0)
    written, notes = {}, {}

    def save(name, plot, *args, **kwargs):
        written[name] = plot(*args, output / name, **kwargs)
        log(f"wrote {written[name]}")

    vit = any(key.startswith("blocks_") for key in probs)
    if vit:
        layout = vit_token_layout(model, (height, width))
        order = sorted(probs, key=_block_number)
        per_block = mean_attention_distance_per_block(
            [probs[k] for k in order], layout
        )
        distances = dict(zip(order, per_block.tolist(), strict=True))
        save(
            "attention_distance.png",
            figures.plot_attention_distance,
            per_block,
            title=f"{model.name}: mean attention distance per head",
        )
        if layout.num_prefix_tokens:
            rollout = attention_rollout(
                [probs[k] for k in order], head_fusion=head_fusion
            )
            save(
                "rollout.png",
                figures.plot_rollout_overlays,
                pixels,
                rollout_map(rollout, layout),
                titles=list(names),
                map_extent=(
                    layout.grid[0] * layout.patch_size,
                    layout.grid[1] * layout.patch_size,
                ),
                title=f"Attention rollout of the class token ({head_fusion}"
                " over heads)",
            )
        else:
            notes["rollout.png"] = "the model has no class token"
    else:
        layouts = swin_window_layouts(model, (height, width))
        per_block = swin_mean_attention_distance_per_block(probs, layouts)
        distances = {k: v.tolist() for k, v in per_block.items()}
        save(
            "attention_distance.png",
            figures.plot_attention_distance,
            list(per_block.values()),
            block_labels=list(per_block),
            title=f"{model.name}: mean attention distance per head",
        )
        last = {}
        for name, block in layouts.items():
            if name in probs:
                previous = last.get(block.stage)
                if previous is None or block.block > previous.block:
                    last[block.stage] = block
        chosen = [last[stage] for stage in sorted(last)]
        maps = [
            swin_query_attention(probs[b.name][:1], b, query)[0] for b in chosen
        ]
        save(
            "swin_query_attention.png",
            figures.plot_swin_query_attention,
            pixels[0],
            maps,
            chosen,
            query,
        )
        notes["rollout.png"] = (
            "rollout needs global attention (ViT); Swin attends in windows"
        )
    table = _position_table(model)
    if table is None:
        notes["position_embedding_similarity.png"] = (
            "the model has no learned absolute position embedding"
        )
    else:
        embedding, grid, prefix, layer = table
        save(
            "position_embedding_similarity.png",
            figures.plot_position_embedding_similarity,
            position_embedding_similarity(embedding, grid, prefix),
            title=f"Position embedding similarity ({layer.name})",
        )
    kernel = _patch_kernel(model)
    if kernel is None:
        notes["embedding_filters.png"] = "the model has no PatchEmbed"
    else:
        count = min(28, kernel.shape[-1], int(np.prod(kernel.shape[:3])))
        components, ratio = patch_embedding_components(kernel, count)
        save(
            "embedding_filters.png",
            figures.plot_embedding_filters,
            components,
            explained_variance=ratio,
        )
    summary = {
        "model": model.name,
        "images": list(names),
        "input_size": [int(height), int(width)],
        "query_yx": list(query) if not vit else None,
        "head_fusion": head_fusion,
        "mean_attention_distance_px": distances,
        "figures": {k: Path(v).name for k, v in written.items()},
        "left_out": notes,
    }
    with atomic_path(output / "summary.json") as tmp:
        Path(tmp).write_text(json.dumps(summary, indent=2) + "\n")
    return {"figures": written, "notes": notes, "distances": distances}
