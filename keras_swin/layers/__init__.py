"""Backend-agnostic Keras layers of Swin Transformer and ViT."""

from keras_swin.layers.adaptive_pool import AdaptiveAveragePooling2D
from keras_swin.layers.attention import Attention
from keras_swin.layers.attention_probe import AttentionProbe
from keras_swin.layers.conv_module import ConvModule
from keras_swin.layers.drop_path import DropPath, linear_drop_path_rates
from keras_swin.layers.fcn_head import FCNHead
from keras_swin.layers.mlp import Mlp
from keras_swin.layers.patch_embed import PatchEmbed
from keras_swin.layers.patch_merging import PatchMerging
from keras_swin.layers.patch_merging_v2 import PatchMergingV2
from keras_swin.layers.position import (
    ClassToken,
    PositionEmbedding,
    ResizedPositionEmbedding,
)
from keras_swin.layers.position_2d import PositionEmbedding2D
from keras_swin.layers.preprocessing_info import PreprocessingInfo
from keras_swin.layers.relative_position_bias import RelativePositionBias
from keras_swin.layers.resize import ResizeLike, resize_bilinear
from keras_swin.layers.swin_block import SwinBlock, SwinStage
from keras_swin.layers.swin_block_v2 import SwinBlockV2, SwinStageV2
from keras_swin.layers.token_grid import TokenGrid
from keras_swin.layers.token_pooling import TokenPooling
from keras_swin.layers.upernet_head import UperNetHead
from keras_swin.layers.vit_encoder import ViTEncoder, ViTEncoderBlock
from keras_swin.layers.vit_position import ViTPositionEmbedding
from keras_swin.layers.window_attention import WindowAttention
from keras_swin.layers.window_attention_v2 import WindowAttentionV2
from keras_swin.layers.windows import (
    relative_position_index,
    shift_window_mask,
    window_partition,
    window_reverse,
)

__all__ = [
    "AdaptiveAveragePooling2D",
    "Attention",
    "AttentionProbe",
    "ClassToken",
    "ConvModule",
    "DropPath",
    "FCNHead",
    "Mlp",
    "PatchEmbed",
    "PatchMerging",
    "PatchMergingV2",
    "PositionEmbedding",
    "PositionEmbedding2D",
    "PreprocessingInfo",
    "RelativePositionBias",
    "ResizeLike",
    "ResizedPositionEmbedding",
    "SwinBlock",
    "SwinStage",
    "SwinBlockV2",
    "SwinStageV2",
    "TokenGrid",
    "TokenPooling",
    "UperNetHead",
    "ViTEncoder",
    "ViTEncoderBlock",
    "ViTPositionEmbedding",
    "WindowAttention",
    "WindowAttentionV2",
    "linear_drop_path_rates",
    "relative_position_index",
    "resize_bilinear",
    "shift_window_mask",
    "window_partition",
    "window_reverse",
]

# Registration that waited for this package's names (keras_swin.__init__).
_finish = __import__("keras_swin")._finish_registration
_finish("keras_swin.layers")
del _finish
