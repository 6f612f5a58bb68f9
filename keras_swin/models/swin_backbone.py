"""Swin as a dense-prediction backbone: the official detection semantics.

`SwinBackbone` is the `SwinTransformer` of the official detection and
segmentation code (`mmdet/models/backbones/swin_transformer.py` of
microsoft/Swin-Transformer-Object-Detection; the segmentation repository
ships the same file) as a Keras model whose outputs are the multi-scale
feature maps a detector or segmenter reads.
"""

from __future__ import annotations

import keras

from keras_swin.layers import (
    PatchEmbed,
    PatchMerging,
    ResizedPositionEmbedding,
    SwinStage,
    linear_drop_path_rates,
)
from keras_swin.layers.windows import check_window_mode
from keras_swin.models._common import (
    record_preprocessing,
    recorded_preprocessing,
    resolve_inputs,
)

#: Constructor arguments of `SwinBackbone`, as stored by `get_config`.
_ARGUMENTS = (
    "embed_dim",
    "depths",
    "num_heads",
    "window_size",
    "patch_size",
    "mlp_ratio",
    "qkv_bias",
    "qk_scale",
    "dropout_rate",
    "attention_dropout_rate",
    "drop_path_rate",
    "layer_norm_epsilon",
    "patch_norm",
    "absolute_position_embedding",
    "pretrain_image_size",
    "out_indices",
    "window_mode",
    "frozen_stages",
    "gradient_checkpointing",
    "image_shape",
    "preprocessing",
)


def pyramid_level(stage: int) -> str:
    """The pyramid key of stage `stage`: its stride is 2^(stage + 2).

    Example:
        >>> pyramid_level(0)
        'P2'
    """
    return f"P{stage + 2}"


def frozen_layer_names(frozen_stages: int, num_stages: int) -> list[str]:
    """Layers the official `_freeze_stages` freezes, as Keras layer names.

    The official code (not its docstring, which says "-1 means not
    freezing any parameters" and nothing more): `frozen_stages >= 0`
    freezes the patch embedding; `>= 1` also the absolute position
    embedding; `>= 2` also stages 0 .. frozen_stages - 2, each with its
    patch merging (one module, `layers[i]`, in that code), and puts the
    dropout after the embedding in eval mode. So `frozen_stages` counts
    the patch embedding as stage 0 and the first Swin stage as stage 1.

    Args:
        frozen_stages: -1 (nothing) up to `num_stages + 1` (everything
            but the output norms).
        num_stages: stages of the model.

    Returns:
        Names of the layers to freeze (`absolute_pos_embed` included
        whether or not the model has one).

    Example:
        >>> frozen_layer_names(2, 4)
        ['patch_embed', 'absolute_pos_embed', 'layers_0', 'layers_0_downsample']
    """
    if not isinstance(frozen_stages, int) or not (
        -1 <= frozen_stages <= num_stages + 1
    ):
        raise ValueError(
            f"frozen_stages must be an int from -1 (train everything) to "
            f"{num_stages + 1} (freeze the patch embedding and all "
            f"{num_stages} stages), got {frozen_stages!r}."
        )
    names = []
    if frozen_stages >= 0:
        names.append("patch_embed")
    if frozen_stages >= 1:
        names.append("absolute_pos_embed")
    for i in range(max(frozen_stages - 1, 0)):
        names += [f"layers_{i}", f"layers_{i}_downsample"]
    return names


@keras.saving.register_keras_serializable(package="keras_swin")
class SwinBackbone(keras.Model):
    """Swin Transformer backbone with the official dense-prediction outputs.

    The graph of the official detection/segmentation backbone:
    `patch_embed` (zero-pads the image bottom/right to a multiple of the
    patch, conv p x p, LayerNorm), optional `absolute_pos_embed`, stages
    `layers_{i}` of Swin blocks with `layers_{i}_downsample` (patch
    merging) after all but the last. Stage i's output *before* its patch
    merging, passed through its own LayerNorm `norm{i}`, is the pyramid
    level `"P{i+2}"` (stride 2^(i+2)), for each i in `out_indices`.

    Window semantics: with `window_mode="pad"` (default; the official
    dense code and Hugging Face's `SwinBackbone`) the window is never
    clamped: a map smaller than the window is zero-padded up to it, keeps
    its shift and gets the mask of the padded grid. `window_mode="clamp"`
    is the classification code's rule (the window shrinks to a small map,
    unshifted). The two differ wherever a stage's map is not larger than
    the window (a 128x96 image with window 7: the last two stages).

    Absolute position embedding (`absolute_position_embedding=True`, the
    official `ape`): stored at the pre-training grid
    (`pretrain_image_size // patch_size`) and resized on every call to
    the actual map by PyTorch's bicubic (a = -0.75, align_corners False),
    so it works with `(None, None, 3)` inputs.

    The model is a functional `keras.Model` with a dict output; it has the
    `pyramid_outputs` attribute of KerasHub's `FeaturePyramidBackbone`, so
    `keras_hub.models.RetinaNetBackbone(image_encoder=...)` and
    `DeepLabV3Backbone(image_encoder=...)` build on it. It is registered
    (`keras_swin>SwinBackbone`) and saves to `.keras`.

    Args:
        embed_dim: channels C of the first stage (doubled per stage).
        depths: blocks per stage.
        num_heads: attention heads per stage.
        window_size: window side M of every stage.
        patch_size: patch side p.
        mlp_ratio: MLP width as a multiple of C.
        qkv_bias: whether `qkv` has a bias.
        qk_scale: override of the head_dim^-0.5 attention scale.
        dropout_rate: dropout after the embedding and in the blocks.
        attention_dropout_rate: dropout on attention probabilities.
        drop_path_rate: stochastic depth of the last block; rates rise
            linearly over all blocks (0.2 for Swin-T in the detection
            configs).
        layer_norm_epsilon: epsilon of every LayerNorm (1e-5).
        patch_norm: LayerNorm after the patch embedding.
        absolute_position_embedding: the official `ape`.
        pretrain_image_size: image side the `ape` grid was trained at.
        out_indices: stages whose normalised outputs are returned.
        window_mode: "pad" (dense code) or "clamp" (classification code).
        frozen_stages: the official `frozen_stages`: -1 trains everything;
            0 freezes the patch embedding; 1 also the `ape`; n >= 2 also
            stages 0 .. n-2 with their patch merging (see
            `frozen_layer_names`). Frozen layers get `trainable=False` and
            run in inference mode (no drop path) inside `fit`, as the
            official `eval()` does.
        gradient_checkpointing: recompute each block's activations in the
            backward pass (the official `use_checkpoint`), for training
            memory; outputs are unchanged.
        image_shape: (H, W, C) of the input; None sides for any size.
        preprocessing: None, or `PreprocessingInfo` arguments to record
            in an identity layer after the input.
        name: model name.
        **kwargs: further `keras.Model` arguments (`trainable`, `dtype`).

    Shapes:
        inputs: (B, H, W, C) images.
        outputs: {"P{i+2}": (B, ceil(H / 2^(i+2)), ceil(W / 2^(i+2)),
            embed_dim * 2^i)} for i in out_indices.

    Example:
        >>> backbone = SwinBackbone(embed_dim=24, depths=(2, 2, 2, 2),
        ...                         num_heads=(1, 2, 3, 6))
        >>> maps = backbone(keras.ops.zeros((1, 250, 333, 3)))
        >>> [tuple(v.shape) for v in maps.values()]
        [(1, 63, 84, 24), (1, 32, 42, 48), (1, 16, 21, 96), (1, 8, 11, 192)]
        >>> sorted(backbone.pyramid_outputs)
        ['P2', 'P3', 'P4', 'P5']
    """

    #: Constructor arguments stored by `get_config` (a subclass adds its
    #: own).
    _ARGUMENTS = _ARGUMENTS

    def __init__(
        self,
        embed_dim: int = 96,
        depths=(2, 2, 6, 2),
        num_heads=(3, 6, 12, 24),
        window_size: int = 7,
        patch_size: int = 4,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        qk_scale: float | None = None,
        dropout_rate: float = 0.0,
        attention_dropout_rate: float = 0.0,
        drop_path_rate: float = 0.2,
        layer_norm_epsilon: float = 1e-5,
        patch_norm: bool = True,
        absolute_position_embedding: bool = False,
        pretrain_image_size: int = 224,
        out_indices=(0, 1, 2, 3),
        window_mode: str = "pad",
        frozen_stages: int = -1,
        gradient_checkpointing: bool = False,
        image_shape=(None, None, 3),
        preprocessing: dict | None = None,
        name: str = "swin_backbone",
        **kwargs,
    ):
        depths, num_heads = tuple(depths), tuple(num_heads)
        if len(depths) != len(num_heads) or not depths:
            raise ValueError(
                f"depths {depths} and num_heads {num_heads} must be "
                "non-empty and of the same length (one entry per stage)."
            )
        out_indices = tuple(int(i) for i in out_indices)
        if (
            not out_indices
            or len(set(out_indices)) != len(out_indices)
            or not all(0 <= i < len(depths) for i in out_indices)
        ):
            raise ValueError(
                f"out_indices must be distinct stage indices in "
                f"[0, {len(depths)}), got {out_indices}."
            )
        check_window_mode(window_mode)
        frozen = frozen_layer_names(frozen_stages, len(depths))
        image, _ = resolve_inputs(None, image_shape, 224)

        x = PatchEmbed(
            patch_size,
            embed_dim,
            use_norm=patch_norm,
            layer_norm_epsilon=layer_norm_epsilon,
            pad_to_patch=True,
            name="patch_embed",
        )(record_preprocessing(image, preprocessing))
        if absolute_position_embedding:
            grid = pretrain_image_size // patch_size
            x = ResizedPositionEmbedding(
                (grid, grid),
                method="bicubic",
                initializer=keras.initializers.TruncatedNormal(stddev=0.02),
                name="absolute_pos_embed",
            )(x)
        if frozen_stages < 2:
            # The official code puts this dropout in eval mode from
            # frozen_stages 2 on: then it is the identity.
            x = keras.layers.Dropout(dropout_rate, name="pos_drop")(x)

        rates = linear_drop_path_rates(drop_path_rate, sum(depths))
        outputs = {}
        for i, (depth, heads) in enumerate(zip(depths, num_heads, strict=True)):
            dim = embed_dim * 2**i
            x = self._make_stage(
                i,
                dim=dim,
                depth=depth,
                num_heads=heads,
                window_size=window_size,
                mlp_ratio=mlp_ratio,
                qkv_bias=qkv_bias,
                qk_scale=qk_scale,
                dropout_rate=dropout_rate,
                attention_dropout_rate=attention_dropout_rate,
                drop_path_rate=rates[sum(depths[:i]) : sum(depths[: i + 1])],
                layer_norm_epsilon=layer_norm_epsilon,
                window_mode=window_mode,
                gradient_checkpointing=gradient_checkpointing,
            )(x)
            if i in out_indices:
                outputs[pyramid_level(i)] = keras.layers.LayerNormalization(
                    epsilon=layer_norm_epsilon, name=f"norm{i}"
                )(x)
            if i < len(depths) - 1:
                x = self._make_merging(i, dim, layer_norm_epsilon)(x)
        # Ordered by level, whatever the order of out_indices.
        outputs = {k: outputs[k] for k in sorted(outputs, key=_level)}
        super().__init__(inputs=image, outputs=outputs, name=name, **kwargs)
        for layer_name in frozen:
            if layer_name in {layer.name for layer in self.layers}:
                self.get_layer(layer_name).trainable = False

        self.embed_dim = embed_dim
        self.depths = depths
        self.num_heads = num_heads
        self.window_size = window_size
        self.patch_size = patch_size
        self.mlp_ratio = mlp_ratio
        self.qkv_bias = qkv_bias
        self.qk_scale = qk_scale
        self.dropout_rate = dropout_rate
        self.attention_dropout_rate = attention_dropout_rate
        self.drop_path_rate = drop_path_rate
        self.layer_norm_epsilon = layer_norm_epsilon
        self.patch_norm = patch_norm
        self.absolute_position_embedding = absolute_position_embedding
        self.pretrain_image_size = pretrain_image_size
        self.out_indices = out_indices
        self.window_mode = window_mode
        self.frozen_stages = frozen_stages
        self.gradient_checkpointing = gradient_checkpointing
        self.image_shape = tuple(image_shape)
        self.preprocessing = preprocessing
        self.pyramid_outputs = outputs

    def _make_stage(self, index: int, **arguments) -> keras.layers.Layer:
        """Stage `index` (`layers_{index}`): the hook a V2 backbone replaces.

        Called while the graph is built, before `keras.Model.__init__`.

        Args:
            index: the stage, 0 = stride 4.
            **arguments: `SwinStage` arguments (`dim`, `depth`,
                `num_heads`, `window_size`, `qk_scale`, `window_mode`,
                ...) without the name.

        Returns:
            The stage layer, (B, H, W, C) -> (B, H, W, C).
        """
        return SwinStage(**arguments, name=f"layers_{index}")

    def _make_merging(
        self, index: int, dim: int, layer_norm_epsilon: float
    ) -> keras.layers.Layer:
        """The patch merging after stage `index` (`layers_{index}_downsample`).

        Args:
            index: the stage it follows.
            dim: the stage's channels C.
            layer_norm_epsilon: epsilon of its LayerNorm.

        Returns:
            The layer, (B, H, W, C) -> (B, ceil(H/2), ceil(W/2), 2C).
        """
        return PatchMerging(
            dim,
            layer_norm_epsilon=layer_norm_epsilon,
            name=f"layers_{index}_downsample",
        )

    @property
    def pyramid_outputs(self) -> dict:
        """{"P{i+2}": KerasTensor (B, H_i, W_i, C_i)}: the output maps.

        The contract of KerasHub's `FeaturePyramidBackbone`: level Pn is
        2^n times smaller than the image.
        """
        return self._pyramid_outputs

    @pyramid_outputs.setter
    def pyramid_outputs(self, value: dict) -> None:
        self._pyramid_outputs = dict(value)

    def get_config(self) -> dict:
        config = {"name": self.name, "trainable": self.trainable}
        for key in self._ARGUMENTS:
            value = getattr(self, key)
            config[key] = list(value) if isinstance(value, tuple) else value
        config["preprocessing"] = recorded_preprocessing(
            self, self.preprocessing
        )
        return config

    @classmethod
    def from_config(cls, config: dict):
        return cls(**config)


def _level(key: str) -> int:
    return int(key[1:])
