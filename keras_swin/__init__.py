"""keras-swin: Swin Transformer and Vision Transformer for Keras 3.

Backend-agnostic layers (`keras_swin.layers`), `keras.applications`-style
builders (`SwinTiny()`, `ViTBase16()`, ...), the papers' training recipes
(`keras_swin.recipes`) and, in the sibling package `weights_tools`, strict
converters of the official checkpoints.

The public names are imported on first use, so that the command line can
choose the Keras backend (`keras-swin --backend jax ...`) before Keras is
imported. The package's layers still register with Keras on
`import keras_swin` alone, so `keras.saving.load_model("model.keras")`
finds them: at once if Keras is already imported, otherwise right after
Keras' own import finishes (`_register_after_keras`).
"""

from __future__ import annotations

import importlib
import importlib.abc
import sys
import warnings

__version__ = "0.1.0"

_EXPORTS = {
    "SWIN_CONFIGS": "keras_swin.models.swin",
    "SwinBase": "keras_swin.models.swin",
    "SwinLarge": "keras_swin.models.swin",
    "SwinSmall": "keras_swin.models.swin",
    "SwinTiny": "keras_swin.models.swin",
    "SwinTransformer": "keras_swin.models.swin",
    "VIT_CONFIGS": "keras_swin.models.vit",
    "ViTBase16": "keras_swin.models.vit",
    "ViTBase32": "keras_swin.models.vit",
    "ViTHuge14": "keras_swin.models.vit",
    "ViTLarge16": "keras_swin.models.vit",
    "ViTLarge32": "keras_swin.models.vit",
    "ViTSmall16": "keras_swin.models.vit",
    "ViTTiny16": "keras_swin.models.vit",
    "VisionTransformer": "keras_swin.models.vit",
    "swin_feature_model": "keras_swin.models.swin",
    "load_checkpoint": "weights_tools.convert",
    "preprocess_input": "keras_swin.imagenet",
    "decode_predictions": "keras_swin.imagenet",
    "load_image": "keras_swin.imagenet",
    "available_weights": "keras_swin.pretrained",
    "build_pretrained": "keras_swin.pretrained",
}

__all__ = sorted(_EXPORTS) + ["__version__", "layers", "models", "recipes"]


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    if name in ("layers", "models", "recipes"):
        return importlib.import_module(f"keras_swin.{name}")
    raise AttributeError(f"module 'keras_swin' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))


def _register_layers() -> None:
    """Imports `keras_swin.layers`, which registers every layer with Keras."""
    try:
        importlib.import_module("keras_swin.layers")
    except Exception as error:  # never break the user's `import keras`
        warnings.warn(
            f"keras_swin could not register its layers with Keras "
            f"({type(error).__name__}: {error}); import keras_swin.layers "
            "before loading a .keras file of this package.",
            stacklevel=2,
        )


class _LoaderThenRegister(importlib.abc.Loader):
    """Runs Keras' own loader, then registers this package's layers."""

    def __init__(self, loader):
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        self._loader.exec_module(module)
        # Back to Keras' own loader before anything else looks at it.
        module.__loader__ = module.__spec__.loader = self._loader
        _remove_hook()
        _register_layers()

    def __getattr__(self, name):
        return getattr(self._loader, name)


class _RegisterAfterKeras(importlib.abc.MetaPathFinder):
    """Import hook: register the layers once `keras` has been imported.

    Importing Keras here would fix its backend before the command line
    could choose one, and costs seconds; so the hook waits for whoever
    imports Keras first, then removes itself.
    """

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "keras":
            return None
        # The hook stays until Keras is executed: a mere look-up
        # (importlib.util.find_spec("keras")) must not disarm it.
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None)
            if finder is self or find is None:
                continue
            spec = find(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        if spec.loader is None:
            return spec
        spec.loader = _LoaderThenRegister(spec.loader)
        return spec


_HOOK = _RegisterAfterKeras()


def _remove_hook() -> None:
    if _HOOK in sys.meta_path:
        sys.meta_path.remove(_HOOK)


def _register_after_keras() -> None:
    if "keras" in sys.modules:
        _register_layers()
    elif _HOOK not in sys.meta_path:
        sys.meta_path.insert(0, _HOOK)


_register_after_keras()
