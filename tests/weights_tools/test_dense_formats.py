"""Dense Swin backbones: official detection / segmentation checkpoints,
Hugging Face SwinBackbone and UperNet folders, classification -> backbone.

No Keras model is built: the converted arrays are checked against the
weight paths and shapes the brief of issue 16 lists (`expected_shapes`,
written out here from the architecture, not from the converter), against
the source tensors (transposes written out here) and, for the `meta`
block, against `torch.load` of the same file.
"""

from __future__ import annotations

import collections
import json
import pickle

import numpy as np
import pytest
import safetensors.numpy
from helpers import BACKEND, golden

from weights_tools.backbone import NEW_NORM, as_backbone
from weights_tools.common import ConversionError, check_fit
from weights_tools.convert import (
    convert_checkpoint,
    read_source,
    save_checkpoint,
)
from weights_tools.formats import detect_format
from weights_tools.readers import (
    CheckpointError,
    read_checkpoint_extras,
    read_pth,
    read_pth_extras,
)

#: Backend-independent (weights_tools needs no Keras backend): one leg.
pytestmark = pytest.mark.skipif(
    BACKEND != "torch",
    reason="backend-independent; runs in the PyTorch leg",
)

torch = pytest.importorskip("torch")

DET = ("swin_det_official", "det_e24_w7_250x333")
SEG = ("swin_det_official", "seg_e24_w7_out123_128x96")


# ------------------------------------------------------------ references
def expected_shapes(config: dict) -> dict:
    """Every weight path of the dense backbone -> shape (issue 16 brief)."""
    embed, patch = config["embed_dim"], config["patch_size"]
    channels, window = config["input_shape"][2], config["window_size"]
    shapes = {
        "patch_embed/proj/kernel": (patch, patch, channels, embed),
        "patch_embed/proj/bias": (embed,),
    }
    if config["patch_norm"]:
        shapes["patch_embed/norm/gamma"] = (embed,)
        shapes["patch_embed/norm/beta"] = (embed,)
    if config["absolute_position_embedding"]:
        grid = config["pretrain_image_size"] // patch
        shapes["absolute_pos_embed/embedding"] = (1, grid, grid, embed)
    stages = len(config["depths"])
    for i, (depth, heads) in enumerate(
        zip(config["depths"], config["num_heads"], strict=True)
    ):
        width = embed * 2**i
        hidden = int(width * config["mlp_ratio"])
        for j in range(depth):
            block = f"layers_{i}/blocks_{j}/"
            for norm in ("norm1", "norm2"):
                shapes[block + norm + "/gamma"] = (width,)
                shapes[block + norm + "/beta"] = (width,)
            shapes[block + "attn/qkv/kernel"] = (width, 3 * width)
            if config["qkv_bias"]:
                shapes[block + "attn/qkv/bias"] = (3 * width,)
            shapes[block + "attn/proj/kernel"] = (width, width)
            shapes[block + "attn/proj/bias"] = (width,)
            shapes[block + "attn/relative_position_bias_table"] = (
                (2 * window - 1) ** 2,
                heads,
            )
            shapes[block + "mlp/fc1/kernel"] = (width, hidden)
            shapes[block + "mlp/fc1/bias"] = (hidden,)
            shapes[block + "mlp/fc2/kernel"] = (hidden, width)
            shapes[block + "mlp/fc2/bias"] = (width,)
        if i < stages - 1:
            merge = f"layers_{i}_downsample/"
            shapes[merge + "norm/gamma"] = (4 * width,)
            shapes[merge + "norm/beta"] = (4 * width,)
            shapes[merge + "reduction/kernel"] = (4 * width, 2 * width)
    for i in config["out_indices"]:
        shapes[f"norm{i}/gamma"] = (embed * 2**i,)
        shapes[f"norm{i}/beta"] = (embed * 2**i,)
    return shapes


def official_index(window: int) -> np.ndarray:
    """The official relative_position_index of a square window."""
    coords = np.stack(
        np.meshgrid(np.arange(window), np.arange(window), indexing="ij")
    )
    flat = coords.reshape(2, -1)
    relative = (flat[:, :, None] - flat[:, None, :]).transpose(1, 2, 0)
    relative = relative + (window - 1)
    return relative[..., 0] * (2 * window - 1) + relative[..., 1]


def read_keys(path) -> dict:
    """keys.txt: name -> shape."""
    out = {}
    for line in path.read_text().splitlines():
        name, shape, _ = line.split("\t")
        out[name] = tuple(json.loads(shape))
    return out


def sources_used(converted) -> set:
    return {
        part
        for source in converted.sources.values()
        for part in source.split(" + ")
    }


def plain(value):
    """torch.load's values as JSON would store them (tuples -> lists)."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


# ----------------------------------------------- official golden checkpoints
@pytest.mark.parametrize(
    "case, out_indices",
    [(DET, (0, 1, 2, 3)), (SEG, (1, 2, 3))],
    ids=["det", "seg"],
)
def test_golden_checkpoint_converts_strictly(case, out_indices):
    folder = golden(*case)
    stated = json.loads((folder / "config.json").read_text())
    kwargs = stated["constructor_kwargs"]
    checkpoint = convert_checkpoint(folder / "checkpoint.pth")
    assert (checkpoint.format, checkpoint.family) == (
        "official_swin_dense",
        "swin_backbone",
    )
    assert checkpoint.config == dict(
        embed_dim=kwargs["embed_dim"],
        depths=tuple(kwargs["depths"]),
        num_heads=tuple(kwargs["num_heads"]),
        window_size=kwargs["window_size"],
        patch_size=kwargs["patch_size"],
        mlp_ratio=kwargs["mlp_ratio"],
        qkv_bias=kwargs["qkv_bias"],
        patch_norm=kwargs["patch_norm"],
        absolute_position_embedding=kwargs["ape"],
        pretrain_image_size=224,
        layer_norm_epsilon=1e-5,
        out_indices=out_indices,
        window_mode="pad",
        classes=0,
        input_shape=(None, None, kwargs["in_chans"]),
    )
    assert tuple(kwargs["out_indices"]) == out_indices
    converted = checkpoint.weights
    check_fit(converted, expected_shapes(checkpoint.config), "golden")

    keys = read_keys(folder / "keys.txt")
    backbone = {k for k in keys if k.startswith("backbone.")}
    buffers = {k for k in backbone if k.endswith("relative_position_index")}
    assert sources_used(converted) == backbone - buffers
    assert converted.ignored == {
        k: s for k, s in keys.items() if not k.startswith("backbone.")
    }

    tensors = read_pth(folder / "checkpoint.pth")
    qkv = tensors["backbone.layers.1.blocks.1.attn.qkv.weight"]
    np.testing.assert_array_equal(
        converted.weights["layers_1/blocks_1/attn/qkv/kernel"], qkv.T
    )
    proj = tensors["backbone.patch_embed.proj.weight"]  # (O, I, kh, kw)
    np.testing.assert_array_equal(
        converted.weights["patch_embed/proj/kernel"][1, 2, 0, 5],
        proj[5, 0, 1, 2],
    )
    last = out_indices[-1]
    np.testing.assert_array_equal(
        converted.weights[f"norm{last}/gamma"],
        tensors[f"backbone.norm{last}.weight"],
    )


def test_head_tensors_are_listed_in_the_notes():
    det = convert_checkpoint(golden(*DET) / "checkpoint.pth")
    (note,) = det.notes
    assert "6 tensors" in note
    for group in ("neck.* (3:", "rpn_head.* (2:", "roi_head.* (1:"):
        assert group in note
    assert "roi_head.bbox_head.fc_cls.weight" in note
    seg = convert_checkpoint(golden(*SEG) / "checkpoint.pth")
    (note,) = seg.notes
    assert "decode_head.* (4:" in note and "auxiliary_head.* (1:" in note
    assert "and 1 more" in note  # the fourth decode_head key is counted


@pytest.mark.parametrize("case", [DET, SEG], ids=["det", "seg"])
def test_meta_is_read_safely_and_survives_saving(case, tmp_path):
    path = golden(*case) / "checkpoint.pth"
    reference = torch.load(path, weights_only=True)["meta"]
    checkpoint = convert_checkpoint(path)
    meta = checkpoint.training_meta["meta"]
    assert meta == plain(reference)
    assert meta["CLASSES"] == list(reference["CLASSES"])
    assert "SwinTransformer" in meta["config"]
    if case == SEG:
        assert meta["PALETTE"][1] == [180, 120, 120]
    assert list(checkpoint.training_meta) == ["meta"]
    assert read_checkpoint_extras(path) == checkpoint.training_meta

    saved = tmp_path / "dense.safetensors"
    save_checkpoint(checkpoint, saved)
    again = convert_checkpoint(saved)
    assert again.training_meta == checkpoint.training_meta
    assert again.weights.ignored == checkpoint.weights.ignored
    assert again.notes == checkpoint.notes
    assert again.config == checkpoint.config
    assert (again.format, again.family) == (checkpoint.format, "swin_backbone")
    for name, array in checkpoint.weights.weights.items():
        np.testing.assert_array_equal(again.weights.weights[name], array)


def test_detection_tells_dense_from_classification():
    dense = read_pth(golden(*DET) / "checkpoint.pth")
    assert detect_format(dense) == "official_swin_dense"
    # The backbone alone (no prefix), as a backbone's own state_dict().
    alone = {
        k.removeprefix("backbone."): v
        for k, v in dense.items()
        if k.startswith("backbone.")
    }
    assert detect_format(alone) == "official_swin_dense"
    classifier = read_pth(
        golden("swin_official", "tiny_w7_224") / "checkpoint.pth"
    )
    assert detect_format(classifier) == "official_swin"
    with pytest.raises(
        ConversionError, match="not in the official_swin layout"
    ):
        convert_checkpoint(
            golden(*DET) / "checkpoint.pth", format="official_swin"
        )


# --------------------------------------------- synthetic dense checkpoints
def _dense_state(ape: bool = True, window: int = 3) -> collections.OrderedDict:
    """A tiny official dense backbone: e8, depths (1, 1), heads (1, 2),
    patch 2, pretrain 12 (a 6x6 grid), out_indices (0, 1)."""
    gen = torch.Generator().manual_seed(0)

    def rand(*shape):
        return torch.randn(*shape, generator=gen)

    state = collections.OrderedDict()
    state["backbone.patch_embed.proj.weight"] = rand(8, 3, 2, 2)
    state["backbone.patch_embed.proj.bias"] = rand(8)
    state["backbone.patch_embed.norm.weight"] = rand(8)
    state["backbone.patch_embed.norm.bias"] = rand(8)
    if ape:
        state["backbone.absolute_pos_embed"] = rand(1, 8, 6, 6)
    for i, (width, heads) in enumerate([(8, 1), (16, 2)]):
        block = f"backbone.layers.{i}.blocks.0."
        state[block + "norm1.weight"] = rand(width)
        state[block + "norm1.bias"] = rand(width)
        state[block + "attn.relative_position_bias_table"] = rand(
            (2 * window - 1) ** 2, heads
        )
        state[block + "attn.relative_position_index"] = torch.from_numpy(
            official_index(window)
        )
        state[block + "attn.qkv.weight"] = rand(3 * width, width)
        state[block + "attn.qkv.bias"] = rand(3 * width)
        state[block + "attn.proj.weight"] = rand(width, width)
        state[block + "attn.proj.bias"] = rand(width)
        state[block + "norm2.weight"] = rand(width)
        state[block + "norm2.bias"] = rand(width)
        state[block + "mlp.fc1.weight"] = rand(4 * width, width)
        state[block + "mlp.fc1.bias"] = rand(4 * width)
        state[block + "mlp.fc2.weight"] = rand(width, 4 * width)
        state[block + "mlp.fc2.bias"] = rand(width)
        state[f"backbone.norm{i}.weight"] = rand(width)
        state[f"backbone.norm{i}.bias"] = rand(width)
    state["backbone.layers.0.downsample.reduction.weight"] = rand(16, 32)
    state["backbone.layers.0.downsample.norm.weight"] = rand(32)
    state["backbone.layers.0.downsample.norm.bias"] = rand(32)
    state["decode_head.conv_seg.weight"] = rand(5, 16, 1, 1)
    return state


def _save(tmp_path, state, name="dense.pth", **extra):
    path = tmp_path / name
    torch.save(
        {"meta": {"CLASSES": ("a", "b")}, "state_dict": state, **extra}, path
    )
    return path


def test_ape_nchw_becomes_nhwc_at_the_pretraining_grid(tmp_path):
    state = _dense_state()
    optimizer = {
        "state": {0: {"step": 3, "exp_avg": torch.zeros(8, 3, 2, 2)}},
        "param_groups": [{"lr": 0.5, "params": [0]}],
    }
    checkpoint = convert_checkpoint(_save(tmp_path, state, optimizer=optimizer))
    config = checkpoint.config
    assert config["absolute_position_embedding"] is True
    assert config["pretrain_image_size"] == 12  # 6 patches of 2
    assert (config["window_size"], config["patch_size"]) == (3, 2)
    assert config["out_indices"] == (0, 1)
    check_fit(checkpoint.weights, expected_shapes(config), "synthetic")
    embedding = checkpoint.weights.weights["absolute_pos_embed/embedding"]
    ape = state["backbone.absolute_pos_embed"].numpy()  # [1, C, Hp, Wp]
    assert embedding.shape == (1, 6, 6, 8)
    for h, w, c in [(0, 0, 0), (1, 4, 7), (5, 2, 3)]:
        assert embedding[0, h, w, c] == ape[0, c, h, w]
    # The optimizer's tensors are summarised, never read.
    extras = checkpoint.training_meta
    assert extras["optimizer"]["state"]["0"] == {
        "step": 3,
        "exp_avg": "<tensor float32 [8, 3, 2, 2]>",
    }
    assert extras["optimizer"]["param_groups"] == [{"lr": 0.5, "params": [0]}]
    assert extras["meta"] == {"CLASSES": ["a", "b"]}


TABLE_1 = "backbone.layers.1.blocks.0.attn.relative_position_bias_table"
INDEX_0 = "backbone.layers.0.blocks.0.attn.relative_position_index"


def _drop_output_norms(state):
    for key in [k for k in state if ".norm0." in k or ".norm1." in k]:
        del state[key]


BAD = {
    "norm_without_bias": (
        lambda s: s.pop("backbone.norm1.bias"),
        r"norm1\.bias is missing",
    ),
    "no_output_norms": (_drop_output_norms, r"no per-output LayerNorm"),
    "final_norm": (
        lambda s: s.update({"backbone.norm.weight": torch.ones(16)}),
        r"backbone\.norm\.weight \[16\]",
    ),
    "stray_key": (
        lambda s: s.update({"backbone.layers.0.extra.weight": torch.ones(2)}),
        r"backbone\.layers\.0\.extra\.weight \[2\]",
    ),
    "norm_beyond_last_stage": (
        lambda s: s.update(
            {
                "backbone.norm2.weight": torch.ones(32),
                "backbone.norm2.bias": torch.ones(32),
            }
        ),
        r"norm2 names stage 2, but the checkpoint has 2 stages",
    ),
    "ape_tokens": (
        lambda s: s.update(
            {"backbone.absolute_pos_embed": torch.zeros(1, 36, 8)}
        ),
        r"absolute_pos_embed has shape \[1, 36, 8\]",
    ),
    "clamped_table": (
        lambda s: s.update({TABLE_1: torch.zeros(9, 2)}),
        r"stage 1's relative position table has 9 rows \(a 2x2 window\)",
    ),
    "wrong_index": (
        lambda s: s.update({INDEX_0: torch.zeros(9, 9, dtype=torch.int64)}),
        r"relative_position_index \[9, 9\] differs from the official",
    ),
}


@pytest.mark.parametrize("bad", sorted(BAD))
def test_bad_dense_checkpoints_are_refused(tmp_path, bad):
    edit, message = BAD[bad]
    state = _dense_state()
    edit(state)
    with pytest.raises(ConversionError, match=message):
        convert_checkpoint(_save(tmp_path, state))


def test_extras_of_legacy_and_bare_files(tmp_path):
    state = collections.OrderedDict(w=torch.zeros(2, 3))
    legacy = tmp_path / "legacy.pth"
    torch.save(
        {"meta": {"CLASSES": ("x",), "epoch": 3}, "state_dict": state},
        legacy,
        _use_new_zipfile_serialization=False,
    )
    assert read_checkpoint_extras(legacy) == {
        "meta": {"CLASSES": ["x"], "epoch": 3}
    }
    bare = tmp_path / "bare.pth"
    torch.save(state, bare)
    assert read_checkpoint_extras(bare) == {}
    classifier = golden("swin_official", "tiny_w7_224") / "checkpoint.pth"
    assert convert_checkpoint(classifier).training_meta is None


def test_extras_are_bounded(tmp_path):
    path = _save(tmp_path, _dense_state(ape=False))
    with pytest.raises(CheckpointError, match="max_pickle_bytes"):
        read_pth_extras(path, max_pickle_bytes=256)
    # 2**40 paths through 40 shared lists: refused, not walked.
    laughs: list = []
    for _ in range(40):
        laughs = [laughs, laughs]
    state = collections.OrderedDict(w=torch.zeros(2))
    hostile = tmp_path / "laughs.pth"
    torch.save({"state_dict": state, "meta": laughs}, hostile)
    assert len(pickle.dumps(laughs)) < 1000
    with pytest.raises(CheckpointError, match="more than 262144 objects"):
        read_pth_extras(hostile)
    assert read_pth(hostile)["w"].shape == (2,)


# ----------------------------------------------------------- Hugging Face
@pytest.fixture(scope="module")
def transformers():
    return pytest.importorskip("transformers")


def _swin_config(transformers, **kwargs):
    return transformers.SwinConfig(
        embed_dim=8,
        depths=[1, 1, 1],
        num_heads=[1, 2, 2],
        window_size=3,
        image_size=48,
        layer_norm_eps=1e-6,
        **kwargs,
    )


@pytest.fixture(scope="module")
def hf_backbone(transformers, tmp_path_factory):
    torch.manual_seed(0)
    model = transformers.SwinBackbone(
        _swin_config(transformers, out_features=["stage1", "stage3"])
    ).eval()
    folder = tmp_path_factory.mktemp("hf_backbone")
    model.save_pretrained(folder)
    v5 = tmp_path_factory.mktemp("hf_backbone_v5")
    model.save_pretrained(v5, save_original_format=False)
    return model, folder, v5


@pytest.mark.parametrize("scheme", ["legacy", "v5"])
def test_hf_swin_backbone_folder(hf_backbone, scheme):
    model, legacy, v5 = hf_backbone
    folder = legacy if scheme == "legacy" else v5
    checkpoint = convert_checkpoint(folder)
    assert (checkpoint.format, checkpoint.family) == (
        "hf_swin_backbone",
        "swin_backbone",
    )
    config = checkpoint.config
    assert config["out_indices"] == (0, 2)  # HF stage1, stage3
    assert config["layer_norm_epsilon"] == 1e-6
    assert (config["window_size"], config["window_mode"]) == (3, "pad")
    assert config["input_shape"] == (None, None, 3)
    check_fit(checkpoint.weights, expected_shapes(config), "hf")
    state = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    weights = checkpoint.weights.weights
    np.testing.assert_array_equal(
        weights["norm2/gamma"], state["hidden_states_norms.stage3.weight"]
    )
    # transformers 5's in-memory names (q_proj, ...), whatever was saved.
    block = "swin.encoder.layers.1.blocks.0.attention."
    qkv = np.concatenate(
        [state[block + p + ".weight"] for p in ("q_proj", "k_proj", "v_proj")]
    )
    np.testing.assert_array_equal(
        weights["layers_1/blocks_0/attn/qkv/kernel"], qkv.T
    )
    (note,) = checkpoint.notes
    assert "swin.layernorm.weight" in note and "never applies" in note


def test_hf_swin_backbone_out_features_must_match_norms(hf_backbone, tmp_path):
    _, folder, _ = hf_backbone
    for name in ("config.json", "model.safetensors"):
        (tmp_path / name).write_bytes((folder / name).read_bytes())
    config = json.loads((tmp_path / "config.json").read_text())
    config.update(out_features=["stage2", "stage3"], out_indices=[2, 3])
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ConversionError, match=r"names the outputs \[1, 2\]"):
        convert_checkpoint(tmp_path)


def test_hf_classifier_folder_is_not_a_backbone():
    folder = golden("hf", "swin_tiny_e24_w7_224")
    file, tensors, meta = read_source(folder)
    assert detect_format(tensors, file, meta) == "hf_swin"


def test_hf_upernet_folder(transformers, tmp_path):
    torch.manual_seed(0)
    stages = ["stage1", "stage2", "stage3"]
    config = transformers.UperNetConfig(
        backbone_config=_swin_config(transformers, out_features=stages),
        hidden_size=8,
        auxiliary_channels=4,
        num_labels=3,
        pool_scales=[1, 2],
        auxiliary_in_channels=None,
    )
    model = transformers.UperNetForSemanticSegmentation(config).eval()
    model.save_pretrained(tmp_path)
    # Detected, the folder is the whole segmenter (hf_swin_upernet); the
    # backbone format still reads its backbone alone.
    assert convert_checkpoint(tmp_path).format == "hf_swin_upernet"
    checkpoint = convert_checkpoint(tmp_path, format="hf_swin_backbone")
    assert checkpoint.format == "hf_swin_backbone"
    assert checkpoint.config["out_indices"] == (0, 1, 2)
    check_fit(checkpoint.weights, expected_shapes(checkpoint.config), "upernet")
    state = model.state_dict()
    heads = {
        k: tuple(v.shape)
        for k, v in state.items()
        if k.startswith(("decode_head.", "auxiliary_head."))
    }
    ignored = checkpoint.weights.ignored
    assert {k: s for k, s in ignored.items() if "layernorm" not in k} == heads
    notes = " ".join(checkpoint.notes)
    assert "decode_head.*" in notes and "auxiliary_head.*" in notes
    np.testing.assert_array_equal(
        checkpoint.weights.weights["norm1/beta"],
        state["backbone.hidden_states_norms.stage2.bias"].numpy(),
    )


def test_hf_upernet_fixture_key_layout(tmp_path):
    """The 5.24 folder of the golden set: its names and shapes, zeros."""
    case = golden("hf_upernet", "upernet_swin_e24_w7")
    arrays = {}
    for line in (case / "keys.tsv").read_text().splitlines():
        name, shape, dtype = line.split("\t")
        arrays[name] = np.zeros(json.loads(shape), dtype)
    safetensors.numpy.save_file(arrays, tmp_path / "model.safetensors")
    (tmp_path / "config.json").write_bytes((case / "config.json").read_bytes())
    checkpoint = convert_checkpoint(tmp_path, format="hf_swin_backbone")
    assert checkpoint.config["out_indices"] == (0, 1, 2, 3)
    assert checkpoint.config["embed_dim"] == 24
    check_fit(checkpoint.weights, expected_shapes(checkpoint.config), "fixture")
    backbone = {k for k in arrays if k.startswith("backbone.")}
    final = {"backbone.swin.layernorm.weight", "backbone.swin.layernorm.bias"}
    assert sources_used(checkpoint.weights) == backbone - final
    assert set(checkpoint.weights.ignored) == set(arrays) - backbone | final


# ------------------------------------------------ classification -> backbone
def test_classification_checkpoint_as_backbone(tmp_path):
    path = golden("swin_official", "tiny_w7_224") / "checkpoint.pth"
    classifier = convert_checkpoint(path)
    backbone = as_backbone(classifier, out_indices=(1, 2, 3))
    assert classifier.family == "swin"  # unchanged
    assert "head/kernel" in classifier.weights.weights
    assert (backbone.family, backbone.format) == (
        "swin_backbone",
        "official_swin",
    )
    config = backbone.config
    assert config["out_indices"] == (1, 2, 3)
    assert config["pretrain_image_size"] == 224
    assert (config["window_mode"], config["classes"]) == ("pad", 0)
    assert config["input_shape"] == (None, None, 3)
    check_fit(backbone.weights, expected_shapes(config), "as_backbone")
    for i in (1, 2, 3):
        width = 24 * 2**i
        np.testing.assert_array_equal(
            backbone.weights.weights[f"norm{i}/gamma"], np.ones(width)
        )
        np.testing.assert_array_equal(
            backbone.weights.weights[f"norm{i}/beta"], np.zeros(width)
        )
        assert backbone.weights.sources[f"norm{i}/beta"] == NEW_NORM
    dropped, fresh = backbone.notes[-2:]
    for key in ("norm.weight", "norm.bias", "head.weight", "head.bias"):
        assert key in dropped
        assert key in backbone.weights.ignored
    assert "norm1, norm2, norm3" in fresh and "norm0" not in fresh
    assert "init_weights" in fresh

    saved = tmp_path / "backbone.safetensors"
    save_checkpoint(backbone, saved)
    again = convert_checkpoint(saved)
    assert (again.family, again.config) == ("swin_backbone", config)
    assert again.weights.sources["norm3/gamma"] == NEW_NORM


def test_clamped_classification_tables_are_refused():
    # 64 px, window 4: the last stage's 2x2 map clamped its table to 2.
    path = golden("swin_official", "tiny_w4_64") / "checkpoint.pth"
    with pytest.raises(ConversionError, match=r"stage 3's .* \(a 2x2 window\)"):
        as_backbone(path)


def test_dense_checkpoint_to_other_outputs():
    backbone = as_backbone(golden(*DET) / "checkpoint.pth", out_indices=(2, 3))
    assert backbone.config["out_indices"] == (2, 3)
    check_fit(backbone.weights, expected_shapes(backbone.config), "subset")
    assert "backbone.norm0.weight" in backbone.weights.ignored
    assert any("norm1 (backbone.norm1.weight" in n for n in backbone.notes)
    with pytest.raises(ValueError, match="out_indices"):
        as_backbone(golden(*DET) / "checkpoint.pth", out_indices=(4,))
