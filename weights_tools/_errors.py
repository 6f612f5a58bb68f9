"""Errors and small helpers shared by the checkpoint readers.

``CheckpointError`` and ``UnsafeCheckpointError`` are re-exported by
:mod:`weights_tools.readers`, which is where callers import them from. The
rest is private plumbing used by both :mod:`weights_tools.pth` and the
safetensors/npz readers: the internal ``_FormatProblem`` and ``_fail``, dtype
name mapping (``ml_dtypes`` is imported only when a dtype needs it) and
checks on the file itself.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

PathLike = str | os.PathLike

SUPPORTED_FORMATS = (
    "PyTorch torch.save files (.pth/.pt/.bin: zip container or legacy "
    "pickle stream), safetensors files (.safetensors), numpy archives (.npz)"
)


# --------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------


class CheckpointError(ValueError):
    """A checkpoint file is corrupt, truncated or in an unsupported format.

    The message always names the file and says what was wrong or what was
    expected.

    Example:
        >>> try:
        ...     read_checkpoint("notes.txt")  # doctest: +SKIP
        ... except CheckpointError as err:
        ...     print(err)  # doctest: +SKIP
        notes.txt: unrecognised checkpoint format; supported: ...
    """


class UnsafeCheckpointError(CheckpointError):
    """A pickle references a global that is not on the allow-list.

    Raised before anything from the file is called, so nothing was executed.

    Attributes:
        path: The offending file (``str``).
        global_name: The refused global as ``"module.name"`` (``str``), e.g.
            ``"os.system"``.

    Example:
        >>> try:
        ...     read_pth("evil.pth")  # doctest: +SKIP
        ... except UnsafeCheckpointError as err:
        ...     print(err.global_name)  # doctest: +SKIP
        posix.system
    """

    def __init__(self, path: str, global_name: str) -> None:
        self.path = path
        self.global_name = global_name
        super().__init__(
            f"{path}: refusing to load: the pickle references the global "
            f"'{global_name}', which is not on the allow-list of tensor "
            "rebuild functions and plain containers. Nothing from the file "
            "was executed. If you trust this file, convert it on a trusted "
            "machine: sd = torch.load(path, weights_only=True) (take the "
            "state dict out of any wrapper), then "
            "safetensors.torch.save_file(sd, 'model.safetensors'), and read "
            "the .safetensors file instead."
        )


class _FormatProblem(Exception):
    """Internal: a format problem; re-raised as CheckpointError with path."""


def _fail(path: str, what: str) -> CheckpointError:
    return CheckpointError(f"{path}: {what}")


# --------------------------------------------------------------------------
# dtypes
# --------------------------------------------------------------------------

_ML_DTYPE_NAMES = frozenset(
    {
        "bfloat16",
        "float8_e4m3fn",
        "float8_e5m2",
        "float8_e4m3fnuz",
        "float8_e5m2fnuz",
        "float8_e8m0fnu",
    }
)


def _np_dtype(name: str) -> np.dtype:
    """Numpy dtype for a dtype name; ml_dtypes is imported only if needed."""
    if name in _ML_DTYPE_NAMES:
        try:
            import ml_dtypes
        except ImportError as err:  # pragma: no cover - env dependent
            raise _FormatProblem(
                f"dtype {name} needs the 'ml_dtypes' package"
            ) from err
        if not hasattr(ml_dtypes, name):  # pragma: no cover - old ml_dtypes
            raise _FormatProblem(
                f"dtype {name} is not provided by the installed ml_dtypes"
            )
        return np.dtype(getattr(ml_dtypes, name))
    return np.dtype(name)


def _int_tuple(value: Any, what: str) -> tuple[int, ...]:
    if not isinstance(value, tuple | list):
        raise _FormatProblem(f"tensor {what} is {type(value).__name__}")
    out = []
    for item in value:
        if type(item) is not int or item < 0:
            raise _FormatProblem(f"invalid tensor {what} {value!r}")
        out.append(item)
    return tuple(out)


# --------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------


def _head(path: str, n: int) -> bytes:
    with open(path, "rb") as f:
        return f.read(n)


def _is_zip_head(head: bytes) -> bool:
    return head[:4] in (b"PK\x03\x04", b"PK\x05\x06")


def _is_tar_head(head: bytes) -> bool:
    return head[257:262] == b"ustar"


def _check_file(path: PathLike) -> str:
    spath = os.fspath(path)
    if not isinstance(spath, str):
        spath = os.fsdecode(spath)
    if not os.path.exists(spath):
        raise FileNotFoundError(f"{spath}: no such checkpoint file")
    if not os.path.isfile(spath):
        raise IsADirectoryError(f"{spath}: not a regular file")
    return spath
