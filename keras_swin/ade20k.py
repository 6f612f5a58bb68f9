"""ADE20K helpers: class names, palette, colour maps and label summaries.

numpy only: no Keras, no TensorFlow. The table ships with the package
(`keras_swin/data/ade20k_classes.tsv`, see its README), so nothing is
downloaded.

- `class_names()`: the 150 ADE20K (SceneParse150) classes, in the order
  of mmsegmentation's `ADE20KDataset`, i.e. the output order of the
  released Swin + UperNet segmenters (class 0 is "wall": the dataset's
  "other" label 0 is dropped by `reduce_zero_label`).
- `palette(num_classes=None)`: mmsegmentation's ADE20K colours, or a
  fixed pseudo-random palette for any other number of classes.
- `colorize(label_map)`: label maps -> RGB images.
- `overlay(image, label_map)`: a label map blended over its image.
- `decode_segmentation(label_map)`: per image, the classes present with
  their share of the pixels, largest first (a `decode_predictions` for
  label maps).
- `instance_category_map()`: the class of each category of the
  2017 instance annotations that tensorflow-datasets' `scene_parse150`
  holds (see `keras_swin.recipes.segmentation_data`).

Example:
    >>> import numpy as np
    >>> from keras_swin import ade20k
    >>> labels = np.array([[[0, 0, 2], [0, 2, 255]]])
    >>> ade20k.decode_segmentation(labels)
    [[(0, 'wall', 0.5), (2, 'sky', 0.3333333333333333)]]
    >>> ade20k.colorize(labels)[0, 0, 2].tolist()
    [6, 230, 230]
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from importlib import resources

import numpy as np

#: Number of ADE20K (SceneParse150) classes.
NUM_CLASSES = 150

#: The label that marks pixels without a class (mmsegmentation's default).
IGNORE_INDEX = 255

#: Seed of the generated palettes, mmsegmentation's (`np.random.seed(42)`
#: before drawing the colours of a dataset without a palette).
PALETTE_SEED = 42

_TABLE = "ade20k_classes.tsv"


@functools.lru_cache(maxsize=1)
def _table() -> tuple[tuple[str, ...], np.ndarray, np.ndarray]:
    text = (
        resources.files("keras_swin")
        .joinpath("data", _TABLE)
        .read_text(encoding="utf-8")
    )
    names, colours, instance_ids = [], [], []
    for number, line in enumerate(text.splitlines(), 1):
        fields = line.split("\t")
        if len(fields) != 5:
            raise RuntimeError(
                f"Corrupt table {_TABLE}, line {number}: {len(fields)} "
                "fields, expected 5 (name, r, g, b, instance id)."
            )
        names.append(fields[0])
        colours.append([int(v) for v in fields[1:4]])
        instance_ids.append(int(fields[4]))
    if len(names) != NUM_CLASSES:
        raise RuntimeError(
            f"Corrupt table {_TABLE}: {len(names)} rows, expected "
            f"{NUM_CLASSES}."
        )
    colours = np.asarray(colours, np.uint8)
    colours.setflags(write=False)
    instance_ids = np.asarray(instance_ids, np.int64)
    instance_ids.setflags(write=False)
    return tuple(names), colours, instance_ids


def class_names() -> list[str]:
    """The 150 ADE20K class names, in model-output order.

    The order and the names of mmsegmentation's `ADE20KDataset.CLASSES`
    (the dataset's own "objectInfo150" order with label 0, "other",
    removed), which the released Swin + UperNet checkpoints and the
    Hugging Face UperNet models share. mmsegmentation writes class 7 as
    `'bed '`; the trailing space is dropped here.

    Returns:
        A new list of 150 strings; entry `k` names label `k`.

    Example:
        >>> names = class_names()
        >>> len(names), names[:3]
        (150, ['wall', 'building', 'sky'])
    """
    return list(_table()[0])


def palette(num_classes: int | None = None) -> np.ndarray:
    """The colour of each class: (K, 3) uint8 RGB.

    For ADE20K (`num_classes` None or 150), mmsegmentation's
    `ADE20KDataset.PALETTE`: the colours of every published ADE20K
    figure. Two classes share a colour there (road and skyscraper,
    (140, 140, 140)); it is kept as published.

    For any other number of classes, the palette mmsegmentation draws for
    a dataset without one: `np.random.RandomState(42).randint(0, 255,
    size=(K, 3))`, the same colours on every call and every machine.

    Args:
        num_classes: K; None for ADE20K's 150.

    Returns:
        (K, 3) uint8 array, a new copy.

    Raises:
        ValueError: `num_classes` is not a positive integer.

    Example:
        >>> palette()[:2].tolist()
        [[120, 120, 120], [180, 120, 120]]
        >>> palette(4).shape
        (4, 3)
    """
    if num_classes is None or num_classes == NUM_CLASSES:
        return _table()[1].copy()
    if (
        isinstance(num_classes, bool)
        or not isinstance(num_classes, (int, np.integer))
        or num_classes < 1
    ):
        raise ValueError(
            f"num_classes must be a positive integer, got {num_classes!r}."
        )
    rng = np.random.RandomState(PALETTE_SEED)
    return rng.randint(0, 255, size=(int(num_classes), 3)).astype(np.uint8)


def instance_category_map() -> np.ndarray:
    """ADE20K class of each category id of the 2017 instance annotations.

    The Places Challenge 2017 instance masks (`annotations_instance/`,
    what tensorflow-datasets' `scene_parse150` stores) give each pixel a
    category id in their red channel: 1..100 for the 100 "thing"
    categories of `instanceInfo100_train.txt`, 0 for pixels of no
    instance (walls, floors, sky and other "stuff"). All 100 categories
    are ADE20K classes of the same name, in the same order.

    Returns:
        (256,) uint8 lookup table: entry `c` is the ADE20K class (0..149)
        of category `c`, or 255 (`IGNORE_INDEX`) for 0 and the ids that
        are no category.

    Example:
        >>> table = instance_category_map()
        >>> int(table[1]), class_names()[int(table[1])], int(table[0])
        (7, 'bed', 255)
    """
    table = np.full(256, IGNORE_INDEX, np.uint8)
    instance_ids = _table()[2]
    classes = np.flatnonzero(instance_ids)
    table[instance_ids[classes]] = classes
    return table


def _palette_array(palette_or_k) -> np.ndarray:
    if palette_or_k is None:
        colours = palette()
    elif isinstance(palette_or_k, (int, np.integer)) and not isinstance(
        palette_or_k, bool
    ):
        colours = palette(int(palette_or_k))
    else:
        colours = np.asarray(palette_or_k)
        if colours.ndim != 2 or colours.shape[1] != 3 or not len(colours):
            raise ValueError(
                f"palette must be a (K, 3) array of RGB colours, got shape "
                f"{colours.shape}."
            )
        if np.any(colours < 0) or np.any(colours > 255):
            raise ValueError("palette colours must lie in [0, 255].")
        colours = colours.astype(np.uint8)
    return colours


def _labels(label_map, what: str = "label_map") -> np.ndarray:
    labels = np.asarray(label_map)
    if labels.ndim < 2:
        raise ValueError(
            f"{what} must be (H, W) or (..., H, W), got shape {labels.shape}."
        )
    if not np.issubdtype(labels.dtype, np.integer):
        if labels.size and not np.all(np.mod(labels, 1) == 0):
            raise ValueError(
                f"{what} must hold integer class ids, got {labels.dtype} "
                "values with fractions (pass argmax(logits, -1), not "
                "logits)."
            )
        labels = labels.astype(np.int64)
    return labels


def colorize(
    label_map,
    palette=None,
    ignore_index: int | None = IGNORE_INDEX,
) -> np.ndarray:
    """Label maps -> RGB images: each class in its palette colour.

    Args:
        label_map: (..., H, W) integer class ids.
        palette: None (ADE20K's), an int K (`palette(K)`) or a (K, 3)
            array of RGB colours.
        ignore_index: label drawn black; None: no such label.

    Returns:
        (..., H, W, 3) uint8.

    Raises:
        ValueError: a label (other than `ignore_index`) is negative or has
            no colour in the palette.

    Example:
        >>> colorize(np.array([[0, 255]])).tolist()
        [[[120, 120, 120], [0, 0, 0]]]
    """
    labels = _labels(label_map)
    colours = _palette_array(palette)
    ignored = (
        labels == ignore_index
        if ignore_index is not None
        else np.zeros(labels.shape, bool)
    )
    kept = labels[~ignored]
    if kept.size and (kept.min() < 0 or kept.max() >= len(colours)):
        bad = kept[(kept < 0) | (kept >= len(colours))][0]
        raise ValueError(
            f"label {int(bad)} has no colour: the palette has "
            f"{len(colours)} (labels 0..{len(colours) - 1}, and "
            f"ignore_index={ignore_index})."
        )
    out = colours[np.where(ignored, 0, labels)]
    out[ignored] = 0
    return out


def overlay(
    image,
    label_map,
    alpha: float = 0.5,
    palette=None,
    ignore_index: int | None = IGNORE_INDEX,
) -> np.ndarray:
    """A label map's colours blended over its image.

    `(1 - alpha) * image + alpha * colour`, rounded to the nearest
    integer, as mmsegmentation's `show_result` with `opacity=alpha`;
    pixels labelled `ignore_index` keep the image's colour.

    Args:
        image: (..., H, W, 3) RGB in [0, 255] (uint8 or float).
        label_map: (..., H, W) integer class ids, the image's size.
        alpha: opacity of the colours, in [0, 1].
        palette: as for `colorize`.
        ignore_index: label left uncoloured; None: no such label.

    Returns:
        (..., H, W, 3) uint8.

    Raises:
        ValueError: shapes that differ, `alpha` outside [0, 1], or a label
            without a colour.

    Example:
        >>> image = np.full((1, 2, 3), 100, np.uint8)
        >>> overlay(image, np.array([[0, 255]])).tolist()
        [[[110, 110, 110], [100, 100, 100]]]
    """
    if not 0.0 <= float(alpha) <= 1.0:
        raise ValueError(f"alpha must lie in [0, 1], got {alpha}.")
    image = np.asarray(image)
    labels = _labels(label_map)
    if image.shape != labels.shape + (3,):
        raise ValueError(
            f"image {image.shape} must be (..., H, W, 3) with label_map's "
            f"(..., H, W) = {labels.shape}."
        )
    colours = colorize(labels, palette, ignore_index).astype(np.float64)
    pixels = image.astype(np.float64)
    blended = (1.0 - alpha) * pixels + alpha * colours
    if ignore_index is not None:
        blended = np.where((labels == ignore_index)[..., None], pixels, blended)
    return np.clip(np.rint(blended), 0, 255).astype(np.uint8)


def decode_segmentation(
    label_map,
    class_names: Sequence[str] | None = None,
    top: int | None = None,
    ignore_index: int | None = IGNORE_INDEX,
) -> list[list[tuple[int, str, float]]]:
    """The classes of each label map with their share of its pixels.

    A `decode_predictions` for segmentation: per image, the
    `(class_id, name, fraction)` of every class present, largest area
    first (ties: smaller id first). `fraction` is the class's pixel count
    over the image's H * W pixels; `ignore_index` pixels count in H * W
    but are not listed.

    Args:
        label_map: (B, H, W) integer class ids, or one (H, W) map (treated
            as B = 1). From logits: `argmax(logits, axis=-1)`.
        class_names: name of each class id; None: ADE20K's 150.
        top: keep the `top` largest classes per image; None: all.
        ignore_index: label not listed; None: no such label.

    Returns:
        A list of B lists of `(class_id, name, fraction)`.

    Raises:
        ValueError: a label (other than `ignore_index`) is negative or has
            no name, or `top` is not positive.

    Example:
        >>> decode_segmentation(np.array([[1, 1], [2, 255]]),
        ...                     class_names=["a", "b", "c"])
        [[(1, 'b', 0.5), (2, 'c', 0.25)]]
    """
    labels = _labels(label_map)
    if labels.ndim == 2:
        labels = labels[None]
    if labels.ndim != 3:
        raise ValueError(
            f"label_map must be (B, H, W) or (H, W), got shape {labels.shape}."
        )
    if top is not None and top < 1:
        raise ValueError(f"top must be a positive count or None, got {top}.")
    names = list(_table()[0] if class_names is None else class_names)
    results = []
    for image in labels:
        ids, counts = np.unique(image, return_counts=True)
        if ignore_index is not None:
            keep = ids != ignore_index
            ids, counts = ids[keep], counts[keep]
        if ids.size and (ids.min() < 0 or ids.max() >= len(names)):
            bad = ids[(ids < 0) | (ids >= len(names))][0]
            raise ValueError(
                f"label {int(bad)} has no name: {len(names)} class names "
                f"(labels 0..{len(names) - 1}, and "
                f"ignore_index={ignore_index}); pass class_names=."
            )
        order = np.lexsort((ids, -counts))[:top]
        total = image.size
        results.append(
            [
                (int(ids[i]), names[int(ids[i])], int(counts[i]) / total)
                for i in order
            ]
        )
    return results
