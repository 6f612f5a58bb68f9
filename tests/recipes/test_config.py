"""The recipes hold the papers' numbers, and the schedule follows them."""

from __future__ import annotations

import math

import numpy as np
import pytest

from keras_swin.recipes import RECIPES, get_recipe
from keras_swin.recipes.optim import learning_rate_schedule


def test_swin_in1k_matches_the_official_configuration():
    r = RECIPES["swin_in1k"]
    assert (r.optimizer, r.beta_1, r.beta_2, r.epsilon) == (
        "adamw",
        0.9,
        0.999,
        1e-8,
    )
    assert (r.weight_decay, r.epochs, r.warmup_epochs) == (0.05, 300, 20)
    # Official: BASE_LR 5e-4, WARMUP_LR 5e-7, MIN_LR 5e-6 per 512 images.
    for batch in (512, 1024, 256):
        rates = r.learning_rates(batch)
        assert rates["peak"] == pytest.approx(5e-4 * batch / 512)
        assert rates["warmup"] == pytest.approx(5e-7 * batch / 512)
        assert rates["min"] == pytest.approx(5e-6 * batch / 512)
    assert r.global_clipnorm == 5.0
    assert r.label_smoothing == 0.1
    assert (r.mixup_alpha, r.cutmix_alpha, r.mix_switch_prob) == (
        0.8,
        1.0,
        0.5,
    )
    assert r.mix_prob == 1.0
    assert r.randaugment == "rand-m9-mstd0.5-inc1"
    assert r.random_erasing == 0.25
    assert [r.drop_path_rate(v) for v in ("swin_tiny", "swin_small")] == [
        0.2,
        0.3,
    ]
    assert r.drop_path_rate("swin_base") == 0.5
    assert (r.image_size, r.eval_crop_pct, r.interpolation) == (
        224,
        0.875,
        "bicubic",
    )


def test_swin_in22k_and_finetune_recipes():
    pre = RECIPES["swin_in22k"]
    assert (pre.epochs, pre.warmup_epochs, pre.batch_size) == (90, 5, 4096)
    # Official 22K configs: BASE_LR 1.25e-4 per 512 -> 1e-3 at 4096.
    assert pre.learning_rates(4096)["peak"] == pytest.approx(1e-3)
    assert pre.learning_rates(512)["peak"] == pytest.approx(1.25e-4)
    assert pre.drop_path_rate("swin_tiny") == 0.1
    assert {pre.drop_path_rate(v) for v in ("swin_small", "swin_base")} == {0.2}
    assert pre.drop_path_rate("swin_large") == 0.2
    assert pre.weight_decay == 0.05 and pre.mixing

    ft = RECIPES["swin_in22k_ft_in1k"]
    assert (ft.epochs, ft.warmup_epochs, ft.weight_decay) == (30, 5, 1e-8)
    assert ft.learning_rates(512)["peak"] == pytest.approx(2e-5)
    assert ft.learning_rates(1024)["peak"] == pytest.approx(4e-5)
    assert ft.drop_path_rate("swin_tiny") == 0.1
    assert ft.drop_path_rate("swin_base") == 0.2


def test_vit_finetune_recipe():
    r = RECIPES["vit_finetune"]
    assert (r.optimizer, r.momentum, r.weight_decay) == ("sgd", 0.9, 0.0)
    assert (r.global_clipnorm, r.batch_size) == (1.0, 512)
    assert r.learning_rates(512)["peak"] == 0.03
    # No linear scaling in the official ViT fine-tuning code.
    assert r.learning_rates(64)["peak"] == 0.03
    assert (r.warmup_steps, r.image_size, r.normalization) == (
        500,
        384,
        "inception",
    )
    assert r.zero_init_head and r.horizontal_flip and not r.mixing
    assert RECIPES["vit_finetune_cifar10"].learning_rate == 0.01


def _reference_schedule(step, peak, warmup_lr, min_lr, warmup, total):
    # Written from the recipe text: linear warm-up from warmup_lr to peak,
    # then a half cosine from peak to min_lr over the remaining steps.
    if step < warmup:
        return warmup_lr + (peak - warmup_lr) * step / warmup
    progress = (step - warmup) / (total - warmup)
    return min_lr + 0.5 * (peak - min_lr) * (1 + math.cos(math.pi * progress))


@pytest.mark.parametrize("name", ["swin_in1k", "swin_in22k_ft_in1k"])
def test_schedule_is_warmup_then_cosine_per_step(name):
    recipe = RECIPES[name]
    steps_per_epoch = 7
    schedule = learning_rate_schedule(recipe, 256, steps_per_epoch)
    rates = recipe.learning_rates(256)
    total = recipe.epochs * steps_per_epoch
    warmup = recipe.warmup_epochs * steps_per_epoch
    middle = (warmup + total) // 2
    for step in (
        0,
        1,
        warmup // 2,
        warmup - 1,
        warmup,
        warmup + 1,
        middle,
        total - 1,
        total,
    ):
        expected = _reference_schedule(
            step, rates["peak"], rates["warmup"], rates["min"], warmup, total
        )
        assert float(schedule(step)) == pytest.approx(expected, rel=1e-5)
    # After the last step the rate stays at the minimum.
    assert float(schedule(total + 50)) == pytest.approx(rates["min"])


def test_timm_cosine_from_step_zero():
    # The 2021 Swin release: timm's CosineLRScheduler(t_initial=num_steps,
    # warmup_t=warmup_steps) without warmup_prefix.
    recipe = RECIPES["swin_in1k"].replace(warmup_prefix=False)
    schedule = learning_rate_schedule(recipe, 1024, 10)
    total, warmup = 3000, 200
    for step in (0, 100, 199, 200, 1500, 2999, 3000, 3100):
        if step < warmup:
            expected = 1e-6 + (1e-3 - 1e-6) * step / warmup
        else:
            t = min(step, total)
            expected = 1e-5 + 0.5 * (1e-3 - 1e-5) * (
                1 + math.cos(math.pi * t / total)
            )
        assert float(schedule(step)) == pytest.approx(expected, rel=1e-5)
    # At the end of the warm-up this form is already 1.1% below the peak.
    assert float(schedule(200)) == pytest.approx(0.9892e-3, rel=1e-3)
    restored = type(schedule).from_config(schedule.get_config())
    assert float(restored(1234)) == float(schedule(1234))


def test_vit_schedule_in_steps():
    schedule = learning_rate_schedule("vit_finetune")
    assert float(schedule(0)) == 0.0
    assert float(schedule(250)) == pytest.approx(0.015)
    assert float(schedule(500)) == pytest.approx(0.03)
    assert float(schedule(20_000)) == pytest.approx(0.0, abs=1e-9)
    middle = 500 + (20_000 - 500) // 2
    assert float(schedule(middle)) == pytest.approx(0.015, rel=1e-4)


def test_recipe_errors_name_the_problem():
    with pytest.raises(ValueError, match="Unknown recipe 'nope'"):
        get_recipe("nope")
    with pytest.raises(ValueError, match="steps_per_epoch"):
        learning_rate_schedule("swin_in1k")
    with pytest.raises(ValueError, match="Unknown recipe field"):
        RECIPES["swin_in1k"].replace(epoch=3)
    with pytest.raises(ValueError, match="optimizer"):
        RECIPES["swin_in1k"].replace(optimizer="lamb")
    with pytest.raises(ValueError, match="exceed"):
        learning_rate_schedule(RECIPES["swin_in1k"].replace(epochs=20), 64, 1)


def test_every_recipe_cites_a_source_and_builds_a_schedule():
    for recipe in RECIPES.values():
        assert recipe.source
        schedule = learning_rate_schedule(recipe, None, 10)
        values = np.array([float(schedule(s)) for s in (0, 10, 100)])
        assert np.all(np.isfinite(values)) and values.max() > 0
