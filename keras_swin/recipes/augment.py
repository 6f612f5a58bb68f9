"""Augmentations of the recipes that Keras lacks or does differently.

They run inside `tf.data` (TensorFlow ops), so one input pipeline feeds
all three Keras backends:

- `RandAugment`: timm's `rand-m9-mstd0.5-inc1` policy, per image, with
  Gaussian magnitude noise, each op applied with probability 0.5, and the
  operations Keras' `RandAugment` lacks (Invert, SolarizeAdd, the
  "increasing" magnitude mappings). AutoContrast is Keras' own layer
  (identical to PIL's); Equalize follows PIL, which Keras' `Equalization`
  does not.
- `MixupCutmix`: timm's batch-mode switch between mixup and cutmix, one
  mixing factor per batch, producing label-smoothed soft targets.
- `RandomErasing`: timm's random erasing (Keras' layer samples boxes
  differently and clips its noise, see the class).

Every draw is a stateless TensorFlow random op. Each call takes an
optional `seed`, a (2,) integer tensor: the same seed gives the same
result whatever the thread or the order in which a parallel `tf.data` map
runs its elements, which is what makes a training run reproducible
(`train_pipeline` derives one seed per image and per batch from the run's
seed). Without a seed, one is drawn from TensorFlow's stateful generator
(`tf.random.set_seed` and the object's `seed` apply, as for `tf.random`
ops).
"""

from __future__ import annotations

import functools
import math
import re

import keras
import tensorflow as tf

#: Fill of the geometric ops: the ImageNet mean in 0..255, as timm.
IMAGENET_FILL = (124, 116, 104)

#: timm's `_RAND_INCREASING_TRANSFORMS`, the policy of `inc1`.
INCREASING_OPS = (
    "AutoContrast",
    "Equalize",
    "Invert",
    "Rotate",
    "PosterizeIncreasing",
    "SolarizeIncreasing",
    "SolarizeAdd",
    "ColorIncreasing",
    "ContrastIncreasing",
    "BrightnessIncreasing",
    "SharpnessIncreasing",
    "ShearX",
    "ShearY",
    "TranslateXRel",
    "TranslateYRel",
)

#: timm's `_RAND_TRANSFORMS` (`inc0`): the original, decreasing mappings.
ORIGINAL_OPS = (
    "AutoContrast",
    "Equalize",
    "Invert",
    "Rotate",
    "Posterize",
    "Solarize",
    "SolarizeAdd",
    "Color",
    "Contrast",
    "Brightness",
    "Sharpness",
    "ShearX",
    "ShearY",
    "TranslateXRel",
    "TranslateYRel",
)

_MAX_LEVEL = 10.0
_INT32_MAX = 2**31 - 1


def call_seed(seed=None, op_seed: int | None = None):
    """A stateless seed: `seed` itself, or one drawn when it is None.

    Args:
        seed: None or a (2,) int32/int64 tensor (a stateless seed).
        op_seed: op-level seed of the stateful draw used when `seed` is
            None (with `tf.random.set_seed`, as for `tf.random.uniform`).

    Returns:
        (2,) int64 tensor for `tf.random.stateless_*` ops.

    Example:
        >>> call_seed(tf.constant([1, 2])).numpy().tolist()
        [1, 2]
    """
    if seed is None:
        seed = tf.random.uniform([2], 0, _INT32_MAX, tf.int32, seed=op_seed)
    return tf.cast(seed, tf.int64)


def _split(seed, count: int):
    """`count` independent (2,) seeds from one."""
    return tf.unstack(
        tf.random.experimental.stateless_split(seed, count), num=count
    )


def parse_randaugment(spec: str) -> dict:
    """Parses a timm RandAugment string such as "rand-m9-mstd0.5-inc1".

    Args:
        spec: "rand" followed by "-" separated options: `m` magnitude,
            `mstd` magnitude noise, `n` ops per image, `inc` increasing
            policy (0/1), `mmax` magnitude ceiling, `p` op probability.

    Returns:
        dict(magnitude, magnitude_std, num_ops, increasing, max_magnitude,
        prob).

    Example:
        >>> parse_randaugment("rand-m9-mstd0.5-inc1")["magnitude_std"]
        0.5
    """
    parts = spec.split("-")
    if parts[0] != "rand":
        raise ValueError(
            f"RandAugment spec must start with 'rand', got {spec!r} "
            "(e.g. 'rand-m9-mstd0.5-inc1')."
        )
    params = dict(
        magnitude=10.0,
        magnitude_std=0.0,
        num_ops=2,
        increasing=False,
        max_magnitude=_MAX_LEVEL,
        prob=0.5,
    )
    keys = {
        "mstd": "magnitude_std",
        "mmax": "max_magnitude",
        "m": "magnitude",
        "n": "num_ops",
        "inc": "increasing",
        "p": "prob",
    }
    for part in parts[1:]:
        match = re.fullmatch(r"(mstd|mmax|m|n|inc|p)([0-9.]+|inf)", part)
        if not match:
            raise ValueError(
                f"Unknown RandAugment option {part!r} in {spec!r}; known: "
                "m<float>, mstd<float>, mmax<float>, n<int>, inc<0|1>, "
                "p<float>."
            )
        key, value = keys[match.group(1)], float(match.group(2))
        if key == "num_ops":
            value = int(value)
        elif key == "increasing":
            value = bool(value)
        params[key] = value
    return params


def _f32(value):
    return tf.cast(value, tf.float32)


def _blend(degenerate, image, factor):
    # PIL's Image.blend: degenerate + factor * (image - degenerate), then
    # clipped and truncated to uint8.
    return tf.floor(
        tf.clip_by_value(degenerate + factor * (image - degenerate), 0, 255)
    )


def _grayscale(image):
    # PIL's RGB -> L: (R*19595 + G*38470 + B*7471 + 2**15) >> 16.
    weights = tf.constant([19595.0, 38470.0, 7471.0]) / 65536.0
    return tf.floor(tf.reduce_sum(image * weights, -1, keepdims=True) + 0.5)


def _sharpen_degenerate(image):
    # PIL's ImageFilter.SMOOTH kernel; border pixels are kept.
    kernel = (
        tf.constant([[1.0, 1.0, 1.0], [1.0, 5.0, 1.0], [1.0, 1.0, 1.0]]) / 13.0
    )
    channels = image.shape[-1]
    kernel = tf.tile(kernel[:, :, None, None], [1, 1, channels, 1])
    smooth = tf.nn.depthwise_conv2d(image[None], kernel, [1, 1, 1, 1], "VALID")[
        0
    ]
    smooth = tf.floor(smooth + 0.5)
    inner = tf.pad(smooth, [[1, 1], [1, 1], [0, 0]])
    shape = tf.shape(image)
    mask = tf.pad(
        tf.ones([shape[0] - 2, shape[1] - 2, channels]),
        [[1, 1], [1, 1], [0, 0]],
    )
    return mask * inner + (1 - mask) * image


def _equalize(image):
    """PIL's `ImageOps.equalize`, per channel, on a float (H, W, C) image."""

    def channel(values):
        values = tf.cast(values, tf.int32)
        hist = tf.math.bincount(tf.reshape(values, [-1]), minlength=256)
        hist = hist[:256]
        nonzero = tf.boolean_mask(hist, hist > 0)
        step = (tf.reduce_sum(hist) - nonzero[-1]) // 255
        safe = tf.maximum(step, 1)
        # lut[i] = (step // 2 + sum(hist[:i])) // step
        lut = (step // 2 + tf.cumsum(hist, exclusive=True)) // safe
        lut = tf.clip_by_value(lut, 0, 255)
        mapped = tf.gather(lut, values)
        return tf.cast(tf.where(step > 0, mapped, values), tf.float32)

    channels = tf.unstack(image, axis=-1, num=image.shape[-1])
    return tf.stack([channel(c) for c in channels], -1)


def _affine(image, matrix, fill, interpolation):
    """PIL's `Image.transform(AFFINE, matrix)` on a float (H, W, C) image.

    `matrix` (a, b, c, d, e, f) maps output to input coordinates in PIL's
    continuous convention (pixel centres at +0.5); it is converted to the
    pixel-index convention of `ImageProjectiveTransformV3`. Pixels from
    outside the image get `fill` (one value per channel).
    """
    a, b, c, d, e, f = (tf.cast(v, tf.float32) for v in matrix)
    transform = tf.stack(
        [
            a,
            b,
            c + 0.5 * (a + b) - 0.5,
            d,
            e,
            f + 0.5 * (d + e) - 0.5,
            0.0,
            0.0,
        ]
    )[None]
    shape = tf.shape(image)[:2]
    stacked = tf.concat([image, tf.ones_like(image[..., :1])], -1)
    out = tf.raw_ops.ImageProjectiveTransformV3(
        images=stacked[None],
        transforms=transform,
        output_shape=shape,
        fill_value=0.0,
        interpolation=interpolation.upper(),
        fill_mode="CONSTANT",
    )[0]
    inside = out[..., -1:]
    fill = tf.constant(fill, tf.float32)
    return tf.round(out[..., :-1] + (1.0 - inside) * fill)


def _rotate(image, degrees, fill, interpolation):
    # PIL's Image.rotate(degrees) about the centre, without expansion.
    shape = tf.cast(tf.shape(image), tf.float32)
    cx, cy = shape[1] / 2.0, shape[0] / 2.0
    angle = -degrees * math.pi / 180.0
    cos, sin = tf.cos(angle), tf.sin(angle)
    c = cos * -cx + sin * -cy + cx
    f = -sin * -cx + cos * -cy + cy
    return _affine(image, (cos, sin, c, -sin, cos, f), fill, interpolation)


class RandAugment:
    """timm's RandAugment, per image, for `tf.data` pipelines.

    For each image, `num_ops` operations are drawn uniformly with
    replacement from the policy; each is applied with probability `prob`
    at a magnitude drawn from N(magnitude, magnitude_std) clipped to
    [0, max_magnitude] (timm's `AugmentOp`). Signed operations (rotate,
    shear, translate, the enhancements) are negated with probability 0.5.
    Results are rounded to integer levels after every op, as the uint8
    PIL images of timm.

    Args:
        spec: timm string, default "rand-m9-mstd0.5-inc1" (Swin's).
        fill: per-channel fill of geometric ops (0..255).
        interpolation: "bilinear" or "nearest" (PIL's bicubic has no
            TensorFlow counterpart in the affine op).
        translate_pct: TranslateXRel/YRel range as a fraction of the side.
        seed: optional op-level seed of the draws made when a call gets
            no stateless seed.

    Shapes:
        image: (H, W, C) uint8 or float in [0, 255] -> (H, W, C) float32
        in [0, 255] with integer values; call seed: optional (2,) int
        tensor (the same seed, the same result).

    Example:
        >>> augment = RandAugment("rand-m9-mstd0.5-inc1")
        >>> out = augment(tf.zeros((32, 32, 3), tf.uint8))
        >>> tuple(out.shape)
        (32, 32, 3)
    """

    def __init__(
        self,
        spec: str = "rand-m9-mstd0.5-inc1",
        fill=IMAGENET_FILL,
        interpolation: str = "bilinear",
        translate_pct: float = 0.45,
        seed: int | None = None,
    ):
        params = parse_randaugment(spec)
        if interpolation not in ("bilinear", "nearest"):
            raise ValueError(
                "RandAugment interpolation must be 'bilinear' or 'nearest', "
                f"got {interpolation!r}."
            )
        self.spec = spec
        self.magnitude = params["magnitude"]
        self.magnitude_std = params["magnitude_std"]
        self.num_ops = params["num_ops"]
        self.max_magnitude = params["max_magnitude"]
        self.prob = params["prob"]
        self.ops = INCREASING_OPS if params["increasing"] else ORIGINAL_OPS
        self.fill = tuple(float(v) for v in fill)
        self.interpolation = interpolation
        self.translate_pct = translate_pct
        self.seed = seed
        self._auto_contrast = keras.layers.AutoContrast(value_range=(0, 255))

    def apply(self, image, name: str, magnitude, sign=1.0):
        """Applies one named operation at a given magnitude.

        Args:
            image: (H, W, C) float32 in [0, 255].
            name: an entry of `INCREASING_OPS` / `ORIGINAL_OPS`.
            magnitude: level in [0, max_magnitude] (scalar).
            sign: +1 or -1 for the signed operations.

        Returns:
            (H, W, C) float32 in [0, 255].

        Example:
            >>> ra = RandAugment()
            >>> img = tf.fill((8, 8, 3), 100.0)
            >>> float(ra.apply(img, "Invert", 0.0)[0, 0, 0])
            155.0
        """
        image = tf.cast(image, tf.float32)
        # Levels in float64 then float32, as timm's Python floats handed
        # to PIL's single-precision code.
        level = tf.cast(magnitude, tf.float64) / _MAX_LEVEL
        sign = tf.cast(sign, tf.float64)
        if name == "AutoContrast":
            return tf.round(self._auto_contrast(image))
        if name == "Equalize":
            # Keras' Equalization maps levels differently from PIL's
            # (several levels apart), so PIL's algorithm is used.
            return _equalize(image)
        if name == "Invert":
            return 255.0 - image
        if name == "Rotate":
            return _rotate(
                image,
                _f32(sign * level * 30.0),
                self.fill,
                self.interpolation,
            )
        if name in ("Posterize", "PosterizeIncreasing"):
            # Bits kept: 0..4 rising with the level (timm's "Posterize"),
            # or 4..0 ("PosterizeIncreasing").
            bits = _f32(tf.floor(level * 4.0))
            if name == "PosterizeIncreasing":
                bits = 4.0 - bits
            step = tf.pow(2.0, 8.0 - bits)
            return tf.floor(image / step) * step
        if name in ("Solarize", "SolarizeIncreasing"):
            threshold = _f32(tf.floor(level * 256.0))
            if name == "SolarizeIncreasing":
                threshold = 256.0 - threshold
            return tf.where(image >= threshold, 255.0 - image, image)
        if name == "SolarizeAdd":
            add = _f32(tf.floor(level * 110.0))
            return tf.where(
                image < 128.0, tf.minimum(image + add, 255.0), image
            )
        if name in (
            "Color",
            "Contrast",
            "Brightness",
            "Sharpness",
            "ColorIncreasing",
            "ContrastIncreasing",
            "BrightnessIncreasing",
            "SharpnessIncreasing",
        ):
            if name.endswith("Increasing"):
                factor = tf.maximum(
                    tf.constant(0.1, tf.float64), 1.0 + sign * level * 0.9
                )
            else:
                factor = level * 1.8 + 0.1
            kind = name.replace("Increasing", "")
            if kind == "Color":
                degenerate = _grayscale(image)
            elif kind == "Contrast":
                degenerate = tf.floor(
                    tf.reduce_mean(_grayscale(image)) + 0.5
                ) * tf.ones_like(image)
            elif kind == "Brightness":
                degenerate = tf.zeros_like(image)
            else:
                degenerate = _sharpen_degenerate(image)
            return _blend(degenerate, image, _f32(factor))
        if name in ("ShearX", "ShearY"):
            shear = _f32(sign * level * 0.3)
            matrix = (
                (1.0, shear, 0.0, 0.0, 1.0, 0.0)
                if name == "ShearX"
                else (1.0, 0.0, 0.0, shear, 1.0, 0.0)
            )
            return _affine(image, matrix, self.fill, self.interpolation)
        if name in ("TranslateXRel", "TranslateYRel"):
            shape = tf.cast(tf.shape(image), tf.float32)
            pct = _f32(sign * level * self.translate_pct)
            matrix = (
                (1.0, 0.0, pct * shape[1], 0.0, 1.0, 0.0)
                if name == "TranslateXRel"
                else (1.0, 0.0, 0.0, 0.0, 1.0, pct * shape[0])
            )
            return _affine(image, matrix, self.fill, self.interpolation)
        raise ValueError(f"Unknown RandAugment operation {name!r}.")

    def draw(self, seed=None):
        """One op's random choices, as timm's `RandAugment` + `AugmentOp`.

        Args:
            seed: optional (2,) int tensor, a stateless seed.

        Returns:
            (index into `self.ops`, magnitude, sign, apply) scalars: the op
            is drawn uniformly (with replacement across the `num_ops`
            draws), the magnitude from N(m, mstd) clipped to
            [0, max_magnitude] (uniform in [0, m] for mstd = inf), the
            sign is -1 or +1 with probability 0.5, and the op is applied
            with probability `prob`.

        Example:
            >>> index, magnitude, sign, apply = RandAugment().draw()
        """
        pick, level, signed, applied = _split(call_seed(seed, self.seed), 4)
        index = tf.random.stateless_uniform(
            [], pick, 0, len(self.ops), tf.int32
        )
        if math.isinf(self.magnitude_std):
            magnitude = tf.random.stateless_uniform(
                [], level, 0.0, self.magnitude
            )
        else:
            magnitude = tf.random.stateless_normal(
                [], level, self.magnitude, self.magnitude_std
            )
        magnitude = tf.clip_by_value(magnitude, 0.0, self.max_magnitude)
        sign = tf.where(
            tf.random.stateless_uniform([], signed) < 0.5, -1.0, 1.0
        )
        apply = tf.random.stateless_uniform([], applied) < self.prob
        return index, magnitude, sign, apply

    def __call__(self, image, seed=None):
        image = tf.cast(image, tf.float32)
        seeds = _split(call_seed(seed, self.seed), max(self.num_ops, 1))
        for op in range(self.num_ops):
            index, magnitude, sign, apply = self.draw(seeds[op])
            branches = [
                functools.partial(self.apply, image, name, magnitude, sign)
                for name in self.ops
            ]
            augmented = tf.switch_case(index, branches)
            augmented.set_shape(image.shape)
            image = tf.where(apply, augmented, image)
        return image


def _sample_beta(alpha, seed):
    first, second = _split(seed, 2)
    x = tf.random.stateless_gamma([], first, alpha)
    y = tf.random.stateless_gamma([], second, alpha)
    return x / (x + y)


class MixupCutmix:
    """timm's `Mixup` in batch mode: one mixing factor per batch.

    With probability `prob` a batch is mixed; it then uses cutmix with
    probability `switch_prob` (lambda ~ Beta(cutmix_alpha)), else mixup
    (lambda ~ Beta(mixup_alpha)). Each image is mixed with the image at
    the mirrored batch position (timm's `x.flip(0)`). For cutmix the box
    is clipped at the borders and lambda corrected to the kept area.
    Targets are one-hot, smoothed (`1 - s + s/K` and `s/K`) and mixed with
    the same lambda.

    Args:
        num_classes: K.
        mixup_alpha: mixup Beta parameter (0: off).
        cutmix_alpha: cutmix Beta parameter (0: off).
        switch_prob: chance of cutmix when both are on.
        prob: chance a batch is mixed.
        label_smoothing: s.
        seed: optional op-level seed of the draws made when a call gets
            no stateless seed.

    Shapes:
        images: (B, H, W, C) float; labels: (B,) int or (B, K) one-hot
        -> images (B, H, W, C) float32, targets (B, K) float32; call
        seed: optional (2,) int tensor (the same seed, the same batch).

    Example:
        >>> mix = MixupCutmix(num_classes=10)
        >>> x, y = mix(tf.zeros((4, 8, 8, 3)), tf.constant([0, 1, 2, 3]))
        >>> tuple(y.shape)
        (4, 10)
    """

    def __init__(
        self,
        num_classes: int,
        mixup_alpha: float = 0.8,
        cutmix_alpha: float = 1.0,
        switch_prob: float = 0.5,
        prob: float = 1.0,
        label_smoothing: float = 0.1,
        seed: int | None = None,
    ):
        if mixup_alpha < 0 or cutmix_alpha < 0:
            raise ValueError(
                "mixup_alpha and cutmix_alpha must be >= 0, got "
                f"{mixup_alpha} and {cutmix_alpha}."
            )
        self.num_classes = num_classes
        self.mixup_alpha = mixup_alpha
        self.cutmix_alpha = cutmix_alpha
        self.switch_prob = switch_prob
        self.prob = prob
        self.label_smoothing = label_smoothing
        self.seed = seed

    def targets(self, labels):
        """Smoothed one-hot targets (B, K) of int (B,) or one-hot labels.

        Example:
            >>> t = MixupCutmix(4, label_smoothing=0.4).targets([0])
            >>> [round(float(v), 2) for v in t[0]]
            [0.7, 0.1, 0.1, 0.1]
        """
        labels = tf.convert_to_tensor(labels)
        if labels.shape.rank == 1:
            labels = tf.one_hot(tf.cast(labels, tf.int32), self.num_classes)
        labels = tf.cast(labels, tf.float32)
        off = self.label_smoothing / self.num_classes
        return labels * (1.0 - self.label_smoothing) + off

    def sample(self, seed=None):
        """(use_cutmix, lam) for one batch, before the cutmix correction.

        Args:
            seed: optional (2,) int tensor, a stateless seed.

        Example:
            >>> use_cutmix, lam = MixupCutmix(10).sample()
        """
        mixing, switch, beta = _split(call_seed(seed, self.seed), 3)
        mixed = tf.random.stateless_uniform([], mixing) < self.prob
        if self.mixup_alpha > 0 and self.cutmix_alpha > 0:
            use_cutmix = tf.random.stateless_uniform([], switch)
            use_cutmix = use_cutmix < self.switch_prob
            lam = tf.where(
                use_cutmix,
                _sample_beta(self.cutmix_alpha, beta),
                _sample_beta(self.mixup_alpha, beta),
            )
        elif self.cutmix_alpha > 0:
            use_cutmix = tf.constant(True)
            lam = _sample_beta(self.cutmix_alpha, beta)
        elif self.mixup_alpha > 0:
            use_cutmix = tf.constant(False)
            lam = _sample_beta(self.mixup_alpha, beta)
        else:
            use_cutmix, lam = tf.constant(False), tf.constant(1.0)
        return use_cutmix & mixed, tf.where(mixed, lam, 1.0)

    def cutmix_box(self, lam, height, width, seed=None):
        """timm's `rand_bbox`: (top, bottom, left, right) for `lam`.

        The box has sides int(H * sqrt(1 - lam)) and int(W * sqrt(1 -
        lam)), a uniformly drawn centre, and is clipped at the borders.
        `seed`: optional (2,) int tensor, a stateless seed.

        Example:
            >>> top, bottom, left, right = MixupCutmix(10).cutmix_box(
            ...     tf.constant(0.75), 32, 32)
        """
        ratio = tf.sqrt(1.0 - lam)
        cut_h = tf.cast(tf.cast(height, tf.float32) * ratio, tf.int32)
        cut_w = tf.cast(tf.cast(width, tf.float32) * ratio, tf.int32)
        row, column = _split(call_seed(seed, self.seed), 2)
        cy = tf.random.stateless_uniform([], row, 0, height, tf.int32)
        cx = tf.random.stateless_uniform([], column, 0, width, tf.int32)
        top = tf.clip_by_value(cy - cut_h // 2, 0, height)
        bottom = tf.clip_by_value(cy + cut_h // 2, 0, height)
        left = tf.clip_by_value(cx - cut_w // 2, 0, width)
        right = tf.clip_by_value(cx + cut_w // 2, 0, width)
        return top, bottom, left, right

    def mix(self, images, labels, use_cutmix, lam, seed=None):
        """Mixes a batch with a given choice and factor.

        Args:
            images: (B, H, W, C).
            labels: (B,) int or (B, K) one-hot.
            use_cutmix: scalar bool tensor.
            lam: scalar mixing factor.
            seed: optional (2,) int tensor for the cutmix box.

        Returns:
            (images, targets (B, K), lam) with lam corrected for cutmix.

        Example:
            >>> x, y, lam = MixupCutmix(3).mix(
            ...     tf.zeros((2, 8, 8, 3)), tf.constant([0, 1]),
            ...     tf.constant(False), tf.constant(0.7))
        """
        images = tf.cast(images, tf.float32)
        targets = self.targets(labels)
        flipped = tf.reverse(images, [0])
        shape = tf.shape(images)
        height, width = shape[1], shape[2]

        def cutmix():
            top, bottom, left, right = self.cutmix_box(lam, height, width, seed)
            rows = tf.range(height)[:, None]
            cols = tf.range(width)[None, :]
            box = (
                (rows >= top)
                & (rows < bottom)
                & (cols >= left)
                & (cols < right)
            )
            box = tf.cast(box, tf.float32)[None, :, :, None]
            area = tf.cast((bottom - top) * (right - left), tf.float32)
            kept = 1.0 - area / tf.cast(height * width, tf.float32)
            return images * (1.0 - box) + flipped * box, kept

        def mixup():
            return images * lam + flipped * (1.0 - lam), lam

        mixed, lam = tf.cond(use_cutmix, cutmix, mixup)
        targets = targets * lam + tf.reverse(targets, [0]) * (1.0 - lam)
        return mixed, targets, lam

    def __call__(self, images, labels, seed=None):
        draw, box = _split(call_seed(seed, self.seed), 2)
        use_cutmix, lam = self.sample(draw)
        images, targets, _ = self.mix(images, labels, use_cutmix, lam, box)
        return images, targets


class RandomErasing:
    """timm's `RandomErasing` ("pixel" mode, one box), per image.

    With probability `probability`, up to 10 attempts draw a box of area
    U(min_area, max_area) x H x W and aspect ratio exp(U(log 0.3,
    log 1/0.3)); the first that fits is filled with per-pixel N(0, 1)
    noise. Applied to normalised images, as in timm.

    Keras' `RandomErasing` differs: it draws the two sides independently
    and clips its noise fill to `value_range`, so it cannot give N(0, 1)
    noise on normalised images.

    Args:
        probability: chance each image is erased.
        min_area: smallest box, as a fraction of the image.
        max_area: largest box, as a fraction of the image.
        aspect_ratio: (min, max) height / width of the box.
        seed: optional op-level seed of the draws made when a call gets
            no stateless seed.

    Shapes:
        image: (H, W, C) float -> (H, W, C) float32; call seed: optional
        (2,) int tensor (the same seed, the same box and noise).

    Example:
        >>> erase = RandomErasing(1.0)
        >>> tuple(erase(tf.zeros((16, 16, 3))).shape)
        (16, 16, 3)
    """

    def __init__(
        self,
        probability: float = 0.25,
        min_area: float = 0.02,
        max_area: float = 1.0 / 3.0,
        aspect_ratio: tuple = (0.3, 1.0 / 0.3),
        seed: int | None = None,
    ):
        if not 0.0 <= probability <= 1.0:
            raise ValueError(
                f"RandomErasing probability must be in [0, 1], got "
                f"{probability}."
            )
        self.probability = probability
        self.min_area = min_area
        self.max_area = max_area
        self.aspect_ratio = aspect_ratio
        self.seed = seed

    def box(self, height, width, seed=None):
        """(erase, top, left, box_height, box_width) for one image.

        `seed`: optional (2,) int tensor, a stateless seed.

        Example:
            >>> erase, top, left, h, w = RandomErasing(1.0).box(20, 30)
        """
        attempts = 10
        sizes, ratios, chance, rows, cols = _split(
            call_seed(seed, self.seed), 5
        )
        area = tf.cast(height * width, tf.float32)
        target = (
            tf.random.stateless_uniform(
                [attempts], sizes, self.min_area, self.max_area
            )
            * area
        )
        log_ratio = tf.random.stateless_uniform(
            [attempts],
            ratios,
            math.log(self.aspect_ratio[0]),
            math.log(self.aspect_ratio[1]),
        )
        ratio = tf.exp(log_ratio)
        h = tf.cast(tf.round(tf.sqrt(target * ratio)), tf.int32)
        w = tf.cast(tf.round(tf.sqrt(target / ratio)), tf.int32)
        fits = (h < height) & (w < width)
        first = tf.argmax(tf.cast(fits, tf.int32), output_type=tf.int32)
        h, w = h[first], w[first]
        erase = tf.reduce_any(fits) & (
            tf.random.stateless_uniform([], chance) < self.probability
        )
        top = tf.random.stateless_uniform([], rows, 0, height - h + 1, tf.int32)
        left = tf.random.stateless_uniform([], cols, 0, width - w + 1, tf.int32)
        return erase, top, left, h, w

    def __call__(self, image, seed=None):
        image = tf.cast(image, tf.float32)
        shape = tf.shape(image)
        height, width = shape[0], shape[1]
        placing, noising = _split(call_seed(seed, self.seed), 2)
        erase, top, left, h, w = self.box(height, width, placing)
        rows = tf.range(height)[:, None, None]
        cols = tf.range(width)[None, :, None]
        inside = (
            (rows >= top)
            & (rows < top + h)
            & (cols >= left)
            & (cols < left + w)
            & erase
        )
        noise = tf.random.stateless_normal(shape, noising)
        return tf.where(inside, noise, image)
