"""Data-parallel training on 2 simulated CPU devices equals 1 device.

JAX: `keras.distribution.DataParallel` over 2 host devices
(`--xla_force_host_platform_device_count=2`). TensorFlow:
`tf.distribute.MirroredStrategy` over 2 logical CPUs. Each runs in a fresh
interpreter, because the device count is fixed when the backend starts;
each runs in its own backend's leg of the suite.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
from helpers import BACKEND

_COMMON = textwrap.dedent(
    """
    import numpy as np
    import keras
    from keras_swin import SwinTransformer
    from keras_swin.recipes import RECIPES
    from keras_swin.recipes.train import compile_model

    # SGD (the ViT fine-tuning recipe, with its clipping): its update is
    # linear in the gradient, so 1 and 2 devices must agree to rounding.
    # (Adam's first steps are sign(g) * lr, which turns rounding noise in
    # near-zero gradients into full-size differences.)
    RECIPE = RECIPES["vit_finetune"].replace(total_steps=4, warmup_steps=1)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(16, 32, 32, 3)).astype("float32")
    Y = np.eye(5, dtype="float32")[rng.integers(0, 5, 16)]

    def build():
        keras.utils.set_random_seed(0)
        model = SwinTransformer(
            embed_dim=8, depths=(1, 1), num_heads=(1, 2), window_size=4,
            input_shape=(32, 32, 3), classes=5, classifier_activation=None,
            drop_path_rate=0.0,
        )
        return compile_model(model, RECIPE, batch_size=8)

    def train(model):
        model.fit(X, Y, batch_size=8, epochs=2, shuffle=False, verbose=0)
        return [np.array(v) for v in model.trainable_variables]

    def compare(single, parallel, start):
        moved = max(np.abs(a - b).max() for a, b in zip(single, start))
        diff = max(np.abs(a - b).max() for a, b in zip(single, parallel))
        print(f"moved {moved:.3g} diff {diff:.3g}")
        assert moved > 1e-3, moved
        assert diff < 1e-5, diff
    """
)

_JAX = _COMMON + textwrap.dedent(
    """
    import jax
    assert len(jax.devices()) == 2, jax.devices()
    reference = build()
    start = [np.array(v) for v in reference.trainable_variables]
    single = train(reference)

    keras.distribution.set_distribution(
        keras.distribution.DataParallel(devices=jax.devices())
    )
    model = build()
    kernel = model.get_layer("head").kernel.value
    assert len(kernel.sharding.device_set) == 2  # replicated on both
    parallel = train(model)
    compare(single, parallel, start)

    # keras-swin train on 2 devices: the batch splits, and the padded last
    # evaluation batches (143 and 359 images) still count every image once.
    import tempfile
    from keras_swin.recipes.train import train
    keras.distribution.set_distribution(None)
    metrics = train(epochs=1, steps_per_epoch=2, output=tempfile.mkdtemp(),
                    verbose=0, attention_images=2)
    assert metrics["replicas"] == 2, metrics["replicas"]
    assert metrics["test_examples"] == 359, metrics["test_examples"]
    assert keras.distribution.distribution() is None  # restored
    print("OK data parallel on", len(jax.devices()), "devices")
    """
)

_TF = _COMMON + textwrap.dedent(
    """
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2
    )
    reference = build()
    start = [np.array(v) for v in reference.trainable_variables]
    single = train(reference)

    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    assert strategy.num_replicas_in_sync == 2
    with strategy.scope():
        model = build()
    assert "Mirrored" in type(model.get_layer("head").kernel.value).__name__
    # Keras alone would clip each replica's share: our optimizer clips the
    # summed gradient, like a single device.
    assert type(model.optimizer).__name__ == "ReplicaClippedSGD"
    parallel = train(model)
    compare(single, parallel, start)
    print("OK mirrored on", strategy.num_replicas_in_sync, "replicas")
    """
)


def _run(code: str, backend: str, extra_env: dict) -> str:
    env = {**os.environ, "KERAS_BACKEND": backend, **extra_env}
    result = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return result.stdout


@pytest.mark.skipif(BACKEND != "jax", reason="JAX-only: the JAX run tests it")
def test_jax_data_parallel_on_two_cpu_devices():
    flags = os.environ.get("XLA_FLAGS", "")
    out = _run(
        _JAX,
        "jax",
        {
            "XLA_FLAGS": f"{flags} --xla_force_host_platform_device_count=2",
            "JAX_PLATFORMS": "cpu",
        },
    )
    assert "OK data parallel on 2 devices" in out


@pytest.mark.skipif(
    BACKEND != "tensorflow", reason="TensorFlow-only: the TF run tests it"
)
def test_tensorflow_mirrored_strategy_on_two_logical_cpus():
    out = _run(_TF, "tensorflow", {})
    assert "OK mirrored on 2 replicas" in out
