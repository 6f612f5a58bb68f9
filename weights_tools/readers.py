"""Safe, torch-free readers that turn checkpoint files into numpy arrays.

Every reader returns a plain ``dict[str, numpy.ndarray]`` (tensor name to a
C-contiguous array that owns its memory, dtype exactly as stored). Nothing in
these readers imports ``torch`` and nothing ever executes code from a file:
pickled PyTorch checkpoints are decoded by the restricted unpickler of
:mod:`weights_tools.pth`, which only resolves an allow-list of tensor-rebuild
functions and inert containers to its own stand-ins; any other global is
refused before anything is called.

This module holds the safetensors and npz readers and
:func:`read_checkpoint`, which picks the reader from the file's content. It
also re-exports :func:`read_pth` and the errors, so every public name is
imported from here.

Supported formats:

* PyTorch ``torch.save`` files (``.pth``/``.pt``/``.bin``), both the zip
  container (torch >= 1.6) and the legacy non-zip pickle stream.
* ``.safetensors`` files.
* ``.npz`` archives (never unpickled).

Example:
    >>> from weights_tools.readers import read_checkpoint
    >>> weights = read_checkpoint("swin_tiny.pth")  # doctest: +SKIP
    >>> weights["head.weight"].shape  # doctest: +SKIP
    (1000, 768)
"""

from __future__ import annotations

import json
import math
import os
import struct
import zipfile
from typing import BinaryIO

import numpy as np

from weights_tools._errors import (
    SUPPORTED_FORMATS,
    CheckpointError,
    PathLike,
    UnsafeCheckpointError,
    _check_file,
    _fail,
    _FormatProblem,
    _head,
    _int_tuple,
    _is_tar_head,
    _is_zip_head,
    _np_dtype,
)
from weights_tools.pth import _zip_prefix, read_pth

__all__ = [
    "CheckpointError",
    "UnsafeCheckpointError",
    "read_checkpoint",
    "read_npz",
    "read_pth",
    "read_safetensors",
]

_MAX_SAFETENSORS_HEADER = 100 * 1024 * 1024


# --------------------------------------------------------------------------
# safetensors
# --------------------------------------------------------------------------

_SAFETENSORS_NUMPY_DTYPES = frozenset(
    {"F64", "F32", "F16", "I64", "U64", "I32", "U32", "I16", "U16", "I8"}
    | {"U8", "BOOL", "C64", "BF16"}
)
_SAFETENSORS_DTYPES = {
    "F64": "float64",
    "F32": "float32",
    "F16": "float16",
    "BF16": "bfloat16",
    "I64": "int64",
    "U64": "uint64",
    "I32": "int32",
    "U32": "uint32",
    "I16": "int16",
    "U16": "uint16",
    "I8": "int8",
    "U8": "uint8",
    "BOOL": "bool",
    "C64": "complex64",
    "F8_E4M3": "float8_e4m3fn",
    "F8_E5M2": "float8_e5m2",
    "F8_E8M0": "float8_e8m0fnu",
}


def _safetensors_header(f: BinaryIO, path: str) -> tuple[dict, int]:
    size = os.fstat(f.fileno()).st_size
    raw_len = f.read(8)
    if len(raw_len) < 8:
        raise _FormatProblem("file too short for a safetensors header")
    (header_len,) = struct.unpack("<Q", raw_len)
    if header_len > min(size - 8, _MAX_SAFETENSORS_HEADER):
        raise _FormatProblem(
            f"invalid safetensors header length {header_len} (file has "
            f"{size} bytes)"
        )
    try:
        header = json.loads(f.read(header_len))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise _FormatProblem(
            f"invalid safetensors JSON header ({err})"
        ) from None
    if not isinstance(header, dict):
        raise _FormatProblem("safetensors header is not a JSON object")
    header.pop("__metadata__", None)
    for name, info in header.items():
        if not (
            isinstance(info, dict)
            and isinstance(info.get("dtype"), str)
            and isinstance(info.get("shape"), list)
            and isinstance(info.get("data_offsets"), list)
            and len(info["data_offsets"]) == 2
        ):
            raise _FormatProblem(f"invalid safetensors entry for '{name}'")
    return header, 8 + header_len


def _decode_safetensors(f: BinaryIO, header: dict, data_start: int) -> dict:
    out = {}
    size = os.fstat(f.fileno()).st_size
    for name, info in header.items():
        code = info["dtype"]
        if code not in _SAFETENSORS_DTYPES:
            raise _FormatProblem(f"'{name}' has unsupported dtype {code}")
        dtype = _np_dtype(_SAFETENSORS_DTYPES[code])
        shape = _int_tuple(info["shape"], "shape")
        begin, end = info["data_offsets"]
        nbytes = math.prod(shape) * dtype.itemsize
        if (
            type(begin) is not int
            or type(end) is not int
            or end - begin != nbytes
            or begin < 0
            or data_start + end > size
        ):
            raise _FormatProblem(f"invalid data offsets for '{name}'")
        f.seek(data_start + begin)
        data = f.read(nbytes)
        out[name] = np.frombuffer(data, dtype=dtype).reshape(shape).copy()
    return out


def read_safetensors(path: PathLike) -> dict[str, np.ndarray]:
    """Read a ``.safetensors`` file into numpy arrays.

    Uses ``safetensors.numpy.load_file``; bfloat16 (``BF16``) tensors come
    back as ``ml_dtypes.bfloat16`` arrays, and float8 tensors, which
    ``safetensors.numpy`` cannot map, are decoded here into ``ml_dtypes``
    float8 arrays.

    Args:
        path: File to read (``str`` or ``os.PathLike``).

    Returns:
        ``dict[str, numpy.ndarray]``: tensor name to an array with the stored
        shape and dtype.

    Raises:
        CheckpointError: The file is not a valid safetensors file.
        FileNotFoundError: ``path`` does not exist.

    Example:
        >>> sd = read_safetensors("model.safetensors")  # doctest: +SKIP
        >>> sd["head.bias"].dtype  # doctest: +SKIP
        dtype('float32')
    """
    spath = _check_file(path)
    try:
        with open(spath, "rb") as f:
            header, data_start = _safetensors_header(f, spath)
            codes = {info["dtype"] for info in header.values()}
            if not codes <= _SAFETENSORS_NUMPY_DTYPES:
                return _decode_safetensors(f, header, data_start)
        if "BF16" in codes:
            _np_dtype("bfloat16")  # registers the 'bfloat16' dtype name
        import safetensors.numpy

        loaded = safetensors.numpy.load_file(spath)
        return {name: np.asarray(loaded[name]) for name in header}
    except CheckpointError:
        raise
    except _FormatProblem as err:
        raise _fail(spath, str(err)) from None
    except Exception as err:
        raise _fail(
            spath,
            f"invalid safetensors file ({type(err).__name__}: {err})",
        ) from None


# --------------------------------------------------------------------------
# npz
# --------------------------------------------------------------------------


def read_npz(path: PathLike) -> dict[str, np.ndarray]:
    """Read every array of a numpy ``.npz`` archive (never unpickles).

    Args:
        path: File to read (``str`` or ``os.PathLike``); the extension does
            not matter.

    Returns:
        ``dict[str, numpy.ndarray]``: entry name as stored (without the
        ``.npy`` suffix) to its array, dtype unchanged.

    Raises:
        CheckpointError: The file is not an npz archive, is corrupt, or holds
            object arrays that would need pickle.
        FileNotFoundError: ``path`` does not exist.

    Example:
        >>> arrays = read_npz("stages.npz")  # doctest: +SKIP
        >>> sorted(arrays)[:2]  # doctest: +SKIP
        ['stage0', 'stage1']
    """
    spath = _check_file(path)
    try:
        loaded = np.load(spath, allow_pickle=False)
    except Exception as err:
        raise _fail(
            spath,
            f"not a readable .npz archive ({type(err).__name__}: {err})",
        ) from None
    if not isinstance(loaded, np.lib.npyio.NpzFile):
        raise _fail(
            spath,
            f"expected an .npz archive, found a single array ({type(loaded)})",
        )
    out: dict[str, np.ndarray] = {}
    with loaded:
        for name in loaded.files:
            try:
                out[name] = loaded[name]
            except Exception as err:
                raise _fail(
                    spath,
                    f"cannot read entry '{name}' without pickle "
                    f"({type(err).__name__}: {err})",
                ) from None
    return out


# --------------------------------------------------------------------------
# Dispatch
# --------------------------------------------------------------------------


def _looks_like_safetensors(head: bytes, size: int) -> bool:
    if len(head) < 10:
        return False
    (header_len,) = struct.unpack("<Q", head[:8])
    return 2 <= header_len <= size - 8 and head[8:9] == b"{"


def read_checkpoint(path: PathLike) -> dict[str, np.ndarray]:
    """Read any supported checkpoint, detecting the format from its content.

    The extension is ignored: a zip archive with ``data.pkl`` is read as a
    PyTorch checkpoint (:func:`read_pth` with ``key="auto"``), a zip of
    ``.npy`` members as npz (:func:`read_npz`), a file starting with a
    safetensors header as safetensors (:func:`read_safetensors`), and a
    pickle stream as a legacy PyTorch checkpoint.

    Args:
        path: File to read (``str`` or ``os.PathLike``).

    Returns:
        ``dict[str, numpy.ndarray]``: tensor name to array, dtype as stored.

    Raises:
        UnsafeCheckpointError: A pickle references a forbidden global.
        CheckpointError: Unknown, corrupt or truncated file; the message
            lists the supported formats when the format is not recognised.
        FileNotFoundError: ``path`` does not exist.

    Example:
        >>> sd = read_checkpoint("pytorch_model.bin")  # doctest: +SKIP
        >>> sd = read_checkpoint("weights.npz")  # doctest: +SKIP
    """
    spath = _check_file(path)
    try:
        size = os.path.getsize(spath)
        head = _head(spath, 512)
    except OSError as err:
        raise _fail(spath, f"could not read ({err})") from None
    if not head:
        raise _fail(spath, f"file is empty; supported: {SUPPORTED_FORMATS}")
    if _is_zip_head(head) or zipfile.is_zipfile(spath):
        try:
            with zipfile.ZipFile(spath) as zf:
                names = zf.namelist()
        except Exception as err:
            raise _fail(
                spath,
                f"corrupt or truncated zip archive ({err}); supported: "
                f"{SUPPORTED_FORMATS}",
            ) from None
        if _zip_prefix(names) is not None:
            return read_pth(spath)
        if names and all(n.endswith(".npy") for n in names):
            return read_npz(spath)
        raise _fail(
            spath,
            "zip archive that is neither a torch.save checkpoint (no "
            "data.pkl) nor an npz archive (non-.npy members); supported: "
            f"{SUPPORTED_FORMATS}",
        )
    if _looks_like_safetensors(head, size):
        return read_safetensors(spath)
    if head[:1] == b"\x80" or _is_tar_head(head):
        return read_pth(spath)
    raise _fail(
        spath, f"unrecognised checkpoint format; supported: {SUPPORTED_FORMATS}"
    )
