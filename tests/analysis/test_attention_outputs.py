"""Attention outputs of every block (`keras_swin.analysis.attention_model`).

Against a live Hugging Face Swin read from the golden folder: its
`output_attentions=True` (one array per stage: the LAST block's
attention) and, through forward hooks on every `SwinAttention`, every
block's attention. One model of any input size, at 224 px and at 250 px
(padding to the patch, to the window before the shift, odd maps before
merging, a shifted 8x8 last stage); on TensorFlow the second size
retraces `predict` with unknown sizes, the in-graph layout.

Then a numpy reference of a shifted block with "pad" windows (the
backbones'), the probes of the backbone inside a UperNet, and the layouts
against hand-worked sizes.
"""

import contextlib

import keras
import numpy as np
import pytest
import torch
import transformers
from helpers import assert_parity, golden, golden_inputs

import keras_swin
from keras_swin.analysis import (
    attention_model,
    swin_window_layouts,
    vit_token_layout,
)

FOLDER = ("hf", "swin_tiny_e24_w7_224")
#: case -> golden input subfolder: 224 px, and 250 px (padded).
CASES = {"224": (), "250_padded": ("padded_250",)}


@contextlib.contextmanager
def _structure_only():
    """Models built inside have no weight values (layouts need none).

    Skips initialising weights, seconds per model on JAX; the deferred
    variables are dropped by `clear_session` afterwards.
    """
    try:
        with keras.StatelessScope(initialize_variables=False):
            yield
    finally:
        keras.backend.clear_session(free_memory=False)


def _hf_attentions(x):
    """(last block per stage from output_attentions, every block by hook).

    A fresh reference model per size: transformers' Swin keeps the
    window and shift of its last call.
    """
    reference = transformers.SwinForImageClassification.from_pretrained(
        golden(*FOLDER), attn_implementation="eager"
    ).eval()
    hooked = {}
    handles = []
    for i, stage in enumerate(reference.swin.encoder.layers):
        for j, block in enumerate(stage.blocks):

            def hook(module, args, output, key=f"layers_{i}_blocks_{j}"):
                hooked[key] = output[1].detach().numpy()

            handles.append(block.attention.register_forward_hook(hook))
    with torch.no_grad():
        out = reference(
            torch.from_numpy(x.transpose(0, 3, 1, 2).copy()),
            output_attentions=True,
        )
    for handle in handles:
        handle.remove()
    return [a.numpy() for a in out.attentions], hooked


@pytest.fixture(scope="module")
def converted():
    # Any input size; at a known size it takes the static layout code a
    # model built for that size takes.
    model = keras_swin.load_checkpoint(
        golden(*FOLDER), input_shape=(None, None, 3), classifier_activation=None
    )
    return model, attention_model(model)


@pytest.fixture(scope="module", params=list(CASES))
def case(request, converted):
    model, probes = converted
    x = golden_inputs(*FOLDER, *CASES[request.param])
    probs = probes.predict(x, verbose=0, batch_size=len(x))
    layouts = swin_window_layouts(model, x.shape[1:3])
    return request.param, probs, layouts, _hf_attentions(x)


@pytest.mark.slow
def test_every_block_matches_transformers_hooks(case):
    name, probs, layouts, (_, hooked) = case
    assert sorted(probs) == sorted(hooked) == sorted(layouts)
    for key, reference in hooked.items():
        layout = layouts[key]
        batch, windows, heads, tokens, _ = probs[key].shape
        assert windows == layout.num_windows
        assert tokens == layout.window**2
        assert probs[key].dtype == np.float32
        # transformers: (B * nW, heads, M*M, M*M), batch outermost.
        actual = probs[key].reshape(batch * windows, heads, tokens, tokens)
        assert_parity(actual, reference, tol=1e-5, what=f"{name} {key}")


@pytest.mark.slow
def test_output_attentions_is_the_last_block_of_each_stage(case):
    name, probs, layouts, (per_stage, _) = case
    assert len(per_stage) == 4
    for i, reference in enumerate(per_stage):
        key = f"layers_{i}_blocks_1"  # depth 2: block 1 is the last
        actual = probs[key].reshape((-1,) + probs[key].shape[2:])
        assert_parity(actual, reference, tol=1e-5, what=f"{name} {key}")
    if name == "250_padded":
        # 250 px: maps 63, 32, 16, 8; the 8x8 stage is padded to 14 and
        # shifted by 3, the 63x63 one padded to 63 (9 x 9 windows).
        assert layouts["layers_0_blocks_1"].num_windows == 81
        assert layouts["layers_3_blocks_1"].padded_height == 14
        assert layouts["layers_3_blocks_1"].shift == 3


def _layer_norm(x, layer):
    gamma, beta = (np.asarray(w) for w in layer.get_weights())
    mean = x.mean(-1, keepdims=True)
    var = x.var(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + layer.epsilon) * gamma + beta


def _numpy_window_attention(x, block, window, shift):
    """The block's probabilities, computed independently in numpy.

    Official Swin: LayerNorm, zero pad bottom/right to window multiples,
    roll by -shift, windows row-major, (q * scale) k^T + relative bias +
    shift mask (-100 between the 3 x 3 regions of the rolled frame),
    softmax. Returns (B, nW, heads, M*M, M*M).
    """
    b, h, w, c = x.shape
    heads = block.num_heads
    y = _layer_norm(x.astype(np.float64), block.norm1)
    hp, wp = -(-h // window) * window, -(-w // window) * window
    y = np.pad(y, ((0, 0), (0, hp - h), (0, wp - w), (0, 0)))
    y = np.roll(y, (-shift, -shift), axis=(1, 2))
    y = y.reshape(b, hp // window, window, wp // window, window, c)
    y = y.transpose(0, 1, 3, 2, 4, 5).reshape(b, -1, window * window, c)
    kernel, bias = (np.asarray(v) for v in block.attn.qkv.get_weights())
    qkv = (y @ kernel + bias).reshape(b, y.shape[1], -1, 3, heads, c // heads)
    q, k = qkv[..., 0, :, :], qkv[..., 1, :, :]
    logits = np.einsum("bwqhd,bwkhd->bwhqk", q * (c // heads) ** -0.5, k)
    table = np.asarray(block.attn.relative_position_bias_table)
    t = block.attn.window_size
    rows, cols = np.divmod(np.arange(window * window), window)
    index = (rows[:, None] - rows[None] + t - 1) * (2 * t - 1) + (
        cols[:, None] - cols[None] + t - 1
    )
    logits = logits + table[index].transpose(2, 0, 1)
    if shift:

        def regions(size):
            r = np.zeros(size, int)
            r[size - window : size - shift] = 1
            r[size - shift :] = 2
            return r

        labels = regions(hp)[:, None] * 3 + regions(wp)[None]
        labels = labels.reshape(hp // window, window, wp // window, window)
        labels = labels.transpose(0, 2, 1, 3).reshape(-1, window * window)
        mask = np.where(labels[:, :, None] != labels[:, None], -100.0, 0.0)
        logits = logits + mask[None, :, None]
    logits -= logits.max(-1, keepdims=True)
    e = np.exp(logits)
    return e / e.sum(-1, keepdims=True)


def _randomise(model, seed):
    """Non-trivial weights (large bias table, LayerNorm affine)."""
    rng = np.random.default_rng(seed)
    model.set_weights(
        [rng.normal(0, 0.5, w.shape).astype("float32") for w in model.weights]
    )


def test_upernet_probes_its_backbone_on_its_input():
    # 12 x 12 px -> a 3 x 3 token map. The backbone's "pad" windows keep
    # the window 4 (the map padded to 4 x 4, one window of 16 tokens with
    # 7 padded ones), where a classifier's "clamp" would use 3 x 3. The
    # values of "pad" windows: test_shifted_pad_block_matches_numpy.
    with _structure_only():
        backbone = keras_swin.SwinBackbone(
            embed_dim=4,
            depths=(2,),
            num_heads=(2,),
            window_size=4,
            out_indices=(0,),
            image_shape=(12, 12, 3),
        )
        upernet = keras_swin.UperNet(
            backbone,
            num_classes=2,
            channels=4,
            pool_scales=(1,),
            auxiliary_channels=None,
        )
        probes = attention_model(upernet, block_indices=[(0, 1)])
    assert probes.inputs[0] is upernet.inputs[0]
    assert {k: tuple(v.shape) for k, v in probes.output.items()} == {
        "layers_0_blocks_1": (None, 1, 2, 16, 16)
    }
    layout = swin_window_layouts(upernet)["layers_0_blocks_1"]
    assert (layout.height, layout.width, layout.window, layout.shift) == (
        3,
        3,
        4,
        2,
    )
    assert (layout.padded_height, layout.padded_width) == (4, 4)


def test_shifted_pad_block_matches_numpy():
    # "pad": a 5 x 3 map keeps window 4 and shift 2 (padded to 8 x 4).
    block = keras_swin.layers.SwinBlock(
        8, 2, window_size=4, shift_size=2, window_mode="pad"
    )
    x = np.random.default_rng(2).standard_normal((2, 5, 3, 8))
    x = x.astype("float32")
    block.build(x.shape)
    _randomise(block, 3)
    actual = keras.ops.convert_to_numpy(block.attention_probabilities(x))
    expected = _numpy_window_attention(x, block, 4, 2)
    assert actual.shape == expected.shape == (2, 2, 2, 16, 16)
    assert_parity(actual, expected, tol=1e-5, what="shifted pad block")


def test_swin_layouts_hand_worked():
    # 36 x 44 px, patch 4 -> 9 x 11 tokens; window 4 pads them to 12 x 12
    # (3 x 3 windows); merging -> 5 x 6, padded to 8 x 8 (2 x 2 windows).
    with _structure_only():
        model = keras_swin.SwinTransformer(
            embed_dim=8,
            depths=(2, 1),
            num_heads=(1, 1),
            window_size=4,
            input_shape=(36, 44, 3),
            classes=2,
        )
    layouts = swin_window_layouts(model)
    assert list(layouts) == [
        "layers_0_blocks_0",
        "layers_0_blocks_1",
        "layers_1_blocks_0",
    ]
    got = {
        k: (
            v.stage,
            v.block,
            v.height,
            v.width,
            v.window,
            v.shift,
            v.padded_height,
            v.padded_width,
            v.stride,
            v.num_windows,
            v.image_height,
            v.image_width,
        )
        for k, v in layouts.items()
    }
    assert got == {
        "layers_0_blocks_0": (0, 0, 9, 11, 4, 0, 12, 12, 4, 9, 36, 44),
        "layers_0_blocks_1": (0, 1, 9, 11, 4, 2, 12, 12, 4, 9, 36, 44),
        "layers_1_blocks_0": (1, 0, 5, 6, 4, 0, 8, 8, 8, 4, 36, 44),
    }
    with pytest.raises(ValueError, match="built for 36x44"):
        swin_window_layouts(model, (40, 40))
    with pytest.raises(ValueError, match="is a Swin model, not a ViT"):
        vit_token_layout(model, (36, 44))
    with pytest.raises(ValueError, match="No Swin block"):
        attention_model(model, block_indices=[(1, 1)])
    with pytest.raises(ValueError, match="block names"):
        attention_model(model, block_indices=[3])


def test_clamped_window_layout_any_size():
    # "clamp" (classifier), any size: 10 x 7 px -> 3 x 2 tokens, not
    # larger than the window 4, so the window is min(3, 2) = 2, unshifted,
    # and the map is padded to 4 x 2 (two windows).
    with _structure_only():
        model = keras_swin.SwinTransformer(
            embed_dim=8,
            depths=(2,),
            num_heads=(1,),
            window_size=4,
            input_shape=(None, None, 3),
            classes=2,
        )
    layout = swin_window_layouts(model, (10, 7))["layers_0_blocks_1"]
    assert (layout.height, layout.width) == (3, 2)
    assert (layout.window, layout.shift) == (2, 0)
    assert (layout.padded_height, layout.padded_width) == (4, 2)
    with pytest.raises(ValueError, match="pass image_size"):
        swin_window_layouts(model)


def test_vit_token_layout_hand_worked():
    with _structure_only():
        vit = keras_swin.VisionTransformer(
            patch_size=16,
            hidden_size=16,
            num_layers=1,
            num_heads=2,
            mlp_dim=16,
            input_shape=(None, None, 3),
            include_top=False,
        )
    # 70 x 40 px: VALID patches drop the remainder -> 4 x 2 patches.
    layout = vit_token_layout(vit, (70, 40))
    assert layout.grid == (4, 2)
    assert layout.patch_size == 16
    assert layout.num_prefix_tokens == 1
    with pytest.raises(ValueError, match="is a ViT, not a Swin"):
        swin_window_layouts(vit, (64, 64))
    # A static 64 x 48 ViT: 4 x 3 patches + the class token; attention
    # outputs through keras_swin.models.vit.vit_attention_model.
    with _structure_only():
        vit = keras_swin.VisionTransformer(
            patch_size=16,
            hidden_size=16,
            num_layers=2,
            num_heads=2,
            mlp_dim=16,
            input_shape=(64, 48, 3),
            include_top=False,
        )
        probes = attention_model(vit, block_indices=[-1])
    assert vit_token_layout(vit).num_tokens == 13
    assert {k: tuple(v.shape) for k, v in probes.output.items()} == {
        "blocks_1": (None, 2, 13, 13)
    }


def test_neither_vit_nor_swin():
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    with pytest.raises(ValueError, match="neither a ViT"):
        attention_model(model)
