"""ViT attention probabilities against Hugging Face `output_attentions`.

The Hugging Face golden folder (a random 2-block, 4-head ViT at 224 px)
is loaded twice: converted by `load_checkpoint`, and live by
`transformers` with eager attention, which returns every block's
softmax probabilities (B, heads, N, N).
"""

import numpy as np
import pytest
import torch
import transformers
from helpers import golden, golden_inputs

from keras_swin import load_checkpoint
from keras_swin.models.vit import vit_attention_model

FOLDER = ("hf", "vit_tiny_h64_224")


@pytest.fixture(scope="module")
def reference():
    images = golden_inputs(*FOLDER)  # (2, 224, 224, 3)
    model = transformers.ViTForImageClassification.from_pretrained(
        golden(*FOLDER), attn_implementation="eager"
    ).eval()
    with torch.no_grad():
        out = model(
            torch.from_numpy(images.transpose(0, 3, 1, 2).copy()),
            output_attentions=True,
        )
    return images, [a.numpy() for a in out.attentions]


def test_every_block_matches_hugging_face(reference):
    images, expected = reference
    model = load_checkpoint(golden(*FOLDER), classifier_activation=None)
    attention = vit_attention_model(model)
    got = attention.predict(images, verbose=0, batch_size=len(images))
    assert sorted(got) == [f"blocks_{k}" for k in range(len(expected))]
    for k, probs in enumerate(expected):
        assert probs.shape == (2, 4, 197, 197)
        actual = got[f"blocks_{k}"]
        assert actual.dtype == np.float32 and actual.shape == probs.shape
        np.testing.assert_allclose(actual, probs, rtol=0, atol=1e-5)
    # The last block alone: the same matrix.
    last = vit_attention_model(model, block_indices=-1).predict(
        images, verbose=0, batch_size=len(images)
    )
    assert list(last) == ["blocks_1"]
    np.testing.assert_allclose(last["blocks_1"], expected[1], atol=1e-5)
