"""The segmentation recipe (as data, its schedule and decay mask), the
recipe's few steps on mocked scene_parse150 and the main job's CLI."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from keras_swin.recipes.config import SEGMENTATION_RECIPES
from keras_swin.recipes.optim import (
    PolyDecayWithWarmup,
    make_segmentation_optimizer,
    segmentation_schedule,
    segmentation_weight_decay_exempt,
)

tf = pytest.importorskip("tensorflow")
pytest.importorskip("tensorflow_datasets")

TINY = dict(
    embed_dim=8,
    depths=(1, 1, 1, 1),
    num_heads=(1, 1, 1, 1),
    window_size=4,
    channels=8,
    auxiliary_channels=4,
)
#: Two stages: half the graph to compile in the training runs below.
TWO_STAGES = dict(
    TINY,
    depths=(1, 1),
    num_heads=(1, 1),
    out_indices=(0, 1),
    auxiliary_in_index=1,
)
PNG = b"\x89PNG\r\n\x1a\n"


def test_the_released_ade20k_recipe():
    recipe = SEGMENTATION_RECIPES["upernet_swin_ade20k"]
    assert (recipe.learning_rate, recipe.beta_1, recipe.beta_2) == (
        6e-5,
        0.9,
        0.999,
    )
    assert (recipe.weight_decay, recipe.epsilon) == (0.01, 1e-8)
    assert (recipe.batch_size, recipe.total_steps) == (16, 160_000)
    assert (recipe.warmup_steps, recipe.warmup_ratio) == (1_500, 1e-6)
    assert (recipe.poly_power, recipe.min_learning_rate) == (1.0, 0.0)
    assert recipe.crop_size == (512, 512) and recipe.scale == (2048, 512)
    assert recipe.ratio_range == (0.5, 2.0) and recipe.cat_max_ratio == 0.75
    assert recipe.flip_prob == 0.5 and recipe.photometric
    assert recipe.auxiliary_loss_weight == 0.4 and recipe.ignore_index == 255
    assert [
        recipe.drop_path_rate(v)
        for v in ("swin_tiny", "swin_small", "swin_base")
    ] == [0.3, 0.3, 0.3]
    assert "Swin-Transformer-Semantic-Segmentation" in recipe.source
    with pytest.raises(ValueError, match="warmup_steps < total_steps"):
        recipe.replace(total_steps=10)
    with pytest.raises(ValueError, match="Unknown segmentation recipe field"):
        recipe.replace(epochs=3)


@pytest.mark.parametrize(
    "step,expected",
    [
        # lr * warmup_ratio at the first update.
        (0, 6e-11),
        # regular 6e-5 * (1 - 750/160000) = 5.971875e-5, times the warm-up
        # factor 1 - (1 - 0.5) * (1 - 1e-6) = 0.5000005.
        (750, 2.98594049e-5),
        # The warm-up is over: 6e-5 * (1 - 1500/160000).
        (1500, 5.94375e-5),
        (80_000, 3e-5),
        (159_999, 3.75e-10),
        (160_000, 0.0),
        (200_000, 0.0),
    ],
)
def test_poly_schedule_with_linear_warmup_by_hand(step, expected):
    schedule = segmentation_schedule("upernet_swin_ade20k")
    value = float(keras.ops.convert_to_numpy(schedule(step)))
    np.testing.assert_allclose(value, expected, rtol=2e-6, atol=1e-16)


def test_poly_power_and_config_round_trip():
    squared = PolyDecayWithWarmup(1.0, 10, 0, power=2.0, min_learning_rate=0.1)
    # (1 - 0.1) * (1 - 5/10)^2 + 0.1
    np.testing.assert_allclose(float(squared(5)), 0.325, rtol=1e-6)
    again = PolyDecayWithWarmup.from_config(squared.get_config())
    assert again.get_config() == squared.get_config()
    with pytest.raises(ValueError, match="total_steps must be >= 1"):
        PolyDecayWithWarmup(1.0, 0)


def test_weight_decay_mask_is_mmsegs():
    from keras_swin.models.upernet import SwinUperNet

    model = SwinUperNet(num_classes=3, input_shape=(32, 32, 3), **TWO_STAGES)
    exempt = {v.path for v in segmentation_weight_decay_exempt(model)}
    # Every backbone LayerNorm and relative-position table; no bias, no
    # convolution and no BatchNorm of the heads (named "bn" as in mmcv).
    expected = {"patch_embed/norm/gamma", "patch_embed/norm/beta"}
    for i in range(2):
        expected |= {f"norm{i}/gamma", f"norm{i}/beta"}
        block = f"layers_{i}/blocks_0"
        expected |= {
            f"{block}/norm1/gamma",
            f"{block}/norm1/beta",
            f"{block}/norm2/gamma",
            f"{block}/norm2/beta",
            f"{block}/attn/relative_position_bias_table",
        }
        if i < 1:
            expected |= {
                f"layers_{i}_downsample/norm/gamma",
                f"layers_{i}_downsample/norm/beta",
            }
    assert exempt == expected
    # One AdamW step on zero gradients is the decay alone: the exempt
    # variables stay, the others shrink by lr * weight_decay = 0.05.
    recipe = SEGMENTATION_RECIPES["upernet_swin_ade20k"].replace(
        learning_rate=0.1, weight_decay=0.5, warmup_steps=0
    )
    optimizer = make_segmentation_optimizer(recipe, model)
    assert (optimizer.beta_1, optimizer.beta_2) == (0.9, 0.999)
    assert optimizer.epsilon == 1e-8
    # Two of each kind (few variables: eager updates compile per variable
    # on JAX).
    named = {v.path: v for v in model.trainable_variables}
    variables = [
        named[path]
        for path in (
            "norm0/gamma",
            "layers_1/blocks_0/attn/relative_position_bias_table",
            "layers_1/blocks_0/attn/qkv/bias",
            "decode_head/conv_seg/kernel",
        )
    ]
    rng = np.random.default_rng(0)
    for variable in variables:  # non-zero values (biases start at 0)
        variable.assign(rng.normal(size=variable.shape).astype("float32"))
    before = [keras.ops.convert_to_numpy(v) for v in variables]
    optimizer.apply_gradients(
        [(keras.ops.zeros(v.shape), v) for v in variables]
    )
    for variable, old in zip(variables, before, strict=True):
        factor = 1.0 if variable.path in exempt else 0.95
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(variable),
            old * factor,
            rtol=1e-6,
            atol=1e-7,
            err_msg=variable.path,
        )


def _check_run_files(out):
    for name in ("learning_curves.png", "predictions.png"):
        assert (out / name).read_bytes()[:8] == PNG, name
    return json.loads((out / "metrics.json").read_text())


@pytest.mark.slow
def test_the_recipe_trains_on_mocked_scene_parse150(tmp_path):
    """The released recipe through the mmseg pipeline, 2 steps, every
    backend: a tiny Swin-UperNet, 32 x 32 crops of 48 x 64 mock scenes."""
    from keras_swin.recipes.segmentation_data import mock_scene_parse150
    from keras_swin.recipes.segmentation_train import train_segmentation

    recipe = SEGMENTATION_RECIPES["upernet_swin_ade20k"].replace(
        crop_size=(32, 32), scale=(64, 32)
    )
    out = tmp_path / "ade"
    with mock_scene_parse150(num_examples=4):
        metrics = train_segmentation(
            model="swin_tiny",
            recipe=recipe,
            dataset="tfds:scene_parse150",
            steps=2,
            batch_size=2,
            eval_examples=1,
            prediction_images=0,
            output=out,
            verbose=0,
            **TWO_STAGES,
        )
    assert metrics["steps"] == 2 and metrics["epochs"] == 1
    assert metrics["test_examples"] == 1 and len(metrics["test_iou"]) == 150
    assert 0.0 <= metrics["test_aacc"] <= 1.0
    assert np.isfinite(metrics["history"]["loss"][0])
    assert (out / "learning_curves.png").read_bytes()[:8] == PNG
    assert metrics["optimizer_steps"] == 2
    # The saved segmenter takes any size; drop path 0.3 (the recipe's for
    # swin_tiny) on its last block.
    model = keras.saving.load_model(out / "model.keras")
    assert tuple(model.inputs[0].shape) == (None, None, None, 3)
    blocks = model.backbone.get_layer("layers_1").blocks
    assert blocks[-1].drop_path.rate == pytest.approx(0.3)


@pytest.mark.slow
@pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="the main job's default backend; the recipe test covers the rest",
)
def test_keras_swin_train_task_segmentation_end_to_end(
    tmp_path, monkeypatch, capsys
):
    from keras_swin import segment
    from keras_swin.cli import main
    from keras_swin.recipes import segmentation_train
    from keras_swin.recipes.scenes import SCENE_CLASSES, scene_splits

    # The default job at a tiny size: the same code path, a tiny model,
    # 16 training scenes of 32 x 32, 2 steps.
    monkeypatch.setattr(segmentation_train, "SCENES_MODEL", TWO_STAGES)
    sizes = {"train": 16, "validation": 4, "test": 4}
    monkeypatch.setattr(segmentation_train, "SCENES_SPLITS", sizes)
    out = tmp_path / "run"
    argv = ["train", "--task", "segmentation", "--steps", "2"]
    assert main([*argv, "--image-size", "32", "--output", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "test mIoU" in printed and "predictions.png" in printed
    metrics = _check_run_files(out)
    for key in (
        "test_miou",
        "test_macc",
        "test_aacc",
        "seed",
        "backend",
        "cpu",
        "train_seconds",
        "total_seconds",
    ):
        assert key in metrics, key
    assert metrics["examples"] == sizes
    assert list(metrics["test_iou"]) == list(SCENE_CLASSES)
    assert metrics["recipe"] == "scenes" and metrics["steps"] == 2
    # The saved segmenter reloads and keras_swin.segment uses it; its
    # predictions on the test scenes give the reported scores, counted
    # here from scratch.
    model = keras.saving.load_model(out / "model.keras")
    images, labels = scene_splits(sizes, 32)["test"]
    predicted = segment(model, images, scale=None)
    assert predicted.shape == labels.shape
    intersect = np.array(
        [((predicted == k) & (labels == k)).sum() for k in range(5)]
    )
    union = np.array(
        [((predicted == k) | (labels == k)).sum() for k in range(5)]
    )
    present = union > 0
    miou = float(np.mean(intersect[present] / union[present]))
    np.testing.assert_allclose(metrics["test_miou"], miou, rtol=1e-6)
    np.testing.assert_allclose(
        metrics["test_aacc"], (predicted == labels).mean(), rtol=1e-6
    )


@pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="argument checks before any model; runs in the TensorFlow leg",
)
@pytest.mark.parametrize(
    "argv,message",
    [
        (
            ["--task", "segmentation", "--epochs", "3"],
            "does not take --epochs (use --steps)",
        ),
        (
            ["--task", "segmentation", "--recipe", "swin_in1k"],
            "--recipe swin_in1k (a classification recipe)",
        ),
        (["--steps", "5"], "--steps is for --task segmentation"),
        (
            ["--recipe", "upernet_swin_ade20k"],
            "is a segmentation recipe; add --task segmentation",
        ),
    ],
)
def test_train_refuses_arguments_of_the_other_task(
    tmp_path, capsys, argv, message
):
    from keras_swin.cli import main

    out = tmp_path / "run"
    assert main(["train", *argv, "--output", str(out)]) == 1
    assert message in capsys.readouterr().err
    assert not out.exists()
