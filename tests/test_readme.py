"""Every Python snippet and keras-swin command in the README and docs/ runs."""

import re
import shlex
from pathlib import Path

import keras
import pytest
from helpers import BACKEND

from keras_swin.cli import main

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
#: Every document whose snippets and commands must run.
DOCS = {
    path.relative_to(ROOT).as_posix(): path.read_text()
    for path in [
        ROOT / "README.md",
        *sorted((ROOT / "docs").glob("*.md")),
        ROOT / "benchmarks" / "README.md",
    ]
}
PYTHON = [
    (f"{name} python block {index}", block)
    for name, text in DOCS.items()
    for index, block in enumerate(
        re.findall(r"```python\n(.*?)```", text, re.S)
    )
]
COMMANDS = [
    line.strip()
    for text in DOCS.values()
    for block in re.findall(r"```bash\n(.*?)```", text, re.S)
    for line in block.splitlines()
    if line.strip().startswith("keras-swin ")
]
#: `python tests/golden_harness.py ...` lines of the bash blocks.
HARNESS_COMMANDS = [
    line.strip()
    for text in DOCS.values()
    for block in re.findall(r"```bash\n(.*?)```", text, re.S)
    for line in block.splitlines()
    if line.strip().startswith("python tests/golden_harness.py")
]


@pytest.fixture
def in_checkout_copy(tmp_path, monkeypatch):
    """A working folder whose tests/ is the repository's."""
    (tmp_path / "tests").symlink_to(ROOT / "tests")
    monkeypatch.chdir(tmp_path)


def test_readme_has_snippets():
    assert len(PYTHON) >= 4 and len(COMMANDS) >= 4
    assert HARNESS_COMMANDS  # docs/exactness.md


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


@pytest.mark.parametrize(
    ("where", "block"), PYTHON, ids=[where for where, _ in PYTHON]
)
def test_python_snippet_prints_what_the_docs_say(
    where, block, in_checkout_copy, capsys
):
    """Every line a documented snippet prints is the value its comments
    give."""
    exec(compile(block, where, "exec"), {"__name__": "readme"})
    keras.backend.clear_session(free_memory=False)
    printed = [
        " ".join(line.split())
        for line in capsys.readouterr().out.splitlines()
        if line.strip()
    ]
    if "print(" in block:
        assert printed, f"{where} printed nothing"
    documented = _documented_output(block)
    for line in printed:
        # A whole value, not part of another number or word.
        pattern = rf"(?<![\w.]){re.escape(line)}(?![\w.])"
        assert re.search(pattern, documented), (
            f"{where} printed {line!r}, which its comments do not show"
        )


@pytest.mark.parametrize("command", COMMANDS)
def test_command_runs(command, in_checkout_copy):
    argv = shlex.split(command)[1:]
    if argv[0] == "--backend":
        # The backend of this process is fixed; the flag itself is tested
        # in test_cli.py.
        argv = argv[2:]
    assert main(argv) == 0


@pytest.mark.skipif(
    BACKEND != "torch",
    reason="the documented harness command over every golden case, run "
    "once (torch leg); each leg checks every case's parity on its own "
    "backend in the parity tests (tests/test_parity_official.py, "
    "tests/weights_tools/)",
)
@pytest.mark.parametrize("command", HARNESS_COMMANDS)
def test_golden_harness_command_passes(command, in_checkout_copy):
    from golden_harness import main as harness_main

    argv = shlex.split(command, comments=True)[2:]
    assert harness_main(argv) == 0


def test_benchmarks_readme_shows_the_latest_report():
    """benchmarks/README.md shows benchmarks/results/latest.md verbatim: a
    re-run (or a --merge) must update both."""
    latest = (ROOT / "benchmarks" / "results" / "latest.md").read_text()
    assert latest.strip() in DOCS["benchmarks/README.md"]


def test_readme_is_short_and_links_every_doc():
    """The README is the pitch, the commands, the use example, the
    variants and links; the depth lives in docs/."""
    assert len(README.splitlines()) <= 300
    for name in DOCS:
        if name != "README.md":
            assert f"({name})" in README, f"README does not link {name}"
