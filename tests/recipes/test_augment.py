"""RandAugment ops against PIL (timm's backend), mixup/cutmix, erasing.

These are TensorFlow `tf.data` functions, identical whatever the Keras
backend, so they run once, in the TensorFlow leg of the suite.
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import BACKEND
from PIL import Image, ImageEnhance, ImageOps

pytestmark = pytest.mark.skipif(
    BACKEND != "tensorflow",
    reason="pure tf.data code, backend-independent: tested in the "
    "TensorFlow run",
)

tf = pytest.importorskip("tensorflow")

from keras_swin.recipes.augment import (  # noqa: E402
    INCREASING_OPS,
    ORIGINAL_OPS,
    MixupCutmix,
    RandAugment,
    RandomErasing,
    parse_randaugment,
)

FILL = (124, 116, 104)


def _pil_reference(pil, name, magnitude, sign):
    """timm's op, written from timm's level mappings, with PIL."""
    level = magnitude / 10.0
    if name == "AutoContrast":
        return ImageOps.autocontrast(pil)
    if name == "Equalize":
        return ImageOps.equalize(pil)
    if name == "Invert":
        return ImageOps.invert(pil)
    if name == "Posterize":
        bits = int(level * 4)
        return ImageOps.posterize(pil, bits)
    if name == "PosterizeIncreasing":
        return ImageOps.posterize(pil, 4 - int(level * 4))
    if name == "Solarize":
        return ImageOps.solarize(pil, int(level * 256))
    if name == "SolarizeIncreasing":
        return ImageOps.solarize(pil, 256 - int(level * 256))
    if name == "SolarizeAdd":
        add = int(level * 110)
        lut = [min(255, i + add) if i < 128 else i for i in range(256)]
        return pil.point(lut * 3)
    enhancers = {
        "Color": ImageEnhance.Color,
        "Contrast": ImageEnhance.Contrast,
        "Brightness": ImageEnhance.Brightness,
        "Sharpness": ImageEnhance.Sharpness,
    }
    kind = name.replace("Increasing", "")
    if kind in enhancers:
        if name.endswith("Increasing"):
            factor = max(0.1, 1.0 + sign * level * 0.9)
        else:
            factor = level * 1.8 + 0.1
        return enhancers[kind](pil).enhance(factor)
    kwargs = dict(resample=Image.NEAREST, fillcolor=FILL)
    w, h = pil.size
    if name == "Rotate":
        return pil.rotate(sign * level * 30, **kwargs)
    matrices = {
        "ShearX": (1, sign * level * 0.3, 0, 0, 1, 0),
        "ShearY": (1, 0, 0, sign * level * 0.3, 1, 0),
        "TranslateXRel": (1, 0, sign * level * 0.45 * w, 0, 1, 0),
        "TranslateYRel": (1, 0, 0, 0, 1, sign * level * 0.45 * h),
    }
    return pil.transform(pil.size, Image.AFFINE, matrices[name], **kwargs)


@pytest.fixture(scope="module")
def picture():
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, (37, 29, 3), dtype=np.uint8)
    # Smooth it a little so that the histogram ops see a real spread.
    return np.asarray(Image.fromarray(noise).resize((29, 37)))


@pytest.mark.parametrize("name", sorted(set(INCREASING_OPS + ORIGINAL_OPS)))
@pytest.mark.parametrize("magnitude,sign", [(9.0, 1.0), (6.3, -1.0)])
def test_each_op_equals_pil(picture, name, magnitude, sign):
    augment = RandAugment(interpolation="nearest", fill=FILL)
    ours = augment.apply(tf.constant(picture), name, magnitude, sign)
    reference = np.asarray(
        _pil_reference(Image.fromarray(picture), name, magnitude, sign)
    )
    np.testing.assert_array_equal(np.asarray(ours), reference.astype(float))


def test_bilinear_geometric_ops_agree_with_pil_inside_the_image(picture):
    # PIL blends the border with the fill differently; inside they agree.
    augment = RandAugment(interpolation="bilinear", fill=FILL)
    pil = Image.fromarray(picture)
    ours = np.asarray(augment.apply(tf.constant(picture), "Rotate", 5.0))
    reference = np.asarray(
        pil.rotate(15.0, resample=Image.BILINEAR, fillcolor=FILL)
    ).astype(float)
    inner = (slice(8, -8), slice(8, -8))
    assert np.abs(ours[inner] - reference[inner]).max() <= 1.0


def test_parse_randaugment():
    assert parse_randaugment("rand-m9-mstd0.5-inc1") == dict(
        magnitude=9.0,
        magnitude_std=0.5,
        num_ops=2,
        increasing=True,
        max_magnitude=10.0,
        prob=0.5,
    )
    assert parse_randaugment("rand-m5-n1-mmax8")["num_ops"] == 1
    assert RandAugment("rand-m9-inc0").ops == ORIGINAL_OPS
    assert len(RandAugment().ops) == 15
    with pytest.raises(ValueError, match="Unknown RandAugment option 'x3'"):
        parse_randaugment("rand-m9-x3")
    with pytest.raises(ValueError, match="must start with 'rand'"):
        parse_randaugment("auto-m9")


def _draws(draw, count):
    """`count` calls of a random function, inside tf.data (fast)."""
    dataset = tf.data.Dataset.range(count).map(lambda _: draw())
    dataset = dataset.batch(count)
    return [np.asarray(x) for x in next(iter(dataset))]


def test_magnitude_noise_choice_sign_and_probability():
    tf.random.set_seed(1)
    augment = RandAugment("rand-m9-mstd0.5-inc1")
    index, magnitude, sign, applied = _draws(augment.draw, 3000)
    assert set(index) == set(range(15))
    assert np.bincount(index, minlength=15).min() > 3000 / 15 * 0.7
    assert abs(magnitude.mean() - 9.0) < 0.05
    assert abs(magnitude.std() - 0.5) < 0.05
    assert magnitude.max() <= 10.0 and magnitude.min() >= 0.0
    assert set(sign) == {-1.0, 1.0} and abs(sign.mean()) < 0.08
    assert abs(applied.mean() - 0.5) < 0.04
    clipped = RandAugment("rand-m10-mstd2")
    top = _draws(clipped.draw, 400)[1]
    assert top.max() == 10.0 and (top == 10.0).mean() > 0.4
    uniform = RandAugment("rand-m9-mstdinf")
    spread = _draws(uniform.draw, 400)[1]
    assert spread.min() < 1.0 and spread.max() > 8.0 and spread.max() <= 9


def test_randaugment_changes_images_in_a_pipeline():
    tf.random.set_seed(0)
    augment = RandAugment()
    images = tf.random.uniform((16, 24, 24, 3), 0, 255)
    images = tf.round(images)
    dataset = tf.data.Dataset.from_tensor_slices(images).map(augment)
    out = np.stack(list(dataset.as_numpy_iterator()))
    assert out.shape == (16, 24, 24, 3)
    assert out.min() >= 0 and out.max() <= 255
    assert np.all(out == np.round(out))
    changed = np.any(out != images.numpy(), axis=(1, 2, 3))
    # Two ops at p = 0.5 each: about 3 in 4 images change.
    assert 4 <= changed.sum() <= 16


def test_mixup_targets_and_images():
    mix = MixupCutmix(4, label_smoothing=0.1)
    images = tf.reshape(tf.range(3 * 2 * 2 * 1, dtype=tf.float32), (3, 2, 2, 1))
    labels = tf.constant([0, 1, 3])
    x, y, lam = mix.mix(images, labels, tf.constant(False), tf.constant(0.7))
    np.testing.assert_allclose(x, 0.7 * images + 0.3 * images[::-1], rtol=1e-6)
    smooth = np.full((3, 4), 0.1 / 4)
    smooth[np.arange(3), [0, 1, 3]] += 0.9
    np.testing.assert_allclose(y, 0.7 * smooth + 0.3 * smooth[::-1], rtol=1e-6)
    np.testing.assert_allclose(np.sum(y, -1), 1.0, rtol=1e-6)
    assert float(lam) == pytest.approx(0.7)


def test_cutmix_box_and_corrected_lambda():
    tf.random.set_seed(3)
    mix = MixupCutmix(5, label_smoothing=0.0)
    images = tf.concat([tf.zeros((1, 20, 30, 1)), tf.ones((1, 20, 30, 1))], 0)
    for _ in range(20):
        x, y, lam = mix.mix(
            images, tf.constant([0, 1]), tf.constant(True), tf.constant(0.6)
        )
        x = np.asarray(x)
        pasted = x[0, :, :, 0]
        # The pasted region is one axis-aligned box from the other image.
        rows = np.flatnonzero(pasted.any(1))
        cols = np.flatnonzero(pasted.any(0))
        if rows.size:
            box = pasted[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
            assert box.all()
        kept = 1.0 - pasted.mean()
        assert float(lam) == pytest.approx(kept, abs=1e-6)
        np.testing.assert_allclose(y[0], [kept, 1 - kept, 0, 0, 0], atol=1e-6)
        np.testing.assert_allclose(x[1, :, :, 0], 1 - pasted)


def test_batch_mode_switch_statistics():
    tf.random.set_seed(5)
    mix = MixupCutmix(10, mixup_alpha=0.8, cutmix_alpha=1.0, switch_prob=0.5)
    cut, lam = _draws(mix.sample, 600)
    assert abs(cut.mean() - 0.5) < 0.07
    # Beta(1, 1) is uniform (mean 1/2, var 1/12); Beta(0.8, 0.8) has
    # variance 1/(4 * 2.6).
    assert lam[cut].var() == pytest.approx(1 / 12, rel=0.2)
    assert lam[~cut].var() == pytest.approx(1 / (4 * 2.6), rel=0.2)
    never = MixupCutmix(10, prob=0.0)
    assert np.all(_draws(never.sample, 20)[1] == 1.0)
    with pytest.raises(ValueError, match=">= 0"):
        MixupCutmix(10, mixup_alpha=-1.0)


def test_one_mixing_factor_per_batch():
    tf.random.set_seed(7)
    mix = MixupCutmix(3, cutmix_alpha=0.0, label_smoothing=0.0)
    images = tf.stack([tf.fill((2, 2, 1), float(i)) for i in range(4)])
    x, y = mix(images, tf.constant([0, 1, 2, 0]))
    lam = float(y[0, 0] - 0.0)  # image 0 (class 0) mixed with image 3 (0)
    lam = float(y[1, 1])
    expected = lam * images + (1 - lam) * images[::-1]
    np.testing.assert_allclose(x, expected, rtol=1e-5, atol=1e-5)


def test_random_erasing_box_statistics_and_noise():
    tf.random.set_seed(11)
    erase = RandomErasing(0.25)
    images = tf.zeros((400, 20, 30, 3))
    out = tf.data.Dataset.from_tensor_slices(images).map(erase)
    out = np.stack(list(out.as_numpy_iterator()))
    erased = np.any(out != 0, axis=(1, 2, 3))
    assert abs(erased.mean() - 0.25) < 0.06
    always = np.stack([RandomErasing(1.0)(img).numpy() for img in images[:60]])
    assert np.all(np.any(always != 0, axis=(1, 2, 3)))
    areas = []
    for img in always:
        mask = np.any(img != 0, axis=-1)
        rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
        # One box, every channel filled.
        assert mask[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1].all()
        assert np.all(img[mask] != 0)
        areas.append(mask.mean())
    areas = np.array(areas)
    # Area fraction U(0.02, 1/3) up to rounding of the sides.
    assert areas.min() > 0.005 and areas.max() < 0.45
    assert 0.1 < areas.mean() < 0.25
    # Pixel mode: N(0, 1) per pixel.
    values = always[always != 0]
    assert abs(values.mean()) < 0.05 and abs(values.std() - 1.0) < 0.05
    with pytest.raises(ValueError, match="probability"):
        RandomErasing(1.5)
