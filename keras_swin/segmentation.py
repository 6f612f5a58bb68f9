"""Semantic segmentation inference with mmsegmentation's test semantics.

`segment(model, images)` turns images into label maps the way the
released Swin + UperNet results were measured (mmsegmentation 0.x,
`EncoderDecoder.inference` / `aug_test` and the `MultiScaleFlipAug`
test pipeline of the `upernet_swin_*_512x512_160k_ade20k` configs):

1. each test view resizes the image with `Resize(keep_ratio=True)`:
   scale factor `min(long / max(h, w), short / min(h, w))` for the
   (long, short) bound `scale * ratio`, each side `int(side * f + 0.5)`,
   bilinear with half-pixel centres: a uint8 image exactly as
   `cv2.resize(INTER_LINEAR)` (what mmseg calls) resizes it, in OpenCV's
   fixed-point arithmetic, a float image in float32; `flip=True` adds
   the horizontally flipped view of each scale; the pixels are then
   normalised with the model's recorded mean and std;
2. the model runs on the whole resized image (`mode="whole"`, what the
   Swin configs use), or on `crop_size` windows every `stride` pixels
   whose logits are summed and divided by the number of windows that
   cover each pixel (`mode="slide"`; a window is clamped to the image,
   and an image smaller than the crop is one smaller window);
3. the logits are resized to the original image size (bilinear,
   `align_corners=False`), turned into probabilities by a softmax and,
   for a flipped view, flipped back;
4. the probabilities of all views are averaged and the label is their
   argmax.

`ADE20K_SCALE` and `ADE20K_RATIOS` are the single-scale and the
multi-scale (`--aug-test`: ratios 0.5 to 1.75 with flip) settings of the
paper's ADE20K numbers.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np

from keras_swin.imagenet import IMAGENET_MEAN, IMAGENET_STD, model_preprocessing

#: The inference modes of `segment`.
MODES = ("whole", "slide")

#: The (long, short) edge bound of the ADE20K test pipeline.
ADE20K_SCALE = (2048, 512)

#: The scale ratios of mmseg's multi-scale test (`tools/test.py
#: --aug-test`, used with `flip=True`).
ADE20K_RATIOS = (0.5, 0.75, 1.0, 1.25, 1.5, 1.75)

#: `progress=None` shows a progress bar from this many model inputs
#: (windows or whole images, over all views) on.
AUTO_PROGRESS_INPUTS = 50


def _pair(value, name: str) -> tuple[int, int]:
    """(a, b) positive ints from an int or a pair of ints."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        value = (value, value)
    if (
        isinstance(value, Sequence)
        and not isinstance(value, str)
        and len(value) == 2
        and all(
            isinstance(v, (int, np.integer)) and not isinstance(v, bool)
            for v in value
        )
        and min(value) >= 1
    ):
        return int(value[0]), int(value[1])
    raise ValueError(
        f"{name} must be a positive int or a pair of positive ints, "
        f"got {value!r}."
    )


def sliding_windows(
    height: int, width: int, crop_size=512, stride=341
) -> list[tuple[int, int, int, int]]:
    """The windows of mmseg's `slide_inference` on an image.

    `h_grids = max(height - crop_h + stride_h - 1, 0) // stride_h + 1`
    rows (likewise columns); window `(i, j)` ends at
    `min(i * stride_h + crop_h, height)` and starts `crop_h` before its
    end, but not before 0: the last row and column are moved back inside
    the image, and an image smaller than the crop is one window of its
    own size.

    Args:
        height: image height in pixels.
        width: image width in pixels.
        crop_size: window size, an int or (height, width).
        stride: step between windows, an int or (height, width); at most
            the crop size, so that every pixel is covered.

    Returns:
        `(y1, y2, x1, x2)` of each window, row by row: the window is
        `image[y1:y2, x1:x2]`.

    Raises:
        ValueError: a non-positive size, or a stride larger than the
            crop.

    Example:
        >>> sliding_windows(512, 683)
        [(0, 512, 0, 512), (0, 512, 171, 683)]
        >>> sliding_windows(40, 70, crop_size=32, stride=21)[:3]
        [(0, 32, 0, 32), (0, 32, 21, 53), (0, 32, 38, 70)]
    """
    crop_h, crop_w = _pair(crop_size, "crop_size")
    stride_h, stride_w = _pair(stride, "stride")
    if stride_h > crop_h or stride_w > crop_w:
        raise ValueError(
            f"stride {(stride_h, stride_w)} is larger than crop_size "
            f"{(crop_h, crop_w)}: the windows would leave pixels uncovered."
        )
    height, width = _pair((height, width), "the image size")
    rows = max(height - crop_h + stride_h - 1, 0) // stride_h + 1
    cols = max(width - crop_w + stride_w - 1, 0) // stride_w + 1
    windows = []
    for i in range(rows):
        for j in range(cols):
            y2 = min(i * stride_h + crop_h, height)
            x2 = min(j * stride_w + crop_w, width)
            windows.append((max(y2 - crop_h, 0), y2, max(x2 - crop_w, 0), x2))
    return windows


def rescaled_size(
    height: int,
    width: int,
    scale=ADE20K_SCALE,
    ratio: float | None = None,
    *,
    keep_ratio: bool = True,
) -> tuple[int, int]:
    """The (height, width) mmseg's test pipeline resizes an image to.

    `MultiScaleFlipAug` turns `scale` and a ratio into the target
    `(int(scale[0] * ratio), int(scale[1] * ratio))`, or without `scale`
    into `(int(width * ratio), int(height * ratio))`. With `keep_ratio`
    (`Resize(keep_ratio=True)`, mmcv's `rescale_size`) the image is
    scaled by `f = min(max(target) / max(h, w), min(target) / min(h,
    w))`, each side `int(side * f + 0.5)`: the target is a bound on the
    long and the short edge, in either order. Without `keep_ratio` the
    target is the exact `(width, height)`, mmcv's order.

    Args:
        height: image height.
        width: image width.
        scale: (long, short) edge bound, e.g. `ADE20K_SCALE`; or None for
            the image's own size.
        ratio: factor applied to `scale` (or to the image size); None is
            1 (and, without `scale`, no resize at all).
        keep_ratio: keep the aspect ratio (mmseg's test pipelines do).

    Returns:
        (new_height, new_width).

    Raises:
        ValueError: a bad scale or ratio, or a target under one pixel.

    Example:
        >>> rescaled_size(512, 683)  # an ADE20K image: no change
        (512, 683)
        >>> rescaled_size(512, 683, ratio=0.75)
        (384, 512)
        >>> rescaled_size(300, 400, (2048, 512))
        (512, 683)
    """
    if ratio is not None and not (
        isinstance(ratio, (int, float, np.integer, np.floating))
        and not isinstance(ratio, bool)
        and np.isfinite(ratio)
        and ratio > 0
    ):
        raise ValueError(f"scale ratios must be positive, got {ratio!r}.")
    if scale is None:
        if ratio is None:
            return int(height), int(width)
        target = (int(width * ratio), int(height * ratio))
    else:
        long_edge, short_edge = _pair(scale, "scale")
        factor = 1.0 if ratio is None else float(ratio)
        target = (int(long_edge * factor), int(short_edge * factor))
    if min(target) < 1:
        raise ValueError(
            f"the test scale {target} (ratio {ratio}) of a {height}x{width} "
            "image is under one pixel."
        )
    if not keep_ratio:
        return target[1], target[0]
    factor = min(
        max(target) / max(height, width), min(target) / min(height, width)
    )
    new_h, new_w = int(height * factor + 0.5), int(width * factor + 0.5)
    if min(new_h, new_w) < 1:
        raise ValueError(
            f"a {height}x{width} image rescaled to fit {target} would be "
            f"{new_h}x{new_w} pixels."
        )
    return new_h, new_w


def _axis_weights(in_size: int, out_size: int):
    """Rows mixed by a half-pixel linear resize, and the weight of the
    second (PyTorch `align_corners=False`)."""
    source = (np.arange(out_size) + 0.5) * (in_size / out_size) - 0.5
    source = np.maximum(source, 0.0)
    low = np.minimum(np.floor(source).astype(np.int64), in_size - 1)
    high = np.minimum(low + 1, in_size - 1)
    return low, high, (source - low).astype(np.float32)


def _resize(x: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of (..., H, W, C) float32 to (..., h, w, C), as
    `F.interpolate(mode="bilinear", align_corners=False)`."""
    axis = x.ndim - 3
    for along, out in ((axis, size[0]), (axis + 1, size[1])):
        if x.shape[along] == out:
            continue
        low, high, weight = _axis_weights(x.shape[along], out)
        shape = [1] * x.ndim
        shape[along] = out
        weight = weight.reshape(shape)
        below = np.take(x, low, axis=along)
        x = below + (np.take(x, high, axis=along) - below) * weight
    return x


#: cv2's fixed-point bilinear weights: multiples of 1/2048.
_COEF_BITS = 11


def _cv2_axis_weights(in_size: int, out_size: int, clamp: bool):
    """cv2 `INTER_LINEAR` for 8-bit images along one axis: the two
    source rows of each output row and their integer weights, computed
    as `cv::resize` does: the source offset in float32, each weight
    rounded to a multiple of 1/2048. Columns outside the image are
    clamped with weight (2048, 0) (`clamp`); rows keep their weights and
    read the edge row twice."""
    scale = 1.0 / (out_size / in_size)
    offset = ((np.arange(out_size) + 0.5) * scale - 0.5).astype(np.float32)
    low = np.floor(offset).astype(np.int64)
    frac = offset - low.astype(np.float32)
    if clamp:
        frac[(low < 0) | (low >= in_size - 1)] = 0.0
    one = np.float32(1 << _COEF_BITS)
    w_low = np.rint((np.float32(1.0) - frac) * one).astype(np.int64)
    w_high = np.rint(frac * one).astype(np.int64)
    high = np.clip(low + 1, 0, in_size - 1)
    return np.clip(low, 0, in_size - 1), high, w_low, w_high


def _resize_uint8(x: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(n, H, W, C) uint8 -> (n, h, w, C) float32 of integers 0..255:
    `cv2.resize(..., interpolation=cv2.INTER_LINEAR)` of an 8-bit image
    (what `mmcv.imrescale` calls), in cv2's own integer arithmetic: an
    exact horizontal pass with 11-bit weights, then the vectorised
    vertical pass (`VResizeLinearVec_32s8u`: rows shifted right by 4,
    high halves of 16-bit products, rounded shift by 2). Equal to
    OpenCV 5.0's result bit for bit on the cases we checked; another
    build may differ by one grey level on some pixels."""
    if x.shape[1:3] == tuple(size):
        return x.astype(np.float32)
    rows0, rows1, b0, b1 = _cv2_axis_weights(x.shape[1], size[0], False)
    cols0, cols1, a0, a1 = _cv2_axis_weights(x.shape[2], size[1], True)
    x = x.astype(np.int64)
    a0, a1 = a0[:, None], a1[:, None]
    across = (x[:, :, cols0] * a0 + x[:, :, cols1] * a1) >> 4  # (n, H, w, C)
    b0, b1 = b0[:, None, None], b1[:, None, None]
    total = ((across[:, rows0] * b0) >> 16) + ((across[:, rows1] * b1) >> 16)
    return np.clip((total + 2) >> 2, 0, 255).astype(np.float32)


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def _as_image_list(images) -> tuple[list[np.ndarray], str]:
    """(list of (H, W, C) arrays, "batch" | "list" | "single")."""
    if isinstance(images, (list, tuple)):
        if not images:
            raise ValueError("images is an empty list.")
        arrays, kind = [np.asarray(image) for image in images], "list"
        bad = [i for i, a in enumerate(arrays) if a.ndim != 3]
        if bad:
            raise ValueError(
                f"a list of images must hold (H, W, 3) arrays; entry "
                f"{bad[0]} has shape {arrays[bad[0]].shape}."
            )
    else:
        if not isinstance(images, np.ndarray):
            images = keras.ops.convert_to_numpy(images)
        if images.ndim == 4:
            if not len(images):
                raise ValueError("images is an empty batch.")
            arrays, kind = list(images), "batch"
        elif images.ndim == 3:
            arrays, kind = [images], "single"
        else:
            raise ValueError(
                f"images must be a batch (B, H, W, 3), one image (H, W, 3) "
                f"or a list of (H, W, 3) arrays; got shape {images.shape}."
            )
    for i, array in enumerate(arrays):
        if (
            not np.issubdtype(array.dtype, np.number)
            or np.iscomplexobj(array)
            or array.dtype == np.bool_
        ):
            raise ValueError(
                f"image {i} has dtype {array.dtype}; expected pixels as "
                "uint8 or float numbers."
            )
        if min(array.shape[:2]) < 1:
            raise ValueError(f"image {i} is empty: shape {array.shape}.")
    return arrays, kind


def _input_spec(model) -> tuple | None:
    """(H, W, C) the model was built for (None where any), or None."""
    try:
        inputs = model.inputs
    except (AttributeError, ValueError):
        return None
    if not inputs or len(inputs) != 1:
        return None
    shape = tuple(inputs[0].shape)
    return shape[1:] if len(shape) == 4 else None


def _normalization(model, preprocess: bool):
    if not preprocess:
        return None
    settings = model_preprocessing(model)
    if settings is None:
        mean, std = IMAGENET_MEAN, IMAGENET_STD
    else:
        mean, std = settings["mean"], settings["std"]
    mean = np.asarray(mean, np.float32) * np.float32(255)
    std = np.asarray(std, np.float32) * np.float32(255)
    return mean, std


class _Runner:
    """Calls the model on batches of equally sized inputs."""

    def __init__(self, model, spec, progress_bar):
        self.model = model
        self.spec = spec
        self.bar = progress_bar
        self.done = 0

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        size = batch.shape[1:3]
        if self.spec is not None:
            fixed = [
                (d, s) for d, s in zip(self.spec[:2], size, strict=True) if d
            ]
            if any(d != s for d, s in fixed):
                raise ValueError(
                    f"the model is built for {self.spec[0]}x{self.spec[1]} "
                    f"inputs, but segment needs {size[0]}x{size[1]} ones: "
                    "build it for any size (input_shape=(None, None, 3)), "
                    "or use mode='slide' with crop_size equal to its size "
                    "on images at least that large."
                )
        if hasattr(self.model, "predict_on_batch"):
            output = self.model.predict_on_batch(batch)
        elif isinstance(self.model, keras.layers.Layer):
            output = self.model(batch, training=False)
        else:
            output = self.model(batch)
        if isinstance(output, dict):
            if "logits" not in output:
                raise ValueError(
                    "the model returns a dict without 'logits' (keys: "
                    f"{sorted(output)}); segment reads output['logits']."
                )
            output = output["logits"]
        if isinstance(output, (list, tuple)):
            raise ValueError(
                "the model returns several outputs; segment needs one "
                "(B, H, W, classes) tensor or a dict with 'logits'."
            )
        logits = np.asarray(keras.ops.convert_to_numpy(output), np.float32)
        if logits.ndim != 4 or len(logits) != len(batch):
            raise ValueError(
                f"the model returned shape {logits.shape} for inputs of "
                f"shape {batch.shape}; segment needs (B, H, W, classes) "
                "logits."
            )
        # mmseg's encode_decode: logits at another size are resized to
        # the input's.
        logits = _resize(logits, size)
        self.done += len(batch)
        if self.bar is not None:
            self.bar.update(self.done)
        return logits


def _views(scale, scales, flip: bool) -> list[tuple[float | None, bool]]:
    if scales is None:
        ratios = [None]
    elif isinstance(scales, (int, float, np.integer, np.floating)):
        ratios = [scales]
    else:
        ratios = list(scales)
        if not ratios:
            raise ValueError("scales is empty; give None or some ratios.")
    flips = (False, True) if flip else (False,)
    return [(ratio, flipped) for ratio in ratios for flipped in flips]


def _chunks(arrays: list[np.ndarray], size: int) -> list[range]:
    """Runs of at most `size` consecutive images of one shape."""
    chunks, start = [], 0
    for i in range(1, len(arrays) + 1):
        if (
            i == len(arrays)
            or i - start == size
            or arrays[i].shape != arrays[start].shape
        ):
            chunks.append(range(start, i))
            start = i
    return chunks


def segment(
    model,
    images,
    *,
    mode: str = "whole",
    crop_size=512,
    stride=341,
    scale=ADE20K_SCALE,
    scales=None,
    flip: bool = False,
    keep_ratio: bool = True,
    preprocess: bool = True,
    batch_size: int = 4,
    return_probabilities: bool = False,
    progress: bool | None = None,
):
    """Label maps of images, with mmsegmentation's test-time semantics.

    Each image is resized to each test scale (`rescaled_size`), also
    flipped when `flip`, run through `model` whole or in sliding windows
    (`sliding_windows`), its logits resized back to the image's own
    size, turned into probabilities by a softmax (a flipped view flipped
    back), averaged over the views; the label is their argmax. See the
    module docstring for each step; it is mmseg 0.x's
    `EncoderDecoder.aug_test` (`simple_test` for one view).

    The defaults are the single-scale test of the released Swin +
    UperNet ADE20K models (whole image, long edge at most 2048, short at
    most 512); `scales=ADE20K_RATIOS, flip=True` is their multi-scale +
    flip test, and `mode="slide"` the 512/341 sliding window of other
    mmseg configs.

    Args:
        model: a Keras model (or any callable) taking (B, H, W, C)
            normalised float32 images and returning (B, H, W, K) logits,
            or a dict whose `"logits"` entry they are (other entries, such
            as `"auxiliary_logits"`, are ignored). Logits at another size
            are resized to the input's. Keras models are called with
            `predict_on_batch` (compiled; inputs of one size reuse it).
        images: pixels in [0, 255], RGB: a batch (B, H, W, 3), one image
            (H, W, 3) or a list of (H, W, 3) arrays of any sizes; uint8
            or float. With `preprocess=False`, already normalised float
            images.
        mode: `"whole"` (one call per image and view) or `"slide"`.
        crop_size: slide window, an int or (height, width).
        stride: slide step, an int or (height, width), at most the crop.
        scale: (long, short) edge bound of the test resize, or None to
            test at the image's own size (times `scales`).
        scales: ratios applied to `scale` (or the image size), one view
            each, e.g. `ADE20K_RATIOS`; None is one view at `scale`.
        flip: also test the horizontal flip of every scale.
        keep_ratio: keep the aspect ratio when resizing (mmseg's test
            `Resize(keep_ratio=True)`); False resizes to exactly
            `scale * ratio` read as (width, height), mmcv's order.
        preprocess: normalise `(x / 255 - mean) / std` with the mean and
            std the model records (`keras_swin.imagenet.
            model_preprocessing`), else ImageNet's, after resizing as
            mmseg does; False feeds the images as they are.
        batch_size: most model inputs (windows, or images of one size)
            per call, and most images whose probabilities are held at
            once.
        return_probabilities: also return the averaged probabilities.
        progress: show a `keras.utils.Progbar` over the model inputs;
            None shows it from `AUTO_PROGRESS_INPUTS` inputs on.

    Returns:
        int32 label maps at each image's own size: (B, H, W) for a batch,
        (H, W) for one image, a list of (H_i, W_i) for a list. With
        `return_probabilities`, a pair `(labels, probabilities)`, the
        probabilities float32 (..., H, W, K) in the same form.

    Raises:
        ValueError: a bad argument, an image that is not (H, W, 3)
            numbers, a model built for another input size, or a model
            output that is not (B, H, W, K) logits.

    Example:
        >>> model = keras_swin.SwinUperNet(num_classes=3, embed_dim=8,
        ...     depths=(1, 1, 1, 1), num_heads=(1, 1, 1, 1), window_size=4,
        ...     channels=8, auxiliary_channels=None)
        >>> images = np.zeros((2, 40, 70, 3), np.uint8)
        >>> segment(model, images, scale=None).shape
        (2, 40, 70)
        >>> labels, probabilities = segment(
        ...     model, images, mode="slide", crop_size=32, stride=21,
        ...     scale=None, scales=(0.75, 1.25), flip=True,
        ...     return_probabilities=True)
        >>> probabilities.shape
        (2, 40, 70, 3)
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}.")
    if mode == "slide":
        sliding_windows(1, 1, crop_size, stride)  # checks both
    if scale is not None:
        _pair(scale, "scale")
    if (
        isinstance(batch_size, bool)
        or not isinstance(batch_size, (int, np.integer))
        or batch_size < 1
    ):
        raise ValueError(
            f"batch_size must be a positive int, got {batch_size!r}."
        )
    views = _views(scale, scales, flip)
    arrays, kind = _as_image_list(images)
    sizes = [
        [
            rescaled_size(*a.shape[:2], scale, ratio, keep_ratio=keep_ratio)
            for ratio, _ in views
        ]
        for a in arrays
    ]
    spec = _input_spec(model)
    normalization = _normalization(model, preprocess)
    channels = {a.shape[-1] for a in arrays}
    expected = 3 if preprocess else (spec[2] if spec else None)
    if expected is not None and channels != {expected}:
        raise ValueError(
            f"images have {sorted(channels)} channels; expected {expected}"
            + (" (RGB, for the mean/std)." if preprocess else ".")
        )
    total = sum(
        len(sliding_windows(h, w, crop_size, stride)) if mode == "slide" else 1
        for per_image in sizes
        for h, w in per_image
    )
    if progress is None:
        progress = total >= AUTO_PROGRESS_INPUTS
    bar = (
        keras.utils.Progbar(
            total, unit_name="window" if mode == "slide" else "image"
        )
        if progress
        else None
    )
    run = _Runner(model, spec, bar)

    labels, probabilities = [], []
    for chunk in _chunks(arrays, batch_size):
        height, width = arrays[chunk[0]].shape[:2]
        pixels = np.stack([arrays[i] for i in chunk])
        if pixels.dtype != np.uint8:
            pixels = pixels.astype(np.float32)
        summed = None
        for view, (_, flipped) in enumerate(views):
            new_h, new_w = sizes[chunk[0]][view]
            if pixels.dtype == np.uint8:  # cv2 resizes uint8 to uint8
                x = _resize_uint8(pixels, (new_h, new_w))
            else:
                x = _resize(pixels, (new_h, new_w))
            if flipped:
                x = x[:, :, ::-1]
            if normalization is not None:
                x = (x - normalization[0]) / normalization[1]
            x = np.ascontiguousarray(x, dtype=np.float32)
            if mode == "whole":
                logits = run(x)
            else:
                logits = _slide(run, x, crop_size, stride, batch_size)
            logits = _resize(logits, (height, width))
            scores = _softmax(logits)
            if flipped:
                scores = scores[:, :, ::-1]
            summed = scores if summed is None else summed + scores
        summed /= np.float32(len(views))
        for index in range(len(chunk)):
            labels.append(summed[index].argmax(axis=-1).astype(np.int32))
            if return_probabilities:
                probabilities.append(summed[index])

    def pack(maps):
        if kind == "batch":
            return np.stack(maps)
        return maps[0] if kind == "single" else maps

    if return_probabilities:
        return pack(labels), pack(probabilities)
    return pack(labels)


def _slide(run, x: np.ndarray, crop_size, stride, batch_size: int):
    """Summed window logits / window count, (n, H, W, K) of (n, H, W, C)."""
    n, height, width = x.shape[:3]
    windows = sliding_windows(height, width, crop_size, stride)
    tiles = [(i, w) for i in range(n) for w in windows]
    total = count = None
    for start in range(0, len(tiles), batch_size):
        part = tiles[start : start + batch_size]
        batch = np.stack([x[i, y1:y2, x1:x2] for i, (y1, y2, x1, x2) in part])
        logits = run(batch)
        if total is None:
            total = np.zeros((n, height, width, logits.shape[-1]), np.float32)
            count = np.zeros((1, height, width, 1), np.float32)
        for (i, (y1, y2, x1, x2)), tile in zip(part, logits, strict=True):
            total[i, y1:y2, x1:x2] += tile
    for y1, y2, x1, x2 in windows:
        count[0, y1:y2, x1:x2] += 1
    return total / count
