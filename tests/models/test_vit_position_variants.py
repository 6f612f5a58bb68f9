"""ViT position-embedding variants (ViT paper, Appendix D.4).

The layers are checked against numpy constructions written here; the
variants' encoders against a numpy ViT block run with the model's
weights (each block's attention probabilities, so every embedding and
bias must be where the variant says). All variants live in one combined
model (one compile, one `fit` step, one `.keras` round trip per backend).
"""

import math

import keras
import numpy as np
import pytest
from helpers import to_numpy

from keras_swin.layers import PositionEmbedding2D, RelativePositionBias
from keras_swin.models.vit import (
    VisionTransformer,
    vit_attention_model,
    vit_feature_model,
)

PATCH, DIM, LAYERS, HEADS, MLP, CLASSES = 8, 16, 2, 2, 32, 3
GRID = (4, 4)  # 32 x 32 images
VARIANTS = [("none", "stem")] + [
    (kind, at)
    for kind in ("1d", "2d", "relative")
    for at in ("stem", "every_layer", "every_layer_shared")
]

#: Variants whose `vit_feature_model` is checked (per-block weights).
FEATURE_VARIANTS = (("relative", "every_layer"), ("2d", "every_layer_shared"))


def _name(kind, at):
    return f"vit_{kind}_{at}"


def _index_by_loops(rows, cols, prefix):
    """BEiT's relative index, pair by pair."""
    offsets = (2 * rows - 1) * (2 * cols - 1)
    n = prefix + rows * cols
    index = np.zeros((n, n), int)
    for a in range(n):
        for b in range(n):
            if a < prefix and b < prefix:
                index[a, b] = offsets + 2
            elif a < prefix:
                index[a, b] = offsets
            elif b < prefix:
                index[a, b] = offsets + 1
            else:
                ya, xa = divmod(a - prefix, cols)
                yb, xb = divmod(b - prefix, cols)
                dy, dx = ya - yb + rows - 1, xa - xb + cols - 1
                index[a, b] = dy * (2 * cols - 1) + dx
    return index


def _embedding_2d(row, column, prefix):
    """(P + gh * gw, D): prefix rows, then [X[j], Y[i]] row-major."""
    patches = [
        np.concatenate([column[j], row[i]])
        for i in range(len(row))
        for j in range(len(column))
    ]
    rows = [] if prefix is None else list(prefix)
    return np.stack(rows + patches)


def test_relative_bias_gathers_the_table_by_offset():
    layer = RelativePositionBias((2, 3), num_heads=2, num_prefix_tokens=2)
    bias = to_numpy(layer(np.zeros((1, 8, 4), "float32")))
    table = to_numpy(layer.table)
    assert table.shape == ((2 * 2 - 1) * (2 * 3 - 1) + 3, 2)
    index = _index_by_loops(2, 3, 2)
    assert bias.shape == (1, 2, 8, 8)
    np.testing.assert_array_equal(bias[0], table[index].transpose(2, 0, 1))
    # Same offset, same bias: patches (0,0)->(1,1) and (0,1)->(1,2).
    np.testing.assert_array_equal(bias[0, :, 2, 6], bias[0, :, 3, 7])


def test_2d_embedding_concatenates_x_and_y():
    layer = PositionEmbedding2D((2, 3), num_prefix_tokens=1)
    x = np.random.default_rng(0).standard_normal((2, 7, 6)).astype("float32")
    out = to_numpy(layer(x))
    row, column = (
        to_numpy(layer.row_embedding),
        to_numpy(layer.column_embedding),
    )
    assert row.shape == (2, 3) and column.shape == (3, 3)
    expected = x + _embedding_2d(row, column, to_numpy(layer.prefix_embedding))
    np.testing.assert_allclose(out, expected, atol=1e-6)
    with pytest.raises(ValueError, match="must be even"):
        PositionEmbedding2D(2)(np.zeros((1, 4, 5), "float32"))
    with pytest.raises(ValueError, match="expects tokens"):
        PositionEmbedding2D(2, num_prefix_tokens=1)(
            np.zeros((1, 4, 4), "float32")
        )


@pytest.mark.parametrize(
    "make",
    [
        lambda **k: PositionEmbedding2D((2, 3), num_prefix_tokens=1, **k),
        lambda **k: RelativePositionBias((2, 3), 2, num_prefix_tokens=1, **k),
    ],
    ids=["2d", "relative"],
)
def test_layer_config_round_trip_and_bfloat16(make):
    layer = make()
    x = np.random.default_rng(1).standard_normal((2, 7, 6)).astype("float32")
    layer(x)
    config = layer.get_config()
    revived = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(layer)
    )
    assert type(revived) is type(layer) and revived.get_config() == config
    revived(x)
    revived.set_weights(layer.get_weights())
    np.testing.assert_array_equal(to_numpy(revived(x)), to_numpy(layer(x)))
    symbolic = make()(keras.Input((7, 6)))
    assert tuple(symbolic.shape[1:]) == tuple(layer(x).shape[1:])
    # mixed_bfloat16: float32 weights, bfloat16 output, same values.
    mixed = make(dtype="mixed_bfloat16")
    mixed(x)
    mixed.set_weights(layer.get_weights())
    assert all(w.dtype == "float32" for w in mixed.weights)
    out = mixed(keras.ops.cast(x, "bfloat16"))
    assert keras.backend.standardize_dtype(out.dtype) == "bfloat16"
    np.testing.assert_allclose(
        to_numpy(keras.ops.cast(out, "float32")),
        to_numpy(layer(x)),
        atol=0.05,
    )


def test_bad_arguments_are_named():
    small = dict(
        patch_size=PATCH, hidden_size=DIM, num_layers=1, num_heads=HEADS,
        mlp_dim=MLP, classes=CLASSES,
    )  # fmt: skip
    with pytest.raises(ValueError, match="position_embedding must be"):
        VisionTransformer(**small, position_embedding="3d")
    with pytest.raises(ValueError, match="position_embedding_at must be"):
        VisionTransformer(**small, position_embedding_at="everywhere")
    with pytest.raises(ValueError, match="needs a static input size"):
        VisionTransformer(
            **small,
            input_shape=(None, None, 3),
            position_embedding="relative",
        )
    with pytest.raises(ValueError, match="position_embedding_on_prefix"):
        VisionTransformer(
            **small,
            position_embedding="1d",
            position_embedding_at="every_layer",
            position_embedding_on_prefix=False,
        )


@pytest.fixture(scope="module")
def variants(tmp_path_factory):
    """All variants side by side in one model, after one `fit` step."""
    keras.utils.set_random_seed(0)
    image = keras.Input((32, 32, 3))
    models, logits = {}, []
    for kind, at in VARIANTS:
        model = VisionTransformer(
            PATCH, DIM, LAYERS, HEADS, MLP,
            classifier="gap" if kind == "none" else "token",
            input_shape=(32, 32, 3),
            classes=CLASSES,
            classifier_activation=None,
            position_embedding=kind,
            position_embedding_at=at,
            name=_name(kind, at),
        )  # fmt: skip
        models[(kind, at)] = model
        logits.append(model(image))
    combined = keras.Model(image, keras.layers.Concatenate()(logits))
    rng = np.random.default_rng(2)
    x = rng.standard_normal((4, 32, 32, 3)).astype("float32")
    y = rng.standard_normal((4, CLASSES * len(VARIANTS))).astype("float32")
    # Paths repeat across the variants: key the weights by position.
    position = {
        i: to_numpy(w).copy()
        for i, w in enumerate(combined.weights)
        if "pos_embed" in w.path or "rel_pos_bias" in w.path
    }
    combined.compile(optimizer=keras.optimizers.SGD(0.5), loss="mse")
    loss = combined.fit(x, y, batch_size=4, epochs=1, verbose=0).history
    path = tmp_path_factory.mktemp("variants") / "variants.keras"
    combined.save(path)
    loaded = keras.saving.load_model(path)
    # The images and their patch-shuffled copies, through both models.
    both = np.concatenate([x, _shuffle_patches(x)])
    return dict(
        models=models,
        combined=combined,
        loaded=loaded,
        x=x,
        loss=loss["loss"][0],
        position=position,
        outputs=combined.predict(both, verbose=0),
        loaded_outputs=loaded.predict(both, verbose=0),
    )


def _shuffle_patches(x):
    """`x` (B, 32, 32, 3) with its 8 x 8 patches in a fixed random order."""
    b = len(x)
    patches = x.reshape(b, 4, PATCH, 4, PATCH, 3).transpose(0, 1, 3, 2, 4, 5)
    order = np.random.default_rng(3).permutation(16)
    shuffled = patches.reshape(b, 16, PATCH, PATCH, 3)[:, order]
    return (
        shuffled.reshape(b, 4, 4, PATCH, PATCH, 3)
        .transpose(0, 1, 3, 2, 4, 5)
        .reshape(x.shape)
    )


@pytest.mark.slow
def test_every_variant_trains_and_round_trips(variants):
    assert np.isfinite(variants["loss"])
    combined = variants["combined"]
    after = [to_numpy(w) for w in combined.weights]
    # Which position weights each variant owns (paths in the graph).
    expected = {
        ("1d", "stem"): ["pos_embed/embedding"],
        ("1d", "every_layer"): [
            "encoder/pos_embed_0/embedding",
            "encoder/pos_embed_1/embedding",
        ],
        ("2d", "every_layer_shared"): [
            "encoder/pos_embed/column",
            "encoder/pos_embed/prefix",
            "encoder/pos_embed/row",
        ],
        ("relative", "every_layer"): [
            "encoder/rel_pos_bias_0/table",
            "encoder/rel_pos_bias_1/table",
        ],
        ("relative", "stem"): ["encoder/rel_pos_bias/table"],
    }
    for (kind, at), paths in expected.items():
        model = variants["models"][(kind, at)]
        owned = sorted(
            w.path
            for w in model.weights
            if "pos_embed" in w.path or "rel_pos_bias" in w.path
        )
        assert owned == paths, (kind, at, owned)
    assert not [
        w
        for w in variants["models"][("none", "stem")].weights
        if "pos_embed" in w.path
    ]
    # One SGD step moved every position weight of every variant.
    # 1d: 1 + 2 + 1, 2d: 3 + 6 + 3, relative: 1 + 2 + 1 weights.
    assert len(variants["position"]) == 20
    for i, before in variants["position"].items():
        path = combined.weights[i].path
        assert not np.array_equal(before, after[i]), path
    loaded = variants["loaded"]
    np.testing.assert_allclose(
        variants["loaded_outputs"], variants["outputs"], atol=1e-6
    )
    for name in ("vit_relative_every_layer", "vit_2d_every_layer_shared"):
        encoder = loaded.get_layer(name).get_layer("encoder")
        assert encoder.position_embedding == name.split("_")[1]
        assert encoder.grid_size == GRID


@pytest.mark.slow
def test_no_position_is_blind_to_patch_order(variants):
    """Without position information a permutation of the patches leaves
    the (average-pooled) output unchanged; with it, it does not."""
    both = variants["outputs"]
    first, second = both[:4], both[4:]
    none = slice(0, CLASSES)  # the first variant
    np.testing.assert_allclose(first[:, none], second[:, none], atol=1e-5)
    for i in range(1, len(VARIANTS)):
        cols = slice(i * CLASSES, (i + 1) * CLASSES)
        # Rounding alone moves the outputs ~1e-7; the small initial
        # relative tables (N(0, 0.02)) move them ~1e-5.
        assert np.max(np.abs(first[:, cols] - second[:, cols])) > 3e-6, i


def _layer_norm(x, gamma, beta, eps):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * gamma + beta


def _softmax(z):
    z = z - z.max(-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(-1, keepdims=True)


def _gelu_tanh(x):
    return (
        0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))
    )


def _numpy_encoder_probabilities(x, weights, kind, at, prefix=1):
    """Each block's attention probabilities and the last block's output
    (B, N, D), the ViT blocks in float64."""
    x = x.astype(np.float64)
    n, d = x.shape[1], x.shape[2]
    head_dim = d // HEADS

    def w(path):
        return weights[path].astype(np.float64)

    def position(i):
        if kind == "none" or (at == "stem" and (i > 0 or kind != "relative")):
            return None  # at the stem, 1-D/2-D are in the encoder's input
        suffix = f"_{i}" if at == "every_layer" else ""
        if kind == "relative":
            table = w(f"encoder/rel_pos_bias{suffix}/table")
            return table[_index_by_loops(*GRID, prefix)].transpose(2, 0, 1)
        base = f"encoder/pos_embed{suffix}"
        if kind == "1d":
            return w(f"{base}/embedding")
        return _embedding_2d(w(f"{base}/row"), w(f"{base}/column"),
                             w(f"{base}/prefix"))[None]  # fmt: skip

    probabilities = []
    for i in range(LAYERS):
        block = f"encoder/blocks_{i}"
        extra = position(i)
        bias = 0.0
        if kind == "relative" and extra is not None:
            bias = extra[None]
        elif extra is not None:
            x = x + extra
        h = _layer_norm(
            x, w(f"{block}/norm1/gamma"), w(f"{block}/norm1/beta"), 1e-6
        )
        qkv = h @ w(f"{block}/attn/qkv/kernel") + w(f"{block}/attn/qkv/bias")
        qkv = qkv.reshape(-1, n, 3, HEADS, head_dim).transpose(2, 0, 3, 1, 4)
        q, k, v = qkv  # (B, heads, N, hd)
        p = _softmax(q @ k.transpose(0, 1, 3, 2) * head_dim**-0.5 + bias)
        probabilities.append(p)
        out = (p @ v).transpose(0, 2, 1, 3).reshape(-1, n, d)
        x = (
            x
            + out @ w(f"{block}/attn/proj/kernel")
            + w(f"{block}/attn/proj/bias")
        )
        h = _layer_norm(
            x, w(f"{block}/norm2/gamma"), w(f"{block}/norm2/beta"), 1e-6
        )
        h = _gelu_tanh(
            h @ w(f"{block}/mlp/fc1/kernel") + w(f"{block}/mlp/fc1/bias")
        )
        x = x + h @ w(f"{block}/mlp/fc2/kernel") + w(f"{block}/mlp/fc2/bias")
    return probabilities, x


@pytest.mark.slow
def test_attention_of_every_variant_matches_numpy(variants):
    """`vit_attention_model` of each variant (one combined predict)
    against the numpy blocks fed with the encoder's input."""
    image = keras.Input((32, 32, 3))
    outputs = {}
    for (kind, at), model in variants["models"].items():
        tag = _name(kind, at)
        encoder_input = keras.Model(
            model.inputs, model.get_layer("encoder").input
        )(image)
        outputs[f"{tag}/input"] = encoder_input
        for key, probs in vit_attention_model(model)(image).items():
            outputs[f"{tag}/{key}"] = probs
        if (kind, at) in FEATURE_VARIANTS:
            features = vit_feature_model(model, block_indices=-1)(image)
            outputs[f"{tag}/features"] = features["block_1"]
    got = keras.Model(image, outputs).predict(variants["x"][:2], verbose=0)
    for (kind, at), model in variants["models"].items():
        tag = _name(kind, at)
        weights = {w.path: to_numpy(w) for w in model.weights}
        prefix = int(kind != "none")
        expected, tokens = _numpy_encoder_probabilities(
            got[f"{tag}/input"], weights, kind, at, prefix=prefix
        )
        for k, probs in enumerate(expected):
            actual = got[f"{tag}/blocks_{k}"]
            assert actual.dtype == np.float32
            np.testing.assert_allclose(actual, probs, atol=1e-5, err_msg=tag)
        if (kind, at) in FEATURE_VARIANTS:
            np.testing.assert_allclose(
                got[f"{tag}/features"],
                tokens[:, prefix:].reshape(2, *GRID, DIM),
                atol=1e-4,
                err_msg=tag,
            )
