"""ViT as a dense backbone: any input size per call, intermediate grids.

References, none computed by the code under test:
* the static model (`PositionEmbedding` at the input's grid) with the
  embedding resized by `weights_tools.resample.resize_position_embedding`
  (validated against torch and scipy in tests/weights_tools);
* the official JAX ViT's block outputs (tests/golden/vit_official);
* a live Hugging Face ViT with `interpolate_pos_encoding=True`.
"""

import keras
import numpy as np
import pytest
from helpers import BACKEND, assert_parity, golden, predict, to_numpy

import keras_swin
from keras_swin import load_checkpoint
from keras_swin.layers import TokenGrid, ViTPositionEmbedding
from keras_swin.layers.interpolation import METHODS
from keras_swin.models.vit import VisionTransformer, vit_feature_model
from weights_tools.convert import checkpoint_config
from weights_tools.resample import resize_position_embedding

ARCH = dict(
    patch_size=4,
    hidden_size=16,
    num_layers=2,
    num_heads=2,
    mlp_dim=32,
    classes=5,
    classifier_activation=None,
)
STORED = (16, 20)  # image size of the "checkpoint": a 4x5 patch grid
GRID = (4, 5)

# name -> (builder arguments, number of prefix rows of the embedding)
LAYOUTS = {
    "class": (dict(), 1),
    "class+registers": (dict(num_register_tokens=2), 3),
    "no_embed_class": (
        dict(
            classifier="gap",
            class_token=True,
            num_register_tokens=1,
            position_embedding_on_prefix=False,
            pooled_norm=True,
        ),
        0,
    ),
    "gap": (dict(classifier="gap"), 0),
}


def randomised(model, seed=0):
    """`model` with every weight drawn from N(0, 0.5^2) (no zero tokens)."""
    rng = np.random.default_rng(seed)
    for variable in model.weights:
        value = 0.5 * rng.standard_normal(variable.shape)
        if variable.path.endswith("gamma"):
            value += 1.0
        variable.assign(value.astype("float32"))
    return model


def copy_by_path(source, target, replace=None):
    """Assigns `source`'s weights to `target` by path (some replaced)."""
    replace = replace or {}
    values = {v.path: to_numpy(v) for v in source.weights}
    assert sorted(values) == sorted(v.path for v in target.weights)
    for variable in target.weights:
        variable.assign(replace.get(variable.path, values[variable.path]))
    return target


def images(size, batch=2, seed=1):
    rng = np.random.default_rng(seed)
    return rng.uniform(-1, 1, (batch, *size, 3)).astype("float32")


def dynamic_model(method, layout="class", **extra):
    return VisionTransformer(
        **{**ARCH, **LAYOUTS[layout][0], **extra},
        input_shape=(None, None, 3),
        position_embedding_grid=GRID,
        position_embedding_resize=method,
    )


def static_model(size, layout="class", **extra):
    return VisionTransformer(
        **{**ARCH, **LAYOUTS[layout][0], **extra}, input_shape=(*size, 3)
    )


def run_unknown_size(model, x):
    """`model(x)` in a TensorFlow graph traced for unknown H and W."""
    import tensorflow as tf

    function = tf.function(
        lambda images: model(images),
        input_signature=[tf.TensorSpec((None, None, None, 3), tf.float32)],
    )
    assert function.get_concrete_function().outputs[0].shape[0] is None
    return function(tf.constant(x)).numpy()


@pytest.mark.parametrize(
    "method,layout",
    [
        ("zoom", "class"),
        ("bicubic", "class+registers"),
        ("bicubic_antialias", "no_embed_class"),
        ("bicubic", "gap"),
    ],
)
def test_stored_grid_is_bit_identical_to_static(method, layout):
    static = randomised(static_model(STORED, layout))
    dynamic = copy_by_path(static, dynamic_model(method, layout))
    assert isinstance(dynamic.get_layer("pos_embed"), ViTPositionEmbedding)
    assert {v.path: tuple(v.shape) for v in dynamic.weights} == {
        v.path: tuple(v.shape) for v in static.weights
    }
    x = images(STORED)
    # Each way of running against the static model run the same way (a
    # compiled graph may fuse differently from eager execution).
    if BACKEND != "jax":  # eager JAX compiles every op: slow, same kernels
        np.testing.assert_array_equal(to_numpy(dynamic(x)), to_numpy(static(x)))
    np.testing.assert_array_equal(predict(dynamic, x), predict(static, x))
    if BACKEND == "tensorflow":
        np.testing.assert_array_equal(
            run_unknown_size(dynamic, x), run_unknown_size(static, x)
        )


# (image size, layout): larger and smaller grids, square and not.
SIZES = [((24, 28), "class+registers"), ((8, 12), "gap")]


@pytest.mark.parametrize(
    "size,layout", SIZES, ids=[f"{s[0]}x{s[1]}" for s, _ in SIZES]
)
@pytest.mark.parametrize("method", METHODS)
def test_other_size_matches_the_resampled_static_model(method, size, layout):
    source = randomised(static_model(STORED, layout), seed=2)
    dynamic = copy_by_path(source, dynamic_model(method, layout))
    new_grid = (size[0] // 4, size[1] // 4)
    embedding = to_numpy(source.get_layer("pos_embed").embedding)
    resized = resize_position_embedding(
        embedding,
        new_grid,
        num_prefix_tokens=LAYOUTS[layout][1],
        old_grid=GRID,
        method=method,
    )
    assert resized.shape[1] - LAYOUTS[layout][1] == new_grid[0] * new_grid[1]
    reference = copy_by_path(
        source,
        static_model(size, layout),
        replace={"pos_embed/embedding": resized},
    )
    x = images(size, seed=3)
    expected = predict(reference, x)
    assert_parity(predict(dynamic, x), expected, 1e-5, f"{method} {size}")
    if BACKEND == "tensorflow":
        # The in-graph (keras.ops) weights of a size unknown when traced.
        assert_parity(run_unknown_size(dynamic, x), expected, 1e-5, "graph")


def test_no_embed_class_other_size_keeps_prefix_tokens_out():
    """`position_embedding_on_prefix=False`: only patch rows, all resized."""
    layout = "no_embed_class"
    source = randomised(static_model(STORED, layout), seed=4)
    assert source.get_layer("pos_embed").embedding.shape == (1, 20, 16)
    dynamic = copy_by_path(source, dynamic_model("bicubic_antialias", layout))
    embedding = to_numpy(source.get_layer("pos_embed").embedding)
    resized = resize_position_embedding(
        embedding, (7, 3), old_grid=GRID, method="bicubic_antialias"
    )
    reference = copy_by_path(
        source,
        static_model((28, 12), layout),
        replace={"pos_embed/embedding": resized},
    )
    x = images((28, 12), seed=5)
    assert_parity(predict(dynamic, x), predict(reference, x), 1e-5)


def test_static_input_with_another_stored_grid_resizes_at_call():
    """A static model may keep the checkpoint's grid too (no resampling)."""
    source = randomised(static_model(STORED), seed=6)
    model = copy_by_path(
        source,
        static_model(
            (12, 8),
            position_embedding_grid=GRID,
            position_embedding_resize="zoom",
        ),
    )
    resized = resize_position_embedding(
        to_numpy(source.get_layer("pos_embed").embedding),
        (3, 2),
        num_prefix_tokens=1,
        old_grid=GRID,
        method="zoom",
    )
    reference = copy_by_path(
        source,
        static_model((12, 8)),
        replace={"pos_embed/embedding": resized},
    )
    x = images((12, 8), seed=7)
    assert_parity(predict(model, x), predict(reference, x), 1e-5)


def test_static_path_is_the_default():
    model = static_model(STORED)
    assert type(model.get_layer("pos_embed")).__name__ == "PositionEmbedding"
    same = static_model(STORED, position_embedding_grid=GRID)
    assert type(same.get_layer("pos_embed")).__name__ == "PositionEmbedding"
    any_size = VisionTransformer(**ARCH, input_shape=(None, None, 3))
    layer = any_size.get_layer("pos_embed")
    # Default: the official ViT's zoom, at 224 // patch_size.
    assert (layer.grid_size, layer.method) == ((56, 56), "zoom")


def token_grid_reference(model, x, blocks, prefix):
    """Block outputs from the encoder's blocks chained in a plain model.

    The tokens entering the encoder come from a sub-model of `model`; a
    second model chains the encoder's blocks on a token sequence; the
    prefix tokens are dropped and the patch tokens laid out on the
    (H/p, W/p) grid with numpy.
    """
    encoder = model.get_layer("encoder")
    tokens = predict(keras.Model(model.input, encoder.input), x)
    sequence = keras.Input((None, tokens.shape[-1]))
    chained, y = [], sequence
    for block in encoder.blocks:
        y = block(y)
        chained.append(y)
    outputs = predict(keras.Model(sequence, chained), tokens)
    grid = (x.shape[1] // 4, x.shape[2] // 4)
    return {
        k: outputs[k][:, prefix:].reshape(len(x), *grid, -1) for k in blocks
    }


@pytest.mark.parametrize("layout", ["class+registers", "gap"])
def test_intermediate_grids(layout):
    model = randomised(
        dynamic_model("bicubic", layout, num_layers=3, include_top=False),
        seed=8,
    )
    features = vit_feature_model(model, block_indices=(-1, 0))
    assert list(features.output) == ["block_0", "block_2"]
    for size in [(24, 28), STORED]:
        x = images(size, seed=9)
        maps = features.predict(x, verbose=0)
        assert sorted(maps) == ["block_0", "block_2"]
        reference = token_grid_reference(model, x, {0, 2}, LAYOUTS[layout][1])
        for k in (0, 2):
            out = maps[f"block_{k}"]
            assert out.shape == (2, size[0] // 4, size[1] // 4, 16)
            assert_parity(out, reference[k], 1e-6, f"block {k} at {size}")


def test_last_grid_with_norm_is_the_model_output():
    """norm=True: the final LayerNorm, i.e. the backbone's own tokens."""
    model = randomised(
        dynamic_model("zoom", "class+registers", include_top=False), seed=10
    )
    features = vit_feature_model(model, -1, norm=True)
    x = images((20, 12), seed=11)
    tokens = predict(model, x)  # (B, 3 + 5 * 3, D), after encoder/norm
    expected = tokens[:, 3:].reshape(2, 5, 3, 16)
    np.testing.assert_array_equal(
        to_numpy(features.predict(x, verbose=0)["block_1"]), expected
    )


@pytest.mark.slow
def test_intermediate_grids_match_the_official_vit():
    """Block outputs of the official JAX ViT (golden), prefix dropped."""
    case = golden("vit_official", "tiny_repr_32")
    reference = np.load(case / "intermediates.npz")
    x = np.load(case / "inputs_nhwc.npy")
    model = load_checkpoint(
        case / "checkpoint.npz", input_shape=(None, None, 3)
    )
    features = vit_feature_model(model, (0, 1))
    maps = features.predict(x, verbose=0)
    for k in (0, 1):
        tokens = reference[f"Transformer/encoderblock_{k}"]  # (2, 17, 48)
        expected = tokens[:, 1:].reshape(2, 4, 4, 48)
        assert_parity(maps[f"block_{k}"], expected, 1e-5, f"block {k}")


@pytest.mark.parametrize(
    "case,method,other",
    [
        (("vit_official", "tiny_repr_32", "checkpoint.npz"), "zoom", (48, 40)),
        (
            ("timm", "vit_tiny_e64_d2_224", "model.safetensors"),
            "bicubic_antialias",
            (160, 192),
        ),
    ],
    ids=["official", "timm"],
)
@pytest.mark.slow
def test_load_checkpoint_any_size_uses_the_source_method(case, method, other):
    path = golden(*case)
    model = load_checkpoint(path, input_shape=(None, None, 3))
    layer = model.get_layer("pos_embed")
    assert layer.method == method
    static = load_checkpoint(path)
    stored = tuple(static.inputs[0].shape[1:3])
    patch = model.get_layer("patch_embed").patch_size
    assert layer.grid_size == (stored[0] // patch, stored[1] // patch)
    x = images(stored, seed=12)
    np.testing.assert_array_equal(predict(model, x), predict(static, x))
    # Another size: the static load resamples the embedding once, in numpy,
    # with the same source method (weights_tools.convert).
    resampled = load_checkpoint(path, input_shape=(*other, 3))
    assert any(method in note for note in _notes(resampled))
    x = images(other, seed=13)
    assert_parity(predict(model, x), predict(resampled, x), 1e-5)


def _notes(model):
    from keras_swin.weights.loading import checkpoint_notes

    return checkpoint_notes(model)


def test_load_checkpoint_method_override():
    path = golden("vit_official", "tiny_repr_32", "checkpoint.npz")
    model = load_checkpoint(
        path,
        input_shape=(None, None, 3),
        position_embedding_resize="bicubic",
    )
    assert model.get_layer("pos_embed").method == "bicubic"


def test_weights_argument_any_size_uses_the_source_method():
    """The builders' `weights=<checkpoint>` path keeps the grid too."""
    path = golden("timm", "vit_tiny_e64_d2_224", "model.safetensors")
    config = checkpoint_config(path)
    for key in ("family", "format", "input_shape"):
        config.pop(key)
    model = keras_swin.VisionTransformer(
        **config, weights=path, input_shape=(None, None, 3)
    )
    layer = model.get_layer("pos_embed")
    assert (layer.grid_size, layer.method) == ((14, 14), "bicubic_antialias")


@pytest.mark.slow
def test_matches_hugging_face_interpolate_pos_encoding(tmp_path):
    """A live HF ViT (bicubic) at another size, logits and hidden states."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    config = transformers.ViTConfig(
        hidden_size=24,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=48,
        image_size=32,
        patch_size=8,
        num_labels=3,
    )
    torch.manual_seed(0)
    reference = transformers.ViTForImageClassification(config).eval()
    with torch.no_grad():
        for name, param in reference.named_parameters():
            if "embeddings" in name or name.endswith("bias"):
                param.normal_(0.0, 0.5)
    reference.save_pretrained(tmp_path)
    model = load_checkpoint(tmp_path, input_shape=(None, None, 3))
    assert model.get_layer("pos_embed").method == "bicubic"
    features = vit_feature_model(model, (0, 1))
    for size in [(48, 40), (24, 56)]:
        x = images(size, seed=14)
        with torch.no_grad():
            out = reference(
                torch.from_numpy(x.transpose(0, 3, 1, 2).copy()),
                interpolate_pos_encoding=True,
                output_hidden_states=True,
            )
        assert_parity(predict(model, x), out.logits.numpy(), 1e-5, "logits")
        maps = features.predict(x, verbose=0)
        for k in (0, 1):
            hidden = out.hidden_states[k + 1].numpy()[:, 1:]
            expected = hidden.reshape(2, size[0] // 8, size[1] // 8, 24)
            assert_parity(maps[f"block_{k}"], expected, 1e-5, f"block {k}")


@pytest.mark.slow
def test_keras_round_trip_of_a_dynamic_vit(tmp_path):
    model = randomised(dynamic_model("bicubic", "class+registers"), seed=15)
    path = tmp_path / "vit_any_size.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    layer = loaded.get_layer("pos_embed")
    assert (layer.grid_size, layer.num_prefix_tokens) == (GRID, 3)
    assert layer.method == "bicubic"
    for size in [STORED, (28, 12)]:
        x = images(size, seed=16)
        np.testing.assert_array_equal(predict(loaded, x), predict(model, x))
    features = vit_feature_model(loaded, 1)
    x = images((28, 12), seed=17)
    expected = vit_feature_model(model, 1).predict(x, verbose=0)["block_1"]
    np.testing.assert_array_equal(
        features.predict(x, verbose=0)["block_1"], expected
    )
    # The feature model saves and loads too.
    features.save(tmp_path / "features.keras")
    reloaded = keras.saving.load_model(tmp_path / "features.keras")
    np.testing.assert_array_equal(
        reloaded.predict(x, verbose=0)["block_1"], expected
    )


@pytest.mark.parametrize(
    "layer",
    [
        ViTPositionEmbedding((3, 4), num_prefix_tokens=2, method="zoom"),
        TokenGrid(num_prefix_tokens=1),
    ],
    ids=["ViTPositionEmbedding", "TokenGrid"],
)
def test_layer_config_round_trip(layer):
    config = layer.get_config()
    clone = type(layer).from_config(config)
    assert clone.get_config() == config


def test_token_grid_drops_prefix_tokens():
    tokens = np.arange(2 * 7 * 3, dtype="float32").reshape(2, 7, 3)
    out = to_numpy(TokenGrid(1)([tokens, np.zeros((2, 2, 3, 5), "float32")]))
    np.testing.assert_array_equal(out, tokens[:, 1:].reshape(2, 2, 3, 3))


def test_mixed_precision_dynamic_model():
    keras.config.set_dtype_policy("mixed_bfloat16")
    model = dynamic_model("bicubic_antialias", include_top=False)
    assert model.get_layer("pos_embed").embedding.dtype == "float32"
    out = model.predict(images((24, 12)), verbose=0)
    assert out.shape == (2, 1 + 6 * 3, 16)
    assert np.all(np.isfinite(out))


def test_errors():
    with pytest.raises(ValueError, match="position_embedding_resize must be"):
        dynamic_model("bilinear")
    with pytest.raises(ValueError, match="position_embedding_grid must be"):
        VisionTransformer(**ARCH, position_embedding_grid=(0, 3))
    with pytest.raises(ValueError, match="multiple of the patch size 4"):
        static_model((18, 20))
    with pytest.raises(ValueError, match="method must be one of"):
        ViTPositionEmbedding((2, 2), method="nearest")
    with pytest.raises(ValueError, match="5 tokens do not fit a 2x3"):
        ViTPositionEmbedding((2, 2))(
            [keras.ops.ones((1, 5, 4)), keras.ops.ones((1, 2, 3, 4))]
        )
    model = dynamic_model("zoom")
    with pytest.raises(ValueError, match="Block index 2 is out of range"):
        vit_feature_model(model, (0, 2))
    pooled = dynamic_model("zoom", "no_embed_class")
    with pytest.raises(ValueError, match="norm=True needs"):
        vit_feature_model(pooled, norm=True)
    swin_like = keras.Sequential(
        [keras.Input((8, 8, 3)), keras.layers.Dense(2)]
    )
    with pytest.raises(ValueError, match="not a ViT built by"):
        vit_feature_model(swin_like)
