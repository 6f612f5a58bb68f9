"""Swin + UperNet checkpoints into Keras: the `swin_upernet` family.

A tiny official (mmsegmentation) segmenter checkpoint is written here
from seeded arrays; it is loaded with `load_checkpoint`, with another
class count, as a backbone and as a registered release downloaded from
a `file://` URL. The logits of the real golden segmenter are the lead's
parity test (tests/models/test_upernet.py); here no model is run, the
assigned weights are compared with the file's tensors (transposes
written out). Four tiny builds per backend, of the architecture of
tests/models/test_upernet.py's `TINY` (on JAX, whose random
initialisers compile once per weight shape, they then cost little).
"""

from __future__ import annotations

import collections
import dataclasses
import warnings

import numpy as np
import pytest
from helpers import to_numpy

import keras_swin
import keras_swin.weights.families
from keras_swin.applications import build_pretrained, load_backbone
from keras_swin.cli import main
from keras_swin.imagenet import model_preprocessing
from keras_swin.models.upernet import UperNet
from keras_swin.weights import pretrained
from keras_swin.weights.families import FAMILIES
from keras_swin.weights.loading import checkpoint_notes, weights_source
from weights_tools.convert import HeadWarning, convert_checkpoint

torch = pytest.importorskip("torch")

CLASSES, CHANNELS, AUX, WINDOW = 3, 8, 4, 4
WIDTHS, HEADS = (8, 16, 32, 64), (1, 1, 2, 2)
NAMES = ("sky", "tree", "road")


def official_index(window: int) -> np.ndarray:
    coords = np.stack(
        np.meshgrid(np.arange(window), np.arange(window), indexing="ij")
    ).reshape(2, -1)
    relative = (coords[:, :, None] - coords[:, None, :]).transpose(1, 2, 0)
    relative = relative + (window - 1)
    return relative[..., 0] * (2 * window - 1) + relative[..., 1]


def tiny_state() -> collections.OrderedDict:
    """embed 8, depths (1, 1, 1, 1), heads (1, 1, 2, 2), patch 4, window
    4, outputs (0, 1, 2, 3); UperNet channels 8, pool scales (1, 2, 3,
    6), auxiliary head of 4 channels on output 2, 3 classes; mmseg
    names."""
    rng = np.random.default_rng(7)
    state = collections.OrderedDict()

    def put(name, *shape):
        state[name] = rng.normal(size=shape).astype("float32")

    def module(name, out, inputs, k):
        put(f"{name}.conv.weight", out, inputs, k, k)
        put(f"{name}.bn.weight", out)
        put(f"{name}.bn.bias", out)
        put(f"{name}.bn.running_mean", out)
        state[f"{name}.bn.running_var"] = rng.uniform(0.5, 1.5, out).astype(
            "float32"
        )
        state[f"{name}.bn.num_batches_tracked"] = np.array(5, "int64")

    put("backbone.patch_embed.proj.weight", 8, 3, 4, 4)
    put("backbone.patch_embed.proj.bias", 8)
    put("backbone.patch_embed.norm.weight", 8)
    put("backbone.patch_embed.norm.bias", 8)
    for i, (width, heads) in enumerate(zip(WIDTHS, HEADS, strict=True)):
        block = f"backbone.layers.{i}.blocks.0."
        put(block + "norm1.weight", width)
        put(block + "norm1.bias", width)
        put(block + "attn.relative_position_bias_table", 49, heads)
        state[block + "attn.relative_position_index"] = official_index(WINDOW)
        put(block + "attn.qkv.weight", 3 * width, width)
        put(block + "attn.qkv.bias", 3 * width)
        put(block + "attn.proj.weight", width, width)
        put(block + "attn.proj.bias", width)
        put(block + "norm2.weight", width)
        put(block + "norm2.bias", width)
        put(block + "mlp.fc1.weight", 4 * width, width)
        put(block + "mlp.fc1.bias", 4 * width)
        put(block + "mlp.fc2.weight", width, 4 * width)
        put(block + "mlp.fc2.bias", width)
        put(f"backbone.norm{i}.weight", width)
        put(f"backbone.norm{i}.bias", width)
        if i < 3:
            merge = f"backbone.layers.{i}.downsample."
            put(merge + "reduction.weight", 2 * width, 4 * width)
            put(merge + "norm.weight", 4 * width)
            put(merge + "norm.bias", 4 * width)
    for k in range(4):
        module(f"decode_head.psp_modules.{k}.1", CHANNELS, 64, 1)
    module("decode_head.bottleneck", CHANNELS, 64 + 4 * CHANNELS, 3)
    for i in range(3):
        module(f"decode_head.lateral_convs.{i}", CHANNELS, WIDTHS[i], 1)
        module(f"decode_head.fpn_convs.{i}", CHANNELS, CHANNELS, 3)
    module("decode_head.fpn_bottleneck", CHANNELS, 4 * CHANNELS, 3)
    module("auxiliary_head.convs.0", AUX, 32, 3)
    for head, width in (("decode_head", CHANNELS), ("auxiliary_head", AUX)):
        put(f"{head}.conv_seg.weight", CLASSES, width, 1, 1)
        put(f"{head}.conv_seg.bias", CLASSES)
    return state


def _hwio(array):
    return array.transpose(2, 3, 1, 0)


#: Keras weight path -> (file key, transform): a sample of every kind.
SAMPLES = {
    "patch_embed/proj/kernel": ("backbone.patch_embed.proj.weight", _hwio),
    "layers_1/blocks_0/attn/qkv/kernel": (
        "backbone.layers.1.blocks.0.attn.qkv.weight",
        np.transpose,
    ),
    "norm1/gamma": ("backbone.norm1.weight", None),
    "decode_head/psp_modules_1/conv/kernel": (
        "decode_head.psp_modules.1.1.conv.weight",
        _hwio,
    ),
    "decode_head/bottleneck/bn/moving_variance": (
        "decode_head.bottleneck.bn.running_var",
        None,
    ),
    "decode_head/fpn_bottleneck/conv/kernel": (
        "decode_head.fpn_bottleneck.conv.weight",
        _hwio,
    ),
    "decode_head/lateral_convs_0/bn/moving_mean": (
        "decode_head.lateral_convs.0.bn.running_mean",
        None,
    ),
    "decode_head/conv_seg/kernel": ("decode_head.conv_seg.weight", _hwio),
    "auxiliary_head/convs_0/bn/gamma": (
        "auxiliary_head.convs.0.bn.weight",
        None,
    ),
    "auxiliary_head/conv_seg/bias": ("auxiliary_head.conv_seg.bias", None),
}


@pytest.fixture(scope="module")
def state():
    return tiny_state()


@pytest.fixture(scope="module")
def pth(state, tmp_path_factory):
    path = tmp_path_factory.mktemp("upernet") / "upernet.pth"
    torch.save(
        {
            "meta": {"CLASSES": NAMES, "config": "pool_scales=(1, 2, 3, 6)"},
            "state_dict": collections.OrderedDict(
                (k, torch.from_numpy(np.asarray(v))) for k, v in state.items()
            ),
        },
        path,
    )
    return path


def _weights(model) -> dict:
    return {v.path: to_numpy(v) for v in model.weights}


def _check_samples(weights: dict, state, skip=()) -> None:
    for path, (key, transform) in SAMPLES.items():
        if path.startswith(skip):
            continue
        expected = state[key] if transform is None else transform(state[key])
        np.testing.assert_array_equal(weights[path], expected, err_msg=path)


def test_load_checkpoint_gives_the_segmenter(pth, state):
    model = keras_swin.load_checkpoint(pth, input_shape=(None, None, 3))
    assert isinstance(model, UperNet)
    assert {k: tuple(v.shape) for k, v in model.output.items()} == {
        "logits": (None, None, None, CLASSES),
        "auxiliary_logits": (None, None, None, CLASSES),
    }
    assert (model.pool_scales, model.channels) == ((1, 2, 3, 6), CHANNELS)
    assert model.auxiliary_in_index == 2  # the 32-channel output
    weights = _weights(model)
    _check_samples(weights, state)
    assert sorted(weights) == sorted(convert_checkpoint(pth).weights.weights)
    assert weights_source(model) == str(pth)
    settings = model_preprocessing(model)
    assert settings["class_names"] == list(NAMES)  # meta['CLASSES']
    assert settings["crop_pct"] == 1.0
    assert any("num_batches_tracked" in n for n in checkpoint_notes(model))


def test_another_class_count_keeps_all_but_the_classifiers(pth, state):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = keras_swin.load_checkpoint(pth, classes=2)
    (warning,) = [w for w in caught if w.category is HeadWarning]
    message = str(warning.message)
    for key in ("decode_head.conv_seg.weight", "auxiliary_head.conv_seg.bias"):
        assert key in message
    assert "keep the model's initialisation" in message
    weights = _weights(model)
    _check_samples(weights, state, skip=("decode_head/conv_seg", "aux"))
    kernel = weights["decode_head/conv_seg/kernel"]
    assert kernel.shape == (1, 1, CHANNELS, 2)
    assert weights["auxiliary_head/conv_seg/kernel"].shape == (1, 1, AUX, 2)
    assert np.abs(kernel).max() > 0  # the model's own draw, not zeros
    np.testing.assert_array_equal(weights["decode_head/conv_seg/bias"], 0)
    assert model_preprocessing(model)["class_names"] is None
    for bad, match in (
        (dict(classes=0), "load_backbone"),
        (dict(classifier_activation="softmax"), "logits"),
        (dict(classes=3, num_classes=5), "disagree"),
    ):
        with pytest.raises(ValueError, match=match):
            keras_swin.load_checkpoint(pth, **bad)


def test_load_backbone_of_a_segmenter(pth, state):
    backbone = load_backbone(pth, out_indices=(1, 2, 3))
    assert isinstance(backbone, keras_swin.SwinBackbone)
    weights = _weights(backbone)
    assert not any("head" in p for p in weights)
    _check_samples(weights, state, skip=("decode_head", "auxiliary_head"))
    assert "norm0/gamma" not in weights  # stage 0 is no output here


@pytest.fixture
def registry(pth, tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    base = pretrained.PRETRAINED[
        "upernet_swin_tiny_patch4_window7_512.ms_ade20k"
    ]
    spec = dataclasses.replace(
        base,
        name="upernet_swin_e8_patch4_window4_512.test",
        url=pth.as_uri(),
        variant="swin_e8",
        window_size=WINDOW,
        classes=CLASSES,
    )
    monkeypatch.setattr(
        pretrained, "PRETRAINED", {**pretrained.PRETRAINED, spec.name: spec}
    )
    family = FAMILIES["swin_upernet"]
    arch = dict(
        embed_dim=8,
        depths=(1, 1, 1, 1),
        num_heads=HEADS,
        channels=CHANNELS,
        pool_scales=(1, 2, 3, 6),
        auxiliary_channels=AUX,
    )
    configs = dict(family.configs, swin_e8=arch)
    monkeypatch.setitem(
        keras_swin.weights.families.FAMILIES,
        "swin_upernet",
        dataclasses.replace(family, configs=configs),
    )
    return spec


def test_release_from_a_file_url_and_the_convert_command(
    registry, state, pth, tmp_path
):
    model = build_pretrained(registry.name)
    assert isinstance(model, UperNet)
    assert weights_source(model) == registry.name
    assert model.name == "upernet_swin_e8_patch4_window4_512"
    assert model.inputs[0].shape[1:] == (None, None, 3)
    _check_samples(_weights(model), state)
    cached = convert_checkpoint(pretrained.cache_path(registry))
    assert (cached.format, cached.family) == (
        "official_swin_upernet",
        "swin_upernet",
    )
    assert cached.config["pool_scales"] == (1, 2, 3, 6)
    # `keras-swin convert` writes the neutral file without a model.
    out = tmp_path / "upernet.safetensors"
    assert main(["convert", str(pth), str(out)]) == 0
    again, original = convert_checkpoint(out), convert_checkpoint(pth)
    assert again.config == original.config
    for path, array in original.weights.weights.items():
        np.testing.assert_array_equal(again.weights.weights[path], array)
    # A release of another architecture is refused before any download.
    with pytest.raises(ValueError, match=r"channels=8.*nothing was down"):
        keras_swin.weights.loading.resolve_weights_argument(
            registry.name,
            keras_swin.weights.families.FAMILIES["swin_upernet"],
            dict(embed_dim=8, depths=(1,) * 4, num_heads=HEADS, channels=16),
            (None, None),
        )


def test_convert_to_weights_file_prints_a_working_rebuild(
    pth, tmp_path, capsys
):
    out = tmp_path / "upernet.weights.h5"
    assert main(["convert", str(pth), str(out)]) == 0
    printed = capsys.readouterr().out
    call = printed.split("Rebuild the architecture with:\n")[1].strip()
    assert call.startswith("keras_swin.SwinUperNet(") and "classes=" in call
    model = eval(call, {"keras_swin": keras_swin})  # the line, as printed
    model.load_weights(out)
    assert model.get_layer("decode_head").num_classes == CLASSES
