"""Every block's attention probabilities, and where the tokens sit.

`attention_model(model)` returns a model of the same inputs and weights
whose outputs are the attention probabilities of every block (ViT and
Swin); `vit_token_layout` and `swin_window_layouts` describe, for one
input size, where those rows and columns sit in the image (the records of
`keras_swin.analysis.layout`, read by the numpy analyses).
"""

from __future__ import annotations

import re

import keras

from keras_swin.analysis.layout import TokenLayout, WindowLayout
from keras_swin.layers import (
    AttentionProbe,
    ClassToken,
    PatchEmbed,
    PatchMerging,
    SwinStage,
    ViTEncoder,
)
from keras_swin.layers.windows import padded_window
from keras_swin.models import vit as vit_models

_STAGE_NAME = re.compile(r"layers_(\d+)")
_BLOCK_NAME = re.compile(r"layers_(\d+)_blocks_(\d+)")


def _block_name(stage: int, block: int) -> str:
    return f"layers_{stage}_blocks_{block}"


def _swin_stages(model) -> dict[int, SwinStage]:
    """{i: stage} of the `SwinStage` layers named `layers_{i}`."""
    stages = {}
    for layer in model.layers:
        match = _STAGE_NAME.fullmatch(layer.name)
        if match and isinstance(layer, SwinStage):
            stages[int(match.group(1))] = layer
    return dict(sorted(stages.items()))


def _swin_graph(model) -> list[keras.Model]:
    """The chain of nested models from `model` to the one holding stages.

    A classifier or `SwinBackbone` holds its stages itself ([model]); a
    `UperNet` holds its backbone as a layer ([upernet, backbone]).
    Returns [] when no Swin stage is found.
    """
    if _swin_stages(model):
        return [model]
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            inner = _swin_graph(layer)
            if inner:
                return [model, *inner]
    return []


def _kind(model) -> str:
    """ "vit" or "swin"; a ValueError for anything else."""
    if not isinstance(model, keras.Model):
        raise ValueError(
            f"Expected a keras.Model (a ViT or Swin of keras_swin), got "
            f"{type(model).__name__}."
        )
    names = {layer.name: layer for layer in model.layers}
    if isinstance(names.get("encoder"), ViTEncoder):
        return "vit"
    if _swin_graph(model):
        return "swin"
    raise ValueError(
        f"{model.name!r} is neither a ViT (a `ViTEncoder` layer named "
        "`encoder`, as VisionTransformer builds) nor a Swin model (`SwinStage`"
        " layers named `layers_{i}`: SwinTransformer, SwinBackbone, or a "
        "UperNet on a SwinBackbone)."
    )


def _chosen_blocks(stages: dict[int, SwinStage], block_indices):
    """[(i, j)] in order, from None, names or (stage, block) pairs."""
    available = [(i, j) for i, s in stages.items() for j in range(s.depth)]
    if block_indices is None:
        return available
    if isinstance(block_indices, str) or (
        isinstance(block_indices, tuple)
        and len(block_indices) == 2
        and all(isinstance(v, int) for v in block_indices)
    ):
        block_indices = [block_indices]
    valid = ", ".join(_block_name(*p) for p in available)
    if not isinstance(block_indices, (list, tuple, set)):
        raise ValueError(
            "block_indices must be a list of block names such as "
            "'layers_1_blocks_0' or of (stage, block) pairs, got "
            f"{block_indices!r}."
        )
    chosen = set()
    for entry in block_indices:
        if isinstance(entry, str):
            match = _BLOCK_NAME.fullmatch(entry)
            pair = tuple(map(int, match.groups())) if match else None
        elif (
            isinstance(entry, (tuple, list))
            and len(entry) == 2
            and all(
                isinstance(v, int) and not isinstance(v, bool) for v in entry
            )
        ):
            pair = tuple(entry)
        else:
            raise ValueError(
                "block_indices must be block names such as "
                "'layers_1_blocks_0' or (stage, block) pairs of ints, got "
                f"{entry!r}."
            )
        if pair not in available:
            raise ValueError(
                f"No Swin block {entry!r} in this model; its blocks are: "
                f"{valid}."
            )
        chosen.add(pair)
    if not chosen:
        raise ValueError("block_indices must name at least one block.")
    return sorted(chosen)


def _feed(outer: keras.Model, inner: keras.Model):
    """The tensor of `outer`'s graph that `inner` (one of its layers) reads.

    `inner.input` names the nested model's own Input, not the tensor it
    is called on; the call's node records that tensor.
    """
    nodes = inner._inbound_nodes  # Keras 3 keeps no public accessor.
    tensors = nodes[0].input_tensors if len(nodes) == 1 else ()
    if len(tensors) != 1:
        raise ValueError(
            f"{inner.name!r} must be called exactly once on one tensor "
            f"inside {outer.name!r} to probe its attention; it has "
            f"{len(nodes)} calls."
        )
    return tensors[0]


def _swin_attention_model(model, block_indices) -> keras.Model:
    chain = _swin_graph(model)
    holder = chain[-1]
    stages = _swin_stages(holder)
    chosen = _chosen_blocks(stages, block_indices)
    outputs = {}
    for i in sorted({i for i, _ in chosen}):
        probs = AttentionProbe(stages[i], name=f"layers_{i}_attention")(
            stages[i].input
        )
        for j, tensor in enumerate(probs):
            if (i, j) in chosen:
                outputs[_block_name(i, j)] = tensor
    probe = keras.Model(holder.inputs, outputs, name=f"{holder.name}_attention")
    # Nested (UperNet -> backbone): call each level on its outer tensor.
    for outer, inner in reversed(list(zip(chain[:-1], chain[1:], strict=True))):
        probe = keras.Model(
            outer.inputs,
            probe(_feed(outer, inner)),
            name=f"{outer.name}_attention",
        )
    return probe


def attention_model(model: keras.Model, block_indices=None) -> keras.Model:
    """A model of the same weights that outputs attention probabilities.

    Built on `model`'s own graph and layers (nothing is rebuilt, copied or
    converted): each block's probabilities are computed on the block's
    input exactly as the block computes them (inference: no dropout),
    softmax in float32.

    * ViT (`VisionTransformer`, a `ViTEncoder` named `encoder`): the
      model of `keras_swin.models.vit.vit_attention_model`, outputs
      `{"blocks_{k}": (B, heads, N, N)}` with N = prefix tokens + patches.
    * Swin (`SwinTransformer` classifiers, `SwinBackbone`, a `UperNet` on
      a `SwinBackbone`): outputs `{"layers_{i}_blocks_{j}": (B, nW,
      heads, M*M, M*M)}`: for every window (numbered row-major on the
      block's padded, shifted map), the attention of its M*M queries over
      its M*M keys (row-major inside the window).
      `swin_window_layouts(model, image_size)` gives, per key, the window
      M, shift and padded size needed to place them in the image.

    Args:
        model: a ViT or Swin model of keras_swin, with or without head.
        block_indices: the blocks to output, default all. ViT: ints
            (negative ones count from the end). Swin: block names
            ("layers_2_blocks_1") or (stage, block) pairs ((2, 1)).

    Returns:
        A `keras.Model` with `model`'s inputs and a dict of float32
        outputs. It shares `model`'s weights and cannot be saved itself
        (save `model` and call this again after loading).

    Raises:
        ValueError: `model` is neither a ViT nor a Swin of keras_swin, or
            `block_indices` names no block of it.

    Example:
        >>> swin = keras_swin.SwinTransformer(embed_dim=8, depths=(2, 2),
        ...     num_heads=(1, 2), window_size=4, input_shape=(32, 32, 3),
        ...     classes=3)
        >>> probs = attention_model(swin).predict(
        ...     np.zeros((1, 32, 32, 3)), verbose=0)
        >>> {k: v.shape for k, v in sorted(probs.items())}
        {'layers_0_blocks_0': (1, 4, 1, 16, 16), ...}
    """
    if _kind(model) == "vit":
        return vit_models.vit_attention_model(model, block_indices)
    return _swin_attention_model(model, block_indices)


def _image_size(model, image_size) -> tuple[int, int]:
    """(H, W) from `image_size` or the model's static input size."""
    static = tuple(model.inputs[0].shape[1:3])
    if image_size is None:
        if None in static:
            raise ValueError(
                f"{model.name!r} takes any image size: pass image_size="
                "(height, width) to say which."
            )
        return static
    if isinstance(image_size, int) and not isinstance(image_size, bool):
        image_size = (image_size, image_size)
    size = tuple(image_size)
    if len(size) != 2 or not all(
        isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in size
    ):
        raise ValueError(
            "image_size must be a positive int or (height, width) of "
            f"positive ints, got {image_size!r}."
        )
    if any(s is not None and s != v for s, v in zip(static, size, strict=True)):
        raise ValueError(
            f"{model.name!r} was built for {static[0]}x{static[1]} images, "
            f"not {size[0]}x{size[1]}."
        )
    return size


def _patch_grid(model, height: int, width: int) -> tuple[int, int]:
    """The patch grid `model`'s `patch_embed` makes of a height x width
    image (rounded up when it pads to whole patches, else down)."""
    embed = next(
        (layer for layer in model.layers if layer.name == "patch_embed"), None
    )
    if not isinstance(embed, PatchEmbed):
        raise ValueError(
            f"{model.name!r} has no PatchEmbed named `patch_embed`."
        )
    p = embed.patch_size
    if embed.pad_to_patch:
        grid = (-(-height // p), -(-width // p))
    else:
        grid = (height // p, width // p)
    if 0 in grid:
        raise ValueError(f"An image of {height}x{width} has no {p}x{p} patch.")
    return grid


def vit_token_layout(model: keras.Model, image_size=None) -> TokenLayout:
    """Where a ViT's tokens sit in an image of `image_size`.

    Args:
        model: a ViT built by `VisionTransformer` (layers `patch_embed`
            and `encoder`).
        image_size: (H, W) or an int for square images; default the
            model's static input size.

    Returns:
        `TokenLayout(grid, patch_size, num_prefix_tokens)`: the patch
        grid (floor(H/p), floor(W/p)) (ceil when the patch embedding pads),
        p, and the class + register tokens that come first.

    Raises:
        ValueError: not a ViT, or a size the model does not take.

    Example:
        >>> vit = keras_swin.VisionTransformer(patch_size=16,
        ...     hidden_size=32, num_layers=1, num_heads=2, mlp_dim=64,
        ...     input_shape=(None, None, 3), include_top=False)
        >>> vit_token_layout(vit, (64, 40))
        TokenLayout(grid=(4, 2), patch_size=16, num_prefix_tokens=1)
    """
    if _kind(model) != "vit":
        raise ValueError(f"{model.name!r} is a Swin model, not a ViT.")
    height, width = _image_size(model, image_size)
    p = model.get_layer("patch_embed").patch_size
    grid = _patch_grid(model, height, width)
    prefix = sum(
        layer.num_tokens
        for layer in model.layers
        if isinstance(layer, ClassToken)
    )
    return TokenLayout(grid=grid, patch_size=p, num_prefix_tokens=prefix)


def swin_window_layouts(
    model: keras.Model, image_size=None
) -> dict[str, WindowLayout]:
    """How every Swin block windows an image of `image_size`.

    Follows the model: the patch embedding pads the image to a multiple
    of the patch p (H0 = ceil(H / p)); each `PatchMerging` pads an odd
    side and halves it (ceil(H_i / 2)); each block pads its map to its
    window and shifts it as `keras_swin.layers.windows.padded_window`
    says (the function the blocks call).

    Args:
        model: a Swin model (`SwinTransformer`, `SwinBackbone`, or a
            `UperNet` on one).
        image_size: (H, W) or an int for square images; default the
            model's static input size.

    Returns:
        {"layers_{i}_blocks_{j}": WindowLayout}, keyed like the outputs of
        `attention_model(model)`.

    Raises:
        ValueError: not a Swin model, or a size the model does not take.

    Example:
        >>> swin = keras_swin.SwinTransformer(embed_dim=8, depths=(2, 2),
        ...     num_heads=(1, 2), window_size=4, input_shape=(36, 44, 3),
        ...     classes=3)
        >>> layout = swin_window_layouts(swin)["layers_0_blocks_1"]
        >>> layout.height, layout.width, layout.shift, layout.num_windows
        (9, 11, 2, 9)
    """
    if _kind(model) != "swin":
        raise ValueError(f"{model.name!r} is a ViT, not a Swin model.")
    height, width = _image_size(model, image_size)
    holder = _swin_graph(model)[-1]
    h, w = _patch_grid(holder, height, width)
    layers = {layer.name: layer for layer in holder.layers}
    p = layers["patch_embed"].patch_size
    layouts = {}
    stride = p
    for i, stage in _swin_stages(holder).items():
        for j, block in enumerate(stage.blocks):
            m, shift, hp, wp = padded_window(
                h, w, block.window_size, block.shift_size, block.window_mode
            )
            name = _block_name(i, j)
            layouts[name] = WindowLayout(
                name, i, j, h, w, m, shift, hp, wp, stride, height, width
            )
        if isinstance(layers.get(f"layers_{i}_downsample"), PatchMerging):
            h, w = -(-h // 2), -(-w // 2)
            stride *= 2
    return layouts
