"""Checkpoint readers and converters for keras-swin.

`load_checkpoint(path)` turns an official Swin `.pth`, an official ViT
`.npz`, a timm state dict or a Hugging Face `save_pretrained` folder into
a Keras model, resampling for another input size or window; `readers`
reads `.pth`/`.bin` (without torch and without executing pickled code),
`.npz` and `.safetensors` files; `resample` holds the interpolations.

Names are imported on first use so that importing this package does not
import Keras (the command line picks the backend first).
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "load_checkpoint": "weights_tools.convert",
    "load_weights_into": "weights_tools.convert",
    "checkpoint_config": "weights_tools.convert",
    "read_source": "weights_tools.convert",
    "detect_format": "weights_tools.convert",
    "ConversionError": "weights_tools.common",
    "CheckpointError": "weights_tools.readers",
    "UnsafeCheckpointError": "weights_tools.readers",
    "read_checkpoint": "weights_tools.readers",
    "read_pth": "weights_tools.readers",
    "read_npz": "weights_tools.readers",
    "read_safetensors": "weights_tools.readers",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'weights_tools' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
