"""`fit` with the full recipes on every backend, resume, the main job."""

from __future__ import annotations

import json
import re

import keras
import numpy as np
import pytest

from keras_swin import SwinTransformer, VisionTransformer
from keras_swin.imagenet import model_preprocessing
from keras_swin.recipes import RECIPES
from keras_swin.recipes.optim import learning_rate_schedule
from keras_swin.recipes.resume import backup_callbacks
from keras_swin.recipes.train import compile_model

tf = pytest.importorskip("tensorflow")
tfds = pytest.importorskip("tensorflow_datasets")


def _tiny_swin(classes, drop_path_rate, size=32):
    return SwinTransformer(
        embed_dim=8,
        depths=(1, 1),
        num_heads=(1, 2),
        window_size=4,
        input_shape=(size, size, 3),
        classes=classes,
        classifier_activation=None,
        drop_path_rate=drop_path_rate,
    )


def test_short_fit_with_the_full_swin_recipe_on_mock_imagenet():
    from keras_swin.recipes.data import load_tfds, train_pipeline

    recipe = RECIPES["swin_in1k"]
    with tfds.testing.mock_data(num_examples=8):
        source, classes, _ = load_tfds("imagenet2012", "train")
    # Every component on: RandAugment, erasing, mixup/cutmix with smoothed
    # soft targets, AdamW + decay mask, warm-up/cosine, clipping, and the
    # linear stochastic-depth schedule of swin_tiny.
    data = train_pipeline(source, recipe, classes, 4, image_size=32, seed=0)
    keras.utils.set_random_seed(0)
    model = _tiny_swin(classes, recipe.drop_path_rate("swin_tiny"))
    blocks = [model.get_layer(f"layers_{i}").blocks[0] for i in (0, 1)]
    assert [b.drop_path.rate for b in blocks] == [0.0, 0.2]
    # Rates of a 1024 batch: at 4 images the scaled warm-up rate (4e-9)
    # would leave the LayerNorm scales (1.0) unchanged in float32.
    compile_model(model, recipe, batch_size=1024, steps_per_epoch=2)
    before = [np.array(v) for v in model.trainable_variables]
    history = model.fit(data, epochs=1, steps_per_epoch=2, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    optimizer = model.optimizer
    assert int(optimizer.iterations) == 2
    expected_lr = learning_rate_schedule(recipe, 1024, 2)(2)
    np.testing.assert_allclose(
        float(optimizer.learning_rate), float(expected_lr), rtol=1e-6
    )
    moved = [
        np.any(np.array(v) != b)
        for v, b in zip(model.trainable_variables, before, strict=False)
    ]
    assert all(moved), [
        v.path
        for v, m in zip(model.trainable_variables, moved, strict=False)
        if not m
    ]


def test_short_fit_with_the_vit_finetune_recipe():
    from keras_swin.recipes.train import build_model

    recipe = RECIPES["vit_finetune"]
    images = tf.random.uniform((4, 40, 40, 3), 0, 255, seed=1)
    source = tf.data.Dataset.from_tensor_slices((images, tf.range(4) % 3))
    from keras_swin.recipes.data import train_pipeline

    data = train_pipeline(source, recipe, 3, 2, image_size=32, seed=0)
    model = build_model(
        "vit_tiny_patch16", recipe, 3, 32, num_layers=1, patch_size=8
    )
    head = model.get_layer("head")
    assert not np.any(np.array(head.kernel))  # zero-initialised head
    compile_model(model, recipe, batch_size=2)
    history = model.fit(data, epochs=1, steps_per_epoch=2, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert isinstance(model.optimizer, keras.optimizers.SGD)


def test_ema_weights_end_the_fit_and_save(tmp_path):
    from keras_swin.recipes.train import unshare_ema_weights

    recipe = RECIPES["swin_in1k"].replace(
        use_ema=True, ema_momentum=0.5, epochs=2, warmup_epochs=1
    )
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 32, 32, 3)).astype("float32")
    y = np.eye(3, dtype="float32")[rng.integers(0, 3, 8)]
    model = _tiny_swin(3, drop_path_rate=0.0)
    compile_model(model, recipe, batch_size=1024, steps_per_epoch=2)
    model.fit(x, y, batch_size=4, epochs=2, verbose=0)
    averages = {
        v.path.split("/")[-1]: np.array(v)
        for v in model.optimizer.variables
        if v.path.endswith("_average")
    }
    assert len(averages) == len(model.trainable_variables)
    unshare_ema_weights(model)
    model.predict_on_batch(x[:4])
    for v in model.trainable_variables:
        key = v.path.replace("/", "_") + "_average"
        np.testing.assert_array_equal(np.array(v), averages[key])
    # After a predict the optimizer state is still readable (JAX donated
    # it before the copy) and the model saves and reloads.
    model.save(tmp_path / "ema.keras")
    again = keras.saving.load_model(tmp_path / "ema.keras", compile=False)
    np.testing.assert_allclose(again.predict(x[:4]), model.predict(x[:4]))


class _StopAfter(keras.callbacks.Callback):
    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            raise KeyboardInterrupt("simulated interruption")


def _resume_run(backup_dir, interrupt_at=None, drop_path_rate=0.2):
    recipe = RECIPES["swin_in1k"].replace(epochs=4, warmup_epochs=1)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 32, 32, 3)).astype("float32")
    y = np.eye(3, dtype="float32")[rng.integers(0, 3, 8)]
    keras.utils.set_random_seed(1)
    model = _tiny_swin(3, drop_path_rate=drop_path_rate)
    # Rates of a 1024 batch, so that every step moves the weights a lot.
    compile_model(model, recipe, batch_size=1024, steps_per_epoch=2)
    callbacks = backup_callbacks(backup_dir)
    if interrupt_at is not None:
        callbacks.append(_StopAfter(interrupt_at))
    model.fit(
        x,
        y,
        batch_size=4,
        epochs=4,
        shuffle=False,
        callbacks=callbacks,
        verbose=0,
    )
    return model


def test_backup_and_restore_resumes_to_the_same_weights(tmp_path):
    # Stochastic depth is on: its random states are restored too.
    straight = _resume_run(tmp_path / "straight")
    with pytest.raises(KeyboardInterrupt):
        _resume_run(tmp_path / "resumed", interrupt_at=1)
    resumed = _resume_run(tmp_path / "resumed")
    assert int(resumed.optimizer.iterations) == 8
    for a, b in zip(straight.weights, resumed.weights, strict=False):
        np.testing.assert_allclose(
            np.array(a), np.array(b), rtol=0, atol=1e-6, err_msg=a.path
        )


def test_keras_swin_train_writes_model_metrics_and_plots(tmp_path, capsys):
    from keras_swin.cli import main

    out = tmp_path / "run"
    status = main(
        [
            "train",
            "--epochs",
            "1",
            "--steps-per-epoch",
            "2",
            "--output",
            str(out),
        ]
    )
    assert status == 0
    metrics = json.loads((out / "metrics.json").read_text())
    # Two steps teach little: the accuracy floor is checked on a longer
    # run in test_reproducible.py.
    assert metrics["examples"]["test"] == 359
    assert metrics["test_examples"] == 359
    assert metrics["recipe"] == "digits"
    assert metrics["backend"] == keras.backend.backend()
    assert len(metrics["history"]["loss"]) == 1
    for name in ("learning_curves.png", "attention_maps.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    model = keras.saving.load_model(out / "model.keras")
    assert model.output.shape == (None, 10)
    # The model carries the transform it was evaluated with.
    assert model_preprocessing(model) == {
        "mean": (0.485, 0.456, 0.406),
        "std": (0.229, 0.224, 0.225),
        "crop_pct": 1.0,
        "interpolation": "bilinear",
        "class_names": [str(d) for d in range(10)],
    }
    assert not (out / "backup").exists()  # removed after a finished run
    printed = capsys.readouterr().out
    assert "test accuracy" in printed and "model.keras" in printed
    # 1 epoch cannot hold the recipe's 3 warm-up epochs: said, not failed.
    assert "warm-up shortened to 0" in printed


def _attention_probs(attn, tokens, bias=None):
    """Attention probabilities (B, heads, N, N) of an `Attention` layer,
    recomputed in float64 numpy from its qkv projection: softmax(q k^T *
    scale + bias). An independent reference for the maps under test."""
    batch, count = tokens.shape[0], tokens.shape[1]
    qkv = keras.ops.convert_to_numpy(attn.qkv(tokens)).astype(np.float64)
    qkv = qkv.reshape(batch, count, 3, attn.num_heads, attn.head_dim)
    q = qkv[:, :, 0].transpose(0, 2, 1, 3)
    k = qkv[:, :, 1].transpose(0, 2, 1, 3)
    logits = (q * attn.scale) @ k.transpose(0, 1, 3, 2)
    if bias is not None:
        logits = logits + bias
    logits = logits - logits.max(-1, keepdims=True)
    weights = np.exp(logits)
    return weights / weights.sum(-1, keepdims=True)


def _assert_probabilities_rebuild_the_output(attn, tokens, probs):
    """probs (B, heads, N, N) @ v, then `proj`, equals the layer's output."""
    batch, count = tokens.shape[0], tokens.shape[1]
    qkv = keras.ops.convert_to_numpy(attn.qkv(tokens))
    v = qkv.reshape(batch, count, 3, attn.num_heads, -1)[:, :, 2]
    mixed = np.einsum("bhqk,bkhd->bqhd", probs, v).reshape(batch, count, -1)
    ours = keras.ops.convert_to_numpy(attn.proj(mixed.astype("float32")))
    theirs = keras.ops.convert_to_numpy(attn(tokens))
    np.testing.assert_allclose(ours, theirs, atol=2e-5)


def test_attention_maps_are_the_blocks_own_probabilities():
    from keras_swin.recipes.plots import attention_maps
    from keras_swin.recipes.train import DIGITS_RECIPE, build_model

    model = build_model("swin_digits", DIGITS_RECIPE, 10, 16)
    x = np.random.default_rng(0).normal(size=(2, 16, 16, 3)).astype("float32")
    maps = attention_maps(model, x)
    assert maps.shape == (2, 4, 4)
    np.testing.assert_allclose(maps.sum((1, 2)), 1.0, rtol=1e-6)
    # Rebuild the last block's attention output from the probabilities
    # and compare with the layer itself.
    stage = model.get_layer("layers_1")
    h = keras.Model(model.inputs, stage.input).predict(x, verbose=0)
    h = stage.blocks[0](h)
    block = stage.blocks[1]
    tokens = keras.ops.reshape(block.norm1(h), (2, 16, -1))
    bias = keras.ops.convert_to_numpy(block.attn.relative_position_bias(4))[
        None
    ]
    probs = _attention_probs(block.attn, tokens, bias)
    _assert_probabilities_rebuild_the_output(block.attn, tokens, probs)


def test_train_argument_errors(tmp_path):
    from keras_swin.recipes.train import build_model, train

    with pytest.raises(ValueError, match="Unknown model 'resnet50'"):
        build_model("resnet50", "swin_in1k", 10, 32)
    with pytest.raises(ValueError, match="Unknown dataset 'mnist'"):
        train(dataset="mnist", output=tmp_path / "x")
    with pytest.raises(ValueError, match="step-based"):
        train(recipe="vit_finetune", epochs=3, output=tmp_path / "y")


@pytest.mark.parametrize(
    "argument,value,message",
    [
        ("epochs", 0, "epochs must be >= 1, got 0"),
        ("epochs", -1, "epochs must be >= 1, got -1"),
        ("epochs", 2.5, "epochs must be an integer >= 1, got 2.5"),
        ("epochs", True, "epochs must be an integer >= 1, got True"),
        ("batch_size", 0, "batch_size must be >= 1, got 0"),
        ("image_size", 0, "image_size must be >= 1, got 0"),
        ("image_size", (64, 64), "image_size must be an integer"),
        ("steps_per_epoch", -3, "steps_per_epoch must be >= 1, got -3"),
        ("steps_per_epoch", 0, "steps_per_epoch must be >= 1, got 0"),
        (
            "gradient_accumulation_steps",
            0,
            "gradient_accumulation_steps must be >= 1, got 0",
        ),
        ("attention_images", -1, "attention_images must be >= 0, got -1"),
        ("seed", 1.5, "seed must be an integer, got 1.5"),
    ],
)
def test_train_rejects_arguments_out_of_range(
    tmp_path, argument, value, message
):
    """0 was silently replaced by the default (a falsy check), -1 epochs
    "succeeded"; each now fails before anything runs, and leaves no
    output folder."""
    from keras_swin.recipes.train import train

    out = tmp_path / "run"
    with pytest.raises(ValueError, match=re.escape(message)):
        train(output=out, **{argument: value})
    assert not out.exists()


def test_a_failed_run_leaves_no_empty_output_folder(tmp_path, monkeypatch):
    import importlib

    train_module = importlib.import_module("keras_swin.recipes.train")

    def broken(*args, **kwargs):
        raise RuntimeError("no model today")

    monkeypatch.setattr(train_module, "build_model", broken)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(RuntimeError, match="no model today"):
        train_module.train(output=tmp_path / "run")
    assert not (tmp_path / "run").exists()
    with pytest.raises(RuntimeError, match="no model today"):
        train_module.train()  # the default runs/... folder
    assert not (tmp_path / "runs").exists()
    # A folder that was there before the run stays, with its files.
    kept = tmp_path / "kept"
    (kept / "notes").mkdir(parents=True)
    with pytest.raises(RuntimeError):
        train_module.train(output=kept)
    assert (kept / "notes").is_dir()


def test_vit_attention_maps_are_the_class_token_row():
    from keras_swin.recipes.plots import attention_maps

    model = VisionTransformer(
        input_shape=(32, 32, 3),
        patch_size=8,
        hidden_size=16,
        num_layers=2,
        num_heads=2,
        mlp_dim=32,
        classes=3,
    )
    x = np.random.default_rng(1).normal(size=(2, 32, 32, 3)).astype("float32")
    maps = attention_maps(model, x)
    assert maps.shape == (2, 4, 4)
    np.testing.assert_allclose(maps.sum((1, 2)), 1.0, rtol=1e-6)
    encoder = model.get_layer("encoder")
    h = keras.Model(model.inputs, encoder.input).predict(x, verbose=0)
    h = encoder.blocks[0](h)
    block = encoder.blocks[1]
    probs = _attention_probs(block.attn, block.norm1(h))
    cls = probs[:, :, 0, 1:].mean(1)
    expected = cls / cls.sum(-1, keepdims=True)
    np.testing.assert_allclose(maps.reshape(2, -1), expected, rtol=1e-5)
    _assert_probabilities_rebuild_the_output(block.attn, block.norm1(h), probs)
