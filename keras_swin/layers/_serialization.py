"""Registration of the package's layers for `.keras` files."""

import keras

#: Every layer of the package registers under this package name, so saved
#: models load with `keras.saving.load_model` once `keras_swin` is imported.
PACKAGE = "keras_swin"

register = keras.saving.register_keras_serializable(package=PACKAGE)
