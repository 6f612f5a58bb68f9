"""The package's floors: imports only go down, and nothing goes round.

Walks every `import` statement of `keras_swin` and `weights_tools`, at
module level and inside functions, and checks them against the floors
of docs/layout.md:

    weights_tools -> base -> layers -> models -> weights -> applications
    -> tools

A module may import its own floor and the floors below; never one above,
and never in a circle. `weights_tools` imports nothing of `keras_swin`
and works without Keras.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("keras_swin", "weights_tools")

#: Floor of each module, by the longest matching dotted prefix.
FLOORS = {
    "weights_tools": 0,
    "keras_swin": 1,  # the package's __init__ (lazy exports only)
    "keras_swin._import_hooks": 1,
    "keras_swin.utils": 1,
    "keras_swin.layers": 2,
    "keras_swin.layers.interpolation": 2,
    "keras_swin.models": 3,
    "keras_swin.imagenet": 3,
    "keras_swin.ade20k": 3,
    "keras_swin.flops": 3,
    "keras_swin.segmentation": 3,
    "keras_swin.analysis": 3,
    "keras_swin.weights": 4,
    "keras_swin.applications": 5,
    "keras_swin.cli": 6,
    "keras_swin.export": 6,
    "keras_swin.__main__": 6,
    "keras_swin.recipes": 6,
}
FLOOR_NAMES = (
    "weights_tools",
    "base",
    "layers",
    "models",
    "weights",
    "applications",
    "tools",
)

#: Imports inside functions that are there on purpose, not to dodge a
#: cycle: each keeps Keras (or another heavy module) from being imported
#: before it is needed.
DEFERRED = {
    # The command line picks the Keras backend before Keras is imported.
    ("keras_swin.cli", "keras_swin"),
    ("keras_swin.cli", "keras_swin.applications"),
    ("keras_swin.cli", "keras_swin.weights.families"),
    ("keras_swin.cli", "keras_swin.imagenet"),
    ("keras_swin.cli", "keras_swin.weights.loading"),
    ("keras_swin.cli", "keras_swin.recipes.command"),
    ("keras_swin.cli", "weights_tools.convert"),
    ("keras_swin.cli", "keras_swin.segmentation"),
    ("keras_swin.cli", "keras_swin.analysis.report"),
    ("keras_swin.cli", "keras_swin.ade20k"),
    # Exporting loads a model, after the command line chose the backend.
    ("keras_swin.export", "keras_swin.applications"),
    # Fusing attention reads the layer classes, which import Keras; the
    # command line imports this module before it picks the backend.
    ("keras_swin.export", "keras_swin.layers.attention"),
    ("keras_swin.export", "keras_swin.layers.window_attention_v2"),
    # Label tables and image loading work without Keras.
    ("keras_swin.imagenet", "keras_swin.layers.preprocessing_info"),
    # `keras-swin train --help` needs the parser, not the trainer.
    ("keras_swin.recipes.command", "keras_swin.recipes.train"),
    ("keras_swin.recipes.command", "keras_swin.recipes.segmentation_train"),
    # TensorFlow datasets and matplotlib only when a run uses them.
    ("keras_swin.recipes.train", "keras_swin.recipes.data"),
    ("keras_swin.recipes.train", "keras_swin.recipes.plots"),
    (
        "keras_swin.recipes.segmentation_train",
        "keras_swin.recipes.segmentation_data",
    ),
    ("keras_swin.recipes.segmentation_train", "keras_swin.recipes.plots"),
}


def _modules() -> dict[str, Path]:
    modules = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join(parts)] = path
    return modules


MODULES = _modules()


def _floor(module: str) -> int:
    best = max(
        (p for p in FLOORS if module == p or module.startswith(p + ".")),
        key=len,
        default=None,
    )
    if best is None:
        raise AssertionError(
            f"{module} is on no floor: add it to FLOORS in {__file__} "
            "and to docs/layout.md"
        )
    return FLOORS[best]


def _targets(module: str, node) -> list[str]:
    """The package modules an import statement names."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        if node.level:
            base = module.split(".")
            if MODULES[module].name != "__init__.py":
                base = base[:-1]
            base = base[: len(base) - node.level + 1]
            stem = ".".join(base + ([node.module] if node.module else []))
        else:
            stem = node.module
        names = [
            f"{stem}.{alias.name}"
            if f"{stem}.{alias.name}" in MODULES
            else stem
            for alias in node.names
        ]
    out = []
    for name in names:
        if name.split(".")[0] not in PACKAGES:
            continue
        while name not in MODULES and "." in name:
            name = name.rsplit(".", 1)[0]
        if name in MODULES and name != module:
            out.append(name)
    return out


def _edges() -> set[tuple[str, str, bool]]:
    """(importer, imported, at module level) for every import statement."""
    edges = set()
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        top = {id(node) for node in tree.body}
        for statement in tree.body:  # `if TYPE_CHECKING:` blocks are free
            if isinstance(statement, ast.If) and "TYPE_CHECKING" in (
                ast.unparse(statement.test)
            ):
                top |= {id(n) for n in ast.walk(statement)}
                for node in ast.walk(statement):
                    node._type_only = True
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            if getattr(node, "_type_only", False):
                continue
            for target in _targets(module, node):
                edges.add((module, target, id(node) in top))
    return edges


EDGES = _edges()


def test_the_walk_sees_the_package():
    assert {"keras_swin.applications", "weights_tools.convert"} <= set(MODULES)
    assert (
        "keras_swin.applications",
        "keras_swin.weights.loading",
        True,
    ) in EDGES
    assert len(EDGES) > 60


def test_every_module_is_on_a_floor():
    for module in MODULES:
        _floor(module)


def test_imports_only_go_down():
    upward = [
        f"{a} ({FLOOR_NAMES[_floor(a)]}) imports {b} ({FLOOR_NAMES[_floor(b)]})"
        for a, b, _ in sorted(EDGES)
        if _floor(b) > _floor(a)
    ]
    assert not upward, "\n".join(upward)


def test_weights_tools_never_imports_keras_swin():
    found = [
        f"{a} imports {b}"
        for a, b, _ in EDGES
        if a.startswith("weights_tools") and b.startswith("keras_swin")
    ]
    assert not found, found


def test_no_import_cycles():
    graph: dict[str, set[str]] = {}
    for a, b, _ in EDGES:
        graph.setdefault(a, set()).add(b)
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles = []

    def visit(node):
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt) :] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    assert not cycles, "\n".join(" -> ".join(c) for c in cycles)


def test_function_level_imports_are_only_the_deferred_ones():
    inside = {(a, b) for a, b, top in EDGES if not top}
    unexplained = sorted(inside - DEFERRED)
    assert not unexplained, (
        "imports inside functions without a reason in DEFERRED "
        f"(move them to the top of the module): {unexplained}"
    )
    stale = sorted(DEFERRED - inside)
    assert not stale, f"DEFERRED lists imports that no longer exist: {stale}"


def test_the_walk_catches_an_upward_import(tmp_path, monkeypatch):
    """The checks above fail on the defects they are for."""
    module = "weights_tools.convert"
    source = MODULES[module].read_text(encoding="utf-8")
    planted = tmp_path / "convert.py"
    planted.write_text(
        source + "\n\ndef _bad():\n    from keras_swin.models import swin\n",
        encoding="utf-8",
    )
    monkeypatch.setitem(MODULES, module, planted)
    edges = _edges()
    assert (module, "keras_swin.models.swin", False) in edges
    assert _floor("keras_swin.models.swin") > _floor(module)


@pytest.mark.parametrize(
    "code",
    [
        # Reading, inspecting and converting a checkpoint: no Keras.
        "from weights_tools import convert_checkpoint, checkpoint_config\n"
        "c = convert_checkpoint('{pth}')\n"
        "assert c.family == 'swin' and c.weights.weights\n"
        "assert checkpoint_config('{pth}')['depths'] == (2, 2, 2, 2)\n",
        # The command line's `info` works the same way, and `convert` to
        # the neutral .safetensors file.
        "from keras_swin.cli import main\n"
        "assert main(['info', '{pth}']) == 0\n"
        "import tempfile, os\n"
        "out = os.path.join(tempfile.mkdtemp(), 'c.safetensors')\n"
        "assert main(['convert', '{pth}', out]) == 0\n"
        "from weights_tools import convert_checkpoint\n"
        "assert convert_checkpoint(out).format == 'official_swin'\n",
    ],
)
def test_weights_tools_works_without_keras(code):
    pth = ROOT / "tests/golden/swin_official/tiny_w4_64/checkpoint.pth"
    blocker = (
        "import sys\n"
        "for name in ('keras', 'tensorflow', 'jax', 'torch'):\n"
        "    sys.modules[name] = None  # any import of them fails\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", blocker + code.format(pth=pth)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]


def test_the_wheel_ships_the_two_packages_and_no_tools():
    """The benchmark and the golden harness stay in the repository."""
    import fnmatch

    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))
    include = config["tool"]["setuptools"]["packages"]["find"]["include"]
    # setuptools' find: folders with an __init__.py matching a pattern.
    packages = [p.parent.name for p in ROOT.glob("*/__init__.py")]
    shipped = {
        name
        for name in packages
        if any(fnmatch.fnmatch(name, pattern) for pattern in include)
    }
    assert "benchmarks" in packages  # a package, but not a shipped one
    assert shipped == set(PACKAGES)
    tools = [
        module
        for module, path in MODULES.items()
        if "benchmark" in path.name or "golden" in path.name
    ]
    assert not tools, tools
