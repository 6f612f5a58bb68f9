"""SwinTransformer builder: sizes, arguments, ablations, any input size."""

import keras
import numpy as np
import pytest
from helpers import BACKEND, count_params_without_init, max_abs_diff, predict

import keras_swin as ks
from keras_swin.layers import SwinStage, windows

TINY = dict(
    embed_dim=16,
    depths=(2, 2, 2),
    num_heads=(1, 2, 4),
    window_size=4,
    classes=5,
)


# Official parameter counts (224 px, 1000 classes unless said).
@pytest.mark.parametrize(
    "builder,kwargs,expected",
    [
        (ks.SwinTiny, {}, 28_288_354),
        (ks.SwinSmall, {}, 49_606_258),
        (ks.SwinBase, {}, 87_768_224),
        (ks.SwinLarge, {}, 196_532_476),
        (
            ks.SwinBase,
            dict(input_shape=(384, 384, 3), window_size=12),
            87_903_584,
        ),
        (
            ks.SwinLarge,
            dict(input_shape=(384, 384, 3), window_size=12),
            196_735_516,
        ),
    ],
)
def test_official_parameter_counts(builder, kwargs, expected):
    assert count_params_without_init(builder, **kwargs) == expected


@pytest.mark.skipif(
    BACKEND != "torch",
    reason="variable shapes are backend-independent and every leg counts "
    "them without allocating (above); this checks that count against a "
    "materialised model once, in the torch leg, where initialising is "
    "cheapest",
)
def test_materialised_swin_tiny_has_the_official_count():
    assert ks.SwinTiny().count_params() == 28_288_354


def _randomized(model, seed=0):
    rng = np.random.default_rng(seed)
    for w in model.weights:
        w.assign(rng.standard_normal(w.shape).astype("float32") * 0.2)
    return model


def test_weight_paths_mirror_official_modules():
    model = ks.SwinTransformer(**TINY)
    paths = {w.path for w in model.weights}
    for expected in (
        "patch_embed/proj/kernel",
        "patch_embed/norm/gamma",
        "layers_0/blocks_1/attn/qkv/kernel",
        "layers_0/blocks_1/attn/relative_position_bias_table",
        "layers_1/blocks_0/mlp/fc2/bias",
        "layers_0_downsample/reduction/kernel",
        "layers_1_downsample/norm/beta",
        "norm/gamma",
        "head/kernel",
    ):
        assert expected in paths
    assert not any(p.startswith("layers_2_downsample") for p in paths)


def test_heads_and_pooling_shapes():
    x = np.random.default_rng(0).standard_normal((2, 64, 64, 3))
    shape = dict(input_shape=(64, 64, 3))
    probs = predict(ks.SwinTransformer(**TINY, **shape), x)
    assert probs.shape == (2, 5)
    np.testing.assert_allclose(probs.sum(-1), 1.0, rtol=1e-5)
    features = ks.SwinTransformer(**TINY, **shape, include_top=False)
    assert features.output_shape == (None, 4, 4, 64)
    for pooling in ("avg", "max"):
        pooled = ks.SwinTransformer(
            **TINY, **shape, include_top=False, pooling=pooling
        )
        assert pooled.output_shape == (None, 64)


def test_input_tensor_is_used():
    image = keras.Input((64, 64, 3))
    scaled = keras.layers.Rescaling(2.0)(image)
    model = ks.SwinTransformer(**TINY, input_tensor=scaled)
    assert model.inputs[0] is image
    assert tuple(model.output.shape) == (None, 5)


def test_ablation_arguments_change_the_model():
    base = ks.SwinTransformer(**TINY, input_shape=(64, 64, 3))
    no_bias = ks.SwinTransformer(
        **TINY, input_shape=(64, 64, 3), relative_position_bias=False
    )
    tables = sum(
        int(np.prod(w.shape))
        for w in base.weights
        if "relative_position_bias_table" in w.path
    )
    assert tables > 0
    assert base.count_params() - no_bias.count_params() == tables
    ape = ks.SwinTransformer(
        **TINY, input_shape=(64, 64, 3), absolute_position_embedding=True
    )
    assert ape.count_params() - base.count_params() == 16 * 16 * 16
    assert ape.get_layer("absolute_pos_embed") is not None
    no_shift = ks.SwinTransformer(
        **TINY, input_shape=(64, 64, 3), shifted_windows=False
    )
    assert no_shift.count_params() == base.count_params()
    shifts = [b.shift_size for b in no_shift.get_layer("layers_0").blocks]
    assert shifts == [0, 0]
    shifted = _randomized(
        ks.SwinTransformer(**TINY, input_shape=(64, 64, 3), include_top=False)
    )
    unshifted = ks.SwinTransformer(
        **TINY,
        input_shape=(64, 64, 3),
        include_top=False,
        shifted_windows=False,
    )
    unshifted.set_weights(shifted.get_weights())
    x = (
        np.random.default_rng(1)
        .standard_normal((1, 64, 64, 3))
        .astype("float32")
    )
    assert max_abs_diff(predict(shifted, x), predict(unshifted, x)) > 1e-3


def test_static_stage_windows_clamp_like_official():
    # 64 px, patch 4: stage maps 16, 8, 4, 2; window 4 -> 4, 4, 4, 2.
    model = ks.SwinTransformer(
        embed_dim=16,
        depths=(2, 2, 2, 2),
        num_heads=(1, 2, 4, 8),
        window_size=4,
        input_shape=(64, 64, 3),
        classes=5,
    )
    tables = [
        model.get_layer(f"layers_{i}")
        .blocks[0]
        .attn.relative_position_bias_table.shape[0]
        for i in range(4)
    ]
    assert tables == [49, 49, 49, 9]


@pytest.mark.parametrize(
    "size", [(64, 64), (70, 45), (33, 97), (20, 20), (5, 9)]
)
def test_any_input_size_matches_static_model(size):
    dynamic = _randomized(
        ks.SwinTransformer(**TINY, input_shape=(None, None, 3))
    )
    static = ks.SwinTransformer(**TINY, input_shape=size + (3,))
    x = (
        np.random.default_rng(2)
        .standard_normal((2,) + size + (3,))
        .astype("float32")
    )
    out = predict(dynamic, x)
    assert out.shape == (2, 5) and np.isfinite(out).all()
    if [w.shape for w in static.weights] == [w.shape for w in dynamic.weights]:
        static.set_weights(dynamic.get_weights())
        assert max_abs_diff(out, predict(static, x)) < 1e-5
    else:
        # Tiny maps: the static model's clamped tables are smaller.
        assert min(size) < 4 * 4 * 4


def test_predict_on_varying_sizes_in_one_model():
    # On TensorFlow the later calls run the in-graph path (unknown H, W).
    reference = _randomized(
        ks.SwinTransformer(**TINY, input_shape=(None, None, 3))
    )
    for size in [(64, 64), (50, 70), (90, 40)]:
        x = np.random.default_rng(3).standard_normal((2,) + size + (3,))
        x = x.astype("float32")
        # A fresh model per size is the reference for the reused one.
        fresh = ks.SwinTransformer(**TINY, input_shape=(None, None, 3))
        fresh.set_weights(reference.get_weights())
        assert max_abs_diff(predict(reference, x), predict(fresh, x)) < 1e-5


@pytest.mark.skipif(
    BACKEND != "tensorflow",
    reason="unknown H and W in a graph exist on TensorFlow "
    "only; JAX and torch always see static shapes",
)
def test_tensorflow_graph_with_unknown_size():
    import tensorflow as tf

    model = _randomized(ks.SwinTransformer(**TINY, input_shape=(None, None, 3)))
    graph = tf.function(
        model,
        input_signature=[tf.TensorSpec((None, None, None, 3), tf.float32)],
    )
    for size in [(64, 64), (37, 71), (12, 12)]:
        x = np.random.default_rng(4).standard_normal((1,) + size + (3,))
        x = x.astype("float32")
        assert max_abs_diff(graph(x), model(x)) < 1e-5


def test_masks_and_indices_are_computed_and_converted_once():
    stage = SwinStage(16, 2, 2, window_size=4)
    x = np.zeros((1, 12, 12, 16), "float32")
    stage(x)
    masks = windows.shift_window_mask.cache_info()
    indices = windows.relative_position_index.cache_info()
    stage(x)
    # The second call reads converted tensors: the numpy builders are not
    # even consulted.
    assert windows.shift_window_mask.cache_info() == masks
    assert windows.relative_position_index.cache_info() == indices
    first = windows.constant(windows.shift_window_mask, 12, 12, 4, 2)
    assert windows.constant(windows.shift_window_mask, 12, 12, 4, 2) is first
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(first),
        windows.shift_window_mask(12, 12, 4, 2),
    )


def test_mixed_bfloat16_model():
    keras.config.set_dtype_policy("mixed_bfloat16")
    model = ks.SwinTransformer(**TINY, input_shape=(None, None, 3))
    assert model.get_layer("layers_0").compute_dtype == "bfloat16"
    assert all(w.dtype == "float32" for w in model.weights)
    out = predict(model, np.zeros((1, 50, 50, 3), "float32"))
    assert np.isfinite(out.astype("float32")).all()


def test_argument_errors_name_the_problem():
    with pytest.raises(ValueError, match="same length"):
        ks.SwinTransformer(depths=(2, 2), num_heads=(1,))
    with pytest.raises(ValueError, match="pooling"):
        ks.SwinTransformer(**TINY, include_top=False, pooling="mean")
    with pytest.raises(ValueError, match="static input size"):
        ks.SwinTransformer(
            **TINY,
            input_shape=(None, None, 3),
            absolute_position_embedding=True,
        )
    with pytest.raises(ValueError, match="height, width, channels"):
        ks.SwinTransformer(**TINY, input_shape=(64, 64))
    with pytest.raises(ValueError, match="classes"):
        ks.SwinTransformer(**{**TINY, "classes": 0})
    with pytest.raises(ValueError, match="none of the registered variants"):
        ks.SwinTransformer(**TINY, weights="imagenet")
    with pytest.raises(ValueError, match="none of these"):
        ks.SwinTransformer(**TINY, weights="no/such/file.weights.h5")


def test_feature_model_outputs_every_stage():
    backbone = ks.SwinTransformer(
        **TINY, include_top=False, input_shape=(None, None, 3)
    )
    pyramid = ks.swin_feature_model(backbone)
    assert sorted(pyramid.output) == ["layers_0", "layers_1", "layers_2"]
    assert pyramid.output["layers_2"].shape[-1] == 64
    merged = ks.swin_feature_model(backbone, ["layers_0_downsample", "norm"])
    assert merged.output["layers_0_downsample"].shape[-1] == 32
    with pytest.raises(ValueError, match="no layer named"):
        ks.swin_feature_model(backbone, ["stage_9"])
