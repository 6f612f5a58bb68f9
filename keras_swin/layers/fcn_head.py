"""The FCN head: UperNet's auxiliary head on an intermediate map."""

from __future__ import annotations

import keras
from keras import ops

from keras_swin.layers._serialization import ConfigFromArguments, register
from keras_swin.layers.conv_module import ConvModule


@register
class FCNHead(ConfigFromArguments, keras.layers.Layer):
    """mmsegmentation's `FCNHead`, Hugging Face's `UperNetFCNHead`.

    `num_convs` k x k `ConvModule`s (`convs_{j}`); with `concat_input`
    the input is concatenated to their output and fused by one more
    (`conv_cat`); then `Dropout2d` (training only) and a 1x1 classifier
    with bias (`conv_seg`). UperNet trains it on the third backbone stage
    with loss weight 0.4 and drops it at inference.

    Args:
        num_classes: output channels (classes).
        channels: width of the `ConvModule`s.
        num_convs: number of `ConvModule`s (0: the classifier reads the
            input directly; then `concat_input` must be False).
        kernel_size: odd kernel side of the `ConvModule`s.
        concat_input: concatenate the input before the classifier.
        dropout_rate: rate of the channel dropout before `conv_seg`.
        **kwargs: base `Layer` arguments.

    Shapes:
        inputs: (B, H, W, C) -> logits (B, H, W, num_classes).

    Example:
        >>> head = FCNHead(5, channels=8)
        >>> head(keras.ops.ones((2, 6, 7, 16))).shape
        (2, 6, 7, 5)
    """

    def __init__(
        self,
        num_classes: int,
        channels: int = 256,
        num_convs: int = 1,
        kernel_size: int = 3,
        concat_input: bool = False,
        dropout_rate: float = 0.1,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if num_convs < 0 or (num_convs == 0 and concat_input):
            raise ValueError(
                f"num_convs must be >= 0, and >= 1 with concat_input; got "
                f"num_convs={num_convs}, concat_input={concat_input}."
            )
        self.num_classes = num_classes
        self.channels = channels
        self.num_convs = num_convs
        self.kernel_size = kernel_size
        self.concat_input = concat_input
        self.dropout_rate = dropout_rate
        policy = self.dtype_policy
        self.convs = [
            ConvModule(channels, kernel_size, name=f"convs_{j}", dtype=policy)
            for j in range(num_convs)
        ]
        self.conv_cat = (
            ConvModule(channels, kernel_size, name="conv_cat", dtype=policy)
            if concat_input
            else None
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
        channels = input_shape[-1]
        width = channels
        for conv in self.convs:
            conv.build((None, None, None, width))
            width = self.channels
        if self.conv_cat is not None:
            self.conv_cat.build((None, None, None, channels + self.channels))
        self.conv_seg.build((None, None, None, width))

    def call(self, inputs, training=None):
        x = inputs
        for conv in self.convs:
            x = conv(x, training=training)
        if self.conv_cat is not None:
            x = self.conv_cat(
                ops.concatenate([inputs, x], axis=-1), training=training
            )
        return self.conv_seg(self.dropout(x, training=training))

    def compute_output_shape(self, input_shape):
        return (*tuple(input_shape)[:-1], self.num_classes)
