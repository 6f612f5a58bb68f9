"""Errors and small helpers shared by the checkpoint readers.

`CheckpointError` and `UnsafeCheckpointError` are re-exported by
`weights_tools.readers`, which is where callers import them from. The
rest is private plumbing used by both `weights_tools.pth` and the
safetensors/npz readers: the internal `_FormatProblem` and `_fail`, dtype
name mapping (`ml_dtypes` is imported only when a dtype needs it), checks
on the file itself and the memory bounds every reader applies.

Memory bounds. A checkpoint cannot make a reader take much more memory than
its own size: zip members (`.pth` storages, `data.pkl`, `.npz`
arrays) must hold exactly the bytes their declaration says, checked before
anything is decompressed, and are read in 1 MiB chunks; and one read may
materialise at most `max(MATERIALIZE_FLOOR, MATERIALIZE_FILE_FACTOR *
file size)` bytes of arrays (64 MiB or 4x the file, whichever is larger).
Real checkpoints hold their data once and uncompressed, so they stay near
1x; only compressed members and views that repeat one storage (zero
strides, overlaps) go beyond, and a caller who trusts such a file raises
the cap with `max_materialized_bytes=`.
"""

from __future__ import annotations

import os
import zipfile
from typing import Any

import numpy as np

PathLike = str | os.PathLike

#: Smallest cap on the array bytes one read may materialise (64 MiB).
MATERIALIZE_FLOOR = 64 * 2**20
#: The cap grows with the file: this many times its size.
MATERIALIZE_FILE_FACTOR = 4
#: Chunk size of every bounded member read.
_CHUNK = 2**20

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
        path: The offending file (`str`).
        global_name: The refused global as `"module.name"` (`str`), e.g.
            `"os.system"`.

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


# --------------------------------------------------------------------------
# Memory bounds
# --------------------------------------------------------------------------


def _human(nbytes: int) -> str:
    """`1610612736` -> `'1.5 GiB (1610612736 bytes)'`."""
    value, unit = float(nbytes), "bytes"
    for name in ("KiB", "MiB", "GiB", "TiB", "PiB"):
        if value < 1024:
            break
        value, unit = value / 1024, name
    if unit == "bytes":
        return f"{nbytes} bytes"
    return f"{value:.3g} {unit} ({nbytes} bytes)"


def _check_limit(value: Any, name: str) -> None:
    if value is not None and (type(value) is not int or value <= 0):
        raise ValueError(
            f"{name} must be a positive int or None, not {value!r}"
        )


def _materialize_cap(file_size: int, max_materialized_bytes: int | None) -> int:
    """The byte cap of one read: the caller's, or the documented default."""
    _check_limit(max_materialized_bytes, "max_materialized_bytes")
    if max_materialized_bytes is not None:
        return max_materialized_bytes
    return max(MATERIALIZE_FLOOR, MATERIALIZE_FILE_FACTOR * file_size)


def _check_materialized(
    total: int, cap: int, file_size: int, what: str, explicit: bool
) -> None:
    """Refuses a read whose arrays would take more than `cap` bytes."""
    if total <= cap:
        return
    if explicit:
        origin = "max_materialized_bytes"
    else:
        origin = (
            f"the default cap: the larger of {_human(MATERIALIZE_FLOOR)} and "
            f"{MATERIALIZE_FILE_FACTOR}x the file's {_human(file_size)}"
        )
    raise _FormatProblem(
        f"{what} would materialise {_human(total)}, more than the "
        f"{_human(cap)} allowed ({origin}). A file this size holds that much "
        "only through compression or views that repeat one storage (zero "
        "or overlapping strides), which is how memory-exhaustion files are "
        "built; if you trust this file, pass "
        f"max_materialized_bytes={total} (or more)."
    )


def _read_member(
    zf: zipfile.ZipFile, info: zipfile.ZipInfo, nbytes: int, what: str
) -> bytearray:
    """Exactly `nbytes` of a zip member, decompressed in bounded chunks.

    The member's declared size must equal `nbytes` before anything is
    decompressed; the read then stops at `nbytes` and refuses a member
    that yields more (a deflate bomb is never expanded beyond `nbytes`).
    """
    if info.file_size != nbytes:
        _wrong_member_size(info, nbytes, what)
    out = bytearray(nbytes)
    view = memoryview(out)
    with zf.open(info) as stream:
        _read_exactly(stream, view, info.filename)
        if stream.read(1):
            raise _FormatProblem(
                f"archive member '{info.filename}' yields more than the "
                f"{nbytes} bytes {what} declares; refusing to decompress it"
            )
    return out


def _wrong_member_size(info: zipfile.ZipInfo, nbytes: int, what: str):
    if info.file_size < nbytes:
        raise _FormatProblem(
            f"archive member '{info.filename}' holds {info.file_size} bytes "
            f"but {what} declares {nbytes}: the file is truncated or corrupt"
        )
    raise _FormatProblem(
        f"archive member '{info.filename}' expands to {_human(info.file_size)}"
        f" but {what} declares only {nbytes} bytes; refusing to decompress "
        "it (a corrupt or hostile file)"
    )


def _read_exactly(stream: Any, view: memoryview, name: str) -> None:
    """Fills `view` from `stream` in `_CHUNK`-sized reads."""
    pos, total = 0, len(view)
    while pos < total:
        got = stream.readinto(view[pos : pos + min(_CHUNK, total - pos)])
        if not got:
            raise _FormatProblem(
                f"archive member '{name}' ends after {pos} of its {total} "
                "bytes (truncated file?)"
            )
        pos += got
