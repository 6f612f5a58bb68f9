"""The segmentation layers against PyTorch's own operators.

`AdaptiveAveragePooling2D` against `F.adaptive_avg_pool2d` and
`resize_bilinear` against `F.interpolate(mode="bilinear",
align_corners=False)`, on sizes that divide, that do not, and that are
smaller than the output; both with static sizes and with the in-graph
path used when sizes are only known at run time. Then the usual layer
checks: config round-trip, symbolic shapes, bad arguments.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
from helpers import BACKEND, to_numpy

from keras_swin.layers import (
    AdaptiveAveragePooling2D,
    ConvModule,
    FCNHead,
    ResizeLike,
    UperNetHead,
    resize_bilinear,
)
from keras_swin.layers.adaptive_pool import adaptive_bins, adaptive_pool_matrix
from keras_swin.layers.resize import _axis_resize

torch = pytest.importorskip("torch")
F = torch.nn.functional


def _maps(shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def _torch_nhwc(op, x, *args, **kwargs):
    out = op(torch.tensor(x).permute(0, 3, 1, 2), *args, **kwargs)
    return out.permute(0, 2, 3, 1).numpy()


def test_adaptive_bins_by_hand():
    # L=5, s=3: [0*5//3, ceil(5/3)) = [0, 2), [5//3, ceil(10/3)) = [1, 4),
    # [10//3, ceil(15/3)) = [3, 5): overlapping bins.
    assert adaptive_bins(5, 3) == [(0, 2), (1, 4), (3, 5)]
    # L=2, s=3: [0, 1), [0, 2), [1, 2): inputs repeat.
    assert adaptive_bins(2, 3) == [(0, 1), (0, 2), (1, 2)]


@pytest.mark.parametrize(
    "size, scale",
    [((12, 12), 6), ((7, 10), 3), ((8, 11), 6), ((4, 5), 6), ((1, 3), 2)],
)
def test_adaptive_pooling_matches_torch(size, scale):
    x = _maps((2, *size, 3))
    expected = _torch_nhwc(F.adaptive_avg_pool2d, x, scale)
    got = to_numpy(AdaptiveAveragePooling2D(scale)(x))
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize("length, bins", [(11, 6), (4, 6), (9, 3)])
def test_run_time_pool_matrix_equals_static(length, bins):
    dynamic = adaptive_pool_matrix(keras.ops.convert_to_tensor(length), bins)
    np.testing.assert_array_equal(
        to_numpy(dynamic), adaptive_pool_matrix(length, bins)
    )


@pytest.mark.parametrize(
    "source, target",
    [
        ((6, 7), (13, 11)),
        ((8, 10), (4, 5)),
        ((6, 6), (24, 20)),
        ((5, 9), (5, 3)),
    ],
)
def test_resize_matches_torch_both_paths(source, target):
    x = _maps((2, *source, 3), seed=1)
    expected = _torch_nhwc(
        F.interpolate, x, size=target, mode="bilinear", align_corners=False
    )
    static = to_numpy(resize_bilinear(keras.ops.convert_to_tensor(x), target))
    np.testing.assert_allclose(static, expected, rtol=0, atol=2e-6)
    if BACKEND == "jax":
        return  # JAX shapes are always static: the gather path never runs.
    # The path for sizes known only at run time (TensorFlow graphs).
    t = keras.ops.convert_to_tensor(x)
    sizes = [keras.ops.convert_to_tensor(s) for s in target]
    gathered = to_numpy(_axis_resize(_axis_resize(t, 1, sizes[0]), 2, sizes[1]))
    np.testing.assert_allclose(gathered, expected, rtol=0, atol=2e-6)


@pytest.mark.skipif(BACKEND != "tensorflow", reason="TensorFlow graphs only")
def test_tensorflow_graph_with_unknown_sizes():
    import tensorflow as tf

    x = _maps((1, 7, 9, 2))
    reference = _maps((1, 20, 15, 4))
    spec = [
        tf.TensorSpec((None, None, None, 2)),
        tf.TensorSpec((None, None, None, 4)),
    ]
    resize = tf.function(
        lambda a, b: ResizeLike()([a, b]), input_signature=spec
    )
    pool = tf.function(
        lambda a: AdaptiveAveragePooling2D(3)(a), input_signature=spec[:1]
    )
    np.testing.assert_allclose(
        resize(x, reference).numpy(),
        _torch_nhwc(F.interpolate, x, size=(20, 15), mode="bilinear"),
        atol=2e-6,
    )
    np.testing.assert_allclose(
        pool(x).numpy(), _torch_nhwc(F.adaptive_avg_pool2d, x, 3), atol=1e-6
    )


def test_conv_module_is_conv_bn_relu_of_torch():
    x = _maps((1, 6, 5, 4), seed=2)
    block = ConvModule(3, kernel_size=3)
    block.build(x.shape)
    rng = np.random.default_rng(3)
    kernel = rng.normal(size=(3, 4, 3, 3)).astype("float32")  # OIHW
    gamma, beta = rng.normal(size=3), rng.normal(size=3)
    mean, var = rng.normal(size=3), rng.uniform(0.5, 1.5, size=3)
    block.conv.kernel.assign(kernel.transpose(2, 3, 1, 0))
    for variable, value in zip(
        block.bn.weights, (gamma, beta, mean, var), strict=True
    ):
        variable.assign(value.astype("float32"))
    t = torch.tensor(x).permute(0, 3, 1, 2)
    y = F.conv2d(t, torch.tensor(kernel), padding=1)
    y = F.batch_norm(
        y,
        torch.tensor(mean, dtype=torch.float32),
        torch.tensor(var, dtype=torch.float32),
        torch.tensor(gamma, dtype=torch.float32),
        torch.tensor(beta, dtype=torch.float32),
        eps=1e-5,
    )
    expected = F.relu(y).permute(0, 2, 3, 1).numpy()
    np.testing.assert_allclose(to_numpy(block(x)), expected, atol=1e-5)


LAYERS = [
    (lambda: AdaptiveAveragePooling2D((2, 3)), (2, 7, 5, 3)),
    (lambda: ConvModule(4, kernel_size=3), (2, 7, 5, 3)),
    (
        lambda: FCNHead(3, channels=4, num_convs=2, concat_input=True),
        (2, 7, 5, 3),
    ),
    (lambda: FCNHead(3, channels=4, num_convs=0), (2, 7, 5, 3)),
]


@pytest.mark.parametrize("make, shape", LAYERS)
def test_layer_config_round_trip_and_shapes(make, shape):
    layer = make()
    clone = type(layer).from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    x = _maps(shape)
    symbolic = layer.compute_output_shape(shape)
    assert tuple(to_numpy(layer(x)).shape) == tuple(symbolic)


def test_upernet_head_shapes_and_round_trip():
    # Symbolic: the numbers of the head are the golden tests' business.
    maps = [keras.Input((16 // 2**i, None, 4 * 2**i)) for i in range(3)]
    head = UperNetHead(5, channels=8, pool_scales=(1, 3), num_levels=3)
    assert tuple(head(maps).shape) == (None, 16, None, 5)
    clone = UperNetHead.from_config(head.get_config())
    assert clone.get_config() == head.get_config()
    assert head.get_config()["pool_scales"] == [1, 3]


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: AdaptiveAveragePooling2D(0), "output_size"),
        (lambda: ConvModule(4, kernel_size=2), "odd"),
        (lambda: FCNHead(3, num_convs=0, concat_input=True), "num_convs"),
        (lambda: UperNetHead(3, pool_scales=(1, 1)), "pool_scales"),
        (lambda: UperNetHead(3, num_levels=0), "num_levels"),
    ],
)
def test_bad_arguments(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_upernet_head_refuses_wrong_number_of_maps():
    head = UperNetHead(3, channels=4, num_levels=4)
    with pytest.raises(ValueError, match="list of 4"):
        head([_maps((1, 8, 8, 4)), _maps((1, 4, 4, 8))])


def test_conv_module_initialisation_follows_mmcv():
    head = FCNHead(64, channels=32, num_convs=1)
    head.build((None, None, None, 16))
    # kaiming normal, fan_out = 3 * 3 * 32 outputs: std sqrt(2 / 288).
    conv_std = float(np.std(to_numpy(head.convs[0].conv.kernel)))
    assert 0.075 < conv_std < 0.092
