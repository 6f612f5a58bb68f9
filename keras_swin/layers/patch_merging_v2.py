"""Swin V2 patch merging: the projection first, then LayerNorm(2C)."""

from __future__ import annotations

from keras_swin.layers._serialization import register
from keras_swin.layers.patch_merging import PatchMerging


@register
class PatchMergingV2(PatchMerging):
    """Swin V2's patch merging: reduction before the norm.

    The same 2x2 gather as `PatchMerging` (x0, x1, x2, x3; odd sizes
    zero-padded on the bottom/right), then a bias-free Dense(4C -> 2C)
    and LayerNorm over the **2C** outputs: the reverse order of V1, as
    the official `swin_transformer_v2.py` and timm do. Weight paths are
    V1's (`reduction/kernel`, `norm/gamma`, `norm/beta`), the norm is 2C
    wide.

    Args:
        dim: input channels C.
        layer_norm_epsilon: epsilon of the 2C LayerNorm (1e-5).
        **kwargs: base `Layer` arguments.

    Shapes:
        inputs: (B, H, W, C) -> (B, ceil(H/2), ceil(W/2), 2C).

    Example:
        >>> merge = PatchMergingV2(dim=96)
        >>> merge(keras.ops.ones((2, 64, 64, 96))).shape
        (2, 32, 32, 192)
    """

    def build(self, input_shape):
        if len(input_shape) != 4 or input_shape[-1] != self.dim:
            raise ValueError(
                f"{self.name} expects (B, H, W, {self.dim}) inputs, got "
                f"{tuple(input_shape)}."
            )
        self.reduction.build((None, None, None, 4 * self.dim))
        self.norm.build((None, None, None, 2 * self.dim))

    def call(self, inputs):
        return self.norm(self.reduction(self._gather(inputs)))
