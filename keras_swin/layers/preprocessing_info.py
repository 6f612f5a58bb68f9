"""The preprocessing a model expects, carried inside the model."""

from __future__ import annotations

import math
from collections.abc import Sequence

import keras

from keras_swin.layers._serialization import ConfigFromArguments, register

#: Resize filters `keras_swin.imagenet.load_image` knows.
INTERPOLATIONS = ("bicubic", "bilinear", "nearest")


def _floats(value, name: str) -> tuple[float, ...]:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = (value,)
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise ValueError(
            f"PreprocessingInfo {name} must be a sequence of numbers (one "
            f"per channel), got {value!r}."
        )
    try:
        values = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(
            f"PreprocessingInfo {name} must hold numbers, got {value!r}."
        ) from None
    if not values or not all(math.isfinite(v) for v in values):
        raise ValueError(
            f"PreprocessingInfo {name} must hold finite numbers, got {value!r}."
        )
    return values


@register
class PreprocessingInfo(ConfigFromArguments, keras.layers.Layer):
    """Identity layer that records how the model's inputs are prepared.

    It holds no weights and returns its input unchanged (no dtype cast
    either: `autocast` is off); its only job is to carry, inside a saved
    `.keras` file, the settings of the evaluation transform the model was
    trained or converted with, so that `keras-swin predict` (and
    `keras_swin.imagenet.model_preprocessing`) can prepare an image the
    way the model expects:

    1. resize + center crop (`keras_swin.imagenet.load_image` with
       `crop_pct` and `interpolation`), pixels in [0, 255];
    2. normalize: `(pixels / 255 - mean) / std`
       (`keras_swin.imagenet.preprocess_input`);
    3. read output `i` as `class_names[i]`.

    The normalization is not applied by the layer: the model still takes
    normalized inputs, exactly as before it was attached (see
    `keras_swin.imagenet.attach_preprocessing`).

    Args:
        mean: per-channel mean on the [0, 1] scale, e.g.
            `(0.485, 0.456, 0.406)`.
        std: per-channel standard deviation, same length as `mean`, all
            non-zero.
        crop_pct: fraction of the resized image kept by the center crop,
            in (0, 1].
        interpolation: resize filter, `"bicubic"`, `"bilinear"` or
            `"nearest"`.
        class_names: one name per output of the head, or None (an
            ImageNet head, named from its size, or a headless model).
        source: where the model's weights came from (a registered
            release name or a checkpoint file), or None.
        notes: what loading those weights changed (resampled tables and
            embeddings, a mapped or replaced head), one sentence each.
            `source` and `notes` are set by the loaders (`record`) and
            saved with the model, so a `.keras` file keeps them.
        **kwargs: base `Layer` arguments (`name`, ...).

    Shapes:
        inputs: any tensor, e.g. (B, H, W, C) -> the same tensor.

    Raises:
        ValueError: `mean`/`std` of different lengths, a zero `std`,
            `crop_pct` outside (0, 1], an unknown `interpolation`, or
            `class_names` that are not strings.

    Example:
        >>> info = PreprocessingInfo(
        ...     mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), crop_pct=0.875,
        ...     interpolation="bicubic", class_names=["cat", "dog"])
        >>> x = keras.ops.ones((1, 4, 4, 3))
        >>> bool(keras.ops.all(info(x) == x))
        True
        >>> info.get_config()["class_names"]
        ['cat', 'dog']
    """

    def __init__(
        self,
        mean: Sequence[float],
        std: Sequence[float],
        crop_pct: float,
        interpolation: str,
        class_names: Sequence[str] | None = None,
        source: str | None = None,
        notes: Sequence[str] = (),
        **kwargs,
    ):
        kwargs.setdefault("autocast", False)
        super().__init__(**kwargs)
        self.mean = _floats(mean, "mean")
        self.std = _floats(std, "std")
        if len(self.mean) != len(self.std):
            raise ValueError(
                f"PreprocessingInfo mean and std have different lengths: "
                f"{list(self.mean)} and {list(self.std)}."
            )
        if any(v == 0.0 for v in self.std):
            raise ValueError(
                f"PreprocessingInfo std must be non-zero, got {list(self.std)}."
            )
        if isinstance(crop_pct, bool) or not isinstance(crop_pct, (int, float)):
            raise ValueError(
                f"PreprocessingInfo crop_pct must be a number in (0, 1], "
                f"got {crop_pct!r}."
            )
        self.crop_pct = float(crop_pct)
        if not 0.0 < self.crop_pct <= 1.0:
            raise ValueError(
                f"PreprocessingInfo crop_pct must be in (0, 1], got "
                f"{crop_pct!r}."
            )
        if interpolation not in INTERPOLATIONS:
            raise ValueError(
                f"PreprocessingInfo interpolation must be one of "
                f"{list(INTERPOLATIONS)}, got {interpolation!r}."
            )
        self.interpolation = interpolation
        if class_names is not None:
            if isinstance(class_names, str) or not isinstance(
                class_names, Sequence
            ):
                raise ValueError(
                    "PreprocessingInfo class_names must be a list of "
                    f"strings or None, got {type(class_names).__name__}."
                )
            bad = [
                (i, name)
                for i, name in enumerate(class_names)
                if not isinstance(name, str)
            ]
            if bad:
                raise ValueError(
                    "PreprocessingInfo class_names must be strings; not "
                    f"strings (index, value): {bad[:5]}."
                )
            class_names = list(class_names)
        self.class_names = class_names
        self.source = None
        self.notes = []
        self.record(source, notes)
        self.supports_masking = True
        self.built = True

    def record(self, source: str | None, notes: Sequence[str] = ()) -> None:
        """Records where the weights came from and what loading changed.

        Args:
            source: a release name or checkpoint path, or None.
            notes: one sentence per change, e.g. `"...: resampled [169, 3]
                -> [529, 3] (bicubic)"`.

        Raises:
            ValueError: `source` is not a string or None, or `notes` is
                not a list of strings.

        Example:
            >>> info = PreprocessingInfo((0.5,), (0.5,), 1.0, "bilinear")
            >>> info.record("ViT-B_16.npz", ["head replaced"])
            >>> info.get_config()["notes"]
            ['head replaced']
        """
        if source is not None and not isinstance(source, str):
            raise ValueError(
                f"PreprocessingInfo source must be a string or None, got "
                f"{type(source).__name__}."
            )
        if isinstance(notes, str) or not all(
            isinstance(note, str) for note in notes
        ):
            raise ValueError(
                f"PreprocessingInfo notes must be a list of strings, got "
                f"{notes!r:.80}."
            )
        self.source = source
        self.notes = list(notes)

    def call(self, inputs):
        return inputs

    def compute_output_shape(self, input_shape):
        return input_shape

    def compute_output_spec(self, inputs):
        return keras.KerasTensor(inputs.shape, dtype=inputs.dtype)
