"""Graph builders: Swin Transformer and Vision Transformer, no weights.

`SwinTransformer(...)` and `VisionTransformer(...)` build the functional
models from architecture arguments; `SWIN_CONFIGS` and `VIT_CONFIGS` hold
the papers' variants. Loading weights (`weights=`), the variant builders
(`SwinTiny()`, `ViTBase16()`, ...) and `load_checkpoint` are one floor up,
in `keras_swin.applications`, exported as `keras_swin.SwinTiny` etc.

Example:
    >>> from keras_swin.models import SWIN_CONFIGS, SwinTransformer
    >>> model = SwinTransformer(**SWIN_CONFIGS["swin_tiny"], classes=10)
    >>> model.output_shape
    (None, 10)
"""

from keras_swin.models.swin import (
    SWIN_CONFIGS,
    SwinTransformer,
    swin_feature_model,
)
from keras_swin.models.swin_backbone import SwinBackbone
from keras_swin.models.swin_backbone_v2 import SwinBackboneV2
from keras_swin.models.swin_v2 import (
    SWINV2_CONFIGS,
    SWINV2_RELEASE_CONFIGS,
    SwinTransformerV2,
)
from keras_swin.models.vit import (
    VIT_CONFIGS,
    VisionTransformer,
    vit_feature_model,
)

__all__ = [
    "SWIN_CONFIGS",
    "SWINV2_CONFIGS",
    "SWINV2_RELEASE_CONFIGS",
    "SwinBackbone",
    "SwinBackboneV2",
    "VIT_CONFIGS",
    "SwinTransformer",
    "SwinTransformerV2",
    "VisionTransformer",
    "swin_feature_model",
    "vit_feature_model",
]

# Registration that waited for this package's names (keras_swin.__init__).
_finish = __import__("keras_swin")._finish_registration
_finish("keras_swin.models")
del _finish
