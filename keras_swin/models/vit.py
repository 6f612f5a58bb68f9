"""Vision Transformer (Dosovitskiy et al., 2021) as a functional model."""

from __future__ import annotations

import keras

from keras_swin.layers import (
    AttentionProbe,
    ClassToken,
    PatchEmbed,
    PositionEmbedding,
    PositionEmbedding2D,
    TokenGrid,
    TokenPooling,
    ViTEncoder,
    ViTEncoderBlock,
    ViTPositionEmbedding,
)
from keras_swin.layers.interpolation import METHODS as RESIZE_METHODS
from keras_swin.layers.vit_encoder import (
    POSITION_EMBEDDING_PLACES,
    POSITION_EMBEDDINGS,
)
from keras_swin.models._common import (
    check_head_arguments,
    defer_size_check,
    record_preprocessing,
    resolve_inputs,
)

#: The ViT paper's configurations (its Table 1, plus Ti and S of DeiT and
#: the official `vit_jax/configs/models.py`).
VIT_CONFIGS = {
    "vit_tiny_patch16": dict(
        patch_size=16, hidden_size=192, num_layers=12, num_heads=3, mlp_dim=768
    ),
    "vit_small_patch16": dict(
        patch_size=16, hidden_size=384, num_layers=12, num_heads=6, mlp_dim=1536
    ),
    "vit_base_patch16": dict(
        patch_size=16,
        hidden_size=768,
        num_layers=12,
        num_heads=12,
        mlp_dim=3072,
    ),
    "vit_base_patch32": dict(
        patch_size=32,
        hidden_size=768,
        num_layers=12,
        num_heads=12,
        mlp_dim=3072,
    ),
    "vit_large_patch16": dict(
        patch_size=16,
        hidden_size=1024,
        num_layers=24,
        num_heads=16,
        mlp_dim=4096,
    ),
    "vit_large_patch32": dict(
        patch_size=32,
        hidden_size=1024,
        num_layers=24,
        num_heads=16,
        mlp_dim=4096,
    ),
    "vit_huge_patch14": dict(
        patch_size=14,
        hidden_size=1280,
        num_layers=32,
        num_heads=16,
        mlp_dim=5120,
    ),
}

_CLASSIFIERS = ("token", "gap")


def _stored_grid(value, input_grid, patch_size: int) -> tuple[int, int]:
    """The (gh, gw) grid of the position embedding's weights."""
    if value is None:
        if input_grid is not None:
            return input_grid
        return (224 // patch_size, 224 // patch_size)
    if isinstance(value, int) and not isinstance(value, bool):
        value = (value, value)
    try:
        grid = tuple(int(v) for v in value)
    except (TypeError, ValueError):
        grid = ()
    if len(grid) != 2 or min(grid) < 1:
        raise ValueError(
            "position_embedding_grid must be a positive int or (rows, "
            f"columns) of patches, got {value!r}."
        )
    return grid


def _encoder_position_arguments(kind, at, grid, num_prefix_tokens) -> dict:
    """`ViTEncoder` position arguments; none for the released models."""
    if kind == "none":
        return {}  # the encoder's config stays the one of before
    return dict(
        position_embedding=kind,
        position_embedding_at=at,
        grid_size=grid,
        num_prefix_tokens=num_prefix_tokens,
    )


def VisionTransformer(
    patch_size: int = 16,
    hidden_size: int = 768,
    num_layers: int = 12,
    num_heads: int = 12,
    mlp_dim: int = 3072,
    classifier: str = "token",
    representation_size: int | None = None,
    qkv_bias: bool = True,
    dropout_rate: float = 0.0,
    attention_dropout_rate: float = 0.0,
    drop_path_rate: float = 0.0,
    layer_norm_epsilon: float = 1e-6,
    gelu_approximate: bool = True,
    class_token: bool | None = None,
    num_register_tokens: int = 0,
    position_embedding_on_prefix: bool = True,
    pooled_norm: bool = False,
    position_embedding_grid=None,
    position_embedding_resize: str | None = None,
    position_embedding: str = "1d",
    position_embedding_at: str = "stem",
    include_top: bool = True,
    input_tensor=None,
    input_shape=None,
    pooling: str | None = None,
    classes: int = 1000,
    classifier_activation="softmax",
    name: str = "vision_transformer",
    preprocessing: dict | None = None,
) -> keras.Model:
    """Builds a Vision Transformer classifier or backbone.

    The graph: `patch_embed` (conv p x p, stride p), `flatten` to tokens,
    `reg_token` (register tokens, if any), `cls_token` (if any),
    `pos_embed`, the `encoder` (blocks `blocks_{i}` and the final `norm`),
    `pool`, optional `fc_norm` (`pooled_norm`), optional `pre_logits`
    (Dense + tanh) and `head`. Token order: [class, registers, patches].

    Numerics default to the official JAX ViT: LayerNorm epsilon 1e-6 and
    the tanh GELU. PyTorch ports differ: timm uses the exact GELU
    (`gelu_approximate=False`), Hugging Face also uses epsilon 1e-12.

    Args:
        patch_size: patch side p.
        hidden_size: token width D.
        num_layers: transformer blocks.
        num_heads: attention heads.
        mlp_dim: MLP hidden width.
        classifier: "token" (class token, read at the end) or "gap"
            (mean of the patch tokens; no class token by default).
        representation_size: width of the `pre_logits` Dense + tanh layer
            of ImageNet-21k pre-training, or None.
        qkv_bias: whether `qkv` has a bias.
        dropout_rate: dropout after the position embedding and in blocks.
        attention_dropout_rate: dropout on attention probabilities.
        drop_path_rate: stochastic depth of the last block (linear rise).
        layer_norm_epsilon: epsilon of every LayerNorm.
        gelu_approximate: tanh GELU (True, official) or exact erf GELU.
        class_token: prepend a class token; default: only for
            `classifier="token"`. timm's MAE-style models keep it with
            `classifier="gap"` (the mean then leaves it out).
        num_register_tokens: learned register tokens placed after the
            class token (`reg_token`, timm's `reg_tokens`); pooling
            leaves them out.
        position_embedding_on_prefix: the position embedding also covers
            the class and register tokens (True, official ViT); False adds
            it to the patch tokens only, before the prefix tokens are
            prepended (timm's `no_embed_class`).
        pooled_norm: apply the final LayerNorm to the pooled vector
            (`fc_norm`, timm's default for `global_pool="avg"`) instead of
            to every token at the end of the encoder.
        position_embedding_grid: (gh, gw) patch grid the position
            embedding is stored at (an int: square), the grid of the
            weights' pre-training size. Default: the input's grid for a
            static `input_shape`, `224 // patch_size` for one with None
            sides. When it differs from the input's grid, the embedding
            is resized at every call (see `position_embedding_resize`).
        position_embedding_resize: how the stored embedding is resized to
            the grid of each input when they differ (class and register
            rows kept): "zoom" (official ViT, `scipy.ndimage.zoom` order
            1, the default), "bicubic" (Hugging Face, torch bicubic) or
            "bicubic_antialias" (timm). `load_checkpoint` passes the
            method of the checkpoint's source. At the stored grid nothing
            is resized: the output equals the static model's bit for bit.
        position_embedding: the position information, the variants of
            the ViT paper's Appendix D.4: "1d" (default, the released
            models: a learned (P + h * w, D) embedding), "none" (no
            position information), "2d" (a learned X-embedding (w, D/2)
            and Y-embedding (h, D/2), concatenated [X, Y] per patch,
            `PositionEmbedding2D`; the P prefix tokens get their own
            learned rows; D must be even) or "relative" (a learned
            per-head attention-logits bias indexed by the 2-D offset of
            two patches, plus three rows for pairs with a prefix token,
            BEiT's scheme; `RelativePositionBias`).
        position_embedding_at: where it is used: "stem" (default: added
            once before the encoder as `pos_embed`; for "relative" only
            `blocks_0` gets a bias), "every_layer" (every block gets its
            own, `encoder/pos_embed_{i}` or `encoder/rel_pos_bias_{i}`,
            added to its input or to its attention logits) or
            "every_layer_shared" (one `encoder/pos_embed` or
            `encoder/rel_pos_bias` used by every block). Every variant
            other than "1d" at the "stem" (and "none") needs a static
            input size with the position embedding at the input's grid
            (no `position_embedding_grid` resizing), and "1d"/"2d" away
            from the stem need `position_embedding_on_prefix=True`; a
            ValueError says so otherwise.
        include_top: add pooling, `pre_logits` and `head`.
        input_tensor: optional Keras tensor as image input.
        input_shape: (H, W, C); default (224, 224, 3). A static H and W
            must be multiples of `patch_size`; None sides give a model
            that takes any size per call (the patch convolution drops a
            remainder, like the official VALID convolution), with the
            position embedding resized in-graph to each grid.
        pooling: without the top: None (tokens (B, N, D) after the final
            norm), "token", "avg" or "max" (vector (B, D), followed by
            `pre_logits` when `representation_size` is set, like the
            official model built with `num_classes=0`).
        classes: classes of the head.
        classifier_activation: activation of the head; None for logits.
        name: model name.
        preprocessing: None, or the `PreprocessingInfo` arguments to
            record in an identity layer `preprocessing_info` after the
            input (the applications pass the weights' evaluation
            transform here, see `keras_swin.applications`).

    Returns:
        A `keras.Model`: (B, H, W, C) images -> (B, classes) or features.

    Example:
        >>> model = VisionTransformer(patch_size=16, hidden_size=64,
        ...                           num_layers=2, num_heads=4, mlp_dim=128,
        ...                           classes=10)
        >>> model(keras.ops.zeros((1, 224, 224, 3))).shape
        (1, 10)
        >>> any_size = VisionTransformer(patch_size=16, hidden_size=64,
        ...     num_layers=2, num_heads=4, mlp_dim=128, classes=10,
        ...     input_shape=(None, None, 3), position_embedding_grid=14,
        ...     position_embedding_resize="bicubic")
        >>> any_size(keras.ops.zeros((1, 320, 256, 3))).shape
        (1, 10)
        >>> relative = VisionTransformer(patch_size=8, hidden_size=16,
        ...     num_layers=2, num_heads=2, mlp_dim=32, classes=10,
        ...     input_shape=(32, 32, 3), position_embedding="relative",
        ...     position_embedding_at="every_layer_shared")
        >>> relative(keras.ops.zeros((1, 32, 32, 3))).shape
        (1, 10)
        >>> tuple(relative.get_layer("encoder").position_layers[0]
        ...       .table.shape)  # (2 * 4 - 1) ** 2 offsets + 3, heads
        (52, 2)
    """
    if classifier not in _CLASSIFIERS:
        raise ValueError(
            f"classifier must be one of {_CLASSIFIERS}, got {classifier!r}."
        )
    if class_token is None:
        class_token = classifier == "token"
    if classifier == "token" and not class_token:
        raise ValueError('classifier="token" needs class_token=True.')
    if not isinstance(num_register_tokens, int) or num_register_tokens < 0:
        raise ValueError(
            "num_register_tokens must be an int >= 0, got "
            f"{num_register_tokens!r}."
        )
    check_head_arguments(
        include_top, pooling, classes, poolings=(None, "token", "avg", "max")
    )
    if pooling == "token" and not class_token:
        raise ValueError('pooling="token" needs a class token.')
    if position_embedding_resize is None:
        position_embedding_resize = "zoom"
    if position_embedding_resize not in RESIZE_METHODS:
        raise ValueError(
            f"position_embedding_resize must be one of {RESIZE_METHODS}, "
            f"got {position_embedding_resize!r}."
        )
    if position_embedding not in POSITION_EMBEDDINGS:
        raise ValueError(
            f"position_embedding must be one of {POSITION_EMBEDDINGS}, got "
            f"{position_embedding!r}."
        )
    if position_embedding_at not in POSITION_EMBEDDING_PLACES:
        raise ValueError(
            "position_embedding_at must be one of "
            f"{POSITION_EMBEDDING_PLACES}, got {position_embedding_at!r}."
        )
    at_stem = position_embedding_at == "stem"
    variant = position_embedding != "none" and (
        position_embedding != "1d" or not at_stem
    )
    if (
        variant
        and not position_embedding_on_prefix
        and not (at_stem and position_embedding == "2d")
    ):
        raise ValueError(
            "position_embedding_on_prefix=False (an embedding on the patch "
            "tokens only) is supported for the 1-D and 2-D embeddings at "
            f'the stem only, not for position_embedding="'
            f'{position_embedding}" at "{position_embedding_at}".'
        )
    image, inputs = resolve_inputs(input_tensor, input_shape, 224)
    height, width = image.shape[1], image.shape[2]
    any_size = height is None or width is None
    if not any_size and (height % patch_size or width % patch_size):
        raise ValueError(
            "ViT needs an input size that is a multiple of the patch size "
            f"{patch_size}, got input shape {tuple(image.shape[1:])}; or "
            "pass input_shape=(None, None, 3) for a model of any size."
        )
    grid = _stored_grid(
        position_embedding_grid,
        None if any_size else (height // patch_size, width // patch_size),
        patch_size,
    )
    # The static path: an embedding made for the input's grid, as before.
    resized = any_size or grid != (height // patch_size, width // patch_size)
    if variant and resized:
        raise ValueError(
            f'position_embedding="{position_embedding}" at '
            f'"{position_embedding_at}" needs a static input size whose '
            "patch grid is the embedding's grid (only the default 1-D stem "
            "embedding is resized to other grids), got input shape "
            f"{tuple(image.shape[1:])} and position_embedding_grid {grid}. "
            "Pass a fixed input_shape, e.g. (224, 224, 3), and leave "
            "position_embedding_grid unset."
        )

    patches = PatchEmbed(
        patch_size,
        hidden_size,
        use_norm=False,
        pad_to_patch=False,
        # A static model's position embedding is made for this size.
        input_size=None if any_size else (height, width),
        name="patch_embed",
    )(record_preprocessing(image, preprocessing))
    x = keras.layers.Reshape((-1, hidden_size), name="flatten")(patches)

    def add_position_embedding(tokens, prefix: int):
        if position_embedding == "2d":
            return PositionEmbedding2D(
                grid, num_prefix_tokens=prefix, name="pos_embed"
            )(tokens)
        if not resized:
            return PositionEmbedding(name="pos_embed")(tokens)
        return ViTPositionEmbedding(
            grid,
            num_prefix_tokens=prefix,
            method=position_embedding_resize,
            name="pos_embed",
        )([tokens, patches])

    num_prefix_tokens = int(class_token) + num_register_tokens
    # The embedding added once before the encoder (today's `pos_embed`).
    stem = at_stem and position_embedding in ("1d", "2d")
    if stem and not position_embedding_on_prefix:
        x = add_position_embedding(x, 0)
    if num_register_tokens:
        x = ClassToken(num_tokens=num_register_tokens, name="reg_token")(x)
    if class_token:
        x = ClassToken(name="cls_token")(x)
    if stem and position_embedding_on_prefix:
        x = add_position_embedding(x, num_prefix_tokens)
    x = keras.layers.Dropout(dropout_rate, name="pos_drop")(x)
    x = ViTEncoder(
        hidden_size,
        num_layers,
        num_heads,
        mlp_dim,
        qkv_bias=qkv_bias,
        dropout_rate=dropout_rate,
        attention_dropout_rate=attention_dropout_rate,
        drop_path_rate=drop_path_rate,
        layer_norm_epsilon=layer_norm_epsilon,
        gelu_approximate=gelu_approximate,
        final_norm=not pooled_norm,
        name="encoder",
        # The variants the encoder adds itself (every layer, relative).
        **_encoder_position_arguments(
            "none" if stem else position_embedding,
            position_embedding_at,
            grid,
            num_prefix_tokens,
        ),
    )(x)

    if include_top:
        pooling = "token" if classifier == "token" else "avg"
    if pooling is not None:
        x = TokenPooling(
            pooling, num_prefix_tokens=num_prefix_tokens, name="pool"
        )(x)
        if pooled_norm:
            x = keras.layers.LayerNormalization(
                epsilon=layer_norm_epsilon, name="fc_norm"
            )(x)
        if representation_size is not None:
            x = keras.layers.Dense(
                representation_size, activation="tanh", name="pre_logits"
            )(x)
    if include_top:
        x = keras.layers.Dense(
            classes, activation=classifier_activation, name="head"
        )(x)

    model = keras.Model(inputs, x, name=name)
    defer_size_check(model, image)
    return model


def _block_indices(block_indices, num_layers: int) -> list[int]:
    """Block indices in 0 .. num_layers - 1 (negative ones count back)."""
    if block_indices is None:
        return list(range(num_layers))
    if isinstance(block_indices, int):
        block_indices = (block_indices,)
    chosen = []
    for index in block_indices:
        if isinstance(index, bool) or not isinstance(index, int):
            raise ValueError(
                f"block_indices must be ints, got {block_indices!r}."
            )
        if not -num_layers <= index < num_layers:
            raise ValueError(
                f"Block index {index} is out of range: the model has "
                f"{num_layers} blocks (0 .. {num_layers - 1}, or negative "
                "from the end)."
            )
        index %= num_layers
        if index not in chosen:
            chosen.append(index)
    if not chosen:
        raise ValueError("block_indices must name at least one block.")
    return sorted(chosen)


def vit_feature_model(
    model: keras.Model,
    block_indices=None,
    *,
    norm: bool = False,
    name: str | None = None,
) -> keras.Model:
    """A model that outputs a ViT's block outputs as NHWC patch grids.

    The intermediate layers a dense-prediction head reads from a ViT (DPT
    takes blocks 2, 5, 8, 11 of ViT-B; ViTDet the last): the output of
    encoder block `blocks_{k}`, without the class and register tokens,
    laid out on the patch grid. The blocks are the model's own layers
    (same weights, same weight paths), called one by one from the
    encoder's input, each with the position embedding or relative bias
    the encoder gives it (every position-embedding variant); the final
    LayerNorm is applied only with `norm=True`
    (timm's `forward_intermediates(norm=True)`). Works for a model of any
    input size (`input_shape=(None, None, 3)`): each grid has the size of
    that call's patch grid.

    Args:
        model: a model from `VisionTransformer` or a ViT variant, with or
            without its head.
        block_indices: the blocks to output (ints; negative ones count
            from the end, -1 is the last block); default all blocks.
        norm: pass each output through the encoder's final LayerNorm
            `encoder/norm` (not available with `pooled_norm=True`).
        name: name of the new model; default `"{model.name}_features"`.

    Returns:
        A `keras.Model` with the model's inputs and a dict of outputs
        `{"block_{k}": (B, H / p, W / p, D)}`, one per chosen block k.

    Raises:
        ValueError: `model` has no ViT encoder (`encoder`) or patch
            embedding (`patch_embed`), an index is out of range, or
            `norm=True` without a final LayerNorm.

    Example:
        >>> vit = VisionTransformer(patch_size=16, hidden_size=64,
        ...     num_layers=4, num_heads=4, mlp_dim=128, include_top=False,
        ...     input_shape=(None, None, 3))
        >>> features = vit_feature_model(vit, block_indices=(1, -1))
        >>> maps = features(keras.ops.zeros((1, 224, 320, 3)))
        >>> {k: tuple(v.shape) for k, v in maps.items()}
        {'block_1': (1, 14, 20, 64), 'block_3': (1, 14, 20, 64)}
    """
    layers = {layer.name: layer for layer in model.layers}
    encoder = layers.get("encoder")
    if not isinstance(encoder, ViTEncoder) or "patch_embed" not in layers:
        raise ValueError(
            f"{model.name!r} is not a ViT built by VisionTransformer: it "
            "needs the layers `patch_embed` and `encoder` (a ViTEncoder)."
        )
    indices = _block_indices(block_indices, len(encoder.blocks))
    if norm and encoder.norm is None:
        raise ValueError(
            "norm=True needs the encoder's final LayerNorm, but this model "
            "normalises the pooled vector instead (pooled_norm=True)."
        )
    prefix = sum(
        layer.num_tokens
        for layer in model.layers
        if isinstance(layer, ClassToken)
    )
    patches = layers["patch_embed"].output
    x = encoder.input
    outputs = {}
    for k in range(indices[-1] + 1):
        block = encoder.blocks[k]
        if not isinstance(block, ViTEncoderBlock):  # pragma: no cover
            raise ValueError(f"encoder block {k} is a {type(block)}.")
        # The block's own position embedding or relative bias, if any.
        x, bias = encoder.block_arguments(x, k)
        x = block(x, attention_bias=bias)
        if k in indices:
            tokens = encoder.norm(x) if norm else x
            outputs[f"block_{k}"] = TokenGrid(prefix, name=f"block_{k}_grid")(
                [tokens, patches]
            )
    inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs
    return keras.Model(inputs, outputs, name=name or f"{model.name}_features")


def _vit_encoder(model: keras.Model) -> ViTEncoder:
    encoder = {layer.name: layer for layer in model.layers}.get("encoder")
    if not isinstance(encoder, ViTEncoder):
        raise ValueError(
            f"{model.name!r} is not a ViT built by VisionTransformer: it "
            "needs the layer `encoder` (a ViTEncoder)."
        )
    return encoder


def vit_attention_model(
    model: keras.Model, block_indices=None, *, name: str | None = None
) -> keras.Model:
    """A model that outputs a ViT's attention probabilities per block.

    The softmax attention weights of encoder blocks `blocks_{k}`, the
    matrices Hugging Face returns with `output_attentions=True`, from the
    model's own layers (same weights, nothing rebuilt or converted): an
    `AttentionProbe` on the model's `encoder`, called on the encoder's
    input tensor of the original graph, runs the blocks exactly as the
    encoder's `call` does (every position-embedding variant's embedding
    or relative bias included) and reads each block's probabilities.
    Inference only (no dropout). Works for a model of any input size
    (`input_shape=(None, None, 3)`), N then being that call's token
    count. The probe does not serialise: save `model` and build the
    attention model again after loading it.

    Args:
        model: a model from `VisionTransformer` or a ViT variant, with or
            without its head.
        block_indices: the blocks to output (ints; negative ones count
            from the end, -1 is the last block); default all blocks.
        name: name of the new model; default `"{model.name}_attention"`.

    Returns:
        A `keras.Model` with the model's inputs and a dict of outputs
        `{"blocks_{k}": (B, heads, N, N)}` float32, one per chosen block
        k, N = P + h * w tokens (prefix tokens first, then the patches
        row-major); row [b, h, i] is query i's distribution over the keys
        and sums to 1.

    Raises:
        ValueError: `model` has no ViT encoder (`encoder`) or an index is
            out of range.

    Example:
        >>> vit = VisionTransformer(patch_size=8, hidden_size=16,
        ...     num_layers=2, num_heads=2, mlp_dim=32, classes=3,
        ...     input_shape=(32, 32, 3))
        >>> attention = vit_attention_model(vit, block_indices=-1)
        >>> probs = attention(keras.ops.zeros((1, 32, 32, 3)))
        >>> {k: tuple(v.shape) for k, v in probs.items()}
        {'blocks_1': (1, 2, 17, 17)}
    """
    encoder = _vit_encoder(model)
    indices = _block_indices(block_indices, len(encoder.blocks))
    probabilities = AttentionProbe(encoder, name="encoder_attention_probe")(
        encoder.input
    )
    outputs = {f"blocks_{k}": probabilities[k] for k in indices}
    inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs
    return keras.Model(inputs, outputs, name=name or f"{model.name}_attention")
