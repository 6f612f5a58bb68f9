"""Identity whose gradient is materialised, so XLA:CPU cannot re-compute it.

Why this exists (measured on JAX 0.10 / XLA:CPU, 2-core AMD EPYC): in the
backward pass of a residual network, the gradient flowing down the residual
stream is a chain of cheap element-wise adds (one per LayerNorm and per
residual branch). XLA:CPU fuses cheap producers into every consumer, and
`optimization_barrier` is expanded away on CPU before fusion, so each
consumer of that gradient (the transposes feeding the weight-gradient
matmuls, the LayerNorm reductions) re-computed the whole chain from the top
of the network: work quadratic in depth. In a ViT-B/16 training step the
transposes of 768x1576 gradients, 2 ms of memory traffic each, took up to
300 ms apiece, 2.7 s of a 12 s step.

A conditional is something XLA cannot fuse through: its operand must exist
in memory. `gradient_barrier` is the identity in the forward pass; in the
backward pass it routes the incoming gradient through a `lax.cond` whose
two branches both return it unchanged (bit for bit, NaN and -0.0
included), which cuts the chain at every block boundary. Only the JAX
backend needs it; on TensorFlow and PyTorch it returns its input.
"""

from __future__ import annotations

import keras

#: Set to False to trace models without the barrier (for A/B measurements);
#: read when a function is traced, not when it runs.
enabled = True

_barrier = None


def _jax_barrier():
    global _barrier
    if _barrier is None:
        import jax
        import jax.numpy as jnp

        @jax.custom_vjp
        def barrier(x):
            return x

        def forward(x):
            return x, None

        def backward(_, g):
            if g.size == 0:
                return (g,)
            # A data-dependent predicate, so the conditional cannot be
            # folded away at compile time; both branches are the identity.
            pred = jnp.isfinite(jnp.reshape(g, (-1,))[0])
            return (jax.lax.cond(pred, lambda t: t, lambda t: t * 1, g),)

        barrier.defvjp(forward, backward)
        _barrier = barrier
    return _barrier


def gradient_barrier(x):
    """Return `x`; on JAX, materialise the gradient that flows back through it.

    The forward value is `x` itself on every backend. On the JAX backend the
    gradient with respect to `x` is routed through a conditional so that
    XLA stores it once instead of re-computing its producers in each
    consumer (see the module docstring for the measurements). Gradients are
    unchanged: both branches of the conditional are the identity.

    Args:
        x: a tensor of any shape and floating dtype.

    Returns:
        `x`, shape and dtype unchanged.

    Example:
        >>> y = gradient_barrier(keras.ops.ones((2, 3)))
        >>> tuple(y.shape)
        (2, 3)
    """
    if not enabled or keras.backend.backend() != "jax":
        return x
    return _jax_barrier()(x)
