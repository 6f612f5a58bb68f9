"""Pieces shared by the Swin and ViT graph builders.

The graphs only: weights are loaded one floor up (`keras_swin.weights.loading`,
`keras_swin.applications`).
"""

from __future__ import annotations

import keras

from keras_swin.layers import PreprocessingInfo

#: Name of the `PreprocessingInfo` layer of a model made for weights.
PREPROCESSING_LAYER = "preprocessing_info"

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


_RECORDED = (
    "mean",
    "std",
    "crop_pct",
    "interpolation",
    "class_names",
    "source",
    "notes",
)


def recorded_preprocessing(model: keras.Model, default: dict | None):
    """The `preprocessing=` argument that rebuilds `model`'s record.

    Loading fills the `PreprocessingInfo` layer of a model built with
    `preprocessing=` (where the weights came from, the loading notes)
    after the model was made, so a subclassed model's `get_config` reads
    the layer, not the argument it was built with: a `.keras` round trip
    keeps the source and the notes.

    Args:
        model: a model built with `record_preprocessing`.
        default: the constructor's `preprocessing` argument.

    Returns:
        dict of `PreprocessingInfo` arguments, or `default` when the model
        has no such layer.

    Example:
        >>> recorded_preprocessing(model, None)["source"]
        'upernet_swin_tiny.pth'
    """
    for layer in model.layers:
        if isinstance(layer, PreprocessingInfo):
            config = layer.get_config()
            return {
                k: list(v) if isinstance(v, tuple) else v
                for k, v in config.items()
                if k in _RECORDED
            }
    return default


def record_preprocessing(image, preprocessing: dict | None):
    """`image`, passed through a `PreprocessingInfo` layer if asked.

    The builders' `preprocessing=` argument: a model made for weights
    records the evaluation transform of those weights (and, after
    loading, where they came from) inside its graph, so a `.keras` save
    keeps it. The layer is an identity.

    Args:
        image: the tensor the network starts from, (B, H, W, C).
        preprocessing: None, or the `PreprocessingInfo` arguments
            (`mean`, `std`, `crop_pct`, `interpolation`, optional
            `class_names`, `source`, `notes`).

    Returns:
        The tensor the patch embedding reads, (B, H, W, C).

    Example:
        >>> x = record_preprocessing(keras.Input((224, 224, 3)), dict(
        ...     mean=(0.5,) * 3, std=(0.5,) * 3, crop_pct=0.875,
        ...     interpolation="bicubic"))
    """
    if preprocessing is None:
        return image
    return PreprocessingInfo(**preprocessing, name=PREPROCESSING_LAYER)(image)
