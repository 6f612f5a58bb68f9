"""Parity with live Hugging Face `transformers` ViT models.

Random reference models (non-trivial weights: the library init zeroes
biases and makes LayerNorms identities) are written with
`save_pretrained`, under the Hub (legacy) key names and the
transformers-5 names, and read back by the Hugging Face converter.
"""

import numpy as np
import pytest
import torch
import transformers
from helpers import assert_parity, predict

from keras_swin import load_checkpoint
from weights_tools.convert import checkpoint_config

CONFIG = dict(
    hidden_size=48,
    num_hidden_layers=2,
    num_attention_heads=3,
    intermediate_size=96,
    image_size=64,
    patch_size=16,
    num_labels=7,
)


def _randomise(model, seed):
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            z = torch.randn(param.shape, generator=generator)
            if "layernorm" in name and name.endswith("weight"):
                param.copy_(1 + 0.2 * z)
            elif name.endswith("bias"):
                param.copy_(0.1 * z)
            elif param.ndim >= 2 and "embeddings" not in name:
                param.copy_(z / np.sqrt(np.prod(param.shape[1:])))
            else:
                param.copy_(0.5 * z)
    return model.eval()


def _nchw(x):
    return torch.from_numpy(x.transpose(0, 3, 1, 2).copy())


@pytest.mark.parametrize("original_names", [True, False], ids=["hub", "v5"])
@pytest.mark.parametrize("hidden_act", ["gelu", "gelu_pytorch_tanh"])
def test_vit_classifier(tmp_path, original_names, hidden_act):
    config = transformers.ViTConfig(**CONFIG, hidden_act=hidden_act)
    reference = _randomise(transformers.ViTForImageClassification(config), 5)
    reference.save_pretrained(tmp_path, save_original_format=original_names)
    x = np.random.default_rng(6).standard_normal((2, 64, 64, 3), "float32")
    with torch.no_grad():
        expected = reference(_nchw(x)).logits.numpy()
    assert checkpoint_config(tmp_path)["gelu_approximate"] is (
        hidden_act != "gelu"
    )
    assert_parity(predict(load_checkpoint(tmp_path), x), expected)


def test_vit_base_model_pooler_is_pre_logits(tmp_path):
    config = transformers.ViTConfig(**CONFIG)
    reference = _randomise(transformers.ViTModel(config), 7)
    reference.save_pretrained(tmp_path)
    x = np.random.default_rng(8).standard_normal((2, 64, 64, 3), "float32")
    with torch.no_grad():
        expected = reference(_nchw(x)).pooler_output.numpy()
    model = load_checkpoint(tmp_path)
    assert checkpoint_config(tmp_path)["representation_size"] == 48
    assert_parity(predict(model, x), expected)
