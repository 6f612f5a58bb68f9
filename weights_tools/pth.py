"""Safe, torch-free reader for PyTorch `torch.save` checkpoints.

Decodes both the zip container (torch >= 1.6) and the legacy non-zip pickle
stream into a plain `dict[str, numpy.ndarray]`. Nothing here imports
`torch` and nothing ever executes code from a file: the pickle is decoded
by a restricted unpickler that only resolves an allow-list of tensor-rebuild
functions and inert containers to this module's own stand-ins; any other
global is refused before anything is called.

Callers import `read_pth` from `weights_tools.readers`, which
re-exports it, or use `weights_tools.readers.read_checkpoint` to pick
the reader from the file's content.
"""

from __future__ import annotations

import _compat_pickle
import io
import math
import os
import pickle
import pickletools
import struct
import zipfile
from collections.abc import Callable
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
    _read_member,
    _wrong_member_size,
)

__all__ = ["MAX_PICKLE_BYTES", "read_pth", "read_pth_extras"]

#: Default cap on the length of a checkpoint's pickle (`data.pkl` or the
#: legacy stream's pickles): 32 MiB, about 70 times the pickle of a state
#: dict of 5,000 tensors.
MAX_PICKLE_BYTES = 32 * 2**20
# A pickle may hold one opcode per this many bytes of its cap (512 Ki
# opcodes by default, about 17,000 tensors): each opcode can create an
# object of up to ~200 bytes, so this bounds what unpickling allocates.
_PICKLE_BYTES_PER_OPCODE = 64
# Records such as `byteorder` and `version` are a few bytes long.
_MAX_RECORD_BYTES = 64

_TORCH_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
_TORCH_LEGACY_PROTOCOL = 1001
_STATE_DICT_KEYS = ("model", "state_dict", "model_state", "module")


# --------------------------------------------------------------------------
# dtypes
# --------------------------------------------------------------------------

# torch storage class name -> numpy dtype name
_STORAGE_DTYPES = {
    "FloatStorage": "float32",
    "DoubleStorage": "float64",
    "HalfStorage": "float16",
    "BFloat16Storage": "bfloat16",
    "LongStorage": "int64",
    "IntStorage": "int32",
    "ShortStorage": "int16",
    "CharStorage": "int8",
    "ByteStorage": "uint8",
    "BoolStorage": "bool",
    "ComplexFloatStorage": "complex64",
    "ComplexDoubleStorage": "complex128",
}

# torch dtype attribute name (`torch.<name>`) -> numpy dtype name
_TORCH_DTYPES = {
    "float32": "float32",
    "float": "float32",
    "float64": "float64",
    "double": "float64",
    "float16": "float16",
    "half": "float16",
    "bfloat16": "bfloat16",
    "int64": "int64",
    "long": "int64",
    "int32": "int32",
    "int": "int32",
    "int16": "int16",
    "short": "int16",
    "int8": "int8",
    "uint8": "uint8",
    "uint16": "uint16",
    "uint32": "uint32",
    "uint64": "uint64",
    "bool": "bool",
    "complex64": "complex64",
    "cfloat": "complex64",
    "complex128": "complex128",
    "cdouble": "complex128",
    "float8_e4m3fn": "float8_e4m3fn",
    "float8_e5m2": "float8_e5m2",
    "float8_e4m3fnuz": "float8_e4m3fnuz",
    "float8_e5m2fnuz": "float8_e5m2fnuz",
    "float8_e8m0fnu": "float8_e8m0fnu",
}


def _swap_unit(dtype: np.dtype) -> int:
    """Byte-swap granularity: the item size, or half of it for complex."""
    if dtype.kind == "c":
        return dtype.itemsize // 2
    return dtype.itemsize


def _byteswapped(data: bytes | memoryview, unit: int) -> bytes:
    raw = np.frombuffer(data, dtype=np.uint8)
    usable = raw.size - raw.size % unit
    swapped = raw[:usable].reshape(-1, unit)[:, ::-1]
    return swapped.tobytes() + raw[usable:].tobytes()


# --------------------------------------------------------------------------
# Inert stand-ins handed out by the restricted unpickler
# --------------------------------------------------------------------------


class _Inert:
    """Base for stand-ins: fixed slots, refuses pickle BUILD state."""

    __slots__ = ()

    def __setstate__(self, state: Any) -> None:
        raise _FormatProblem(
            f"unexpected pickle BUILD on {type(self).__name__}"
        )


class _StorageType(_Inert):
    """Marker for `torch.<X>Storage`; only meaningful in persistent ids."""

    __slots__ = ("name", "dtype_name")

    def __init__(self, name: str, dtype_name: str) -> None:
        self.name = name
        self.dtype_name = dtype_name

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise _FormatProblem(f"unexpected call of torch.{self.name}")


class _Marker(_Inert):
    """Marker for a torch type or dtype global that is never called."""

    __slots__ = ("name", "dtype_name")

    def __init__(self, name: str, dtype_name: str | None = None) -> None:
        self.name = name
        self.dtype_name = dtype_name

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise _FormatProblem(f"unexpected call of {self.name}")


class _StorageRef(_Inert):
    """A storage (or legacy storage view) of the file, not yet read."""

    __slots__ = ("key", "dtype", "numel", "byte_offset", "nbytes")

    def __init__(
        self,
        key: str,
        dtype: np.dtype,
        numel: int,
        byte_offset: int = 0,
        nbytes: int | None = None,
    ) -> None:
        self.key = key
        self.dtype = dtype
        self.numel = numel
        self.byte_offset = byte_offset
        self.nbytes = numel * dtype.itemsize if nbytes is None else nbytes


class _TensorRef(_Inert):
    """A dense tensor: storage, element offset, size and stride."""

    __slots__ = ("storage", "offset", "size", "stride", "dtype", "conj", "neg")

    def __init__(
        self,
        storage: _StorageRef,
        offset: int,
        size: tuple[int, ...],
        stride: tuple[int, ...],
        dtype: np.dtype,
        conj: bool,
        neg: bool,
    ) -> None:
        self.storage = storage
        self.offset = offset
        self.size = size
        self.stride = stride
        self.dtype = dtype
        self.conj = conj
        self.neg = neg


class _PickledOrderedDict(dict):
    """Stand-in for `collections.OrderedDict`; drops pickled attributes
    (such as a state dict's `_metadata`)."""

    def __setstate__(self, state: Any) -> None:
        return None


class _SafeCallable(_Inert):
    """A named, allow-listed callable implemented by this module."""

    __slots__ = ("name", "fn")

    def __init__(self, name: str, fn: Callable[..., Any]) -> None:
        self.name = name
        self.fn = fn

    def __call__(self, *args: Any) -> Any:
        return self.fn(*args)


def _make_tensor(
    storage: Any,
    offset: Any,
    size: Any,
    stride: Any,
    dtype: np.dtype | None,
    metadata: Any,
) -> _TensorRef:
    if not isinstance(storage, _StorageRef):
        raise _FormatProblem(
            f"tensor storage is {type(storage).__name__}, expected a storage "
            "persistent id"
        )
    if type(offset) is not int or offset < 0:
        raise _FormatProblem(f"invalid tensor storage offset {offset!r}")
    size_t = _int_tuple(size, "size")
    stride_t = _int_tuple(stride, "stride")
    if len(size_t) != len(stride_t):
        raise _FormatProblem(
            f"tensor size {size_t} and stride {stride_t} differ in length"
        )
    conj = neg = False
    if metadata:
        if not isinstance(metadata, dict):
            raise _FormatProblem(f"invalid tensor metadata {metadata!r}")
        for name, flag in metadata.items():
            if name == "conj":
                conj = bool(flag)
            elif name == "neg":
                neg = bool(flag)
            elif flag:
                raise _FormatProblem(f"unsupported tensor metadata {name!r}")
    return _TensorRef(
        storage,
        offset,
        size_t,
        stride_t,
        storage.dtype if dtype is None else dtype,
        conj,
        neg,
    )


def _rebuild_tensor(storage: Any, offset: Any, size: Any, stride: Any) -> Any:
    return _make_tensor(storage, offset, size, stride, None, None)


def _rebuild_tensor_v2(
    storage: Any,
    offset: Any,
    size: Any,
    stride: Any,
    requires_grad: Any,
    backward_hooks: Any,
    metadata: Any = None,
) -> Any:
    return _make_tensor(storage, offset, size, stride, None, metadata)


def _rebuild_tensor_v3(
    storage: Any,
    offset: Any,
    size: Any,
    stride: Any,
    requires_grad: Any,
    backward_hooks: Any,
    dtype: Any,
    metadata: Any = None,
) -> Any:
    if not isinstance(dtype, _Marker) or dtype.dtype_name is None:
        raise _FormatProblem(f"invalid tensor dtype {dtype!r}")
    np_dtype = _np_dtype(dtype.dtype_name)
    return _make_tensor(storage, offset, size, stride, np_dtype, metadata)


def _rebuild_parameter(data: Any, requires_grad: Any, hooks: Any) -> Any:
    if not isinstance(data, _TensorRef):
        raise _FormatProblem("Parameter does not wrap a tensor")
    return data


def _rebuild_parameter_with_state(
    data: Any, requires_grad: Any, hooks: Any, state: Any
) -> Any:
    return _rebuild_parameter(data, requires_grad, hooks)


def _make_ordered_dict(*args: Any) -> _PickledOrderedDict:
    if args:
        raise _FormatProblem("OrderedDict pickled with constructor arguments")
    return _PickledOrderedDict()


def _codecs_encode(text: Any, encoding: Any = "utf-8") -> bytes:
    # protocol-2 pickles store bytes as _codecs.encode(str, "latin1")
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise _FormatProblem("unexpected _codecs.encode arguments")
    return text.encode("latin1")


def _make_set(*args: Any) -> set:
    if len(args) > 1 or (args and not isinstance(args[0], list | tuple)):
        raise _FormatProblem("unexpected set arguments")
    return set(args[0]) if args else set()


def _make_frozenset(*args: Any) -> frozenset:
    return frozenset(_make_set(*args))


_TENSOR_REBUILDERS: dict[str, _SafeCallable] = {
    name: _SafeCallable(f"torch._utils.{name}", fn)
    for name, fn in (
        ("_rebuild_tensor", _rebuild_tensor),
        ("_rebuild_tensor_v2", _rebuild_tensor_v2),
        ("_rebuild_tensor_v3", _rebuild_tensor_v3),
        ("_rebuild_parameter", _rebuild_parameter),
        ("_rebuild_parameter_with_state", _rebuild_parameter_with_state),
    )
}
_TENSOR_TYPES = {
    "torch.Tensor": _Marker("torch.Tensor"),
    "torch._tensor.Tensor": _Marker("torch._tensor.Tensor"),
    "torch.nn.parameter.Parameter": _Marker("torch.nn.parameter.Parameter"),
}


def _rebuild_from_type_v2(func: Any, new_type: Any, args: Any, state: Any):
    if not any(func is f for f in _TENSOR_REBUILDERS.values()):
        raise _FormatProblem(
            "_rebuild_from_type_v2 does not wrap a tensor rebuild function"
        )
    if not any(new_type is t for t in _TENSOR_TYPES.values()):
        raise _FormatProblem("_rebuild_from_type_v2 with an unsupported type")
    if not isinstance(args, tuple):
        raise _FormatProblem("_rebuild_from_type_v2 arguments are not a tuple")
    return func(*args)


def _build_allow_list() -> dict[str, Any]:
    allowed: dict[str, Any] = {
        "collections.OrderedDict": _SafeCallable(
            "collections.OrderedDict", _make_ordered_dict
        ),
        "torch._tensor._rebuild_from_type_v2": _SafeCallable(
            "torch._tensor._rebuild_from_type_v2", _rebuild_from_type_v2
        ),
        "builtins.set": _SafeCallable("builtins.set", _make_set),
        "builtins.frozenset": _SafeCallable(
            "builtins.frozenset", _make_frozenset
        ),
        "_codecs.encode": _SafeCallable("_codecs.encode", _codecs_encode),
        "torch.storage.UntypedStorage": _StorageType(
            "storage.UntypedStorage", "uint8"
        ),
        "torch.UntypedStorage": _StorageType("UntypedStorage", "uint8"),
    }
    for name, fn in _TENSOR_REBUILDERS.items():
        allowed[f"torch._utils.{name}"] = fn
    allowed.update(_TENSOR_TYPES)
    for name, dtype_name in _STORAGE_DTYPES.items():
        allowed[f"torch.{name}"] = _StorageType(name, dtype_name)
    for name, dtype_name in _TORCH_DTYPES.items():
        allowed[f"torch.{name}"] = _Marker(f"torch.{name}", dtype_name)
    return allowed


_ALLOWED_GLOBALS = _build_allow_list()

# Legitimate torch globals that this reader cannot turn into dense arrays.
_UNSUPPORTED_TORCH_GLOBALS = {
    "torch._utils._rebuild_sparse_tensor": "sparse tensors",
    "torch._utils._rebuild_nested_tensor": "nested tensors",
    "torch._utils._rebuild_qtensor": "quantized tensors",
    "torch._utils._rebuild_meta_tensor_no_storage": "meta tensors",
    "torch._utils._rebuild_wrapper_subclass": "tensor wrapper subclasses",
    "torch._utils._rebuild_device_tensor_from_cpu_tensor": "device tensors",
    "torch._utils._rebuild_device_tensor_from_numpy": "device tensors",
    "torch._utils._rebuild_xla_tensor": "XLA tensors",
    "torch._utils._rebuild_mps_tensor": "MPS tensors",
    "torch.serialization._get_layout": "sparse tensor layouts",
    "torch.Size": "torch.Size objects",
    "torch.device": "torch.device objects",
}

_MODULE_ALIASES = {"torch.tensor": "torch._tensor"}


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickler resolving only allow-listed globals to inert stand-ins."""

    def __init__(
        self,
        file: BinaryIO,
        path: str,
        storages: dict[str, _StorageRef] | None,
        legacy: bool = False,
    ) -> None:
        super().__init__(file)
        self._path = path
        self._storages = storages
        self._legacy = legacy

    def find_class(self, module: str, name: str) -> Any:
        # Python 2 names, mapped as the standard unpickler would
        if (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        elif module in _compat_pickle.IMPORT_MAPPING:
            module = _compat_pickle.IMPORT_MAPPING[module]
        module = _MODULE_ALIASES.get(module, module)
        qualname = f"{module}.{name}"
        if self._storages is not None and qualname in _ALLOWED_GLOBALS:
            return _ALLOWED_GLOBALS[qualname]
        if self._storages is not None and qualname in (
            _UNSUPPORTED_TORCH_GLOBALS
        ):
            raise _fail(
                self._path,
                f"the checkpoint contains "
                f"{_UNSUPPORTED_TORCH_GLOBALS[qualname]} ({qualname}), "
                "which this reader does not support; only dense CPU "
                "tensors in state dicts can be read",
            )
        raise UnsafeCheckpointError(self._path, qualname)

    def persistent_load(self, pid: Any) -> Any:
        if self._storages is None:
            raise _FormatProblem("unexpected persistent id in header pickle")
        if not isinstance(pid, tuple) or not pid:
            raise _FormatProblem(f"invalid persistent id {pid!r}")
        tag = pid[0].decode("ascii") if isinstance(pid[0], bytes) else pid[0]
        if tag != "storage":
            raise _FormatProblem(
                f"unsupported persistent id type {tag!r} (pickled "
                "nn.Module objects are not supported; save a state dict)"
            )
        if self._legacy:
            if len(pid) != 6:
                raise _FormatProblem(f"invalid storage id {pid!r}")
            _, stype, key, _location, numel, view = pid
        else:
            if len(pid) != 5:
                raise _FormatProblem(f"invalid storage id {pid!r}")
            _, stype, key, _location, numel = pid
            view = None
        if not isinstance(stype, _StorageType):
            raise _FormatProblem(f"invalid storage type in {pid!r}")
        if isinstance(key, bytes):
            key = key.decode("ascii")
        if not isinstance(key, str) or type(numel) is not int or numel < 0:
            raise _FormatProblem(f"invalid storage id {pid!r}")
        dtype = _np_dtype(stype.dtype_name)
        root = self._storages.get(key)
        if root is None:
            root = _StorageRef(key, dtype, numel)
            self._storages[key] = root
        elif numel * dtype.itemsize != root.nbytes:
            raise _FormatProblem(
                f"storage '{key}' is declared twice with different sizes "
                f"({root.nbytes} and {numel * dtype.itemsize} bytes)"
            )
        if view is None:
            return root
        if not (
            isinstance(view, tuple)
            and len(view) == 3
            and all(type(v) is int and v >= 0 for v in view[1:])
        ):
            raise _FormatProblem(f"invalid storage view {view!r}")
        _, view_offset, view_numel = view
        itemsize = root.dtype.itemsize
        if view_offset + view_numel > root.numel:
            raise _FormatProblem(
                f"storage view {view!r} ends at element "
                f"{view_offset + view_numel} but storage '{key}' holds only "
                f"{root.numel} elements"
            )
        return _StorageRef(
            key,
            root.dtype,
            view_numel,
            byte_offset=view_offset * itemsize,
            nbytes=view_numel * itemsize,
        )


# --------------------------------------------------------------------------
# Pickle bounds
# --------------------------------------------------------------------------

_MEMO_PUTS = frozenset({"PUT", "BINPUT", "LONG_BINPUT"})


class _BoundedStream:
    """Read-only view of a binary stream that stops `limit` bytes on."""

    def __init__(self, f: BinaryIO, limit: int, what: str) -> None:
        self._f = f
        self._start = f.tell()
        self._limit = limit
        self._what = what

    def _room(self) -> int:
        return self._limit - (self._f.tell() - self._start)

    def _too_long(self) -> _FormatProblem:
        return _FormatProblem(
            f"{self._what} is longer than {_human(self._limit)} "
            "(max_pickle_bytes); the pickle of a state dict takes about 100 "
            "bytes per tensor. If you trust this file, pass a larger "
            "max_pickle_bytes."
        )

    def read(self, n: int = -1) -> bytes:
        if n < 0 or n > self._room():
            raise self._too_long()
        return self._f.read(n)

    def readline(self, n: int = -1) -> bytes:
        room = self._room()
        line = self._f.readline(room + 1)
        if len(line) > room:
            raise self._too_long()
        return line

    def tell(self) -> int:
        return self._f.tell() - self._start


def _scan_pickle(f: BinaryIO, limit: int, what: str) -> None:
    """Walks one pickle's opcodes without building anything, then rewinds.

    Refuses a pickle longer than `limit` bytes, one with more than
    `limit // _PICKLE_BYTES_PER_OPCODE` opcodes, and a memo index beyond
    the opcodes read so far (the C unpickler would allocate a memo table
    that large: 8 bytes of pickle can ask for gigabytes). Together these
    bound what the unpickler that runs next may allocate.
    """
    start = f.tell()
    max_ops = max(limit // _PICKLE_BYTES_PER_OPCODE, 1)
    ops = 0
    for opcode, arg, _ in pickletools.genops(_BoundedStream(f, limit, what)):
        ops += 1
        if ops > max_ops:
            raise _FormatProblem(
                f"{what} holds more than {max_ops} pickle opcodes (one per "
                f"{_PICKLE_BYTES_PER_OPCODE} bytes of max_pickle_bytes="
                f"{limit}); a state dict needs about 30 per tensor. If you "
                "trust this file, pass a larger max_pickle_bytes."
            )
        if opcode.name in _MEMO_PUTS and (type(arg) is not int or arg >= ops):
            raise _FormatProblem(
                f"{what} stores memo entry {arg!r} after only {ops} opcodes; "
                "picklers number memo entries from 0 (a corrupt or hostile "
                "file)"
            )
    f.seek(start)


# --------------------------------------------------------------------------
# Storage sources and materialisation
# --------------------------------------------------------------------------


class _StorageSource:
    """Reads the raw bytes of storages on demand, with byte-swapping."""

    def __init__(
        self,
        read_root: Callable[[str], bytes],
        big_endian: bool,
    ) -> None:
        self._read_root = read_root
        self._big_endian = big_endian
        self._cache: dict[tuple[str, int], bytes] = {}

    def root_bytes(self, key: str, unit: int) -> bytes:
        unit = unit if self._big_endian else 1
        cached = self._cache.get((key, unit))
        if cached is None:
            cached = self._cache.get((key, 1))
            if cached is None:
                cached = self._read_root(key)
                self._cache[(key, 1)] = cached
            if unit > 1:
                cached = _byteswapped(cached, unit)
                self._cache[(key, unit)] = cached
        return cached

    def evict(self, key: str) -> None:
        for cache_key in [k for k in self._cache if k[0] == key]:
            del self._cache[cache_key]


def _view_bytes(name: str, ref: _TensorRef) -> int:
    """Validates a tensor's view against its storage; returns its bytes.

    Sizes, strides and the offset are non-negative ints (checked when the
    tensor was unpickled); here the furthest element the view reaches must
    lie inside the storage.
    """
    storage = ref.storage
    itemsize = ref.dtype.itemsize
    numel = math.prod(ref.size)
    if numel:
        n_elems = storage.nbytes // itemsize
        last = ref.offset + sum(
            (s - 1) * st for s, st in zip(ref.size, ref.stride, strict=True)
        )
        if last >= n_elems:
            raise _FormatProblem(
                f"tensor '{name}' (offset {ref.offset}, size {ref.size}, "
                f"stride {ref.stride}) reaches element {last} but storage "
                f"'{storage.key}' holds only {n_elems} {ref.dtype} elements"
            )
    return numel * itemsize


def _check_budget(
    state: dict[str, _TensorRef],
    roots: dict[str, _StorageRef],
    file_size: int,
    max_materialized_bytes: int | None,
) -> None:
    """Checks every view and the bytes the read will take, reading nothing.

    Both the storages to be read and the arrays to be returned must fit
    under the cap of `weights_tools._errors._materialize_cap`.
    """
    cap = _materialize_cap(file_size, max_materialized_bytes)
    explicit = max_materialized_bytes is not None
    sizes = {name: _view_bytes(name, ref) for name, ref in state.items()}
    keys = dict.fromkeys(ref.storage.key for ref in state.values())
    stored = sum(roots[key].nbytes for key in keys)
    _check_materialized(
        stored, cap, file_size, f"its {len(keys)} storage(s)", explicit
    )
    largest = max(sizes, key=sizes.get, default=None)
    if largest is not None:
        ref = state[largest]
        what = (
            f"its {len(state)} tensor(s) (the largest, '{largest}', has size "
            f"{ref.size} and stride {ref.stride} over a storage of "
            f"{ref.storage.nbytes} bytes)"
        )
        _check_materialized(sum(sizes.values()), cap, file_size, what, explicit)


def _materialize_all(
    state: dict[str, _TensorRef], source: _StorageSource
) -> dict[str, np.ndarray]:
    """Materialise tensors in order, dropping storage bytes after last use.

    Call `_check_budget` first: this trusts the views.
    """
    remaining: dict[str, int] = {}
    for ref in state.values():
        key = ref.storage.key
        remaining[key] = remaining.get(key, 0) + 1
    out = {}
    for name, ref in state.items():
        out[name] = _materialize(ref, source)
        key = ref.storage.key
        remaining[key] -= 1
        if not remaining[key]:
            source.evict(key)
    return out


def _materialize(ref: _TensorRef, source: _StorageSource) -> np.ndarray:
    storage = ref.storage
    dtype = ref.dtype
    itemsize = dtype.itemsize
    root = source.root_bytes(storage.key, _swap_unit(dtype))
    root_needed = storage.byte_offset + storage.nbytes
    if len(root) < root_needed:
        raise _FormatProblem(
            f"storage '{storage.key}' has {len(root)} bytes but "
            f"{root_needed} are needed (truncated file?)"
        )
    if any(s == 0 for s in ref.size):
        return np.empty(ref.size, dtype=dtype)
    n_elems = storage.nbytes // itemsize
    base = np.frombuffer(
        root, dtype=dtype, count=n_elems, offset=storage.byte_offset
    )
    view = np.lib.stride_tricks.as_strided(
        base[ref.offset :],
        shape=ref.size,
        strides=tuple(st * itemsize for st in ref.stride),
        writeable=False,
    )
    out = np.array(view, dtype=dtype, order="C", copy=True)
    if ref.conj:
        out = np.conj(out)
    if ref.neg:
        out = np.negative(out)
    return out


def _describe(value: Any) -> str:
    if isinstance(value, dict):
        return "a nested dict"
    if isinstance(value, _StorageRef):
        return "a bare storage"
    return f"a {type(value).__name__} ({value!r:.60})"


def _is_tensor_dict(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and bool(value)
        and all(
            isinstance(k, str) and isinstance(v, _TensorRef)
            for k, v in value.items()
        )
    )


def _select_state_dict(obj: Any, key: str | None) -> tuple[dict, str]:
    """Pick the name->tensor dict; returns it and a label for messages."""
    if not isinstance(obj, dict):
        raise _FormatProblem(
            f"the checkpoint holds {_describe(obj)}, expected a dict of "
            "tensors (a state dict)"
        )
    if key == "auto":
        for candidate in _STATE_DICT_KEYS:
            if _is_tensor_dict(obj.get(candidate)):
                return obj[candidate], f"key '{candidate}'"
        for candidate in _STATE_DICT_KEYS:
            if isinstance(obj.get(candidate), dict):
                return obj[candidate], f"key '{candidate}'"
        return obj, "top level"
    if key is None:
        return obj, "top level"
    if key not in obj:
        keys = ", ".join(repr(k) for k in list(obj)[:20])
        raise _FormatProblem(
            f"key {key!r} not found; top-level keys are: {keys}"
        )
    return obj[key], f"key '{key}'"


#: Most objects `read_pth_extras` walks: a real checkpoint's extras (an
#: mmdet `meta`, an optimizer's state) hold a few thousand; more means a
#: pickle that shares one object many times over (a hostile file).
MAX_EXTRA_OBJECTS = 2**18
# Deeper nesting is summarised: real metadata is a few levels deep.
_MAX_EXTRA_DEPTH = 64


def _summary(value: Any) -> str:
    if isinstance(value, _TensorRef):
        shape = ", ".join(str(s) for s in value.size)
        return f"<tensor {value.dtype} [{shape}]>"
    if isinstance(value, _StorageRef):
        return f"<storage {value.dtype} x {value.numel}>"
    if isinstance(value, bytes | bytearray):
        return f"<{len(value)} bytes>"
    if isinstance(value, _Marker | _StorageType | _SafeCallable):
        return f"<{value.name}>"
    return f"<{type(value).__name__}>"


def _plain_extras(obj: dict, state: dict) -> dict:
    """The entries of `obj` beside the state dict, as JSON-ready values.

    Tensors are never read: each becomes a string such as
    `"<tensor float32 [96, 3, 4, 4]>"`. Tuples and sets become lists,
    dict keys strings; other stand-ins a short `"<...>"` summary.
    """
    if obj is state:  # the top level is the state dict: nothing beside
        return {}
    budget = [MAX_EXTRA_OBJECTS]

    def plain(value: Any, depth: int) -> Any:
        budget[0] -= 1
        if budget[0] < 0:
            raise _FormatProblem(
                "the entries beside the state dict hold more than "
                f"{MAX_EXTRA_OBJECTS} objects (a pickle that repeats one "
                "object many times: a corrupt or hostile file)"
            )
        if value is None or type(value) in (bool, int, float, str):
            return value
        if depth >= _MAX_EXTRA_DEPTH:
            return "<nested too deep>"
        if isinstance(value, dict):
            return {
                k if isinstance(k, str) else str(plain(k, depth + 1)): plain(
                    v, depth + 1
                )
                for k, v in value.items()
            }
        if isinstance(value, list | tuple):
            return [plain(v, depth + 1) for v in value]
        if isinstance(value, set | frozenset):
            items = [plain(v, depth + 1) for v in value]
            return sorted(items, key=repr)
        return _summary(value)

    return {
        str(k): plain(v, 1)
        for k, v in obj.items()
        if v is not state and not (k is None and v is None)
    }


def _check_state_dict(state: Any, label: str) -> dict[str, _TensorRef]:
    if not isinstance(state, dict):
        raise _FormatProblem(
            f"{label} holds {_describe(state)}, expected a dict of tensors"
        )
    for name, value in state.items():
        if not isinstance(name, str):
            raise _FormatProblem(
                f"{label}: entry {name!r} has a non-string name"
            )
        if isinstance(value, dict):
            raise _FormatProblem(
                f"{label}: entry '{name}' is a nested dict; nested state "
                "dicts are not flattened automatically (pass key= to pick "
                "a top-level entry)"
            )
        if not isinstance(value, _TensorRef):
            raise _FormatProblem(
                f"{label}: entry '{name}' is {_describe(value)}, not a "
                "tensor (pass key= to pick the state dict)"
            )
    return state


# --------------------------------------------------------------------------
# PyTorch files
# --------------------------------------------------------------------------


def _zip_prefix(names: list[str]) -> str | None:
    for name in names:
        parts = name.split("/")
        if len(parts) == 2 and parts[1] == "data.pkl":
            return parts[0] + "/"
        if name == "data.pkl":
            return ""
    return None


def _zip_record(zf: zipfile.ZipFile, name: str) -> bytes:
    info = zf.getinfo(name)
    if info.file_size > _MAX_RECORD_BYTES:
        raise _FormatProblem(
            f"record '{name}' is {_human(info.file_size)} long; a torch.save "
            f"record is a few bytes (at most {_MAX_RECORD_BYTES} accepted)"
        )
    return bytes(_read_member(zf, info, info.file_size, "the zip directory"))


def _load_zip(
    zf: zipfile.ZipFile,
    path: str,
    key: str | None,
    max_materialized_bytes: int | None,
    max_pickle_bytes: int,
    extras: bool = False,
) -> dict:
    names = zf.namelist()
    prefix = _zip_prefix(names)
    if prefix is None:
        raise _fail(
            path,
            "zip archive without a '<archive>/data.pkl' member: not a "
            "torch.save file (expected a PyTorch zip checkpoint)",
        )
    name_set = set(names)
    if f"{prefix}constants.pkl" in name_set or any(
        n.startswith(f"{prefix}code/") for n in names
    ):
        raise _fail(
            path,
            "this is a TorchScript archive (torch.jit.save), which is not "
            "supported; save model.state_dict() with torch.save instead",
        )
    big_endian = False
    if f"{prefix}byteorder" in name_set:
        order = _zip_record(zf, f"{prefix}byteorder").strip()
        if order not in (b"little", b"big"):
            raise _FormatProblem(f"unknown byteorder record {order!r}")
        big_endian = order == b"big"
    if f"{prefix}version" in name_set:
        version = _zip_record(zf, f"{prefix}version").strip()
        if not version.isdigit():
            raise _FormatProblem(f"invalid version record {version!r}")

    pkl = zf.getinfo(f"{prefix}data.pkl")
    if pkl.file_size > max_pickle_bytes:
        raise _FormatProblem(
            f"'{pkl.filename}' expands to {_human(pkl.file_size)}, more "
            f"than max_pickle_bytes={max_pickle_bytes}; the pickle of a "
            "state dict takes about 100 bytes per tensor. Refusing to "
            "decompress it; if you trust this file, pass a larger "
            "max_pickle_bytes."
        )
    stream = io.BytesIO(
        _read_member(zf, pkl, pkl.file_size, "the zip directory")
    )
    _scan_pickle(stream, max_pickle_bytes, f"'{pkl.filename}'")
    storages: dict[str, _StorageRef] = {}
    obj = _RestrictedUnpickler(stream, path, storages).load()
    del stream
    state, label = _select_state_dict(obj, key)
    state = _check_state_dict(state, label)
    if extras:
        return _plain_extras(obj, state)

    members: dict[str, zipfile.ZipInfo] = {}
    for ref in state.values():
        storage_key = ref.storage.key
        member = f"{prefix}data/{storage_key}"
        if member not in name_set:
            raise _FormatProblem(f"missing archive member '{member}'")
        info = members[storage_key] = zf.getinfo(member)
        root = storages[storage_key]
        if info.file_size != root.nbytes:
            _wrong_member_size(info, root.nbytes, _declared(root))
    _check_budget(
        state, storages, os.path.getsize(path), max_materialized_bytes
    )

    def read_root(storage_key: str) -> bytearray:
        root = storages[storage_key]
        return _read_member(
            zf, members[storage_key], root.nbytes, _declared(root)
        )

    source = _StorageSource(read_root, big_endian)
    return _materialize_all(state, source)


def _declared(root: _StorageRef) -> str:
    return f"storage '{root.key}' ({root.numel} x {root.dtype})"


def _load_legacy(
    f: BinaryIO,
    path: str,
    key: str | None,
    max_materialized_bytes: int | None,
    max_pickle_bytes: int,
    extras: bool = False,
) -> dict:
    def header_pickle() -> Any:
        _scan_pickle(f, max_pickle_bytes, "a header pickle")
        return _RestrictedUnpickler(f, path, None).load()

    try:
        magic = header_pickle()
    except CheckpointError:
        raise
    except Exception as err:
        raise _fail(
            path,
            "not a PyTorch checkpoint: it is neither a zip archive nor a "
            f"legacy torch.save pickle stream ({type(err).__name__}: {err}); "
            f"supported formats: {SUPPORTED_FORMATS}",
        ) from None
    if type(magic) is not int or magic != _TORCH_MAGIC_NUMBER:
        raise _fail(
            path,
            "wrong magic number: this pickle is not a legacy torch.save "
            f"stream (expected {_TORCH_MAGIC_NUMBER:#x}); supported "
            f"formats: {SUPPORTED_FORMATS}",
        )
    protocol = header_pickle()
    if protocol != _TORCH_LEGACY_PROTOCOL:
        raise _FormatProblem(
            f"unsupported legacy protocol version {protocol!r} "
            f"(expected {_TORCH_LEGACY_PROTOCOL})"
        )
    sys_info = header_pickle()
    if not isinstance(sys_info, dict):
        raise _FormatProblem("invalid sys_info record")

    storages: dict[str, _StorageRef] = {}
    _scan_pickle(f, max_pickle_bytes, "the main pickle")
    obj = _RestrictedUnpickler(f, path, storages, legacy=True).load()
    if extras:
        state, label = _select_state_dict(obj, key)
        return _plain_extras(obj, _check_state_dict(state, label))
    keys = header_pickle()
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise _FormatProblem("invalid storage key list")

    file_size = os.fstat(f.fileno()).st_size
    offsets: dict[str, tuple[int, int]] = {}
    pos = f.tell()
    for storage_key in keys:
        root = storages.get(storage_key)
        if root is None:
            raise _FormatProblem(
                f"storage '{storage_key}' is listed but never referenced"
            )
        f.seek(pos)
        count_bytes = f.read(8)
        if len(count_bytes) != 8:
            raise _FormatProblem(
                f"file ends before the data of storage '{storage_key}'"
            )
        (count,) = struct.unpack("<q", count_bytes)
        nbytes = count * root.dtype.itemsize
        if count >= 0 and count != root.numel:
            raise _FormatProblem(
                f"storage '{storage_key}' holds {count} elements but its "
                f"declaration says {root.numel} (a corrupt or hostile file)"
            )
        if count < 0 or pos + 8 + nbytes > file_size:
            raise _FormatProblem(
                f"data of storage '{storage_key}' is truncated: needs "
                f"{nbytes} bytes at offset {pos + 8}, file has {file_size}"
            )
        offsets[storage_key] = (pos + 8, nbytes)
        pos += 8 + nbytes

    state, label = _select_state_dict(obj, key)
    state = _check_state_dict(state, label)
    _check_budget(state, storages, file_size, max_materialized_bytes)

    def read_root(storage_key: str) -> bytes:
        if storage_key not in offsets:
            raise _FormatProblem(f"no data for storage '{storage_key}'")
        start, nbytes = offsets[storage_key]
        f.seek(start)
        data = f.read(nbytes)
        if len(data) != nbytes:
            raise _FormatProblem(f"short read of storage '{storage_key}'")
        return data

    source = _StorageSource(read_root, big_endian=False)
    return _materialize_all(state, source)


def read_pth(
    path: PathLike,
    key: str | None = "auto",
    *,
    max_materialized_bytes: int | None = None,
    max_pickle_bytes: int | None = MAX_PICKLE_BYTES,
) -> dict[str, np.ndarray]:
    """Read a PyTorch `torch.save` checkpoint without torch or pickle code.

    Both containers are supported: the zip archive written by torch >= 1.6
    (`<archive>/data.pkl` plus raw storages `<archive>/data/<key>`,
    honouring `<archive>/byteorder`) and the legacy stream written with
    `_use_new_zipfile_serialization=False`. The pickle is decoded with a
    restricted unpickler: only tensor-rebuild functions, storage types,
    `OrderedDict` and a few inert builtins are resolved, each to this
    module's own stand-in, so nothing from the file is ever called. Storage
    offsets, sizes and strides are honoured (views and transposed tensors
    come back as contiguous copies); `nn.Parameter` becomes a plain array.

    Memory stays bounded by the file, whatever it holds: the pickle is
    checked against `max_pickle_bytes` (its length, and one opcode per
    64 bytes of it) before it is unpickled; every storage must hold
    exactly the bytes its declaration says (checked before a compressed
    member is decompressed, then read in 1 MiB chunks); every view must
    lie inside its storage; and the storages read plus the arrays returned
    may take at most `max_materialized_bytes` (default: the larger of
    64 MiB and 4x the file size). A real checkpoint stays near 1x; a
    hand-made one that repeats a storage through zero or overlapping
    strides, or compresses it, is refused with a message saying so.

    Args:
        path: File to read (`str` or `os.PathLike`).
        key: Which dict in the file holds the tensors. `"auto"` (default):
            if the top-level dict has `'model'`, `'state_dict'`,
            `'model_state'` or `'module'` (checked in that order) whose
            value is a dict of tensors, use it, else the top level. `None`:
            the top level must be a flat name -> tensor dict. Any other
            string: use that top-level entry. Key names are never altered
            (no `module.` stripping) and nested dicts are not flattened.
        max_materialized_bytes: Cap on the bytes of storages read plus
            arrays returned. `None` (default): the larger of
            `MATERIALIZE_FLOOR` (64 MiB) and `MATERIALIZE_FILE_FACTOR`
            (4) times the file size. Raise it only for a file you trust.
        max_pickle_bytes: Cap on the length of the pickle (`data.pkl`
            or the legacy stream's pickles); it may also hold at most one
            opcode per 64 bytes of it. Default (also for `None`):
            `MAX_PICKLE_BYTES`, 32 MiB and 512 Ki opcodes, about 17,000
            tensors.

    Returns:
        `dict[str, numpy.ndarray]` in file order: tensor name to a
        C-contiguous array with the stored shape and dtype (`float32`,
        `float16`, `int64`, `bool`, ...; bfloat16 and float8 storages
        use `ml_dtypes` dtypes). 0-d tensors give 0-d arrays.

    Raises:
        UnsafeCheckpointError: The pickle references a global outside the
            allow-list (e.g. `os.system`); nothing was executed.
        CheckpointError: The file is not a torch checkpoint, is corrupt or
            truncated, the chosen state dict holds non-tensor entries, or
            the file would exceed `max_materialized_bytes` or
            `max_pickle_bytes`.
        FileNotFoundError: `path` does not exist.
        ValueError: A cap is not a positive int.

    Example:
        >>> sd = read_pth("swin_tiny_patch4_window7_224.pth")  # doctest: +SKIP
        >>> sd["patch_embed.proj.weight"].shape  # doctest: +SKIP
        (96, 3, 4, 4)
        >>> read_pth("training_state.pt", key="ema")  # doctest: +SKIP
        >>> read_pth("trusted_broadcast.pth",  # doctest: +SKIP
        ...          max_materialized_bytes=8 * 2**30)
    """
    return _read_pth(
        path, key, max_materialized_bytes, max_pickle_bytes, extras=False
    )


def _read_pth(
    path: PathLike,
    key: str | None,
    max_materialized_bytes: int | None,
    max_pickle_bytes: int | None,
    extras: bool,
) -> dict:
    spath = _check_file(path)
    if key is not None and not isinstance(key, str):
        raise TypeError(f"key must be a str or None, not {type(key)!r}")
    _check_limit(max_materialized_bytes, "max_materialized_bytes")
    _check_limit(max_pickle_bytes, "max_pickle_bytes")
    if max_pickle_bytes is None:
        max_pickle_bytes = MAX_PICKLE_BYTES
    limits = (max_materialized_bytes, max_pickle_bytes)
    try:
        head = _head(spath, 512)
        if not head:
            raise _fail(
                spath,
                "file is empty; expected a PyTorch checkpoint (torch.save "
                "zip archive or legacy pickle stream)",
            )
        if _is_zip_head(head) or zipfile.is_zipfile(spath):
            try:
                zf = zipfile.ZipFile(spath)
            except (zipfile.BadZipFile, OSError, EOFError) as err:
                raise _fail(
                    spath,
                    f"corrupt or truncated zip archive ({err}); expected a "
                    "PyTorch zip checkpoint",
                ) from None
            with zf:
                return _load_zip(zf, spath, key, *limits, extras)
        if _is_tar_head(head):
            raise _fail(
                spath,
                "this is a pre-0.4 PyTorch tar checkpoint, which is not "
                "supported; re-save it with a recent torch",
            )
        with open(spath, "rb") as f:
            return _load_legacy(f, spath, key, *limits, extras)
    except CheckpointError:
        raise
    except _FormatProblem as err:
        raise _fail(spath, str(err)) from None
    except (pickle.UnpicklingError, EOFError) as err:
        raise _fail(
            spath, f"corrupt or truncated pickle data ({err})"
        ) from None
    except zipfile.BadZipFile as err:
        raise _fail(spath, f"corrupt zip archive member ({err})") from None
    except (OSError, MemoryError) as err:
        raise _fail(spath, f"could not read ({err})") from None
    except Exception as err:
        raise _fail(
            spath,
            f"corrupt checkpoint data ({type(err).__name__}: {err})",
        ) from None


def read_pth_extras(
    path: PathLike,
    key: str | None = "auto",
    *,
    max_pickle_bytes: int | None = MAX_PICKLE_BYTES,
) -> dict:
    """The entries of a `torch.save` file beside its state dict.

    mmdetection and mmsegmentation checkpoints are `{'meta': {...},
    'state_dict': {...}}`, sometimes with `'optimizer'`; the official
    classification ones `{'model': ..., 'optimizer': ..., 'epoch': ...}`.
    This returns everything but the state dict `read_pth` would pick
    (same `key` rule), decoded by the same restricted unpickler under
    the same `max_pickle_bytes` bound; no tensor data is read. Values
    come back JSON-ready: tuples and sets as lists, dict keys as
    strings, each tensor (e.g. an optimizer's moments) as a summary
    string `"<tensor float32 [96, 3, 4, 4]>"`, other allowed torch
    objects as `"<torch.float32>"`-style names.

    Args:
        path: File to read (`str` or `os.PathLike`).
        key: Which entry is the state dict, as in `read_pth`.
        max_pickle_bytes: Cap on the pickle, as in `read_pth`.

    Returns:
        dict: top-level key -> plain value; empty when the file's top
        level is the state dict itself.

    Raises:
        UnsafeCheckpointError: The pickle references a global outside the
            allow-list; nothing was executed.
        CheckpointError: The file is not a torch checkpoint, is corrupt,
            exceeds `max_pickle_bytes`, or its extras hold more than
            `MAX_EXTRA_OBJECTS` objects.
        FileNotFoundError: `path` does not exist.

    Example:
        >>> extras = read_pth_extras("mask_rcnn.pth")  # doctest: +SKIP
        >>> extras["meta"]["CLASSES"][:2]  # doctest: +SKIP
        ['person', 'bicycle']
        >>> extras["optimizer"]["state"]["0"]["exp_avg"]  # doctest: +SKIP
        '<tensor float32 [96, 3, 4, 4]>'
    """
    return _read_pth(path, key, None, max_pickle_bytes, extras=True)
