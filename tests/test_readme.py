"""Every Python snippet and keras-swin command in the README runs."""

import re
import shlex
from pathlib import Path

import keras
import pytest

from keras_swin.cli import main

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
PYTHON = re.findall(r"```python\n(.*?)```", README, re.S)
COMMANDS = [
    line.strip()
    for block in re.findall(r"```bash\n(.*?)```", README, re.S)
    for line in block.splitlines()
    if line.strip().startswith("keras-swin ")
]


@pytest.fixture
def in_checkout_copy(tmp_path, monkeypatch):
    """A working folder whose tests/ is the repository's."""
    (tmp_path / "tests").symlink_to(ROOT / "tests")
    monkeypatch.chdir(tmp_path)


def test_readme_has_snippets():
    assert len(PYTHON) >= 4 and len(COMMANDS) >= 4


@pytest.mark.parametrize("index", range(len(PYTHON)))
def test_python_snippet_runs(index, in_checkout_copy):
    exec(
        compile(PYTHON[index], f"README.md python block {index}", "exec"),
        {"__name__": "readme"},
    )
    keras.backend.clear_session(free_memory=False)


@pytest.mark.parametrize("command", COMMANDS)
def test_command_runs(command, in_checkout_copy):
    argv = shlex.split(command)[1:]
    if argv[0] == "--backend":
        # The backend of this process is fixed; the flag itself is tested
        # in test_cli.py.
        argv = argv[2:]
    assert main(argv) == 0


def test_readme_shows_the_latest_benchmark_report():
    """The README's "Latest results" are benchmarks/results/latest.md,
    verbatim: a re-run (or a --merge) must update both."""
    latest = (ROOT / "benchmarks" / "results" / "latest.md").read_text()
    assert latest.strip() in README
