"""Any input size: parity with a live Hugging Face `transformers` Swin.

Hugging Face pads inputs and feature maps (bottom/right zeros) before the
cyclic shift, like the official detection code; these sizes exercise
every padding path. The reference model is rebuilt for every size:
transformers' Swin keeps window/shift state between calls (see the golden
hf/FORMAT.md, section 5).
"""

import numpy as np
import pytest
import torch
import transformers
from helpers import assert_parity, predict

from weights_tools.convert import load_checkpoint

CONFIG = dict(
    embed_dim=24,
    depths=[2, 2, 2, 2],
    num_heads=[1, 2, 3, 6],
    window_size=7,
    image_size=224,
    num_labels=10,
)


def _hf_model(state=None):
    model = transformers.SwinForImageClassification(
        transformers.SwinConfig(**CONFIG)
    )
    if state is None:
        # Non-trivial weights (the library init zeroes biases and sets
        # LayerNorm to identity, which would hide mapping errors).
        generator = torch.Generator().manual_seed(3001)
        with torch.no_grad():
            for name, param in model.named_parameters():
                z = torch.randn(param.shape, generator=generator)
                if "relative_position_bias_table" in name:
                    param.copy_(z)
                elif "norm" in name and name.endswith("weight"):
                    param.copy_(1 + 0.2 * z)
                elif name.endswith("bias"):
                    param.copy_(0.1 * z)
                else:
                    param.copy_(z / np.sqrt(np.prod(param.shape[1:])))
    else:
        model.load_state_dict(state)
    return model.eval()


def _official_names(state):
    """Hugging Face Swin state dict -> official Microsoft key names."""
    renames = [
        ("swin.embeddings.patch_embeddings.projection", "patch_embed.proj"),
        ("swin.embeddings.norm", "patch_embed.norm"),
        ("swin.encoder.layers", "layers"),
        ("layernorm_before", "norm1"),
        ("layernorm_after", "norm2"),
        (
            "attention.relative_position_bias.relative_position_bias_table",
            "attn.relative_position_bias_table",
        ),
        ("attention.o_proj", "attn.proj"),
        ("mlp.fc1", "mlp.fc1"),
        ("mlp.fc2", "mlp.fc2"),
        ("swin.layernorm", "norm"),
        ("classifier", "head"),
    ]
    out = {}
    for key, value in state.items():
        if key.endswith("relative_position_index"):
            continue
        for old, new in renames:
            key = key.replace(old, new)
        out[key] = value.detach().numpy()
    for key in [k for k in out if ".attention.q_proj." in k]:
        stem, part = key.split(".attention.q_proj.")
        parts = [out.pop(f"{stem}.attention.{p}_proj.{part}") for p in "qkv"]
        out[f"{stem}.attn.qkv.{part}"] = np.concatenate(parts, 0)
    return out


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    reference = _hf_model()
    state = reference.state_dict()
    path = tmp_path_factory.mktemp("hf") / "swin_official_names.npz"
    np.savez(path, **_official_names(state))
    return state, load_checkpoint(path, input_shape=(None, None, 3))


@pytest.mark.parametrize(
    "size", [(224, 224), (250, 250), (200, 230), (226, 250)]
)
def test_any_size_matches_transformers(converted, size):
    state, model = converted
    rng = np.random.default_rng(4101)
    x = rng.standard_normal((2,) + size + (3,)).astype("float32")
    with torch.no_grad():
        reference = _hf_model(state)(
            torch.from_numpy(x.transpose(0, 3, 1, 2).copy())
        ).logits.numpy()
    assert_parity(predict(model, x), reference, what=f"{size} logits")
