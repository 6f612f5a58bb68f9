"""The recipe's optimizer: Keras AdamW/SGD with the official decay mask."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from keras_swin import SwinTransformer, VisionTransformer
from keras_swin.recipes import RECIPES
from keras_swin.recipes.optim import (
    make_loss,
    make_optimizer,
    weight_decay_exempt,
)


def _tiny_swin():
    return SwinTransformer(
        embed_dim=8,
        depths=(1, 1),
        num_heads=(1, 2),
        window_size=4,
        input_shape=(32, 32, 3),
        classes=3,
        absolute_position_embedding=True,
    )


def test_decay_mask_is_the_official_set_weight_decay():
    model = _tiny_swin()
    exempt = {v.path for v in weight_decay_exempt(model)}
    # The official rule, written out: 1-D parameters, names ending in
    # .bias, `absolute_pos_embed` and `relative_position_bias_table`.
    expected = {
        v.path
        for v in model.trainable_variables
        if len(v.shape) == 1
        or v.path.endswith("bias")
        or "absolute_pos_embed" in v.path
        or "relative_position_bias_table" in v.path
    }
    assert exempt == expected
    decayed = {v.path for v in model.trainable_variables} - exempt
    assert decayed == {
        v.path for v in model.trainable_variables if v.path.endswith("kernel")
    }


def test_vit_tokens_and_position_embedding_are_exempt():
    model = VisionTransformer(
        input_shape=(32, 32, 3),
        patch_size=8,
        hidden_size=16,
        num_layers=1,
        num_heads=2,
        mlp_dim=32,
        classes=2,
        num_register_tokens=1,
    )
    exempt = {v.path for v in weight_decay_exempt(model)}
    assert {"cls_token/cls", "reg_token/cls", "pos_embed/embedding"} <= exempt
    assert not any(p.endswith("kernel") for p in exempt)


def test_adamw_decays_only_the_kernels():
    model = _tiny_swin()
    recipe = RECIPES["swin_in1k"].replace(global_clipnorm=None)
    optimizer = make_optimizer(
        recipe, model, batch_size=1024, steps_per_epoch=1
    )
    variables = model.trainable_variables
    before = [np.array(v) for v in variables]
    # Zero gradients: Adam's update is 0, so only weight decay moves
    # a variable, by lr * wd * value (decoupled, as torch's AdamW).
    optimizer.apply_gradients(
        [(keras.ops.zeros(v.shape), v) for v in variables]
    )
    lr = recipe.learning_rates(1024)["warmup"]
    exempt = {v.path for v in weight_decay_exempt(model)}
    for v, old in zip(variables, before, strict=False):
        new = np.array(v)
        if v.path in exempt:
            np.testing.assert_array_equal(new, old, err_msg=v.path)
        else:
            np.testing.assert_allclose(
                new, old * (1 - lr * 0.05), rtol=1e-6, err_msg=v.path
            )


def test_optimizers_carry_the_recipe_settings():
    model = _tiny_swin()
    adamw = make_optimizer("swin_in1k", model, 1024, 10)
    assert isinstance(adamw, keras.optimizers.AdamW)
    assert adamw.global_clipnorm == 5.0
    assert (adamw.beta_1, adamw.beta_2, adamw.epsilon) == (0.9, 0.999, 1e-8)
    assert adamw.weight_decay == 0.05
    sgd = make_optimizer("vit_finetune", gradient_accumulation_steps=8)
    assert isinstance(sgd, keras.optimizers.SGD)
    assert (sgd.momentum, sgd.global_clipnorm) == (0.9, 1.0)
    assert sgd.weight_decay is None
    assert sgd.gradient_accumulation_steps == 8
    with pytest.raises(ValueError, match="pass the model"):
        make_optimizer("swin_in1k", None, 1024, 10)


def test_global_norm_clipping_bounds_the_update():
    model = _tiny_swin()
    recipe = RECIPES["vit_finetune"].replace(warmup_steps=0, momentum=0.0)
    optimizer = make_optimizer(recipe)
    variables = model.trainable_variables
    before = [np.array(v) for v in variables]
    huge = [keras.ops.full(v.shape, 100.0) for v in variables]
    optimizer.apply_gradients(zip(huge, variables, strict=False))
    step = np.sqrt(
        sum(
            ((np.array(v) - b) ** 2).sum()
            for v, b in zip(variables, before, strict=False)
        )
    )
    # SGD step = lr * clipped gradient, whose global norm is 1.0.
    assert step == pytest.approx(0.03 * 1.0, rel=1e-4)


def test_loss_smoothing_is_applied_once():
    # Mixing recipes smooth in the pipeline; the others in the loss.
    assert make_loss("swin_in1k").label_smoothing == 0.0
    no_mix = RECIPES["swin_in1k"].replace(mixup_alpha=0.0, cutmix_alpha=0.0)
    assert make_loss(no_mix).label_smoothing == 0.1
    assert make_loss("vit_finetune").label_smoothing == 0.0
    assert make_loss("vit_finetune").from_logits
