"""Train with a recipe by hand: pipeline, model, optimizer, fit, evaluate.

    $ python examples/train_with_recipe.py
    recipe digits: adamw, peak lr 0.002, 20 epochs (3 warm-up)
    swin_digits: 301,804 parameters, drop path of the last block 0.1
    epoch 20: loss 0.851, validation accuracy 0.9720
    test accuracy 0.9666 on 359 held-out images

(PyTorch backend; seeded, so a backend repeats its numbers.) What
`keras-swin train` does, spelled out with the public pieces, so that any
of them can be swapped: a `Recipe` (here the digits recipe shortened to
20 epochs with `replace`; its full 60 epochs reach 0.98-0.99, see the
README), the tf.data pipelines, a model with the recipe's stochastic
depth, the recipe's optimizer/schedule/loss, Keras' `fit`, and an exact
evaluation over every held-out image.
"""

import sys

import keras
import numpy as np
import tensorflow as tf

from keras_swin.recipes import (
    DIGITS_RECIPE,
    build_model,
    compile_model,
    digits_splits,
    eval_pipeline,
    train_pipeline,
)
from keras_swin.recipes.optim import make_loss
from keras_swin.recipes.train import evaluate


def main(epochs: int = 20, steps_per_epoch: int | None = None) -> dict:
    # Seeds the initial weights and stochastic depth; the pipeline's
    # augmentations follow its own `seed`.
    keras.utils.set_random_seed(0)
    recipe = DIGITS_RECIPE.replace(
        epochs=epochs, warmup_epochs=min(3, epochs - 1)
    )
    rates = recipe.learning_rates()
    print(
        f"recipe {recipe.name}: {recipe.optimizer}, peak lr {rates['peak']:g}, "
        f"{recipe.epochs} epochs ({recipe.warmup_epochs} warm-up)"
    )
    splits, classes = digits_splits(seed=0)
    sources = {
        k: tf.data.Dataset.from_tensor_slices(v) for k, v in splits.items()
    }
    batch = recipe.batch_size
    train = train_pipeline(sources["train"], recipe, classes, batch, seed=0)
    validation = eval_pipeline(sources["validation"], recipe, classes, batch)
    test = eval_pipeline(sources["test"], recipe, classes, batch)
    steps = steps_per_epoch or len(splits["train"][1]) // batch

    model = build_model("swin_digits", recipe, classes, recipe.image_size)
    last = model.get_layer("layers_1").blocks[-1].drop_path.rate
    print(
        f"swin_digits: {model.count_params():,} parameters, drop path of "
        f"the last block {last:g}"
    )
    compile_model(model, recipe, batch_size=batch, steps_per_epoch=steps)
    history = model.fit(
        train,
        epochs=recipe.epochs,
        steps_per_epoch=steps,
        validation_data=validation,
        shuffle=False,  # the pipeline shuffles
        verbose=0,
    )
    print(
        f"epoch {recipe.epochs}: loss {history.history['loss'][-1]:.3f}, "
        f"validation accuracy {history.history['val_accuracy'][-1]:.4f}"
    )
    results = evaluate(model, test, make_loss(recipe))
    print(
        f"test accuracy {results['accuracy']:.4f} on "
        f"{results['examples']} held-out images"
    )
    assert np.isfinite(results["loss"])
    return results


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:]))
