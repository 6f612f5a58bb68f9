"""`weights=` with a `.weights.h5` or `.keras` of another architecture.

Before: the `.weights.h5` guard compared only the number of weights, so a
ViT saved with 2 heads loaded silently into a 4-head model (same shapes,
other heads), and a file with other shapes failed deep inside Keras.
"""

import h5py
import numpy as np
import pytest
from helpers import max_abs_diff, predict

import keras_swin as ks

VIT = dict(
    patch_size=16,
    hidden_size=16,
    num_layers=2,
    mlp_dim=32,
    input_shape=(32, 32, 3),
    classes=3,
)
SWIN = dict(
    embed_dim=8,
    depths=(2, 2),
    num_heads=(1, 2),
    window_size=4,
    input_shape=(32, 32, 3),
    classes=3,
)


def _images(seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((2, 32, 32, 3)).astype("float32")


def _randomized(model, seed=1):
    rng = np.random.default_rng(seed)
    for w in model.weights:
        w.assign(rng.standard_normal(w.shape).astype("float32") * 0.2)
    return model


@pytest.fixture
def vit2(tmp_path):
    model = _randomized(ks.VisionTransformer(num_heads=2, **VIT))
    path = str(tmp_path / "vit2.weights.h5")
    model.save_weights(path)
    return model, path


def test_same_architecture_loads(vit2):
    model, path = vit2
    again = ks.VisionTransformer(num_heads=2, weights=path, **VIT)
    assert (
        max_abs_diff(predict(again, _images()), predict(model, _images())) == 0
    )


def test_vit_two_head_weights_refuse_a_four_head_model(vit2):
    _, path = vit2
    with pytest.raises(
        ValueError,
        match=r"encoder/blocks_0/attn: the weights were saved with "
        r"num_heads=2, but this layer has num_heads=4",
    ):
        ks.VisionTransformer(num_heads=4, weights=path, **VIT)
    # The record is in the file, beside the layer's variables, and Keras'
    # own load_weights checks it too.
    with h5py.File(path, "r") as handle:
        group = handle["layers/vi_t_encoder/blocks/vi_t_encoder_block/attn"]
        assert int(group["vars/num_heads"][()]) == 2
    model = ks.VisionTransformer(num_heads=4, **VIT)
    with pytest.raises(ValueError, match="saved with num_heads=2"):
        model.load_weights(path)


@pytest.mark.parametrize(
    "change, match",
    [
        (
            dict(mlp_dim=64),
            r"encoder/blocks_0/mlp/fc1/kernel has shape \(16, 32\) in the "
            r"file, \(16, 64\) in the model \(and 5 more\)",
        ),
        (
            dict(num_layers=1),
            r"encoder/blocks_1/[\w/]+ \(\d weights\) is in the file but not in "
            r"the model",
        ),
        (
            dict(num_layers=3),
            r"encoder/blocks_2/norm1/gamma is in the model .* but not in "
            r"the file",
        ),
        (
            dict(classes=4),
            r"head/kernel has shape \(16, 3\) in the file, \(16, 4\)",
        ),
    ],
)
def test_other_shapes_name_the_first_difference(vit2, change, match):
    _, path = vit2
    with pytest.raises(ValueError, match="saved from another architecture"):
        ks.VisionTransformer(num_heads=2, weights=path, **{**VIT, **change})
    with pytest.raises(ValueError, match=match):
        ks.VisionTransformer(num_heads=2, weights=path, **{**VIT, **change})


def test_swin_weights_file_round_trip_and_heads(tmp_path):
    model = _randomized(ks.SwinTransformer(**SWIN))
    path = str(tmp_path / "swin.weights.h5")
    model.save_weights(path)
    again = ks.SwinTransformer(**SWIN, weights=path)
    assert (
        max_abs_diff(predict(again, _images()), predict(model, _images())) == 0
    )
    with pytest.raises(
        ValueError,
        match=r"layers_0/blocks_0/attn/relative_position_bias_table has "
        r"shape \(49, 1\) in the file, \(49, 2\) in the model",
    ):
        ks.SwinTransformer(**{**SWIN, "num_heads": (2, 2)}, weights=path)


def test_keras_file_with_other_heads_is_refused(tmp_path):
    path = str(tmp_path / "vit2.keras")
    ks.VisionTransformer(num_heads=2, **VIT).save(path)
    with pytest.raises(
        ValueError, match=r"layer 'encoder' has num_heads=2 there, 4"
    ):
        ks.VisionTransformer(num_heads=4, weights=path, **VIT)
    same = ks.VisionTransformer(num_heads=2, weights=path, **VIT)
    assert same.get_layer("encoder").num_heads == 2


def test_files_without_the_record_still_load(vit2, tmp_path):
    # A file written before the record existed: drop the entries.
    model, path = vit2
    with h5py.File(path, "a") as handle:
        names = []
        handle.visit(
            lambda n: names.append(n) if n.endswith("vars/num_heads") else None
        )
        assert len(names) == 2
        for name in names:
            del handle[name]
    again = ks.VisionTransformer(num_heads=2, weights=path, **VIT)
    assert (
        max_abs_diff(predict(again, _images()), predict(model, _images())) == 0
    )
