"""SwinBackbone: the official dense-prediction backbone, exactly.

References: the official detection backbone's outputs (golden files made
by running microsoft/Swin-Transformer-Object-Detection), Hugging Face's
`SwinBackbone` run live, PyTorch's bicubic for the absolute position
embedding, and the classification golden stages for a classification
checkpoint loaded as a backbone.
"""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import pytest

import keras_swin
from keras_swin.models.swin_backbone import SwinBackbone, frozen_layer_names
from weights_tools import convert_checkpoint

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
DENSE = GOLDEN / "swin_det_official"
CASES = ("det_e24_w7_250x333", "seg_e24_w7_out123_128x96")
TINY = dict(embed_dim=8, depths=(1, 1, 1, 1), num_heads=(1, 1, 2, 2))


def _tolerance(reference: np.ndarray) -> float:
    return 1e-5 * max(1.0, float(np.abs(reference).max()))


def _numpy(tree):
    return {k: keras.ops.convert_to_numpy(v) for k, v in tree.items()}


def _predict(model, images):
    # One compiled call: JAX runs eager calls op by op, compiling each.
    return model.predict(np.asarray(images, "float32"), verbose=0)


@pytest.mark.parametrize("dynamic", [False, True], ids=["static", "dynamic"])
@pytest.mark.parametrize("case", CASES)
def test_official_dense_golden(case, dynamic):
    folder = DENSE / case
    config = json.loads((folder / "config.json").read_text())
    height, width = config["input_hw"]
    shape = (None, None, 3) if dynamic else (height, width, 3)
    model = keras_swin.load_checkpoint(
        folder / "checkpoint.pth", input_shape=shape
    )
    assert isinstance(model, SwinBackbone)
    indices = config["constructor_kwargs"]["out_indices"]
    assert model.out_indices == tuple(indices)
    assert model.window_mode == "pad"
    images = np.load(folder / "inputs_nhwc.npy")
    reference = np.load(folder / "outputs_nhwc.npz")
    outputs = _predict(model, images)
    assert sorted(outputs) == sorted(f"P{i + 2}" for i in indices)
    for i in indices:
        expected = reference[f"out{i}"]
        got = outputs[f"P{i + 2}"]
        assert got.shape == expected.shape
        np.testing.assert_allclose(
            got, expected, rtol=0, atol=_tolerance(expected)
        )


def test_dense_checkpoint_lists_head_weights_and_meta():
    path = DENSE / "det_e24_w7_250x333" / "checkpoint.pth"
    model = keras_swin.load_checkpoint(path)
    notes = " ".join(keras_swin.checkpoint_notes(model))
    for prefix in ("neck.", "rpn_head.", "roi_head."):
        assert prefix in notes
    checkpoint = convert_checkpoint(path)
    meta = checkpoint.training_meta["meta"]
    assert isinstance(meta["CLASSES"], (list, tuple)) and meta["CLASSES"]
    assert isinstance(meta["config"], str) and meta["config"]


def test_window_modes_differ_only_on_small_maps():
    # 128x96, window 7: stage maps 32x24, 16x12, 8x6, 4x3. The first two
    # are larger than the window, so both modes lay them out alike; the
    # last two are not, and "clamp" shrinks the window there.
    pad = SwinBackbone(**TINY, window_size=7, window_mode="pad")
    clamp = SwinBackbone(**TINY, window_size=7, window_mode="clamp")
    clamp.set_weights(pad.get_weights())
    images = np.random.default_rng(0).normal(size=(1, 128, 96, 3))
    a, b = _predict(pad, images), _predict(clamp, images)
    for level in ("P2", "P3"):
        np.testing.assert_array_equal(a[level], b[level])
    for level in ("P4", "P5"):
        assert np.abs(a[level] - b[level]).max() > 1e-3


def _hf_backbone(tmp_path, **config):
    transformers = pytest.importorskip("transformers")
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    hf_config = transformers.SwinConfig(**config)
    model = transformers.SwinBackbone(hf_config).eval()
    with torch.no_grad():
        for name, param in model.named_parameters():
            # Every tensor matters: norms away from (1, 0), tables random.
            if name.endswith("relative_position_bias_table"):
                param.normal_(0.0, 1.0)
            elif "norm" in name and name.endswith("weight"):
                param.copy_(1.0 + 0.2 * torch.randn_like(param))
            elif name.endswith("bias"):
                param.copy_(0.2 * torch.randn_like(param))
    model.save_pretrained(tmp_path)
    return model, torch


@pytest.mark.parametrize(
    "size, window, out_features",
    [
        ((70, 90), 5, ["stage1", "stage3", "stage4"]),
        ((48, 40), 6, ["stage2", "stage4"]),
    ],
)
def test_matches_huggingface_swin_backbone(
    tmp_path, size, window, out_features
):
    hf, torch = _hf_backbone(
        tmp_path,
        image_size=224,
        embed_dim=12,
        depths=[2, 2, 2, 2],
        num_heads=[1, 2, 3, 3],
        window_size=window,
        out_features=out_features,
    )
    model = keras_swin.load_checkpoint(tmp_path)
    images = np.random.default_rng(1).normal(size=(2, *size, 3))
    with torch.no_grad():
        pixels = torch.tensor(images.transpose(0, 3, 1, 2), dtype=torch.float32)
        expected = hf(pixels).feature_maps
    got = _predict(model, images)
    assert len(got) == len(expected)
    for name, reference in zip(out_features, expected, strict=True):
        level = f"P{int(name[-1]) + 1}"
        reference = reference.numpy().transpose(0, 2, 3, 1)
        np.testing.assert_allclose(
            got[level], reference, rtol=0, atol=_tolerance(reference)
        )


@pytest.mark.parametrize("size", [(56, 56), (63, 84), (20, 17), (9, 70)])
def test_absolute_position_embedding_is_torch_bicubic(size):
    torch = pytest.importorskip("torch")
    layer = keras_swin.layers.ResizedPositionEmbedding((56, 56))
    layer.build((None, None, None, 6))
    grid = np.random.default_rng(2).normal(size=(1, 56, 56, 6))
    layer.embedding.assign(grid.astype("float32"))
    got = keras.ops.convert_to_numpy(layer(np.zeros((1, *size, 6), "float32")))
    # PyTorch's bicubic in float64: its float32 kernel is itself 1e-5
    # off on this grid, more than this layer is.
    expected = torch.nn.functional.interpolate(
        torch.tensor(grid.transpose(0, 3, 1, 2), dtype=torch.float64),
        size=size,
        mode="bicubic",
        align_corners=False,
    )
    expected = expected.numpy().transpose(0, 2, 3, 1)
    np.testing.assert_allclose(got, expected, rtol=0, atol=_tolerance(expected))


def test_ape_backbone_any_size_matches_static():
    kwargs = dict(
        **TINY,
        window_size=4,
        absolute_position_embedding=True,
        pretrain_image_size=64,
    )
    dynamic = SwinBackbone(**kwargs)
    static = SwinBackbone(**kwargs, image_shape=(72, 52, 3))
    static.set_weights(dynamic.get_weights())
    assert dynamic.get_layer("absolute_pos_embed").embedding.shape == (
        1,
        16,
        16,
        8,
    )
    images = np.random.default_rng(3).normal(size=(2, 72, 52, 3))
    a, b = _predict(dynamic, images), _predict(static, images)
    for level in a:
        np.testing.assert_allclose(a[level], b[level], rtol=0, atol=1e-6)


@pytest.mark.skipif(
    keras.backend.backend() != "tensorflow", reason="TensorFlow graph only"
)
def test_tensorflow_graph_with_unknown_size():
    import tensorflow as tf

    model = SwinBackbone(
        **TINY,
        window_size=7,
        absolute_position_embedding=True,
        pretrain_image_size=64,
    )
    images = np.random.default_rng(4).normal(size=(1, 128, 96, 3))
    eager = _numpy(model(images))
    graph = tf.function(
        lambda x: model(x),
        input_signature=[tf.TensorSpec((None, None, None, 3), tf.float32)],
    )
    traced = _numpy(graph(tf.constant(images, tf.float32)))
    for level in eager:
        np.testing.assert_allclose(traced[level], eager[level], atol=1e-5)


def test_frozen_stage_names_follow_the_official_code():
    assert frozen_layer_names(-1, 4) == []
    assert frozen_layer_names(0, 4) == ["patch_embed"]
    assert frozen_layer_names(1, 4) == ["patch_embed", "absolute_pos_embed"]
    assert frozen_layer_names(3, 4)[2:] == [
        "layers_0",
        "layers_0_downsample",
        "layers_1",
        "layers_1_downsample",
    ]
    with pytest.raises(ValueError, match="frozen_stages must be an int"):
        frozen_layer_names(6, 4)


def test_frozen_stages_train_nothing_and_run_in_inference_mode():
    model = SwinBackbone(
        **TINY, window_size=4, frozen_stages=2, drop_path_rate=0.9
    )
    trainable = {v.path.split("/")[0] for v in model.trainable_weights}
    assert "patch_embed" not in trainable
    assert (
        "layers_0" not in trainable and "layers_0_downsample" not in trainable
    )
    assert {"layers_1", "layers_3", "norm0"} <= trainable
    # Everything frozen: training=True changes nothing (no drop path).
    frozen = SwinBackbone(
        **TINY, window_size=4, frozen_stages=5, drop_path_rate=0.9
    )
    images = np.random.default_rng(5).normal(size=(2, 32, 32, 3))
    a = _numpy(frozen(images, training=True))
    b = _numpy(frozen(images, training=False))
    for level in a:
        np.testing.assert_array_equal(a[level], b[level])
    live = SwinBackbone(**TINY, window_size=4, drop_path_rate=0.9)
    a = _numpy(live(images, training=True))
    b = _numpy(live(images, training=False))
    assert np.abs(a["P5"] - b["P5"]).max() > 1e-3


def _classifier_step(backbone, images, targets):
    pooled = keras.layers.GlobalAveragePooling2D()(backbone.outputs[-1])
    head = keras.layers.Dense(1, kernel_initializer="ones")
    model = keras.Model(backbone.inputs, head(pooled))
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    model.fit(images, targets, epochs=1, batch_size=2, verbose=0)
    return [keras.ops.convert_to_numpy(w) for w in backbone.weights]


def test_gradient_checkpointing_changes_memory_not_results():
    images = np.random.default_rng(6).normal(size=(2, 32, 32, 3))
    targets = np.ones((2, 1))
    keras.utils.set_random_seed(0)
    plain = SwinBackbone(**TINY, window_size=4, drop_path_rate=0.0)
    keras.utils.set_random_seed(0)
    remat = SwinBackbone(
        **TINY, window_size=4, drop_path_rate=0.0, gradient_checkpointing=True
    )
    initial = plain.get_weights()
    remat.set_weights(initial)
    a = _classifier_step(plain, images, targets)
    b = _classifier_step(remat, images, targets)
    # The step moved the weights, by the same amount with and without
    # recomputation, up to float32 rounding of the recomputed graph (XLA
    # fuses it differently): 1e-4 of the largest update.
    largest = max(np.abs(x - w).max() for x, w in zip(a, initial, strict=True))
    assert largest > 1e-3
    for x, y, w in zip(a, b, initial, strict=True):
        np.testing.assert_allclose(x - w, y - w, rtol=0, atol=1e-4 * largest)


def test_keras_round_trip(tmp_path):
    model = SwinBackbone(
        **TINY,
        window_size=4,
        out_indices=(1, 3),
        absolute_position_embedding=True,
        pretrain_image_size=32,
        frozen_stages=1,
    )
    path = tmp_path / "backbone.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, SwinBackbone)
    assert sorted(loaded.pyramid_outputs) == ["P3", "P5"]
    assert loaded.get_config() == model.get_config()
    images = np.random.default_rng(7).normal(size=(1, 40, 36, 3))
    a, b = _predict(model, images), _predict(loaded, images)
    for level in a:
        np.testing.assert_array_equal(a[level], b[level])


def test_classification_checkpoint_as_backbone():
    folder = GOLDEN / "swin_official" / "tiny_w7_224"
    backbone = keras_swin.load_backbone(folder / "checkpoint.pth")
    notes = " ".join(keras_swin.checkpoint_notes(backbone))
    assert "head" in notes and "norm0" in notes
    for i in range(4):
        norm = backbone.get_layer(f"norm{i}")
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(norm.gamma), 1)
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(norm.beta), 0)
    # Stages 0-2 (56, 28, 14 px maps, window 7) are laid out as in the
    # classifier: their outputs are the official classifier's stage
    # outputs through a fresh LayerNorm.
    classifier = keras_swin.load_checkpoint(folder / "checkpoint.pth")
    stages = keras_swin.swin_feature_model(classifier)
    images = np.load(folder / "inputs_nhwc.npy")[:1]
    expected = _predict(stages, images)
    got = _predict(backbone, images)
    for i in range(3):
        x = expected[f"layers_{i}"].astype("float64")
        mean = x.mean(-1, keepdims=True)
        normed = (x - mean) / np.sqrt(x.var(-1, keepdims=True) + 1e-5)
        np.testing.assert_allclose(got[f"P{i + 2}"], normed, atol=1e-4)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(out_indices=(0, 4)), "out_indices must be distinct"),
        (dict(window_mode="shrink"), "window_mode must be one of"),
        (dict(frozen_stages=-2), "frozen_stages must be an int"),
        (dict(depths=(1, 1), num_heads=(1,)), "same length"),
    ],
)
def test_bad_arguments(kwargs, message):
    arguments = dict(TINY, **kwargs)
    with pytest.raises(ValueError, match=message):
        SwinBackbone(**arguments)


def test_dense_conversion_round_trips(tmp_path):
    from weights_tools.convert import save_checkpoint

    folder = DENSE / "seg_e24_w7_out123_128x96"
    images = np.load(folder / "inputs_nhwc.npy")
    reference = np.load(folder / "outputs_nhwc.npz")["out3"]
    converted = tmp_path / "backbone.safetensors"
    save_checkpoint(convert_checkpoint(folder / "checkpoint.pth"), converted)
    from_arrays = keras_swin.load_checkpoint(converted)
    assert isinstance(from_arrays, SwinBackbone)
    assert from_arrays.out_indices == (1, 2, 3)
    saved = tmp_path / "backbone.keras"
    from_arrays.save(saved)
    from_file = keras_swin.load_checkpoint(saved)
    for model in (from_arrays, from_file):
        got = _predict(model, images)["P5"]
        np.testing.assert_allclose(
            got, reference, rtol=0, atol=_tolerance(reference)
        )
