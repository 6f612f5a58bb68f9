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


def _documented_output(block: str) -> str:
    """The block's comments, joined: where the README states its output.

    A printed value is documented either after the `print(...)` on its
    line (`print(n)  # 28288354, as ...`) or on the comment lines below
    it, which may wrap (`# {'a': 1,` / `#  'b': 2}`); joining every
    comment with single spaces covers both forms.
    """
    comments = [
        line.split("#", 1)[1].strip()
        for line in block.splitlines()
        if "#" in line
    ]
    return " ".join(" ".join(comments).split())


@pytest.mark.parametrize("index", range(len(PYTHON)))
def test_python_snippet_prints_what_the_readme_says(
    index, in_checkout_copy, capsys
):
    """Every line a README snippet prints is the value its comments give."""
    block = PYTHON[index]
    exec(
        compile(block, f"README.md python block {index}", "exec"),
        {"__name__": "readme"},
    )
    keras.backend.clear_session(free_memory=False)
    printed = [
        " ".join(line.split())
        for line in capsys.readouterr().out.splitlines()
        if line.strip()
    ]
    if "print(" in block:
        assert printed, f"README python block {index} printed nothing"
    documented = _documented_output(block)
    for line in printed:
        # A whole value, not part of another number or word.
        pattern = rf"(?<![\w.]){re.escape(line)}(?![\w.])"
        assert re.search(pattern, documented), (
            f"README python block {index} printed {line!r}, which its "
            "comments do not show"
        )


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
