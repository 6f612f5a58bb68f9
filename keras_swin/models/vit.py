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
    load_weights,
    make_variant,
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
    include_top: bool = True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling: str | None = None,
    classes: int = 1000,
    classifier_activation="softmax",
    name: str = "vision_transformer",
) -> keras.Model:
    """Builds a Vision Transformer classifier or backbone.

    The graph: `patch_embed` (conv p x p, stride p), `flatten` to tokens,
    `cls_token` (classifier "token"), `pos_embed`, the `encoder` (blocks
    `blocks_{i}` and the final `norm`), pooling, optional `pre_logits`
    (Dense + tanh) and `head`.

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
            (no class token; mean of the tokens).
        representation_size: width of the `pre_logits` Dense + tanh layer
            of ImageNet-21k pre-training, or None.
        qkv_bias: whether `qkv` has a bias.
        dropout_rate: dropout after the position embedding and in blocks.
        attention_dropout_rate: dropout on attention probabilities.
        drop_path_rate: stochastic depth of the last block (linear rise).
        layer_norm_epsilon: epsilon of every LayerNorm.
        gelu_approximate: tanh GELU (True, official) or exact erf GELU.
        include_top: add pooling, `pre_logits` and `head`.
        weights: None or a local file: `.weights.h5`, `.keras`, or an
            official ViT `.npz` (converted strictly).
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
    check_head_arguments(
        include_top, pooling, classes, poolings=(None, "token", "avg", "max")
    )
    if pooling == "token" and classifier != "token":
        raise ValueError(
            'pooling="token" needs a class token (classifier="token").'
        )
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
        name="patch_embed",
    )(image)
    x = keras.layers.Reshape((-1, hidden_size), name="flatten")(x)
    if classifier == "token":
        x = ClassToken(name="cls_token")(x)
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
        name="encoder",
    )(x)

    if include_top:
        pooling = "token" if classifier == "token" else "avg"
    if pooling is not None:
        x = TokenPooling(pooling, name="pool")(x)
        if representation_size is not None:
            x = keras.layers.Dense(
                representation_size, activation="tanh", name="pre_logits"
            )(x)
    if include_top:
        x = keras.layers.Dense(
            classes, activation=classifier_activation, name="head"
        )(x)

    model = keras.Model(inputs, x, name=name)
    load_weights(model, weights)
    return model


def _variant(key: str, name: str, title: str):
    config = VIT_CONFIGS[key]
    return make_variant(
        VisionTransformer,
        config,
        name,
        summary=f"{title}: patch {config['patch_size']}, width "
        f"{config['hidden_size']}, {config['num_layers']} layers, "
        f"{config['num_heads']} heads, MLP {config['mlp_dim']}.",
        notes="Official JAX numerics by default (LayerNorm eps 1e-6, tanh "
        "GELU); see `VisionTransformer` for `classifier`, "
        "`representation_size`, `layer_norm_epsilon`, `gelu_approximate`.",
        poolings='None, "token", "avg" or "max"',
    )


ViTTiny16 = _variant("vit_tiny_patch16", "ViTTiny16", "ViT-Ti/16")
ViTSmall16 = _variant("vit_small_patch16", "ViTSmall16", "ViT-S/16")
ViTBase16 = _variant("vit_base_patch16", "ViTBase16", "ViT-B/16")
ViTBase32 = _variant("vit_base_patch32", "ViTBase32", "ViT-B/32")
ViTLarge16 = _variant("vit_large_patch16", "ViTLarge16", "ViT-L/16")
ViTLarge32 = _variant("vit_large_patch32", "ViTLarge32", "ViT-L/32")
ViTHuge14 = _variant("vit_huge_patch14", "ViTHuge14", "ViT-H/14")
