"""Checkpoint readers and converters for keras-swin, without Keras.

`convert_checkpoint(path)` turns an official Swin `.pth`, an official ViT
`.npz`, a timm state dict or a Hugging Face `save_pretrained` folder into
a neutral `Checkpoint`: the family, the builder arguments, the arrays
under keras-swin's weight paths, notes and preprocessing. `readers` reads
`.pth`/`.bin` (without torch and without executing pickled code), `.npz`
and `.safetensors`; `formats` lists the source formats (one `Converter`
each); `resample` holds the interpolations. Building a Keras model from a
checkpoint is `keras_swin.load_checkpoint`; this package never imports
`keras_swin` and needs no Keras backend.

Names are imported on first use.

Example:
    >>> from weights_tools import convert_checkpoint
    >>> checkpoint = convert_checkpoint("swin_tiny_patch4_window7_224.pth")
    >>> checkpoint.format, checkpoint.config["embed_dim"]
    ('official_swin', 96)
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "Checkpoint": "weights_tools.convert",
    "convert_checkpoint": "weights_tools.convert",
    "checkpoint_config": "weights_tools.convert",
    "fit_checkpoint": "weights_tools.convert",
    "read_source": "weights_tools.convert",
    "Converter": "weights_tools.common",
    "FORMATS": "weights_tools.formats",
    "FORMAT_NAMES": "weights_tools.formats",
    "detect_format": "weights_tools.formats",
    "ConversionError": "weights_tools.common",
    "CheckpointError": "weights_tools.readers",
    "UnsafeCheckpointError": "weights_tools.readers",
    "read_checkpoint": "weights_tools.readers",
    "read_pth": "weights_tools.readers",
    "read_pth_extras": "weights_tools.readers",
    "read_checkpoint_extras": "weights_tools.readers",
    "as_backbone": "weights_tools.backbone",
    "read_npz": "weights_tools.readers",
    "read_safetensors": "weights_tools.readers",
}

__all__ = sorted(_EXPORTS)


#: Names that moved up to `keras_swin`, which builds the Keras models.
MOVED = {
    "load_checkpoint": "keras_swin.load_checkpoint",
    "load_weights_into": "keras_swin.SwinTransformer(weights=path) or "
    "keras_swin.weights.loading.load_into",
}


def __getattr__(name: str):
    if name in MOVED:
        raise AttributeError(
            f"weights_tools.{name} moved to {MOVED[name]}: weights_tools "
            "reads and converts checkpoints (convert_checkpoint) and no "
            "longer builds Keras models."
        )
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'weights_tools' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
