"""Swin V2 as a dense-prediction backbone, with V1's dense semantics.

No official Swin V2 detection or segmentation code exists; `SwinBackboneV2`
is `SwinBackbone` (the official V1 dense backbone: padding, per-output
norms, `frozen_stages`, `pyramid_outputs`) with the V2 stages and patch
merging of the official `swin_transformer_v2.py`, so a KerasHub task
reads the same `"P2"`..`"P5"` maps from either.
"""

from __future__ import annotations

import keras

from keras_swin.layers import PatchMergingV2, SwinStageV2
from keras_swin.models.swin_backbone import _ARGUMENTS, SwinBackbone
from keras_swin.models.swin_v2 import _stage_windows


@keras.saving.register_keras_serializable(package="keras_swin")
class SwinBackboneV2(SwinBackbone):
    """Swin Transformer V2 backbone with the dense-prediction outputs.

    The graph of `SwinBackbone` (`patch_embed` padding the image to a
    multiple of the patch, optional `absolute_pos_embed`, stages
    `layers_{i}`, mergings `layers_{i}_downsample`, one LayerNorm
    `norm{i}` per output) built from V2 layers: `SwinStageV2` (res-post-
    norm blocks, scaled cosine attention, continuous position bias) and
    `PatchMergingV2` (reduction, then a 2C norm). Stage i's output before
    its merging, through `norm{i}`, is the level `"P{i+2}"` (stride
    2^(i+2)) for each i in `out_indices`: the `pyramid_outputs` of
    KerasHub's `FeaturePyramidBackbone`, as for V1.

    No weight depends on the window: the position MLPs map log-spaced
    relative coordinates to biases, so a model trained at window P runs
    at any window M. To fine-tune at a larger window, as the paper does
    (8 -> 16, 12 -> 24), build with `window_size=M` and
    `pretrained_window_sizes=P`: the coordinate table of the M x M window
    is divided by P - 1 instead of M - 1, so the offsets the MLP saw in
    training keep their values and the new ones extrapolate. Nothing is
    resampled.

    Window semantics as `SwinBackbone`: `window_mode="pad"` (default)
    never shrinks the window (a small map is zero-padded up to it and
    keeps its shift); `"clamp"` is the classification code's rule.

    Args:
        embed_dim: channels C of the first stage (doubled per stage).
        depths: blocks per stage.
        num_heads: attention heads per stage.
        window_size: window side M of every stage.
        pretrained_window_sizes: per stage (or one int for all), the
            window the stage's position MLPs were trained at; 0: none
            (the table spans the window itself).
        patch_size: patch side p.
        mlp_ratio: MLP width as a multiple of C.
        qkv_bias: whether q and v have biases.
        dropout_rate: dropout after the embedding and in the blocks.
        attention_dropout_rate: dropout on attention probabilities.
        drop_path_rate: stochastic depth of the last block; rates rise
            linearly over all blocks.
        layer_norm_epsilon: epsilon of every LayerNorm (1e-5).
        patch_norm: LayerNorm after the patch embedding.
        absolute_position_embedding: the official `ape` (see
            `SwinBackbone`).
        pretrain_image_size: image side the `ape` grid was trained at.
        out_indices: stages whose normalised outputs are returned.
        window_mode: "pad" (dense code) or "clamp" (classification code).
        frozen_stages: the official `frozen_stages` (see `SwinBackbone`).
        gradient_checkpointing: recompute each block's activations in the
            backward pass; outputs are unchanged.
        image_shape: (H, W, C) of the input; None sides for any size.
        preprocessing: None, or `PreprocessingInfo` arguments to record
            in an identity layer after the input.
        name: model name.
        **kwargs: the `SwinBackbone` arguments above (embed_dim,
            num_heads, ...) and `keras.Model`'s (`trainable`, `dtype`).

    Shapes:
        inputs: (B, H, W, C) images.
        outputs: {"P{i+2}": (B, ceil(H / 2^(i+2)), ceil(W / 2^(i+2)),
            embed_dim * 2^i)} for i in out_indices.

    Example:
        >>> backbone = SwinBackboneV2(embed_dim=24, depths=(2, 2, 2, 2),
        ...                           num_heads=(1, 2, 3, 6),
        ...                           window_size=16,
        ...                           pretrained_window_sizes=8)
        >>> maps = backbone(keras.ops.zeros((1, 250, 333, 3)))
        >>> [tuple(v.shape) for v in maps.values()]
        [(1, 63, 84, 24), (1, 32, 42, 48), (1, 16, 21, 96), (1, 8, 11, 192)]
        >>> backbone.pretrained_window_sizes
        (8, 8, 8, 8)

    Arguments are keywords only; the defaults of those not in the
    signature are `SwinBackbone`'s.
    """

    _ARGUMENTS = tuple(a for a in _ARGUMENTS if a != "qk_scale") + (
        "pretrained_window_sizes",
    )

    def __init__(
        self,
        *,
        depths=(2, 2, 6, 2),
        window_size: int = 8,
        pretrained_window_sizes=0,
        pretrain_image_size: int = 256,
        name: str = "swin_backbone_v2",
        **kwargs,
    ):
        if "qk_scale" in kwargs:
            raise TypeError(
                "SwinBackboneV2 has no qk_scale: V2 attention scales the "
                "cosine similarity by a learned temperature (logit_scale)."
            )

        # Read by `_make_stage` while SwinBackbone builds the graph.
        self._stage_pretrained = _stage_windows(
            pretrained_window_sizes, len(tuple(depths))
        )
        super().__init__(
            depths=depths,
            window_size=window_size,
            pretrain_image_size=pretrain_image_size,
            name=name,
            **kwargs,
        )
        self.pretrained_window_sizes = self._stage_pretrained

    def _make_stage(self, index: int, **arguments) -> keras.layers.Layer:
        # V2 attention has no qk_scale: cosine similarity, learned scale.
        arguments.pop("qk_scale")
        return SwinStageV2(
            **arguments,
            pretrained_window_size=self._stage_pretrained[index],
            name=f"layers_{index}",
        )

    def _make_merging(
        self, index: int, dim: int, layer_norm_epsilon: float
    ) -> keras.layers.Layer:
        return PatchMergingV2(
            dim,
            layer_norm_epsilon=layer_norm_epsilon,
            name=f"layers_{index}_downsample",
        )
