"""Registration and configs of the package's layers for `.keras` files."""

import inspect

import keras

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
