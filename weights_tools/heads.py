"""Class maps between the ImageNet label spaces of the checkpoints."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources

import numpy as np

#: Classes of Microsoft's ImageNet-22K heads (the fall 2011 release).
IMAGENET_22K_CLASSES = 21841


@functools.lru_cache(maxsize=1)
def _stored() -> np.ndarray:
    text = (
        resources.files("weights_tools")
        .joinpath("data", "map22kto1k.txt")
        .read_text(encoding="utf-8")
    )
    values = np.array(text.split(), dtype=np.int64)
    if (
        values.shape != (1000,)
        or not ((values >= 0) & (values < IMAGENET_22K_CLASSES)).all()
    ):
        raise RuntimeError(
            "Corrupt weights_tools/data/map22kto1k.txt: expected 1000 "
            f"indices in [0, {IMAGENET_22K_CLASSES}), got {values.shape}."
        )
    values.setflags(write=False)
    return values


def map_22k_to_1k() -> np.ndarray:
    """The ImageNet-22K head row of each ImageNet-1K class.

    The official Swin `data/map22kto1k.txt`: entry `i` is the row of the
    21841-class head that becomes row `i` of a 1000-class head when a
    22K checkpoint is loaded for ImageNet-1K (`keras_swin.imagenet.
    map_22k_to_1k` documents the class tables it is checked against).

    Returns:
        A new int64 array of shape (1000,), values in [0, 21841).

    Example:
        >>> map_22k_to_1k()[:3]
        array([359, 368, 460])
    """
    return _stored().copy()


@dataclass(frozen=True)
class HeadMap:
    """A stored head that maps to another label space by row selection.

    Attributes:
        stored: classes of the checkpoint's head.
        classes: classes of the model's head it maps to.
        rows: () -> int array of shape (classes,): the stored row of each
            model class.
        description: how the note names the map.

    Example:
        >>> SWIN_22K_TO_1K.rows()[:3]
        array([359, 368, 460])
    """

    stored: int
    classes: int
    rows: Callable[[], np.ndarray]
    description: str


#: Microsoft's ImageNet-22K Swin heads to ImageNet-1K, as the official
#: `load_pretrained` does when a 22K checkpoint is fine-tuned on 1K.
SWIN_22K_TO_1K = HeadMap(
    stored=IMAGENET_22K_CLASSES,
    classes=1000,
    rows=map_22k_to_1k,
    description="the ImageNet-22K head ({stored} classes) was mapped to "
    "ImageNet-1K by selecting the 1000 rows of the official "
    "map22kto1k.txt",
)
