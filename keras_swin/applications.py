"""Applications: build a model and load its weights, in one call.

The top floor under the command line and the recipes, and what
`keras_swin` exports: `SwinTransformer(weights=...)`,
`SwinTransformerV2(weights=...)` and `VisionTransformer(weights=...)`
(the graph builders of `keras_swin.models` plus `weights=`), the
papers' variants (`SwinTiny()`, `SwinV2Tiny()`, `ViTBase16()`, ...,
used like `keras.applications`), `load_checkpoint` (the model a
checkpoint describes) and `build_pretrained` (the model of a registered
release).

A model built for weights carries them in its graph: a
`PreprocessingInfo` layer records the evaluation transform, the source
and what loading changed (`keras_swin.weights.loading.checkpoint_notes`).

Example:
    >>> model = SwinTiny(weights=None, classes=10)
    >>> model.output_shape
    (None, 10)
"""

from __future__ import annotations

import inspect
import os

import keras

from keras_swin.models import upernet
from keras_swin.weights import pretrained
from keras_swin.weights.families import Family, get_family
from keras_swin.weights.loading import (
    fine_tune_window_arguments,
    load_into,
    load_weights,
    per_call_position_arguments,
    preprocessing_for,
    resolve_weights_argument,
)
from weights_tools.backbone import as_backbone
from weights_tools.common import ConversionError
from weights_tools.convert import (
    Checkpoint,
    convert_checkpoint,
    is_keras_model_file,
)


def _input_size(config: dict, default: tuple = (224, 224)) -> tuple:
    """The (height, width) a builder call will have, before building."""
    # A backbone or segmenter builder spells it `image_shape`.
    shape = config.get("input_shape", config.get("image_shape"))
    if shape is None and config.get("input_tensor") is not None:
        shape = tuple(config["input_tensor"].shape[1:])
    if shape is None:
        return default
    return tuple(shape[:2])


def _build(
    family: Family,
    args: tuple,
    kwargs: dict,
    weights,
    default_size: tuple = (224, 224),
) -> keras.Model:
    """`family.builder(*args, **kwargs)` with `weights` loaded.

    `weights` is read first (a release is downloaded and converted once,
    a checkpoint read once), then the model is built once, recording the
    weights' preprocessing, then the weights are fitted and assigned.
    """
    signature = inspect.signature(family.builder)
    bound = signature.bind(*args, **kwargs)
    bound.apply_defaults()
    config = dict(bound.arguments)
    for name, parameter in signature.parameters.items():
        # `**backbone_arguments` of a builder: flat, as it is called.
        if parameter.kind is inspect.Parameter.VAR_KEYWORD:
            config.update(config.pop(name, {}))
    resolved = resolve_weights_argument(
        weights, family, config, _input_size(config, default_size)
    )
    if (
        resolved is not None
        and resolved.preprocessing is not None
        and config.get("preprocessing") is None
    ):
        config["preprocessing"] = resolved.preprocessing
    if resolved is not None and resolved.checkpoint is not None:
        # ViT at any size: the embedding stays at the weights' grid.
        config.update(per_call_position_arguments(resolved.checkpoint, config))
        config.update(fine_tune_window_arguments(resolved.checkpoint, config))
    model = family.builder(**config)
    load_weights(model, resolved, config)
    return model


def _with_weights(family_name: str, doc: str, default_size=(224, 224)):
    family = get_family(family_name)
    graph = family.builder

    def application(*args, weights=None, **kwargs) -> keras.Model:
        # Looked up per call: the registry is data that may be extended.
        return _build(
            get_family(family_name), args, kwargs, weights, default_size
        )

    # The graph's parameters, then `weights` (keyword only), as called.
    weights = inspect.Parameter(
        "weights", inspect.Parameter.KEYWORD_ONLY, default=None
    )
    signature = inspect.signature(graph)
    application.__signature__ = signature.replace(
        parameters=[*signature.parameters.values(), weights]
    )
    application.__name__ = application.__qualname__ = graph.__name__
    application.__doc__ = doc
    return application


_WEIGHTS_DOC = """    weights: None (random init); a registered release name or
            alias (`"imagenet"`, `"imagenet22k"`, a full `arch.tag` name from
            `keras_swin.available_weights()`), downloaded,
            converted and cached on first use, then resampled to the
            model's size and window (checked against the architecture
            before any download); a `.weights.h5` or `.keras` file of the
            same architecture; or an original checkpoint file or folder
            (official, timm or Hugging Face) of exactly this architecture
            (`load_checkpoint` resamples one for another size)."""

_APPLICATION_DOC = """Builds a {title}, optionally with weights.

    `keras_swin.models.{builder}` (see it for every architecture
    argument and the graph) plus `weights=`. With weights, the model
    records their preprocessing, source and loading notes in a
    `PreprocessingInfo` layer (`keras_swin.weights.loading.checkpoint_notes`).

    Args:
        *args, **kwargs: the arguments of `keras_swin.models.{builder}`.
    {weights}

    Returns:
        A `keras.Model`: (B, H, W, 3) images -> (B, classes) logits or
        probabilities, or features without the top.

    Example:
        >>> model = {builder}({example}, classes=10)
        >>> model.output_shape
        (None, 10)
    """

SwinTransformer = _with_weights(
    "swin",
    _APPLICATION_DOC.format(
        title="Swin Transformer",
        builder="SwinTransformer",
        weights=_WEIGHTS_DOC,
        example="embed_dim=32, depths=(2, 2), num_heads=(1, 2)",
    ),
)
SwinTransformerV2 = _with_weights(
    "swin_v2",
    _APPLICATION_DOC.format(
        title="Swin Transformer V2",
        builder="SwinTransformerV2",
        weights=_WEIGHTS_DOC,
        example="embed_dim=24, depths=(2, 2), num_heads=(1, 2)",
    ),
    default_size=(256, 256),
)
VisionTransformer = _with_weights(
    "vit",
    _APPLICATION_DOC.format(
        title="Vision Transformer",
        builder="VisionTransformer",
        weights=_WEIGHTS_DOC,
        example="patch_size=16, hidden_size=64, num_layers=2, "
        "num_heads=4, mlp_dim=128",
    ),
)


def SwinUperNet(
    variant: str | None = None,
    *,
    weights=None,
    backbone: keras.Model | None = None,
    num_classes: int | None = None,
    input_shape=(None, None, 3),
    name: str = "swin_upernet",
    **kwargs,
) -> keras.Model:
    """Swin + UperNet segmenter, optionally with weights.

    `keras_swin.models.upernet.SwinUperNet` (see it for the variants,
    `backbone=` and every head argument) plus `weights=`.

    Args:
        variant: "swin_tiny", "swin_small", "swin_base", "swin_large"
            (the released ADE20K configurations), or None with the
            architecture in `kwargs`.
        weights: None (random initialisation); a registered segmenter
            release (`keras_swin.available_weights()`, e.g.
            "upernet_swin_tiny_patch4_window7_512.ms_ade20k"), downloaded,
            converted and cached on first use; or a local UperNet
            checkpoint (Hugging Face folder, official mmsegmentation
            `.pth`, `.weights.h5` or `.keras` of this architecture).
        backbone: a ready backbone with `pyramid_outputs` (no `weights`).
        num_classes: classes; with weights, another count keeps all but
            the two classifiers (a `HeadWarning` names them).
        input_shape: (H, W, C); None sides for any size.
        name: model name.
        **kwargs: further `SwinBackbone` and `UperNet` arguments.

    Returns:
        A `keras_swin.UperNet`: (B, H, W, 3) normalised images ->
        {"logits": (B, H, W, K), "auxiliary_logits": (B, H, W, K)}.

    Example:
        >>> model = SwinUperNet(num_classes=4, embed_dim=8,
        ...     depths=(1, 1, 1, 1), num_heads=(1, 1, 1, 1), window_size=4,
        ...     channels=8, auxiliary_channels=4)
        >>> sorted(model.output)
        ['auxiliary_logits', 'logits']
    """
    if weights is None:
        return upernet.SwinUperNet(
            variant,
            backbone=backbone,
            num_classes=num_classes,
            input_shape=input_shape,
            name=name,
            **kwargs,
        )
    if backbone is not None:
        raise ValueError(
            "SwinUperNet(weights=...) builds its own Swin backbone; pass "
            "either weights or backbone, not both."
        )
    if variant is None:
        config = {}
    elif variant in upernet.UPERNET_CONFIGS:
        config = dict(upernet.UPERNET_CONFIGS[variant])
    else:
        raise ValueError(
            f"Unknown variant {variant!r}; expected one of "
            f"{sorted(upernet.UPERNET_CONFIGS)} or None."
        )
    config.update(kwargs)
    if num_classes is not None:
        config["num_classes"] = num_classes
    config["image_shape"] = tuple(input_shape)
    config["name"] = name
    return _build(get_family("swin_upernet"), (), config, weights)


_VARIANT_DOC = """{summary}

    {notes} Other keyword arguments go to `{family}`.

    Args:
        include_top: add the pooling and the classifier.
        weights: None, a release name or alias (`"imagenet"`), or a
            local file (see `{family}`).
        input_tensor: optional Keras tensor as image input.
        input_shape: (H, W, C); default (224, 224, 3), Swin V2
            (256, 256, 3).
        pooling: {poolings} when `include_top=False`.
        classes: classes of the head.
        classifier_activation: activation of the head; None for logits.
        name: model name.
        **kwargs: further `{family}` arguments; they win over the
            variant's configuration.

    Returns:
        A `keras.Model`: (B, H, W, 3) images -> (B, classes) or features.

    Example:
        >>> model = {name}(weights=None)
        >>> model.count_params() > 0
        True
    """


def make_variant(
    build, config: dict, name: str, summary: str, notes: str, poolings: str
):
    """A one-line variant builder: `build` with a fixed configuration.

    Args:
        build: the generic builder (`SwinTransformer`, ...).
        config: the variant's architecture arguments.
        name: the variant's function and default model name.
        summary: first docstring line.
        notes: docstring sentence on sizes and defaults.
        poolings: docstring text listing the headless poolings.

    Returns:
        A function with the keras.applications signature.
    """

    def builder(
        include_top: bool = True,
        weights=None,
        input_tensor=None,
        input_shape=None,
        pooling: str | None = None,
        classes: int = 1000,
        classifier_activation="softmax",
        name: str = name,
        **kwargs,
    ) -> keras.Model:
        return build(
            include_top=include_top,
            weights=weights,
            input_tensor=input_tensor,
            input_shape=input_shape,
            pooling=pooling,
            classes=classes,
            classifier_activation=classifier_activation,
            name=name,
            **{**config, **kwargs},
        )

    builder.__name__ = builder.__qualname__ = name
    builder.__doc__ = _VARIANT_DOC.format(
        summary=summary,
        notes=notes,
        family=build.__name__,
        name=name,
        poolings=poolings,
    )
    return builder


#: Family name -> its builder with `weights=`.
APPLICATIONS = {
    "swin": SwinTransformer,
    "swin_v2": SwinTransformerV2,
    "vit": VisionTransformer,
}


def _swin_variant(key: str, name: str, letter: str):
    config = get_family("swin").configs[key]
    return make_variant(
        SwinTransformer,
        config,
        name,
        summary=f"Swin-{letter}: embed_dim {config['embed_dim']}, depths "
        f"{config['depths']}, heads {config['num_heads']}.",
        notes="224 px with window 7 by default; for the 384 px models "
        "pass `input_shape=(384, 384, 3), window_size=12`. "
        f"`drop_path_rate` defaults to {config['drop_path_rate']}, the "
        "paper's training rate.",
        poolings='None, "avg" or "max"',
    )


def _swinv2_variant(key: str, name: str, letter: str):
    config = get_family("swin_v2").configs[key]
    return make_variant(
        SwinTransformerV2,
        config,
        name,
        summary=f"Swin V2-{letter}: embed_dim {config['embed_dim']}, depths "
        f"{config['depths']}, heads {config['num_heads']}.",
        notes="256 px with window 8 by default (`input_shape` None gives "
        "(256, 256, 3)); `window_size=16` for the window-16 models. The "
        "ImageNet-22K models run at 192 px with window 12: "
        "`input_shape=(192, 192, 3), window_size=12, classes=21841`; "
        "their 22K -> 1K fine-tunes at 256 px with window 16 or 384 px "
        "with window 24 add `pretrained_window_sizes=(12, 12, 12, 6)`: "
        "e.g. `input_shape=(384, 384, 3), window_size=24, "
        "pretrained_window_sizes=(12, 12, 12, 6), weights="
        '"swinv2_base_patch4_window12to24_192to384.ms_in22k_ft_in1k"`. No '
        "weight depends on the window or the size, so any weights load "
        "into any of these; `pretrained_window_sizes` names the window "
        "the position-bias MLP was trained at. "
        f"`drop_path_rate` defaults to {config['drop_path_rate']}, the "
        "official training rate.",
        poolings='None, "avg" or "max"',
    )


def _vit_variant(key: str, name: str, title: str):
    config = get_family("vit").configs[key]
    return make_variant(
        VisionTransformer,
        config,
        name,
        summary=f"{title}: patch {config['patch_size']}, width "
        f"{config['hidden_size']}, {config['num_layers']} layers, "
        f"{config['num_heads']} heads, MLP {config['mlp_dim']}.",
        notes="Official JAX numerics by default (LayerNorm eps 1e-6, tanh "
        "GELU); see `VisionTransformer` for `classifier`, "
        "`representation_size`, `layer_norm_epsilon`, `gelu_approximate`.",
        poolings='None, "token", "avg" or "max"',
    )


SwinTiny = _swin_variant("swin_tiny", "SwinTiny", "T")
SwinSmall = _swin_variant("swin_small", "SwinSmall", "S")
SwinBase = _swin_variant("swin_base", "SwinBase", "B")
SwinLarge = _swin_variant("swin_large", "SwinLarge", "L")

SwinV2Tiny = _swinv2_variant("swinv2_tiny", "SwinV2Tiny", "T")
SwinV2Small = _swinv2_variant("swinv2_small", "SwinV2Small", "S")
SwinV2Base = _swinv2_variant("swinv2_base", "SwinV2Base", "B")
SwinV2Large = _swinv2_variant("swinv2_large", "SwinV2Large", "L")

ViTTiny16 = _vit_variant("vit_tiny_patch16", "ViTTiny16", "ViT-Ti/16")
ViTSmall16 = _vit_variant("vit_small_patch16", "ViTSmall16", "ViT-S/16")
ViTBase16 = _vit_variant("vit_base_patch16", "ViTBase16", "ViT-B/16")
ViTBase32 = _vit_variant("vit_base_patch32", "ViTBase32", "ViT-B/32")
ViTLarge16 = _vit_variant("vit_large_patch16", "ViTLarge16", "ViT-L/16")
ViTLarge32 = _vit_variant("vit_large_patch32", "ViTLarge32", "ViT-L/32")
ViTHuge14 = _vit_variant("vit_huge_patch14", "ViTHuge14", "ViT-H/14")


def build_from_checkpoint(
    checkpoint: Checkpoint,
    *,
    input_shape=None,
    classes: int | None = None,
    classifier_activation=None,
    overrides: dict | None = None,
) -> keras.Model:
    """Builds the model of a converted checkpoint and loads it.

    The back end of `load_checkpoint`, for a `weights_tools.convert.
    Checkpoint` already in memory: builds the family's model once (the
    checkpoint's architecture, with `overrides`, `input_shape` and
    `classes` applied), then fits and assigns the arrays
    (`keras_swin.weights.loading.load_into`).

    Args:
        checkpoint: the converted checkpoint (changed in place).
        input_shape, classes, classifier_activation: as `load_checkpoint`.
        overrides: further builder arguments.

    Returns:
        The loaded `keras.Model`.

    Example:
        >>> model = build_from_checkpoint(
        ...     convert_checkpoint("swin_tiny_patch4_window7_224.pth"),
        ...     input_shape=(384, 384, 3), overrides=dict(window_size=12))
    """
    family = get_family(checkpoint.family)
    overrides = dict(overrides or {})
    reserved = sorted({"include_top", "pooling", "weights"} & set(overrides))
    if reserved:
        raise ValueError(
            f"load_checkpoint sets {reserved} itself; use classes=0 for a "
            "headless model that outputs the pooled features."
        )
    config, classes = family.checkpoint_arguments(
        family,
        {**checkpoint.config, **overrides},
        input_shape=input_shape,
        classes=classes,
        classifier_activation=classifier_activation,
    )
    # ViT at any size: the embedding stays at the checkpoint's grid.
    config.update(per_call_position_arguments(checkpoint, config))
    config.setdefault("preprocessing", preprocessing_for(checkpoint, classes))
    model = family.builder(**config)
    # classes=0 asks for no head: dropping the stored one is no news.
    load_into(model, checkpoint, config, warn=classes > 0)
    return model


def load_checkpoint(
    path,
    *,
    input_shape=None,
    classes: int | None = None,
    classifier_activation=None,
    format: str | None = None,
    **overrides,
) -> keras.Model:
    """Builds the model a checkpoint describes and loads it, strictly.

    Reads, with the format detected from the tensors and any
    `config.json` beside them:

    * official Swin `.pth` (also ImageNet-22K, 21841 classes) and
      official / AugReg ViT `.npz` (with or without `pre_logits`);
    * timm Swin and ViT state dicts (`model.safetensors`,
      `pytorch_model.bin`, `.pth`), including ViT with global average
      pooling and `fc_norm`, without class token and with registers;
    * official Swin V2 `.pth` (window and pre-training window read from
      its buffers) and timm `swinv2_*` state dicts (window, size and
      `pretrained_window_sizes` from timm's `config.json` or passed:
      `window_size=...`, `pretrained_window_sizes=...`; no Swin V2
      weight depends on them, so another window loads unchanged);
    * Hugging Face `save_pretrained` folders for Swin and ViT, with the
      legacy (Hub) or the transformers-5 key names;
    * a `.keras` model file (`keras-swin convert`/`train`,
      `model.save`): the saved model is returned as it is, with its
      `PreprocessingInfo` (`keras_swin.imagenet.model_preprocessing`).
      A saved model cannot be rebuilt, so `input_shape`, `classes` and
      `classifier_activation` are accepted only when they equal the
      saved ones, and `format` or overrides not at all.

    No torch is needed; pickles are read without executing code. The
    architecture is inferred (`checkpoint_config`), the model built with
    this package's builder and every weight set; any unused entry, unset
    weight or shape mismatch raises a `ConversionError` listing them all.

    Another `input_shape` or `window_size` resamples what depends on it,
    as each source library's fine-tuning code does: Swin relative
    position tables (official/HF bicubic, timm's geometric grid) and
    absolute position embeddings, ViT position embeddings (official
    `.npz`: corner-aligned bilinear as scipy's zoom; HF: bicubic; timm:
    bicubic with antialiasing). The changes are listed in
    `checkpoint_notes(model)`.

    The model records its preprocessing (the format's evaluation
    transform, or what a timm `config.json` states; class names from a
    `config.json` `id2label`), its source and the notes in a
    `PreprocessingInfo` layer, so `model.save("m.keras")` keeps them and
    `keras-swin predict --weights m.keras` needs nothing else.

    Args:
        path: checkpoint file, or a folder with config.json and weights.
        input_shape: (H, W, C) to build for; default the checkpoint's
            image size (Swin: also `(None, None, 3)` for any size).
        classes: classes of the head; default the checkpoint's. 0 gives a
            headless model that outputs the pooled features. A Swin
            ImageNet-22K head loaded with `classes=1000` is mapped to
            ImageNet-1K (the official 22K-to-1K rows); any other change
            replaces the head by a zero one (warning naming the dropped
            weights).
        classifier_activation: head activation; None gives logits.
        format: force one of `weights_tools.formats.FORMAT_NAMES`
            instead of detecting it.
        **overrides: further builder arguments; they win over the
            inferred ones (e.g. `window_size=12`, `drop_path_rate=0.2`,
            `num_heads=12` for a timm ViT without config.json).

    Returns:
        A built `keras.Model` with the checkpoint's weights; the notes on
        what was resampled or mapped are `checkpoint_notes(model)`.

    Raises:
        ConversionError: the checkpoint does not fit (keys and shapes
            listed), it lacks a value that must be passed, or a `.keras`
            file cannot be loaded or given the arguments.
        CheckpointError: the file is unreadable, corrupt or unsafe.

    Example:
        >>> model = load_checkpoint("swin_tiny_patch4_window7_224.pth")
        >>> logits = model.predict(images)  # (B, 1000)
        >>> model_384 = load_checkpoint(
        ...     "swin_base_patch4_window7_224_22k.pth",
        ...     input_shape=(384, 384, 3), window_size=12, classes=1000)
    """
    if is_keras_model_file(path):
        return _load_keras_model(
            os.fspath(path),
            input_shape=input_shape,
            classes=classes,
            classifier_activation=classifier_activation,
            format=format,
            overrides=overrides,
        )
    return build_from_checkpoint(
        convert_checkpoint(path, format=format, **overrides),
        input_shape=input_shape,
        classes=classes,
        classifier_activation=classifier_activation,
        overrides=overrides,
    )


def load_backbone(
    path,
    *,
    out_indices=(0, 1, 2, 3),
    input_shape=(None, None, 3),
    format: str | None = None,
    **overrides,
) -> keras.Model:
    """A Swin dense-prediction backbone from any Swin checkpoint.

    The way the official detection and segmentation code starts from
    ImageNet weights: a classification checkpoint (official, timm or
    Hugging Face) gives the stages, its final `norm` and `head` are
    dropped, and the output norms `norm{i}` start fresh (gamma 1, beta
    0); a dense checkpoint (official mmdetection / mmsegmentation `.pth`,
    Hugging Face `SwinBackbone` or UperNet folder) gives everything,
    with `out_indices` chosen anew (norms it lacks start fresh, those not
    asked for are dropped). The notes say which (`checkpoint_notes`).

    The backbone always has the dense code's window semantics
    (`window_mode="pad"`): a classification model's last stage at 224 px
    (7x7 map, window 7) is shifted here and was not in the classifier,
    as in the official detection code.

    Args:
        path: checkpoint file or folder.
        out_indices: stages whose normalised outputs are returned.
        input_shape: (H, W, C); default any size.
        format: force a source format instead of detecting it.
        **overrides: further `SwinBackbone` arguments (e.g.
            `drop_path_rate=0.2`, `frozen_stages=1`,
            `gradient_checkpointing=True`).

    Returns:
        A `SwinBackbone` mapping (B, H, W, C) images to
        {"P{i+2}": (B, H_i, W_i, C_i)}.

    Raises:
        ConversionError: not a Swin checkpoint, or a stage whose relative
            position table was clamped below the window.

    Example:
        >>> backbone = load_backbone("swin_tiny_patch4_window7_224.pth",
        ...                          out_indices=(1, 2, 3))
        >>> sorted(backbone.pyramid_outputs)
        ['P3', 'P4', 'P5']
    """
    checkpoint = as_backbone(
        convert_checkpoint(path, format=format), out_indices=out_indices
    )
    return build_from_checkpoint(
        checkpoint, input_shape=input_shape, overrides=overrides
    )


def _load_keras_model(
    path: str,
    *,
    input_shape,
    classes,
    classifier_activation,
    format,
    overrides: dict,
) -> keras.Model:
    """`load_checkpoint` of a `.keras` file: the saved model, as it is.

    A `.keras` file holds a built model, not tensors to fit to a new
    architecture, so only arguments that it already satisfies are
    accepted; anything else is refused rather than half applied.
    """
    if format is not None or overrides:
        given = ["format"] * (format is not None) + sorted(overrides)
        raise ConversionError(
            f"{path} is a saved Keras model; {', '.join(given)} only "
            "apply to checkpoints of tensors. Convert the original "
            "checkpoint with them instead."
        )
    try:
        model = keras.saving.load_model(path, compile=False)
    except Exception as error:  # Keras raises many types on bad files
        raise ConversionError(
            f"{path} is a .keras file that Keras cannot load: {error}"
        ) from error
    layers = {layer.name: layer for layer in model.layers}
    head = layers.get("head")
    stored_classes = getattr(head, "units", 0)
    stored_shape = tuple(model.input_shape[1:])
    refused = []
    if input_shape is not None and tuple(input_shape) != stored_shape:
        refused.append(
            f"input_shape={tuple(input_shape)} (saved: {stored_shape})"
        )
    if classes is not None and classes != stored_classes:
        refused.append(f"classes={classes} (saved: {stored_classes})")
    if classifier_activation is not None:
        serialize = keras.activations.serialize
        wanted = serialize(keras.activations.get(classifier_activation))
        saved = getattr(head, "activation", None)
        saved = "no head" if saved is None else serialize(saved)
        if wanted != saved:
            refused.append(
                f"classifier_activation={classifier_activation!r} "
                f"(saved: {saved})"
            )
    if refused:
        raise ConversionError(
            f"{path} is a saved Keras model and cannot be rebuilt with "
            f"{'; '.join(refused)}. Convert the original checkpoint with "
            "these options, or change the loaded model yourself."
        )
    return model


def build_pretrained(name: str, **kwargs) -> keras.Model:
    """The model of a registered release, with its weights loaded.

    Args:
        name: an `arch.tag` name, or a bare `arch` for its "imagenet"
            default (see `keras_swin.available_weights()`).
        **kwargs: builder arguments that change the release's own
            (`input_shape`, `window_size`, `classes`, `include_top`, ...);
            weights are resampled or the head replaced accordingly.

    Returns:
        A `keras.Model` (softmax head by default, as keras.applications)
        that records the release's preprocessing
        (`keras_swin.imagenet.model_preprocessing`) and name
        (`keras_swin.weights.loading.weights_source`).

    Example:
        >>> model = build_pretrained("swin_tiny_patch4_window7_224.ms_in1k")
        >>> model_preprocessing(model)["crop_pct"]
        0.875
    """
    spec = pretrained.get_weights_spec(name)
    family = get_family(spec.family)
    if family.release_builder_arguments is not None:
        # A segmenter: built for any input size by default.
        args = family.release_builder_arguments(family, spec, kwargs)
        args["name"] = spec.name.split(".")[0]
        return _build(family, (), args, spec.name)
    size = spec.image_size
    args = dict(
        family.configs[spec.variant],
        input_shape=(size, size, 3),
        classes=spec.classes,
    )
    if spec.window_size is not None:
        args["window_size"] = spec.window_size
    if spec.pretrained_window_sizes is not None:
        args["pretrained_window_sizes"] = spec.pretrained_window_sizes
    if spec.representation_size is not None:
        args["representation_size"] = spec.representation_size
    args.update(kwargs)
    args["name"] = spec.name.split(".")[0]
    return _build(family, (), args, spec.name)
