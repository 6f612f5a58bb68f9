"""Swin + UperNet: parity with Hugging Face, training, saving, sizes.

The golden folder (`tests/golden/hf_upernet`, random weights with random
BatchNorm statistics) is loaded with `keras_swin.load_checkpoint` and
compared with transformers' logits and auxiliary logits at 256x320 and at
250x330 (the backbone pads). Live transformers models cover other widths,
windows, pool scales, auxiliary heads and sizes.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
from helpers import BACKEND, count_params_without_init, golden

import keras_swin
from keras_swin.models.swin_backbone import SwinBackbone
from keras_swin.models.upernet import UPERNET_CONFIGS, SwinUperNet, UperNet

GOLDEN = "hf_upernet", "upernet_swin_e24_w7"
TINY = dict(
    embed_dim=8,
    depths=(1, 1, 1, 1),
    num_heads=(1, 1, 2, 2),
    window_size=4,
    drop_path_rate=0.1,
)
#: Two stages (strides 4 and 8), the auxiliary head on the second: the
#: head's graph (pyramid pooling, one lateral and FPN level, both heads)
#: with half the backbone, for the tests that compile a model (JAX takes
#: seconds per compile). Four stages: the golden parity cases.
TWO_STAGES = dict(
    TINY,
    depths=(1, 1),
    num_heads=(1, 1),
    out_indices=(0, 1),
    auxiliary_in_index=1,
)


def _bound(reference: np.ndarray) -> float:
    return 1e-5 * max(1.0, float(np.abs(reference).max()))


@pytest.fixture(scope="module")
def golden_model():
    return keras_swin.load_checkpoint(golden(*GOLDEN))


@pytest.mark.parametrize("size", ["256x320", "250x330"])
def test_matches_huggingface_golden(golden_model, size):
    folder = golden(*GOLDEN, size)
    images = np.load(folder / "inputs_nhwc.npy")
    got = golden_model.predict(images, verbose=0)
    assert sorted(got) == ["auxiliary_logits", "logits"]
    for key in ("logits", "auxiliary_logits"):
        reference = np.load(folder / f"{key}_nhwc.npy")
        assert got[key].shape == reference.shape
        np.testing.assert_allclose(
            got[key], reference, rtol=0, atol=_bound(reference), err_msg=key
        )


def _hf_upernet(tmp_path, seed, backbone, **head):
    transformers = pytest.importorskip("transformers")
    torch = pytest.importorskip("torch")
    torch.manual_seed(seed)
    config = transformers.UperNetConfig(
        backbone_config=transformers.SwinConfig(**backbone),
        **head,
    )
    model = transformers.UperNetForSemanticSegmentation(config).eval()
    with torch.no_grad():
        for name, param in model.named_parameters():
            # Every tensor matters: norms away from (1, 0), tables random.
            if name.endswith("relative_position_bias_table"):
                param.normal_(0.0, 1.0)
            elif name.endswith("weight") and param.ndim == 1:
                param.copy_(1.0 + 0.2 * torch.randn_like(param))
            elif name.endswith("bias"):
                param.copy_(0.2 * torch.randn_like(param))
        for name, buffer in model.named_buffers():
            if name.endswith("running_mean"):
                buffer.copy_(0.3 * torch.randn_like(buffer))
            elif name.endswith("running_var"):
                buffer.uniform_(0.5, 1.5)
    model.save_pretrained(tmp_path)
    return model, torch


def _hf_outputs(model, torch, images):
    """transformers' logits and, when it has one, the auxiliary head's
    logits resized to the image as `UperNetForSemanticSegmentation` does
    for its loss."""
    pixels = torch.tensor(images.transpose(0, 3, 1, 2), dtype=torch.float32)
    with torch.no_grad():
        out = {"logits": model(pixels).logits}
        if model.auxiliary_head is not None:
            features = model.backbone.forward_with_filtered_kwargs(
                pixels
            ).feature_maps
            auxiliary = model.auxiliary_head(features)
            out["auxiliary_logits"] = torch.nn.functional.interpolate(
                auxiliary,
                size=pixels.shape[2:],
                mode="bilinear",
                align_corners=False,
            )
    return {k: v.numpy().transpose(0, 2, 3, 1) for k, v in out.items()}


LIVE_CASES = [
    # Other width, window and pool scales, no auxiliary head, a size
    # that is neither a multiple of the patch nor of the windows.
    (
        dict(
            embed_dim=16,
            depths=[1, 1, 2, 1],
            num_heads=[1, 2, 2, 4],
            window_size=5,
            out_features=["stage1", "stage2", "stage3", "stage4"],
        ),
        dict(
            hidden_size=16,
            pool_scales=[1, 3],
            num_labels=3,
            use_auxiliary_head=False,
        ),
        (70, 90),
    ),
    # Two auxiliary convs with the input concatenated, pool scales
    # larger than the last map (4x3 here).
    (
        dict(
            embed_dim=12,
            depths=[2, 1, 1, 1],
            num_heads=[1, 1, 2, 2],
            window_size=6,
            out_features=["stage1", "stage2", "stage3", "stage4"],
        ),
        dict(
            hidden_size=8,
            pool_scales=[1, 2, 4, 6],
            num_labels=4,
            auxiliary_channels=8,
            auxiliary_num_convs=2,
            auxiliary_concat_input=True,
        ),
        (124, 92),
    ),
]


@pytest.mark.slow
@pytest.mark.skipif(
    BACKEND == "jax",
    reason="JAX compiles each new model for tens of seconds on the CI's 2 "
    "cores; JAX parity is shown by the golden cases at two sizes and the "
    "layers' own tests against PyTorch. These run in the TensorFlow and "
    "torch legs.",
)
@pytest.mark.parametrize("backbone, head, size", LIVE_CASES)
def test_matches_live_huggingface_upernet(tmp_path, backbone, head, size):
    hf, torch = _hf_upernet(tmp_path, 7, backbone, **head)
    model = keras_swin.load_checkpoint(tmp_path, input_shape=(None, None, 3))
    images = np.random.default_rng(2).normal(size=(1, *size, 3))
    expected = _hf_outputs(hf, torch, images)
    got = model.predict(images, verbose=0)
    assert sorted(got) == sorted(expected)
    for key, reference in expected.items():
        np.testing.assert_allclose(
            got[key], reference, rtol=0, atol=_bound(reference), err_msg=key
        )


@pytest.fixture(scope="module")
def tiny():
    # Seeded: the weights (and the fit's dropout) do not depend on what
    # the tests before consumed of the global random state.
    keras.utils.set_random_seed(0)
    return SwinUperNet(
        num_classes=3, channels=8, auxiliary_channels=4, **TWO_STAGES
    )


def test_fit_step_with_dropout_and_ignore_index(tiny):
    rng = np.random.default_rng(0)
    images = rng.normal(size=(2, 64, 48, 3)).astype("float32")
    labels = rng.integers(0, 3, size=(2, 64, 48))
    labels[:, :8] = 255  # ignored, as mmsegmentation's ignore_index
    loss = keras.losses.SparseCategoricalCrossentropy(
        from_logits=True, ignore_class=255
    )
    tiny.compile(
        optimizer=keras.optimizers.AdamW(1e-3),
        loss={"logits": loss, "auxiliary_logits": loss},
        loss_weights={"logits": 1.0, "auxiliary_logits": 0.4},
    )
    before = [np.array(v) for v in tiny.trainable_weights]
    history = tiny.fit(
        images,
        {"logits": labels, "auxiliary_logits": labels},
        epochs=1,
        batch_size=2,
        verbose=0,
    )
    assert np.isfinite(history.history["loss"][0])
    unchanged = [
        v.path
        for b, v in zip(before, tiny.trainable_weights, strict=True)
        if np.array_equal(b, np.array(v))
    ]
    assert not unchanged, f"weights without a gradient: {unchanged}"
    moving = tiny.get_layer("decode_head").fpn_bottleneck.bn.moving_mean
    assert np.any(np.array(moving) != 0.0), "BatchNorm statistics update"


def test_keras_round_trip(tiny, tmp_path):
    images = np.random.default_rng(1).normal(size=(1, 40, 56, 3))
    expected = tiny.predict(images, verbose=0)
    path = tmp_path / "upernet.keras"
    tiny.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, UperNet)
    assert loaded.get_config()["pool_scales"] == [1, 2, 3, 6]
    got = loaded.predict(images, verbose=0)
    for key in expected:
        np.testing.assert_array_equal(got[key], expected[key])


def test_mixed_bfloat16_runs():
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = SwinUperNet(
            num_classes=2, channels=8, auxiliary_channels=None, **TWO_STAGES
        )
        out = model.predict(np.ones((1, 32, 32, 3)), verbose=0)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert out["logits"].shape == (1, 32, 32, 2)
    assert np.all(np.isfinite(out["logits"].astype("float32")))


@pytest.mark.skipif(BACKEND != "tensorflow", reason="TensorFlow graphs only")
def test_tensorflow_graph_with_unknown_size(tiny):
    import tensorflow as tf

    images = np.random.default_rng(4).normal(size=(1, 50, 70, 3))
    expected = tiny.predict(images, verbose=0)
    graph = tf.function(
        lambda x: tiny(x, training=False),
        input_signature=[tf.TensorSpec((None, None, None, 3), tf.float32)],
    )
    traced = graph(tf.constant(images, tf.float32))
    for key in expected:
        np.testing.assert_allclose(
            traced[key].numpy(), expected[key], rtol=0, atol=1e-5
        )


@pytest.mark.skipif(
    BACKEND == "jax",
    reason="the head's wiring to another backbone's pyramid_outputs is "
    "backend-independent (a compile costs tens of seconds on JAX); the "
    "TensorFlow and torch legs run it, and the JAX leg runs UperNet on "
    "SwinBackbone above",
)
def test_upernet_on_a_kerashub_backbone():
    keras_hub = pytest.importorskip("keras_hub")
    backbone = keras_hub.models.ResNetBackbone(
        input_conv_filters=[64],
        input_conv_kernel_sizes=[3],
        stackwise_num_filters=[64, 8, 16, 16],  # KerasHub requires 64 first
        stackwise_num_blocks=[1, 1, 1, 1],
        stackwise_num_strides=[1, 2, 2, 2],
        block_type="basic_block",
    )
    model = UperNet(backbone, num_classes=4, channels=8, auxiliary_channels=4)
    out = model.predict(np.zeros((1, 64, 96, 3)), verbose=0)
    assert out["logits"].shape == (1, 64, 96, 4)
    assert out["auxiliary_logits"].shape == (1, 64, 96, 4)
    # The head reads the backbone's own maps: every one of them feeds it.
    decode = model.get_layer("decode_head")
    assert len(decode.lateral_convs) == len(backbone.pyramid_outputs) - 1


@pytest.mark.parametrize(
    "variant, millions",
    [
        ("swin_tiny", 60),
        ("swin_small", 81),
        ("swin_base", 121),
        ("swin_large", 234),
    ],
)
def test_parameter_counts_of_the_released_segmenters(variant, millions):
    # The official README's #params (auxiliary head included), in millions.
    count = count_params_without_init(SwinUperNet, variant=variant)
    assert round(count / 1e6) == millions
    assert UPERNET_CONFIGS[variant]["num_classes"] == 150


def test_bad_arguments():
    plain = keras.Sequential(
        [keras.Input((8, 8, 3)), keras.layers.Conv2D(2, 1)]
    )
    with pytest.raises(ValueError, match="pyramid_outputs"):
        UperNet(plain, num_classes=2)
    backbone = SwinBackbone(**TINY, out_indices=(2, 3))
    with pytest.raises(ValueError, match="auxiliary_in_index=2"):
        UperNet(backbone, num_classes=2)
    with pytest.raises(ValueError, match="Unknown variant"):
        SwinUperNet("swin_huge")
    with pytest.raises(ValueError, match="head arguments only"):
        SwinUperNet(backbone=backbone, embed_dim=8)
    with pytest.raises(ValueError, match="num_classes"):
        UperNet(backbone, num_classes=0, auxiliary_channels=None)


def test_keras_file_keeps_the_weights_record(golden_model, tmp_path):
    source = keras_swin.weights_source(golden_model)
    assert source is not None and "upernet_swin_e24_w7" in source
    path = tmp_path / "segmenter.keras"
    golden_model.save(path)
    loaded = keras.saving.load_model(path)
    assert keras_swin.weights_source(loaded) == source
    assert keras_swin.checkpoint_notes(loaded) == keras_swin.checkpoint_notes(
        golden_model
    )


def test_swin_upernet_with_weights_equals_load_checkpoint(golden_model):
    architecture = dict(
        num_classes=5,
        embed_dim=24,
        depths=(2, 2, 2, 2),
        num_heads=(1, 2, 3, 6),
        window_size=7,
        channels=32,
        auxiliary_channels=16,
    )
    model = keras_swin.SwinUperNet(weights=golden(*GOLDEN), **architecture)
    expected = {v.path: np.array(v) for v in golden_model.weights}
    got = {v.path: np.array(v) for v in model.weights}
    assert sorted(got) == sorted(expected)
    for path, value in got.items():
        np.testing.assert_array_equal(value, expected[path], err_msg=path)
    wrong = dict(architecture, channels=16)
    with pytest.raises(ValueError, match="decode_head"):
        keras_swin.SwinUperNet(weights=golden(*GOLDEN), **wrong)
