"""Saved models and weights: .keras round trips, .weights.h5 across backends."""

import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
from helpers import BACKEND, golden, max_abs_diff, predict

import keras_swin as ks
from keras_swin import load_checkpoint
from weights_tools.convert import checkpoint_config

BACKENDS = ("tensorflow", "jax", "torch")
SWIN = golden("swin_official", "tiny_w7_224")

_RUN_OTHER_BACKEND = textwrap.dedent("""
    import sys
    import numpy as np
    import keras_swin as ks
    from weights_tools.convert import checkpoint_config

    checkpoint, weights, images, out = sys.argv[1:5]
    config = checkpoint_config(checkpoint)
    config.pop("family"), config.pop("format")
    model = ks.SwinTransformer(**config, classifier_activation=None,
                               weights=weights)
    x = np.load(images)
    np.save(out, model.predict(x, verbose=0, batch_size=len(x)))
""")


def test_keras_file_round_trip_is_exact(tmp_path):
    model = load_checkpoint(
        SWIN / "checkpoint.pth", input_shape=(None, None, 3)
    )
    path = tmp_path / "swin.keras"
    model.save(path)
    revived = keras.saving.load_model(path)
    # Equal up to tuples read back as lists.
    assert json.dumps(revived.get_config(), sort_keys=True) == json.dumps(
        model.get_config(), sort_keys=True
    )
    x = np.load(SWIN / "inputs_nhwc.npy")
    for images in (x, x[:, :150, :190]):
        assert (
            max_abs_diff(predict(revived, images), predict(model, images))
            == 0.0
        )


def test_vit_keras_file_round_trip_is_exact(tmp_path):
    folder = golden("vit_official", "tiny_repr_32")
    model = load_checkpoint(folder / "checkpoint.npz")
    model.save(tmp_path / "vit.keras")
    revived = keras.saving.load_model(tmp_path / "vit.keras")
    x = np.load(folder / "inputs_nhwc.npy")
    assert max_abs_diff(predict(revived, x), predict(model, x)) == 0.0


@pytest.mark.skipif(
    BACKEND != "torch",
    reason="saves on this backend and loads in fresh processes of the two "
    "others (tens of seconds): run once, in the torch leg; each backend's "
    "own save and load is test_keras_file_round_trip_is_exact",
)
def test_weights_h5_gives_the_same_logits_on_every_backend(tmp_path):
    model = load_checkpoint(SWIN / "checkpoint.pth")
    weights = tmp_path / "swin.weights.h5"
    model.save_weights(weights)
    images = SWIN / "inputs_nhwc.npy"
    results = {BACKEND: predict(model, np.load(images))}
    for other in BACKENDS:
        if other == BACKEND:
            continue
        out = tmp_path / f"{other}.npy"
        env = dict(os.environ, KERAS_BACKEND=other)
        done = subprocess.run(
            [
                sys.executable,
                "-c",
                _RUN_OTHER_BACKEND,
                str(SWIN / "checkpoint.pth"),
                str(weights),
                str(images),
                str(out),
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        results[other] = np.load(out)
    assert sorted(results) == sorted(BACKENDS)
    reference = np.load(SWIN / "logits.npy")
    for name, logits in results.items():
        assert max_abs_diff(logits, reference) < 1e-5, name
        for other, logits2 in results.items():
            assert max_abs_diff(logits, logits2) < 1e-5, (name, other)


def test_weights_h5_rejects_another_architecture(tmp_path):
    config = checkpoint_config(SWIN / "checkpoint.pth")
    config.pop("family"), config.pop("format")
    model = load_checkpoint(SWIN / "checkpoint.pth")
    model.save_weights(tmp_path / "swin.weights.h5")
    config["depths"] = (2, 2, 2, 1)
    with pytest.raises(
        ValueError,
        match=r"saved from another architecture: layers_3/blocks_1/\S+ "
        r"\(\d weights\) is in the file but not in the model",
    ):
        ks.SwinTransformer(**config, weights=tmp_path / "swin.weights.h5")
