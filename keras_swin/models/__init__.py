"""Model builders: Swin Transformer and Vision Transformer."""

from keras_swin.models.swin import (
    SWIN_CONFIGS,
    SwinBase,
    SwinLarge,
    SwinSmall,
    SwinTiny,
    SwinTransformer,
    swin_feature_model,
)
from keras_swin.models.vit import (
    VIT_CONFIGS,
    VisionTransformer,
    ViTBase16,
    ViTBase32,
    ViTHuge14,
    ViTLarge16,
    ViTLarge32,
    ViTSmall16,
    ViTTiny16,
)

__all__ = [
    "SWIN_CONFIGS",
    "VIT_CONFIGS",
    "SwinBase",
    "SwinLarge",
    "SwinSmall",
    "SwinTiny",
    "SwinTransformer",
    "ViTBase16",
    "ViTBase32",
    "ViTHuge14",
    "ViTLarge16",
    "ViTLarge32",
    "ViTSmall16",
    "ViTTiny16",
    "VisionTransformer",
    "swin_feature_model",
]
