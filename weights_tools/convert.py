"""A checkpoint in, a neutral converted checkpoint out; no Keras needed.

`convert_checkpoint(path)` reads an official Swin `.pth`, an official ViT
`.npz`, a timm state dict or a Hugging Face folder, detects its format
(`weights_tools.formats`), infers the architecture and renames every
tensor to this package's weight paths: a `Checkpoint` (family, format,
builder arguments, arrays, notes, preprocessing). `fit_checkpoint` fits
one to the weight shapes of a target model (head kept, mapped or
replaced; position tables and embeddings resampled for another size or
window) and checks that every weight is set. Building the model and
assigning the arrays is `keras_swin`'s part (`keras_swin.load_checkpoint`,
the builders' `weights=`); this package never imports `keras_swin`.
"""

from __future__ import annotations

import json
import math
import os
import warnings
import zipfile
from dataclasses import dataclass, field

import numpy as np

from weights_tools import MOVED, hf_format, resample, timm_format
from weights_tools.common import (
    ConversionError,
    Converted,
    Converter,
    check_config,
    check_fit,
)
from weights_tools.formats import FORMATS, detect_format, get_converter
from weights_tools.heads import IMAGENET_22K_CLASSES
from weights_tools.readers import (
    CheckpointError,
    read_checkpoint,
    read_checkpoint_extras,
    read_safetensors,
    read_safetensors_metadata,
    read_sharded,
)

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
    # Only Hugging Face (model_type) and timm (architecture, timm_arch)
    # configs count.
    if isinstance(meta, dict) and "model_type" in meta:
        check_config(meta, hf_format.CONFIG_CHECKS, path)
        return meta
    if isinstance(meta, dict) and "architecture" in meta:
        timm_format.check_timm_config(meta, path)
        return meta
    # A record of a `timm.create_model(timm_arch, **create_model_kwargs)`
    # call (`timm_swinv2` reads it; other formats ignore it).
    if isinstance(meta, dict) and isinstance(meta.get("timm_arch"), str):
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
    if format is not None:
        get_converter(format)  # an unknown name fails before detection
    name = format or detect_format(tensors, file, meta)
    if format is not None and not get_converter(name).matches(tensors, meta):
        try:
            looks = f"it looks like {detect_format(tensors, file, meta)}"
        except ConversionError:
            looks = "its layout is unknown"
        raise ConversionError(
            f"{file} is not in the {format} layout ({looks}; first keys: "
            f"{', '.join(sorted(tensors)[:4])})."
        )
    return file, tensors, meta, FORMATS[name]


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
    checkpoint = convert_checkpoint(path, format=format, **overrides)
    return dict(
        family=checkpoint.family,
        format=checkpoint.format,
        **{**checkpoint.config, **overrides},
    )


def preprocessing_of(converter: Converter, meta: dict | None) -> dict:
    """The evaluation preprocessing of a checkpoint outside the registry.

    The format's default (`Converter.preprocessing`), with what a timm
    `config.json` states in its `pretrained_cfg` (mean, std, crop_pct,
    interpolation) taking precedence.

    Args:
        converter: the checkpoint's format.
        meta: its `config.json`, or None.

    Returns:
        dict with `mean`, `std` (tuples), `crop_pct` and `interpolation`.

    Example:
        >>> preprocessing_of(FORMATS["official_vit"], None)["mean"]
        (0.5, 0.5, 0.5)
    """
    settings = dict(converter.preprocessing)
    stated = (meta or {}).get("pretrained_cfg") or {}
    for key in ("mean", "std", "crop_pct", "interpolation"):
        if stated.get(key) is not None:
            settings[key] = stated[key]
    for key in ("mean", "std"):
        settings[key] = tuple(settings[key])
    return settings


@dataclass
class Checkpoint:
    """A checkpoint converted to this package's names, free of Keras.

    What `keras_swin` needs to build the checkpoint's model and load it:
    the family, the builder arguments, the arrays under the model's
    weight paths, and what the user should know.

    Attributes:
        source: the file read (or a release name for a cached one).
        format: the format name (`weights_tools.formats.FORMAT_NAMES`).
        family: `"swin"` or `"vit"`.
        config: the builder arguments of the checkpoint's own model,
            with `classes` (0 without a head) and `input_shape`.
        weights: the arrays, with their source keys, stored shapes and
            unmatched keys (`Converted`).
        preprocessing: `mean`, `std`, `crop_pct`, `interpolation` of the
            evaluation transform (`preprocessing_of`).
        meta: the Hugging Face or timm `config.json`, or None.
        training_meta: what a `torch.save` file holds beside its state
            dict (`readers.read_checkpoint_extras`), JSON-ready, or None:
            an mmdetection / mmsegmentation checkpoint's `{"meta":
            {"CLASSES": [...], "PALETTE": [...], "config": "...",
            "epoch": ..., ...}}`, an optimizer with its tensors
            summarised as strings. Kept by `metadata()` and
            `save_checkpoint`.

    Example:
        >>> checkpoint = convert_checkpoint("swin_tiny_patch4_window7_224.pth")
        >>> checkpoint.family, checkpoint.config["depths"]
        ('swin', (2, 2, 6, 2))
        >>> checkpoint.weights.weights["head/kernel"].shape
        (768, 1000)
    """

    source: str
    format: str
    family: str
    config: dict
    weights: Converted
    preprocessing: dict = field(default_factory=dict)
    meta: dict | None = None
    training_meta: dict | None = None

    @property
    def converter(self) -> Converter:
        """The `Converter` of `format` (resampling methods, defaults)."""
        return get_converter(self.format)

    @property
    def notes(self) -> list[str]:
        """What conversion and fitting changed, one sentence each."""
        return self.weights.notes

    def metadata(self) -> dict:
        """Everything but the arrays, as JSON-compatible values.

        `from_metadata(metadata(), arrays)` gives the checkpoint back;
        `keras_swin.weights.pretrained` caches converted releases this way.

        Example:
            >>> json.dumps(checkpoint.metadata())[:10]
            '{"source":'
        """
        converted = self.weights
        return json.loads(
            json.dumps(
                dict(
                    source=self.source,
                    format=self.format,
                    family=self.family,
                    config=self.config,
                    preprocessing=self.preprocessing,
                    meta=self.meta,
                    training_meta=self.training_meta,
                    sources=converted.sources,
                    source_shapes=converted.source_shapes,
                    unmatched=converted.unmatched,
                    ignored=converted.ignored,
                    notes=converted.notes,
                ),
                default=list,
            )
        )

    @classmethod
    def from_metadata(cls, metadata: dict, arrays: dict) -> Checkpoint:
        """The checkpoint of `metadata()` and its arrays.

        Args:
            metadata: a dict written by `metadata()`.
            arrays: weight path -> array, the keys of `weights.weights`.

        Raises:
            ConversionError: the arrays and the metadata name different
                weights (a corrupt or mixed-up cache).

        Example:
            >>> again = Checkpoint.from_metadata(
            ...     checkpoint.metadata(), checkpoint.weights.weights)
        """
        sources = metadata["sources"]
        if set(sources) != set(arrays):
            differ = sorted(set(sources) ^ set(arrays))[:4]
            raise ConversionError(
                f"{metadata.get('source')}: the stored arrays and their "
                f"description name different weights (e.g. {differ})."
            )
        converted = Converted(
            weights=dict(arrays),
            sources=dict(sources),
            source_shapes={
                k: tuple(v) for k, v in metadata["source_shapes"].items()
            },
            unmatched={k: tuple(v) for k, v in metadata["unmatched"].items()},
            notes=list(metadata["notes"]),
            ignored={
                k: tuple(v) for k, v in metadata.get("ignored", {}).items()
            },
        )
        config = {
            k: tuple(v) if isinstance(v, list) else v
            for k, v in metadata["config"].items()
        }
        preprocessing = dict(metadata["preprocessing"])
        for key in ("mean", "std"):
            if key in preprocessing:
                preprocessing[key] = tuple(preprocessing[key])
        return cls(
            source=metadata["source"],
            format=metadata["format"],
            family=metadata["family"],
            config=config,
            weights=converted,
            preprocessing=preprocessing,
            meta=metadata.get("meta"),
            training_meta=metadata.get("training_meta"),
        )


def convert_checkpoint(
    path, *, format: str | None = None, **overrides
) -> Checkpoint:
    """Reads a checkpoint once and converts it to this package's names.

    No Keras and no torch are needed; pickles are read without executing
    code (`weights_tools.readers`).

    Args:
        path: a checkpoint file (`.pth`, `.bin`, `.safetensors`, `.npz`;
            the content decides) or a Hugging Face / timm folder.
        format: force one of `weights_tools.formats.FORMAT_NAMES`
            instead of detecting it.
        **overrides: values the tensors cannot tell (`num_heads` for a
            timm ViT without config.json); the inference reads them.
            `config` stays the checkpoint's own architecture (what
            resampling starts from); `checkpoint_config` and
            `keras_swin.load_checkpoint` apply the overrides on top.

    Returns:
        A `Checkpoint`. A file written by `save_checkpoint` gives its
        checkpoint back as saved (source, format, notes included).

    Raises:
        FileNotFoundError: nothing at `path`, or a folder without weights.
        CheckpointError: unreadable, corrupt or unsafe file.
        ConversionError: an unknown layout, a `format` that does not
            match, a `.keras` file, or a value that must be passed.

    Example:
        >>> checkpoint = convert_checkpoint("ViT-B_16.npz")
        >>> checkpoint.config["hidden_size"], checkpoint.preprocessing["mean"]
        (768, (0.5, 0.5, 0.5))
    """
    saved = _saved_checkpoint(path)
    if saved is not None:
        if format is not None and format != saved.format:
            raise ConversionError(
                f"{path} is a checkpoint already converted from "
                f"{saved.format} (save_checkpoint); format={format!r} does "
                "not apply to it."
            )
        return saved
    file, tensors, meta, converter = _read(path, format)
    config = converter.infer(tensors, meta, overrides)
    converted = converter.convert(tensors, meta)
    extras = (
        None if file.endswith(".index.json") else (read_checkpoint_extras(file))
    )
    if converter.refine is not None:
        config = converter.refine(config, converted, extras or {}, overrides)
    return Checkpoint(
        source=file,
        format=converter.name,
        family=converter.family,
        config=config,
        weights=converted,
        preprocessing=preprocessing_of(converter, meta),
        meta=meta,
        training_meta=extras or None,
    )


@dataclass(frozen=True)
class Target:
    """The model a checkpoint is fitted to, described without Keras.

    Attributes:
        shapes: every weight path of the model -> its shape.
        config: the model's builder arguments (`patch_size`, ViT
            `class_token`, ...).
        image_size: the model's input (height, width); None sides for a
            Swin built for any size.
        name: the model's name, for messages.
        initial: the model's own values of the classifier weights under
            `KEEP_INITIALISATION` (a segmenter's `conv_seg`), which a
            new classifier keeps instead of starting at zero.

    Example:
        >>> Target({"head/kernel": (768, 10), "head/bias": (10,)},
        ...        config, (224, 224), "swin_tiny")
    """

    shapes: dict
    config: dict
    image_size: tuple
    name: str = "the model"
    initial: dict = field(default_factory=dict)

    @property
    def classes(self) -> int:
        """Units of the model's classifier (`head`, or a segmenter's
        `decode_head/conv_seg`); 0 without one."""
        for layer in ("head/", "decode_head/conv_seg/"):
            shape = self.shapes.get(layer + "kernel")
            if shape is not None:
                return int(shape[-1])
        return 0


class HeadWarning(UserWarning):
    """A checkpoint's classifier head is replaced by a new (zero) one.

    Issued once per load, and only when the model has a head: a headless
    load (`classes=0`, `include_top=False`) asked for the head to go. The
    same text is among the model's checkpoint notes
    (`keras_swin.checkpoint_notes`), so a caller that prints the notes can
    silence this warning to say it once:

        >>> with warnings.catch_warnings():
        ...     warnings.simplefilter("ignore", HeadWarning)
        ...     model = load_checkpoint("ViT-B_16.npz", classes=10)
    """


#: Swin heads with this many classes (Microsoft's ImageNet-22K label
#: space) map to ImageNet-1K by row selection, as the official code.
SWIN_22K_CLASSES = IMAGENET_22K_CLASSES

#: The classifier layers another class count replaces, by weight-path
#: prefix: a classifier's `head`, a segmenter's two `conv_seg`.
HEAD_LAYERS = ("head/", "decode_head/conv_seg/", "auxiliary_head/conv_seg/")
#: New classifiers that keep the model's own initialisation (mmseg's
#: `conv_seg`: normal, std 0.01) instead of starting at zero.
KEEP_INITIALISATION = ("decode_head/conv_seg/", "auxiliary_head/conv_seg/")


def _new_head(
    checkpoint: Checkpoint, target: Target, stored: int, on_new_head
) -> None:
    """Replaces or maps the stored head when the class count changes."""
    converted, source, classes = (
        checkpoint.weights,
        checkpoint.source,
        target.classes,
    )
    head_map = next(
        (
            m
            for m in checkpoint.converter.head_maps
            if (m.stored, m.classes) == (stored, classes)
        ),
        None,
    )
    if not stored:
        message = (
            f"{source} has no classifier head; the new {classes}-class "
            "head starts at zero."
        )
    elif head_map is not None:
        rows = head_map.rows()
        kernel, bias = "head/kernel", "head/bias"
        converted.weights[kernel] = converted.weights[kernel][:, rows]
        converted.weights[bias] = converted.weights[bias][rows]
        for path in (kernel, bias):
            converted.source_shapes[path] = converted.weights[path].shape
        converted.notes.append(
            f"{source}: {head_map.description.format(stored=stored)}."
        )
        return
    else:
        dropped = [p for layer in HEAD_LAYERS for p in converted.drop(layer)]
        message = (
            f"{source}: the checkpoint's {stored}-class head "
            f"({', '.join(dropped)}) is not loaded; "
        )
        if not classes:
            message += "the model outputs the pooled features."
        elif any(p.startswith(KEEP_INITIALISATION) for p in target.initial):
            message += (
                f"the new {classes}-class classifiers keep the model's "
                "initialisation."
            )
        else:
            message += (
                f"a new {classes}-class head starts at zero, as in the "
                "official fine-tuning code."
            )
    converted.notes.append(message)
    if on_new_head is not None and classes:
        on_new_head(message)
    if classes:
        for path, shape in target.shapes.items():
            if path in target.initial:
                converted.add(
                    path,
                    np.asarray(target.initial[path], "float32"),
                    "(new classifier: the model's initialisation)",
                )
            elif path.startswith(HEAD_LAYERS):
                converted.add(
                    path, np.zeros(shape, "float32"), "(new zero head)"
                )


def _prefix_rows(config: dict) -> int:
    """Rows of a ViT position embedding that are not part of the grid."""
    if not config.get("position_embedding_on_prefix", True):
        return 0
    class_token = config.get("class_token")
    if class_token is None:
        class_token = config.get("classifier", "token") == "token"
    return int(class_token) + int(config.get("num_register_tokens", 0))


def resample_mismatched(checkpoint: Checkpoint, target: Target) -> None:
    """Resizes position embeddings and bias tables to the target's shapes.

    The fine-tuning step of both papers: a checkpoint made at one input
    size or window is loaded into a model with another. Swin relative
    position bias tables are resized to the model's window, Swin absolute
    and ViT position embeddings to the model's patch grid (class and
    register rows kept), each the way the format's own library does
    (`Converter.table_resampling`, `position_resampling`). Each change
    is recorded in `checkpoint.notes`; other mismatches are left for
    `check_fit` to report.

    Args:
        checkpoint: the converted checkpoint, changed in place.
        target: the model to load into.

    Example:
        >>> resample_mismatched(checkpoint, target_384)
        >>> checkpoint.notes[-1]
        '...relative_position_bias_table: resampled [169, 3] -> [529, 3] ...'
    """
    converted, converter = checkpoint.weights, checkpoint.converter
    source_config = checkpoint.config
    patch = source_config["patch_size"]
    old_h, old_w = source_config["input_shape"][:2]
    # A backbone's checkpoint (input_shape (None, None, C)) states no grid.
    old_grid = None if old_h is None else (old_h // patch, old_w // patch)
    for path, array in list(converted.weights.items()):
        shape = target.shapes.get(path)
        if shape is None or tuple(array.shape) == tuple(shape):
            continue
        shape = tuple(shape)
        method = None
        if path.endswith("/relative_position_bias_table"):
            if array.ndim == 2 and array.shape[1] == shape[1]:
                window = (math.isqrt(shape[0]) + 1) // 2
                method = converter.table_resampling
                array = resample.resize_relative_position_table(
                    array, window, method=method
                )
        elif path == "absolute_pos_embed/embedding":
            if array.ndim == 4 and array.shape[3] == shape[3]:
                array = resample.bicubic_resize(array, shape[1:3], axes=(1, 2))
                method = "bicubic"
        elif path == "pos_embed/embedding":
            if array.ndim == 3 and array.shape[2] == shape[2]:
                prefix = _prefix_rows(target.config)
                if old_grid is None or (
                    array.shape[1] - prefix != old_grid[0] * old_grid[1]
                ):
                    old = None  # not the stated grid: assume a square one
                else:
                    old = old_grid
                model_patch = target.config["patch_size"]
                height, width = target.image_size[:2]
                method = converter.position_resampling
                array = resample.resize_position_embedding(
                    array,
                    (height // model_patch, width // model_patch),
                    num_prefix_tokens=prefix,
                    old_grid=old,
                    method=method,
                )
        if method is not None:
            converted.notes.append(
                f"{converted.sources[path]}: resampled "
                f"{list(converted.weights[path].shape)} -> "
                f"{list(array.shape)} ({method})"
            )
            converted.weights[path] = array.astype("float32")


def _warn_new_head(message: str) -> None:
    warnings.warn(message, HeadWarning, stacklevel=4)


def fit_checkpoint(
    checkpoint: Checkpoint,
    target: Target,
    *,
    on_new_head=_warn_new_head,
) -> dict[str, np.ndarray]:
    """Fits a converted checkpoint to a model's weights, strictly.

    Handles the head (kept, mapped 22K -> 1K for Swin, replaced by zeros,
    or dropped for a headless model), drops a `pre_logits` layer the
    model does not have (as the official ViT fine-tuning code), resamples
    position embeddings and tables (`resample_mismatched`), then checks
    that every weight of the target is set with its shape and every
    array is used. Notes land in `checkpoint.notes`.

    Args:
        checkpoint: the converted checkpoint, changed in place.
        target: the model's weight shapes and sizes.
        on_new_head: called with the note when the model's head is a new
            one (replaced, not kept or mapped); by default a
            `HeadWarning`. Never called for a headless model, where
            dropping the head is the request; None: no call.

    Returns:
        weight path -> array, one per target weight.

    Raises:
        ConversionError: unused entries, unset weights and shape
            mismatches, all listed at once.

    Example:
        >>> arrays = fit_checkpoint(convert_checkpoint("t.pth"), target)
        >>> sorted(arrays) == sorted(target.shapes)
        True
    """
    converted = checkpoint.weights
    stored = checkpoint.config["classes"]
    if target.classes != stored:
        _new_head(checkpoint, target, stored, on_new_head)
    if not any(p.startswith("pre_logits/") for p in target.shapes) and any(
        p.startswith("pre_logits/") for p in converted.weights
    ):
        dropped = converted.drop("pre_logits/")
        converted.notes.append(
            f"{checkpoint.source}: the representation layer "
            f"({', '.join(dropped)}) is dropped, as the official ViT "
            "fine-tuning code does for a model without representation_size."
        )
    resample_mismatched(checkpoint, target)
    check_fit(converted, target.shapes, checkpoint.source, target.name)
    return converted.weights


#: The `.safetensors` metadata key of a checkpoint `save_checkpoint` wrote.
SAVED_CHECKPOINT_KEY = "keras_swin.checkpoint"

#: Array types a `.safetensors` file stores as they are; others (bfloat16,
#: float8 of some sources) are widened to float32, which loses nothing.
_STORED_DTYPES = (
    "float16",
    "float32",
    "float64",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "bool",
)


def save_checkpoint(checkpoint: Checkpoint, path) -> None:
    """Writes a converted checkpoint to one `.safetensors` file, no Keras.

    The arrays are stored under keras-swin's weight paths, the rest of
    the `Checkpoint` (format, family, builder arguments, notes,
    preprocessing, source keys) as JSON in the file's metadata. The file
    is written atomically (a temporary file beside it, then renamed).
    `convert_checkpoint`, `keras_swin.load_checkpoint` and the builders'
    `weights=` read it back; `keras-swin convert SRC OUT.safetensors`
    writes it without a Keras backend.

    Args:
        checkpoint: from `convert_checkpoint`.
        path: the file to write; it should end in `.safetensors`.

    Raises:
        OSError: the folder is missing or not writable.

    Example:
        >>> save_checkpoint(convert_checkpoint("swin_tiny.pth"),
        ...                 "swin_tiny.keras_swin.safetensors")
        >>> convert_checkpoint("swin_tiny.keras_swin.safetensors").format
        'official_swin'
    """
    import safetensors.numpy

    arrays = {
        name: np.ascontiguousarray(
            array
            if array.dtype.name in _STORED_DTYPES
            else array.astype("float32")
        )
        for name, array in checkpoint.weights.weights.items()
    }
    metadata = {SAVED_CHECKPOINT_KEY: json.dumps(checkpoint.metadata())}
    path = os.fspath(path)
    folder, name = os.path.split(os.path.abspath(path))
    temporary = os.path.join(folder, f".{name}.tmp-{os.getpid()}")
    try:
        safetensors.numpy.save_file(arrays, temporary, metadata=metadata)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def _saved_checkpoint(path) -> Checkpoint | None:
    """The checkpoint in a file `save_checkpoint` wrote, else None."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        return None
    with open(path, "rb") as handle:
        start = handle.read(9)
    # A safetensors file starts with a little-endian header length and
    # the header's "{"; anything else is another format.
    if len(start) < 9 or start[8:9] != b"{":
        return None
    try:
        metadata = read_safetensors_metadata(path)
    except CheckpointError:
        return None
    if SAVED_CHECKPOINT_KEY not in metadata:
        return None
    try:
        described = json.loads(metadata[SAVED_CHECKPOINT_KEY])
        checkpoint = Checkpoint.from_metadata(described, read_safetensors(path))
    except (ValueError, KeyError, TypeError) as error:
        raise ConversionError(
            f"{path} claims to be a converted keras-swin checkpoint but its "
            f"description is damaged ({type(error).__name__}: {error})."
        ) from None
    get_converter(checkpoint.format)  # a format this version knows
    checkpoint.source = path
    return checkpoint


def __getattr__(name: str):
    if name in MOVED:
        raise AttributeError(
            f"weights_tools.convert.{name} moved to {MOVED[name]}: "
            "weights_tools reads and converts checkpoints "
            "(convert_checkpoint) and no longer builds Keras models."
        )
    raise AttributeError(
        f"module 'weights_tools.convert' has no attribute {name!r}"
    )
