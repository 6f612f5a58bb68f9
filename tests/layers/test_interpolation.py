"""In-graph resize matrices against the numpy references of resample.py.

`weights_tools.resample` is validated against torch's `interpolate` and
scipy's `zoom` (tests/weights_tools); these tests hold the keras.ops
twins to it on every backend.
"""

import keras
import numpy as np
import pytest
from helpers import BACKEND, to_numpy

from keras_swin.layers.interpolation import (
    METHODS,
    _graph_matrix,
    resize_grid,
    resize_matrix,
)
from weights_tools.resample import (
    _bicubic_aa_matrix,
    _bicubic_matrix,
    _linear_zoom_matrix,
    bicubic_resize,
    linear_zoom,
)

NUMPY_MATRICES = {
    "bicubic": _bicubic_matrix,
    "bicubic_antialias": _bicubic_aa_matrix,
    "zoom": _linear_zoom_matrix,
}


def numpy_resize(grid, size, method):
    """The numpy reference on axes (1, 2) of a (B, h, w, C) map."""
    if method == "zoom":
        return linear_zoom(grid, size, axes=(1, 2))
    antialias = method == "bicubic_antialias"
    return bicubic_resize(grid, size, axes=(1, 2), antialias=antialias)


# (n_in, n_out): up, down, to and from 1, odd ratios, equal.
SIZES = [(7, 12), (12, 7), (14, 24), (24, 14), (5, 1), (1, 5), (9, 9), (3, 17)]


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("n_in,n_out", SIZES)
def test_matrix_matches_numpy(method, n_in, n_out):
    matrix = to_numpy(resize_matrix(n_in, n_out, method))
    assert matrix.dtype == np.float32
    assert matrix.shape == (n_out, n_in)
    reference = NUMPY_MATRICES[method](n_in, n_out)
    np.testing.assert_allclose(matrix, reference, rtol=0, atol=1e-6)


def graph_matrix(n_in, n_out, method):
    """The in-graph (keras.ops) weights, compiled once on JAX."""
    if BACKEND == "jax":
        import jax

        return jax.jit(lambda: _graph_matrix(n_in, n_out, method))()
    return _graph_matrix(n_in, n_out, method)


@pytest.mark.parametrize("method", METHODS)
def test_graph_matrix_matches_numpy(method):
    """The keras.ops weights (used for sizes known only at run time)."""
    for n_in, n_out in SIZES:
        matrix = to_numpy(graph_matrix(n_in, n_out, method))
        assert matrix.dtype == np.float32
        assert matrix.shape == (n_out, n_in)
        reference = NUMPY_MATRICES[method](n_in, n_out)
        np.testing.assert_allclose(
            matrix, reference, rtol=0, atol=1e-6, err_msg=f"{n_in}->{n_out}"
        )


@pytest.mark.parametrize("method", METHODS)
def test_matrix_identity_at_equal_size(method):
    for matrix in resize_matrix(6, 6, method), graph_matrix(6, 6, method):
        np.testing.assert_array_equal(
            to_numpy(matrix), np.eye(6, dtype=np.float32)
        )


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(
    "grid,size",
    [((7, 5), (12, 9)), ((12, 10), (5, 7)), ((6, 6), (9, 4)), ((8, 3), (8, 6))],
    ids=["up", "down", "mixed", "one-axis"],
)
def test_resize_grid_matches_numpy(method, grid, size, rng):
    x = rng.standard_normal((2, *grid, 5)).astype("float32")
    out = to_numpy(resize_grid(keras.ops.convert_to_tensor(x), size, method))
    assert out.shape == (2, *size, 5)
    reference = numpy_resize(x.astype("float64"), size, method)
    np.testing.assert_allclose(out, reference, rtol=0, atol=1e-6)


@pytest.mark.parametrize("method", METHODS)
def test_resize_grid_identity_is_the_input(method, rng):
    x = keras.ops.convert_to_tensor(rng.standard_normal((1, 4, 6, 3)))
    assert resize_grid(x, (4, 6), method) is x
    square = keras.ops.ones((1, 5, 5, 2))
    assert resize_grid(square, 5, method) is square


def test_resize_grid_keeps_dtype(rng):
    x = rng.standard_normal((1, 6, 6, 4)).astype("float32")
    half = keras.ops.cast(keras.ops.convert_to_tensor(x), "bfloat16")
    out = resize_grid(half, (9, 9), "bicubic")
    assert keras.backend.standardize_dtype(out.dtype) == "bfloat16"
    reference = bicubic_resize(
        to_numpy(keras.ops.cast(half, "float32")), 9, axes=(1, 2)
    )
    np.testing.assert_allclose(
        to_numpy(keras.ops.cast(out, "float32")), reference, atol=0.02
    )


def test_errors():
    with pytest.raises(ValueError, match="Unknown resize method 'bilinear'"):
        resize_matrix(4, 5, "bilinear")
    with pytest.raises(ValueError, match="n_in must be a positive int"):
        resize_matrix(0, 5, "zoom")
    with pytest.raises(ValueError, match="n_out must be a positive"):
        resize_matrix(4, 0, "zoom")
    with pytest.raises(ValueError, match=r"static h and w"):
        resize_grid(keras.ops.ones((4, 4, 2)), (5, 5), "zoom")


@pytest.mark.skipif(BACKEND != "tensorflow", reason="TensorFlow graphs only")
@pytest.mark.parametrize("method", METHODS)
def test_dynamic_size_in_a_tf_graph(method, rng):
    import tensorflow as tf

    stored = rng.standard_normal((1, 6, 5, 3)).astype("float32")

    @tf.function(
        input_signature=[tf.TensorSpec((None, None, None, 3), tf.float32)]
    )
    def resize_like(image):
        size = tf.shape(image)[1], tf.shape(image)[2]
        matrix = resize_matrix(6, size[0], method)
        assert matrix.shape[0] is None  # the size is only known at run time
        return resize_grid(tf.constant(stored), size, method)

    for size in [(9, 4), (3, 11), (6, 5)]:
        out = resize_like(tf.zeros((1, *size, 3))).numpy()
        reference = numpy_resize(stored.astype("float64"), size, method)
        np.testing.assert_allclose(out, reference, rtol=0, atol=1e-6)
    # At the stored size the in-graph comparison gives the input back.
    np.testing.assert_array_equal(
        resize_like(tf.zeros((1, 6, 5, 3))).numpy(), stored
    )
    assert len(resize_like.get_concrete_function().graph.inputs) == 1
