"""Vision Transformer (Dosovitskiy et al., 2021) as a functional model."""

from __future__ import annotations

import keras

from keras_swin.layers import (
    ClassToken,
    PatchEmbed,
    PositionEmbedding,
    TokenPooling,
    ViTEncoder,
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
        include_top: add pooling, `pre_logits` and `head`.
        input_tensor: optional Keras tensor as image input.
        input_shape: (H, W, C); default (224, 224, 3). H and W must be
            static multiples of `patch_size` (the position embedding is
            made for that grid).
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
    image, inputs = resolve_inputs(input_tensor, input_shape, 224)
    height, width = image.shape[1], image.shape[2]
    if (
        height is None
        or width is None
        or height % patch_size
        or (width % patch_size)
    ):
        raise ValueError(
            "ViT needs a static input size that is a multiple of the patch "
            f"size {patch_size}, got input shape {tuple(image.shape[1:])}."
        )

    x = PatchEmbed(
        patch_size,
        hidden_size,
        use_norm=False,
        pad_to_patch=False,
        # The position embedding is made for this size.
        input_size=(height, width),
        name="patch_embed",
    )(record_preprocessing(image, preprocessing))
    x = keras.layers.Reshape((-1, hidden_size), name="flatten")(x)
    if not position_embedding_on_prefix:
        x = PositionEmbedding(name="pos_embed")(x)
    if num_register_tokens:
        x = ClassToken(num_tokens=num_register_tokens, name="reg_token")(x)
    if class_token:
        x = ClassToken(name="cls_token")(x)
    if position_embedding_on_prefix:
        x = PositionEmbedding(name="pos_embed")(x)
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
    )(x)

    if include_top:
        pooling = "token" if classifier == "token" else "avg"
    if pooling is not None:
        prefix = int(class_token) + num_register_tokens
        x = TokenPooling(pooling, num_prefix_tokens=prefix, name="pool")(x)
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
