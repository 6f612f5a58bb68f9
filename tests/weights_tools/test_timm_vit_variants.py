"""timm ViT variants without golden files: pooling, fc_norm, registers.

The reference is a plain-numpy forward pass of timm's VisionTransformer
written here from timm's documented semantics (golden timm/README.md):
prefix tokens [cls, registers..., patches]; `no_embed_class` adds the
position embedding to the patches only; `global_pool="avg"` averages the
patch tokens and, with `fc_norm`, normalises after pooling instead of
before; exact GELU, LayerNorm epsilon 1e-6.
"""

import json

import numpy as np
import pytest
from helpers import assert_parity, predict
from scipy.special import erf

from keras_swin import load_checkpoint
from weights_tools.convert import checkpoint_config

D, HEADS, PATCH, SIZE, MLP, DEPTH, CLASSES = 24, 3, 8, 32, 48, 2, 5


def _layer_norm(x, prefix, sd):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + 1e-6) * sd[prefix + ".weight"] + sd[
        prefix + ".bias"
    ]


def _linear(x, prefix, sd):
    return x @ sd[prefix + ".weight"].T + sd[prefix + ".bias"]


def _reference(sd, x, pool, no_embed_class):
    b = x.shape[0]
    g = SIZE // PATCH
    patches = x.reshape(b, g, PATCH, g, PATCH, 3).transpose(0, 1, 3, 2, 4, 5)
    kernel = sd["patch_embed.proj.weight"].transpose(2, 3, 1, 0)
    t = patches.reshape(b, g * g, -1) @ kernel.reshape(-1, D)
    t = t + sd["patch_embed.proj.bias"]
    prefix = [
        np.broadcast_to(sd[k], (b,) + sd[k].shape[1:])
        for k in ("cls_token", "reg_token")
        if k in sd
    ]
    if no_embed_class:
        t = np.concatenate(prefix + [t + sd["pos_embed"]], 1)
    else:
        t = np.concatenate(prefix + [t], 1) + sd["pos_embed"]
    hd = D // HEADS
    for i in range(DEPTH):
        p = f"blocks.{i}."
        h = _layer_norm(t, p + "norm1", sd)
        qkv = _linear(h, p + "attn.qkv", sd).reshape(b, -1, 3, HEADS, hd)
        q, k, v = (qkv[:, :, j].transpose(0, 2, 1, 3) for j in range(3))
        s = q @ k.transpose(0, 1, 3, 2) * hd**-0.5
        a = np.exp(s - s.max(-1, keepdims=True))
        a /= a.sum(-1, keepdims=True)
        o = (a @ v).transpose(0, 2, 1, 3).reshape(b, -1, D)
        t = t + _linear(o, p + "attn.proj", sd)
        h = _linear(_layer_norm(t, p + "norm2", sd), p + "mlp.fc1", sd)
        h = 0.5 * h * (1 + erf(h / np.sqrt(2)))
        t = t + _linear(h, p + "mlp.fc2", sd)
    if "norm.weight" in sd:
        t = _layer_norm(t, "norm", sd)
    n_prefix = len(prefix) and sum(p.shape[1] for p in prefix)
    pooled = t[:, 0] if pool == "token" else t[:, n_prefix:].mean(1)
    if "fc_norm.weight" in sd:
        pooled = _layer_norm(pooled, "fc_norm", sd)
    return _linear(pooled, "head", sd)


def _state_dict(rng, cls, registers, no_embed_class, fc_norm):
    sd = {}

    def put(name, shape, scale=None):
        z = rng.standard_normal(shape).astype("float32")
        if scale is None:
            scale = 1 / np.sqrt(np.prod(shape[1:]))
        sd[name] = z * scale

    put("patch_embed.proj.weight", (D, 3, PATCH, PATCH))
    put("patch_embed.proj.bias", (D,), 0.1)
    if cls:
        put("cls_token", (1, 1, D), 0.5)
    if registers:
        put("reg_token", (1, registers, D), 0.5)
    grid = (SIZE // PATCH) ** 2
    rows = grid if no_embed_class else grid + int(cls) + registers
    put("pos_embed", (1, rows, D), 0.5)
    norms = [f"blocks.{i}.norm{j}" for i in range(DEPTH) for j in (1, 2)]
    norms.append("fc_norm" if fc_norm else "norm")
    for name in norms:
        sd[name + ".weight"] = 1 + 0.2 * rng.standard_normal(D, "float32")
        sd[name + ".bias"] = 0.1 * rng.standard_normal(D, "float32")
    for i in range(DEPTH):
        for name, (out, inp) in {
            "attn.qkv": (3 * D, D),
            "attn.proj": (D, D),
            "mlp.fc1": (MLP, D),
            "mlp.fc2": (D, MLP),
        }.items():
            put(f"blocks.{i}.{name}.weight", (out, inp))
            put(f"blocks.{i}.{name}.bias", (out,), 0.1)
    put("head.weight", (CLASSES, D))
    put("head.bias", (CLASSES,), 0.1)
    return sd


VARIANTS = {
    # name: (class token, registers, no_embed_class, global_pool, fc_norm)
    "mae_avg_fc_norm": (True, 0, False, "avg", True),
    "gap_no_cls": (False, 0, False, "avg", False),
    "reg4_token": (True, 4, True, "token", False),
    "reg4_gap_fc_norm": (False, 4, True, "avg", True),
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_timm_vit_variant(tmp_path, variant):
    from safetensors.numpy import save_file

    cls, registers, no_embed, pool, fc_norm = VARIANTS[variant]
    rng = np.random.default_rng(sorted(VARIANTS).index(variant))
    sd = _state_dict(rng, cls, registers, no_embed, fc_norm)
    save_file(sd, tmp_path / "model.safetensors")
    (tmp_path / "config.json").write_text(
        json.dumps(
            {
                "architecture": f"vit_test_patch{PATCH}_{SIZE}",
                "num_classes": CLASSES,
                "global_pool": pool,
                "model_args": {
                    "embed_dim": D,
                    "depth": DEPTH,
                    "num_heads": HEADS,
                    "img_size": SIZE,
                    "patch_size": PATCH,
                },
            }
        )
    )
    config = checkpoint_config(tmp_path)
    assert config["num_register_tokens"] == registers
    assert config["position_embedding_on_prefix"] is not no_embed
    assert config["pooled_norm"] is fc_norm
    x = rng.standard_normal((2, SIZE, SIZE, 3)).astype("float32")
    expected = _reference(sd, x.astype("float64"), pool, no_embed)
    assert_parity(predict(load_checkpoint(tmp_path), x), expected)
