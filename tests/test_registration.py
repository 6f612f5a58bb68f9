"""`import keras_swin` registers the layers for `keras.saving.load_model`.

Before: a fresh process that imported keras_swin and then loaded a
`.keras` file of this package failed with "Could not locate class
'PatchEmbed'": the layers registered only when `keras_swin.layers` was
imported. And `import keras_swin` must not import Keras (the command line
picks the backend afterwards).
"""

import os
import subprocess
import sys

import numpy as np
import pytest
from helpers import BACKEND, predict

import keras_swin as ks

LOAD = """
import sys
import numpy as np
{imports}
model = keras.saving.load_model(sys.argv[1])
out = keras.ops.convert_to_numpy(model(np.load(sys.argv[2])))
np.save(sys.argv[3], out)
print(type(model.get_layer("patch_embed")).__module__)
"""


_TORCH_LEG = pytest.mark.skipif(
    BACKEND != "torch",
    reason="import order only, backend-independent: a fresh process each "
    "(tens of seconds on JAX and TensorFlow); runs in the torch leg",
)


def _run(code, *args):
    env = dict(os.environ, KERAS_BACKEND=BACKEND, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run(
        [sys.executable, "-c", code, *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    folder = tmp_path_factory.mktemp("registration")
    model = ks.SwinTransformer(
        embed_dim=8,
        depths=(2,),
        num_heads=(1,),
        window_size=4,
        input_shape=(16, 16, 3),
        classes=3,
    )
    x = np.random.default_rng(0).standard_normal((2, 16, 16, 3))
    x = x.astype("float32")
    path = folder / "tiny.keras"
    model.save(path)
    np.save(folder / "x.npy", x)
    return path, folder / "x.npy", predict(model, x)


@pytest.mark.parametrize(
    "imports",
    [
        "import keras_swin\nimport keras",
        # The import orders are backend-independent: a fresh process of
        # each leg's backend loads the file once (above); the other
        # orders run in the torch leg only.
        pytest.param("import keras\nimport keras_swin", marks=_TORCH_LEG),
        # A mere look-up of keras must not disarm the hook.
        pytest.param(
            "import importlib.util, keras_swin\n"
            "assert importlib.util.find_spec('keras') is not None\n"
            "import keras",
            marks=_TORCH_LEG,
        ),
    ],
    ids=["keras_swin_first", "keras_first", "find_spec_first"],
)
def test_keras_file_loads_after_import_keras_swin(saved, tmp_path, imports):
    path, x, expected = saved
    out = tmp_path / "out.npy"
    result = _run(LOAD.format(imports=imports), path, x, out)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().endswith("keras_swin.layers.patch_embed")
    np.testing.assert_allclose(np.load(out), expected, atol=1e-5)


def test_import_keras_swin_does_not_import_keras():
    code = (
        "import sys, keras_swin\n"
        "print(sorted(m for m in ('keras', 'tensorflow', 'torch', 'jax') "
        "if m in sys.modules))\n"
        "print(type(keras_swin._HOOK).__name__ in "
        "[type(f).__name__ for f in sys.meta_path])"
    )
    result = _run(code)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split() == ["[]", "True"]


def test_hook_removes_itself_and_restores_the_loader():
    code = (
        "import sys, keras_swin, keras\n"
        "print(keras_swin._HOOK in sys.meta_path)\n"
        "print(type(keras.__loader__).__name__, "
        "type(keras.__spec__.loader).__name__)\n"
        "print('keras_swin>PatchEmbed' in keras.saving.get_custom_objects())"
    )
    result = _run(code)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert lines[0] == "False"
    assert "_WrappedLoader" not in lines[1]
    assert lines[2] == "True"


@_TORCH_LEG
@pytest.mark.parametrize(
    "first",
    [
        "keras_swin.models",
        "keras_swin.models.swin",
        "keras_swin.layers",
        "keras_swin.layers.attention",
        "keras_swin.weights.families",
    ],
)
def test_a_submodule_imported_before_keras_still_registers_everything(first):
    """Before: `import keras_swin.models` as a process's first import ran
    the registration while `models/swin.py` was half imported, so the
    UperNet import failed and a warning said the layers were not
    registered; now registration waits for the package's end."""
    code = (
        "import warnings\n"
        "warnings.simplefilter('error')\n"
        f"import {first}\n"
        "import keras\n"
        "names = keras.saving.get_custom_objects()\n"
        "print(all(f'keras_swin>{n}' in names for n in ('UperNet', "
        "'SwinBackbone', 'SwinBackboneV2', 'WindowAttentionV2', "
        "'PatchEmbed')))"
    )
    result = _run(code)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split() == ["True"]
