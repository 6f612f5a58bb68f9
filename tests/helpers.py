"""Helpers shared by the tests (import as `helpers`)."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np

GOLDEN = Path(__file__).parent / "golden"
BACKEND = keras.backend.backend()


def golden(*parts: str) -> Path:
    """Path of a fixture under tests/golden."""
    path = GOLDEN.joinpath(*parts)
    if not path.exists():
        raise FileNotFoundError(f"missing test fixture {path}")
    return path


def to_numpy(x) -> np.ndarray:
    """Backend tensor -> numpy (detached on torch)."""
    return np.asarray(keras.ops.convert_to_numpy(x))


def max_abs_diff(a, b) -> float:
    a, b = to_numpy(a), to_numpy(b)
    assert a.shape == b.shape, (a.shape, b.shape)
    return float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64))))


def assert_parity(actual, reference, tol: float = 1e-5, what: str = ""):
    """Asserts |actual - reference| <= tol * max(1, max|reference|)."""
    reference = to_numpy(reference)
    bound = tol * max(1.0, float(np.max(np.abs(reference))))
    diff = max_abs_diff(actual, reference)
    assert diff <= bound, f"{what}: max abs diff {diff:.3g} > {bound:.3g}"
    return diff


def predict(model, x) -> np.ndarray:
    """One compiled forward pass (jit on JAX, tf.function on TensorFlow).

    Cheaper than an eager call on JAX, where every op of an eager call is
    compiled separately for each new shape.
    """
    return to_numpy(model.predict(x, verbose=0, batch_size=len(x)))


def count_params_without_init(builder, **kwargs) -> int:
    """Parameter count of a real-size model, its weights never allocated.

    Inside `keras.StatelessScope` Keras declares variables (shapes, dtypes)
    but defers their initialisation, so the 632M-parameter ViT-H costs no
    memory or random-number kernels. The count reads the same variable
    shapes a materialised model has. `clear_session` then drops the
    deferred variables instead of initialising them later.
    """
    with keras.StatelessScope(initialize_variables=False):
        model = builder(**kwargs)
        assert all(
            getattr(v, "_initializer", None) is not None for v in model.weights
        ), "weights were materialised"
        count = model.count_params()
    keras.backend.clear_session(free_memory=False)
    return count


def golden_inputs(*parts: str) -> np.ndarray:
    """NHWC inputs of a timm / Hugging Face golden case, regenerated.

    Those cases drew their inputs with `torch.randn` from a recorded seed
    (`inputs.json`); regenerating them saves 1.2 MB per case, and the
    sha256 of the result must equal the one recorded from the golden file
    (`golden_harness.case_inputs` checks it).
    """
    from golden_harness import case_inputs

    golden(*parts, "inputs.json")
    return case_inputs(golden(*parts))
