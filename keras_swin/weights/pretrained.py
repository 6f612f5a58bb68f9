"""`weights=` by name: the official releases, downloaded, converted, cached.

Names follow timm's `arch.tag` (`swin_tiny_patch4_window7_224.ms_in1k`,
`vit_base_patch16_224.augreg_in21k_ft_in1k`, see `available_weights()`);
the builders also take the aliases `"imagenet"` and `"imagenet22k"`
(`"imagenet21k"` for ViT), resolved for the builder's architecture, input
size and window.

The first use downloads the original file with `keras.utils.get_file`
(progress bar, sha256 check where the hash is known) into
`$KERAS_HOME/keras_swin/downloads`, reads and converts it once with
`weights_tools.convert_checkpoint` and caches the conversion (one
`.safetensors` file with the arrays under this package's weight paths and
their description in its metadata) in `$KERAS_HOME/keras_swin`; later
loads read only the cache.
Nothing here builds a model: `keras_swin.weights.loading` fits the cached arrays
to the model the builder made (resampled for another input size or
window, the head mapped or replaced, as the source library's fine-tuning
code does).
"""

from __future__ import annotations

import hashlib
import os
import warnings

import keras

from keras_swin.weights.families import get_family
from keras_swin.weights.releases import (
    DEFAULT_TAGS,
    PRETRAINED,
    TIMM_NAMES,
    WeightsSpec,
)
from weights_tools.convert import (
    Checkpoint,
    convert_checkpoint,
    save_checkpoint,
)

__all__ = [
    "WeightsSpec",
    "PRETRAINED",
    "available_weights",
    "get_weights_spec",
    "resolve_weights",
    "check_weights_fit",
    "download",
    "cached_checkpoint",
    "cache_path",
]

ALIASES = ("imagenet", "imagenet22k", "imagenet21k")


def available_weights(family: str | None = None) -> list[str]:
    """Names of the registered pretrained weights.

    Args:
        family: "swin", "vit" or None for all.

    Returns:
        Sorted list of `arch.tag` names.

    Example:
        >>> "swin_tiny_patch4_window7_224.ms_in1k" in available_weights()
        True
    """
    return sorted(
        name
        for name, spec in PRETRAINED.items()
        if family is None or spec.family == family
    )


def get_weights_spec(name: str) -> WeightsSpec:
    """The registry entry `name` (an `arch.tag` or a bare `arch`).

    A bare architecture name gives its "imagenet" default. timm's names
    of the Swin V2 releases (`swinv2_tiny_window8_256.ms_in1k`) name the
    same entries (`releases.TIMM_NAMES`).

    Raises:
        ValueError: unknown name; the message lists close names.

    Example:
        >>> get_weights_spec("swin_tiny_patch4_window7_224").classes
        1000
    """
    name = TIMM_NAMES.get(name, name)
    if name in PRETRAINED:
        return PRETRAINED[name]
    if name in DEFAULT_TAGS and "imagenet" in DEFAULT_TAGS[name]:
        return PRETRAINED[DEFAULT_TAGS[name]["imagenet"]]
    stem = name.split(".")[0]
    close = [n for n in PRETRAINED if n.startswith(stem[:12])][:8]
    raise ValueError(
        f"Unknown pretrained weights {name!r}. Known names look like "
        f"{close or available_weights()[:4]}; all: "
        "keras_swin.available_weights(). A local file works "
        "too: weights='/path/to/checkpoint'."
    )


def resolve_weights(
    weights: str,
    *,
    family: str,
    variant: str | None,
    image_size: int | None,
    window_size: int | None = None,
) -> WeightsSpec:
    """The entry a builder's `weights=` string stands for.

    Args:
        weights: an `arch.tag` name or an alias ("imagenet",
            "imagenet22k", "imagenet21k").
        family: the builder's family, "swin" or "vit".
        variant: the builder's configuration key (`SWIN_CONFIGS` /
            `VIT_CONFIGS`), None when it matches none.
        image_size: the model's input side (None: dynamic).
        window_size: the Swin window.

    Returns:
        The `WeightsSpec`; for an alias the release for this architecture
        at the model's size and window if there is one, else its 224
        release (which is then resampled on load).

    Raises:
        ValueError: an unknown name, an alias with no release for this
            architecture, or a named release of another family.

    Example:
        >>> resolve_weights("imagenet", family="swin", variant="swin_tiny",
        ...                 image_size=224, window_size=7).name
        'swin_tiny_patch4_window7_224.ms_in1k'
    """
    if weights in ALIASES:
        if variant is None:
            raise ValueError(
                f"weights={weights!r} needs a standard architecture, but "
                "this model's configuration is none of the registered "
                "variants. Pass a checkpoint file or a full name from "
                "keras_swin.available_weights()."
            )
        alias = "imagenet22k" if weights == "imagenet21k" else weights
        release_name = get_family(family).release_name
        candidates = [
            release_name(variant, image_size or 224, window_size),
            release_name(variant, 224, 7),
        ]
        candidates += [
            release_name(variant, size, None)
            for size in get_family(family).alias_sizes
        ]
        for arch in candidates:
            name = DEFAULT_TAGS.get(arch, {}).get(alias)
            if name is not None:
                return PRETRAINED[name]
        raise ValueError(
            f"No {weights!r} weights are registered for {variant} "
            f"(looked for {', '.join(dict.fromkeys(candidates))}); see "
            "keras_swin.available_weights()."
        )
    spec = get_weights_spec(weights)
    if spec.family != family:
        raise ValueError(
            f"{spec.name} are {spec.family} weights; this builder makes a "
            f"{family} model."
        )
    return spec


def _same(a, b) -> bool:
    if isinstance(a, (list, tuple)) or isinstance(b, (list, tuple)):
        return (
            isinstance(a, (list, tuple))
            and isinstance(b, (list, tuple))
            and (tuple(a) == tuple(b))
        )
    return a == b


def check_weights_fit(spec: WeightsSpec, family: str, config: dict) -> None:
    """Refuses, before any download, a release another architecture needs.

    Compares what the release fixes (its variant's widths, depths, heads,
    patch; for ViT the class token layout) with the builder's arguments.
    Input size, window and classes may differ: they are resampled or the
    head replaced on load.

    Args:
        spec: the registry entry.
        family: the builder's family, "swin" or "vit".
        config: the builder's architecture arguments (those it passes to
            `load_weights`); arguments it does not list are not compared.

    Raises:
        ValueError: names the first differing argument, the release's
            value and the model's, and the builder that fits.

    Example:
        >>> check_weights_fit(get_weights_spec(
        ...     "vit_tiny_patch16_224.augreg_in21k"), "vit",
        ...     VIT_CONFIGS["vit_tiny_patch16"])
    """
    if spec.family != family:
        raise ValueError(
            f"{spec.name} are {spec.family} weights; this builder makes a "
            f"{family} model."
        )
    release = get_family(family)
    fixed = {**release.configs[spec.variant], **release.release_arguments}
    fixed.pop("drop_path_rate", None)
    for key, wanted in fixed.items():
        # None: the builder derives it (ViT class_token from classifier).
        if config.get(key) is not None and not _same(config[key], wanted):
            raise ValueError(
                f"{spec.name} is a {spec.variant} release ({key}={wanted!r}) "
                f"and does not fit this model ({key}={config[key]!r}); "
                "nothing was downloaded. Build the architecture it was "
                f"released for (keras_swin.weights.pretrained.build_pretrained("
                f"{spec.name!r}) or the {spec.variant} builder), or pick "
                "weights for this architecture from "
                f"keras_swin.available_weights({family!r})."
            )


def _keras_home() -> str:
    return os.environ.get("KERAS_HOME") or os.path.join(
        os.path.expanduser("~"), ".keras"
    )


def _home() -> str:
    return os.path.join(_keras_home(), "keras_swin")


def _extension(spec: WeightsSpec) -> str:
    for ext in (".safetensors", ".pth", ".npz", ".bin"):
        if spec.url.endswith(ext):
            return ext
    return ""


def download(spec: WeightsSpec) -> str:
    """Downloads (once) the original checkpoint of `spec`; returns its path.

    Uses `keras.utils.get_file`: a progress bar, the cache under
    `$KERAS_HOME/keras_swin/downloads`, and the sha256 check when the
    registry knows the hash (a hash prefix is checked after download).

    Raises:
        RuntimeError: the download failed or the file has the wrong hash;
            the message names the URL and how to use a local file.

    Example:
        >>> path = download(get_weights_spec("swin_tiny_patch4_window7_224"))
    """
    advice = (
        f"Download {spec.url} yourself and pass the file: "
        "weights='/path/to/file' (or load_checkpoint('/path/to/file'))."
    )
    # get_file falls back to /tmp/.keras when the folder does not exist.
    os.makedirs(os.path.join(_home(), "downloads"), exist_ok=True)
    try:
        path = keras.utils.get_file(
            fname=spec.name + _extension(spec),
            origin=spec.url,
            file_hash=spec.sha256,
            hash_algorithm="sha256",
            cache_dir=_keras_home(),
            cache_subdir=os.path.join("keras_swin", "downloads"),
        )
    except Exception as error:
        partial = os.path.join(
            _keras_home(),
            "keras_swin",
            "downloads",
            spec.name + _extension(spec),
        )
        if os.path.isfile(partial):
            os.remove(partial)  # a failed or unverified download
        raise RuntimeError(
            f"Could not get the {spec.name} weights from {spec.url} "
            f"({type(error).__name__}: {error}). {advice}"
        ) from None
    if spec.hash_prefix:
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
        if not digest.hexdigest().startswith(spec.hash_prefix):
            os.remove(path)
            raise RuntimeError(
                f"{path}, downloaded from {spec.url}, has sha256 "
                f"{digest.hexdigest()}, expected one starting with "
                f"{spec.hash_prefix}; it was deleted. {advice}"
            )
    return path


def cache_path(spec: WeightsSpec) -> str:
    """Where the converted release `spec` is cached.

    One `.safetensors` file under `$KERAS_HOME/keras_swin`, written by
    `weights_tools.convert.save_checkpoint`: the arrays under this
    package's weight paths and, in its metadata, the release's own
    architecture, format and notes.

    Example:
        >>> cache_path(get_weights_spec("swin_tiny_patch4_window7_224"))
        '.../keras_swin/swin_tiny_patch4_window7_224.ms_in1k.safetensors'
    """
    return os.path.join(_home(), spec.name + ".safetensors")


def _read_cache(spec: WeightsSpec) -> Checkpoint | None:
    """The cached conversion of `spec`, or None (absent or unreadable)."""
    path = cache_path(spec)
    if not os.path.isfile(path):
        return None
    try:
        return convert_checkpoint(path)
    except Exception as error:  # a damaged cache is converted again
        warnings.warn(
            f"The cached conversion of {spec.name} ({path}) is unreadable "
            f"({type(error).__name__}: {error}); converting the downloaded "
            "file again.",
            stacklevel=3,
        )
        return None


def cached_checkpoint(spec: WeightsSpec) -> Checkpoint:
    """The converted arrays of the release `spec`, from the cache.

    On first use: downloads the original file (`download`), reads and
    converts it once (`weights_tools.convert_checkpoint`), then writes
    the conversion atomically to `cache_path(spec)`. Later calls read
    only that file. A cache that cannot be read is converted again, with
    a warning.

    Args:
        spec: the registry entry.

    Returns:
        A `weights_tools.convert.Checkpoint`: the release's own
        architecture (`config`, with `classes` and `input_shape`), its
        arrays under this package's weight paths, and its format (which
        says how to resample it).

    Raises:
        RuntimeError: the download failed (see `download`).
        ConversionError: the downloaded file is not the release's format.

    Example:
        >>> checkpoint = cached_checkpoint(
        ...     get_weights_spec("swin_tiny_patch4_window7_224.ms_in1k"))
        >>> checkpoint.config["classes"]
        1000
    """
    cached = _read_cache(spec)
    if cached is not None:
        cached.source = spec.name
        return cached
    original = download(spec)
    checkpoint = convert_checkpoint(
        original, format=None if spec.format == "timm" else spec.format
    )
    checkpoint.source = spec.name
    os.makedirs(_home(), exist_ok=True)
    save_checkpoint(checkpoint, cache_path(spec))  # atomic
    return checkpoint
