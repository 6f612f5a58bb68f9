"""Rename tables and strict assignment shared by the converters."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np

#: Evaluation preprocessing of the ImageNet checkpoints (mean and std on
#: the [0, 1] scale): Swin, timm and Hugging Face use the ImageNet
#: statistics, Google's ViT `.npz` files the "Inception" 0.5 / 0.5.
IMAGENET_PREPROCESSING = dict(
    mean=(0.485, 0.456, 0.406),
    std=(0.229, 0.224, 0.225),
    crop_pct=0.875,
    interpolation="bicubic",
)
INCEPTION_PREPROCESSING = dict(
    IMAGENET_PREPROCESSING, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5)
)


class ConversionError(ValueError):
    """A checkpoint does not fit the model it is converted into.

    The message lists every unused checkpoint key, every model weight the
    checkpoint does not set and every shape mismatch, with shapes.

    Example:
        >>> try:
        ...     load_checkpoint("other_model.pth")
        ... except ConversionError as error:
        ...     print(error)  # one line per offending key
    """


Transform = Callable[[np.ndarray], np.ndarray]


def linear_kernel(weight: np.ndarray) -> np.ndarray:
    """PyTorch Linear weight (out, in) -> Keras Dense kernel (in, out).

    Example:
        >>> linear_kernel(np.zeros((288, 96))).shape
        (96, 288)
    """
    return np.ascontiguousarray(weight.T)


def conv_kernel(weight: np.ndarray) -> np.ndarray:
    """PyTorch Conv2d weight (O, I, kh, kw) -> Keras kernel (kh, kw, I, O).

    Example:
        >>> conv_kernel(np.zeros((96, 3, 4, 4))).shape
        (4, 4, 3, 96)
    """
    return np.ascontiguousarray(weight.transpose(2, 3, 1, 0))


@dataclass(frozen=True)
class Rule:
    """One rename: a full-match regex on checkpoint keys, a target path.

    Attributes:
        pattern: regex matched against the whole checkpoint key.
        target: Keras weight path; may use the regex groups (`\\1`).
        transform: optional array transform (transpose, reshape).

    Example:
        >>> Rule(r"head\\.weight", "head/kernel", linear_kernel)
    """

    pattern: str
    target: str
    transform: Transform | None = None


def norm_rules(source: str, target: str) -> list[Rule]:
    """Rules for a PyTorch LayerNorm `source` -> Keras `target`.

    Example:
        >>> [r.target for r in norm_rules(r"norm", "encoder/norm")]
        ['encoder/norm/gamma', 'encoder/norm/beta']
    """
    return [
        Rule(source + r"\.weight", target + "/gamma"),
        Rule(source + r"\.bias", target + "/beta"),
    ]


def dense_rules(source: str, target: str) -> list[Rule]:
    """Rules for a PyTorch Linear `source` -> Keras Dense `target`.

    Example:
        >>> [r.target for r in dense_rules(r"head", "head")]
        ['head/kernel', 'head/bias']
    """
    return [
        Rule(source + r"\.weight", target + "/kernel", linear_kernel),
        Rule(source + r"\.bias", target + "/bias"),
    ]


def renamed_view(
    tensors: dict[str, np.ndarray], names: dict[str, str]
) -> dict[str, np.ndarray]:
    """The same arrays under new keys (`names`: old key -> new key).

    Raises:
        ConversionError: two keys get the same new name.

    Example:
        >>> renamed_view({"a": x}, {"a": "b"})
        {'b': x}
    """
    out: dict[str, np.ndarray] = {}
    origin: dict[str, str] = {}
    for key, array in tensors.items():
        name = names.get(key, key)
        if name in out:
            raise ConversionError(
                f"{origin[name]} and {key} both map to {name}."
            )
        out[name], origin[name] = array, key
    return out


@dataclass
class Converted:
    """Result of applying rename rules to a checkpoint.

    Attributes:
        weights: Keras weight path -> array.
        sources: Keras weight path -> the checkpoint key(s) it came from.
        source_shapes: Keras weight path -> shape as stored in the file.
        unmatched: checkpoint keys no rule accepted (name -> shape).
        notes: warnings to show the user (dropped heads, ...).
        ignored: checkpoint keys deliberately left out, each named in
            `notes` (name -> shape): the detector or segmenter heads
            beside a dense backbone, a classifier's final norm and head
            when it is read as a backbone. Unlike `unmatched`, they do
            not fail the strict fit.

    Example:
        >>> converted = apply_rules({"norm.weight": gamma}, RULES)
        >>> converted.weights["norm/gamma"] is gamma
        True
    """

    weights: dict[str, np.ndarray] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    source_shapes: dict[str, tuple] = field(default_factory=dict)
    unmatched: dict[str, tuple] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    ignored: dict[str, tuple] = field(default_factory=dict)

    def add(
        self,
        path: str,
        array: np.ndarray,
        source: str,
        source_shape: tuple | None = None,
    ) -> None:
        if path in self.weights:
            raise ConversionError(
                f"Two checkpoint entries map to the weight {path}: "
                f"{self.sources[path]} and {source}."
            )
        self.weights[path] = array
        self.sources[path] = source
        self.source_shapes[path] = tuple(
            array.shape if source_shape is None else source_shape
        )

    def drop(self, prefix: str) -> list[str]:
        """Removes the weights under `prefix`; returns their sources."""
        dropped = [p for p in self.weights if p.startswith(prefix)]
        names = [self.sources.pop(p) for p in dropped]
        for p in dropped:
            del self.weights[p]
            del self.source_shapes[p]
        return names


def apply_rules(
    tensors: dict[str, np.ndarray],
    rules: Iterable[Rule],
    skip: Iterable[str] = (),
) -> Converted:
    """Renames checkpoint tensors to Keras weight paths.

    Args:
        tensors: checkpoint key -> array.
        rules: the format's rename table; the first full match wins.
        skip: keys already consumed elsewhere (fused, verified buffers).

    Returns:
        A `Converted`; keys that no rule matches land in `unmatched`, and
        later make the strict assignment fail.

    Example:
        >>> rules = [Rule(r"norm\\.weight", "norm/gamma")]
        >>> apply_rules({"norm.weight": np.ones(3)}, rules).weights
        {'norm/gamma': array([1., 1., 1.])}
    """
    compiled = [(re.compile(r.pattern), r) for r in rules]
    skip = set(skip)
    out = Converted()
    for key, array in tensors.items():
        if key in skip:
            continue
        for regex, rule in compiled:
            match = regex.fullmatch(key)
            if match:
                value = rule.transform(array) if rule.transform else array
                out.add(match.expand(rule.target), value, key, array.shape)
                break
        else:
            out.unmatched[key] = tuple(array.shape)
    return out


def check_fit(
    converted: Converted,
    shapes: dict,
    source: str,
    model_name: str = "the model",
) -> None:
    """Checks that a converted checkpoint sets exactly a model's weights.

    Args:
        converted: the renamed checkpoint.
        shapes: every weight path of the model -> its shape.
        source: file name for messages.
        model_name: the model's name for messages.

    Raises:
        ConversionError: listing unused checkpoint entries, model weights
            the checkpoint does not set and shape mismatches, all at once.

    Example:
        >>> check_fit(official_swin.convert(tensors),
        ...           {v.path: v.shape for v in model.weights}, "t.pth")
    """
    problems = []
    unused = dict(converted.unmatched)
    for path, array in converted.weights.items():
        if path not in shapes:
            unused[f"{converted.sources[path]} (as {path})"] = array.shape
    if unused:
        problems.append("checkpoint entries the model does not use:")
        problems += [f"  {k} {list(s)}" for k, s in sorted(unused.items())]
    missing = [p for p in shapes if p not in converted.weights]
    if missing:
        problems.append("model weights the checkpoint does not set:")
        problems += [f"  {p} {list(shapes[p])}" for p in missing]
    mismatched = [
        f"  {converted.sources[p]} {list(converted.source_shapes[p])} -> "
        f"{p} {list(a.shape)}, the model expects {list(shapes[p])}"
        for p, a in converted.weights.items()
        if p in shapes and tuple(a.shape) != tuple(shapes[p])
    ]
    if mismatched:
        problems.append("shape mismatches:")
        problems += mismatched
    if problems:
        raise ConversionError(
            f"{source} does not fit the model {model_name!r}:\n"
            + "\n".join(problems)
        )


@dataclass(frozen=True)
class Converter:
    """One source format: how to recognise, describe and rename it.

    Every format module (`official_swin`, `official_vit`, `timm_format`,
    `hf_format`) declares one `Converter` per layout it reads, with the
    same three functions; `weights_tools.formats.FORMATS` collects them
    and derives the format names from them. A new format is a new module
    with its functions and its `Converter`, added to that list.

    Attributes:
        name: the format name (`format=`, `--format`), e.g.
            `"official_swin"`.
        family: the model family the layout belongs to (`"swin"`,
            `"vit"`); `keras_swin.weights.families` maps it to a builder.
        matches: `(tensors, meta) -> bool`: whether the checkpoint's keys
            (and the `config.json` beside it, or None) are this layout.
        infer: `(tensors, meta, overrides) -> dict`: the builder
            arguments of the checkpoint's own model, with `classes` and
            `input_shape`; `overrides` are the values a caller passed
            (what the tensors cannot tell, e.g. a timm ViT's heads).
        convert: `(tensors, meta) -> Converted`: the tensors under this
            package's weight paths, in its layouts.
        table_resampling: how the source library resizes Swin relative
            position tables: `"bicubic"` (official, Hugging Face) or
            `"timm"`.
        position_resampling: how it resizes position embeddings:
            `"zoom"` (official ViT), `"bicubic"` (official Swin, Hugging
            Face) or `"bicubic_antialias"` (timm).
        preprocessing: the evaluation preprocessing of the format's
            checkpoints (`mean`, `std`, `crop_pct`, `interpolation`),
            used when the checkpoint does not say (a timm `config.json`
            `pretrained_cfg` does).
        head_maps: `weights_tools.heads.HeadMap`s: stored heads that map
            to a model's class count by row selection (Swin 22K -> 1K)
            instead of being replaced.
        refine: `(config, converted, training_meta, overrides) ->
            config`, or None: completes the inferred arguments with what
            a `torch.save` file keeps beside its state dict
            (`readers.read_checkpoint_extras`, `{}` without it; an
            mmsegmentation checkpoint's config text), after `infer` and
            `convert`; it may add notes to `converted`.

    Example:
        >>> from weights_tools import official_swin
        >>> converter = official_swin.CONVERTER
        >>> converter.name, converter.family
        ('official_swin', 'swin')
        >>> config = converter.infer(tensors, None, {})  # tensors: a .pth
        >>> converted = converter.convert(tensors, None)
    """

    name: str
    family: str
    matches: Callable[[dict, dict | None], bool]
    infer: Callable[[dict, dict | None, dict | None], dict]
    convert: Callable[[dict, dict | None], Converted]
    table_resampling: str = "bicubic"
    position_resampling: str = "bicubic"
    preprocessing: dict = field(
        default_factory=lambda: dict(IMAGENET_PREPROCESSING)
    )
    head_maps: tuple = ()
    refine: Callable[[dict, Converted, dict, dict], dict] | None = None


def natural_key(text: str) -> list:
    """Sort key that orders `block_2` before `block_10`.

    Example:
        >>> sorted(["block_10", "block_2"], key=natural_key)
        ['block_2', 'block_10']
    """
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", text)]


# ----------------------------------------------------------------- bounds
#: Allowed ranges (inclusive) of the integer sizes a `config.json` states
#: or a checkpoint's tensors imply, checked before anything is built.
#: Generous: the largest released models use 1536-pixel images, widths
#: of 6144, 48 blocks, 64 heads and 21843 classes; values beyond these
#: ranges are corrupt or hostile and would only exhaust memory.
SIZE_RANGES = {
    "image side": (1, 8192),
    "patch size": (1, 1024),
    "channel count": (1, 1024),
    "width": (1, 65536),
    "block count": (0, 1024),
    "head count": (1, 1024),
    "window size": (1, 1024),
    "class count": (0, 1_000_000),
    "token count": (0, 1024),
}

#: Allowed ranges of float settings: (low, high), low excluded.
FLOAT_RANGES = {
    "MLP ratio": (0.0, 64.0),
    "LayerNorm epsilon": (0.0, 1.0),
    "crop fraction": (0.0, 1.0),
    "standard deviation": (0.0, 1e6),
}

_MISSING = object()


def _out_of_range(source: str, key: str, value, what: str, allowed: str):
    return ConversionError(
        f"{source}: {key}={value!r} is not a valid {what}: expected "
        f"{allowed}. Sizes from a config or a checkpoint are checked "
        "before anything is built; correct the file."
    )


def check_int(value, key: str, kind: str, source: str = "config.json") -> int:
    """One size, checked against `SIZE_RANGES[kind]`.

    Args:
        value: the value read from the file.
        key: its name in the file, for the message.
        kind: a key of `SIZE_RANGES`.
        source: the file, for the message.

    Returns:
        `value` (an int; bools are refused).

    Raises:
        ConversionError: not an int, or outside the range; the message
            names the key, the value and the allowed range.

    Example:
        >>> check_int(224, "image_size", "image side")
        224
        >>> check_int(60000, "image_size", "image side")
        Traceback (most recent call last):
        ConversionError: config.json: image_size=60000 is not a valid ...
    """
    low, high = SIZE_RANGES[kind]
    if type(value) is not int or not low <= value <= high:
        raise _out_of_range(
            source, key, value, kind, f"an int in {low}..{high}"
        )
    return value


def check_ints(
    value, key: str, kind: str, source: str = "config.json", length=None
) -> tuple[int, ...]:
    """A list of sizes (`depths`, per-stage heads, an (H, W) pair).

    Args:
        value: a list or tuple read from the file.
        key, kind, source: as `check_int`.
        length: the exact length required, or None for 1..16 entries.

    Returns:
        The sizes as a tuple of ints.

    Raises:
        ConversionError: not a list of that length, or an entry out of
            range.

    Example:
        >>> check_ints([2, 2, 6, 2], "depths", "block count")
        (2, 2, 6, 2)
    """
    lengths = (length, length) if length else (1, 16)
    if not isinstance(value, list | tuple) or not (
        lengths[0] <= len(value) <= lengths[1]
    ):
        count = length or f"{lengths[0]}..{lengths[1]}"
        raise _out_of_range(
            source, key, value, f"list of {kind}s", f"a list of {count} ints"
        )
    return tuple(
        check_int(v, f"{key}[{i}]", kind, source) for i, v in enumerate(value)
    )


def check_float(
    value, key: str, kind: str, source: str = "config.json"
) -> float:
    """A float setting, checked against `FLOAT_RANGES[kind]`.

    Example:
        >>> check_float(1e-5, "layer_norm_eps", "LayerNorm epsilon")
        1e-05
    """
    low, high = FLOAT_RANGES[kind]
    if (
        type(value) not in (int, float)
        or not math.isfinite(value)
        or not low < value <= high
    ):
        raise _out_of_range(
            source, key, value, kind, f"a number in ({low}, {high}]"
        )
    return float(value)


def _lookup(meta: dict, dotted: str):
    value = meta
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            return _MISSING
        value = value[part]
    return value


def check_config(meta, checks: dict, source: str = "config.json") -> None:
    """Checks the sizes a `config.json` states, before any is used.

    Args:
        meta: the parsed config (a dict; anything else is an error).
        checks: dotted key -> (form, kind): form "int", "float", "pair"
            (an int or an [H, W] list), "list" (1..16 ints) or
            "int_or_list"; kind a key of `SIZE_RANGES` / `FLOAT_RANGES`.
            Absent and null keys are skipped.
        source: the file, for the message.

    Raises:
        ConversionError: naming the key, the value and the allowed range.

    Example:
        >>> check_config({"image_size": 60000},
        ...              {"image_size": ("pair", "image side")})
        Traceback (most recent call last):
        ConversionError: config.json: image_size=60000 is not a valid ...
    """
    if not isinstance(meta, dict):
        raise ConversionError(
            f"{source}: expected a JSON object, found {type(meta).__name__}."
        )
    for key, (form, kind) in checks.items():
        value = _lookup(meta, key)
        if value is _MISSING or value is None:
            continue
        if form == "float":
            check_float(value, key, kind, source)
        elif form == "list" or (form == "int_or_list" and type(value) is list):
            check_ints(value, key, kind, source)
        elif form == "pair" and isinstance(value, list | tuple):
            check_ints(value, key, kind, source, length=2)
        else:
            check_int(value, key, kind, source)


def check_model_config(config: dict, source: str = "the checkpoint") -> dict:
    """Checks the sizes of inferred builder arguments; returns `config`.

    Run by every format's `infer_*config` on what the tensors (and
    config.json) imply, so that no model is built from absurd sizes.

    Raises:
        ConversionError: naming the argument, the value and the range.

    Example:
        >>> check_model_config({"patch_size": 4, "input_shape": (224, 224, 3)})
        {'patch_size': 4, 'input_shape': (224, 224, 3)}
    """
    source = f"{source} implies"
    kinds = {
        "patch_size": "patch size",
        "window_size": "window size",
        "embed_dim": "width",
        "hidden_size": "width",
        "mlp_dim": "width",
        "representation_size": "width",
        "num_layers": "block count",
        "classes": "class count",
        "num_register_tokens": "token count",
    }
    for key, kind in kinds.items():
        if config.get(key) is not None:
            check_int(config[key], key, kind, source)
    if "depths" in config:
        check_ints(config["depths"], "depths", "block count", source)
    heads = config.get("num_heads")
    if isinstance(heads, list | tuple):
        check_ints(heads, "num_heads", "head count", source)
    elif heads is not None:
        check_int(heads, "num_heads", "head count", source)
    if config.get("mlp_ratio") is not None:
        check_float(config["mlp_ratio"], "mlp_ratio", "MLP ratio", source)
    shape = config.get("input_shape")
    if shape is not None:
        height, width, channels = shape
        # None sides: a backbone built for any image size.
        if height is not None or width is not None:
            check_int(height, "input_shape[0]", "image side", source)
            check_int(width, "input_shape[1]", "image side", source)
        check_int(channels, "input_shape[2]", "channel count", source)
    if config.get("pretrain_image_size") is not None:
        check_int(
            config["pretrain_image_size"],
            "pretrain_image_size",
            "image side",
            source,
        )
    return config
