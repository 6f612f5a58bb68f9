"""VisionTransformer builder: sizes, heads, numerics options, errors."""

import numpy as np
import pytest
from helpers import (
    BACKEND,
    count_params_without_init,
    max_abs_diff,
    predict,
)

import keras_swin as ks

TINY = dict(
    patch_size=8,
    hidden_size=32,
    num_layers=2,
    num_heads=2,
    mlp_dim=64,
    input_shape=(32, 32, 3),
    classes=7,
)


@pytest.mark.parametrize(
    "builder,expected",
    [
        (ks.ViTTiny16, 5_717_416),
        (ks.ViTSmall16, 22_050_664),
        (ks.ViTBase16, 86_567_656),
        (ks.ViTBase32, 88_224_232),
        (ks.ViTLarge16, 304_326_632),
        (ks.ViTLarge32, 306_535_400),
        (ks.ViTHuge14, 632_045_800),
    ],
)
def test_official_parameter_counts(builder, expected):
    assert count_params_without_init(builder) == expected


@pytest.mark.skipif(
    BACKEND != "torch",
    reason="variable shapes are backend-independent and every leg counts "
    "them without allocating (above); this checks that count against a "
    "materialised model once, in the torch leg, where initialising is "
    "cheapest",
)
def test_materialised_vit_tiny_has_the_official_count():
    assert ks.ViTTiny16().count_params() == 5_717_416


def test_gap_classifier_has_no_class_token():
    # FORMAT.md: ViT-B/16 with classifier 'gap' has 1,536 fewer parameters.
    assert (
        count_params_without_init(ks.ViTBase16, classifier="gap") == 86_566_120
    )
    model = ks.VisionTransformer(**TINY, classifier="gap")
    assert "cls_token" not in [layer.name for layer in model.layers]
    assert model.get_layer("pos_embed").embedding.shape == (1, 16, 32)


def test_weight_paths():
    model = ks.VisionTransformer(**TINY, representation_size=16)
    paths = {w.path for w in model.weights}
    for expected in (
        "patch_embed/proj/kernel",
        "cls_token/cls",
        "pos_embed/embedding",
        "encoder/blocks_1/attn/qkv/kernel",
        "encoder/blocks_0/mlp/fc1/bias",
        "encoder/norm/gamma",
        "pre_logits/kernel",
        "head/kernel",
    ):
        assert expected in paths
    assert model.get_layer("pos_embed").embedding.shape == (1, 17, 32)


def test_representation_and_pooling_options():
    base = ks.VisionTransformer(**TINY)
    rep = ks.VisionTransformer(**TINY, representation_size=16)
    assert rep.count_params() - base.count_params() == (
        32 * 16 + 16 + (16 - 32) * 7
    )
    assert rep.get_layer("pre_logits").activation.__name__ == "tanh"
    tokens = ks.VisionTransformer(**TINY, include_top=False)
    assert tokens.output_shape == (None, 17, 32)
    pooled = ks.VisionTransformer(
        **TINY, include_top=False, pooling="token", representation_size=16
    )
    assert pooled.output_shape == (None, 16)
    for pooling in ("avg", "max"):
        model = ks.VisionTransformer(**TINY, include_top=False, pooling=pooling)
        assert model.output_shape == (None, 32)


def test_numerics_options_reach_every_layer():
    model = ks.VisionTransformer(
        **TINY, layer_norm_epsilon=1e-12, gelu_approximate=False
    )
    encoder = model.get_layer("encoder")
    assert encoder.norm.epsilon == 1e-12
    for block in encoder.blocks:
        assert block.norm1.epsilon == block.norm2.epsilon == 1e-12
        assert block.mlp.gelu_approximate is False
    assert (
        ks.VisionTransformer(**TINY)
        .get_layer("encoder")
        .blocks[0]
        .mlp.gelu_approximate
        is True
    )


def test_gelu_flavour_changes_outputs():
    exact = ks.VisionTransformer(
        **TINY, gelu_approximate=False, classifier_activation=None
    )
    rng = np.random.default_rng(0)
    for w in exact.weights:
        w.assign(rng.standard_normal(w.shape).astype("float32") * 0.3)
    tanh = ks.VisionTransformer(
        **TINY, gelu_approximate=True, classifier_activation=None
    )
    tanh.set_weights(exact.get_weights())
    x = rng.uniform(-1, 1, (2, 32, 32, 3)).astype("float32")
    assert max_abs_diff(predict(exact, x), predict(tanh, x)) > 1e-5


def test_argument_errors_name_the_problem():
    with pytest.raises(ValueError, match="multiple of the patch"):
        ks.VisionTransformer(**{**TINY, "input_shape": (30, 32, 3)})
    with pytest.raises(ValueError, match="position_embedding_resize must"):
        ks.VisionTransformer(**TINY, position_embedding_resize="linear")
    with pytest.raises(ValueError, match="classifier"):
        ks.VisionTransformer(**TINY, classifier="mean")
    with pytest.raises(ValueError, match="class token"):
        ks.VisionTransformer(
            **TINY, classifier="gap", include_top=False, pooling="token"
        )
    with pytest.raises(ValueError, match="pooling"):
        ks.VisionTransformer(**TINY, include_top=False, pooling="first")
