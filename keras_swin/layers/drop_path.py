"""Stochastic depth (DropPath)."""

from __future__ import annotations

import keras
from keras import ops

from keras_swin.layers._serialization import ConfigFromArguments, register


@register
class DropPath(ConfigFromArguments, keras.layers.Layer):
    """Drops whole residual branches per sample (stochastic depth).

    In training each sample's input is zeroed with probability `rate` and
    the survivors are scaled by 1 / (1 - rate) (Huang et al., 2016, as in
    timm's `DropPath`). At inference it is the identity.

    Args:
        rate: drop probability in [0, 1).
        seed: optional int seed for the layer's `SeedGenerator`.
        **kwargs: base `Layer` arguments (`name`, `dtype`, ...).

    Shapes:
        inputs: (B, ...) -> same shape.

    Example:
        >>> layer = DropPath(0.2, seed=1)
        >>> y = layer(keras.ops.ones((4, 8)), training=True)
    """

    def __init__(self, rate: float = 0.0, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"DropPath rate must be in [0, 1), got {rate}.")
        self.rate = rate
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.supports_masking = True

    def call(self, inputs, training=None):
        if not training or self.rate == 0.0:
            return inputs
        keep = 1.0 - self.rate
        shape = (ops.shape(inputs)[0],) + (1,) * (len(inputs.shape) - 1)
        noise = keras.random.uniform(
            shape, seed=self.seed_generator, dtype=inputs.dtype
        )
        return inputs / keep * ops.floor(keep + noise)

    def compute_output_shape(self, input_shape):
        return input_shape


def linear_drop_path_rates(rate: float, count: int) -> list[float]:
    """Stochastic depth rates rising linearly from 0 to `rate`.

    The schedule of the Swin paper and timm (`torch.linspace(0, rate,
    count)`), computed in float64.

    Args:
        rate: the last block's rate.
        count: number of blocks.

    Returns:
        A list of `count` floats.

    Example:
        >>> linear_drop_path_rates(0.2, 3)
        [0.0, 0.1, 0.2]
    """
    if count == 1:
        return [0.0]
    return [rate * i / (count - 1) for i in range(count)]
