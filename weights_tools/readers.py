"""Safe, torch-free readers that turn checkpoint files into numpy arrays.

Every reader returns a plain `dict[str, numpy.ndarray]` (tensor name to a
C-contiguous array that owns its memory, dtype exactly as stored). Nothing in
these readers imports `torch` and nothing ever executes code from a file:
pickled PyTorch checkpoints are decoded by the restricted unpickler of
`weights_tools.pth`, which only resolves an allow-list of tensor-rebuild
functions and inert containers to its own stand-ins; any other global is
refused before anything is called.

This module holds the safetensors and npz readers and
`read_checkpoint`, which picks the reader from the file's content. It
also re-exports `read_pth` and the errors, so every public name is
imported from here.

Supported formats:

* PyTorch `torch.save` files (`.pth`/`.pt`/`.bin`), both the zip
  container (torch >= 1.6) and the legacy non-zip pickle stream.
* `.safetensors` files.
* `.npz` archives (never unpickled).
* Sharded checkpoints: an `*.index.json` whose `weight_map` names
  shard files beside it (`read_sharded`).

Memory stays bounded by the file: see `weights_tools._errors` and the
`max_materialized_bytes` argument of `read_pth`,
`read_npz` and `read_checkpoint`.

Example:
    >>> from weights_tools.readers import read_checkpoint
    >>> weights = read_checkpoint("swin_tiny.pth")  # doctest: +SKIP
    >>> weights["head.weight"].shape  # doctest: +SKIP
    (1000, 768)
"""

from __future__ import annotations

import ast
import json
import math
import os
import struct
import zipfile
from typing import Any, BinaryIO

import numpy as np

from weights_tools._errors import (
    SUPPORTED_FORMATS,
    CheckpointError,
    PathLike,
    UnsafeCheckpointError,
    _check_file,
    _check_limit,
    _check_materialized,
    _fail,
    _FormatProblem,
    _head,
    _human,
    _int_tuple,
    _is_tar_head,
    _is_zip_head,
    _materialize_cap,
    _np_dtype,
    _read_exactly,
    _wrong_member_size,
)
from weights_tools.pth import (
    MAX_PICKLE_BYTES,
    _zip_prefix,
    read_pth,
    read_pth_extras,
)

__all__ = [
    "CheckpointError",
    "UnsafeCheckpointError",
    "read_checkpoint",
    "read_checkpoint_extras",
    "read_npz",
    "read_pth",
    "read_pth_extras",
    "read_safetensors",
    "read_sharded",
]

# The safetensors library's own limit on its JSON header.
_MAX_SAFETENSORS_HEADER = 100 * 1024 * 1024
# numpy's default max_header_size for .npy headers.
_MAX_NPY_HEADER = 10000
# A shard index is a few hundred kilobytes even for thousands of tensors.
_MAX_INDEX_BYTES = 64 * 2**20


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


def _raw_safetensors_header(f: BinaryIO) -> tuple[dict, int, int]:
    """(header JSON with `__metadata__`, header length, file size)."""
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
    return header, header_len, size


def _safetensors_header(f: BinaryIO, path: str) -> tuple[dict, int]:
    header, header_len, size = _raw_safetensors_header(f)
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
    _check_safetensors_layout(header, size - 8 - header_len)
    return header, 8 + header_len


def _check_safetensors_layout(header: dict, data_size: int) -> None:
    """Each entry's bytes match its shape, lie in the file, never overlap.

    As the safetensors format requires: the entries tile the data section
    from its first byte to its last, so no tensor is read twice and the
    arrays never take more memory than the file.
    """
    spans = []
    for name, info in header.items():
        code = info["dtype"]
        if code not in _SAFETENSORS_DTYPES:
            raise _FormatProblem(f"'{name}' has unsupported dtype {code}")
        itemsize = _np_dtype(_SAFETENSORS_DTYPES[code]).itemsize
        shape = _int_tuple(info["shape"], "shape")
        begin, end = info["data_offsets"]
        if type(begin) is not int or type(end) is not int or begin < 0:
            raise _FormatProblem(
                f"invalid data offsets {info['data_offsets']!r} for '{name}'"
            )
        nbytes = math.prod(shape) * itemsize
        if end - begin != nbytes or end > data_size:
            raise _FormatProblem(
                f"invalid data offsets for '{name}': [{begin}, {end}) for "
                f"shape {list(shape)} of {code} ({nbytes} bytes) in a data "
                f"section of {data_size} bytes"
            )
        spans.append((begin, end, name))
    position, previous = 0, None
    for begin, end, name in sorted(spans):
        if begin != position:
            where = "overlaps" if begin < position else "leaves a gap after"
            raise _FormatProblem(
                f"'{name}' (bytes [{begin}, {end})) {where} "
                f"{repr(previous) if previous else 'the start'}; safetensors "
                "entries must tile the data section without overlaps or gaps"
            )
        position, previous = end, name
    if position != data_size:
        raise _FormatProblem(
            f"the entries cover {position} of the {data_size} data bytes"
        )


def _decode_safetensors(f: BinaryIO, header: dict, data_start: int) -> dict:
    out = {}
    for name, info in header.items():
        dtype = _np_dtype(_SAFETENSORS_DTYPES[info["dtype"]])
        shape = _int_tuple(info["shape"], "shape")
        begin, _ = info["data_offsets"]
        nbytes = math.prod(shape) * dtype.itemsize
        f.seek(data_start + begin)
        data = f.read(nbytes)
        out[name] = np.frombuffer(data, dtype=dtype).reshape(shape).copy()
    return out


def read_safetensors(path: PathLike) -> dict[str, np.ndarray]:
    """Read a `.safetensors` file into numpy arrays.

    Uses `safetensors.numpy.load_file`; bfloat16 (`BF16`) tensors come
    back as `ml_dtypes.bfloat16` arrays, and float8 tensors, which
    `safetensors.numpy` cannot map, are decoded here into `ml_dtypes`
    float8 arrays. The header is checked first (at most 100 MB; every
    entry's offsets inside the file and equal to its shape times its item
    size; the entries tiling the data without overlaps), so the arrays
    never take more memory than the file.

    Args:
        path: File to read (`str` or `os.PathLike`).

    Returns:
        `dict[str, numpy.ndarray]`: tensor name to an array with the stored
        shape and dtype.

    Raises:
        CheckpointError: The file is not a valid safetensors file.
        FileNotFoundError: `path` does not exist.

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


def read_safetensors_metadata(path: PathLike) -> dict[str, str]:
    """The free-form `__metadata__` of a `.safetensors` header.

    Reads only the header (at most 100 MB), not the tensors.

    Args:
        path: File to read.

    Returns:
        The metadata (string keys and values); empty when the file has
        none.

    Raises:
        CheckpointError: The file is not a valid safetensors file, or its
            metadata is not a map of strings.
        FileNotFoundError: `path` does not exist.

    Example:
        >>> read_safetensors_metadata("model.safetensors")  # doctest: +SKIP
        {'format': 'pt'}
    """
    spath = _check_file(path)
    try:
        with open(spath, "rb") as f:
            header = _raw_safetensors_header(f)[0]
    except _FormatProblem as err:
        raise _fail(spath, str(err)) from None
    metadata = header.get("__metadata__") or {}
    if not isinstance(metadata, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()
    ):
        raise _fail(spath, "safetensors __metadata__ is not a map of strings")
    return metadata


# --------------------------------------------------------------------------
# npz
# --------------------------------------------------------------------------


def _npy_header(stream: Any, name: str) -> tuple[tuple, bool, np.dtype, int]:
    """Parses an `.npy` header: (shape, fortran order, dtype, length)."""
    magic = stream.read(8)
    if len(magic) != 8 or magic[:6] != b"\x93NUMPY":
        raise _FormatProblem(f"entry '{name}' is not an .npy array")
    major = magic[6]
    if major == 1:
        size_bytes, fmt, encoding = 2, "<H", "latin1"
    elif major in (2, 3):
        size_bytes, fmt, encoding = 4, "<I", "latin1" if major == 2 else "utf8"
    else:
        raise _FormatProblem(f"entry '{name}' has .npy version {major}")
    (header_len,) = struct.unpack(fmt, stream.read(size_bytes) or b"\0" * 4)
    if header_len > _MAX_NPY_HEADER:
        raise _FormatProblem(
            f"entry '{name}' has a {header_len}-byte .npy header (numpy "
            f"writes about 128; at most {_MAX_NPY_HEADER} accepted)"
        )
    raw = stream.read(header_len)
    if len(raw) != header_len:
        raise _FormatProblem(f"entry '{name}' has a truncated .npy header")
    header = ast.literal_eval(raw.decode(encoding))
    if not (
        isinstance(header, dict)
        and set(header) == {"descr", "fortran_order", "shape"}
        and isinstance(header["fortran_order"], bool)
        and isinstance(header["shape"], tuple)
    ):
        raise _FormatProblem(f"entry '{name}' has an invalid .npy header")
    shape = _int_tuple(header["shape"], "shape")
    dtype = np.lib.format.descr_to_dtype(header["descr"])
    if dtype.hasobject:
        raise _FormatProblem(
            f"cannot read entry '{name}' without pickle: its dtype {dtype} "
            "holds Python objects"
        )
    length = 8 + size_bytes + header_len
    return shape, header["fortran_order"], dtype, length


def _npz_entries(zf: zipfile.ZipFile) -> list[tuple]:
    """(key, member, shape, fortran, dtype, header length) of each array."""
    entries = []
    for info in zf.infolist():
        name = info.filename
        key = name[:-4] if name.endswith(".npy") else name
        with zf.open(info) as stream:
            shape, fortran, dtype, length = _npy_header(stream, key)
        nbytes = math.prod(shape) * dtype.itemsize
        if info.file_size != length + nbytes:
            _wrong_member_size(
                info,
                length + nbytes,
                f"its .npy header (shape {shape}, {dtype})",
            )
        entries.append((key, info, shape, fortran, dtype, length))
    return entries


def _npz_array(zf: zipfile.ZipFile, entry: tuple) -> np.ndarray:
    key, info, shape, fortran, dtype, length = entry
    out = np.empty(shape[::-1] if fortran else shape, dtype=dtype)
    with zf.open(info) as stream:
        stream.read(length)
        if out.nbytes:
            flat = out.reshape(-1).view(np.uint8)
            _read_exactly(stream, memoryview(flat), info.filename)
    return np.ascontiguousarray(out.T) if fortran else out


def read_npz(
    path: PathLike, *, max_materialized_bytes: int | None = None
) -> dict[str, np.ndarray]:
    """Read every array of a numpy `.npz` archive (never unpickles).

    Each member's `.npy` header is read first: its shape times its item
    size must be exactly the bytes the member holds (checked before the
    member is decompressed), object arrays are refused, and all the arrays
    together may take at most `max_materialized_bytes`. Members are then
    read in 1 MiB chunks.

    Args:
        path: File to read (`str` or `os.PathLike`); the extension does
            not matter.
        max_materialized_bytes: Cap on the bytes of all arrays. `None`
            (default): the larger of 64 MiB and 4x the file size, which a
            real archive exceeds only when `np.savez_compressed` squeezed
            it more than 4x. Raise it for a file you trust.

    Returns:
        `dict[str, numpy.ndarray]`: entry name as stored (without the
        `.npy` suffix) to a C-contiguous array, dtype unchanged.

    Raises:
        CheckpointError: The file is not an npz archive, is corrupt, holds
            object arrays that would need pickle, or exceeds the cap.
        FileNotFoundError: `path` does not exist.

    Example:
        >>> arrays = read_npz("stages.npz")  # doctest: +SKIP
        >>> sorted(arrays)[:2]  # doctest: +SKIP
        ['stage0', 'stage1']
    """
    spath = _check_file(path)
    _check_limit(max_materialized_bytes, "max_materialized_bytes")
    try:
        if _head(spath, 6) == b"\x93NUMPY":
            raise _FormatProblem(
                "expected an .npz archive, found a single .npy array"
            )
        with zipfile.ZipFile(spath) as zf:
            entries = _npz_entries(zf)
            file_size = os.path.getsize(spath)
            total = sum(math.prod(e[2]) * e[4].itemsize for e in entries)
            _check_materialized(
                total,
                _materialize_cap(file_size, max_materialized_bytes),
                file_size,
                f"its {len(entries)} array(s)",
                max_materialized_bytes is not None,
            )
            return {entry[0]: _npz_array(zf, entry) for entry in entries}
    except _FormatProblem as err:
        raise _fail(spath, str(err)) from None
    except Exception as err:
        raise _fail(
            spath,
            f"not a readable .npz archive ({type(err).__name__}: {err})",
        ) from None


# --------------------------------------------------------------------------
# Dispatch
# --------------------------------------------------------------------------


def _looks_like_safetensors(head: bytes, size: int) -> bool:
    if len(head) < 10:
        return False
    (header_len,) = struct.unpack("<Q", head[:8])
    return 2 <= header_len <= size - 8 and head[8:9] == b"{"


def read_checkpoint(
    path: PathLike,
    *,
    max_materialized_bytes: int | None = None,
    max_pickle_bytes: int | None = MAX_PICKLE_BYTES,
) -> dict[str, np.ndarray]:
    """Read any supported checkpoint, detecting the format from its content.

    The extension is ignored: a zip archive with `data.pkl` is read as a
    PyTorch checkpoint (`read_pth` with `key="auto"`), a zip of
    `.npy` members as npz (`read_npz`), a file starting with a
    safetensors header as safetensors (`read_safetensors`), and a
    pickle stream as a legacy PyTorch checkpoint.

    Args:
        path: File to read (`str` or `os.PathLike`).
        max_materialized_bytes: Cap on the bytes a PyTorch or npz file may
            materialise; `None` (default) is the larger of 64 MiB and 4x
            the file size (see `read_pth`). A safetensors file never
            takes more than its own size.
        max_pickle_bytes: Cap on a PyTorch file's pickle (see
            `read_pth`).

    Returns:
        `dict[str, numpy.ndarray]`: tensor name to array, dtype as stored.

    Raises:
        UnsafeCheckpointError: A pickle references a forbidden global.
        CheckpointError: Unknown, corrupt or truncated file; the message
            lists the supported formats when the format is not recognised.
        FileNotFoundError: `path` does not exist.

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
            return read_pth(
                spath,
                max_materialized_bytes=max_materialized_bytes,
                max_pickle_bytes=max_pickle_bytes,
            )
        if names and all(n.endswith(".npy") for n in names):
            return read_npz(
                spath, max_materialized_bytes=max_materialized_bytes
            )
        raise _fail(
            spath,
            "zip archive that is neither a torch.save checkpoint (no "
            "data.pkl) nor an npz archive (non-.npy members); supported: "
            f"{SUPPORTED_FORMATS}",
        )
    if _looks_like_safetensors(head, size):
        return read_safetensors(spath)
    if head[:1] == b"\x80" or _is_tar_head(head):
        return read_pth(
            spath,
            max_materialized_bytes=max_materialized_bytes,
            max_pickle_bytes=max_pickle_bytes,
        )
    raise _fail(
        spath, f"unrecognised checkpoint format; supported: {SUPPORTED_FORMATS}"
    )


def _is_torch_file(spath: str) -> bool:
    head = _head(spath, 512)
    if _is_zip_head(head) or zipfile.is_zipfile(spath):
        try:
            with zipfile.ZipFile(spath) as zf:
                return _zip_prefix(zf.namelist()) is not None
        except Exception:
            return False
    # As `read_checkpoint`: a safetensors header length whose low byte is
    # 0x80 must not pass for a pickle's PROTO opcode.
    if _looks_like_safetensors(head, os.path.getsize(spath)):
        return False
    return head[:1] == b"\x80"


def read_checkpoint_extras(
    path: PathLike, *, max_pickle_bytes: int | None = MAX_PICKLE_BYTES
) -> dict:
    """What a checkpoint file holds beside its tensors, as plain values.

    For a PyTorch `torch.save` file: `read_pth_extras` (an mmdetection /
    mmsegmentation `meta` with `CLASSES`, `PALETTE` and the config text,
    an optimizer's state with its tensors summarised, epochs, ...),
    JSON-ready and read without torch or code execution. Other formats
    (`.safetensors`, `.npz`, shard indexes) hold tensors only: `{}`.

    Args:
        path: File to read (`str` or `os.PathLike`).
        max_pickle_bytes: Cap on a PyTorch file's pickle (see `read_pth`).

    Returns:
        dict: top-level key -> plain value (empty for other formats).

    Raises:
        UnsafeCheckpointError: A pickle references a forbidden global.
        CheckpointError: A corrupt file, or one over the caps.
        FileNotFoundError: `path` does not exist.

    Example:
        >>> read_checkpoint_extras("upernet_swin.pth")["meta"]["PALETTE"][0]
        [120, 120, 120]
    """
    spath = _check_file(path)
    try:
        torch_file = _is_torch_file(spath)
    except OSError as err:
        raise _fail(spath, f"could not read ({err})") from None
    if not torch_file:
        return {}
    return read_pth_extras(spath, max_pickle_bytes=max_pickle_bytes)


# --------------------------------------------------------------------------
# Sharded checkpoints
# --------------------------------------------------------------------------


def _shard_path(folder: str, shard: Any, index_path: str) -> str:
    """The shard's path, which must stay inside the index's folder."""
    if not isinstance(shard, str) or not shard or "\0" in shard:
        raise _fail(
            index_path,
            f"weight_map names the shard {shard!r}; expected a file name",
        )
    if os.path.isabs(shard):
        raise _fail(
            index_path,
            f"weight_map names the absolute path {shard!r}; shards must be "
            "files in the index's own folder, named relative to it",
        )
    real_folder = os.path.realpath(folder)
    real = os.path.realpath(os.path.join(folder, shard))
    if os.path.commonpath([real_folder, real]) != real_folder:
        raise _fail(
            index_path,
            f"weight_map names the shard {shard!r}, which resolves to "
            f"{real}, outside the index's folder {real_folder} (through "
            "'..' or a symbolic link); refusing to read it. Shards must be "
            "files in the index's own folder.",
        )
    return os.path.join(folder, shard)


def read_sharded(
    index_path: PathLike,
    *,
    max_materialized_bytes: int | None = None,
    max_pickle_bytes: int | None = MAX_PICKLE_BYTES,
) -> dict[str, np.ndarray]:
    """Read a sharded checkpoint through its `*.index.json`.

    The index is the Hugging Face layout, `{"weight_map": {tensor name:
    shard file}}`. Every shard must lie in the index's folder: absolute
    paths, `..` escapes and symbolic links resolving outside it are
    refused before any file is opened. Each shard is read with
    `read_checkpoint` (any supported format).

    Args:
        index_path: The `*.index.json` file.
        max_materialized_bytes: Per shard, as `read_checkpoint`.
        max_pickle_bytes: Per shard, as `read_checkpoint`.

    Returns:
        `dict[str, numpy.ndarray]`: every tensor of every shard.

    Raises:
        CheckpointError: The index is not a JSON object with a
            `weight_map` of names to file names, names a file outside its
            folder, or lists tensors its shards lack; or a shard is
            unreadable.
        FileNotFoundError: `index_path` or a shard does not exist.

    Example:
        >>> sd = read_sharded("model.safetensors.index.json")  # doctest: +SKIP
        >>> len(sd)  # doctest: +SKIP
        412
    """
    spath = _check_file(index_path)
    try:
        size = os.path.getsize(spath)
        if size > _MAX_INDEX_BYTES:
            raise _FormatProblem(
                f"the index is {_human(size)} long; a shard index is a few "
                f"hundred KiB (at most {_human(_MAX_INDEX_BYTES)} accepted)"
            )
        with open(spath, encoding="utf-8") as handle:
            weight_map = json.load(handle)["weight_map"]
        if not isinstance(weight_map, dict):
            raise TypeError("weight_map is not an object")
    except _FormatProblem as err:
        raise _fail(spath, str(err)) from None
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise _fail(
            spath,
            "not a shard index: expected a JSON object with a weight_map "
            f"of tensor names to shard files ({type(err).__name__}: {err})",
        ) from None
    folder = os.path.dirname(spath) or "."
    shards = dict.fromkeys(
        _shard_path(folder, shard, spath) for shard in weight_map.values()
    )
    tensors: dict[str, np.ndarray] = {}
    for shard in shards:
        tensors.update(
            read_checkpoint(
                shard,
                max_materialized_bytes=max_materialized_bytes,
                max_pickle_bytes=max_pickle_bytes,
            )
        )
    missing = sorted(set(weight_map) - set(tensors))
    if missing:
        raise _fail(spath, f"lists tensors its shards lack: {missing[:5]}")
    return tensors
