"""Resolution and window transfer on load, against each library's recipe.

A checkpoint made at 224 px is loaded at 384 px (Swin also with window
12, the papers' fine-tuning setting). The references apply the source
library's own resampling with its own ops (torch `interpolate` for the
official Swin and HF, torch with antialiasing for timm, `scipy.ndimage.
zoom` for the official ViT) and, where a PyTorch model exists, run
Hugging Face `transformers` at 384 px on the result.
"""

import warnings

import numpy as np
import pytest
import scipy.ndimage
import torch
import torch.nn.functional as F
import transformers
from helpers import assert_parity, golden, predict

from keras_swin import checkpoint_notes, load_checkpoint
from keras_swin.imagenet import map_22k_to_1k
from weights_tools.readers import read_checkpoint, read_npz

SIZE = 384


def _images(seed, size=SIZE):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((2, size, size, 3)).astype("float32")


def _torch_logits(model, x):
    with torch.no_grad():
        return model(torch.from_numpy(x.transpose(0, 3, 1, 2).copy())).logits


def _official_table_resize(table, window):
    # microsoft/Swin-Transformer utils.load_pretrained, in torch.
    rows, heads = table.shape
    side, new_side = int(rows**0.5), 2 * window - 1
    grid = torch.from_numpy(table).permute(1, 0).reshape(1, heads, side, side)
    resized = F.interpolate(grid, size=(new_side, new_side), mode="bicubic")
    return resized.reshape(heads, new_side**2).permute(1, 0).contiguous()


def _hf_from(tensors, config, folder, model_class):
    """An HF model read by `from_pretrained` (legacy names accepted)."""
    from safetensors.numpy import save_file

    folder.mkdir()
    config.save_pretrained(folder)
    save_file(
        {k: np.ascontiguousarray(v) for k, v in tensors.items()},
        folder / "model.safetensors",
    )
    model, info = model_class.from_pretrained(folder, output_loading_info=True)
    assert not any(info.values()), info  # every key used, none missing
    return model.eval()


def test_hf_swin_224_to_384_window_12(tmp_path):
    folder = golden("hf", "swin_tiny_e24_w7_224")
    tensors = read_checkpoint(folder / "model.safetensors")
    for key in [
        k for k in tensors if k.endswith("relative_position_bias_table")
    ]:
        tensors[key] = _official_table_resize(tensors[key], 12).numpy()
    config = transformers.SwinConfig.from_pretrained(folder)
    config.image_size, config.window_size = SIZE, 12
    reference = _hf_from(
        tensors,
        config,
        tmp_path / "ref",
        transformers.SwinForImageClassification,
    )
    x = _images(11)
    model = load_checkpoint(folder, input_shape=(SIZE, SIZE, 3), window_size=12)
    assert any("(bicubic)" in note for note in checkpoint_notes(model))
    assert_parity(predict(model, x), _torch_logits(reference, x).numpy())


def test_hf_vit_224_to_384_like_interpolate_pos_encoding():
    folder = golden("hf", "vit_tiny_h64_224")
    reference = transformers.ViTForImageClassification.from_pretrained(folder)
    x = _images(12)
    with torch.no_grad():
        expected = reference.eval()(
            torch.from_numpy(x.transpose(0, 3, 1, 2).copy()),
            interpolate_pos_encoding=True,
        ).logits.numpy()
    model = load_checkpoint(folder, input_shape=(SIZE, SIZE, 3))
    assert_parity(predict(model, x), expected)


def _timm_vit_to_hf(tensors):
    """timm ViT state dict -> HF ViTForImageClassification (legacy names)."""
    out = {
        "vit.embeddings.cls_token": tensors["cls_token"],
        "vit.embeddings.position_embeddings": tensors["pos_embed"],
        "vit.layernorm.weight": tensors["norm.weight"],
        "vit.layernorm.bias": tensors["norm.bias"],
        "classifier.weight": tensors["head.weight"],
        "classifier.bias": tensors["head.bias"],
    }
    for part in ("weight", "bias"):
        out[f"vit.embeddings.patch_embeddings.projection.{part}"] = tensors[
            f"patch_embed.proj.{part}"
        ]
    layers = {int(k.split(".")[1]) for k in tensors if k.startswith("blocks.")}
    names = {
        "norm1": "layernorm_before",
        "norm2": "layernorm_after",
        "attn.proj": "attention.output.dense",
        "mlp.fc1": "intermediate.dense",
        "mlp.fc2": "output.dense",
    }
    for i in layers:
        src, dst = f"blocks.{i}.", f"vit.encoder.layer.{i}."
        for part in ("weight", "bias"):
            for old, new in names.items():
                out[f"{dst}{new}.{part}"] = tensors[f"{src}{old}.{part}"]
            q, k, v = np.split(tensors[f"{src}attn.qkv.{part}"], 3, axis=0)
            for name, array in zip(
                ("query", "key", "value"), (q, k, v), strict=True
            ):
                out[f"{dst}attention.attention.{name}.{part}"] = array
    return out


def test_timm_vit_224_to_384_bicubic_antialias(tmp_path):
    folder = golden("timm", "vit_tiny_e64_d2_224")
    tensors = read_checkpoint(folder / "model.safetensors")
    # timm's checkpoint_filter_fn: resample_abs_pos_embed, bicubic with
    # antialiasing, the class-token row kept.
    pos = torch.from_numpy(tensors["pos_embed"])
    grid = pos[:, 1:].reshape(1, 14, 14, -1).permute(0, 3, 1, 2)
    grid = F.interpolate(
        grid, size=(24, 24), mode="bicubic", antialias=True, align_corners=False
    )
    tensors["pos_embed"] = torch.cat(
        [pos[:, :1], grid.permute(0, 2, 3, 1).reshape(1, 576, -1)], 1
    ).numpy()
    config = transformers.ViTConfig(
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=256,
        image_size=SIZE,
        patch_size=16,
        layer_norm_eps=1e-6,
        num_labels=10,
    )
    reference = _hf_from(
        _timm_vit_to_hf(tensors),
        config,
        tmp_path / "ref",
        transformers.ViTForImageClassification,
    )
    x = _images(13)
    model = load_checkpoint(folder, input_shape=(SIZE, SIZE, 3))
    assert any("bicubic_antialias" in n for n in checkpoint_notes(model))
    assert_parity(predict(model, x), _torch_logits(reference, x).numpy())


def test_official_vit_224_to_384_scipy_zoom():
    path = golden("vit_official", "tiny_token_224", "checkpoint.npz")
    stored = read_npz(path)["Transformer/posembed_input/pos_embedding"]
    # vit_jax checkpoint.load_pretrained: class row apart, grid zoomed
    # with order=1 (corner-aligned bilinear).
    grid = stored[0, 1:].reshape(14, 14, -1)
    zoomed = scipy.ndimage.zoom(grid, (24 / 14, 24 / 14, 1), order=1)
    expected = np.concatenate([stored[0, :1], zoomed.reshape(576, -1)])[None]
    model = load_checkpoint(path, input_shape=(SIZE, SIZE, 3))
    loaded = model.get_layer("pos_embed").embedding.numpy()
    assert_parity(loaded, expected, tol=1e-6)
    assert predict(model, _images(14, SIZE)).shape == (2, 10)


def test_official_swin_window_change_uses_official_bicubic():
    path = golden("swin_official", "tiny_w7_224", "checkpoint.pth")
    tensors = read_checkpoint(path)
    key = "layers.0.blocks.1.attn.relative_position_bias_table"
    model = load_checkpoint(path, input_shape=(SIZE, SIZE, 3), window_size=12)
    table = model.get_layer("layers_0").weights  # stage 0 variables
    loaded = next(
        v
        for v in table
        if v.path == "layers_0/blocks_1/attn/relative_position_bias_table"
    )
    expected = _official_table_resize(tensors[key], 12).numpy()
    assert_parity(np.asarray(loaded.numpy()), expected, tol=1e-6)


def test_timm_swin_window_change_uses_timm_resize():
    folder = golden("timm", "swin_tiny_e24_w7_224")
    model = load_checkpoint(folder, input_shape=(SIZE, SIZE, 3), window_size=12)
    notes = [n for n in checkpoint_notes(model) if "relative_position" in n]
    assert len(notes) == 8 and all(n.endswith("(timm)") for n in notes)


def _official_swin_22k(tmp_path):
    tensors = read_checkpoint(
        golden("swin_official", "tiny_w7_224", "checkpoint.pth")
    )
    rng = np.random.default_rng(15)
    width = tensors["head.weight"].shape[1]
    tensors["head.weight"] = rng.standard_normal((21841, width), "float32")
    tensors["head.bias"] = rng.standard_normal(21841, "float32")
    path = tmp_path / "swin_22k.pth"
    state = {k: torch.from_numpy(v) for k, v in tensors.items()}
    torch.save({"model": state}, path)
    return path, tensors


def test_official_swin_22k_head_maps_to_1k(tmp_path):
    path, tensors = _official_swin_22k(tmp_path)
    full = load_checkpoint(path)
    assert full.get_layer("head").units == 21841
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # mapped, not dropped
        mapped = load_checkpoint(path, classes=1000)
    rows = map_22k_to_1k()
    kernel = mapped.get_layer("head").kernel.numpy()
    np.testing.assert_array_equal(kernel, tensors["head.weight"][rows].T)
    x = _images(16, 224)
    assert_parity(predict(mapped, x), predict(full, x)[:, rows])
    assert any("map22kto1k" in n for n in checkpoint_notes(mapped))


def test_other_class_count_gets_a_zero_head_with_a_warning():
    path = golden("swin_official", "tiny_w7_224", "checkpoint.pth")
    with pytest.warns(UserWarning, match="head.weight"):
        model = load_checkpoint(path, classes=5)
    assert not np.any(model.get_layer("head").kernel.numpy())


def test_vit_pre_logits_dropped_like_official_fine_tuning():
    path = golden("vit_official", "tiny_repr_32", "checkpoint.npz")
    model = load_checkpoint(path, representation_size=None)
    names = {layer.name for layer in model.layers}
    assert "pre_logits" not in names
    assert any("representation layer" in n for n in checkpoint_notes(model))
