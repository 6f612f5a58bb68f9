"""Training recipes of the Swin and ViT papers, and the pieces Keras lacks.

- `RECIPES` / `Recipe`: the papers' configurations as data.
- `make_optimizer`, `learning_rate_schedule`, `make_loss`: Keras AdamW/SGD
  with the weight-decay mask, warm-up + cosine, clipping, smoothing.
- `RandAugment`, `MixupCutmix`, `RandomErasing`: augmentations.
- `train_pipeline`, `eval_pipeline`, `load_tfds`: tf.data input.
- `train`, `build_model`, `compile_model`: the `keras-swin train` job.

The modules that need TensorFlow (augmentations, data) are imported on
first use.
"""

from __future__ import annotations

from keras_swin._import_hooks import lazy_exports
from keras_swin.recipes.config import RECIPES, Recipe, get_recipe

_EXPORTS = {
    "learning_rate_schedule": "keras_swin.recipes.optim",
    "make_loss": "keras_swin.recipes.optim",
    "make_optimizer": "keras_swin.recipes.optim",
    "weight_decay_exempt": "keras_swin.recipes.optim",
    "MixupCutmix": "keras_swin.recipes.augment",
    "RandAugment": "keras_swin.recipes.augment",
    "RandomErasing": "keras_swin.recipes.augment",
    "eval_pipeline": "keras_swin.recipes.data",
    "load_tfds": "keras_swin.recipes.data",
    "train_pipeline": "keras_swin.recipes.data",
    "DIGITS_RECIPE": "keras_swin.recipes.train",
    "build_model": "keras_swin.recipes.train",
    "compile_model": "keras_swin.recipes.train",
    "digits_splits": "keras_swin.recipes.train",
    "train": "keras_swin.recipes.train",
    "attention_maps": "keras_swin.recipes.plots",
    "backup_callbacks": "keras_swin.recipes.resume",
    "RandomStateBackup": "keras_swin.recipes.resume",
}

__all__ = [
    "DIGITS_RECIPE",
    "MixupCutmix",
    "RECIPES",
    "RandAugment",
    "RandomErasing",
    "RandomStateBackup",
    "Recipe",
    "attention_maps",
    "backup_callbacks",
    "build_model",
    "compile_model",
    "digits_splits",
    "eval_pipeline",
    "get_recipe",
    "learning_rate_schedule",
    "load_tfds",
    "make_loss",
    "make_optimizer",
    "train",
    "train_pipeline",
    "weight_decay_exempt",
]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
