"""Swin Transformer (Liu et al., 2021) as a functional Keras model."""

from __future__ import annotations

import keras

from keras_swin.layers import (
    PatchEmbed,
    PatchMerging,
    PositionEmbedding,
    SwinStage,
    linear_drop_path_rates,
)
from keras_swin.models._common import (
    check_head_arguments,
    defer_size_check,
    record_preprocessing,
    resolve_inputs,
)

#: The released Swin configurations (official `configs/swin/*.yaml`).
#: `drop_path_rate` is the ImageNet-1K training rate of the paper (T/S/B)
#: and the ImageNet-22K pre-training rate for L.
SWIN_CONFIGS = {
    "swin_tiny": dict(
        embed_dim=96,
        depths=(2, 2, 6, 2),
        num_heads=(3, 6, 12, 24),
        drop_path_rate=0.2,
    ),
    "swin_small": dict(
        embed_dim=96,
        depths=(2, 2, 18, 2),
        num_heads=(3, 6, 12, 24),
        drop_path_rate=0.3,
    ),
    "swin_base": dict(
        embed_dim=128,
        depths=(2, 2, 18, 2),
        num_heads=(4, 8, 16, 32),
        drop_path_rate=0.5,
    ),
    "swin_large": dict(
        embed_dim=192,
        depths=(2, 2, 18, 2),
        num_heads=(6, 12, 24, 48),
        drop_path_rate=0.2,
    ),
}


def SwinTransformer(
    embed_dim: int = 96,
    depths=(2, 2, 6, 2),
    num_heads=(3, 6, 12, 24),
    window_size: int = 7,
    patch_size: int = 4,
    mlp_ratio: float = 4.0,
    qkv_bias: bool = True,
    qk_scale: float | None = None,
    dropout_rate: float = 0.0,
    attention_dropout_rate: float = 0.0,
    drop_path_rate: float = 0.1,
    layer_norm_epsilon: float = 1e-5,
    patch_norm: bool = True,
    shifted_windows: bool = True,
    relative_position_bias: bool = True,
    absolute_position_embedding: bool = False,
    include_top: bool = True,
    input_tensor=None,
    input_shape=None,
    pooling: str | None = None,
    classes: int = 1000,
    classifier_activation="softmax",
    name: str = "swin_transformer",
    preprocessing: dict | None = None,
) -> keras.Model:
    """Builds a Swin Transformer classifier or backbone.

    The graph mirrors the official code: `patch_embed` (conv p x p + norm),
    optional `absolute_pos_embed`, stages `layers_{i}` of `SwinBlock`s
    (`layers_{i}/blocks_{j}`), `layers_{i}_downsample` (PatchMerging)
    between stages, the final `norm`, average pooling and `head`.

    Any input size works, including `(None, None, 3)`: sizes that are not
    multiples of patch x window are zero-padded (bottom/right) before the
    cyclic shift, the semantics of the official detection code and of
    Hugging Face. A stage whose map is not larger than the window uses the
    map size as window and no shift, as the official code does; with a
    static input size the relative-position tables of such stages are
    sized for that smaller window, exactly like official checkpoints.

    Args:
        embed_dim: channels C of the first stage (doubled per stage).
        depths: blocks per stage.
        num_heads: attention heads per stage.
        window_size: window side M (7 at 224 px, 12 at 384 px).
        patch_size: patch side p.
        mlp_ratio: MLP width as a multiple of C.
        qkv_bias: whether `qkv` has a bias.
        qk_scale: override of the head_dim^-0.5 attention scale.
        dropout_rate: dropout after the patch embedding and in the blocks.
        attention_dropout_rate: dropout on attention probabilities.
        drop_path_rate: stochastic depth of the last block; rates rise
            linearly over all blocks.
        layer_norm_epsilon: epsilon of every LayerNorm (1e-5 in Swin).
        patch_norm: LayerNorm after the patch embedding.
        shifted_windows: False: no cyclic shift (Table 4 ablation).
        relative_position_bias: False: no relative bias (Table 4).
        absolute_position_embedding: True: a learned absolute position
            embedding after the patch embedding (Table 4, `ape`); needs a
            static input size.
        include_top: add the pooling and the `head` classifier.
        input_tensor: optional Keras tensor to use as the image input.
        input_shape: (H, W, C); default (224, 224, 3); None sides allowed.
        pooling: without the top: None (feature map (B, h, w, 8C)),
            "avg" or "max" (vector (B, 8C)).
        classes: classes of the head.
        classifier_activation: activation of the head; None for logits.
        name: model name.
        preprocessing: None, or the `PreprocessingInfo` arguments to
            record in an identity layer `preprocessing_info` after the
            input (the applications pass the weights' evaluation
            transform here, see `keras_swin.applications`).

    Returns:
        A `keras.Model` mapping (B, H, W, C) images to (B, classes), or to
        features as set by `pooling`.

    Example:
        >>> model = SwinTransformer(embed_dim=24, depths=(2, 2),
        ...                         num_heads=(1, 2), classes=10)
        >>> model(keras.ops.zeros((1, 224, 224, 3))).shape
        (1, 10)
    """
    depths, num_heads = tuple(depths), tuple(num_heads)
    if len(depths) != len(num_heads) or not depths:
        raise ValueError(
            f"depths {depths} and num_heads {num_heads} must be non-empty "
            "and of the same length (one entry per stage)."
        )
    check_head_arguments(include_top, pooling, classes)
    image, inputs = resolve_inputs(input_tensor, input_shape, 224)
    height, width = image.shape[1], image.shape[2]
    if absolute_position_embedding and (height is None or width is None):
        raise ValueError(
            "absolute_position_embedding needs a static input size, got "
            f"input shape {tuple(image.shape[1:])}."
        )

    x = PatchEmbed(
        patch_size,
        embed_dim,
        use_norm=patch_norm,
        layer_norm_epsilon=layer_norm_epsilon,
        # The stages' windows below are chosen for this size.
        input_size=(height, width),
        name="patch_embed",
    )(record_preprocessing(image, preprocessing))
    if absolute_position_embedding:
        x = PositionEmbedding(
            keras.initializers.TruncatedNormal(stddev=0.02),
            name="absolute_pos_embed",
        )(x)
    x = keras.layers.Dropout(dropout_rate, name="pos_drop")(x)

    def stage(i, dim, depth, heads, window, rates):
        return SwinStage(
            dim,
            depth,
            heads,
            window_size=window,
            mlp_ratio=mlp_ratio,
            qkv_bias=qkv_bias,
            qk_scale=qk_scale,
            dropout_rate=dropout_rate,
            attention_dropout_rate=attention_dropout_rate,
            drop_path_rate=rates,
            layer_norm_epsilon=layer_norm_epsilon,
            shifted_windows=shifted_windows,
            use_relative_position_bias=relative_position_bias,
            name=f"layers_{i}",
        )

    x = swin_stages(
        x,
        embed_dim,
        depths,
        num_heads,
        window_size,
        drop_path_rate,
        stage,
        lambda i, dim: PatchMerging(
            dim,
            layer_norm_epsilon=layer_norm_epsilon,
            name=f"layers_{i}_downsample",
        ),
    )
    x = swin_head(
        x,
        layer_norm_epsilon,
        include_top=include_top,
        pooling=pooling,
        classes=classes,
        classifier_activation=classifier_activation,
    )
    model = keras.Model(inputs, x, name=name)
    defer_size_check(model, image)
    return model


def swin_stages(
    x,
    embed_dim: int,
    depths,
    num_heads,
    window_size: int,
    drop_path_rate: float,
    make_stage,
    make_merging,
):
    """The stages and patch mergings of a Swin classifier, V1 or V2.

    Stage i works at embed_dim * 2^i channels; a stage whose static map
    is not larger than the window gets the map's side as window (the
    official code's clamp); stochastic depth rises linearly over all
    blocks. Patch merging follows every stage but the last.

    Args:
        x: patch embedding output (B, H/p, W/p, embed_dim).
        embed_dim: channels of stage 0.
        depths: blocks per stage.
        num_heads: heads per stage.
        window_size: window side M.
        drop_path_rate: stochastic depth of the last block.
        make_stage: `(i, dim, depth, heads, window, rates) -> layer`.
        make_merging: `(i, dim) -> layer` named `layers_{i}_downsample`.

    Returns:
        The last stage's map (B, h, w, embed_dim * 2^(n-1)).
    """
    rates = linear_drop_path_rates(drop_path_rate, sum(depths))
    for i, (depth, heads) in enumerate(zip(depths, num_heads, strict=True)):
        dim = embed_dim * 2**i
        grid_h, grid_w = x.shape[1], x.shape[2]
        window = window_size
        if grid_h is not None and grid_w is not None:
            # Static size: a stage not larger than the window attends the
            # whole map, and its bias table is made for that window.
            window = min(window_size, grid_h, grid_w)
        block_rates = rates[sum(depths[:i]) : sum(depths[: i + 1])]
        x = make_stage(i, dim, depth, heads, window, block_rates)(x)
        if i < len(depths) - 1:
            x = make_merging(i, dim)(x)
    return x


def swin_head(
    x,
    layer_norm_epsilon: float,
    *,
    include_top: bool,
    pooling,
    classes: int,
    classifier_activation,
):
    """The final `norm`, then `avgpool` + `head`, or the headless pooling.

    Args:
        x: last stage's map (B, h, w, C).
        layer_norm_epsilon: epsilon of `norm`.
        include_top: add average pooling and the `head` classifier.
        pooling: without the top: None, "avg" or "max".
        classes: classes of the head.
        classifier_activation: activation of the head.

    Returns:
        (B, classes), (B, C) or (B, h, w, C).
    """
    x = keras.layers.LayerNormalization(
        epsilon=layer_norm_epsilon, name="norm"
    )(x)
    if include_top:
        x = keras.layers.GlobalAveragePooling2D(name="avgpool")(x)
        return keras.layers.Dense(
            classes, activation=classifier_activation, name="head"
        )(x)
    if pooling == "avg":
        return keras.layers.GlobalAveragePooling2D(name="avgpool")(x)
    if pooling == "max":
        return keras.layers.GlobalMaxPooling2D(name="maxpool")(x)
    return x


def swin_feature_model(model: keras.Model, names=None) -> keras.Model:
    """A model that outputs a Swin model's intermediate feature maps.

    Every feature map of a Swin model built by `SwinTransformer` is the
    output of a named layer: `patch_embed` (B, H/p, W/p, C), `layers_{i}`
    (stage i after its blocks: (B, H_i, W_i, C_i), the maps a detection or
    segmentation neck uses), `layers_{i}_downsample` (after patch merging)
    and `norm` (the final LayerNorm).

    Args:
        model: a model from `SwinTransformer` or a Swin variant, with or
            without its head.
        names: the layer names to output; default the stage outputs
            `layers_0` ... `layers_{n-1}`.

    Returns:
        A `keras.Model` with the same inputs and a dict of outputs keyed by
        layer name.

    Example:
        >>> backbone = SwinTiny(include_top=False, input_shape=(None, None, 3))
        >>> pyramid = swin_feature_model(backbone)
        >>> maps = pyramid.predict(images)  # {"layers_0": (B, H/4, W/4, 96),
        ...                                 #  ..., "layers_3": (..., 768)}
    """
    if names is None:
        names = [
            layer.name for layer in model.layers if isinstance(layer, SwinStage)
        ]
    present = {layer.name for layer in model.layers}
    missing = [n for n in names if n not in present]
    if missing:
        raise ValueError(
            f"{model.name!r} has no layer named {missing}; Swin feature "
            "layers are patch_embed, layers_{i}, layers_{i}_downsample and "
            "norm."
        )
    return keras.Model(
        model.inputs,
        {n: model.get_layer(n).output for n in names},
        name=f"{model.name}_features",
    )
