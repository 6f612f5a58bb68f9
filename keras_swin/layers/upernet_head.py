"""UperNet's decode head: pyramid pooling on the last map, then an FPN."""

from __future__ import annotations

import keras
from keras import ops

from keras_swin.layers._serialization import ConfigFromArguments, register
from keras_swin.layers.adaptive_pool import AdaptiveAveragePooling2D
from keras_swin.layers.conv_module import ConvModule
from keras_swin.layers.resize import resize_bilinear, spatial_size


def check_pool_scales(pool_scales) -> tuple[int, ...]:
    """The pool scales as a tuple of distinct positive ints.

    Example:
        >>> check_pool_scales([1, 2, 3, 6])
        (1, 2, 3, 6)
    """
    scales = tuple(pool_scales)
    if (
        not scales
        or not all(type(s) is int and s >= 1 for s in scales)
        or len(set(scales)) != len(scales)
    ):
        raise ValueError(
            f"pool_scales must be distinct positive ints, e.g. (1, 2, 3, 6), "
            f"got {pool_scales!r}."
        )
    return scales


@register
class UperNetHead(ConfigFromArguments, keras.layers.Layer):
    """The UperNet decode head (Xiao et al., 2018) of mmsegmentation.

    On n feature maps, finest first (`UPerHead` of mmsegmentation,
    `UperNetHead` of Hugging Face, `align_corners=False`):

    1. pyramid pooling on the last map: for each scale s,
       `AdaptiveAvgPool(s)` (PyTorch's bins), a 1x1 `ConvModule`
       (`psp_modules_{k}`), bilinear resize back; concatenated with the
       map and fused by a 3x3 `ConvModule` (`bottleneck`);
    2. 1x1 lateral `ConvModule`s on the other maps (`lateral_convs_{i}`);
    3. top-down: each lateral plus the bilinear upsampling of the one
       above it;
    4. 3x3 `ConvModule`s on all but the top (`fpn_convs_{i}`), every level
       upsampled to the finest, concatenated and fused by a 3x3
       `ConvModule` (`fpn_bottleneck`);
    5. `Dropout2d` (training only) and the 1x1 classifier with bias
       (`conv_seg`).

    Args:
        num_classes: output channels (classes).
        channels: width of every `ConvModule`.
        pool_scales: output sizes of the pyramid pooling.
        num_levels: number of input maps n (the backbone's outputs).
        dropout_rate: rate of the channel dropout before `conv_seg`.
        **kwargs: base `Layer` arguments.

    Shapes:
        inputs: list of n >= 1 maps (B, H_i, W_i, C_i), finest first ->
        logits (B, H_0, W_0, num_classes).

    Example:
        >>> head = UperNetHead(5, channels=8)
        >>> maps = [keras.ops.ones((1, 16 // 2**i, 12 // 2**i, 4 * 2**i))
        ...         for i in range(4)]
        >>> head(maps).shape
        (1, 16, 12, 5)
    """

    def __init__(
        self,
        num_classes: int,
        channels: int = 512,
        pool_scales=(1, 2, 3, 6),
        num_levels: int = 4,
        dropout_rate: float = 0.1,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if type(num_levels) is not int or num_levels < 1:
            raise ValueError(
                f"num_levels must be a positive int (the number of feature "
                f"maps), got {num_levels!r}."
            )
        self.num_classes = num_classes
        self.channels = channels
        self.pool_scales = check_pool_scales(pool_scales)
        self.num_levels = num_levels
        self.dropout_rate = dropout_rate
        policy = self.dtype_policy
        self.pools = [
            AdaptiveAveragePooling2D(s, name=f"pool_{k}", dtype=policy)
            for k, s in enumerate(self.pool_scales)
        ]
        self.psp_modules = [
            ConvModule(channels, 1, name=f"psp_modules_{k}", dtype=policy)
            for k in range(len(self.pool_scales))
        ]
        self.bottleneck = ConvModule(
            channels, 3, name="bottleneck", dtype=policy
        )
        self.lateral_convs = [
            ConvModule(channels, 1, name=f"lateral_convs_{i}", dtype=policy)
            for i in range(num_levels - 1)
        ]
        self.fpn_convs = [
            ConvModule(channels, 3, name=f"fpn_convs_{i}", dtype=policy)
            for i in range(num_levels - 1)
        ]
        self.fpn_bottleneck = ConvModule(
            channels, 3, name="fpn_bottleneck", dtype=policy
        )
        self.dropout = keras.layers.SpatialDropout2D(
            dropout_rate, name="dropout", dtype=policy
        )
        # Keras' default Glorot init, not mmsegmentation's normal(0, 0.01):
        # trained from scratch on small data, the 0.01 classifier stayed
        # at the all-background prediction for hundreds of steps, while
        # Glorot learned at once (docs/segmentation.md).
        self.conv_seg = keras.layers.Conv2D(
            num_classes, 1, name="conv_seg", dtype=policy
        )

    def build(self, input_shape):
        shapes = [tuple(s) for s in input_shape]
        if len(shapes) != self.num_levels or any(
            len(s) != 4 or s[-1] is None for s in shapes
        ):
            raise ValueError(
                f"{self.name} expects a list of {self.num_levels} (B, H, W, C) "
                f"maps with known channels, finest first; got {input_shape}."
            )
        top = shapes[-1]
        for pool, module in zip(self.pools, self.psp_modules, strict=True):
            module.build((None, *pool.output_size, top[-1]))
        fused = top[-1] + len(self.pool_scales) * self.channels
        self.bottleneck.build((None, None, None, fused))
        for shape, lateral, fpn in zip(
            shapes[:-1], self.lateral_convs, self.fpn_convs, strict=True
        ):
            lateral.build((None, None, None, shape[-1]))
            fpn.build((None, None, None, self.channels))
        width = (None, None, None, len(shapes) * self.channels)
        self.fpn_bottleneck.build(width)
        self.conv_seg.build((None, None, None, self.channels))

    def _pyramid_pooling(self, x, training):
        size = spatial_size(x)
        outputs = [x]
        for pool, module in zip(self.pools, self.psp_modules, strict=True):
            pooled = module(pool(x), training=training)
            outputs.append(resize_bilinear(pooled, size))
        return self.bottleneck(
            ops.concatenate(outputs, axis=-1), training=training
        )

    def call(self, inputs, training=None):
        inputs = list(inputs)
        laterals = [
            conv(x, training=training)
            for conv, x in zip(self.lateral_convs, inputs[:-1], strict=True)
        ]
        laterals.append(self._pyramid_pooling(inputs[-1], training))
        for i in range(len(laterals) - 1, 0, -1):
            laterals[i - 1] = laterals[i - 1] + resize_bilinear(
                laterals[i], spatial_size(laterals[i - 1])
            )
        outputs = [
            conv(x, training=training)
            for conv, x in zip(self.fpn_convs, laterals[:-1], strict=True)
        ]
        outputs.append(laterals[-1])
        size = spatial_size(outputs[0])
        outputs = [outputs[0]] + [resize_bilinear(x, size) for x in outputs[1:]]
        x = self.fpn_bottleneck(
            ops.concatenate(outputs, axis=-1), training=training
        )
        return self.conv_seg(self.dropout(x, training=training))

    def compute_output_shape(self, input_shape):
        first = tuple(input_shape[0])
        return (*first[:-1], self.num_classes)

    def get_config(self):
        config = super().get_config()
        config["pool_scales"] = list(self.pool_scales)
        return config
