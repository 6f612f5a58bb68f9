"""Patch embedding: non-overlapping patches to tokens on a grid."""

from __future__ import annotations

import keras
from keras import ops

from keras_swin.layers._serialization import ConfigFromArguments, register
from keras_swin.layers.windows import pad_bottom_right


def input_size_error(built, given) -> str:
    """The message for an image size other than the one a model was built for.

    Args:
        built: (H, W) the model was built for; None for a free side.
        given: (h, w) of the call; None where it is unknown until run time.

    Returns:
        A message naming both sizes and the ways to get a model for the
        given size.

    Example:
        >>> input_size_error((64, 64), (65, 65)).split(":")[0]
        'This model was built for 64x64 images and got 65x65 ones'
    """

    def side(value):
        return "any" if value is None else str(value)

    built_text = "x".join(side(v) for v in built)
    if given is None or None in given:
        given_text = "images of another size (their shape is shown below)"
        target = "(H, W, 3)"
    else:
        given_text = f"{given[0]}x{given[1]} ones"
        target = f"({given[0]}, {given[1]}, 3)"
    return (
        f"This model was built for {built_text} images and got "
        f"{given_text}: what it precomputed for its input size (Swin: the "
        "window of each stage, the window layout and attention masks; ViT: "
        "the position embedding) holds for that size only, so another size "
        f"would give wrong results. Resize the images to {built_text}, or "
        "build the model for the size you need: input_shape=(None, None, 3) "
        f"gives a model that takes any size; or input_shape={target}. "
        "Pretrained weights are resampled for the new size by the "
        "builder's weights=<registered name> or by "
        f"keras_swin.load_checkpoint(original_checkpoint, "
        f"input_shape={target})."
    )


def _assert_size_at_run_time(x, size, message):
    """`x` with its static size set, checked when the graph runs.

    Only a TensorFlow graph traced for unknown sizes (tf.data, or the
    relaxed shapes of a retraced `predict`) reaches a call without static
    height and width; JAX and PyTorch always see concrete shapes. keras.ops
    has no assertion, hence TensorFlow's own.
    """
    if keras.backend.backend() != "tensorflow":
        return x
    import tensorflow as tf

    actual = tf.shape(x)[1:3]
    checks = [
        tf.debugging.assert_equal(
            actual[i], tf.constant(size[i], actual.dtype), message=message
        )
        for i in range(2)
        if size[i] is not None
    ]
    # The static size lets the graph take the layout it was built for.
    with tf.control_dependencies(checks):
        return tf.ensure_shape(x, (None, size[0], size[1], None))


@register
class PatchEmbed(ConfigFromArguments, keras.layers.Layer):
    """Splits an image into p x p patches and projects each to C channels.

    A Conv2D with kernel = stride = p (`proj`), optionally followed by a
    LayerNorm (`norm`, Swin's patch_norm). The output stays a feature map.

    Args:
        patch_size: patch side p.
        embed_dim: output channels C.
        use_norm: apply LayerNorm after the projection (Swin).
        layer_norm_epsilon: epsilon of that LayerNorm.
        pad_to_patch: True zero-pads the bottom/right of an image whose
            size is not a multiple of p (Swin, as Hugging Face and the
            official detection code); False drops the remainder, like the
            VALID convolution of the official ViT.
        input_size: (H, W) of the model this layer starts, when the model
            precomputes something for that size (Swin's windows and masks,
            ViT's position embedding): any other size is then refused with
            a ValueError naming both sizes (on TensorFlow, in a graph traced
            for unknown sizes, an InvalidArgumentError with the same text
            when it runs), instead of silently giving wrong results. None
            entries leave a side free; None (default) takes any size.
        **kwargs: base `Layer` arguments.

    Shapes:
        inputs: (B, H, W, 3) -> (B, ceil(H/p), ceil(W/p), C) when padding,
        (B, floor(H/p), floor(W/p), C) otherwise.

    Example:
        >>> embed = PatchEmbed(patch_size=4, embed_dim=96)
        >>> embed(keras.ops.ones((2, 224, 224, 3))).shape
        (2, 56, 56, 96)
    """

    def __init__(
        self,
        patch_size: int = 4,
        embed_dim: int = 96,
        use_norm: bool = True,
        layer_norm_epsilon: float = 1e-5,
        pad_to_patch: bool = True,
        input_size: tuple[int | None, int | None] | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if input_size is not None:
            input_size = tuple(input_size)
            if len(input_size) != 2 or not all(
                v is None or (isinstance(v, int) and v > 0) for v in input_size
            ):
                raise ValueError(
                    "input_size must be None or (height, width) with "
                    f"positive ints or None, got {input_size!r}."
                )
            if input_size == (None, None):
                input_size = None
        self.patch_size = patch_size
        self.embed_dim = embed_dim
        self.use_norm = use_norm
        self.layer_norm_epsilon = layer_norm_epsilon
        self.pad_to_patch = pad_to_patch
        self.input_size = input_size
        self.proj = keras.layers.Conv2D(
            embed_dim,
            patch_size,
            strides=patch_size,
            padding="valid",
            name="proj",
            dtype=self.dtype_policy,
        )
        self.norm = None
        if use_norm:
            self.norm = keras.layers.LayerNormalization(
                epsilon=layer_norm_epsilon, name="norm", dtype=self.dtype_policy
            )

    def _check_size(self, shape) -> None:
        """Raises when a known side of `shape` is not the built size."""
        if self.input_size is None:
            return
        given = (shape[1], shape[2])
        if any(
            g is not None and b is not None and g != b
            for g, b in zip(given, self.input_size, strict=True)
        ):
            raise ValueError(input_size_error(self.input_size, given))

    def build(self, input_shape):
        if len(input_shape) != 4:
            raise ValueError(
                f"{self.name} expects images (B, H, W, C), got "
                f"{tuple(input_shape)}."
            )
        self._check_size(input_shape)
        self.proj.build(input_shape)
        if self.norm is not None:
            self.norm.build((None, None, None, self.embed_dim))

    def call(self, inputs):
        x = inputs
        if self.input_size is not None:
            self._check_size(inputs.shape)
            unknown = [
                b is not None and g is None
                for g, b in zip(inputs.shape[1:3], self.input_size, strict=True)
            ]
            if any(unknown):
                x = _assert_size_at_run_time(
                    x, self.input_size, input_size_error(self.input_size, None)
                )
        if self.pad_to_patch:
            p = self.patch_size
            height, width = x.shape[1], x.shape[2]
            if height is None or width is None:
                shape = ops.shape(x)
                height, width = shape[1], shape[2]
            x = pad_bottom_right(x, (p - height % p) % p, (p - width % p) % p)
        x = self.proj(x)
        if self.norm is not None:
            x = self.norm(x)
        return x

    def compute_output_shape(self, input_shape):
        self._check_size(input_shape)
        p = self.patch_size

        def grid(size):
            if size is None:
                return None
            return -(-size // p) if self.pad_to_patch else size // p

        return (
            input_shape[0],
            grid(input_shape[1]),
            grid(input_shape[2]),
            self.embed_dim,
        )
