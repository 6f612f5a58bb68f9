"""gradient_barrier: identity forward, exact gradients, a barrier on JAX."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from helpers import BACKEND, to_numpy

from keras_swin.layers import (
    SwinBlock,
    ViTEncoderBlock,
)
from keras_swin.layers import (
    gradient_barrier as gb_module,
)
from keras_swin.layers.gradient_barrier import gradient_barrier

jax_only = pytest.mark.skipif(
    BACKEND != "jax", reason="the barrier acts on JAX only"
)


@pytest.fixture
def barrier_enabled():
    """Restores the module switch whatever a test sets."""
    saved = gb_module.enabled
    yield
    gb_module.enabled = saved


def test_forward_is_the_identity(rng):
    x = keras.ops.convert_to_tensor(
        rng.standard_normal((2, 5, 7)).astype("float32")
    )
    y = gradient_barrier(x)
    assert tuple(y.shape) == (2, 5, 7)
    np.testing.assert_array_equal(to_numpy(y), to_numpy(x))


@pytest.mark.skipif(
    BACKEND == "jax", reason="on JAX the barrier wraps its input"
)
def test_other_backends_return_the_input_object(rng):
    x = keras.ops.convert_to_tensor(
        rng.standard_normal((3, 4)).astype("float32")
    )
    assert gradient_barrier(x) is x


@jax_only
def test_gradient_passes_bit_for_bit_including_special_values():
    import jax
    import jax.numpy as jnp

    special = jnp.asarray(
        [jnp.nan, -0.0, jnp.inf, -jnp.inf, 1.5, -2.25], jnp.float32
    )
    x = jnp.ones(6, jnp.float32)
    grad = jax.jit(jax.grad(lambda x, w: jnp.sum(gradient_barrier(x) * w)))
    # The first element decides the conditional's branch: try both branches.
    for w in (special, special[::-1]):
        got = np.asarray(grad(x, w))
        np.testing.assert_array_equal(
            got.view(np.uint32), np.asarray(w).view(np.uint32)
        )


@jax_only
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_gradient_keeps_dtype_and_handles_empty_tensors(dtype):
    import jax
    import jax.numpy as jnp

    for shape in [(4, 3), (0, 3)]:
        x = jnp.full(shape, 0.5, dtype)
        g = jax.grad(
            lambda t: jnp.sum(gradient_barrier(t) * 3).astype("float32")
        )(x)
        assert g.dtype == jnp.dtype(dtype) and g.shape == shape
        np.testing.assert_array_equal(
            np.asarray(g, np.float32), np.full(shape, 3.0)
        )


def _block_gradients(block, x, enabled):
    """Jaxpr of the backward pass, and the gradients of sum(block(x)**2)
    with respect to the weights and to `x` (as inside a network, where the
    block's input depends on earlier weights)."""
    import jax
    import jax.numpy as jnp

    gb_module.enabled = enabled
    weights = [v.value for v in block.trainable_variables]
    others = [v.value for v in block.non_trainable_variables]

    def loss(weights, x):
        y, _ = block.stateless_call(weights, others, x, training=True)
        return jnp.sum(y**2)

    grad = jax.grad(loss, argnums=(0, 1))
    jaxpr = str(jax.make_jaxpr(grad)(weights, x))
    weight_grads, input_grad = jax.jit(grad)(weights, x)
    return jaxpr, [*weight_grads, input_grad]


@jax_only
@pytest.mark.usefixtures("barrier_enabled")
@pytest.mark.parametrize("kind", ["swin", "vit"])
def test_blocks_put_the_barrier_in_the_backward_pass_only(kind, rng):
    if kind == "swin":
        block = SwinBlock(dim=16, num_heads=2, window_size=4, shift_size=2)
        x = rng.standard_normal((2, 8, 8, 16)).astype("float32")
    else:
        block = ViTEncoderBlock(dim=16, num_heads=2, mlp_dim=32)
        x = rng.standard_normal((2, 9, 16)).astype("float32")
    block.build(x.shape)
    plain_jaxpr, plain = _block_gradients(block, x, enabled=False)
    barrier_jaxpr, barred = _block_gradients(block, x, enabled=True)
    # Two barriers per block (block input, after the attention residual).
    assert plain_jaxpr.count("cond[") == 0
    assert barrier_jaxpr.count("cond[") == 2
    for a, b in zip(plain, barred, strict=True):
        np.testing.assert_allclose(
            np.asarray(b), np.asarray(a), rtol=1e-6, atol=1e-6
        )
    # The forward pass is untouched: same outputs either way.
    gb_module.enabled = True
    y_on = to_numpy(block(x))
    gb_module.enabled = False
    np.testing.assert_array_equal(to_numpy(block(x)), y_on)
