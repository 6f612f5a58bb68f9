"""Small utilities: atomic file output, write checks, argument types.

Nothing here imports Keras or a backend: the command line uses these
before it picks one.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import platform
import shutil
import sys
import tempfile
from collections.abc import Iterator

from keras_swin._import_hooks import FirstImportHook

_COMPOUND_SUFFIXES = (".weights.h5", ".weights.json")


def _suffix(name: str) -> str:
    for suffix in _COMPOUND_SUFFIXES:
        if name.endswith(suffix):
            return suffix
    return os.path.splitext(name)[1]


def _temp_prefix(name: str) -> str:
    """Prefix of `atomic_path`'s temporary names for the file `name`."""
    return f".{name}.tmp-"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    except OverflowError:  # not a pid this system can have
        return False
    return True


def remove_stale_temporaries(path: str | os.PathLike) -> list[str]:
    """Removes the temporary files that killed writers of `path` left.

    `atomic_path` names its temporary `.NAME.tmp-PID-RANDOM.SUFFIX` beside
    `path`. A run killed with `kill -9` (or a power cut) cannot clean up,
    so the next `atomic_path` for the same destination removes every
    such sibling whose process id no longer runs. Temporaries of live
    writers are kept. Process ids are of this machine: two machines
    writing the same name in a shared folder at the same time are not
    supported.

    Args:
        path: the destination file.

    Returns:
        The removed paths, sorted.

    Example:
        >>> remove_stale_temporaries("runs/model.keras")
        ['runs/.model.keras.tmp-4242-ab12cd34.keras']
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    prefix = _temp_prefix(os.path.basename(path))
    try:
        names = os.listdir(folder)
    except OSError:  # no folder yet: nothing to clean
        return []
    removed = []
    for name in names:
        if not name.startswith(prefix):
            continue
        pid_text = name[len(prefix) :].split("-", 1)[0]
        if not pid_text.isdigit() or _pid_alive(int(pid_text)):
            continue
        stale = os.path.join(os.path.dirname(path), name)
        with contextlib.suppress(FileNotFoundError):  # another run was first
            if os.path.isdir(stale) and not os.path.islink(stale):
                shutil.rmtree(stale)
            else:
                os.remove(stale)
        removed.append(stale)
    return sorted(removed)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[str]:
    """Yields a temporary path that replaces `path` only on success.

    The temporary file lives in the destination folder (so the final
    `os.replace` is atomic on POSIX and Windows) and keeps the suffix of
    `path` (`.weights.h5`, `.keras`, ...), which Keras' savers check. If
    the body raises, the temporary file is removed and `path` is left as
    it was: no half-written output. Its name, `.NAME.tmp-PID-RANDOM`,
    holds the writer's process id, so that temporaries a killed run left
    behind are removed on entry (`remove_stale_temporaries`).

    Args:
        path: the final destination.

    Yields:
        The temporary path to write to.

    Example:
        >>> with atomic_path("model.keras") as tmp:
        ...     model.save(tmp)
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    remove_stale_temporaries(path)
    name = os.path.basename(path)
    fd, tmp = tempfile.mkstemp(
        prefix=f"{_temp_prefix(name)}{os.getpid()}-",
        suffix=_suffix(name),
        dir=folder,
    )
    os.close(fd)
    os.remove(tmp)  # the writer creates it; some refuse to overwrite
    try:
        yield tmp
        if not os.path.exists(tmp):
            raise RuntimeError(f"Nothing was written to {path}.")
        os.replace(tmp, path)
    finally:
        if os.path.isdir(tmp) and not os.path.islink(tmp):
            shutil.rmtree(tmp)
        elif os.path.lexists(tmp):
            os.remove(tmp)


def check_writable(path: str | os.PathLike, *, folder: bool = False) -> None:
    """Checks that `path` can be written, before a long job writes it.

    The folders that do not exist yet are not created: the nearest
    existing one must be a writable folder. An existing destination
    folder is probed by opening an anonymous temporary file in it, which
    also catches read-only file systems and writes refused to root.

    Args:
        path: the file (or, with `folder=True`, the folder) to be written.
        folder: `path` names a folder of results rather than a file.

    Raises:
        IsADirectoryError: a file is expected and `path` is a folder.
        NotADirectoryError: `path` (folder=True) or one of its parents
            is a file.
        PermissionError: the nearest existing folder is not writable.
        OSError: the probe write failed (read-only, full, ...).

    Example:
        >>> check_writable("out/model.keras")  # out/ may not exist yet
        >>> check_writable("/etc/passwd/x.keras")
        Traceback (most recent call last):
        NotADirectoryError: [Errno 20] cannot write /etc/passwd/x.keras: ...
    """
    path = os.path.abspath(os.fspath(path))
    if folder:
        if os.path.exists(path) and not os.path.isdir(path):
            raise NotADirectoryError(
                errno.ENOTDIR,
                f"{path} is a file, not a folder; give a folder for the "
                "results (or move the file away)",
            )
        parent = path
    else:
        if os.path.isdir(path):
            raise IsADirectoryError(
                errno.EISDIR,
                f"{path} is a folder; give a file path inside it, e.g. "
                f"{os.path.join(path, 'model.keras')}",
            )
        parent = os.path.dirname(path)
    existing = parent
    while not os.path.lexists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise NotADirectoryError(
            errno.ENOTDIR,
            f"cannot write {path}: {existing} is a file, not a folder; "
            "choose another path",
        )
    if not os.access(existing, os.W_OK | os.X_OK):
        raise PermissionError(
            errno.EACCES,
            f"cannot write {path}: no write permission in {existing}; "
            "choose a folder you can write to or change its permissions",
        )
    if existing == parent:
        try:
            with tempfile.TemporaryFile(dir=parent):
                pass
        except OSError as error:
            raise type(error)(
                error.errno,
                f"cannot write {path}: {error.strerror} in {parent}; "
                "choose another folder",
            ) from error


#: A model argument ending so is a path, never a registered name.
CHECKPOINT_SUFFIXES = (
    ".pth",
    ".pt",
    ".bin",
    ".safetensors",
    ".npz",
    ".h5",
    ".keras",
    ".json",
)


def looks_like_path(value: str) -> bool:
    """Whether a weights argument names a path rather than a release.

    A registered name (`arch.tag`) has no folder separator and none of
    the checkpoint suffixes, so a missing file is reported as missing
    rather than as an unknown name.

    Example:
        >>> looks_like_path("runs/model.keras"), looks_like_path("vit_b16")
        (True, False)
    """
    separators = {"/", os.sep, os.altsep} - {None}
    return any(sep in value for sep in separators) or value.lower().endswith(
        CHECKPOINT_SUFFIXES
    )


def cpu_name() -> str:
    """The processor's model name, for the figures a run records.

    Read from Linux's /proc/cpuinfo ("AMD EPYC 9B14"); elsewhere, or when
    it cannot be read, `platform.processor()` or the machine type.

    Returns:
        A non-empty string.

    Example:
        >>> isinstance(cpu_name(), str) and cpu_name() != ""
        True
    """
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    name = line.split(":", 1)[1].strip()
                    if name:
                        return name
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def positive_int(text: str) -> int:
    """argparse `type=`: an integer >= 1.

    Args:
        text: the command-line value.

    Returns:
        The integer.

    Raises:
        argparse.ArgumentTypeError: `text` is not an integer >= 1.

    Example:
        >>> positive_int("3")
        3
    """
    return _bounded_int(text, 1, "a positive integer")


def non_negative_int(text: str) -> int:
    """argparse `type=`: an integer >= 0.

    Args:
        text: the command-line value.

    Returns:
        The integer.

    Raises:
        argparse.ArgumentTypeError: `text` is not an integer >= 0.

    Example:
        >>> non_negative_int("0")
        0
    """
    return _bounded_int(text, 0, "an integer >= 0")


def non_negative_float(text: str) -> float:
    """argparse `type=`: a finite number >= 0.

    Args:
        text: the command-line value.

    Returns:
        The number as a float.

    Raises:
        argparse.ArgumentTypeError: `text` is not a finite number >= 0.

    Example:
        >>> non_negative_float("1e-5")
        1e-05
    """
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number >= 0, got {text!r}")
    return value


def _bounded_int(text: str, low: int, expected: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be {expected}, got {text!r}"
        ) from None
    if value < low:
        raise argparse.ArgumentTypeError(f"must be {expected}, got {value}")
    return value


class SizeAction(argparse.Action):
    """argparse action for `--image-size H [W]`: one or two positive ints.

    Stores a tuple (H, W); one value means a square.

    Example:
        >>> parser = argparse.ArgumentParser()
        >>> _ = parser.add_argument("--image-size", nargs="+",
        ...                         type=positive_int, action=SizeAction)
        >>> parser.parse_args(["--image-size", "64"]).image_size
        (64, 64)
    """

    def __call__(self, parser, namespace, values, option_string=None):
        if len(values) > 2:
            parser.error(
                f"argument {option_string}: takes H or H W (1 or 2 "
                f"values), got {len(values)}: "
                f"{' '.join(str(v) for v in values)}"
            )
        setattr(namespace, self.dest, (values[0], values[-1]))


#: Lines that TensorFlow's native libraries print while they load, before
#: `TF_CPP_MIN_LOG_LEVEL` is read (banners, CPU and CUDA notices).
TENSORFLOW_BANNERS = (
    "All log messages before absl::InitializeLog() is called",
    "oneDNN custom operations are on",
    "cpu_feature_guard.cc",
    "To enable the following instructions:",
    "This TensorFlow binary is optimized",
    "Unable to register cuDNN factory",
    "Unable to register cuFFT factory",
    "Unable to register cuBLAS factory",
    "computation placer already registered",
    "TF-TRT Warning: Could not find TensorRT",
    "Could not find cuda drivers on your machine",
    "successful NUMA node read from SysFS",
)


@contextlib.contextmanager
def filtered_stderr(noise: tuple[str, ...]) -> Iterator[None]:
    """Drops lines containing `noise` from the process's native stderr.

    Native libraries write to file descriptor 2 directly, so
    `sys.stderr` cannot filter them. For the body's duration fd 2 goes to
    a temporary file; its other lines are then written to the real
    stderr, in order. Meant for short, quiet steps such as importing a
    library (output of the body appears only when it ends).

    Args:
        noise: substrings; a line holding any of them is dropped.

    Example:
        >>> with filtered_stderr(TENSORFLOW_BANNERS):
        ...     import tensorflow
    """
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no usable fd 2: nothing to filter
        yield
        return
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            with contextlib.suppress(OSError, ValueError):
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            text = capture.read().decode("utf-8", errors="replace")
            kept = [
                line
                for line in text.splitlines(keepends=True)
                if not any(pattern in line for pattern in noise)
            ]
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()


def quiet_import_of(name: str, noise: tuple[str, ...]) -> None:
    """Filters `noise` from stderr whenever `name` is first imported.

    For libraries whose native code prints start-up banners on import,
    whoever imports them (Keras imports TensorFlow lazily from several
    places). Does nothing if `name` is already imported.

    Args:
        name: a top-level module name, e.g. "tensorflow".
        noise: see `filtered_stderr`.

    Example:
        >>> quiet_import_of("tensorflow", TENSORFLOW_BANNERS)
    """
    if name in sys.modules or any(
        isinstance(finder, FirstImportHook) and finder.name == name
        for finder in sys.meta_path
    ):
        return
    FirstImportHook(name, around=lambda: filtered_stderr(noise)).install()
