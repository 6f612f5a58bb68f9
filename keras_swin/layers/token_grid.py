"""Patch tokens of a ViT sequence back onto their (h, w) grid."""

from __future__ import annotations

import keras
from keras import ops

from keras_swin.layers._serialization import ConfigFromArguments, register


@register
class TokenGrid(ConfigFromArguments, keras.layers.Layer):
    """Drops the prefix tokens and lays the patch tokens out as a map.

    ViT's tokens `[prefix, patches]` (class and register tokens first,
    then the patches in row-major order) -> the patch tokens as an NHWC
    feature map, the form a dense-prediction head (DPT, ViTDet, UperNet)
    reads.

    Args:
        num_prefix_tokens: P, the leading tokens to drop.
        **kwargs: base `Layer` arguments.

    Shapes:
        inputs: `[tokens, patches]`: tokens (B, P + h * w, D); patches
        (B, h, w, C), the patch map whose (h, w) gives the grid (only its
        shape is read). Output: (B, h, w, D).

    Example:
        >>> tokens = keras.ops.ones((2, 1 + 6 * 8, 32))
        >>> TokenGrid(1)([tokens, keras.ops.ones((2, 6, 8, 32))]).shape
        (2, 6, 8, 32)
    """

    def __init__(self, num_prefix_tokens: int = 0, **kwargs):
        super().__init__(**kwargs)
        if (
            not isinstance(num_prefix_tokens, int)
            or isinstance(num_prefix_tokens, bool)
            or num_prefix_tokens < 0
        ):
            raise ValueError(
                "num_prefix_tokens must be an int >= 0, got "
                f"{num_prefix_tokens!r}."
            )
        self.num_prefix_tokens = num_prefix_tokens

    def call(self, inputs):
        tokens, patches = inputs
        shape = ops.shape(patches)
        dim = tokens.shape[-1]
        patch_tokens = tokens[:, self.num_prefix_tokens :]
        return ops.reshape(patch_tokens, (-1, shape[1], shape[2], dim))

    def compute_output_shape(self, input_shape):
        if len(input_shape) != 2:
            raise ValueError(
                f"{self.name} expects [tokens (B, N, D), patches (B, h, w, "
                f"C)], got shapes {input_shape}."
            )
        tokens, patches = input_shape
        return (tokens[0], patches[1], patches[2], tokens[-1])
