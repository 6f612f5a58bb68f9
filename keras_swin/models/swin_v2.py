"""Swin Transformer V2 (Liu et al., 2022) as a functional Keras model."""

from __future__ import annotations

import keras

from keras_swin.layers import PatchEmbed, PatchMergingV2, SwinStageV2
from keras_swin.models._common import (
    check_head_arguments,
    defer_size_check,
    record_preprocessing,
    resolve_inputs,
)
from keras_swin.models.swin import swin_head, swin_stages

#: The Swin V2 architectures of the official `configs/swinv2/*.yaml`:
#: width, depths and heads, and the stochastic depth of their ImageNet-1K
#: training (T/S/B) or ImageNet-22K pre-training (L). Window, image size
#: and `pretrained_window_sizes` belong to a release
#: (`SWINV2_RELEASE_CONFIGS`).
SWINV2_CONFIGS = {
    "swinv2_tiny": dict(
        embed_dim=96,
        depths=(2, 2, 6, 2),
        num_heads=(3, 6, 12, 24),
        drop_path_rate=0.2,
    ),
    "swinv2_small": dict(
        embed_dim=96,
        depths=(2, 2, 18, 2),
        num_heads=(3, 6, 12, 24),
        drop_path_rate=0.3,
    ),
    "swinv2_base": dict(
        embed_dim=128,
        depths=(2, 2, 18, 2),
        num_heads=(4, 8, 16, 32),
        drop_path_rate=0.5,
    ),
    "swinv2_large": dict(
        embed_dim=192,
        depths=(2, 2, 18, 2),
        num_heads=(6, 12, 24, 48),
        drop_path_rate=0.2,
    ),
}


def _release(variant, size, window, pretrained=(0, 0, 0, 0), **extra):
    return dict(
        variant=variant,
        image_size=size,
        window_size=window,
        pretrained_window_sizes=tuple(pretrained),
        **extra,
    )


#: Every configuration of the official `configs/swinv2/*.yaml`, keyed by
#: its file name: the architecture (`variant`), image size, window and
#: the windows the position MLPs were pre-trained at (fine-tunes from
#: 192 px / window 12 to 256 / 16 and 384 / 24).
SWINV2_RELEASE_CONFIGS = {
    "swinv2_tiny_patch4_window8_256": _release("swinv2_tiny", 256, 8),
    "swinv2_tiny_patch4_window16_256": _release("swinv2_tiny", 256, 16),
    "swinv2_small_patch4_window8_256": _release("swinv2_small", 256, 8),
    "swinv2_small_patch4_window16_256": _release("swinv2_small", 256, 16),
    "swinv2_base_patch4_window8_256": _release("swinv2_base", 256, 8),
    "swinv2_base_patch4_window16_256": _release("swinv2_base", 256, 16),
    "swinv2_base_patch4_window12_192_22k": _release(
        "swinv2_base", 192, 12, drop_path_rate=0.2, classes=21841
    ),
    "swinv2_base_patch4_window12to16_192to256_22kto1k_ft": _release(
        "swinv2_base", 256, 16, (12, 12, 12, 6), drop_path_rate=0.2
    ),
    "swinv2_base_patch4_window12to24_192to384_22kto1k_ft": _release(
        "swinv2_base", 384, 24, (12, 12, 12, 6), drop_path_rate=0.2
    ),
    "swinv2_large_patch4_window12_192_22k": _release(
        "swinv2_large", 192, 12, classes=21841
    ),
    "swinv2_large_patch4_window12to16_192to256_22kto1k_ft": _release(
        "swinv2_large", 256, 16, (12, 12, 12, 6)
    ),
    "swinv2_large_patch4_window12to24_192to384_22kto1k_ft": _release(
        "swinv2_large", 384, 24, (12, 12, 12, 6)
    ),
}


def _stage_windows(pretrained_window_sizes, stages: int) -> tuple:
    if isinstance(pretrained_window_sizes, int):
        pretrained_window_sizes = (pretrained_window_sizes,) * stages
    sizes = tuple(int(s) for s in pretrained_window_sizes)
    if len(sizes) != stages:
        raise ValueError(
            f"pretrained_window_sizes {sizes} must have one entry per stage "
            f"({stages})."
        )
    bad = [s for s in sizes if s < 0 or s == 1]
    if bad:
        raise ValueError(
            f"pretrained_window_sizes must be 0 (none) or >= 2, got {sizes}."
        )
    return sizes


def SwinTransformerV2(
    embed_dim: int = 96,
    depths=(2, 2, 6, 2),
    num_heads=(3, 6, 12, 24),
    window_size: int = 8,
    pretrained_window_sizes=0,
    patch_size: int = 4,
    mlp_ratio: float = 4.0,
    qkv_bias: bool = True,
    dropout_rate: float = 0.0,
    attention_dropout_rate: float = 0.0,
    drop_path_rate: float = 0.1,
    layer_norm_epsilon: float = 1e-5,
    patch_norm: bool = True,
    include_top: bool = True,
    input_tensor=None,
    input_shape=None,
    pooling: str | None = None,
    classes: int = 1000,
    classifier_activation="softmax",
    name: str = "swin_transformer_v2",
    preprocessing: dict | None = None,
) -> keras.Model:
    """Builds a Swin Transformer V2 classifier or backbone.

    The graph mirrors the official `SwinTransformerV2`: `patch_embed`
    (conv p x p + norm), stages `layers_{i}` of `SwinBlockV2`s
    (res-post-norm, scaled cosine attention, continuous position bias),
    `layers_{i}_downsample` (`PatchMergingV2`: reduction, then norm)
    between stages, the final `norm`, average pooling and `head`.

    Any input size works, `(None, None, 3)` included, with V1's window
    rules (zero padding bottom/right to window multiples; a stage not
    larger than the window attends its whole map without shift). No
    weight depends on the window or the image size: the same weights
    run at another window (a fine-tune from window 8 to 16) once
    `pretrained_window_sizes` names the windows the position MLPs were
    trained at.

    Args:
        embed_dim: channels C of the first stage (doubled per stage).
        depths: blocks per stage.
        num_heads: attention heads per stage.
        window_size: window side M (8, 12, 16 or 24 in the releases).
        pretrained_window_sizes: per stage, or one int for every stage:
            the window the continuous position bias was trained at, 0 for
            none (default); e.g. (12, 12, 12, 6) for the 22K -> 1K
            fine-tunes.
        patch_size: patch side p.
        mlp_ratio: MLP width as a multiple of C.
        qkv_bias: whether q and v have biases (`q_bias`, `v_bias`).
        dropout_rate: dropout after the patch embedding and in the blocks.
        attention_dropout_rate: dropout on attention probabilities.
        drop_path_rate: stochastic depth of the last block; rates rise
            linearly over all blocks.
        layer_norm_epsilon: epsilon of every LayerNorm (1e-5).
        patch_norm: LayerNorm after the patch embedding.
        include_top: add the pooling and the `head` classifier.
        input_tensor: optional Keras tensor to use as the image input.
        input_shape: (H, W, C); default (256, 256, 3); None sides allowed.
        pooling: without the top: None (feature map (B, h, w, 8C)),
            "avg" or "max" (vector (B, 8C)).
        classes: classes of the head.
        classifier_activation: activation of the head; None for logits.
        name: model name.
        preprocessing: None, or the `PreprocessingInfo` arguments to
            record after the input (see `SwinTransformer`).

    Returns:
        A `keras.Model` mapping (B, H, W, C) images to (B, classes), or to
        features as set by `pooling`.

    Example:
        >>> model = SwinTransformerV2(embed_dim=24, depths=(2, 2),
        ...                           num_heads=(1, 2), classes=10)
        >>> model(keras.ops.zeros((1, 256, 256, 3))).shape
        (1, 10)
    """
    depths, num_heads = tuple(depths), tuple(num_heads)
    if len(depths) != len(num_heads) or not depths:
        raise ValueError(
            f"depths {depths} and num_heads {num_heads} must be non-empty "
            "and of the same length (one entry per stage)."
        )
    pretrained = _stage_windows(pretrained_window_sizes, len(depths))
    check_head_arguments(include_top, pooling, classes)
    image, inputs = resolve_inputs(input_tensor, input_shape, 256)

    x = PatchEmbed(
        patch_size,
        embed_dim,
        use_norm=patch_norm,
        layer_norm_epsilon=layer_norm_epsilon,
        input_size=(image.shape[1], image.shape[2]),
        name="patch_embed",
    )(record_preprocessing(image, preprocessing))
    x = keras.layers.Dropout(dropout_rate, name="pos_drop")(x)

    def stage(i, dim, depth, heads, window, rates):
        return SwinStageV2(
            dim,
            depth,
            heads,
            window_size=window,
            pretrained_window_size=pretrained[i],
            mlp_ratio=mlp_ratio,
            qkv_bias=qkv_bias,
            dropout_rate=dropout_rate,
            attention_dropout_rate=attention_dropout_rate,
            drop_path_rate=rates,
            layer_norm_epsilon=layer_norm_epsilon,
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
        lambda i, dim: PatchMergingV2(
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
