"""Patch embedding: non-overlapping patches to tokens on a grid."""

from __future__ import annotations

import keras
from keras import ops

from keras_swin.layers._serialization import ConfigFromArguments, register
from keras_swin.layers.windows import pad_bottom_right


@register
class PatchEmbed(ConfigFromArguments, keras.layers.Layer):
    """Splits an image into p x p patches and projects each to C channels.

    A Conv2D with kernel = stride = p (`proj`), optionally followed by a
    LayerNorm (`norm`, Swin's patch_norm). The output stays a feature map.

    Args:
        patch_size: patch side p.
        embed_dim: output channels C.
        use_norm: apply LayerNorm after the projection (Swin).
        layer_norm_epsilon: epsilon of that LayerNorm.
        pad_to_patch: True zero-pads the bottom/right of an image whose
            size is not a multiple of p (Swin, as Hugging Face and the
            official detection code); False drops the remainder, like the
            VALID convolution of the official ViT.
        **kwargs: base `Layer` arguments.

    Shapes:
        inputs: (B, H, W, 3) -> (B, ceil(H/p), ceil(W/p), C) when padding,
        (B, floor(H/p), floor(W/p), C) otherwise.

    Example:
        >>> embed = PatchEmbed(patch_size=4, embed_dim=96)
        >>> embed(keras.ops.ones((2, 224, 224, 3))).shape
        (2, 56, 56, 96)
    """

    def __init__(
        self,
        patch_size: int = 4,
        embed_dim: int = 96,
        use_norm: bool = True,
        layer_norm_epsilon: float = 1e-5,
        pad_to_patch: bool = True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.patch_size = patch_size
        self.embed_dim = embed_dim
        self.use_norm = use_norm
        self.layer_norm_epsilon = layer_norm_epsilon
        self.pad_to_patch = pad_to_patch
        self.proj = keras.layers.Conv2D(
            embed_dim,
            patch_size,
            strides=patch_size,
            padding="valid",
            name="proj",
            dtype=self.dtype_policy,
        )
        self.norm = None
        if use_norm:
            self.norm = keras.layers.LayerNormalization(
                epsilon=layer_norm_epsilon, name="norm", dtype=self.dtype_policy
            )

    def build(self, input_shape):
        if len(input_shape) != 4:
            raise ValueError(
                f"{self.name} expects images (B, H, W, C), got "
                f"{tuple(input_shape)}."
            )
        self.proj.build(input_shape)
        if self.norm is not None:
            self.norm.build((None, None, None, self.embed_dim))

    def call(self, inputs):
        x = inputs
        if self.pad_to_patch:
            p = self.patch_size
            height, width = inputs.shape[1], inputs.shape[2]
            if height is None or width is None:
                shape = ops.shape(inputs)
                height, width = shape[1], shape[2]
            x = pad_bottom_right(x, (p - height % p) % p, (p - width % p) % p)
        x = self.proj(x)
        if self.norm is not None:
            x = self.norm(x)
        return x

    def compute_output_shape(self, input_shape):
        p = self.patch_size

        def grid(size):
            if size is None:
                return None
            return -(-size // p) if self.pad_to_patch else size // p

        return (
            input_shape[0],
            grid(input_shape[1]),
            grid(input_shape[2]),
            self.embed_dim,
        )
