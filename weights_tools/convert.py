"""Checkpoint in, Keras model out: format detection and strict loading."""

from __future__ import annotations

import json
import math
import os
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from weights_tools import (
    hf_format,
    official_swin,
    official_vit,
    resample,
    timm_format,
)
from weights_tools.common import (
    ConversionError,
    Converted,
    assign_strict,
    check_config,
)
from weights_tools.readers import read_checkpoint, read_sharded

if TYPE_CHECKING:  # annotations only: reading a checkpoint needs no Keras
    import keras


@dataclass(frozen=True)
class Format:
    """One checkpoint layout this package reads.

    Attributes:
        name: format name (`format=` / `--format`).
        family: "swin" or "vit".
        matches: (tensors, meta) -> bool.
        infer: (tensors, meta, overrides) -> builder arguments plus
            `classes` and `input_shape`.
        convert: (tensors, meta) -> `Converted`.
        table_resampling: how Swin relative position tables are resized
            on load ("bicubic" official/HF, "timm").
        position_resampling: how position embeddings are resized ("zoom"
            official ViT, "bicubic" official Swin/HF, "bicubic_antialias"
            timm).

    Example:
        >>> FORMATS["timm_vit"].family
        'vit'
    """

    name: str
    family: str
    matches: Callable
    infer: Callable
    convert: Callable
    table_resampling: str = "bicubic"
    position_resampling: str = "bicubic"


def _tensors_only(function):
    return lambda tensors, meta=None, overrides=None: function(tensors)


#: Known layouts, in detection order (the first match wins).
FORMATS = {
    f.name: f
    for f in (
        Format(
            hf_format.SWIN,
            "swin",
            hf_format.matches_swin,
            lambda t, m=None, o=None: hf_format.infer_swin_config(t, m),
            hf_format.convert_swin,
        ),
        Format(
            hf_format.VIT,
            "vit",
            hf_format.matches_vit,
            hf_format.infer_vit_config,
            hf_format.convert_vit,
        ),
        Format(
            timm_format.SWIN,
            "swin",
            timm_format.matches_swin,
            lambda t, m=None, o=None: timm_format.infer_swin_config(t, m),
            timm_format.convert_swin,
            table_resampling="timm",
            position_resampling="bicubic_antialias",
        ),
        Format(
            official_swin.FORMAT,
            "swin",
            lambda t, m=None: official_swin.matches(t),
            _tensors_only(official_swin.infer_config),
            lambda t, m=None: official_swin.convert(t),
        ),
        Format(
            timm_format.VIT,
            "vit",
            timm_format.matches_vit,
            timm_format.infer_vit_config,
            timm_format.convert_vit,
            position_resampling="bicubic_antialias",
        ),
        Format(
            official_vit.FORMAT,
            "vit",
            lambda t, m=None: official_vit.matches(t),
            _tensors_only(official_vit.infer_config),
            lambda t, m=None: official_vit.convert(t),
            position_resampling="zoom",
        ),
    )
}

#: Files looked for, in order, when a folder is given.
WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)

#: Swin heads with this many classes (Microsoft's ImageNet-22K label
#: space) map to ImageNet-1K by row selection, as the official code.
SWIN_22K_CLASSES = 21841


def detect_format(tensors: dict[str, np.ndarray], source: str = "", meta=None):
    """Names the layout of a checkpoint's tensors.

    Args:
        tensors: checkpoint key -> array.
        source: file name for the error message.
        meta: the `config.json` beside the file (HF or timm), or None.

    Returns:
        One of `FORMATS`.

    Raises:
        ConversionError: no known layout matches.

    Example:
        >>> detect_format(read_checkpoint("swin_tiny.pth"))
        'official_swin'
    """
    for name, fmt in FORMATS.items():
        if fmt.matches(tensors, meta):
            return name
    sample = ", ".join(sorted(tensors)[:6])
    raise ConversionError(
        f"{source or 'The checkpoint'} is in no known layout (known: "
        f"{', '.join(FORMATS)}). Its first keys: {sample}."
    )


#: A config.json is a few kilobytes (about 1 MB with 21k label names).
MAX_CONFIG_BYTES = 16 * 2**20


def _read_meta(folder: str) -> dict | None:
    """The folder's HF or timm config.json, its sizes checked, or None."""
    path = os.path.join(folder, "config.json")
    if not os.path.isfile(path):
        return None
    try:
        if os.path.getsize(path) > MAX_CONFIG_BYTES:
            raise ValueError(
                f"it is {os.path.getsize(path)} bytes long, more than the "
                f"{MAX_CONFIG_BYTES} a config.json may take"
            )
        with open(path, encoding="utf-8") as handle:
            meta = json.load(handle)
    except (OSError, ValueError) as error:
        raise ConversionError(f"{path} is not readable JSON: {error}") from None
    # Only Hugging Face (model_type) and timm (architecture) configs count.
    if isinstance(meta, dict) and "model_type" in meta:
        check_config(meta, hf_format.CONFIG_CHECKS, path)
        return meta
    if isinstance(meta, dict) and "architecture" in meta:
        timm_format.check_timm_config(meta, path)
        return meta
    return None


def _read_sharded(index_path: str) -> dict[str, np.ndarray]:
    # Shards must lie in the index's folder (readers.read_sharded).
    return read_sharded(index_path)


def is_keras_model_file(path) -> bool:
    """Whether `path` is a Keras `.keras` model file, by its content.

    A `.keras` file (Keras 3 `model.save`) is a zip archive holding
    `config.json` and `metadata.json`; the name does not matter.

    Args:
        path: any path.

    Returns:
        True for a readable `.keras` archive, else False.

    Example:
        >>> is_keras_model_file("runs/digits/model.keras")
        True
    """
    path = os.fspath(path)
    if not os.path.isfile(path) or not zipfile.is_zipfile(path):
        return False
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
    except (OSError, zipfile.BadZipFile):
        return False
    return {"config.json", "metadata.json"} <= names


def source_meta(path) -> dict | None:
    """The Hugging Face or timm `config.json` of a checkpoint, or None.

    Reads only the config (beside a file, or inside a folder), not the
    tensors; `read_source` returns the same dict.

    Args:
        path: checkpoint file or folder.

    Returns:
        The parsed, size-checked config, or None without one.

    Example:
        >>> source_meta("hf_swin_tiny/")["model_type"]
        'swin'
    """
    path = os.fspath(path)
    return _read_meta(
        path if os.path.isdir(path) else os.path.dirname(path) or "."
    )


def read_source(path) -> tuple[str, dict[str, np.ndarray], dict | None]:
    """Reads a checkpoint file or a `save_pretrained`/timm Hub folder.

    Args:
        path: a checkpoint file (`.pth`, `.bin`, `.safetensors`, `.npz`,
            any name: the content decides) or a folder holding
            `config.json` and `model.safetensors` / `pytorch_model.bin`
            (sharded with an `*.index.json` too).

    Returns:
        (file read, tensors, meta): meta is the Hugging Face or timm
        `config.json` beside the weights, or None.

    Raises:
        FileNotFoundError: nothing at `path`, or a folder without weights.
        CheckpointError: unreadable, corrupt or unsafe file.
        ConversionError: a `.keras` model file (use `load_checkpoint`).

    Example:
        >>> source, tensors, meta = read_source("hf_swin_tiny/")
        >>> meta["model_type"]
        'swin'
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        for name in WEIGHT_FILES:
            candidate = os.path.join(path, name)
            if os.path.isfile(candidate):
                break
        else:
            raise FileNotFoundError(
                f"{path} is a folder without a checkpoint: expected one of "
                f"{', '.join(WEIGHT_FILES)}."
            )
        folder, file = path, candidate
    else:
        folder, file = os.path.dirname(path) or ".", path
    if is_keras_model_file(file):
        raise ConversionError(
            f"{file} is a Keras model file (.keras), not a checkpoint of "
            "named tensors: load it with load_checkpoint() or "
            "keras.saving.load_model(), or pass it to `keras-swin predict "
            "--weights`."
        )
    if file.endswith(".index.json"):
        tensors = _read_sharded(file)
    else:
        tensors = read_checkpoint(file)
    return file, tensors, _read_meta(folder)


def _read(path, format: str | None):
    file, tensors, meta = read_source(path)
    if format is not None and format not in FORMATS:
        raise ValueError(
            f"format must be one of {sorted(FORMATS)}, got {format!r}."
        )
    name = format or detect_format(tensors, file, meta)
    if format is not None and not FORMATS[name].matches(tensors, meta):
        try:
            looks = f"it looks like {detect_format(tensors, file, meta)}"
        except ConversionError:
            looks = "its layout is unknown"
        raise ConversionError(
            f"{file} is not in the {format} layout ({looks}; first keys: "
            f"{', '.join(sorted(tensors)[:4])})."
        )
    return file, tensors, meta, FORMATS[name]


def _builder(family: str):
    from keras_swin.models import SwinTransformer, VisionTransformer

    return SwinTransformer if family == "swin" else VisionTransformer


def checkpoint_config(path, *, format: str | None = None, **overrides) -> dict:
    """The architecture a checkpoint was made for, read from its tensors.

    Args:
        path: checkpoint file or Hugging Face / timm folder.
        format: force a format instead of detecting it.
        **overrides: values the checkpoint cannot tell (timm ViT
            `num_heads` without a config.json).

    Returns:
        dict with `family` ("swin" or "vit"), `format` and the builder's
        keyword arguments (`classes`, `input_shape`, ...).

    Example:
        >>> checkpoint_config("swin_tiny_patch4_window7_224.pth")["depths"]
        (2, 2, 6, 2)
    """
    _, tensors, meta, fmt = _read(path, format)
    config = fmt.infer(tensors, meta, overrides)
    config.update(overrides)
    return dict(family=fmt.family, format=fmt.name, **config)


def _grid(model: keras.Model, patch: int) -> tuple[int, int]:
    height, width = model.inputs[0].shape[1:3]
    return height // patch, width // patch


def _prefix_rows(config: dict) -> int:
    """Rows of a ViT position embedding that are not part of the grid."""
    if not config.get("position_embedding_on_prefix", True):
        return 0
    class_token = config.get("class_token")
    if class_token is None:
        class_token = config.get("classifier", "token") == "token"
    return int(class_token) + int(config.get("num_register_tokens", 0))


def resample_mismatched(
    converted: Converted,
    model: keras.Model,
    *,
    source_config: dict,
    model_config: dict,
    table_resampling: str = "bicubic",
    position_resampling: str = "bicubic",
) -> None:
    """Resizes position embeddings and bias tables to the model's shapes.

    The fine-tuning step of both papers: a checkpoint made at one input
    size or window is loaded into a model with another. Swin relative
    position bias tables are resized to the model's window, Swin absolute
    and ViT position embeddings to the model's patch grid (class and
    register rows kept). Each change is recorded in `converted.notes`.
    Other mismatches are left for `assign_strict` to report.

    Args:
        converted: the renamed checkpoint, changed in place.
        model: the model to load into.
        source_config: builder arguments of the checkpoint's own model
            (its `input_shape` gives the stored grid).
        model_config: builder arguments of `model`.
        table_resampling: "bicubic" (official Swin) or "timm".
        position_resampling: "zoom", "bicubic" or "bicubic_antialias".

    Example:
        >>> resample_mismatched(converted, model_384,
        ...                     source_config=config_224,
        ...                     model_config=config_384)
    """
    variables = {v.path: v for v in model.weights}
    patch = source_config["patch_size"]
    old_h, old_w = source_config["input_shape"][:2]
    old_grid = (old_h // patch, old_w // patch)
    for path, array in list(converted.weights.items()):
        variable = variables.get(path)
        if variable is None or tuple(array.shape) == tuple(variable.shape):
            continue
        shape = tuple(variable.shape)
        method = None
        if path.endswith("/relative_position_bias_table"):
            if array.ndim == 2 and array.shape[1] == shape[1]:
                window = (math.isqrt(shape[0]) + 1) // 2
                array = resample.resize_relative_position_table(
                    array, window, method=table_resampling
                )
                method = table_resampling
        elif path == "absolute_pos_embed/embedding":
            if array.ndim == 4 and array.shape[3] == shape[3]:
                array = resample.bicubic_resize(array, shape[1:3], axes=(1, 2))
                method = "bicubic"
        elif path == "pos_embed/embedding":
            if array.ndim == 3 and array.shape[2] == shape[2]:
                prefix = _prefix_rows(model_config)
                if array.shape[1] - prefix != old_grid[0] * old_grid[1]:
                    old = None  # not the stated grid: assume a square one
                else:
                    old = old_grid
                array = resample.resize_position_embedding(
                    array,
                    _grid(model, model_config["patch_size"]),
                    num_prefix_tokens=prefix,
                    old_grid=old,
                    method=position_resampling,
                )
                method = position_resampling
        if method is not None:
            converted.notes.append(
                f"{converted.sources[path]}: resampled "
                f"{list(converted.weights[path].shape)} -> "
                f"{list(array.shape)} ({method})"
            )
            converted.weights[path] = array.astype("float32")


class HeadWarning(UserWarning):
    """A checkpoint's classifier head is replaced by a new (zero) one.

    Issued once per load, and only when the model has a head: a headless
    load (`classes=0`, `include_top=False`) asked for the head to go. The
    same text is in `model.checkpoint_notes`, so a caller that prints the
    notes (the command line) can ignore this category.

    Example:
        >>> with warnings.catch_warnings():
        ...     warnings.simplefilter("ignore", HeadWarning)
        ...     model = load_checkpoint(path, classes=3)
    """


def _new_head(
    converted: Converted,
    model: keras.Model,
    classes: int,
    stored: int,
    family: str,
    source: str,
    warn: bool = True,
) -> None:
    """Replaces or maps the stored head when the class count changes."""
    if not stored:
        message = (
            f"{source} has no classifier head; the new {classes}-class "
            "head starts at zero."
        )
    elif family == "swin" and stored == SWIN_22K_CLASSES and classes == 1000:
        from keras_swin.imagenet import map_22k_to_1k

        rows = map_22k_to_1k()
        kernel, bias = "head/kernel", "head/bias"
        converted.weights[kernel] = converted.weights[kernel][:, rows]
        converted.weights[bias] = converted.weights[bias][rows]
        for path in (kernel, bias):
            converted.source_shapes[path] = converted.weights[path].shape
        converted.notes.append(
            f"{source}: the ImageNet-22K head ({stored} classes) was mapped "
            "to ImageNet-1K by selecting the 1000 rows of the official "
            "map22kto1k.txt."
        )
        return
    else:
        dropped = converted.drop("head/")
        message = (
            f"{source}: the checkpoint's {stored}-class head "
            f"({', '.join(dropped)}) is not loaded; "
        )
        message += (
            f"a new {classes}-class head starts at zero, as in the "
            "official fine-tuning code."
            if classes
            else "the model outputs the pooled features."
        )
    converted.notes.append(message)
    if warn and classes:
        warnings.warn(message, HeadWarning, stacklevel=5)
    if classes:
        for variable in model.get_layer("head").weights:
            converted.add(
                variable.path,
                np.zeros(variable.shape, "float32"),
                "(new zero head)",
            )


def _pooling(family: str, config: dict) -> str:
    if family == "swin" or config.get("classifier") == "gap":
        return "avg"
    return "token"


def build_and_load(
    converted: Converted,
    *,
    family: str,
    source_config: dict,
    source: str,
    input_shape=None,
    classes: int | None = None,
    classifier_activation=None,
    table_resampling: str = "bicubic",
    position_resampling: str = "bicubic",
    overrides: dict | None = None,
) -> keras.Model:
    """Builds the model for `source_config` (+ overrides) and loads it.

    The shared back end of `load_checkpoint` and the `weights=` registry:
    resamples what the new size or window needs, replaces or maps the
    head for another `classes`, then assigns strictly.

    Args:
        converted: the renamed checkpoint.
        family: "swin" or "vit".
        source_config: the checkpoint's builder arguments with `classes`
            and `input_shape`.
        source: name for messages.
        input_shape, classes, classifier_activation: as `load_checkpoint`.
        table_resampling, position_resampling: see `resample_mismatched`.
        overrides: further builder arguments.

    Returns:
        The loaded `keras.Model`.

    Example:
        >>> model = build_and_load(converted, family="swin",
        ...                        source_config=config, source="t.pth",
        ...                        input_shape=(384, 384, 3),
        ...                        window_size=12)
    """
    reserved = sorted(
        {"include_top", "pooling", "weights"} & set(overrides or {})
    )
    if reserved:
        raise ValueError(
            f"load_checkpoint sets {reserved} itself; use classes=0 for a "
            "headless model that outputs the pooled features."
        )
    config = dict(source_config)
    stored_classes = config.pop("classes")
    config.pop("input_shape")
    config.update(overrides or {})
    classes = stored_classes if classes is None else classes
    if not isinstance(classes, int) or classes < 0:
        raise ValueError(f"classes must be an int >= 0, got {classes!r}.")
    include_top = classes > 0
    if input_shape is None:
        input_shape = source_config["input_shape"]
    model = _builder(family)(
        include_top=include_top,
        input_shape=input_shape,
        classes=classes if include_top else 1000,
        classifier_activation=classifier_activation,
        pooling=None if include_top else _pooling(family, config),
        **config,
    )
    load_converted(
        model,
        converted,
        family=family,
        source_config=source_config,
        model_config=config,
        source=source,
        table_resampling=table_resampling,
        position_resampling=position_resampling,
        # classes=0 asks for no head: dropping the stored one is no news.
        warn=include_top,
    )
    return model


def load_converted(
    model: keras.Model,
    converted: Converted,
    *,
    family: str,
    source_config: dict,
    model_config: dict,
    source: str,
    table_resampling: str = "bicubic",
    position_resampling: str = "bicubic",
    warn: bool = True,
) -> None:
    """Fits a converted checkpoint to a built model and assigns it.

    Handles the head (kept, mapped 22K -> 1K, replaced by zeros, or
    dropped for a headless model), drops a `pre_logits` layer the model
    does not have (as the official ViT fine-tuning code), resamples
    position embeddings and tables (`resample_mismatched`), then assigns
    strictly. Notes land in `model.checkpoint_notes`.

    Args:
        model: the built target model.
        converted: the checkpoint under this package's weight paths.
        family: "swin" or "vit".
        source_config: the checkpoint's builder arguments with `classes`
            and `input_shape`.
        model_config: the target model's builder arguments.
        source: name for messages.
        table_resampling, position_resampling: see `resample_mismatched`.
        warn: warn (`HeadWarning`) when a head is replaced by a new one;
            never for a headless model, where dropping the head is the
            request.

    Example:
        >>> load_converted(model, converted, family="vit",
        ...                source_config=config, model_config=config,
        ...                source="ViT-B_16.npz")
    """
    layers = {layer.name for layer in model.layers}
    stored = source_config["classes"]
    classes = model.get_layer("head").units if "head" in layers else 0
    if classes != stored:
        _new_head(converted, model, classes, stored, family, source, warn)
    if "pre_logits" not in layers and any(
        p.startswith("pre_logits/") for p in converted.weights
    ):
        dropped = converted.drop("pre_logits/")
        converted.notes.append(
            f"{source}: the representation layer ({', '.join(dropped)}) "
            "is dropped, as the official ViT fine-tuning code does for a "
            "model without representation_size."
        )
    resample_mismatched(
        converted,
        model,
        source_config=source_config,
        model_config=model_config,
        table_resampling=table_resampling,
        position_resampling=position_resampling,
    )
    assign_strict(model, converted, source)
    model.checkpoint_notes = list(converted.notes)


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
    `model.checkpoint_notes`.

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
        format: force one of `FORMATS` instead of detecting it.
        **overrides: further builder arguments; they win over the
            inferred ones (e.g. `window_size=12`, `drop_path_rate=0.2`,
            `num_heads=12` for a timm ViT without config.json).

    Returns:
        A built `keras.Model` with the checkpoint's weights; the notes on
        what was resampled or mapped are in `model.checkpoint_notes`.

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
    file, tensors, meta, fmt = _read(path, format)
    source_config = fmt.infer(tensors, meta, overrides)
    return build_and_load(
        fmt.convert(tensors, meta),
        family=fmt.family,
        source_config=source_config,
        source=file,
        input_shape=input_shape,
        classes=classes,
        classifier_activation=classifier_activation,
        table_resampling=fmt.table_resampling,
        position_resampling=fmt.position_resampling,
        overrides=overrides,
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
    # Keras is needed here only; importing the layers registers the
    # classes a keras_swin .keras file names.
    import keras

    import keras_swin.layers  # noqa: F401

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
    model.checkpoint_notes = []
    return model


def load_weights_into(
    model: keras.Model, path, *, format: str | None = None
) -> None:
    """Loads an original checkpoint into an already built model, strictly.

    Used by the builders' `weights=` argument for checkpoint files; the
    model must have the checkpoint's architecture and sizes (use
    `load_checkpoint` to resample for another size).

    Args:
        model: a model from `SwinTransformer` / `VisionTransformer` with
            the checkpoint's architecture.
        path: checkpoint file or folder.
        format: force a format instead of detecting it.

    Raises:
        ConversionError: unused entries, unset weights or shape
            mismatches, all listed.

    Example:
        >>> model = SwinTiny(weights=None)
        >>> load_weights_into(model, "swin_tiny_patch4_window7_224.pth")
    """
    file, tensors, meta, fmt = _read(path, format)
    assign_strict(model, fmt.convert(tensors, meta), file)
