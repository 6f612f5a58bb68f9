"""Swin + UperNet checkpoints: Hugging Face folders and official mmseg `.pth`.

No Keras model is built. The Hugging Face golden folder's tensors are
renamed here, independently of the converters, to the official
mmsegmentation names (the official dense backbone, `bn`, `conv_seg`)
and written as a `.pth` the way mmseg saves it; both files must convert
to the same Keras weights, bit for bit. Every expected weight path and
shape below is written out from the architecture (the model contract of
issue 17), not read from the converters.

Backend-independent: runs in the PyTorch leg only (torch writes the
`.pth` files).
"""

from __future__ import annotations

import collections
import json
import re

import keras
import numpy as np
import pytest
import safetensors.numpy
from helpers import golden

from weights_tools import hf_upernet, mmseg_upernet
from weights_tools.backbone import as_backbone
from weights_tools.common import ConversionError, check_fit
from weights_tools.convert import convert_checkpoint, read_source
from weights_tools.formats import detect_format
from weights_tools.readers import read_safetensors

pytestmark = pytest.mark.skipif(
    keras.backend.backend() != "torch",
    reason="backend-independent; runs in the PyTorch leg",
)
torch = pytest.importorskip("torch")

CASE = ("hf_upernet", "upernet_swin_e24_w7")
WIDTHS = (24, 48, 96, 192)
CHANNELS, AUX, CLASSES, WINDOW = 32, 16, 5, 7
#: A config text as mmseg keeps it in meta['config'] (abridged).
CONFIG_TEXT = (
    "model = dict(type='EncoderDecoder', backbone=dict(type="
    "'SwinTransformer', embed_dim=24), decode_head=dict(type='UPerHead', "
    "in_channels=[24, 48, 96, 192], in_index=[0, 1, 2, 3], "
    "pool_scales=(1, 2, 3, 6), channels=32, num_classes=5), "
    "auxiliary_head=dict(type='FCNHead', in_channels=96, in_index=2, "
    "channels=16, num_convs=1, concat_input=False, num_classes=5))"
)


# ------------------------------------------------------------ references
def official_index(window: int) -> np.ndarray:
    """The official relative_position_index of a square window."""
    coords = np.stack(
        np.meshgrid(np.arange(window), np.arange(window), indexing="ij")
    ).reshape(2, -1)
    relative = (coords[:, :, None] - coords[:, None, :]).transpose(1, 2, 0)
    relative = relative + (window - 1)
    return relative[..., 0] * (2 * window - 1) + relative[..., 1]


_BLOCK_PARTS = {
    "layernorm_before": "norm1",
    "layernorm_after": "norm2",
    "attention.self.relative_position_bias_table": (
        "attn.relative_position_bias_table"
    ),
    "attention.output.dense": "attn.proj",
    "intermediate.dense": "mlp.fc1",
    "output.dense": "mlp.fc2",
}


def to_official(hf: dict) -> collections.OrderedDict:
    """HF UperNet tensors -> the official mmseg state dict (written out).

    The backbone as Swin-Transformer-Semantic-Segmentation names it (q,
    k, v fused into qkv, the int64 relative_position_index buffers, no
    final norm), the heads with mmcv's `bn` and `conv_seg`.
    """
    state = collections.OrderedDict()
    blocks = set()
    for key, array in hf.items():
        name = None
        if key == "backbone.swin.layernorm.weight" or (
            key == "backbone.swin.layernorm.bias"
        ):
            continue  # SwinBackbone's unused final norm: not official
        if key.startswith("backbone.embeddings.patch_embeddings.projection."):
            name = key.replace(
                "embeddings.patch_embeddings.projection", "patch_embed.proj"
            )
        elif key.startswith("backbone.embeddings.norm."):
            name = key.replace("embeddings.norm", "patch_embed.norm")
        elif match := re.fullmatch(
            r"backbone\.hidden_states_norms\.stage(\d)\.(\w+)", key
        ):
            name = f"backbone.norm{int(match[1]) - 1}.{match[2]}"
        elif match := re.fullmatch(
            r"backbone\.encoder\.layers\.(\d)\.downsample\.(.+)", key
        ):
            name = f"backbone.layers.{match[1]}.downsample.{match[2]}"
        elif match := re.fullmatch(
            r"backbone\.encoder\.layers\.(\d)\.blocks\.(\d)\.(.+)\.(\w+)", key
        ):
            block = f"backbone.layers.{match[1]}.blocks.{match[2]}."
            part, leaf = match[3], match[4]
            if part in ("attention.self.query", "attention.self.key"):
                continue
            if part == "attention.self.value":
                blocks.add(block)
                source = key.rsplit(".", 2)[0] + "."
                state[block + f"attn.qkv.{leaf}"] = np.concatenate(
                    [hf[source + p + "." + leaf] for p in ("query", "key")]
                    + [array]
                )
                continue
            if part == "attention.self" and leaf == (
                "relative_position_bias_table"
            ):
                name = block + "attn.relative_position_bias_table"
            else:
                name = block + _BLOCK_PARTS[part] + "." + leaf
        elif key.startswith(("decode_head.", "auxiliary_head.")):
            name = key.replace(".batch_norm.", ".bn.")
            name = name.replace("head.classifier.", "head.conv_seg.")
        assert name is not None, key
        state[name] = array
    for block in sorted(blocks):
        state[block + "attn.relative_position_index"] = official_index(WINDOW)
    return state


def expected_head_shapes(pools: int, aux: bool = True) -> dict:
    """The heads' Keras weight paths and shapes (issue 17 contract)."""
    shapes = {}

    def module(path, kernel):
        shapes[path + "/conv/kernel"] = kernel
        for leaf in ("gamma", "beta", "moving_mean", "moving_variance"):
            shapes[f"{path}/bn/{leaf}"] = (kernel[-1],)

    for k in range(pools):
        module(f"decode_head/psp_modules_{k}", (1, 1, WIDTHS[3], CHANNELS))
    module(
        "decode_head/bottleneck", (3, 3, WIDTHS[3] + pools * CHANNELS, CHANNELS)
    )
    for i in range(3):
        module(f"decode_head/lateral_convs_{i}", (1, 1, WIDTHS[i], CHANNELS))
        module(f"decode_head/fpn_convs_{i}", (3, 3, CHANNELS, CHANNELS))
    module("decode_head/fpn_bottleneck", (3, 3, 4 * CHANNELS, CHANNELS))
    shapes["decode_head/conv_seg/kernel"] = (1, 1, CHANNELS, CLASSES)
    shapes["decode_head/conv_seg/bias"] = (CLASSES,)
    if aux:
        module("auxiliary_head/convs_0", (3, 3, WIDTHS[2], AUX))
        shapes["auxiliary_head/conv_seg/kernel"] = (1, 1, AUX, CLASSES)
        shapes["auxiliary_head/conv_seg/bias"] = (CLASSES,)
    return shapes


# -------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def hf_tensors():
    return read_safetensors(golden(*CASE) / "model.safetensors")


@pytest.fixture(scope="module")
def hf_meta():
    return json.loads((golden(*CASE) / "config.json").read_text())


def _save_pth(path, state, config_text=CONFIG_TEXT, **extra):
    meta = {
        "mmseg_version": "0.11.0",
        "CLASSES": tuple(f"class{i}" for i in range(CLASSES)),
        "PALETTE": [[i, i, i] for i in range(CLASSES)],
        "iter": 160000,
    }
    if config_text is not None:
        meta["config"] = config_text
    state = collections.OrderedDict(
        (k, torch.from_numpy(np.ascontiguousarray(v))) for k, v in state.items()
    )
    torch.save({"meta": meta, "state_dict": state, **extra}, path)
    return path


@pytest.fixture(scope="module")
def official_pth(hf_tensors, tmp_path_factory):
    folder = tmp_path_factory.mktemp("official_upernet")
    optimizer = {"state": {}, "param_groups": [{"lr": 6e-5, "params": []}]}
    return _save_pth(
        folder / "upernet.pth", to_official(hf_tensors), optimizer=optimizer
    )


def _folder(tmp_path, tensors, meta):
    safetensors.numpy.save_file(
        {k: np.ascontiguousarray(v) for k, v in tensors.items()},
        tmp_path / "model.safetensors",
    )
    (tmp_path / "config.json").write_text(json.dumps(meta))
    return tmp_path


# ---------------------------------------------------------------- tests
def test_both_namings_give_bit_identical_weights(official_pth):
    hf = convert_checkpoint(golden(*CASE))
    official = convert_checkpoint(official_pth)
    assert (hf.format, hf.family) == ("hf_swin_upernet", "swin_upernet")
    assert (official.format, official.family) == (
        "official_swin_upernet",
        "swin_upernet",
    )
    assert hf.config == official.config
    a, b = hf.weights.weights, official.weights.weights
    assert sorted(a) == sorted(b)
    for path in a:
        assert a[path].dtype == b[path].dtype == np.float32, path
        assert a[path].shape == b[path].shape, path
        assert np.array_equal(a[path], b[path]), path
    # 4 stages' blocks, norms, patch embed + the heads.
    assert len(a) == 194
    assert official.training_meta["meta"]["CLASSES"][0] == "class0"
    assert "optimizer" in official.training_meta


def test_config_and_layout_written_out():
    checkpoint = convert_checkpoint(golden(*CASE))
    assert checkpoint.config == dict(
        embed_dim=24,
        depths=(2, 2, 2, 2),
        num_heads=(1, 2, 3, 6),
        patch_size=4,
        mlp_ratio=4.0,
        qkv_bias=True,
        patch_norm=True,
        absolute_position_embedding=False,
        layer_norm_epsilon=1e-5,
        window_size=WINDOW,
        pretrain_image_size=224,
        out_indices=(0, 1, 2, 3),
        window_mode="pad",
        classes=CLASSES,
        input_shape=(None, None, 3),
        channels=CHANNELS,
        pool_scales=(1, 2, 3, 6),
        auxiliary_channels=AUX,
        auxiliary_num_convs=1,
        auxiliary_concat_input=False,
        auxiliary_in_index=2,
    )
    converted = checkpoint.weights
    heads = {
        p: s
        for p, s in expected_head_shapes(4).items()
        if p.startswith(("decode_head/", "auxiliary_head/"))
    }
    got = {
        p: a.shape
        for p, a in converted.weights.items()
        if p.startswith(("decode_head/", "auxiliary_head/"))
    }
    assert got == heads
    # The sources name the file's keys; OIHW -> HWIO, BN names.
    tensors = read_safetensors(golden(*CASE) / "model.safetensors")
    source = "decode_head.lateral_convs.1.conv.weight"
    assert converted.sources["decode_head/lateral_convs_1/conv/kernel"] == (
        source
    )
    kernel = converted.weights["decode_head/lateral_convs_1/conv/kernel"]
    assert kernel[0, 0, 7, 3] == tensors[source][3, 7, 0, 0]
    fpn = converted.weights["decode_head/fpn_convs_2/conv/kernel"]
    assert (
        fpn[2, 0, 5, 9]
        == (tensors["decode_head.fpn_convs.2.conv.weight"][9, 5, 2, 0])
    )
    np.testing.assert_array_equal(
        converted.weights["auxiliary_head/convs_0/bn/moving_variance"],
        tensors["auxiliary_head.convs.0.batch_norm.running_var"],
    )
    np.testing.assert_array_equal(
        converted.weights["decode_head/psp_modules_3/bn/moving_mean"],
        tensors["decode_head.psp_modules.3.1.batch_norm.running_mean"],
    )
    # Everything in the file is used, or named as left out.
    counters = {k for k in tensors if k.endswith("num_batches_tracked")}
    final = {"backbone.swin.layernorm.weight", "backbone.swin.layernorm.bias"}
    assert set(converted.ignored) == counters | final
    used = {part for s in converted.sources.values() for part in s.split(" + ")}
    assert used | counters | final == set(tensors)
    notes = " ".join(checkpoint.notes)
    assert "num_batches_tracked" in notes and "never applies" in notes


def test_detection_picks_the_segmenter_formats(official_pth, hf_tensors):
    file, tensors, meta = read_source(golden(*CASE))
    assert detect_format(tensors, file, meta) == "hf_swin_upernet"
    # A weights file alone (a registered release's pytorch_model.bin).
    assert detect_format(tensors) == "hf_swin_upernet"
    file, tensors, meta = read_source(official_pth)
    assert detect_format(tensors, file, meta) == "official_swin_upernet"
    # A dense checkpoint with other (partial) heads stays a backbone.
    seg = golden("swin_det_official", "seg_e24_w7_out123_128x96")
    file, tensors, meta = read_source(seg / "checkpoint.pth")
    assert detect_format(tensors, file, meta) == "official_swin_dense"
    # The backbone formats still read a segmenter as its backbone.
    for path, format in (
        (golden(*CASE), "hf_swin_backbone"),
        (official_pth, "official_swin_dense"),
    ):
        backbone = convert_checkpoint(path, format=format)
        assert backbone.family == "swin_backbone"
        assert "decode_head.conv_seg.weight" in backbone.weights.ignored or (
            "decode_head.classifier.weight" in backbone.weights.ignored
        )


def test_segmenter_as_backbone(official_pth):
    backbone = as_backbone(official_pth, out_indices=(1, 2, 3))
    assert backbone.family == "swin_backbone"
    assert backbone.config["out_indices"] == (1, 2, 3)
    assert "channels" not in backbone.config
    assert not any(
        p.startswith(("decode_head/", "auxiliary_head/"))
        for p in backbone.weights.weights
    )
    assert "decode_head.fpn_bottleneck.conv.weight" in backbone.weights.ignored
    assert any("decode_head and auxiliary_head" in n for n in backbone.notes)


def _drop(key):
    return lambda state: state.pop(key)


def _add(key, shape):
    return lambda state: state.update({key: np.zeros(shape, "float32")})


STRICT = {
    "missing_bn": (
        _drop("decode_head.lateral_convs.1.bn.running_var"),
        r"missing:\n  decode_head\.lateral_convs\.1\.bn\.running_var \[32\]",
    ),
    "missing_module": (
        lambda s: [
            s.pop(k) for k in list(s) if k.startswith("decode_head.fpn_convs.2")
        ],
        r"decode_head\.fpn_convs\.2\.conv\.weight \[32, 32, 3, 3\]",
    ),
    "extra_bias": (
        _add("decode_head.fpn_convs.0.conv.bias", (32,)),
        r"not part of this UperNet:\n  decode_head\.fpn_convs\.0\.conv\.bias",
    ),
    "extra_module": (
        _add("auxiliary_head.convs.1.conv.weight", (16, 16, 3, 3)),
        r"auxiliary_head\.convs\.1\.bn\.weight \[16\]",  # its bn is missing
    ),
    "extra_prefix": (
        _add("neck.conv.weight", (4, 4)),
        r"also has neck\.conv\.weight \[4, 4\]",
    ),
    "wrong_shape": (
        _add("auxiliary_head.conv_seg.weight", (5, 17, 1, 1)),
        r"auxiliary_head\.conv_seg\.weight \[5, 17, 1, 1\], expected "
        r"\[5, 16, 1, 1\]",
    ),
    "wrong_lateral": (
        _add("decode_head.lateral_convs.0.conv.weight", (32, 48, 1, 1)),
        r"decode_head\.lateral_convs\.0\.conv\.weight \[32, 48, 1, 1\], "
        r"expected \[32, 24, 1, 1\]",
    ),
    "aux_classes": (
        _add("auxiliary_head.conv_seg.bias", (6,)),
        r"auxiliary_head\.conv_seg\.bias \[6\], expected \[5\]",
    ),
    "backbone": (
        _drop("backbone.norm2.bias"),
        r"norm2\.bias is missing",
    ),
}


@pytest.mark.parametrize("case", sorted(STRICT))
def test_official_conversion_is_strict(hf_tensors, tmp_path, case):
    edit, message = STRICT[case]
    state = to_official(hf_tensors)
    edit(state)
    path = _save_pth(tmp_path / "bad.pth", state)
    with pytest.raises(ConversionError, match=message):
        convert_checkpoint(path)


HF_STRICT = {
    "missing": (
        _drop("decode_head.psp_modules.2.1.batch_norm.weight"),
        r"missing:\n  decode_head\.psp_modules\.2\.1\.batch_norm\.weight",
    ),
    "extra": (
        _add("auxiliary_head.conv_cat.conv.bias", (16,)),
        r"auxiliary_head\.conv_cat\.conv\.bias \[16\]",
    ),
    "wrong_shape": (
        _add("decode_head.fpn_bottleneck.conv.weight", (32, 96, 3, 3)),
        r"decode_head\.fpn_bottleneck\.conv\.weight \[32, 96, 3, 3\], "
        r"expected \[32, 128, 3, 3\]",
    ),
}


@pytest.mark.parametrize("case", sorted(HF_STRICT))
def test_hf_conversion_is_strict_and_names_hf_keys(
    hf_tensors, hf_meta, tmp_path, case
):
    edit, message = HF_STRICT[case]
    tensors = dict(hf_tensors)
    edit(tensors)
    with pytest.raises(ConversionError, match=message):
        convert_checkpoint(_folder(tmp_path, tensors, hf_meta))


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("hidden_size", 64, r"hidden_size=64, but decode_head\.classifier"),
        ("auxiliary_channels", 8, r"auxiliary_channels=8"),
        ("use_auxiliary_head", False, r"use_auxiliary_head=False"),
        ("pool_scales", [1, 2, 3], r"names 3 scales, but .* 4 pyramid"),
        ("id2label", {"0": "a"}, r"id2label names 1 classes"),
    ],
)
def test_hf_config_must_agree_with_the_tensors(hf_meta, key, value, message):
    meta = dict(hf_meta, **{key: value})
    with pytest.raises(ConversionError, match=message):
        hf_upernet.infer_config(
            read_safetensors(golden(*CASE) / "model.safetensors"), meta
        )


def test_pool_scales_come_from_the_file_or_the_default(hf_tensors, tmp_path):
    state = to_official(hf_tensors)
    # Stated in meta['config']: no note.
    stated = convert_checkpoint(_save_pth(tmp_path / "a.pth", state))
    assert stated.config["pool_scales"] == (1, 2, 3, 6)
    assert not any("pool scales" in n for n in stated.notes)
    # Not stated: UPerHead's default, said in a note.
    silent = convert_checkpoint(
        _save_pth(tmp_path / "b.pth", state, config_text=None)
    )
    assert silent.config["pool_scales"] == (1, 2, 3, 6)
    assert any("(1, 2, 3, 6)" in n for n in silent.notes)
    # Three modules: the text must say which, or the caller.
    for k in [k for k in state if k.startswith("decode_head.psp_modules.3")]:
        del state[k]
    bottleneck = "decode_head.bottleneck.conv.weight"
    state[bottleneck] = state[bottleneck][:, : 192 + 3 * 32]
    three = CONFIG_TEXT.replace("(1, 2, 3, 6)", "(1, 2, 4)")
    checkpoint = convert_checkpoint(
        _save_pth(tmp_path / "c.pth", state, config_text=three)
    )
    assert checkpoint.config["pool_scales"] == (1, 2, 4)
    bare = _save_pth(tmp_path / "d.pth", state, config_text=None)
    with pytest.raises(ConversionError, match=r"pass pool_scales=\(\.\.\.\)"):
        convert_checkpoint(bare)
    assert convert_checkpoint(bare, pool_scales=(2, 3, 4)).config[
        "pool_scales"
    ] == (2, 3, 4)
    with pytest.raises(ConversionError, match="names 4 scales"):
        convert_checkpoint(
            _save_pth(tmp_path / "e.pth", state, config_text=CONFIG_TEXT)
        )


def test_without_auxiliary_head(hf_tensors, hf_meta, tmp_path):
    tensors = {
        k: v for k, v in hf_tensors.items() if not k.startswith("auxiliary")
    }
    meta = dict(hf_meta, use_auxiliary_head=False)
    checkpoint = convert_checkpoint(_folder(tmp_path, tensors, meta))
    assert checkpoint.config["auxiliary_channels"] is None
    assert "auxiliary_num_convs" not in checkpoint.config
    check_fit(
        checkpoint.weights,
        {
            **{
                p: a.shape
                for p, a in checkpoint.weights.weights.items()
                if not p.startswith(("decode_head/", "auxiliary_head/"))
            },
            **expected_head_shapes(4, aux=False),
        },
        "no auxiliary head",
    )


def test_head_layout_reads_concat_input_and_more_convs():
    """An auxiliary head with two convs and conv_cat (mmseg FCNHead)."""
    rng = np.random.default_rng(0)
    heads = {}

    def module(name, out, inputs, k):
        heads[f"{name}.conv.weight"] = rng.normal(size=(out, inputs, k, k))
        for leaf in ("weight", "bias", "running_mean", "running_var"):
            heads[f"{name}.bn.{leaf}"] = rng.normal(size=(out,))

    module("decode_head.psp_modules.0.1", 8, 32, 1)
    module("decode_head.bottleneck", 8, 40, 3)
    module("decode_head.lateral_convs.0", 8, 16, 1)
    module("decode_head.fpn_convs.0", 8, 8, 3)
    module("decode_head.fpn_bottleneck", 8, 16, 3)
    module("auxiliary_head.convs.0", 4, 16, 3)
    module("auxiliary_head.convs.1", 4, 4, 3)
    module("auxiliary_head.conv_cat", 4, 20, 3)
    for head, width in (("decode_head", 8), ("auxiliary_head", 4)):
        heads[f"{head}.conv_seg.weight"] = rng.normal(size=(3, width, 1, 1))
        heads[f"{head}.conv_seg.bias"] = rng.normal(size=(3,))
    layout = mmseg_upernet.head_layout(heads, (16, 32))
    assert layout == dict(
        classes=3,
        channels=8,
        pool_scale_count=1,
        auxiliary_channels=4,
        auxiliary_num_convs=2,
        auxiliary_concat_input=True,
        auxiliary_in_index=0,
    )
    converted = mmseg_upernet.convert_heads(heads)
    cat = converted.weights["auxiliary_head/conv_cat/conv/kernel"]
    assert cat.shape == (3, 3, 20, 4)
    assert (
        cat[1, 2, 17, 3]
        == heads["auxiliary_head.conv_cat.conv.weight"][3, 17, 1, 2]
    )


def test_weights_file_without_config(tmp_path):
    """A release's weights file alone: the tensors say all but the pool
    scales, which take UPerHead's default with a note."""
    alone = tmp_path / "upernet.safetensors"
    alone.write_bytes((golden(*CASE) / "model.safetensors").read_bytes())
    checkpoint = convert_checkpoint(alone)
    assert checkpoint.format == "hf_swin_upernet" and checkpoint.meta is None
    assert checkpoint.config == convert_checkpoint(golden(*CASE)).config
    assert any("No config.json states" in n for n in checkpoint.notes)
