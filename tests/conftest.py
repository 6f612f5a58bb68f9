"""Shared fixtures. One Keras backend per pytest process (KERAS_BACKEND)."""

from __future__ import annotations

import os

import keras
import numpy as np
import pytest
from helpers import BACKEND


@pytest.fixture(autouse=True)
def _float32_policy():
    """Every test starts and ends with the float32 policy."""
    keras.config.set_dtype_policy("float32")
    yield
    keras.config.set_dtype_policy("float32")


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def pytest_report_header(config):
    return (
        f"keras {keras.__version__}, backend {BACKEND}, "
        f"KERAS_BACKEND={os.environ.get('KERAS_BACKEND')}"
    )
