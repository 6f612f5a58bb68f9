"""ImageNet helpers: class names, decoding, preprocessing, image loading.

Everything works on every Keras backend. The label tables ship with the
package (`keras_swin/data/`, see its README), so nothing is downloaded.

- `class_names(label_set)`: the `(wnid, name)` of every output of an
  ImageNet-1K, ImageNet-22K (Swin, 21841) or ImageNet-21K (Google,
  21843) head.
- `map_22k_to_1k()`: the 22K head rows of the 1000 ImageNet-1K classes.
- `decode_predictions(preds)`: the top classes of a batch of scores,
  like `keras.applications.imagenet_utils.decode_predictions`.
- `preprocess_input(images)`: pixels in [0, 255] -> normalized float32.
- `load_image(path)`: the evaluation resize + center crop of timm, with
  bounded memory (`max_pixels`) and every Pillow mode converted.
- `id2label_names(id2label)`: a Hugging Face `id2label`, validated.
- `attach_preprocessing(model, ...)` / `model_preprocessing(model)`:
  the preprocessing a model carries into its `.keras` file (a
  `keras_swin.layers.PreprocessingInfo` layer), read back by
  `keras-swin predict`.

Example:
    >>> from keras_swin import SwinTiny
    >>> from keras_swin import imagenet
    >>> model = SwinTiny(weights="swin_tiny_patch4_window7_224.pth")
    >>> image = imagenet.load_image("cat.jpg", 224)
    >>> x = imagenet.preprocess_input(image[None], mode="torch")
    >>> imagenet.decode_predictions(model.predict(x), top=3)
    [[('n02123045', 'tabby', 11.2), ...]]
"""

from __future__ import annotations

import errno
import functools
import math
import os
import threading
import warnings
from collections.abc import Mapping, Sequence
from importlib import resources

import numpy as np

from weights_tools.heads import map_22k_to_1k as _stored_map_22k_to_1k

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
INCEPTION_MEAN = (0.5, 0.5, 0.5)
INCEPTION_STD = (0.5, 0.5, 0.5)

#: Number of classes of each label set.
LABEL_SETS = {
    "imagenet1k": 1000,
    "imagenet22k": 21841,
    "imagenet21k": 21843,
}

_LABEL_FILES = {
    "imagenet1k": "imagenet1k_classes.tsv",
    "imagenet22k": "imagenet22k_classes.tsv",
    "imagenet21k": "imagenet21k_goog_classes.tsv",
}

_MODES = {
    "torch": (IMAGENET_MEAN, IMAGENET_STD),
    "tf": (INCEPTION_MEAN, INCEPTION_STD),
}

_INTERPOLATIONS = ("bicubic", "bilinear", "nearest")


def _read_data(name: str) -> str:
    return (
        resources.files("keras_swin")
        .joinpath("data", name)
        .read_text(encoding="utf-8")
    )


def _canonical_label_set(label_set: str) -> str:
    key = str(label_set).lower().replace("-", "").replace("_", "")
    if key not in LABEL_SETS:
        raise ValueError(
            f"Unknown label_set {label_set!r}; choose one of "
            f"{sorted(LABEL_SETS)}."
        )
    return key


@functools.lru_cache(maxsize=8)
def _load_label_set(key: str) -> tuple[tuple[str, str], ...]:
    rows = []
    for line in _read_data(_LABEL_FILES[key]).splitlines():
        wnid, name = line.split("\t")
        rows.append((wnid, name))
    if len(rows) != LABEL_SETS[key]:
        raise RuntimeError(
            f"Corrupt label table {_LABEL_FILES[key]}: {len(rows)} rows, "
            f"expected {LABEL_SETS[key]}."
        )
    return tuple(rows)


def class_names(label_set: str = "imagenet1k") -> list[tuple[str, str]]:
    """The `(wnid, name)` of every output of an ImageNet head, in order.

    `name` is the first WordNet lemma of the class with spaces replaced
    by underscores (`keras.applications` style). Names are not unique
    (ImageNet-1K has two "crane" classes); the wnid is.

    Label sets:

    - `"imagenet1k"`: 1000 classes, the ImageNet-1K (ILSVRC-2012) order.
    - `"imagenet22k"`: 21841 classes, the order of the official Swin
      ImageNet-22K heads: Google's 21843-class order in which the two
      image-less classes (indices 9205 and 15027) are replaced by the
      last two classes, as the official Swin data loader does. Heads of
      other 21841-class models (sorted fall 2011 order) differ from
      index 9205 on; name those with `decode_predictions(...,
      class_names=...)`.
    - `"imagenet21k"`: 21843 classes, Google's ImageNet-21K order (BiT
      and the official ViT `imagenet21k` heads).

    `-` and `_` in `label_set` are ignored (`"imagenet-1k"` works).

    Args:
        label_set: `"imagenet1k"`, `"imagenet22k"` or `"imagenet21k"`.

    Returns:
        A new list of `LABEL_SETS[label_set]` `(wnid, name)` string
        pairs; entry `i` names output `i` of the head.

    Raises:
        ValueError: unknown `label_set`.

    Example:
        >>> names = class_names("imagenet1k")
        >>> len(names), names[0]
        (1000, ('n01440764', 'tench'))
    """
    return list(_load_label_set(_canonical_label_set(label_set)))


def _load_map_22k_to_1k() -> np.ndarray:
    return _stored_map_22k_to_1k()


def map_22k_to_1k() -> np.ndarray:
    """The ImageNet-22K head row of each ImageNet-1K class.

    Entry `i` is the index, in the `"imagenet22k"` order (21841 classes,
    see `class_names`), of ImageNet-1K class `i`. The values equal the
    official Swin repository's `data/map22kto1k.txt`, which its
    `load_pretrained` uses to turn a 22K head into a 1K head when a 22K
    checkpoint is fine-tuned on ImageNet-1K:
    `head_1k_kernel = head_22k_kernel[:, map_22k_to_1k()]`. Class 850
    (teddy bear) is no ImageNet-22K class; as in the official file it
    points at 5564, the 22K class "chemise, shimmy, shift, slip, teddy".
    All other entries hold the same wnid as the 1K class.

    Returns:
        A new int64 array of shape (1000,), values in [0, 21841).

    Example:
        >>> import keras
        >>> rows = map_22k_to_1k()
        >>> rows[:3]
        array([359, 368, 460])
        >>> logits_1k = keras.ops.take(logits_22k, rows, axis=-1)
    """
    return _load_map_22k_to_1k().copy()


def _to_numpy(x) -> np.ndarray:
    if isinstance(x, np.ndarray):
        return x
    if isinstance(x, (list, tuple)):
        return np.asarray(x)
    import keras

    return np.asarray(keras.ops.convert_to_numpy(x))


def _custom_names(names, num_classes: int) -> list[tuple[str, str]]:
    if isinstance(names, Mapping):
        # e.g. a Hugging Face `id2label`, keys int or numeric strings
        try:
            by_index = {int(k): v for k, v in names.items()}
        except (TypeError, ValueError) as e:
            raise ValueError(
                "class_names as a mapping needs integer (or integer "
                f"string) keys, like a Hugging Face id2label: {e}"
            ) from None
        missing = [i for i in range(num_classes) if i not in by_index]
        if missing or len(by_index) != num_classes:
            raise ValueError(
                f"class_names has {len(by_index)} entries but the "
                f"predictions have {num_classes} classes (the keys must "
                f"be 0..{num_classes - 1})."
            )
        names = [by_index[i] for i in range(num_classes)]
    elif isinstance(names, str) or not isinstance(names, Sequence):
        raise TypeError(
            "class_names must be a list of names, a list of (id, name) "
            f"pairs or an index -> name mapping, got {type(names).__name__}."
        )
    if len(names) != num_classes:
        raise ValueError(
            f"class_names has {len(names)} entries but the predictions "
            f"have {num_classes} classes."
        )
    rows = []
    for i, entry in enumerate(names):
        if isinstance(entry, str):
            rows.append((str(i), entry))
        elif isinstance(entry, Sequence) and len(entry) == 2:
            rows.append((str(entry[0]), str(entry[1])))
        else:
            raise TypeError(
                f"class_names[{i}] is {entry!r}; expected a name or an "
                "(id, name) pair."
            )
    return rows


def decode_predictions(
    preds,
    top: int = 5,
    label_set: str | None = None,
    *,
    class_names: Sequence | Mapping | None = None,
) -> list[list[tuple[str, str, float]]]:
    """The `top` best classes of each row of `preds`, best first.

    Like `keras.applications.imagenet_utils.decode_predictions`, for the
    1K, 22K and 21K heads of this library (and any other head with
    `class_names`). Scores are returned as they are (logits or
    probabilities, no softmax is applied); ties keep the lower index
    first.

    Args:
        preds: scores of shape (B, C): numpy array, nested list or
            backend tensor.
        top: how many classes per row (at most C are returned).
        label_set: `"imagenet1k"`, `"imagenet22k"` or `"imagenet21k"`
            (see `class_names()`). None infers it from C: 1000 ->
            imagenet1k, 21841 -> imagenet22k (the official Swin order),
            21843 -> imagenet21k (Google's order).
        class_names: names of the C outputs of any other head, instead
            of `label_set`: a list of C names (class ids are then the
            indices as strings), a list of C `(id, name)` pairs, or an
            index -> name mapping such as a Hugging Face
            `config.id2label`.

    Returns:
        One list per row of `top` `(class_id, name, score)` tuples,
        sorted by decreasing score; `class_id` is the wnid for the
        ImageNet label sets, `score` a Python float.

    Raises:
        ValueError: `preds` is not 2-D, C matches no label set and no
            `class_names` were given, C differs from the size of
            `label_set` or `class_names`, both `label_set` and
            `class_names` were given, or `top` < 1.

    Example:
        >>> import numpy as np
        >>> preds = np.zeros((2, 1000)); preds[:, 281] = 1.0
        >>> decode_predictions(preds, top=1)
        [[('n02123045', 'tabby', 1.0)], [('n02123045', 'tabby', 1.0)]]
        >>> decode_predictions(
        ...     np.array([[0.1, 0.9]]), class_names=["cat", "dog"]
        ... )
        [[('1', 'dog', 0.9), ('0', 'cat', 0.1)]]
    """
    scores = _to_numpy(preds)
    if scores.ndim != 2:
        raise ValueError(
            "decode_predictions expects scores of shape (batch, classes), "
            f"got shape {scores.shape}."
        )
    if isinstance(top, bool) or not isinstance(top, (int, np.integer)):
        raise TypeError(f"top must be an int, got {top!r}.")
    if top < 1:
        raise ValueError(f"top must be >= 1, got {top}.")
    num_classes = scores.shape[1]
    if class_names is not None:
        if label_set is not None:
            raise ValueError("Pass either label_set or class_names, not both.")
        names = _custom_names(class_names, num_classes)
    else:
        if label_set is None:
            by_size = {n: key for key, n in LABEL_SETS.items()}
            if num_classes not in by_size:
                sizes = ", ".join(
                    f"{n} ({key})" for key, n in LABEL_SETS.items()
                )
                raise ValueError(
                    f"Cannot infer the label set of predictions with "
                    f"{num_classes} classes; the supported sizes are "
                    f"{sizes}. Pass label_set=... or class_names=[...] "
                    f"(one name per class)."
                )
            key = by_size[num_classes]
        else:
            key = _canonical_label_set(label_set)
            if LABEL_SETS[key] != num_classes:
                raise ValueError(
                    f"label_set {label_set!r} has {LABEL_SETS[key]} "
                    f"classes but the predictions have {num_classes}."
                )
        names = _load_label_set(key)
    k = min(int(top), num_classes)
    # stable sort of the negated scores: best first, ties by lower index
    order = np.argsort(-scores, axis=-1, kind="stable")[:, :k]
    return [
        [(*names[j], float(row[j])) for j in idx]
        for row, idx in zip(scores, order, strict=True)
    ]


def _channel_constant(value, name: str) -> np.ndarray:
    array = np.asarray(value, dtype=np.float32)
    if array.ndim > 1:
        raise ValueError(
            f"{name} must be a number or one value per channel, got {value!r}."
        )
    return array


def _check_channels(shape, channels: int) -> None:
    try:
        dims = list(shape)  # fails for a tf.TensorShape of unknown rank
    except (TypeError, ValueError):
        return
    last = dims[-1] if dims else 0
    if last is not None and int(last) != channels:
        raise ValueError(
            f"images of shape {tuple(dims)} do not end with the "
            f"{channels} channels of mean/std."
        )


def preprocess_input(
    images,
    mean=IMAGENET_MEAN,
    std=IMAGENET_STD,
    *,
    scale: float = 1 / 255,
    mode: str | None = None,
):
    """Normalizes pixels: `(images * scale - mean) / std`, in float32.

    Built from `keras.ops`, so it runs on every backend, on numpy arrays
    and backend tensors alike, and symbolically (on a `keras.Input`,
    inside a functional model).

    The two conventions of the models of this library:

    - `mode="torch"`: `mean=IMAGENET_MEAN, std=IMAGENET_STD`, the
      official Swin (and timm's default) normalization;
    - `mode="tf"`: `mean=INCEPTION_MEAN, std=INCEPTION_STD` (0.5), i.e.
      pixels to [-1, 1], the official ViT normalization.

    `mode`, when given, overrides `mean` and `std`; `scale` applies in
    both cases.

    Args:
        images: pixels in [0, 255], shape (..., H, W, C) with C ==
            len(mean) (3 for RGB): numpy array, backend tensor or
            symbolic `KerasTensor`, any real dtype.
        mean: per-channel mean, on the `images * scale` scale; a number
            or a sequence of C numbers.
        std: per-channel standard deviation, like `mean`.
        scale: factor applied to `images` first (1/255 maps [0, 255] to
            [0, 1]).
        mode: None, `"torch"` or `"tf"` (see above).

    Returns:
        A float32 backend tensor (a `KerasTensor` for a symbolic input)
        of the shape of `images`.

    Raises:
        ValueError: unknown `mode`, malformed `mean`/`std`, or a known
            channel dimension that does not match them.

    Example:
        >>> import keras
        >>> x = preprocess_input(np.full((1, 2, 2, 3), 255.0), mode="tf")
        >>> keras.ops.convert_to_numpy(x)[0, 0, 0]
        array([1., 1., 1.], dtype=float32)
        >>> inputs = keras.Input((224, 224, 3))
        >>> outputs = model(preprocess_input(inputs, mode="torch"))
    """
    import keras

    if mode is not None:
        if mode not in _MODES:
            raise ValueError(
                f"Unknown mode {mode!r}; choose one of {sorted(_MODES)} "
                "or None."
            )
        mean, std = _MODES[mode]
    mean = _channel_constant(mean, "mean")
    std = _channel_constant(std, "std")
    if mean.ndim and std.ndim and mean.shape != std.shape:
        raise ValueError(
            f"mean and std have different lengths: {mean.size} and {std.size}."
        )
    if np.any(std == 0):
        raise ValueError(f"std must be non-zero, got {std.tolist()}.")
    channels = max(mean.size if mean.ndim else 1, std.size if std.ndim else 1)
    if mean.ndim or std.ndim:
        if not hasattr(images, "shape"):
            images = np.asarray(images)
        _check_channels(images.shape, channels)
    x = keras.ops.cast(images, "float32")
    x = keras.ops.multiply(x, np.float32(scale))
    x = keras.ops.subtract(x, mean)
    return keras.ops.divide(x, std)


def _image_size(image_size) -> tuple[int, int]:
    if isinstance(image_size, (int, np.integer)) and not isinstance(
        image_size, bool
    ):
        size = (int(image_size), int(image_size))
    elif (
        isinstance(image_size, Sequence)
        and len(image_size) == 2
        and all(
            isinstance(v, (int, np.integer)) and not isinstance(v, bool)
            for v in image_size
        )
    ):
        size = (int(image_size[0]), int(image_size[1]))
    else:
        raise ValueError(
            f"image_size must be an int or an (height, width) pair of "
            f"ints, got {image_size!r}."
        )
    if min(size) < 1:
        raise ValueError(f"image_size must be positive, got {image_size!r}.")
    return size


#: Default of `load_image(max_pixels=...)`: the most pixels of a decoded
#: image and of its resized copy (before the crop). Pillow's own warning
#: threshold (a quarter GiB at 3 bytes per pixel).
MAX_IMAGE_PIXELS = 89_478_485

#: Images with alpha are composited on this colour (see `load_image`).
ALPHA_BACKGROUND = (255, 255, 255)

_PIL_LIMIT_LOCK = threading.Lock()
_ROWS_PER_BLOCK = 1 << 20  # pixels converted per numpy block (bounds temps)


def _open_image(path: str):
    """Opens `path` lazily: Pillow reads the header, decodes nothing.

    Pillow's own bomb check (a module global) is switched off while the
    header is read, so that `load_image`'s `max_pixels` alone decides,
    in both directions.
    """
    from PIL import Image

    with _PIL_LIMIT_LOCK, warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        saved = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = None
        try:
            return Image.open(path)
        finally:
            Image.MAX_IMAGE_PIXELS = saved


def _scaled_to_uint8(image, scale: float, high: float) -> np.ndarray:
    """A one-channel image of any depth -> uint8, `clip(x, 0, high) / scale`
    rounded, converted a block of rows at a time."""
    values = np.asarray(image)
    out = np.empty(values.shape, np.uint8)
    rows = max(1, _ROWS_PER_BLOCK // max(1, values.shape[1]))
    for start in range(0, values.shape[0], rows):
        block = values[start : start + rows].astype(np.float64)
        np.clip(block, 0.0, high, out=block)
        out[start : start + rows] = np.rint(block / scale)
    return out


def _to_rgb(image):
    """A decoded Pillow image of any mode -> an RGB Pillow image."""
    from PIL import Image

    mode = image.mode
    if mode.startswith("I;16") or mode == "I":
        # 16-bit samples: 65535 -> 255 (v / 257), not clipped at 255.
        # Mode "I" (32-bit) is taken as 16-bit data, Pillow's mode for
        # some 16-bit files; values outside [0, 65535] are clipped.
        gray = _scaled_to_uint8(image, 257.0, 65535.0)
        return Image.fromarray(gray, mode="L").convert("RGB")
    if mode == "F":
        # float samples on the 0..255 scale, as Pillow's own conversion
        gray = _scaled_to_uint8(image, 1.0, 255.0)
        return Image.fromarray(gray, mode="L").convert("RGB")
    if mode in ("RGBA", "LA", "PA", "La", "RGBa") or (
        image.has_transparency_data
    ):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (*ALPHA_BACKGROUND, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")  # RGB, L, 1, P, CMYK, YCbCr, ...


def _resize_target(
    img_h: int, img_w: int, height: int, width: int, crop_pct: float
) -> tuple[int, int]:
    """(new_h, new_w) of timm's eval resize, computed without resizing."""
    scale_h = math.floor(height / crop_pct)
    scale_w = math.floor(width / crop_pct)
    if scale_h == scale_w:
        short, long = min(img_h, img_w), max(img_h, img_w)
        new_short, new_long = scale_h, int(scale_h * long / short)
        if img_w <= img_h:
            return new_long, new_short
        return new_short, new_long
    ratio = min(img_h / scale_h, img_w / scale_w)
    return round(img_h / ratio), round(img_w / ratio)


def load_image(
    path: str | os.PathLike,
    image_size=224,
    *,
    crop_pct: float = 0.875,
    interpolation: str = "bicubic",
    max_pixels: int = MAX_IMAGE_PIXELS,
) -> np.ndarray:
    """Reads an image with the evaluation resize and center crop of timm.

    The steps of timm's `transforms_imagenet_eval` (crop mode "center"),
    without normalization (use `preprocess_input`):

    1. open with Pillow and convert to 8-bit RGB (see below);
    2. scale size `floor(size / crop_pct)` per target side;
    3. square target: resize the short side to the scale size, the long
       side to `int(scale * long / short)` (torchvision `Resize(int)`);
       (h, w) target with different sides: resize by the smaller of
       `image_h / scale_h`, `image_w / scale_w`, rounding each side
       (timm `ResizeKeepRatio`);
    4. center crop to the target, offsets `int(round((side - size) /
       2))` (torchvision `CenterCrop`).

    `crop_pct=1.0` resizes the short side straight to the target size.
    Swin and ViT evaluate at `crop_pct=0.875` (224 -> resize to 256,
    crop 224) and 1.0 at 384.

    Modes other than 8-bit RGB are converted, never clipped:

    - 16-bit grayscale (`"I;16"`, `"I;16B"`, ...) is scaled to 8 bits,
      `round(v / 257)` (65535 -> 255); 32-bit `"I"` is taken as 16-bit
      data (clipped to [0, 65535] first);
    - `"F"` (float) is read on the 0..255 scale, clipped and rounded;
    - alpha (`"RGBA"`, `"LA"`, a palette or RGB/L image with a
      transparent colour) is composited on white
      (`ALPHA_BACKGROUND`), as a viewer shows the image on a page: the
      colour stored under transparent pixels is arbitrary (often black),
      and dropping the alpha channel would show it;
    - `"P"`, `"1"`, `"L"`, `"CMYK"`, `"YCbCr"` with Pillow's conversion
      (CMYK: `R = (255 - K) * (255 - C) / 255`).

    Bounded memory: the image size is read from the file header and a
    file of more than `max_pixels` pixels is refused before it is
    decoded. The resize target is computed before resizing and refused
    when it holds more than `max_pixels` pixels: resizing the short side
    of an image with an extreme aspect ratio (1x10000 -> 256x2560000)
    would otherwise allocate gigabytes for an image that is then cropped
    to 224x224. Crop such an image yourself first.

    Args:
        path: image file, any format Pillow reads.
        image_size: output size, an int (square) or an (height, width)
            pair.
        crop_pct: fraction of the resized image kept by the crop, in
            (0, 1].
        interpolation: Pillow filter of the resize: `"bicubic"`,
            `"bilinear"` or `"nearest"`.
        max_pixels: the most pixels of the decoded image and of its
            resized copy; default `MAX_IMAGE_PIXELS` (89,478,485).
            Raise it for trusted large files.

    Returns:
        float32 array of shape (height, width, 3), values in [0, 255].

    Raises:
        FileNotFoundError: `path` does not exist.
        ValueError: the file is not a readable image, it or its resized
            copy exceeds `max_pixels`, or a bad `image_size`,
            `crop_pct`, `interpolation` or `max_pixels`.

    Example:
        >>> image = load_image("cat.jpg", 224)  # resize to 256, crop
        >>> image.shape, image.dtype
        ((224, 224, 3), dtype('float32'))
        >>> batch = preprocess_input(image[None], mode="torch")
    """
    from PIL import Image, UnidentifiedImageError

    height, width = _image_size(image_size)
    crop_pct = float(crop_pct)
    if not 0.0 < crop_pct <= 1.0:
        raise ValueError(f"crop_pct must be in (0, 1], got {crop_pct}.")
    if interpolation not in _INTERPOLATIONS:
        raise ValueError(
            f"Unknown interpolation {interpolation!r}; choose one of "
            f"{list(_INTERPOLATIONS)}."
        )
    if (
        isinstance(max_pixels, bool)
        or not isinstance(max_pixels, (int, np.integer))
        or max_pixels < 1
    ):
        raise ValueError(
            f"max_pixels must be a positive int, got {max_pixels!r}."
        )
    resample = {
        "bicubic": Image.Resampling.BICUBIC,
        "bilinear": Image.Resampling.BILINEAR,
        "nearest": Image.Resampling.NEAREST,
    }[interpolation]

    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(errno.ENOENT, "No such image file", path)
    try:
        opened = _open_image(path)
    except Exception as e:  # Pillow raises many types on broken files
        kind = "not an image" if isinstance(e, UnidentifiedImageError) else e
        raise ValueError(f"Cannot read image file {path!r}: {kind}") from e
    with opened:
        img_w, img_h = opened.size
        if img_w * img_h > max_pixels:
            raise ValueError(
                f"Image {path!r} is {img_w}x{img_h} = {img_w * img_h:,} "
                f"pixels, more than the limit max_pixels={max_pixels:,}; "
                "it was not decoded. Pass a larger max_pixels if the file "
                "is trusted."
            )
        new_h, new_w = _resize_target(img_h, img_w, height, width, crop_pct)
        if new_h * new_w > max_pixels:
            raise ValueError(
                f"Image {path!r} is {img_w}x{img_h} (width x height); "
                f"the resize before the {width}x{height} crop would be "
                f"{new_w}x{new_h} = {new_h * new_w:,} pixels, more than "
                f"the limit max_pixels={max_pixels:,} (aspect ratio "
                f"{max(img_w, img_h) / min(img_w, img_h):.0f}:1). Crop "
                "the image to a less extreme aspect ratio first, or pass "
                "a larger max_pixels."
            )
        try:
            image = _to_rgb(opened)
        except Exception as e:  # broken data, or a mode with no RGB
            raise ValueError(
                f"Cannot read image file {path!r} (mode {opened.mode}): {e}"
            ) from e
    if (new_w, new_h) != (img_w, img_h):
        image = image.resize((new_w, new_h), resample=resample)
    if new_h < height or new_w < width:  # cannot happen for crop_pct <= 1
        raise ValueError(
            f"Resized {path!r} to {new_h}x{new_w}, smaller than the crop "
            f"{height}x{width}."
        )
    top = int(round((new_h - height) / 2.0))
    left = int(round((new_w - width) / 2.0))
    image = image.crop((left, top, left + width, top + height))
    return np.asarray(image, dtype=np.float32)


def id2label_names(id2label: Mapping, source: str = "id2label") -> list[str]:
    """The class names of a Hugging Face `id2label`, in output order.

    Args:
        id2label: index -> name mapping whose keys are exactly the
            strings `"0"` .. `"n-1"` (as in a `config.json`) or the ints
            0 .. n-1; names must be strings.
        source: what to call the mapping in error messages (e.g. the
            `config.json` path).

    Returns:
        n names, entry `i` the name of output `i`.

    Raises:
        ValueError: not a mapping, keys other than 0 .. n-1 (the bad and
            the missing keys are named), or a name that is not a string.

    Example:
        >>> id2label_names({"1": "dog", "0": "cat"})
        ['cat', 'dog']
    """
    if not isinstance(id2label, Mapping):
        raise ValueError(
            f"{source} must map class indices to names, got "
            f"{type(id2label).__name__}."
        )
    count = len(id2label)
    by_index = {}
    bad = []
    for key, name in id2label.items():
        if isinstance(key, str):
            # "0", "1", ...: no sign, spaces or leading zeros
            canonical = key.isascii() and key.isdigit()
            if not canonical or str(int(key)) != key:
                bad.append(key)
                continue
            index = int(key)
        elif isinstance(key, (int, np.integer)) and not isinstance(key, bool):
            index = int(key)
        else:
            bad.append(key)
            continue
        if not 0 <= index < count:
            bad.append(key)
            continue
        by_index[index] = name
    missing = [str(i) for i in range(count) if i not in by_index]
    if bad or missing:
        raise ValueError(
            f"{source} keys must be exactly the class indices "
            f"'0'..'{count - 1}' (one per class); unexpected keys: "
            f"{bad[:10]}, missing: {missing[:10]}."
        )
    not_str = [
        (i, by_index[i])
        for i in range(count)
        if not isinstance(by_index[i], str)
    ]
    if not_str:
        raise ValueError(
            f"{source} names must be strings; (index, value): {not_str[:5]}."
        )
    return [by_index[i] for i in range(count)]


_PREPROCESSING_LAYER = "preprocessing_info"


def attach_preprocessing(
    model,
    *,
    mean,
    std,
    crop_pct: float,
    interpolation: str,
    class_names=None,
):
    """The same model, carrying its preprocessing in a `PreprocessingInfo`.

    Returns a new functional model whose input first passes through a
    `keras_swin.layers.PreprocessingInfo` layer named
    `"preprocessing_info"` (an identity that stores the settings below),
    then through the very layers of `model`: same layer objects, names
    and weights (shared, not copied), same outputs. A `.keras` file saved
    from it keeps the settings, and `model_preprocessing` or
    `keras-swin predict IMAGE --weights model.keras` read them back.
    The model still takes normalized pixels, as `model` does; the layer
    records, it does not transform.

    A `PreprocessingInfo` that `model` already has is replaced; its
    record of the weights' source and loading notes is kept. The new
    model is not compiled (compile it again to train it further). Use
    `load_image(path, size, crop_pct=..., interpolation=...)` then
    `preprocess_input(x, mean, std)` to prepare an input.

    Args:
        model: a functional (or built Sequential) `keras.Model` with one
            input, e.g. (B, H, W, 3) -> logits (B, classes).
        mean: per-channel mean on the [0, 1] scale.
        std: per-channel standard deviation on the [0, 1] scale.
        crop_pct: center-crop fraction of `load_image`, in (0, 1].
        interpolation: `"bicubic"`, `"bilinear"` or `"nearest"`.
        class_names: one name per output class, or None (an ImageNet
            head named from its size, or a headless model).

    Returns:
        A `keras.Model` with `model`'s name, input shape and outputs.

    Raises:
        TypeError: `model` is a subclassed model (no layer graph).
        ValueError: more than one input, `class_names` whose length is
            not the model's class count, or settings that
            `PreprocessingInfo` refuses.

    Example:
        >>> model = keras_swin.SwinTiny(weights=None, classes=2)
        >>> model = attach_preprocessing(
        ...     model, mean=IMAGENET_MEAN, std=IMAGENET_STD,
        ...     crop_pct=0.875, interpolation="bicubic",
        ...     class_names=["cat", "dog"])
        >>> model.save("cats.keras")
        >>> model_preprocessing(keras.saving.load_model("cats.keras"))
        {'mean': (0.485, 0.456, 0.406), ..., 'class_names': ['cat', 'dog']}
    """
    import keras

    from keras_swin.layers.preprocessing_info import PreprocessingInfo

    try:
        inputs = model.inputs
    except (AttributeError, ValueError):
        inputs = None
    if not inputs:
        raise TypeError(
            f"attach_preprocessing needs a functional model with a layer "
            f"graph; {type(model).__name__} {model.name!r} has no inputs "
            "(a subclassed or unbuilt model)."
        )
    if len(inputs) != 1:
        raise ValueError(
            f"attach_preprocessing needs a model with one input; "
            f"{model.name!r} has {len(inputs)}."
        )
    if class_names is not None:
        classes = model.outputs[0].shape[-1]
        if len(model.outputs) != 1 or len(class_names) != classes:
            raise ValueError(
                f"class_names has {len(class_names)} entries but "
                f"{model.name!r} outputs {classes} classes."
            )
    # Where the weights came from, and what loading them changed, stay.
    old = next(
        (x for x in model.layers if isinstance(x, PreprocessingInfo)), None
    )
    info = PreprocessingInfo(
        mean=mean,
        std=std,
        crop_pct=crop_pct,
        interpolation=interpolation,
        class_names=class_names,
        source=None if old is None else old.source,
        notes=() if old is None else old.notes,
        name=_PREPROCESSING_LAYER,
    )
    (source,) = inputs
    new_input = keras.Input(
        batch_shape=source.shape, dtype=source.dtype, name=source.name
    )
    recorded = info(new_input)

    def call(layer, *args, **kwargs):
        if isinstance(layer, PreprocessingInfo):
            return args[0]  # replaced by the new one
        args, kwargs = keras.tree.map_structure(
            lambda x: recorded if x is new_input else x, (args, kwargs)
        )
        return layer(*args, **kwargs)

    # An uncompiled view over the same graph, so that cloning neither
    # compiles nor builds an optimizer.
    view = keras.Model(source, model.output, name=model.name)
    clone = keras.models.clone_model(
        view,
        input_tensors=new_input,
        clone_function=lambda layer: layer,
        call_function=call,
    )
    return keras.Model(new_input, clone.output, name=model.name)


def model_preprocessing(model) -> dict | None:
    """The preprocessing settings a model carries, or None.

    Reads the `PreprocessingInfo` layer that `attach_preprocessing` adds
    (also after `keras.saving.load_model`).

    Args:
        model: any `keras.Model`.

    Returns:
        dict with `mean`, `std` (tuples of floats), `crop_pct`,
        `interpolation` and `class_names` (list of str or None), or None
        when the model has no `PreprocessingInfo` layer.

    Example:
        >>> settings = model_preprocessing(keras.saving.load_model("m.keras"))
        >>> image = load_image("cat.jpg", 224, crop_pct=settings["crop_pct"],
        ...                    interpolation=settings["interpolation"])
        >>> x = preprocess_input(image[None], settings["mean"],
        ...                      settings["std"])
    """
    from keras_swin.layers.preprocessing_info import PreprocessingInfo

    for layer in getattr(model, "layers", ()):
        if isinstance(layer, PreprocessingInfo):
            return dict(
                mean=layer.mean,
                std=layer.std,
                crop_pct=layer.crop_pct,
                interpolation=layer.interpolation,
                class_names=(
                    None
                    if layer.class_names is None
                    else list(layer.class_names)
                ),
            )
    return None
