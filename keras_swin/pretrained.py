"""`weights=` by name: the official releases, downloaded, converted, cached.

Names follow timm's `arch.tag` (`swin_tiny_patch4_window7_224.ms_in1k`,
`vit_base_patch16_224.augreg_in21k_ft_in1k`, see `available_weights()`);
the builders also take the aliases `"imagenet"` and `"imagenet22k"`
(`"imagenet21k"` for ViT), resolved for the builder's architecture, input
size and window.

The first use downloads the original file with `keras.utils.get_file`
(progress bar, sha256 check where the hash is known) into
`$KERAS_HOME/keras_swin/downloads`, converts it with `weights_tools` and
caches the converted `.weights.h5` plus its configuration (a small JSON
file) in `$KERAS_HOME/keras_swin`; later loads read only the cache. A
model with another input size, window or number of classes gets the
cached weights resampled as the source library's fine-tuning code does
(see `weights_tools.load_checkpoint`).
"""

from __future__ import annotations

import hashlib
import json
import os

import keras

from keras_swin._registry_data import DEFAULT_TAGS, PRETRAINED, WeightsSpec
from keras_swin.models import swin, vit
from keras_swin.utils import atomic_path

__all__ = [
    "WeightsSpec",
    "PRETRAINED",
    "available_weights",
    "get_weights_spec",
    "resolve_weights",
    "check_weights_fit",
    "download",
    "converted_weights",
    "load_pretrained_into",
    "build_pretrained",
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

    A bare architecture name gives its "imagenet" default.

    Raises:
        ValueError: unknown name; the message lists close names.

    Example:
        >>> get_weights_spec("swin_tiny_patch4_window7_224").classes
        1000
    """
    if name in PRETRAINED:
        return PRETRAINED[name]
    if name in DEFAULT_TAGS and "imagenet" in DEFAULT_TAGS[name]:
        return PRETRAINED[DEFAULT_TAGS[name]["imagenet"]]
    stem = name.split(".")[0]
    close = [n for n in PRETRAINED if n.startswith(stem[:12])][:8]
    raise ValueError(
        f"Unknown pretrained weights {name!r}. Known names look like "
        f"{close or available_weights()[:4]}; all: "
        "keras_swin.pretrained.available_weights(). A local file works "
        "too: weights='/path/to/checkpoint'."
    )


def _architecture(family: str, variant: str, size: int, window) -> str:
    if family == "swin":
        return f"{variant}_patch4_window{window}_{size}"
    return f"{variant}_{size}"


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
                "keras_swin.pretrained.available_weights()."
            )
        alias = "imagenet22k" if weights == "imagenet21k" else weights
        candidates = [
            _architecture(family, variant, image_size or 224, window_size),
            _architecture(family, variant, 224, 7),
        ]
        if family == "vit":
            candidates += [_architecture(family, variant, 384, None)]
        for arch in candidates:
            name = DEFAULT_TAGS.get(arch, {}).get(alias)
            if name is not None:
                return PRETRAINED[name]
        raise ValueError(
            f"No {weights!r} weights are registered for {variant} "
            f"(looked for {', '.join(dict.fromkeys(candidates))}); see "
            "keras_swin.pretrained.available_weights()."
        )
    spec = get_weights_spec(weights)
    if spec.family != family:
        raise ValueError(
            f"{spec.name} are {spec.family} weights; this builder makes a "
            f"{family} model."
        )
    return spec


#: What a release fixes of the architecture, beyond its variant's table
#: entry: the official Swin releases all use 4 x 4 patches; the official
#: and AugReg ViT releases a class token read by the head, no registers
#: and a position embedding that covers the class token. The input size
#: and the Swin window are not fixed: they are resampled on load.
_RELEASE_ARGUMENTS = {
    "swin": dict(patch_size=4),
    "vit": dict(
        classifier="token",
        class_token=True,
        num_register_tokens=0,
        position_embedding_on_prefix=True,
    ),
}


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
    configs = swin.SWIN_CONFIGS if family == "swin" else vit.VIT_CONFIGS
    fixed = {**configs[spec.variant], **_RELEASE_ARGUMENTS[family]}
    fixed.pop("drop_path_rate", None)
    for key, wanted in fixed.items():
        if key in config and not _same(config[key], wanted):
            raise ValueError(
                f"{spec.name} is a {spec.variant} release ({key}={wanted!r}) "
                f"and does not fit this model ({key}={config[key]!r}); "
                "nothing was downloaded. Build the architecture it was "
                f"released for (keras_swin.pretrained.build_pretrained("
                f"{spec.name!r}) or the {spec.variant} builder), or pick "
                "weights for this architecture from "
                f"keras_swin.pretrained.available_weights({family!r})."
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


def _cache_paths(spec: WeightsSpec) -> tuple[str, str]:
    stem = os.path.join(_home(), spec.name)
    return stem + ".weights.h5", stem + ".json"


def converted_weights(spec: WeightsSpec) -> tuple[str, dict]:
    """The converted `.weights.h5` of `spec` and its builder arguments.

    Converts on first use (download, strict conversion, atomic writes of
    the weights file and of its JSON configuration); later calls only
    read the JSON.

    Returns:
        (weights path, config): config holds `family`, `format` and the
        builder arguments of the checkpoint's own model, including
        `classes` and `input_shape`.

    Example:
        >>> path, config = converted_weights(
        ...     get_weights_spec("swin_tiny_patch4_window7_224.ms_in1k"))
        >>> config["classes"]
        1000
    """
    weights_path, config_path = _cache_paths(spec)
    if os.path.isfile(weights_path) and os.path.isfile(config_path):
        with open(config_path, encoding="utf-8") as handle:
            return weights_path, json.load(handle)
    from weights_tools.convert import checkpoint_config, load_checkpoint

    original = download(spec)
    fmt = None if spec.format == "timm" else spec.format
    config = checkpoint_config(original, format=fmt)
    model = load_checkpoint(original, format=fmt)
    os.makedirs(_home(), exist_ok=True)
    with atomic_path(weights_path) as tmp:
        model.save_weights(tmp)
    config["input_shape"] = list(config["input_shape"])
    config["source"] = spec.url
    with atomic_path(config_path) as tmp:
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(config, handle, indent=1, sort_keys=True)
    return weights_path, json.loads(json.dumps(config))


def _source_model(config: dict) -> keras.Model:
    from keras_swin.models import SwinTransformer, VisionTransformer

    args = {
        k: tuple(v) if isinstance(v, list) else v
        for k, v in config.items()
        if k not in ("family", "format", "source", "classes", "input_shape")
    }
    build = SwinTransformer if config["family"] == "swin" else VisionTransformer
    classes = config["classes"]
    return build(
        include_top=classes > 0,
        classes=classes or 1000,
        pooling=None if classes else "avg",
        classifier_activation=None,
        input_shape=tuple(config["input_shape"]),
        **args,
    )


def load_pretrained_into(
    model: keras.Model, spec: WeightsSpec, model_config: dict
) -> None:
    """Loads the registered weights `spec` into a built model.

    The cached native model is rebuilt from its JSON configuration and
    its weights are fitted to `model`: head kept, mapped (Swin 22K -> 1K)
    or dropped (headless builders), position tables and embeddings
    resampled for another size or window, the way the original format's
    library does. The model then carries `model.pretrained_spec`.

    Args:
        model: the builder's model.
        spec: the registry entry.
        model_config: the builder's architecture arguments.

    Example:
        >>> model = SwinTiny(weights=None)
        >>> load_pretrained_into(model, get_weights_spec(
        ...     "swin_tiny_patch4_window7_224.ms_in1k"), SWIN_CONFIGS[
        ...     "swin_tiny"])
    """
    from weights_tools.common import Converted
    from weights_tools.convert import FORMATS, load_converted

    check_weights_fit(spec, spec.family, model_config)
    weights_path, config = converted_weights(spec)
    source = _source_model(config)
    source.load_weights(weights_path)
    converted = Converted()
    for variable in source.weights:
        converted.add(
            variable.path, keras.ops.convert_to_numpy(variable), variable.path
        )
    fmt = FORMATS[config["format"]]
    source_config = {
        k: v
        for k, v in config.items()
        if k not in ("family", "format", "source")
    }
    load_converted(
        model,
        converted,
        family=config["family"],
        source_config=source_config,
        model_config=model_config,
        source=spec.name,
        table_resampling=fmt.table_resampling,
        position_resampling=fmt.position_resampling,
        warn="head" in {layer.name for layer in model.layers},
    )
    model.pretrained_spec = spec


def build_pretrained(name: str, **kwargs) -> keras.Model:
    """The model of a registered release, with its weights loaded.

    Args:
        name: an `arch.tag` name, or a bare `arch` for its "imagenet"
            default (see `available_weights()`).
        **kwargs: builder arguments that change the release's own
            (`input_shape`, `window_size`, `classes`, `include_top`, ...);
            weights are resampled or the head replaced accordingly.

    Returns:
        A `keras.Model` (softmax head by default, as keras.applications);
        `model.pretrained_spec` holds the preprocessing settings.

    Example:
        >>> model = build_pretrained("swin_tiny_patch4_window7_224.ms_in1k")
        >>> model.pretrained_spec.crop_pct
        0.875
    """
    from keras_swin.models.swin import SWIN_CONFIGS, SwinTransformer
    from keras_swin.models.vit import VIT_CONFIGS, VisionTransformer

    spec = get_weights_spec(name)
    size = spec.image_size
    args = dict(input_shape=(size, size, 3), classes=spec.classes)
    if spec.family == "swin":
        build = SwinTransformer
        args.update(SWIN_CONFIGS[spec.variant], window_size=spec.window_size)
    else:
        build = VisionTransformer
        args.update(
            VIT_CONFIGS[spec.variant],
            representation_size=spec.representation_size,
        )
    args.update(kwargs)
    return build(weights=spec.name, name=spec.name.split(".")[0], **args)
