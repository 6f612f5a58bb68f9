"""SwinBackboneV2: V2 stages with V1's dense outputs, and larger windows.

References: the V2 classifier (`SwinTransformerV2`, itself checked against
the official `swin_transformer_v2.py` golden files) for the stage outputs,
a numpy re-implementation of the paper's continuous position bias for the
window enlarged at fine-tuning time, and KerasHub's RetinaNet and
DeepLabV3 for the pyramid contract.
"""

from __future__ import annotations

import functools
import importlib
from pathlib import Path

import keras
import numpy as np
import pytest
from helpers import BACKEND

import keras_swin
from keras_swin.layers import WindowAttentionV2
from keras_swin.models import SwinBackboneV2, SwinTransformerV2
from keras_swin.models.swin import swin_feature_model
from weights_tools import convert_checkpoint
from weights_tools.pth import read_pth

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "swinv2_official"
W8 = GOLDEN / "v2_e24_w8_256" / "checkpoint.pth"
#: A timm `swinv2_*_window8_256` model folder (model.safetensors).
TIMM_W8 = GOLDEN.parent / "timm_swinv2" / "timm_swinv2_e24_w8_256"
TINY = dict(embed_dim=24, depths=(2, 2, 2, 2), num_heads=(1, 2, 3, 6))


def _predict(model, images):
    # One compiled call: JAX runs eager calls op by op, compiling each.
    return model.predict(np.asarray(images, "float32"), verbose=0)


def _layer_norm(x):
    # A fresh LayerNorm (gamma 1, beta 0, epsilon 1e-5), in float64.
    x = x.astype("float64")
    mean = x.mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(x.var(-1, keepdims=True) + 1e-5)


def test_pyramid_at_a_size_no_window_divides():
    backbone = SwinBackboneV2(**TINY, window_size=8, drop_path_rate=0.0)
    images = np.random.default_rng(0).normal(size=(1, 250, 333, 3))
    maps = _predict(backbone, images)
    assert {k: v.shape for k, v in maps.items()} == {
        "P2": (1, 63, 84, 24),
        "P3": (1, 32, 42, 48),
        "P4": (1, 16, 21, 96),
        "P5": (1, 8, 11, 192),
    }
    assert sorted(backbone.pyramid_outputs) == ["P2", "P3", "P4", "P5"]
    assert all(np.isfinite(v).all() for v in maps.values())
    # The fresh norms: every position normalised over its channels.
    for level in maps:
        np.testing.assert_allclose(maps[level].mean(-1), 0, atol=1e-5)


def test_out_indices_and_frozen_stages():
    backbone = SwinBackboneV2(
        **TINY, window_size=4, out_indices=(3, 1), frozen_stages=2
    )
    assert list(backbone.pyramid_outputs) == ["P3", "P5"]
    trainable = {v.path.split("/")[0] for v in backbone.trainable_weights}
    assert trainable == {
        "layers_1",
        "layers_1_downsample",
        "layers_2",
        "layers_2_downsample",
        "layers_3",
        "norm1",
        "norm3",
    }


@pytest.mark.skipif(BACKEND != "tensorflow", reason="TensorFlow graph only")
@pytest.mark.parametrize("window_mode", ["pad", "clamp"])
def test_tensorflow_graph_with_unknown_size(window_mode):
    import tensorflow as tf

    # 100x140, window 8 from 4: stage maps 25x35, 13x18, 7x9, 4x5, the
    # last two not larger than the window (clamp: the window is the map's
    # side, found in the graph; pad: 8, padded and shifted).
    model = SwinBackboneV2(
        **TINY,
        window_size=8,
        pretrained_window_sizes=4,
        window_mode=window_mode,
    )
    images = np.random.default_rng(4).normal(size=(1, 100, 140, 3))
    eager = model(images)
    graph = tf.function(
        lambda x: model(x),
        input_signature=[tf.TensorSpec((None, None, None, 3), tf.float32)],
    )
    traced = graph(tf.constant(images, tf.float32))
    # Measured: pad 0; clamp 4.3e-6 (the graph computes the clamped
    # window's coordinate table itself, eager mode takes numpy's).
    for level in eager:
        np.testing.assert_allclose(
            traced[level].numpy(), eager[level].numpy(), atol=1e-5
        )


def test_v2_layers_and_no_qk_scale():
    backbone = SwinBackboneV2(**TINY, window_size=4)
    assert type(backbone.get_layer("layers_0")).__name__ == "SwinStageV2"
    merge = backbone.get_layer("layers_0_downsample")
    assert type(merge).__name__ == "PatchMergingV2"
    # V2's merging norm is 2C wide (48), V1's 4C (96).
    assert tuple(merge.norm.gamma.shape) == (48,)
    assert "qk_scale" not in backbone.get_config()
    with pytest.raises(TypeError, match="qk_scale"):
        SwinBackboneV2(**TINY, qk_scale=0.5)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(pretrained_window_sizes=(8, 8)), "one entry per stage"),
        (dict(pretrained_window_sizes=1), "0 \\(none\\) or >= 2"),
        (dict(out_indices=(0, 4)), "out_indices must be distinct"),
        (dict(window_mode="shrink"), "window_mode must be one of"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SwinBackboneV2(**TINY, **kwargs)


def test_stages_equal_the_classifier_stages():
    # 144x176, window 4: stage maps 36x44, 18x22, 9x11, 5x6, all larger
    # than the window, so the classifier's clamp and the backbone's pad
    # lay every stage out alike (padded to window multiples, shifted).
    classifier = SwinTransformerV2(
        **TINY,
        window_size=4,
        input_shape=(144, 176, 3),
        include_top=False,
        drop_path_rate=0.0,
    )
    backbone = SwinBackboneV2(**TINY, window_size=4, drop_path_rate=0.0)
    # Random weights, the same in both (the final `norm` only in one, the
    # `norm{i}` only in the other).
    values = {v.path: v for v in backbone.weights}
    rng = np.random.default_rng(3)
    for v in classifier.weights:
        value = rng.normal(0.0, 0.2, v.shape).astype("float32")
        if v.path.endswith("gamma"):
            value += 1.0
        v.assign(value)
        if v.path in values:
            values[v.path].assign(value)
    shared = [p for p in values if not p.startswith("norm")]
    assert len(shared) == len(classifier.weights) - 2
    images = np.random.default_rng(1).normal(size=(1, 144, 176, 3))
    expected = _predict(swin_feature_model(classifier), images)
    stages = _predict(swin_feature_model(backbone), images)
    maps = _predict(backbone, images)
    for i in range(4):
        # The same layers on the same weights: the same numbers (equal
        # on all three backends).
        reference = expected[f"layers_{i}"]
        np.testing.assert_array_equal(stages[f"layers_{i}"], reference)
        # float32 LayerNorm against float64: 5.8e-7 at most measured.
        np.testing.assert_allclose(
            maps[f"P{i + 2}"], _layer_norm(reference), rtol=0, atol=2e-6
        )


@pytest.mark.parametrize(
    "path",
    [W8, TIMM_W8],
    ids=["official_pth", "timm_safetensors"],
)
def test_classification_checkpoint_as_backbone(path):
    backbone = keras_swin.load_backbone(path)
    assert isinstance(backbone, SwinBackboneV2)
    assert backbone.window_mode == "pad"
    assert backbone.window_size == 8
    assert backbone.pretrained_window_sizes == (8, 8, 8, 8)
    notes = " ".join(keras_swin.checkpoint_notes(backbone))
    assert "head" in notes and "norm0, norm1, norm2, norm3" in notes
    for i in range(4):
        norm = backbone.get_layer(f"norm{i}")
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(norm.gamma), 1)
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(norm.beta), 0)
    # Stages 0-2 (64, 32, 16 px maps, window 8) are laid out as in the
    # classifier (the last, 8x8, is shifted only in the backbone): their
    # outputs are the classifier's through a fresh LayerNorm.
    classifier = keras_swin.load_checkpoint(path)
    stages = swin_feature_model(classifier)
    images = np.load(W8.parent / "inputs_nhwc.npy")[:1]
    expected = _predict(stages, images)
    got = _predict(backbone, images)
    for i in range(3):
        normed = _layer_norm(expected[f"layers_{i}"])
        # 5.8e-7 at most measured (float32 LayerNorm against float64).
        np.testing.assert_allclose(got[f"P{i + 2}"], normed, rtol=0, atol=2e-6)
    assert np.abs(got["P5"] - _layer_norm(expected["layers_3"])).max() > 1e-2


def test_clamped_stage_keeps_its_trained_window():
    # Window 16 at 256 px, fine-tuned from window 8 (stage 3 from 4): the
    # classifier clamped stage 3's window to its 8x8 map; the backbone
    # runs it at 16, with the MLP's trained window as recorded.
    path = GOLDEN / "v2_e24_w16_256_from_w8" / "checkpoint.pth"
    backbone = keras_swin.load_backbone(path, out_indices=(2, 3))
    assert backbone.window_size == 16
    assert backbone.pretrained_window_sizes == (8, 8, 8, 4)
    attn = backbone.get_layer("layers_3").blocks[1].attn
    assert (attn.window_size, attn.pretrained_window_size) == (16, 4)


def test_trained_windows_of_clamped_stages():
    from weights_tools.backbone import _trained_windows

    # 32 px, patch 4, window 8: maps 8, 4, 2, 1; a 1x1 window has no
    # coordinate scale (0: the table of the window itself).
    config = dict(
        window_size=8,
        input_shape=(32, 40, 3),
        patch_size=4,
        pretrained_window_sizes=(0, 0, 0, 0),
    )
    assert _trained_windows(config) == [8, 4, 2, 0]
    config["pretrained_window_sizes"] = (12, 12, 12, 6)
    assert _trained_windows(config) == [12, 12, 12, 6]
    config["input_shape"] = (None, None, 3)
    config["pretrained_window_sizes"] = (0, 0, 0, 0)
    assert _trained_windows(config) == [8, 8, 8, 8]


# The continuous position bias, from the paper's formula (Sec. 3.3) and
# the official `swin_transformer_v2.py`, in numpy.


def _coords_table(window: int, pretrained: int) -> np.ndarray:
    # Offsets -(M-1)..(M-1) per axis, (dh, dw) on the last axis.
    offsets = np.arange(-(window - 1), window, dtype="float64")
    table = np.stack(np.meshgrid(offsets, offsets, indexing="ij"), axis=-1)
    table = table / (pretrained - 1) * 8
    return np.sign(table) * np.log2(np.abs(table) + 1) / np.log2(8)


def _position_index(window: int) -> np.ndarray:
    coords = np.stack(
        np.meshgrid(np.arange(window), np.arange(window), indexing="ij")
    ).reshape(2, -1)
    relative = coords[:, :, None] - coords[:, None, :] + window - 1
    # (M*M, M*M) rows of the flattened (2M-1, 2M-1) table.
    return relative[0] * (2 * window - 1) + relative[1]


def _continuous_bias(state, prefix, window, pretrained):
    # cpb_mlp: Linear(2, 512) + ReLU + Linear(512, heads), torch layout.
    w0 = state[prefix + "cpb_mlp.0.weight"].astype("float64")
    b0 = state[prefix + "cpb_mlp.0.bias"].astype("float64")
    w2 = state[prefix + "cpb_mlp.2.weight"].astype("float64")
    table = _coords_table(window, pretrained).reshape(-1, 2)
    rows = np.maximum(table @ w0.T + b0, 0) @ w2.T
    # ((2M-1)^2, heads) -> (M*M, M*M, heads) -> (heads, M*M, M*M).
    bias = rows[_position_index(window)].transpose(2, 0, 1)
    return 16 / (1 + np.exp(-bias))


def _attentions(model):
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if isinstance(layer, WindowAttentionV2):
            yield layer


def test_window_enlarged_without_resampling():
    # The paper's fine-tuning recipe: the window-8 checkpoint at window 16,
    # its position MLPs told they were trained at window 8.
    state = read_pth(W8)
    arrays = convert_checkpoint(W8).weights.weights
    backbone = keras_swin.load_backbone(W8, window_size=16)
    classifier = keras_swin.load_checkpoint(
        W8, window_size=16, pretrained_window_sizes=8
    )
    assert backbone.pretrained_window_sizes == (8, 8, 8, 8)
    for model in (backbone, classifier):
        copied = [v for v in model.weights if v.path in arrays]
        # Every weight comes from the checkpoint, unchanged (the
        # backbone's fresh output norms aside).
        fresh = {v.path for v in model.weights} - set(arrays)
        assert all(p.startswith("norm") and p[4].isdigit() for p in fresh)
        assert len(copied) == len(model.weights) - len(fresh)
        for v in copied:
            np.testing.assert_array_equal(
                keras.ops.convert_to_numpy(v), arrays[v.path], err_msg=v.path
            )
    images = np.load(W8.parent / "inputs_nhwc.npy")[:1]
    maps = _predict(backbone, images)
    assert maps["P2"].shape == (1, 64, 64, 24)
    assert all(np.isfinite(v).all() for v in maps.values())
    logits = _predict(classifier, images)
    assert logits.shape == (1, 10) and np.isfinite(logits).all()
    # The window changed what the model computes.
    original = _predict(keras_swin.load_checkpoint(W8), images)
    assert np.abs(logits - original).max() > 1e-3

    checked = 0
    for model in (backbone, classifier):
        for attn in _attentions(model):
            # attn.path: ".../layers_{i}/blocks_{j}/attn".
            stage, block = attn.path.split("/")[-3:-1]
            prefix = f"layers.{stage[7:]}.blocks.{block[7:]}.attn."
            window = attn.window_size
            # The backbone never clamps; the classifier's 8x8 last stage
            # runs at window 8.
            clamped = model is classifier and stage == "layers_3"
            assert window == (8 if clamped else 16)
            expected = _continuous_bias(state, prefix, window, 8)
            got = keras.ops.convert_to_numpy(
                attn.relative_position_bias(window)
            )
            # float32 MLP against float64 on values up to 16: 4.3e-6 at
            # most measured (torch; jax 2.7e-6, tensorflow 3.9e-6).
            np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)
            checked += 1
    assert checked == 16
    # Spread over the new window instead (no pretrained window), the
    # bias is another one: the scaling is what keeps the trained values.
    prefix = "layers.0.blocks.0.attn."
    scaled = _continuous_bias(state, prefix, 16, 8)
    unscaled = _continuous_bias(state, prefix, 16, 16)
    assert np.abs(unscaled - scaled).max() > 1e-2


def test_keras_round_trip(tmp_path):
    model = SwinBackboneV2(
        **TINY,
        window_size=8,
        pretrained_window_sizes=(4, 4, 4, 2),
        out_indices=(1, 3),
        frozen_stages=2,
        absolute_position_embedding=True,
        pretrain_image_size=64,
    )
    config = model.get_config()
    assert config["pretrained_window_sizes"] == [4, 4, 4, 2]
    rebuilt = SwinBackboneV2.from_config(config)
    assert rebuilt.get_config() == config
    path = tmp_path / "backbone.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, SwinBackboneV2)
    assert loaded.get_config() == config
    assert sorted(loaded.pyramid_outputs) == ["P3", "P5"]
    images = np.random.default_rng(7).normal(size=(1, 70, 90, 3))
    a, b = _predict(model, images), _predict(loaded, images)
    for level in a:
        np.testing.assert_array_equal(a[level], b[level])


def _interop():
    # The V1 interop test's task builders and synthetic targets, with
    # this backbone as the image encoder.
    pytest.importorskip("keras_hub")
    hub = importlib.import_module("test_kerashub_interop")
    return hub, functools.partial(hub._swin, backbone=SwinBackboneV2)


def test_kerashub_retinanet_reads_the_v2_pyramid(rng):
    hub, encoder = _interop()
    detector, swin = hub._retinanet(encoder=encoder)
    assert isinstance(swin, SwinBackboneV2)
    x = hub._images(rng, 2)
    # The FPN reads the V2 backbone's own P3-P5, unchanged. (The forward
    # and fit step of a task: the DeepLabV3 test below; RetinaNet's fit
    # compiles for 20 s on JAX.)
    extractor = detector.backbone.get_layer("backbone")
    got = extractor.predict(x, verbose=0)
    expected = swin.predict(x, verbose=0)
    assert sorted(got) == ["P3", "P4", "P5"]
    for level in got:
        np.testing.assert_array_equal(got[level], expected[level])
    # 9 anchors per position of P3 (8x8), P4 (4x4) and P5 (2x2).
    spec = detector.compute_output_spec(keras.KerasTensor((2, 64, 64, 3)))
    assert tuple(spec["cls_logits"].shape) == (2, 9 * 84, hub.CLASSES)


def test_kerashub_deeplab_on_v2(rng):
    hub, encoder = _interop()
    segmenter, swin = hub._deeplab(encoder=encoder)
    assert isinstance(swin, SwinBackboneV2)
    x = hub._images(rng, 2)
    assert segmenter.predict(x, verbose=0).shape == (
        2,
        hub.SIZE,
        hub.SIZE,
        hub.CLASSES,
    )
    decoder = segmenter.backbone.get_layer("decoder_conv")
    assert decoder.kernel.shape == (1, 1, 8, 8)
    segmenter.compile(optimizer=keras.optimizers.Adam(1e-3))
    before = hub._numpy(swin.trainable_weights)
    history = segmenter.fit(
        x, hub._masks(rng, 2), batch_size=2, epochs=1, verbose=0
    ).history
    assert np.isfinite(history["loss"]).all()
    hub._assert_all_changed(before, swin.trainable_weights)
