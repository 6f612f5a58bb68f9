"""The command line's guard rails: argument checks, one-line errors,
output checks before the work, temporaries of killed runs, start-up
imports, quiet TensorFlow and help texts."""

import argparse
import errno
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from helpers import BACKEND, golden

from keras_swin import utils
from keras_swin.cli import build_parser, error_message, main

ROOT = Path(__file__).resolve().parents[1]
SWIN = golden("swin_official", "tiny_w4_64", "checkpoint.pth")
VIT = golden("vit_official", "tiny_repr_32")
TIMM_SWIN = golden("timm", "swin_tiny_e24_w7_224", "model.safetensors")
HAS_TENSORFLOW = importlib.util.find_spec("tensorflow") is not None


def _env(**changes) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.update(changes)
    return env


def _one_line(text: str, command: str) -> str:
    """The single error line of `text`, checked."""
    assert "Traceback" not in text, text
    lines = text.splitlines()
    assert len(lines) == 1, text
    assert lines[0].startswith(f"keras-swin {command}: "), text
    return lines[0]


# -- argument checks ------------------------------------------------------

POSITIVE = "must be a positive integer, got"
BAD_ARGUMENTS = [
    (["train", "--epochs", "-1"], f"argument --epochs: {POSITIVE} -1"),
    (["train", "--epochs", "0"], f"argument --epochs: {POSITIVE} 0"),
    (["train", "--epochs", "two"], f"argument --epochs: {POSITIVE} 'two'"),
    (["train", "--batch-size", "0"], f"argument --batch-size: {POSITIVE} 0"),
    (["train", "--image-size", "0"], f"argument --image-size: {POSITIVE} 0"),
    (
        ["train", "--steps-per-epoch", "0"],
        f"argument --steps-per-epoch: {POSITIVE} 0",
    ),
    (
        ["train", "--steps-per-epoch", "-3"],
        f"argument --steps-per-epoch: {POSITIVE} -3",
    ),
    (
        ["train", "--gradient-accumulation-steps", "0"],
        f"argument --gradient-accumulation-steps: {POSITIVE} 0",
    ),
    (["train", "--seed", "-1"], "must be an integer >= 0, got -1"),
    (
        ["convert", "a.pth", "b.keras", "--image-size", "64", "64", "64"],
        "argument --image-size: takes H or H W (1 or 2 values), got 3",
    ),
    (
        ["convert", "a.pth", "b.keras", "--image-size", "0"],
        f"argument --image-size: {POSITIVE} 0",
    ),
    (
        ["convert", "a.pth", "b.keras", "--window-size", "0"],
        f"argument --window-size: {POSITIVE} 0",
    ),
    (
        ["convert", "a.pth", "b.keras", "--classes", "-1"],
        "argument --classes: must be an integer >= 0, got -1",
    ),
    (["info", "a.pth", "--num-heads", "4", "0"], f"--num-heads: {POSITIVE} 0"),
    (
        ["predict", "x.png", "--weights", "w", "--top", "0"],
        f"argument --top: {POSITIVE} 0",
    ),
    (
        ["parity", "--tolerance", "-1"],
        "argument --tolerance: must be a number >= 0, got '-1'",
    ),
]


@pytest.mark.parametrize(("argv", "message"), BAD_ARGUMENTS)
def test_bad_arguments_are_refused_before_anything_runs(
    argv, message, tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    if argv[0] == "train":
        argv = [*argv, "--output", str(tmp_path / "run")]
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    assert message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []  # no run folder, no runs/


def test_image_size_takes_one_or_two_values():
    parser = build_parser()
    square = parser.parse_args(
        ["convert", "a", "b.keras", "--image-size", "64"]
    )
    assert square.image_size == (64, 64)
    wide = ["convert", "a", "b.keras", "--image-size", "64", "96"]
    assert parser.parse_args(wide).image_size == (64, 96)
    assert parser.parse_args(["convert", "a", "b.keras"]).image_size is None
    # 0 heads for a ViT head is a valid request (pooled features).
    assert (
        parser.parse_args(["convert", "a", "b.keras", "--classes", "0"]).classes
        == 0
    )


def test_train_output_that_is_a_file_fails_before_training(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    file = tmp_path / "results"
    file.write_text("not a folder")
    assert main(["train", "--output", str(file)]) == 1
    line = _one_line(capsys.readouterr().err, "train")
    assert f"{file} is a file, not a folder" in line
    assert main(["train", "--output", str(file / "run")]) == 1
    line = _one_line(capsys.readouterr().err, "train")
    assert f"{file} is a file, not a folder" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results"]


def test_benchmark_output_that_is_a_file_fails_before_measuring(
    tmp_path, monkeypatch, capsys
):
    from benchmarks import bench

    def refuse(**kwargs):
        raise AssertionError("measured before checking --output")

    monkeypatch.setattr(bench, "run", refuse)
    file = tmp_path / "results"
    file.write_text("not a folder")
    assert main(["benchmark", "--output", str(file)]) == 1
    line = _one_line(capsys.readouterr().err, "benchmark")
    assert f"{file} is a file, not a folder" in line


# -- one error boundary ----------------------------------------------------


@pytest.fixture
def no_conversion(monkeypatch):
    """Fails the test if a conversion starts (the output check is first)."""
    import weights_tools.convert as convert

    def refuse(*args, **kwargs):
        raise AssertionError("the conversion ran before the output check")

    monkeypatch.setattr(convert, "convert_checkpoint", refuse)


def test_convert_output_that_is_a_folder(tmp_path, capsys, no_conversion):
    folder = tmp_path / "model.keras"
    folder.mkdir()
    assert main(["convert", str(SWIN), str(folder)]) == 1
    line = _one_line(capsys.readouterr().err, "convert")
    assert f"{folder} is a folder; give a file path inside it" in line
    assert list(folder.iterdir()) == []


def test_convert_output_under_a_file(tmp_path, capsys, no_conversion):
    file = tmp_path / "out"
    file.write_text("a file")
    for out in (file / "m.keras", file / "deeper" / "m.weights.h5"):
        assert main(["convert", str(SWIN), str(out)]) == 1
        line = _one_line(capsys.readouterr().err, "convert")
        assert f"cannot write {out}: {file} is a file, not a folder" in line
    assert file.read_text() == "a file"


def test_convert_to_an_unwritable_folder(
    tmp_path, capsys, monkeypatch, no_conversion
):
    # chmod does not stop root (the tests' user here), so the permission
    # answer is the one a non-root user would get from os.access.
    locked = tmp_path / "locked"
    locked.mkdir()
    real_access = os.access
    monkeypatch.setattr(
        os,
        "access",
        lambda path, mode, **kw: (
            False if Path(path) == locked else real_access(path, mode, **kw)
        ),
    )
    for out in (locked / "m.keras", locked / "new" / "sub" / "m.keras"):
        assert main(["convert", str(SWIN), str(out)]) == 1
        line = _one_line(capsys.readouterr().err, "convert")
        assert f"cannot write {out}: no write permission in {locked}" in line
    assert list(locked.iterdir()) == []


def test_convert_to_a_read_only_file_system(
    tmp_path, capsys, monkeypatch, no_conversion
):
    # What a read-only mount answers even to root: the probe write fails.
    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(tempfile, "TemporaryFile", read_only)
    out = tmp_path / "m.keras"
    assert main(["convert", str(SWIN), str(out)]) == 1
    line = _one_line(capsys.readouterr().err, "convert")
    assert f"cannot write {out}: Read-only file system in {tmp_path}" in line


def test_memory_error_is_one_line_and_debug_raises(monkeypatch, capsys):
    import weights_tools.convert as convert

    def exhausted(*args, **kwargs):
        raise MemoryError("Unable to allocate 13.0 GiB")

    monkeypatch.setattr(convert, "checkpoint_config", exhausted)
    assert main(["info", str(SWIN)]) == 1
    assert _one_line(capsys.readouterr().err, "info") == (
        "keras-swin info: out of memory (Unable to allocate 13.0 GiB); try "
        "a smaller input size or batch, or a machine with more memory"
    )
    with pytest.raises(MemoryError, match="13.0 GiB"):
        main(["--debug", "info", str(SWIN)])


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (
            PermissionError(errno.EACCES, "Permission denied", "/x/y"),
            "Permission denied: /x/y (check its permissions or choose "
            "another path)",
        ),
        (
            IsADirectoryError(errno.EISDIR, "Is a directory", "/x"),
            "Is a directory: /x (a folder is in the way; give a file path)",
        ),
        (
            OSError(errno.ENOSPC, "No space left on device", "/x"),
            "No space left on device: /x (free some space or choose "
            "another disk)",
        ),
        (KeyError("3"), "missing key '3' in a config or checkpoint"),
        (
            ModuleNotFoundError("No module named 'sklearn'", name="sklearn"),
            "this needs the Python module 'sklearn', which is not "
            "installed; pip install scikit-learn",
        ),
        (ValueError("bad\nvalue  here"), "bad value here"),
        (
            MemoryError(),
            "out of memory; try a smaller input size or batch, "
            "or a machine with more memory",
        ),
    ],
)
def test_error_messages_are_one_line_with_a_fix(error, expected):
    assert error_message(error) == expected


def test_key_error_from_a_command_is_one_line(monkeypatch, capsys):
    import weights_tools.convert as convert

    def missing(*args, **kwargs):
        raise KeyError("num_heads")

    monkeypatch.setattr(convert, "checkpoint_config", missing)
    assert main(["info", str(SWIN)]) == 1
    assert _one_line(capsys.readouterr().err, "info") == (
        "keras-swin info: missing key 'num_heads' in a config or checkpoint"
    )


def test_debug_flag_shows_the_traceback(tmp_path):
    missing = tmp_path / "missing.pth"
    command = [sys.executable, "-m", "keras_swin"]
    quiet = subprocess.run(
        [*command, "info", str(missing)],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=120,
    )
    assert quiet.returncode == 1
    assert str(missing) in _one_line(quiet.stderr, "info")
    loud = subprocess.run(
        [*command, "--debug", "info", str(missing)],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=120,
    )
    assert loud.returncode == 1
    assert "Traceback (most recent call last)" in loud.stderr
    assert (
        loud.stderr.rstrip().splitlines()[-1].startswith("FileNotFoundError: ")
    )


# -- temporaries of killed runs -------------------------------------------


def _dead_pid() -> int:
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(done.stdout)


def test_atomic_path_removes_what_a_killed_run_left(tmp_path):
    out = tmp_path / "out.keras"
    killed = subprocess.run(
        [
            sys.executable,
            "-c",
            "import os, signal, sys\n"
            "from keras_swin.utils import atomic_path\n"
            "with atomic_path(sys.argv[1]) as tmp:\n"
            "    open(tmp, 'wb').write(b'half a file')\n"
            "    os.kill(os.getpid(), signal.SIGKILL)\n",
            str(out),
        ],
        env=_env(),
        timeout=120,
    )
    assert killed.returncode == -9
    (left,) = tmp_path.iterdir()  # the kill -9 left its temporary
    assert left.name.startswith(".out.keras.tmp-") and left.suffix == ".keras"
    live = tmp_path / f".out.keras.tmp-{os.getpid()}-live.keras"
    live.write_bytes(b"a live writer's")
    other = tmp_path / f".other.keras.tmp-{_dead_pid()}-x.keras"
    other.write_bytes(b"another destination's")
    backup = tmp_path / ".out.keras.bak"
    backup.write_bytes(b"the user's")
    with utils.atomic_path(out) as tmp:
        Path(tmp).write_bytes(b"new")
    assert out.read_bytes() == b"new"
    assert not left.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["out.keras", live.name, other.name, backup.name]
    )


def test_convert_removes_stale_temporaries(tmp_path, capsys):
    out = tmp_path / "vit.weights.h5"
    stale = tmp_path / f".vit.weights.h5.tmp-{_dead_pid()}-abc.weights.h5"
    stale.write_bytes(b"half a file")
    stale_folder = tmp_path / f".vit.weights.h5.tmp-{_dead_pid()}-dir"
    stale_folder.mkdir()
    (stale_folder / "part").write_bytes(b"x")
    assert main(["convert", str(VIT / "checkpoint.npz"), str(out)]) == 0
    assert [p.name for p in tmp_path.iterdir()] == ["vit.weights.h5"]


# -- start-up: no backend for --help and info ----------------------------

_PROBE = """
import sys
from keras_swin.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as exited:
    code = exited.code
heavy = {"keras", "tensorflow", "jax", "torch"}
loaded = sorted(heavy & {name.split(".")[0] for name in sys.modules})
print("IMPORTED:" + ",".join(loaded), file=sys.stderr)
sys.exit(code)
"""


def _probe(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", _PROBE, *argv],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=120,
    )


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["convert", "--help"],
        ["train", "--help"],
        ["benchmark", "--help"],
    ],
)
def test_help_imports_no_backend(argv):
    done = _probe(*argv)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stderr.splitlines()[-1] == "IMPORTED:"
    assert done.stdout.strip()


@pytest.mark.parametrize(
    ("source", "family"),
    [
        (TIMM_SWIN, "swin"),  # timm safetensors
        (SWIN, "swin"),  # official .pth: its index buffers are checked
        (VIT / "checkpoint.npz", "vit"),  # official ViT
        (golden("hf", "vit_tiny_h64_224"), "vit"),  # Hugging Face folder
    ],
)
def test_info_imports_no_keras(source, family):
    done = _probe("info", str(source))
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stderr.splitlines()[-1] == "IMPORTED:"
    assert json.loads(done.stdout)["family"] == family


# -- TensorFlow's noise ------------------------------------------------------

_TF_IMPORT = """
import importlib.util, os, sys
if sys.argv[1] == "filtered":
    from keras_swin.utils import TENSORFLOW_BANNERS, quiet_import_of
    quiet_import_of("tensorflow", TENSORFLOW_BANNERS)
importlib.util.find_spec("tensorflow")  # a probe, as Keras makes
import tensorflow
os.write(2, b"a line of our own\\n")
"""


@pytest.mark.slow
@pytest.mark.skipif(
    BACKEND != "tensorflow" or not HAS_TENSORFLOW,
    reason="TensorFlow's banners: checked in the TensorFlow run",
)
def test_tensorflow_banners_are_filtered_on_import():
    def run(mode):
        return subprocess.run(
            [sys.executable, "-c", _TF_IMPORT, mode],
            capture_output=True,
            text=True,
            env=_env(TF_CPP_MIN_LOG_LEVEL="3"),
            timeout=300,
        )

    plain, filtered = run("plain"), run("filtered")
    assert plain.returncode == filtered.returncode == 0, filtered.stderr
    # Unfiltered, the level alone does not stop the load-time banners.
    assert "oneDNN custom operations" in plain.stderr
    assert filtered.stderr == "a line of our own\n"


def test_filtered_stderr_keeps_other_lines(capfd):
    with utils.filtered_stderr(("noise",)):
        os.write(2, b"some noise here\nkept 1\nmore noise\nkept 2\n")
    assert capfd.readouterr().err == "kept 1\nkept 2\n"


# -- help texts and packaging ----------------------------------------------


def _options(parser: argparse.ArgumentParser, command: str = ""):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _options(sub, name)
        elif not isinstance(action, argparse._HelpAction):
            yield command, action


def test_every_option_has_help_with_its_default():
    missing = []
    for command, action in _options(build_parser()):
        text = action.help or ""
        needs_default = action.option_strings and not action.required
        if not text or (needs_default and "default" not in text):
            missing.append((command, action.option_strings or action.dest))
    assert missing == []
    predict = build_parser()._subparsers._group_actions[0].choices["predict"]
    assert "(default: 5)" in " ".join(predict.format_help().split())


def test_package_metadata_uses_an_spdx_license():
    tomllib = pytest.importorskip("tomllib")
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert meta["project"]["license"] == "Apache-2.0"
    assert meta["project"]["license-files"] == ["LICENSE"]
    assert "setuptools>=77" in meta["build-system"]["requires"]
    text = (ROOT / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text


def test_cpu_name_reads_the_model_name_or_falls_back(monkeypatch, tmp_path):
    # The name every recorded figure carries: /proc/cpuinfo's model name,
    # else platform's; never empty.
    import builtins

    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: Test CPU 9000\n")
    real_open = builtins.open

    def fake_open(path, *args, **kwargs):
        if path == "/proc/cpuinfo":
            return real_open(info, *args, **kwargs)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", fake_open)
    assert utils.cpu_name() == "Test CPU 9000"

    def no_cpuinfo(path, *args, **kwargs):
        if path == "/proc/cpuinfo":
            raise FileNotFoundError(path)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", no_cpuinfo)
    monkeypatch.setattr(utils.platform, "processor", lambda: "")
    monkeypatch.setattr(utils.platform, "machine", lambda: "x86_64")
    assert utils.cpu_name() == "x86_64"
