"""UperNet semantic segmentation on a feature-pyramid backbone.

The segmenter of the Swin paper's ADE20K results (mmsegmentation's
`EncoderDecoder` with `UPerHead` and an auxiliary `FCNHead`, Hugging
Face's `UperNetForSemanticSegmentation`) as a Keras functional model on
any backbone with `pyramid_outputs`: `keras_swin.SwinBackbone`, or a
KerasHub backbone.
"""

from __future__ import annotations

import keras

from keras_swin.layers.fcn_head import FCNHead
from keras_swin.layers.resize import ResizeLike
from keras_swin.layers.upernet_head import UperNetHead, check_pool_scales
from keras_swin.models._common import (
    record_preprocessing,
    recorded_preprocessing,
)
from keras_swin.models.swin import SWIN_CONFIGS
from keras_swin.models.swin_backbone import SwinBackbone

#: The released ADE20K segmenters (`upernet_swin_*_512x512_160k_ade20k`
#: of microsoft/Swin-Transformer-Semantic-Segmentation): the backbone of
#: each variant with drop path 0.3, a 512-channel UperNet head, a
#: 256-channel auxiliary FCN head on stage 3, 150 classes.
UPERNET_CONFIGS = {
    variant: dict(
        {k: v for k, v in config.items() if k != "drop_path_rate"},
        window_size=12 if variant == "swin_large" else 7,
        drop_path_rate=0.3,
        num_classes=150,
        channels=512,
        pool_scales=(1, 2, 3, 6),
        auxiliary_channels=256,
    )
    for variant, config in SWIN_CONFIGS.items()
}

#: The head arguments of `UperNet` (the rest of `swin_upernet`'s
#: arguments go to `SwinBackbone`).
HEAD_ARGUMENTS = (
    "num_classes",
    "channels",
    "pool_scales",
    "auxiliary_channels",
    "auxiliary_num_convs",
    "auxiliary_concat_input",
    "auxiliary_in_index",
    "dropout_rate",
)


def _level(key: str) -> int:
    return int(key[1:]) if key[:1] == "P" and key[1:].isdigit() else -1


def _pyramid_extractor(backbone: keras.Model):
    """(model whose outputs are the pyramid dict, its sorted keys)."""
    pyramid = getattr(backbone, "pyramid_outputs", None)
    if not isinstance(pyramid, dict) or not pyramid:
        raise ValueError(
            f"UperNet needs a backbone with `pyramid_outputs` (a dict of "
            f"(B, H, W, C) maps such as {{'P2': ..., 'P5': ...}}: "
            f"keras_swin.SwinBackbone or a KerasHub backbone); "
            f"{getattr(backbone, 'name', backbone)!r} has "
            f"{type(pyramid).__name__}."
        )
    keys = sorted(pyramid, key=_level)
    if isinstance(backbone.output, dict) and set(backbone.output) == set(
        pyramid
    ):
        return backbone, keys
    extractor = keras.Model(
        backbone.inputs,
        {k: pyramid[k] for k in keys},
        name=f"{backbone.name}_pyramid",
    )
    return extractor, keys


@keras.saving.register_keras_serializable(package="keras_swin")
class UperNet(keras.Model):
    """UperNet segmenter: decode head, optional auxiliary head, resize.

    The backbone's pyramid maps (finest first) feed a `UperNetHead`
    (`decode_head`); an `FCNHead` (`auxiliary_head`) reads the map at
    `auxiliary_in_index`. Both heads' logits are resized bilinearly
    (`align_corners=False`) to the input size, as mmsegmentation's
    `EncoderDecoder` and Hugging Face's `UperNetForSemanticSegmentation`
    do. Any input size works when the backbone takes it (a
    `SwinBackbone` built with `image_shape=(None, None, 3)` pads to its
    patch and windows).

    Weight paths: the backbone's own, `decode_head/...` and
    `auxiliary_head/...` named as mmsegmentation's modules
    (`decode_head/psp_modules_0/conv/kernel`, `.../bn/moving_mean`,
    `decode_head/conv_seg/bias`, ...).

    Args:
        backbone: a `keras.Model` with `pyramid_outputs` (dict of NHWC
            maps keyed "P2", "P3", ...); its input is the segmenter's.
        num_classes: classes of both heads.
        channels: width of the decode head's conv modules (512 in the
            released configs).
        pool_scales: pyramid pooling output sizes.
        auxiliary_channels: width of the auxiliary head; None for no
            auxiliary head.
        auxiliary_num_convs: conv modules of the auxiliary head.
        auxiliary_concat_input: concatenate the auxiliary head's input
            before its classifier.
        auxiliary_in_index: which pyramid map (0 = finest) the auxiliary
            head reads (2: Swin's third stage).
        dropout_rate: channel dropout before each classifier (training).
        preprocessing: None, or `PreprocessingInfo` arguments to record
            in the graph (mean/std, class names, source).
        name: model name.
        **kwargs: base `keras.Model` arguments.

    Shapes:
        inputs: (B, H, W, 3) normalised images (ImageNet mean/std on
        0-1 pixels for the released checkpoints) -> dict with "logits"
        (B, H, W, num_classes) and, with the auxiliary head,
        "auxiliary_logits" (B, H, W, num_classes).

    Example:
        >>> backbone = SwinBackbone(embed_dim=8, depths=(1, 1, 1, 1),
        ...                         num_heads=(1, 1, 1, 1), window_size=4)
        >>> model = UperNet(backbone, num_classes=3, channels=8,
        ...                 auxiliary_channels=4)
        >>> out = model.predict(np.zeros((1, 64, 48, 3)), verbose=0)
        >>> out["logits"].shape, out["auxiliary_logits"].shape
        ((1, 64, 48, 3), (1, 64, 48, 3))
    """

    def __init__(
        self,
        backbone: keras.Model,
        num_classes: int,
        channels: int = 512,
        pool_scales=(1, 2, 3, 6),
        auxiliary_channels: int | None = 256,
        auxiliary_num_convs: int = 1,
        auxiliary_concat_input: bool = False,
        auxiliary_in_index: int = 2,
        dropout_rate: float = 0.1,
        preprocessing: dict | None = None,
        name: str = "upernet",
        **kwargs,
    ):
        if type(num_classes) is not int or num_classes < 1:
            raise ValueError(
                f"num_classes must be a positive int, got {num_classes!r}."
            )
        pool_scales = check_pool_scales(pool_scales)
        extractor, keys = _pyramid_extractor(backbone)
        if auxiliary_channels is not None and not (
            0 <= auxiliary_in_index < len(keys)
        ):
            raise ValueError(
                f"auxiliary_in_index={auxiliary_in_index} names no map of "
                f"the backbone's {len(keys)} outputs {keys}."
            )
        image = keras.Input(
            shape=tuple(backbone.inputs[0].shape[1:]), name="images"
        )
        features = extractor(record_preprocessing(image, preprocessing))
        maps = [features[k] for k in keys]
        logits = UperNetHead(
            num_classes,
            channels=channels,
            pool_scales=pool_scales,
            num_levels=len(maps),
            dropout_rate=dropout_rate,
            name="decode_head",
        )(maps)
        outputs = {"logits": ResizeLike(name="resize")([logits, image])}
        if auxiliary_channels is not None:
            auxiliary = FCNHead(
                num_classes,
                channels=auxiliary_channels,
                num_convs=auxiliary_num_convs,
                concat_input=auxiliary_concat_input,
                dropout_rate=dropout_rate,
                name="auxiliary_head",
            )(maps[auxiliary_in_index])
            outputs["auxiliary_logits"] = ResizeLike(name="auxiliary_resize")(
                [auxiliary, image]
            )
        super().__init__(inputs=image, outputs=outputs, name=name, **kwargs)
        self.backbone = backbone
        self.num_classes = num_classes
        self.channels = channels
        self.pool_scales = pool_scales
        self.auxiliary_channels = auxiliary_channels
        self.auxiliary_num_convs = auxiliary_num_convs
        self.auxiliary_concat_input = auxiliary_concat_input
        self.auxiliary_in_index = auxiliary_in_index
        self.dropout_rate = dropout_rate
        self.preprocessing = preprocessing

    def get_config(self) -> dict:
        config = {
            "name": self.name,
            "trainable": self.trainable,
            "backbone": keras.saving.serialize_keras_object(self.backbone),
            "preprocessing": recorded_preprocessing(self, self.preprocessing),
        }
        for key in HEAD_ARGUMENTS:
            value = getattr(self, key)
            config[key] = list(value) if isinstance(value, tuple) else value
        return config

    @classmethod
    def from_config(cls, config: dict):
        config = dict(config)
        config["backbone"] = keras.saving.deserialize_keras_object(
            config["backbone"]
        )
        return cls(**config)


def swin_upernet(
    *,
    num_classes: int,
    channels: int = 512,
    pool_scales=(1, 2, 3, 6),
    auxiliary_channels: int | None = 256,
    auxiliary_num_convs: int = 1,
    auxiliary_concat_input: bool = False,
    auxiliary_in_index: int = 2,
    dropout_rate: float = 0.1,
    preprocessing: dict | None = None,
    name: str = "swin_upernet",
    **backbone_arguments,
) -> UperNet:
    """A `UperNet` on a `SwinBackbone`, from flat arguments.

    The builder of the `swin_upernet` weights family: every
    `SwinBackbone` argument (`embed_dim`, `depths`, `num_heads`,
    `window_size`, `image_shape`, `out_indices`, ...) beside the head
    arguments of `UperNet`.

    Returns:
        The segmenter; inputs (B, H, W, C) -> {"logits", ...}.

    Example:
        >>> model = swin_upernet(num_classes=3, embed_dim=8,
        ...     depths=(1, 1, 1, 1), num_heads=(1, 1, 1, 1), window_size=4,
        ...     channels=8, auxiliary_channels=None)
        >>> sorted(model.output)
        ['logits']
    """
    backbone = SwinBackbone(**backbone_arguments)
    return UperNet(
        backbone,
        num_classes=num_classes,
        channels=channels,
        pool_scales=pool_scales,
        auxiliary_channels=auxiliary_channels,
        auxiliary_num_convs=auxiliary_num_convs,
        auxiliary_concat_input=auxiliary_concat_input,
        auxiliary_in_index=auxiliary_in_index,
        dropout_rate=dropout_rate,
        preprocessing=preprocessing,
        name=name,
    )


def SwinUperNet(
    variant: str | None = None,
    *,
    backbone: keras.Model | None = None,
    num_classes: int | None = None,
    input_shape=(None, None, 3),
    name: str = "swin_upernet",
    **kwargs,
) -> UperNet:
    """Swin + UperNet, as the Swin paper's ADE20K segmenters.

    Args:
        variant: "swin_tiny", "swin_small", "swin_base" or "swin_large":
            the released 512x512 ADE20K configuration (`UPERNET_CONFIGS`:
            drop path 0.3, head channels 512, auxiliary head 256, 150
            classes); None to give the architecture in `kwargs`.
        backbone: a ready backbone with `pyramid_outputs` instead of a
            new `SwinBackbone` (then `variant` and backbone arguments
            must not be given).
        num_classes: classes (default: the variant's 150).
        input_shape: (H, W, C) of the new backbone; None entries for any
            size.
        name: model name.
        **kwargs: `UperNet` head arguments (`channels`, `pool_scales`,
            `auxiliary_channels`, ...) and `SwinBackbone` arguments
            (`embed_dim`, `depths`, `num_heads`, `window_size`,
            `drop_path_rate`, ...), overriding the variant's.

    Returns:
        A `UperNet`: (B, H, W, C) -> {"logits": (B, H, W, K),
        "auxiliary_logits": (B, H, W, K)}.

    Example:
        >>> model = SwinUperNet(num_classes=4, embed_dim=8,
        ...     depths=(1, 1, 1, 1), num_heads=(1, 1, 1, 1), window_size=4,
        ...     channels=8, auxiliary_channels=4)
        >>> model.predict(np.zeros((1, 40, 56, 3)), verbose=0)[
        ...     "logits"].shape
        (1, 40, 56, 4)
        >>> SwinUperNet("swin_tiny").count_params() > 50_000_000
        True
    """
    if backbone is not None:
        stray = sorted(k for k in kwargs if k not in HEAD_ARGUMENTS)
        if variant is not None or stray:
            raise ValueError(
                "SwinUperNet(backbone=...) takes the head arguments only; "
                f"got variant={variant!r} and backbone arguments {stray}."
            )
        head = {k: v for k, v in kwargs.items() if k in HEAD_ARGUMENTS}
        head.setdefault("num_classes", num_classes or 150)
        if num_classes is not None:
            head["num_classes"] = num_classes
        return UperNet(backbone, name=name, **head)
    if variant is None:
        config = dict(num_classes=150)
    elif variant in UPERNET_CONFIGS:
        config = dict(UPERNET_CONFIGS[variant])
    else:
        raise ValueError(
            f"Unknown variant {variant!r}; expected one of "
            f"{sorted(UPERNET_CONFIGS)} or None (architecture in kwargs)."
        )
    config.update(kwargs)
    if num_classes is not None:
        config["num_classes"] = num_classes
    return swin_upernet(image_shape=tuple(input_shape), name=name, **config)
