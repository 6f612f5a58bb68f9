"""Checkpoint in, Keras model out: format detection and strict loading."""

from __future__ import annotations

import os
import warnings

import keras
import numpy as np

from weights_tools import official_swin, official_vit
from weights_tools.common import ConversionError, Converted, assign_strict
from weights_tools.readers import read_checkpoint

#: format name -> module with matches(), infer_config() and convert().
FORMATS = {
    official_swin.FORMAT: official_swin,
    official_vit.FORMAT: official_vit,
}

_FAMILY = {official_swin.FORMAT: "swin", official_vit.FORMAT: "vit"}


def detect_format(tensors: dict[str, np.ndarray], source: str = "") -> str:
    """Names the layout of a checkpoint's tensors.

    Args:
        tensors: checkpoint key -> array.
        source: file name for the error message.

    Returns:
        One of `FORMATS`.

    Raises:
        ConversionError: no known layout matches.

    Example:
        >>> detect_format(read_checkpoint("swin_tiny.pth"))
        'official_swin'
    """
    for name, module in FORMATS.items():
        if module.matches(tensors):
            return name
    sample = ", ".join(sorted(tensors)[:6])
    raise ConversionError(
        f"{source or 'The checkpoint'} is in no known layout (known: "
        f"{', '.join(FORMATS)}). Its first keys: {sample}."
    )


def _read(path, format: str | None):
    path = os.fspath(path)
    tensors = read_checkpoint(path)
    name = format or detect_format(tensors, path)
    if name not in FORMATS:
        raise ValueError(
            f"format must be one of {sorted(FORMATS)}, got {format!r}."
        )
    return path, tensors, FORMATS[name], name


def _builder(family: str):
    from keras_swin.models import SwinTransformer, VisionTransformer

    return SwinTransformer if family == "swin" else VisionTransformer


def checkpoint_config(path, *, format: str | None = None) -> dict:
    """The architecture a checkpoint was made for, read from its tensors.

    Args:
        path: checkpoint file.
        format: force a format instead of detecting it.

    Returns:
        dict with `family` ("swin" or "vit"), `format` and the builder's
        keyword arguments (`classes`, `input_shape`, ...).

    Example:
        >>> checkpoint_config("swin_tiny_patch4_window7_224.pth")["depths"]
        (2, 2, 6, 2)
    """
    _, tensors, module, name = _read(path, format)
    config = module.infer_config(tensors)
    return dict(family=_FAMILY[name], format=name, **config)


def _replace_head(
    converted: Converted, classes: int, stored: int, source: str
) -> None:
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
    warnings.warn(message, stacklevel=3)


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

    Reads official Swin `.pth` and official ViT `.npz` files (no torch
    needed; pickles are read without executing code), infers the
    architecture from the tensors (`checkpoint_config`), builds it with
    this package's builder and sets every weight. Any checkpoint entry
    left unused, model weight left unset, or shape mismatch raises a
    `ConversionError` that lists them all.

    Args:
        path: checkpoint file.
        input_shape: (H, W, C) to build for; default the checkpoint's
            image size (Swin: also `(None, None, 3)` for any size).
        classes: classes of the head; default the checkpoint's. 0 gives a
            headless model that outputs the pooled features. A different
            number replaces the stored head (warning) by a zero one.
        classifier_activation: head activation; None gives logits.
        format: force "official_swin" or "official_vit".
        **overrides: further builder arguments; they win over the
            inferred ones (e.g. `drop_path_rate=0.2`).

    Returns:
        A built `keras.Model` with the checkpoint's weights. A checkpoint
        without a head gives a model that outputs pooled features.

    Raises:
        ConversionError: the checkpoint does not fit (keys and shapes
            listed).
        CheckpointError: the file is unreadable, corrupt or unsafe.

    Example:
        >>> model = load_checkpoint("swin_tiny_patch4_window7_224.pth")
        >>> logits = model.predict(images)  # (B, 1000)
    """
    reserved = sorted({"include_top", "pooling", "weights"} & set(overrides))
    if reserved:
        raise ValueError(
            f"load_checkpoint sets {reserved} itself; use classes=0 for a "
            "headless model that outputs the pooled features."
        )
    path, tensors, module, name = _read(path, format)
    family = _FAMILY[name]
    config = module.infer_config(tensors)
    stored_classes = config.pop("classes")
    inferred_shape = config.pop("input_shape")
    config.update(overrides)
    classes = stored_classes if classes is None else classes
    include_top = classes > 0
    pooling = None
    if not include_top:
        pooling = (
            "avg"
            if family == "swin" or (config.get("classifier") == "gap")
            else "token"
        )
    model = _builder(family)(
        include_top=include_top,
        input_shape=inferred_shape if input_shape is None else input_shape,
        classes=classes if include_top else 1000,
        classifier_activation=classifier_activation,
        pooling=pooling,
        **config,
    )
    converted = module.convert(tensors)
    if classes != stored_classes:
        if stored_classes:
            _replace_head(converted, classes, stored_classes, path)
        else:
            warnings.warn(
                f"{path} has no classifier head; the new {classes}-class "
                "head starts at zero.",
                stacklevel=2,
            )
        if include_top:
            head = model.get_layer("head")
            for variable in head.weights:
                converted.add(
                    variable.path,
                    np.zeros(variable.shape, "float32"),
                    "(new zero head)",
                )
    assign_strict(model, converted, path)
    return model


def load_weights_into(
    model: keras.Model, path, *, format: str | None = None
) -> None:
    """Loads an original checkpoint into an already built model, strictly.

    Used by the builders' `weights=` argument for `.pth` / `.npz` files.

    Args:
        model: a model from `SwinTransformer` / `VisionTransformer` with
            the checkpoint's architecture.
        path: checkpoint file.
        format: force a format instead of detecting it.

    Raises:
        ConversionError: unused entries, unset weights or shape
            mismatches, all listed.

    Example:
        >>> model = SwinTiny(weights=None)
        >>> load_weights_into(model, "swin_tiny_patch4_window7_224.pth")
    """
    path, tensors, module, _ = _read(path, format)
    assign_strict(model, module.convert(tensors), path)
