"""Weights into a built model: the Keras side of the weights floor.

`weights_tools` turns any checkpoint into a neutral
`weights_tools.convert.Checkpoint`; `keras_swin.weights.pretrained` finds,
downloads and caches the registered releases. This module puts either
into a model a builder made:

- `resolve_weights_argument` reads a builder's `weights=` before the
  model is built (a release name, an original checkpoint, a
  `.weights.h5` or a `.keras` file), so that a release is converted once
  and the model is built once, already carrying its preprocessing;
- `load_weights` fits and assigns them, strictly;
- `load_into` fits a `Checkpoint` to a model (head, resampling) and
  records where the weights came from and what loading changed in the
  model's `PreprocessingInfo` layer, which a `.keras` save keeps:
  `checkpoint_notes(model)` and `weights_source(model)` read them back.

Example:
    >>> model = keras_swin.SwinTiny(weights="imagenet",
    ...                             input_shape=(384, 384, 3), window_size=12)
    >>> weights_source(model)
    'swin_tiny_patch4_window7_224.ms_in1k'
    >>> checkpoint_notes(model)[0]
    '...relative_position_bias_table: resampled [169, 3] -> [529, 3] ...'
"""

from __future__ import annotations

import os
import sys
import warnings
from dataclasses import dataclass

import keras
import numpy as np

from keras_swin.imagenet import id2label_names
from keras_swin.layers import PreprocessingInfo
from keras_swin.weights import pretrained
from keras_swin.weights.families import Family
from weights_tools.common import check_fit
from weights_tools.convert import (
    KEEP_INITIALISATION,
    Checkpoint,
    HeadWarning,
    Target,
    convert_checkpoint,
    fit_checkpoint,
)
from weights_tools.official_swinv2 import fine_tune_pretrained

#: Frames of these packages are skipped so that a warning names the
#: user's line that built or loaded the model.
_OWN_PACKAGES = ("keras_swin", "weights_tools")


def _warn_user(message: str) -> None:
    """A `HeadWarning` attributed to the first frame outside the package."""
    frame, level = sys._getframe(1), 2
    while frame is not None and (
        frame.f_globals.get("__name__", "").split(".")[0] in _OWN_PACKAGES
    ):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, HeadWarning, stacklevel=level)


def target_of(model: keras.Model, config: dict) -> Target:
    """The `weights_tools.convert.Target` of a built model.

    Args:
        model: the built model.
        config: its builder arguments (`patch_size`, ViT token layout).

    Returns:
        Its weight shapes by path, its input (height, width), name, and
        the values of a segmenter's classifiers (`KEEP_INITIALISATION`),
        which a new class count keeps.

    Example:
        >>> target_of(model, config).shapes["head/kernel"]
        (768, 1000)
    """
    return Target(
        shapes={v.path: tuple(v.shape) for v in model.weights},
        config=config,
        image_size=tuple(model.inputs[0].shape[1:3]),
        name=model.name,
        initial={
            v.path: keras.ops.convert_to_numpy(v.value)
            for v in model.weights
            if v.path.startswith(KEEP_INITIALISATION)
        },
    )


def _info(model: keras.Model) -> PreprocessingInfo | None:
    for layer in model.layers:
        if isinstance(layer, PreprocessingInfo):
            return layer
    return None


def checkpoint_notes(model: keras.Model) -> list[str]:
    """What loading a model's weights changed, one sentence per change.

    Resampled relative position tables and position embeddings, a head
    mapped (Swin 22K -> 1K), replaced or dropped, a dropped ViT
    `pre_logits`. Kept in the model's `PreprocessingInfo` layer, so a
    `.keras` file saved from the model still has them.

    Args:
        model: a model from `load_checkpoint`, a builder with `weights=`,
            or `keras.saving.load_model` of one.

    Returns:
        The notes; an empty list for a model loaded without changes or
        without recorded weights.

    Example:
        >>> model = load_checkpoint("swin_tiny_patch4_window7_224.pth",
        ...                         classes=10)
        >>> checkpoint_notes(model)
        ['...: the checkpoint's 1000-class head (head.weight, head.bias) is
        not loaded; a new 10-class head starts at zero, ...']
    """
    info = _info(model)
    return [] if info is None else list(info.notes)


def weights_source(model: keras.Model) -> str | None:
    """Where a model's weights came from: a release name or a file.

    Args:
        model: as for `checkpoint_notes`.

    Returns:
        The registered release name (`"swin_tiny_patch4_window7_224.
        ms_in1k"`) or the checkpoint path, or None when nothing is
        recorded (random weights, a `.weights.h5` of the user's own).

    Example:
        >>> weights_source(keras_swin.SwinTiny(weights="imagenet"))
        'swin_tiny_patch4_window7_224.ms_in1k'
    """
    info = _info(model)
    return None if info is None else info.source


def assign(model: keras.Model, arrays: dict) -> None:
    """Sets every weight of `model` from `arrays` (weight path -> array).

    The arrays must have been checked against the model
    (`weights_tools.convert.fit_checkpoint` or `check_fit`): every path
    present with its shape.

    Example:
        >>> assign(model, fit_checkpoint(checkpoint, target_of(model, c)))
    """
    for variable in model.weights:
        variable.assign(arrays[variable.path].astype(variable.dtype))


def load_into(
    model: keras.Model,
    checkpoint: Checkpoint,
    config: dict,
    *,
    fit: bool = True,
    warn: bool = True,
) -> list[str]:
    """Loads a converted checkpoint into a built model and records it.

    Args:
        model: the built model.
        checkpoint: the converted checkpoint (changed in place).
        config: the model's builder arguments.
        fit: fit the checkpoint to the model (head mapped or replaced,
            tables and embeddings resampled; `fit_checkpoint`); False
            requires the checkpoint's exact architecture and sizes.
        warn: warn (`HeadWarning`) when a head is replaced.

    Returns:
        The notes (also recorded in the model, see `checkpoint_notes`).

    Raises:
        ConversionError: the checkpoint does not fit; every unused entry,
            unset weight and shape mismatch is listed, nothing assigned.

    Example:
        >>> notes = load_into(model, convert_checkpoint("t.pth"), config)
    """
    target = target_of(model, config)
    if fit:
        arrays = fit_checkpoint(
            checkpoint, target, on_new_head=_warn_user if warn else None
        )
    else:
        check_fit(
            checkpoint.weights, target.shapes, checkpoint.source, model.name
        )
        arrays = checkpoint.weights.weights
    assign(model, arrays)
    info = _info(model)
    if info is not None:
        info.record(checkpoint.source, checkpoint.notes)
    return list(checkpoint.notes)


#: The builder arguments of a position embedding resized at every call.
_PER_CALL_POSITION = ("position_embedding_grid", "position_embedding_resize")


def per_call_position_arguments(checkpoint: Checkpoint, config: dict) -> dict:
    """Builder arguments for a ViT checkpoint loaded at any input size.

    A model built with `input_shape=(None, None, C)` keeps the position
    embedding at the checkpoint's own patch grid and resizes it at every
    call, the way the checkpoint's source library fine-tunes at another
    size (`Converter.position_resampling`: official `.npz` "zoom",
    Hugging Face "bicubic", timm "bicubic_antialias"). A static input
    size gets nothing here: the embedding is resampled once, when
    loading (`weights_tools.convert.resample_mismatched`).

    Args:
        checkpoint: the converted checkpoint.
        config: the builder arguments so far (`input_shape`,
            `patch_size`); arguments already set (not None) are kept.

    Returns:
        `position_embedding_grid` and `position_embedding_resize` for a
        checkpoint with a ViT position embedding (`pos_embed/embedding`)
        built for None sides, else an empty dict.

    Example:
        >>> arguments = per_call_position_arguments(
        ...     convert_checkpoint("ViT-B_16.npz"),
        ...     dict(input_shape=(None, None, 3), patch_size=16))
        >>> arguments["position_embedding_grid"]
        (14, 14)
        >>> arguments["position_embedding_resize"]
        'zoom'
    """
    shape = config.get("input_shape")
    stored = checkpoint.config.get("input_shape")
    patch = config.get("patch_size") or checkpoint.config.get("patch_size")
    if (
        "pos_embed/embedding" not in checkpoint.weights.weights
        or shape is None
        or None not in tuple(shape)[:2]
        or stored is None
        or None in tuple(stored)[:2]
        or not patch
    ):
        return {}
    values = (
        (stored[0] // patch, stored[1] // patch),
        checkpoint.converter.position_resampling,
    )
    return {
        key: value
        for key, value in zip(_PER_CALL_POSITION, values, strict=True)
        if config.get(key) is None
    }


def fine_tune_window_arguments(checkpoint: Checkpoint, config: dict) -> dict:
    """`pretrained_window_sizes` for Swin V2 weights at another window.

    No Swin V2 weight depends on the window, so a model of any window
    takes them unchanged; what must follow them is the scale of the
    position MLP's coordinates. A model built with another window than
    the weights' and without `pretrained_window_sizes` (0, the default)
    gets the windows the weights were trained at, the paper's
    fine-tuning rule (`weights_tools.official_swinv2.fine_tune_pretrained`).

    Args:
        checkpoint: the converted checkpoint or release.
        config: the builder arguments so far.

    Returns:
        `{"pretrained_window_sizes": ...}`, or an empty dict (not Swin V2
        weights, the weights' own window, or values the caller set).

    Example:
        >>> fine_tune_window_arguments(
        ...     convert_checkpoint("swinv2_tiny_patch4_window8_256.pth"),
        ...     dict(window_size=16, pretrained_window_sizes=0))
        {'pretrained_window_sizes': (8, 8, 8, 8)}
    """
    stored = checkpoint.config
    window = config.get("window_size")
    given = config.get("pretrained_window_sizes")
    if (
        stored.get("pretrained_window_sizes") is None
        or window is None
        or window == stored.get("window_size")
        or any(int(p) for p in np.ravel(given if given is not None else 0))
    ):
        return {}
    return {"pretrained_window_sizes": fine_tune_pretrained(stored, window, {})}


def preprocessing_for(checkpoint: Checkpoint, classes: int) -> dict:
    """The `PreprocessingInfo` arguments a model of `checkpoint` records.

    The checkpoint's evaluation transform, and the class names of its
    `config.json` `id2label` (else of an mmsegmentation file's
    `meta['CLASSES']`) when they name exactly `classes` outputs.

    Args:
        checkpoint: the converted checkpoint.
        classes: the classes of the model's head (0: none).

    Example:
        >>> preprocessing_for(convert_checkpoint("hf_vit/"), 1000)[
        ...     "class_names"][:2]
        ['tench, Tinca tinca', 'goldfish, Carassius auratus']
    """
    names = None
    labels = (checkpoint.meta or {}).get("id2label")
    stated = ((checkpoint.training_meta or {}).get("meta") or {}).get("CLASSES")
    if labels and classes:
        names = id2label_names(
            labels, source=f"{checkpoint.source}: config.json id2label"
        )
    elif isinstance(stated, list) and classes:
        names = [str(name) for name in stated]
    if names is not None and len(names) != classes:
        names = None
    return dict(checkpoint.preprocessing, class_names=names)


def spec_preprocessing(spec: pretrained.WeightsSpec) -> dict:
    """The `PreprocessingInfo` arguments of a registered release.

    Example:
        >>> spec_preprocessing(get_weights_spec("vit_base_patch16_224"))[
        ...     "interpolation"]
        'bicubic'
    """
    return dict(
        mean=spec.mean,
        std=spec.std,
        crop_pct=spec.crop_pct,
        interpolation=spec.interpolation,
    )


@dataclass
class ResolvedWeights:
    """A builder's `weights=` argument, read before the model is built.

    Attributes:
        kind: `"release"`, `"checkpoint"`, `"h5"` or `"keras"`.
        path: the file or folder (`None` for a release).
        checkpoint: the converted release or checkpoint, or None.
        spec: the registry entry of a release, or None.
        preprocessing: `PreprocessingInfo` arguments the model records,
            or None (a `.weights.h5` / `.keras` of the user's own).

    Example:
        >>> resolve_weights_argument("imagenet", FAMILIES["swin"],
        ...                          config, (224, 224)).spec.name
        'swin_tiny_patch4_window7_224.ms_in1k'
    """

    kind: str
    path: str | None = None
    checkpoint: Checkpoint | None = None
    spec: pretrained.WeightsSpec | None = None
    preprocessing: dict | None = None


def _classes(config: dict) -> int:
    return config.get("classes", 1000) if config.get("include_top", True) else 0


def resolve_weights_argument(
    weights, family: Family, config: dict, image_size
) -> ResolvedWeights | None:
    """Reads `weights=` once, before the builder builds the model.

    Accepted: None (random init); a registered release name or alias
    ("imagenet", "imagenet22k", "swin_tiny_patch4_window7_224.ms_in1k",
    see `keras_swin.weights.pretrained`), checked against the architecture
    before any download, then downloaded, converted and cached on first
    use; a `.weights.h5` file written by this package; a `.keras` file
    of the same architecture; an original checkpoint file or folder
    (official Swin `.pth`, official ViT `.npz`, timm, Hugging Face),
    converted by `weights_tools`.

    Args:
        weights: None, a name or alias, or a path.
        family: the builder's `Family`.
        config: the builder's arguments.
        image_size: the model's input (height, width); a None side for a
            model of any size.

    Returns:
        A `ResolvedWeights`, or None for `weights=None`.

    Raises:
        ValueError: `weights` is neither None, a known name nor an
            existing file or folder, or a release that does not fit the
            architecture.

    Example:
        >>> resolved = resolve_weights_argument(
        ...     "imagenet", FAMILIES["swin"], config, (224, 224))
    """
    if weights is None:
        return None
    path = os.fspath(weights) if isinstance(weights, os.PathLike) else weights
    if not isinstance(path, str):
        raise ValueError(
            f"weights must be None, a name or a path; got {weights!r}."
        )
    is_name = "/" not in path and os.sep not in path
    if not os.path.exists(path) and is_name:
        height, width = image_size
        try:
            spec = pretrained.resolve_weights(
                path,
                family=family.name,
                variant=family.variant_of(config),
                image_size=height if height == width else None,
                window_size=config.get("window_size"),
            )
        except ValueError as error:
            raise ValueError(
                f"{error} (No file or folder {path!r} exists either.)"
            ) from None
        pretrained.check_weights_fit(spec, family.name, config)
        return ResolvedWeights(
            kind="release",
            checkpoint=pretrained.cached_checkpoint(spec),
            spec=spec,
            preprocessing=spec_preprocessing(spec),
        )
    if not os.path.exists(path):
        raise ValueError(
            'weights must be None, a registered name or alias ("imagenet"'
            ', "imagenet22k", "swin_tiny_patch4_window7_224.ms_in1k",'
            " ...: keras_swin.available_weights()), or the path "
            "of a local file or folder (.weights.h5, .keras, an official, "
            f"timm or Hugging Face checkpoint); got {weights!r}, which is "
            "none of these."
        )
    if path.endswith(".h5"):
        return ResolvedWeights(kind="h5", path=path)
    if path.endswith(".keras"):
        return ResolvedWeights(kind="keras", path=path)
    checkpoint = convert_checkpoint(path)
    return ResolvedWeights(
        kind="checkpoint",
        path=path,
        checkpoint=checkpoint,
        preprocessing=preprocessing_for(checkpoint, _classes(config)),
    )


def load_weights(
    model: keras.Model, resolved: ResolvedWeights | None, config: dict
) -> None:
    """Loads resolved `weights=` into the model the builder made.

    A release is fitted to the model (resampled for another size or
    window, the head kept, mapped or replaced); an original checkpoint
    must match the architecture exactly (`load_checkpoint` resamples);
    a `.weights.h5` is compared by path and shape first, a `.keras`
    file by paths, shapes and head counts.

    Args:
        model: the built model.
        resolved: from `resolve_weights_argument`, or None.
        config: the builder's arguments.

    Raises:
        ValueError, ConversionError: the weights do not fit; the message
            names the first (or every) difference.

    Example:
        >>> load_weights(model, resolve_weights_argument(
        ...     "imagenet", family, config, (224, 224)), config)
    """
    if resolved is None:
        return
    if resolved.kind == "release":
        # A headless classifier asked for the head to go; a segmenter's
        # new classifiers are news.
        names = {layer.name for layer in model.layers}
        load_into(
            model,
            resolved.checkpoint,
            config,
            warn=bool(names & {"head", "decode_head"}),
        )
    elif resolved.kind == "checkpoint":
        load_into(model, resolved.checkpoint, config, fit=False)
    elif resolved.kind == "h5":
        _check_weights_file(model, resolved.path)
        model.load_weights(resolved.path)
    else:
        source = keras.saving.load_model(resolved.path, compile=False)
        _check_heads(source, model, resolved.path)
        copy_weights(source, model, source_name=resolved.path)


def _stored_layout(handle) -> dict[str, list[tuple]] | None:
    """The weight shapes of a `.weights.h5`, per layer path.

    Keras stores each layer's variables as `vars/0`, `vars/1`, ... in a
    group whose `name` attribute is the layer's name; the names along the
    way give the layer's path as in `variable.path` (`encoder/blocks_0/
    attn/qkv`). Entries that are not numbered (`num_heads`, recorded by
    `RecordedArguments`) are not variables.

    Returns:
        {layer path: [shape of vars/0, shape of vars/1, ...]}, or None for
        a file written without layer names (Keras before 3.10).
    """
    import h5py

    layout: dict[str, list[tuple]] = {}
    unnamed = []

    def layer_path(group_path: str) -> str | None:
        names = []
        parts = group_path.split("/")[:-1]  # without the final "vars"
        for i in range(1, len(parts) + 1):
            owner = "/".join(parts[:i])
            entry = handle.get(owner + "/vars")
            if entry is not None and "name" in entry.attrs:
                names.append(str(entry.attrs["name"]))
            elif i == len(parts):
                return None
        return "/".join(names)

    def visit(name, item):
        if not isinstance(item, h5py.Group) or name.split("/")[-1] != "vars":
            return
        numbered = sorted(int(k) for k in item if k.isdigit())
        if not numbered or name == "vars":
            return
        path = layer_path(name)
        if path is None:
            unnamed.append(name)
            return
        layout[path] = [tuple(item[str(i)].shape) for i in numbered]

    handle.visititems(visit)
    return None if unnamed else layout


def _check_weights_file(model: keras.Model, path: str) -> None:
    """Refuses a `.weights.h5` file saved from another architecture.

    Keras loads such files by the layers' order and shapes and silently
    ignores stored weights the model has no place for (e.g. a deeper
    stage). This compares, per layer path, the stored weights' count and
    shapes with the model's, and names the first difference. What no shape
    shows (the number of attention heads) is recorded beside the weights
    by the attention layers and checked by them while loading. A file
    without layer names (written by Keras before 3.10) is checked by its
    number of weights only.

    Raises:
        ValueError: the first weight whose path or shape differs, with the
            saved and the expected value.
    """
    import h5py

    with h5py.File(path, "r") as handle:
        stored = _stored_layout(handle)
        if stored is None:
            count = 0

            def add(name, item):
                nonlocal count
                count += isinstance(item, h5py.Dataset) and (
                    name.split("/")[-1].isdigit()
                )

            handle.visititems(add)
    if stored is None:
        if count != len(model.weights):
            raise ValueError(
                f"{path} holds {count} weights but the model "
                f"{model.name!r} has {len(model.weights)}: the file was "
                "saved from another architecture (depths, heads, head, "
                "...). Build the model with the arguments the file was "
                "saved with."
            )
        return
    expected: dict[str, list] = {}
    for variable in model.weights:
        layer = variable.path.rpartition("/")[0]
        expected.setdefault(layer, []).append(variable)
    problems = []
    for layer, variables in expected.items():
        shapes = stored.get(layer)
        if shapes is None:
            problems.append(
                f"{variables[0].path} is in the model {model.name!r} but "
                "not in the file"
            )
            continue
        if len(shapes) != len(variables):
            problems.append(
                f"{layer} has {len(shapes)} weights in the file, "
                f"{len(variables)} in the model "
                f"({', '.join(v.path for v in variables)})"
            )
            continue
        for variable, shape in zip(variables, shapes, strict=True):
            if tuple(variable.shape) != shape:
                problems.append(
                    f"{variable.path} has shape {shape} in the file, "
                    f"{tuple(variable.shape)} in the model"
                )
    problems += [
        f"{layer} ({len(shapes)} weights) is in the file but not in the "
        f"model {model.name!r}"
        for layer, shapes in stored.items()
        if layer not in expected
    ]
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise ValueError(
            f"{path} was saved from another architecture: {problems[0]}"
            f"{more}. Build the model with the arguments the file was "
            "saved with (depths, heads, widths, patch, window, classes, "
            "input size)."
        )


def _check_heads(source: keras.Model, target: keras.Model, name: str):
    """Refuses a source whose layers split their weights into other heads.

    Weight shapes do not show `num_heads` (ViT's `qkv` kernel is (D, 3D)
    for any head count), so the same-named top-level layers' configs are
    compared.
    """
    targets = {layer.name: layer for layer in target.layers}
    for layer in source.layers:
        other = targets.get(layer.name)
        if other is None:
            continue
        saved = layer.get_config().get("num_heads")
        wanted = other.get_config().get("num_heads")
        if saved is not None and wanted is not None:
            if _as_tuple(saved) != _as_tuple(wanted):
                raise ValueError(
                    f"{name}: layer {layer.name!r} has num_heads={saved} "
                    f"there, {wanted} in the model {target.name!r}; the "
                    "weights' shapes agree but their meaning does not. "
                    "Build the model with the arguments it was saved with."
                )


def _as_tuple(value):
    return tuple(value) if isinstance(value, (list, tuple)) else (value,)


def copy_weights(
    source: keras.Model, target: keras.Model, source_name: str = "source model"
) -> None:
    """Copies weights between two models with the same weight paths.

    Args:
        source: model to read.
        target: model to write.
        source_name: how to name `source` in errors.

    Raises:
        ValueError: the weight paths or shapes differ (all listed).
    """
    src = {v.path: v for v in source.weights}
    dst = {v.path: v for v in target.weights}
    problems = [f"missing in {source_name}: {p}" for p in dst if p not in src]
    problems += [f"not in the model: {p}" for p in src if p not in dst]
    problems += [
        f"shape of {p}: {tuple(src[p].shape)} in {source_name}, "
        f"{tuple(v.shape)} in the model"
        for p, v in dst.items()
        if p in src and tuple(src[p].shape) != tuple(v.shape)
    ]
    if problems:
        raise ValueError(
            f"Cannot copy weights from {source_name}:\n  "
            + "\n  ".join(problems)
        )
    for path, variable in dst.items():
        variable.assign(src[path])
