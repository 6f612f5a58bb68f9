"""Registration and configs of the package's layers for `.keras` files."""

import inspect

import keras
import numpy as np

#: Every layer of the package registers under this package name, so saved
#: models load with `keras.saving.load_model` once `keras_swin` is imported.
PACKAGE = "keras_swin"

register = keras.saving.register_keras_serializable(package=PACKAGE)

_SKIPPED_KINDS = (
    inspect.Parameter.VAR_POSITIONAL,
    inspect.Parameter.VAR_KEYWORD,
)


class ConfigFromArguments:
    """Mixin: `get_config()` returns exactly the constructor's arguments.

    Every layer of the package stores each constructor argument under its
    own name; this mixin reads them back through the `__init__` signature,
    so `from_config(get_config())` round-trips without a hand-kept list.
    Keras initializers are serialized.

    Example:
        >>> class Scale(ConfigFromArguments, keras.layers.Layer):
        ...     def __init__(self, factor=2.0, **kwargs):
        ...         super().__init__(**kwargs)
        ...         self.factor = factor
        >>> Scale(3.0).get_config()["factor"]
        3.0
    """

    def get_config(self):
        config = super().get_config()
        signature = inspect.signature(type(self).__init__)
        for name, parameter in signature.parameters.items():
            if name == "self" or parameter.kind in _SKIPPED_KINDS:
                continue
            value = getattr(self, name)
            if isinstance(value, keras.initializers.Initializer):
                value = keras.initializers.serialize(value)
            config[name] = value
        return config


class _Entries:
    """A read-only view of a weights store without some of its keys."""

    def __init__(self, store, keys):
        self._store = store
        self._keys = list(keys)

    def keys(self):
        return self._keys

    def __len__(self):
        return len(self._keys)

    def __contains__(self, key):
        return key in self._keys

    def __getitem__(self, key):
        return self._store[key]


class RecordedArguments:
    """Mixin: weight files also record arguments no weight shape reveals.

    Some constructor arguments change what the weights mean without
    changing their shapes: `num_heads` splits the same `qkv` kernel into
    other heads. Keras loads weights by shape, so a file saved with 2 heads
    would load silently into a 4-head model. A layer with this mixin
    writes each name of `recorded_arguments` as a scalar entry beside its
    variables (`.../attn/vars/num_heads` in a `.weights.h5`, and in the
    weights of a `.keras` file) and, when loading, refuses a file whose
    entry differs. Files without the entry (older files) load as before.

    Example:
        >>> class Heads(RecordedArguments, keras.layers.Layer):
        ...     recorded_arguments = ("num_heads",)
    """

    recorded_arguments: tuple[str, ...] = ()

    def save_own_variables(self, store):
        super().save_own_variables(store)
        for name in self.recorded_arguments:
            store[name] = np.asarray(getattr(self, name))

    def load_own_variables(self, store):
        keys = list(store.keys())
        for name in self.recorded_arguments:
            if name not in keys:
                continue
            saved = np.asarray(store[name]).item()
            if saved != getattr(self, name):
                raise ValueError(
                    f"{self.path}: the weights were saved with {name}="
                    f"{saved!r}, but this layer has {name}="
                    f"{getattr(self, name)!r}; the weights' shapes agree "
                    "but their meaning does not. Build the model with "
                    f"{name}={saved!r}, as the weights were saved."
                )
        keys = [k for k in keys if k not in self.recorded_arguments]
        super().load_own_variables(_Entries(store, keys))
