"""Any input size: parity with a live Hugging Face `transformers` Swin.

The random reference model is written with `save_pretrained` and read back
by the Hugging Face converter.

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

from keras_swin import load_checkpoint

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


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    reference = _hf_model()
    folder = tmp_path_factory.mktemp("hf_swin")
    reference.save_pretrained(folder)  # legacy key names, as on the Hub
    model = load_checkpoint(folder, input_shape=(None, None, 3))
    return reference.state_dict(), model


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
