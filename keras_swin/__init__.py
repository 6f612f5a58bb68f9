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
import sys
import warnings

from keras_swin._import_hooks import FirstImportHook, lazy_exports

__version__ = "0.1.0"

_EXPORTS = {
    "SWIN_CONFIGS": "keras_swin.models.swin",
    "SwinBase": "keras_swin.applications",
    "SwinLarge": "keras_swin.applications",
    "SwinSmall": "keras_swin.applications",
    "SwinTiny": "keras_swin.applications",
    "SwinTransformer": "keras_swin.applications",
    "SwinTransformerV2": "keras_swin.applications",
    "SwinV2Base": "keras_swin.applications",
    "SwinV2Large": "keras_swin.applications",
    "SwinV2Small": "keras_swin.applications",
    "SwinV2Tiny": "keras_swin.applications",
    "SWINV2_CONFIGS": "keras_swin.models.swin_v2",
    "SwinBackbone": "keras_swin.models.swin_backbone",
    "SwinBackboneV2": "keras_swin.models.swin_backbone_v2",
    "SwinUperNet": "keras_swin.applications",
    "UperNet": "keras_swin.models.upernet",
    "UPERNET_CONFIGS": "keras_swin.models.upernet",
    "VIT_CONFIGS": "keras_swin.models.vit",
    "ViTBase16": "keras_swin.applications",
    "ViTBase32": "keras_swin.applications",
    "ViTHuge14": "keras_swin.applications",
    "ViTLarge16": "keras_swin.applications",
    "ViTLarge32": "keras_swin.applications",
    "ViTSmall16": "keras_swin.applications",
    "ViTTiny16": "keras_swin.applications",
    "VisionTransformer": "keras_swin.applications",
    "swin_feature_model": "keras_swin.models.swin",
    "vit_feature_model": "keras_swin.models.vit",
    "load_checkpoint": "keras_swin.applications",
    "load_backbone": "keras_swin.applications",
    "checkpoint_notes": "keras_swin.weights.loading",
    "weights_source": "keras_swin.weights.loading",
    "preprocess_input": "keras_swin.imagenet",
    "decode_predictions": "keras_swin.imagenet",
    "load_image": "keras_swin.imagenet",
    "available_weights": "keras_swin.weights.pretrained",
    "build_pretrained": "keras_swin.applications",
    "segment": "keras_swin.segmentation",
}

__all__ = sorted(_EXPORTS) + [
    "__version__",
    "ade20k",
    "layers",
    "models",
    "recipes",
]


__getattr__, __dir__ = lazy_exports(
    __name__, _EXPORTS, ("ade20k", "layers", "models", "recipes")
)


#: Modules whose import registers this package's serialisable classes:
#: every layer, and the model subclasses a `.keras` file may name
#: (`keras_swin>SwinBackbone` and `SwinBackboneV2`, also inside KerasHub
#: task models, and `keras_swin>UperNet`).
_REGISTERING = (
    "keras_swin.layers",
    "keras_swin.models.swin_backbone",
    "keras_swin.models.swin_backbone_v2",
    "keras_swin.models.upernet",
)


#: Set when Keras finished importing while a module of this package was
#: itself being imported (`import keras_swin.models` before Keras): the
#: registering modules then cannot be imported yet, and registration
#: waits for the end of `keras_swin.layers` / `keras_swin.models`.
_DEFERRED = False


def _importing_own_modules(finishing: str = "") -> bool:
    """Whether a `keras_swin` module other than `finishing` is mid-import."""
    return any(
        getattr(getattr(module, "__spec__", None), "_initializing", False)
        for name, module in list(sys.modules.items())
        if name.startswith("keras_swin.") and name != finishing
    )


def _finish_registration(package: str) -> None:
    """Runs a registration deferred by `_register_layers`.

    Called at the end of `keras_swin/layers/__init__.py` and
    `keras_swin/models/__init__.py`, once their names exist.

    Args:
        package: the package whose import is finishing.
    """
    global _DEFERRED
    if _DEFERRED and not _importing_own_modules(finishing=package):
        _DEFERRED = False
        _register_layers(finishing=package)


def _register_layers(finishing: str = "") -> None:
    """Imports the modules that register this package's classes with Keras.

    Args:
        finishing: a package whose import is at its end (its names all
            exist), when called from `_finish_registration`.
    """
    global _DEFERRED
    if _importing_own_modules(finishing):
        _DEFERRED = True
        return
    try:
        for module in _REGISTERING:
            importlib.import_module(module)
    except Exception as error:  # never break the user's `import keras`
        warnings.warn(
            f"keras_swin could not register its layers with Keras "
            f"({type(error).__name__}: {error}); import keras_swin.layers "
            "before loading a .keras file of this package.",
            stacklevel=2,
        )


_HOOK = FirstImportHook("keras", after=_register_layers)


def _register_after_keras() -> None:
    if "keras" in sys.modules:
        _register_layers()
    else:
        _HOOK.install()


_register_after_keras()
