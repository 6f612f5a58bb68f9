"""A layer that outputs another layer's attention probabilities."""

from __future__ import annotations

import keras

from keras_swin.layers._serialization import register

#: Sizes substituted for unknown axes when JAX infers output shapes.
_PROBE_SIZES = (3, 83, 89)


@register
class AttentionProbe(keras.layers.Layer):
    """Calls `layer.attention_probabilities` in a functional graph.

    Wraps a built layer that has an `attention_probabilities(inputs)`
    method (`SwinStage`, `SwinBlock`, `ViTEncoder`, `ViTEncoderBlock`,
    `Attention`, ...) so that the probabilities become outputs of a
    `keras.Model`: call the probe on the tensor that fed `layer` in the
    original model, and the new model shares that model's weights (the
    probe tracks `layer` itself, nothing is copied or rebuilt). Works on
    symbolic tensors of unknown height and width where `layer` does.

    Analysis only; it does not serialise: `get_config` raises
    NotImplementedError, so a model containing a probe cannot be saved
    as a `.keras` file (its wrapped layer is the original model's, and a
    saved copy would lose that sharing). Save the original model and
    build the probe model again after loading it
    (`keras_swin.analysis.attention_model`). The model's weights can
    still be saved with `save_weights`.

    Args:
        layer: the layer to probe; it must have an
            `attention_probabilities(inputs)` method.
        **kwargs: base `Layer` arguments (name, ...); the dtype policy
            defaults to the wrapped layer's.

    Shapes:
        inputs: what `layer` takes, e.g. (B, H, W, C) for a `SwinStage`.
        output: a list of float32 tensors, one per block of `layer` (a
        layer returning one tensor gives a one-element list), e.g. a
        `SwinStage` gives `depth` tensors (B, nW, heads, M*M, M*M).

    Example:
        >>> stage = SwinStage(dim=16, depth=2, num_heads=2, window_size=4)
        >>> x = keras.Input((8, 8, 16))
        >>> probe = keras.Model(x, AttentionProbe(stage)(x))
        >>> [tuple(p.shape) for p in probe(keras.ops.ones((1, 8, 8, 16)))]
        [(1, 4, 2, 16, 16), (1, 4, 2, 16, 16)]
    """

    def __init__(self, layer, **kwargs):
        if not callable(getattr(layer, "attention_probabilities", None)):
            raise ValueError(
                "AttentionProbe needs a layer with an "
                "`attention_probabilities(inputs)` method (SwinStage, "
                "SwinBlock, ViTEncoder, ViTEncoderBlock, Attention), got "
                f"{type(layer).__name__} {getattr(layer, 'name', layer)!r}."
            )
        kwargs.setdefault("dtype", layer.dtype_policy)
        kwargs.setdefault("name", f"{layer.name}_attention_probe")
        super().__init__(**kwargs)
        self.layer = layer

    def build(self, input_shape):
        if not self.layer.built:
            self.layer.build(input_shape)

    def call(self, inputs):
        probs = self.layer.attention_probabilities(inputs)
        if isinstance(probs, (list, tuple)):
            return list(probs)
        return [probs]

    def compute_output_spec(self, inputs):
        known = all(d is not None for d in inputs.shape)
        if known or keras.backend.backend() == "tensorflow":
            return super().compute_output_spec(inputs)
        # JAX traces unknown sizes as one symbolic dimension, which the
        # windows' Python layout arithmetic cannot take, and PyTorch as
        # two large sizes, which would fix a window that smaller maps
        # clamp. Trace concrete sizes instead (one below any window, two
        # large) and leave unknown every output axis that differs. A
        # TensorFlow graph keeps unknown sizes (the in-graph layout).
        specs = [
            super(AttentionProbe, self).compute_output_spec(
                keras.KerasTensor(
                    tuple(size if d is None else d for d in inputs.shape),
                    dtype=inputs.dtype,
                )
            )
            for size in _PROBE_SIZES
        ]
        return [
            keras.KerasTensor(
                tuple(
                    dims[0] if len(set(dims)) == 1 else None
                    for dims in zip(*(s.shape for s in group), strict=True)
                ),
                dtype=group[0].dtype,
            )
            for group in zip(*specs, strict=True)
        ]

    def get_config(self):
        raise NotImplementedError(
            f"{self.name}: AttentionProbe is an analysis-only layer and "
            "does not serialise (it shares the probed layer's weights with "
            "the model it came from). Save the original model instead and "
            "rebuild the attention model after loading it, e.g. with "
            "keras_swin.analysis.attention_model(model)."
        )
