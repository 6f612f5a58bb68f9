"""KerasHub's RetinaNet and DeepLabV3 on a keras-swin `SwinBackbone`.

KerasHub (an optional extra, `keras-swin[hub]`) builds its detectors and
segmenters on any `keras.Model` with a `pyramid_outputs` dict: RetinaNet
through `RetinaNetBackbone(image_encoder=...)`, DeepLabV3 through
`DeepLabV3Backbone(image_encoder=...)`. These tests build both on a tiny
Swin, check that the task model reads the Swin's own maps, fit a few steps
on synthetic boxes / masks, and round-trip the trained model through
`.keras` with bit-identical outputs.
"""

from __future__ import annotations

import warnings

import keras
import numpy as np
import pytest

from keras_swin.models.swin_backbone import SwinBackbone

keras_hub = pytest.importorskip("keras_hub")

SIZE = 64
CLASSES = 3


def _swin(out_indices, image_shape=(None, None, 3), backbone=SwinBackbone):
    # `backbone`: SwinBackboneV2 in its tests, which reuse these builders.
    return backbone(
        embed_dim=8,
        depths=(1, 1, 1, 1),
        num_heads=(1, 1, 2, 2),
        window_size=4,
        drop_path_rate=0.0,
        out_indices=out_indices,
        image_shape=image_shape,
    )


def _retinanet(image_shape=(SIZE, SIZE, 3), preprocessor=None, encoder=_swin):
    # P3-P5 of the Swin feed the FPN (stage 0 is not read, so it has no
    # output norm); the FPN adds nothing coarser (max_level 5). `encoder`
    # makes the Swin from its out_indices.
    swin = encoder((1, 2, 3))
    backbone = keras_hub.models.RetinaNetBackbone(
        image_encoder=swin,
        min_level=3,
        max_level=5,
        use_p5=False,
        image_shape=image_shape,
    )
    detector = keras_hub.models.RetinaNetObjectDetector(
        backbone=backbone,
        num_classes=CLASSES,
        bounding_box_format="xyxy",
        pre_logits_num_conv_layers=1,
        preprocessor=preprocessor,
    )
    return detector, swin


def _deeplab(image_shape=(SIZE, SIZE, 3), encoder=_swin):
    # DeepLabV3+ reads P2 (decoder) and P5 (atrous pyramid) only.
    swin = encoder((0, 3))
    backbone = keras_hub.models.DeepLabV3Backbone(
        image_encoder=swin,
        low_level_feature_key="P2",
        spatial_pyramid_pooling_key="P5",
        upsampling_size=8,
        dilation_rates=[1, 2],
        projection_filters=8,
        image_shape=image_shape,
    )
    segmenter = keras_hub.models.DeepLabV3ImageSegmenter(
        backbone=backbone, num_classes=CLASSES
    )
    return segmenter, swin


def _numpy(tree):
    return [keras.ops.convert_to_numpy(t) for t in keras.tree.flatten(tree)]


def _images(rng, batch, height=SIZE, width=SIZE):
    return rng.uniform(0.0, 1.0, (batch, height, width, 3)).astype("float32")


def _boxes(rng, batch):
    """1-3 boxes of 24-40 px per image, padded to 3 with -1 (boxes, labels).

    Boxes this size overlap the default anchors (32-50 px at P3) with IoU
    above 0.5, so every image has positive anchors and a box loss.
    """
    boxes = np.full((batch, 3, 4), -1.0, "float32")
    labels = np.full((batch, 3), -1.0, "float32")
    for b in range(batch):
        for k in range(1 + b % 3):
            w, h = rng.uniform(24, 40, 2)
            x0 = rng.uniform(0, SIZE - w)
            y0 = rng.uniform(0, SIZE - h)
            boxes[b, k] = [x0, y0, x0 + w, y0 + h]
            labels[b, k] = rng.integers(0, CLASSES)
    return {"boxes": boxes, "labels": labels}


def _masks(rng, batch):
    """One-hot (B, H, W, 3) masks: background, a square and a disc."""
    yy, xx = np.mgrid[:SIZE, :SIZE]
    classes = np.zeros((batch, SIZE, SIZE), "int64")
    for b in range(batch):
        x0, y0 = rng.integers(0, SIZE // 2, 2)
        classes[b, y0 : y0 + 24, x0 : x0 + 24] = 1
        cy, cx = rng.integers(12, SIZE - 12, 2)
        classes[b, (yy - cy) ** 2 + (xx - cx) ** 2 <= 100] = 2
    return np.eye(CLASSES, dtype="float32")[classes]


def _assert_all_changed(before, weights):
    after = _numpy(weights)
    unchanged = [
        w.path
        for w, a, b in zip(weights, after, before, strict=True)
        if np.array_equal(a, b)
    ]
    assert not unchanged, f"weights not updated by fit: {unchanged}"


def _round_trip(model, tmp_path):
    path = tmp_path / "model.keras"
    model.save(path)
    with warnings.catch_warnings():
        # A KerasHub task compiles itself (default Adam) in its constructor,
        # so the rebuilt model's unbuilt optimizer differs from the saved
        # one; the weights are what is compared here.
        warnings.filterwarnings(
            "ignore", "Skipping variable loading for optimizer"
        )
        return keras.saving.load_model(path, compile=False)


def test_retinanet_reads_the_swin_pyramid(rng):
    detector, swin = _retinanet(image_shape=(None, None, 3))
    x = _images(rng, 1, 64, 96)
    # The FPN's input is the Swin's own P3-P5, unchanged.
    extractor = detector.backbone.get_layer("backbone")
    for a, b in zip(_numpy(extractor(x)), _numpy(swin(x)), strict=True):
        np.testing.assert_array_equal(a, b)
    out = detector(x)
    # 9 anchors per position of P3 (8x12), P4 (4x6) and P5 (2x3).
    anchors = 9 * (8 * 12 + 4 * 6 + 2 * 3)
    assert tuple(out["bbox_regression"].shape) == (1, anchors, 4)
    assert tuple(out["cls_logits"].shape) == (1, anchors, CLASSES)


def test_deeplab_reads_the_swin_pyramid(rng):
    segmenter, swin = _deeplab(image_shape=(None, None, 3))
    x = _images(rng, 1, 64, 96)
    assert sorted(segmenter.backbone.image_encoder.pyramid_outputs) == [
        "P2",
        "P5",
    ]
    assert tuple(segmenter(x).shape) == (1, 64, 96, CLASSES)
    # The low-level branch projects the Swin's P2 (stride 4, 8 channels).
    decoder = segmenter.backbone.get_layer("decoder_conv")
    assert decoder.kernel.shape == (1, 1, 8, 8)
    maps = swin(x)
    assert tuple(maps["P2"].shape) == (1, 16, 24, 8)
    assert tuple(maps["P5"].shape) == (1, 2, 3, 64)


@pytest.mark.slow
def test_retinanet_fits_and_round_trips(rng, tmp_path):
    converter = keras_hub.layers.RetinaNetImageConverter(
        scale=1 / 255, bounding_box_format="xyxy"
    )
    preprocessor = keras_hub.models.RetinaNetObjectDetectorPreprocessor(
        image_converter=converter
    )
    detector, swin = _retinanet(preprocessor=preprocessor)
    detector.compile(optimizer=keras.optimizers.Adam(1e-3))
    pixels = 255 * _images(rng, 4)
    before = _numpy(swin.trainable_weights)

    history = detector.fit(
        pixels, _boxes(rng, 4), batch_size=2, epochs=1, verbose=0
    ).history
    assert np.isfinite(history["loss"]).all()
    # The boxes matched anchors: the regression loss is not empty.
    assert history["bbox_regression_loss"][0] > 0
    _assert_all_changed(before, swin.trainable_weights)

    restored = _round_trip(detector, tmp_path)
    assert isinstance(restored.backbone.image_encoder, SwinBackbone)
    x = pixels / 255
    for a, b in zip(_numpy(detector(x)), _numpy(restored(x)), strict=True):
        np.testing.assert_array_equal(a, b)
    # predict runs the restored preprocessor, anchors and NMS decoder.
    detections = restored.predict(pixels, verbose=0)
    assert {k: v.shape for k, v in detections.items()} == {
        "boxes": (4, 100, 4),
        "confidence": (4, 100),
        "labels": (4, 100),
        "num_detections": (4,),
    }


@pytest.mark.slow
def test_deeplab_fits_and_round_trips(rng, tmp_path):
    segmenter, swin = _deeplab()
    segmenter.compile(optimizer=keras.optimizers.Adam(1e-3))
    x = _images(rng, 4)
    before = _numpy(swin.trainable_weights)

    history = segmenter.fit(
        x, _masks(rng, 4), batch_size=2, epochs=1, verbose=0
    ).history
    assert np.isfinite(history["loss"]).all()
    _assert_all_changed(before, swin.trainable_weights)

    restored = _round_trip(segmenter, tmp_path)
    assert isinstance(restored.backbone.image_encoder, SwinBackbone)
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(restored(x)),
        keras.ops.convert_to_numpy(segmenter(x)),
    )
