"""Pieces shared by the Swin and ViT builders (keras.applications style)."""

from __future__ import annotations

import os

import keras
import numpy as np

_POOLINGS = (None, "avg", "max")


def resolve_inputs(input_tensor, input_shape, default_size: int):
    """The model's input layer from `input_tensor` / `input_shape`.

    Args:
        input_tensor: optional Keras tensor (or any tensor) to build on.
        input_shape: optional (H, W, C) without the batch axis; None entries
            allowed where the architecture supports them.
        default_size: image side used when neither is given.

    Returns:
        (image_input, model_inputs): the tensor the network starts from
        and what `keras.Model` receives as inputs.
    """
    if input_shape is None:
        if input_tensor is not None and input_tensor.shape is not None:
            input_shape = tuple(input_tensor.shape[1:])
        else:
            input_shape = (default_size, default_size, 3)
    input_shape = tuple(input_shape)
    if len(input_shape) != 3:
        raise ValueError(
            "input_shape must be (height, width, channels) in channels-last "
            f"layout, got {input_shape}."
        )
    if input_shape[-1] is None:
        raise ValueError(
            f"The number of input channels must be known, got input_shape="
            f"{input_shape}."
        )
    if input_tensor is None:
        image = keras.Input(shape=input_shape, name="images")
        return image, image
    if not keras.backend.is_keras_tensor(input_tensor):
        image = keras.Input(tensor=input_tensor, shape=input_shape)
        return image, image
    return input_tensor, keras.utils.get_source_inputs(input_tensor)


def defer_size_check(model: keras.Model, image) -> None:
    """Leaves the check of the image size to the model's `patch_embed`.

    Keras checks a functional model's input against the full shape it was
    built with, and its message names only the two shapes. The builders'
    `PatchEmbed(input_size=...)` checks the same sizes and also says how to
    get a model for the new size; this keeps Keras' check of the rank and
    channels and lets that one speak for the size. Only for an input the
    builder made itself (not for a given `input_tensor` with layers before
    the model).

    Args:
        model: the built functional model.
        image: the tensor the network starts from.
    """
    if len(model.inputs) == 1 and model.inputs[0] is image:
        model.input_spec = keras.InputSpec(
            ndim=4, axes={-1: image.shape[-1]}, name=image.name
        )


def check_head_arguments(
    include_top: bool, pooling, classes: int, poolings=_POOLINGS
) -> None:
    """Validates the keras.applications head arguments.

    Args:
        include_top: whether the classifier is built.
        pooling: pooling of the headless model.
        classes: number of classes of the head.
        poolings: accepted values of `pooling`.
    """
    if pooling not in poolings:
        raise ValueError(f"pooling must be one of {poolings}, got {pooling!r}.")
    if include_top and (not isinstance(classes, int) or classes < 1):
        raise ValueError(
            f"classes must be a positive int with include_top=True, got "
            f"{classes!r}."
        )


#: Architecture keys that identify a registered variant.
_VARIANT_KEYS = {
    "swin": ("embed_dim", "depths", "num_heads"),
    "vit": ("patch_size", "hidden_size", "num_layers", "num_heads", "mlp_dim"),
}


def _variant_of(family: str, config: dict) -> str | None:
    if family == "swin":
        from keras_swin.models.swin import SWIN_CONFIGS as configs
    else:
        from keras_swin.models.vit import VIT_CONFIGS as configs
    for key, values in configs.items():
        if all(
            tuple(np.ravel(values[k])) == tuple(np.ravel(config[k]))
            for k in _VARIANT_KEYS[family]
        ):
            return key
    return None


def load_weights(
    model: keras.Model,
    weights,
    *,
    family: str | None = None,
    config: dict | None = None,
) -> None:
    """Loads `weights` into a freshly built model.

    Accepted: None (random init); a registered release name or alias
    ("imagenet", "imagenet22k", "swin_tiny_patch4_window7_224.ms_in1k",
    see `keras_swin.pretrained`), downloaded, converted and cached on
    first use and resampled to the model's size and window (after
    checking, before any download, that the release fits the
    architecture); a `.weights.h5` file written by this package (each
    layer's weights compared by path and shape, and the head counts the
    attention layers record); a `.keras` file of the same architecture
    (paths, shapes and head counts compared); an original checkpoint file
    or folder (official Swin `.pth`, official ViT `.npz`, timm, Hugging
    Face), converted strictly by `weights_tools`.

    Args:
        model: the built model.
        weights: None, a registry name or alias, or a path.
        family: "swin" or "vit" (needed for names).
        config: the builder's architecture arguments (needed for names).

    Raises:
        ValueError: `weights` is neither None, a known name nor an
            existing file or folder.

    Example:
        >>> load_weights(model, "imagenet", family="swin", config=config)
    """
    if weights is None:
        return
    path = os.fspath(weights) if isinstance(weights, os.PathLike) else weights
    if not isinstance(path, str):
        raise ValueError(
            f"weights must be None, a name or a path; got {weights!r}."
        )
    is_name = "/" not in path and os.sep not in path
    if not os.path.exists(path) and family is not None and is_name:
        from keras_swin.pretrained import load_pretrained_into, resolve_weights

        height, width = model.inputs[0].shape[1:3]
        try:
            spec = resolve_weights(
                path,
                family=family,
                variant=_variant_of(family, config),
                image_size=height if height == width else None,
                window_size=config.get("window_size"),
            )
        except ValueError as error:
            raise ValueError(
                f"{error} (No file or folder {path!r} exists either.)"
            ) from None
        load_pretrained_into(model, spec, config)
        return
    if not os.path.exists(path):
        raise ValueError(
            'weights must be None, a registered name or alias ("imagenet"'
            ', "imagenet22k", "swin_tiny_patch4_window7_224.ms_in1k",'
            " ...: keras_swin.pretrained.available_weights()), or the path "
            "of a local file or folder (.weights.h5, .keras, an official, "
            f"timm or Hugging Face checkpoint); got {weights!r}, which is "
            "none of these."
        )
    if path.endswith(".h5"):
        _check_weights_file(model, path)
        model.load_weights(path)
        return
    if path.endswith(".keras"):
        source = keras.saving.load_model(path, compile=False)
        _check_heads(source, model, path)
        copy_weights(source, model, source_name=path)
        return
    from weights_tools.convert import load_weights_into

    load_weights_into(model, path)


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


_VARIANT_DOC = """{summary}

    {notes} Other keyword arguments go to `{family}`.

    Args:
        include_top: add the pooling and the classifier.
        weights: None or a local file (see `{family}`).
        input_tensor: optional Keras tensor as image input.
        input_shape: (H, W, C); default (224, 224, 3).
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
