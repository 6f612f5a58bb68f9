"""`keras_swin.segment` against an independent numpy re-implementation of
mmsegmentation 0.x's test: `MultiScaleFlipAug` + `Resize(keep_ratio=True)`
(mmcv `rescale_size`; a uint8 image resized by cv2 itself: the resized
images are fixtures made with OpenCV, tests/golden/cv2_resize),
`slide_inference` / `whole_inference`, `inference` (softmax, flip back)
and `aug_test` (average of the views).

The "model" is a fixed 1x1 convolution plus a ramp over the row and
column *within its input*, so every window sees other logits than the
whole image does: a wrong window, count or resize changes the result.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
from helpers import golden
from keras import ops

from keras_swin.layers import PreprocessingInfo
from keras_swin.segmentation import (
    _resize_uint8,
    rescaled_size,
    segment,
    sliding_windows,
)

#: uint8 images and their cv2.resize(INTER_LINEAR) at several sizes.
CV2 = dict(np.load(golden("cv2_resize", "cases.npz")))

K = 3
KERNEL = np.array(
    [[0.02, -0.01, 0.0], [-0.015, 0.02, 0.01], [0.01, 0.0, -0.02]],
    np.float32,
)  # (C=3, K): on 0-255 pixels normalised to about [-2, 2]
BIAS = np.array([0.1, -0.05, 0.0], np.float32)
ROW = np.array([0.05, -0.03, 0.0], np.float32)  # logit per row index
COL = np.array([-0.02, 0.04, 0.0], np.float32)  # logit per column index
MEAN, STD = (0.3, 0.5, 0.4), (0.2, 0.3, 0.25)


class _Ramp(keras.layers.Layer):
    """x + ROW * row + COL * column, positions counted in the input."""

    def call(self, x):
        ones = ops.ones_like(x[..., :1])
        rows = ops.cumsum(ones, axis=1) - 1.0
        cols = ops.cumsum(ones, axis=2) - 1.0
        return x + rows * ROW + cols * COL


class _EveryOther(keras.layers.Layer):
    """x[:, ::2, ::2]: logits at half resolution, (ceil(h/2), ceil(w/2))."""

    def call(self, x):
        return x[:, ::2, ::2]

    def compute_output_shape(self, shape):
        half = [None if d is None else (d + 1) // 2 for d in shape[1:3]]
        return (shape[0], *half, shape[3])


def _conv():
    conv = keras.layers.Conv2D(K, 1)
    conv.build((None, None, None, 3))
    conv.set_weights([KERNEL[None, None], BIAS])
    return conv


@pytest.fixture(scope="module")
def dict_model():
    """Dict output (logits + auxiliary), records its own mean and std."""
    inputs = keras.Input((None, None, 3))
    x = PreprocessingInfo(
        mean=MEAN,
        std=STD,
        crop_pct=1.0,
        interpolation="bilinear",
        name="preprocessing_info",
    )(inputs)
    logits = _Ramp()(_conv()(x))
    aux = keras.layers.Conv2D(K, 1)(x)
    return keras.Model(inputs, {"logits": logits, "auxiliary_logits": aux})


@pytest.fixture(scope="module")
def half_model():
    """A plain tensor output at half the input size."""
    inputs = keras.Input((None, None, 3))
    return keras.Model(inputs, _Ramp()(_conv()(_EveryOther()(inputs))))


# ---------------------------------------------------------------------------
# The reference: mmseg 0.x's test, written out in float64 numpy.


def ref_logits(x, half=False):
    """The fake model on one normalised (h, w, 3) input, at its size."""
    h, w = x.shape[:2]
    y = x[::2, ::2] if half else x
    rows = np.arange(y.shape[0])[:, None, None]
    cols = np.arange(y.shape[1])[None, :, None]
    out = y @ KERNEL.astype(np.float64) + BIAS + rows * ROW + cols * COL
    return ref_resize(out, h, w)  # encode_decode: resize to the input


def ref_resize_matrix(n_in, n_out):
    """F.interpolate(mode="bilinear", align_corners=False) as a matrix."""
    m = np.zeros((n_out, n_in))
    for o in range(n_out):
        s = max((o + 0.5) * n_in / n_out - 0.5, 0.0)
        i0 = min(int(np.floor(s)), n_in - 1)
        i1 = min(i0 + 1, n_in - 1)
        m[o, i0] += 1.0 - (s - i0)
        m[o, i1] += s - i0
    return m


def ref_resize(x, h, w):
    rows = ref_resize_matrix(x.shape[0], h)
    cols = ref_resize_matrix(x.shape[1], w)
    return np.einsum("ah,hwc,bw->abc", rows, x, cols)


def ref_rescale(h, w, scale, ratio):
    """MultiScaleFlipAug's scale, then mmcv.rescale_size (keep ratio)."""
    if scale is None:
        target = (int(w * ratio), int(h * ratio))
    else:
        target = (int(scale[0] * ratio), int(scale[1] * ratio))
    f = min(max(target) / max(h, w), min(target) / min(h, w))
    return int(h * f + 0.5), int(w * f + 0.5)


def ref_slide(x, crop, stride, half):
    h_img, w_img = x.shape[:2]
    h_grids = max(h_img - crop + stride - 1, 0) // stride + 1
    w_grids = max(w_img - crop + stride - 1, 0) // stride + 1
    preds = np.zeros((h_img, w_img, K))
    count = np.zeros((h_img, w_img, 1))
    for h_idx in range(h_grids):
        for w_idx in range(w_grids):
            y1, x1 = h_idx * stride, w_idx * stride
            y2, x2 = min(y1 + crop, h_img), min(x1 + crop, w_img)
            y1, x1 = max(y2 - crop, 0), max(x2 - crop, 0)
            preds[y1:y2, x1:x2] += ref_logits(x[y1:y2, x1:x2], half)
            count[y1:y2, x1:x2] += 1
    assert (count > 0).all()
    return preds / count


def ref_segment(
    image,
    *,
    cv2_resized=None,
    mode,
    scale,
    ratios,
    flip,
    mean,
    std,
    crop=32,
    stride=21,
    half=False,
    normalise=True,
):
    h, w = image.shape[:2]
    total = np.zeros((h, w, K))
    views = 0
    for ratio in ratios:
        for flipped in (False, True) if flip else (False,):
            if ratio is None:
                nh, nw = h, w
            else:
                nh, nw = ref_rescale(h, w, scale, ratio)
            if image.dtype == np.uint8 and (nh, nw) != (h, w):
                x = cv2_resized[nh, nw].astype(np.float64)  # OpenCV's
            else:
                x = ref_resize(image.astype(np.float64), nh, nw)
            if flipped:
                x = x[:, ::-1]
            if normalise:
                x = (x - 255 * np.array(mean)) / (255 * np.array(std))
            if mode == "slide":
                logits = ref_slide(x, crop, stride, half)
            else:
                logits = ref_logits(x, half)
            logits = ref_resize(logits, h, w)  # rescale to ori_shape
            e = np.exp(logits - logits.max(-1, keepdims=True))
            p = e / e.sum(-1, keepdims=True)
            total += p[:, ::-1] if flipped else p
            views += 1
    return total / views


def assert_matches(labels, probs, expected):
    """Probabilities within float32 error; labels their argmax, and the
    reference's wherever its top two classes are apart."""
    np.testing.assert_allclose(probs, expected, atol=2e-5, rtol=0)
    assert labels.dtype == np.int32
    np.testing.assert_array_equal(labels, probs.argmax(-1))
    top2 = np.sort(expected, axis=-1)[..., -2:]
    clear = top2[..., 1] - top2[..., 0] > 1e-4
    assert clear.mean() > 0.9
    np.testing.assert_array_equal(labels[clear], expected.argmax(-1)[clear])
    assert len(np.unique(labels)) > 1  # the test would see a wrong map


# ---------------------------------------------------------------------------


def test_uint8_images_are_resized_as_cv2_does():
    """Bit for bit: down, up, and a 2x downscale (cv2's area fast path)."""
    for key, expected in CV2.items():
        if "_" in key:
            source = CV2[key.split("_")[0]]
            size = tuple(int(v) for v in key.split("_")[1].split("x"))
            np.testing.assert_array_equal(
                _resize_uint8(source, size), expected, err_msg=key
            )
    # 2x down: the mean of each 2x2 block, rounded half up (cv2's area
    # fast path, (a + b + c + d + 2) >> 2)
    image = CV2["small"][:, :20, :24]
    blocks = image[0].reshape(10, 2, 12, 2, 3).astype(np.float64)
    np.testing.assert_array_equal(
        _resize_uint8(image, (10, 12))[0],
        np.floor(blocks.mean((1, 3)) + 0.5),
    )


def test_sliding_windows_by_hand():
    # rows: (40 - 32 + 20) // 21 + 1 = 2, the second moved back to 8..40;
    # columns: (70 - 32 + 20) // 21 + 1 = 3, the last moved to 38..70.
    assert sliding_windows(40, 70, 32, 21) == [
        (0, 32, 0, 32),
        (0, 32, 21, 53),
        (0, 32, 38, 70),
        (8, 40, 0, 32),
        (8, 40, 21, 53),
        (8, 40, 38, 70),
    ]
    assert sliding_windows(20, 25, 32, 21) == [(0, 20, 0, 25)]
    assert sliding_windows(512, 683) == [(0, 512, 0, 512), (0, 512, 171, 683)]
    assert sliding_windows(64, 40, (32, 40), (16, 40)) == [
        (0, 32, 0, 40),
        (16, 48, 0, 40),
        (32, 64, 0, 40),
    ]
    with pytest.raises(ValueError, match="larger than crop_size"):
        sliding_windows(64, 64, 32, 40)


def test_rescaled_size_by_hand():
    # f = min(2048 / 683, 512 / 512) = 1
    assert rescaled_size(512, 683) == (512, 683)
    # target (1536, 384): f = min(1536 / 683, 384 / 512) = 0.75
    assert rescaled_size(512, 683, ratio=0.75) == (384, 512)
    # f = min(2048 / 400, 512 / 300) = 1.7067: 512.0 and 682.67 -> 683
    assert rescaled_size(300, 400) == (512, 683)
    # a portrait image: the bound is on the long and the short edge
    assert rescaled_size(400, 300) == (683, 512)
    # no scale: ratio of the image's own size, target (35, 20), f = 0.5
    assert rescaled_size(40, 70, None, 0.5) == (20, 35)
    assert rescaled_size(40, 70, None) == (40, 70)
    # without keep_ratio the target is (width, height)
    assert rescaled_size(40, 70, (50, 30), keep_ratio=False) == (30, 50)
    with pytest.raises(ValueError, match="positive"):
        rescaled_size(40, 70, ratio=0.0)


def test_slide_two_scales_and_flip_match_mmseg(dict_model):
    """Overlapping windows, a view smaller than the crop (ratio 0.75:
    30x53), flip, uint8 rounding and the model's own mean/std."""
    images = CV2["slide"]
    labels, probs = segment(
        dict_model,
        images,
        mode="slide",
        crop_size=32,
        stride=21,
        scale=(100, 40),
        scales=(0.75, 1.25),
        flip=True,
        batch_size=4,
        return_probabilities=True,
    )
    assert rescaled_size(40, 70, (100, 40), 0.75) == (30, 53)
    assert labels.shape == (2, 40, 70) and probs.shape == (2, 40, 70, K)
    for i, (image, lab, prob) in enumerate(
        zip(images, labels, probs, strict=True)
    ):
        expected = ref_segment(
            image,
            cv2_resized={
                (30, 53): CV2["slide_30x53"][i],
                (50, 88): CV2["slide_50x88"][i],
            },
            mode="slide",
            scale=(100, 40),
            ratios=(0.75, 1.25),
            flip=True,
            mean=MEAN,
            std=STD,
        )
        assert_matches(lab, prob, expected)


def test_whole_on_a_list_of_sizes_matches_mmseg(half_model):
    """Whole images of two sizes (float and uint8), two ratios of their
    own size, ImageNet's mean/std, logits at half size resized up."""
    rng = np.random.default_rng(2)
    images = [rng.uniform(0, 255, (40, 70, 3)).astype(np.float32)]
    images.append(CV2["small"][0])
    labels, probs = segment(
        half_model,
        images,
        scale=None,
        scales=(0.5, 1.0),
        return_probabilities=True,
    )
    assert isinstance(labels, list) and len(labels) == 2
    for image, lab, prob in zip(images, labels, probs, strict=True):
        assert lab.shape == image.shape[:2]
        expected = ref_segment(
            image,
            cv2_resized={(10, 12): CV2["small_10x12"][0]},
            mode="whole",
            scale=None,
            ratios=(0.5, 1.0),
            flip=False,
            mean=(0.485, 0.456, 0.406),
            std=(0.229, 0.224, 0.225),
            half=True,
        )
        assert_matches(lab, prob, expected)


def test_slide_on_an_image_smaller_than_the_crop_is_whole(dict_model):
    image = np.random.default_rng(3).integers(0, 256, (20, 25, 3), np.uint8)
    slide = segment(
        dict_model,
        image,
        mode="slide",
        crop_size=32,
        stride=21,
        scale=None,
        return_probabilities=True,
    )
    whole = segment(dict_model, image, scale=None, return_probabilities=True)
    assert slide[0].shape == (20, 25)  # one image in, one map out
    np.testing.assert_array_equal(slide[0], whole[0])
    np.testing.assert_allclose(slide[1], whole[1], atol=1e-6)


def test_preprocess_false_feeds_the_images_as_they_are(half_model):
    x = np.random.default_rng(4).normal(size=(1, 40, 70, 3)).astype("float32")
    labels, probs = segment(
        half_model,
        x,
        mode="slide",
        crop_size=32,
        stride=21,
        scale=None,
        preprocess=False,
        batch_size=5,  # the six windows in two calls
        return_probabilities=True,
    )
    expected = ref_segment(
        x[0].astype(np.float64),
        mode="slide",
        scale=None,
        ratios=(None,),
        flip=False,
        mean=None,
        std=None,
        half=True,
        normalise=False,
    )
    assert_matches(labels[0], probs[0], expected)


def test_bad_arguments_are_named(dict_model):
    image = np.zeros((1, 40, 70, 3), np.uint8)
    cases = [
        (dict(mode="tiles"), "mode must be one of"),
        (dict(mode="slide", crop_size=32, stride=40), "larger than crop"),
        (dict(mode="slide", crop_size=0), "crop_size must be a positive"),
        (dict(scales=(1.0, 0.0)), "ratios must be positive"),
        (dict(scales=()), "scales is empty"),
        (dict(scale=(2048,)), "scale must be a positive int or a pair"),
        (dict(batch_size=0), "batch_size must be a positive int"),
    ]
    for kwargs, message in cases:
        with pytest.raises(ValueError, match=message):
            segment(dict_model, image, **kwargs)
    with pytest.raises(ValueError, match=r"got shape \(40, 70\)"):
        segment(dict_model, image[0, ..., 0])
    with pytest.raises(ValueError, match=r"\[4\] channels; expected 3"):
        segment(dict_model, np.zeros((1, 8, 8, 4)))
    with pytest.raises(ValueError, match="entry 1 has shape"):
        segment(dict_model, [image[0], image[0, ..., 0]])
    with pytest.raises(ValueError, match="dtype bool"):
        segment(dict_model, image.astype(bool))


def test_model_errors_are_named():
    """A model built for one size, or without 'logits' in its dict."""
    inputs = keras.Input((32, 32, 3))
    fixed = keras.Model(inputs, keras.layers.Conv2D(K, 1)(inputs))
    image = np.zeros((40, 70, 3), np.uint8)
    with pytest.raises(ValueError, match="built for 32x32 inputs"):
        segment(fixed, image, scale=None)

    def no_logits(x):
        return {"scores": x}

    with pytest.raises(ValueError, match="dict without 'logits'"):
        segment(no_logits, image, scale=None)
