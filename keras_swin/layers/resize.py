"""Bilinear resizing with PyTorch's `align_corners=False` semantics.

Segmentation heads upsample feature maps to each other's size and the
logits to the image size with `F.interpolate(mode="bilinear",
align_corners=False)` (mmsegmentation's `resize`, Hugging Face's
UperNet). That is half-pixel sampling without antialiasing: output pixel
`o` reads the input at `s = (o + 0.5) * in / out - 0.5`, clamped below
at 0, mixing rows `floor(s)` and `floor(s) + 1` (clamped to the last).
"""

from __future__ import annotations

import keras
from keras import ops

from keras_swin.layers._serialization import ConfigFromArguments, register


def _static(value) -> bool:
    return isinstance(value, int)


def _axis_resize(x, axis: int, size):
    """Linear resampling of `x` along `axis` (1 or 2) to `size` entries."""
    length = ops.shape(x)[axis]
    scale = ops.cast(length, "float32") / ops.cast(size, "float32")
    position = (ops.cast(ops.arange(size), "float32") + 0.5) * scale - 0.5
    position = ops.maximum(position, 0.0)
    low = ops.cast(ops.floor(position), "int32")
    last = ops.cast(length, "int32") - 1
    low = ops.minimum(low, last)
    high = ops.minimum(low + 1, last)
    weight = position - ops.cast(low, "float32")
    shape = [1, 1, 1, 1]
    shape[axis] = -1
    weight = ops.cast(ops.reshape(weight, shape), x.dtype)
    below = ops.take(x, low, axis=axis)
    above = ops.take(x, high, axis=axis)
    return below + (above - below) * weight


def resize_bilinear(x, size):
    """Resizes NHWC maps bilinearly, as `F.interpolate(align_corners=False)`.

    Static sizes use `keras.ops.image.resize` (bilinear, no antialias),
    which equals PyTorch's rule on every backend; a size or input whose
    height and width are only known at run time (a TensorFlow graph with
    `None` dimensions) uses an equivalent in-graph gather.

    Args:
        x: (B, h, w, C) maps.
        size: (H, W) target size: Python ints or scalar tensors.

    Returns:
        (B, H, W, C) maps, in the dtype of `x`.

    Example:
        >>> resize_bilinear(keras.ops.ones((1, 4, 6, 2)), (8, 12)).shape
        (1, 8, 12, 2)
    """
    height, width = size
    if (
        _static(height)
        and _static(width)
        and x.shape[1] is not None
        and x.shape[2] is not None
    ):
        if (x.shape[1], x.shape[2]) == (height, width):
            return x
        return ops.image.resize(
            x, (height, width), interpolation="bilinear", antialias=False
        )
    return _axis_resize(_axis_resize(x, 1, height), 2, width)


def spatial_size(x):
    """(H, W) of NHWC `x`: Python ints where static, else tensors.

    Example:
        >>> spatial_size(keras.ops.ones((1, 4, 6, 2)))
        (4, 6)
    """
    dynamic = ops.shape(x)
    return tuple(
        x.shape[axis] if x.shape[axis] is not None else dynamic[axis]
        for axis in (1, 2)
    )


@register
class ResizeLike(ConfigFromArguments, keras.layers.Layer):
    """Resizes maps bilinearly to the height and width of a reference.

    The final step of a segmenter: logits at a fraction of the image size
    are resized to the image (`align_corners=False`, as mmsegmentation and
    Hugging Face). Works with sizes known only at run time.

    Args:
        **kwargs: base `Layer` arguments.

    Shapes:
        inputs: `[x (B, h, w, C), reference (B, H, W, ...)]` ->
        (B, H, W, C).

    Example:
        >>> logits = keras.ops.ones((1, 8, 8, 5))
        >>> image = keras.ops.ones((1, 32, 30, 3))
        >>> ResizeLike()([logits, image]).shape
        (1, 32, 30, 5)
    """

    def call(self, inputs):
        x, reference = inputs
        return resize_bilinear(x, spatial_size(reference))

    def compute_output_shape(self, input_shape):
        x, reference = input_shape
        return (x[0], reference[1], reference[2], x[3])
