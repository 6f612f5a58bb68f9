"""Rename tables and strict assignment shared by the converters."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np

#: Checkpoint layouts `load_checkpoint` reads (`format=`); kept here,
#: free of Keras imports, for the command line's choices.
FORMAT_NAMES = (
    "hf_swin",
    "hf_vit",
    "timm_swin",
    "official_swin",
    "timm_vit",
    "official_vit",
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


def assign_strict(model, converted: Converted, source: str) -> None:
    """Sets every weight of `model` from `converted`, or fails loudly.

    Args:
        model: a built `keras.Model`.
        converted: the renamed checkpoint.
        source: file name for messages.

    Raises:
        ConversionError: listing unused checkpoint keys, unset model
            weights and shape mismatches, all at once; nothing is assigned.

    Example:
        >>> assign_strict(model, official_swin.convert(tensors), "t.pth")
    """
    variables = {v.path: v for v in model.weights}
    problems = []
    unused = dict(converted.unmatched)
    for path, array in converted.weights.items():
        if path not in variables:
            unused[f"{converted.sources[path]} (as {path})"] = array.shape
    if unused:
        problems.append("checkpoint entries the model does not use:")
        problems += [f"  {k} {list(s)}" for k, s in sorted(unused.items())]
    missing = [p for p in variables if p not in converted.weights]
    if missing:
        problems.append("model weights the checkpoint does not set:")
        problems += [f"  {p} {list(variables[p].shape)}" for p in missing]
    mismatched = [
        f"  {converted.sources[p]} {list(converted.source_shapes[p])} -> "
        f"{p} {list(a.shape)}, the model expects {list(variables[p].shape)}"
        for p, a in converted.weights.items()
        if p in variables and tuple(a.shape) != tuple(variables[p].shape)
    ]
    if mismatched:
        problems.append("shape mismatches:")
        problems += mismatched
    if problems:
        raise ConversionError(
            f"{source} does not fit the model {model.name!r}:\n"
            + "\n".join(problems)
        )
    for path, variable in variables.items():
        variable.assign(converted.weights[path].astype(variable.dtype))


def natural_key(text: str) -> list:
    """Sort key that orders `block_2` before `block_10`.

    Example:
        >>> sorted(["block_10", "block_2"], key=natural_key)
        ['block_2', 'block_10']
    """
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", text)]
