"""keras-swin: Swin Transformer and Vision Transformer for Keras 3.

Backend-agnostic layers (`keras_swin.layers`), `keras.applications`-style
builders (`SwinTiny()`, `ViTBase16()`, ...) and, in the sibling package
`weights_tools`, strict converters of the official checkpoints.
"""

from keras_swin import layers
from keras_swin.models import (
    SWIN_CONFIGS,
    VIT_CONFIGS,
    SwinBase,
    SwinLarge,
    SwinSmall,
    SwinTiny,
    SwinTransformer,
    VisionTransformer,
    ViTBase16,
    ViTBase32,
    ViTHuge14,
    ViTLarge16,
    ViTLarge32,
    ViTSmall16,
    ViTTiny16,
)

__version__ = "0.1.0"

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
    "__version__",
    "layers",
]
