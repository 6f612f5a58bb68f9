"""Conv + BatchNorm + ReLU: mmcv's `ConvModule` as segmentation heads use it."""

from __future__ import annotations

import keras
from keras import ops

from keras_swin.layers._serialization import ConfigFromArguments, register


@register
class ConvModule(ConfigFromArguments, keras.layers.Layer):
    """A bias-free k x k convolution, BatchNorm, then ReLU.

    mmcv's `ConvModule(norm_cfg=BN, act_cfg=ReLU)` and Hugging Face's
    `UperNetConvModule`: the convolution (`conv`, stride 1, zero padding
    k // 2, so the map keeps its size) has no bias because the BatchNorm
    (`bn`) that follows has one. BatchNorm follows PyTorch's defaults:
    epsilon 1e-5 and momentum 0.1 for the running statistics (Keras
    momentum 0.9).

    Args:
        filters: output channels.
        kernel_size: odd side of the square kernel.
        epsilon: BatchNorm epsilon.
        momentum: Keras BatchNorm momentum (1 - PyTorch's).
        **kwargs: base `Layer` arguments.

    Shapes:
        inputs: (B, H, W, C) -> (B, H, W, filters).

    Example:
        >>> block = ConvModule(16, kernel_size=3)
        >>> block(keras.ops.ones((2, 9, 7, 8))).shape
        (2, 9, 7, 16)
    """

    def __init__(
        self,
        filters: int,
        kernel_size: int = 1,
        epsilon: float = 1e-5,
        momentum: float = 0.9,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(
                f"kernel_size must be odd and positive (the map keeps its "
                f"size with padding k // 2), got {kernel_size}."
            )
        self.filters = filters
        self.kernel_size = kernel_size
        self.epsilon = epsilon
        self.momentum = momentum
        self.conv = keras.layers.Conv2D(
            filters,
            kernel_size,
            padding="same",
            use_bias=False,
            # mmcv's ConvModule: kaiming normal, fan_out, ReLU gain.
            kernel_initializer=keras.initializers.VarianceScaling(
                2.0, mode="fan_out", distribution="untruncated_normal"
            ),
            name="conv",
            dtype=self.dtype_policy,
        )
        self.bn = keras.layers.BatchNormalization(
            epsilon=epsilon,
            momentum=momentum,
            name="bn",
            dtype=self.dtype_policy,
        )

    def build(self, input_shape):
        self.conv.build(input_shape)
        self.bn.build((*input_shape[:-1], self.filters))

    def call(self, inputs, training=None):
        return ops.relu(self.bn(self.conv(inputs), training=training))

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.filters)
