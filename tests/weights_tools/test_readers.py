"""Tests for weights_tools.readers (safe, torch-free checkpoint readers).

torch is used here only to write fixtures and as the reference reader
(``torch.load(..., weights_only=True)``).
"""

from __future__ import annotations

import collections
import hashlib
import io
import os
import pickle
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import ml_dtypes
import numpy as np
import pytest
import torch
from helpers import BACKEND

from weights_tools.readers import (
    CheckpointError,
    UnsafeCheckpointError,
    read_checkpoint,
    read_npz,
    read_pth,
    read_safetensors,
)

#: Backend-independent (weights_tools needs no Keras backend): one leg.
pytestmark = pytest.mark.skipif(
    BACKEND != "torch",
    reason="backend-independent; runs in the PyTorch leg",
)

REPO_ROOT = Path(__file__).resolve().parents[2]
GOLDEN_PTH = REPO_ROOT / "tests/golden/swin_official/tiny_w4_64/checkpoint.pth"
TORCH_MAGIC = 0x1950A86A20F9469CFC6C

# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------


def _state_dict() -> collections.OrderedDict:
    g = torch.Generator().manual_seed(0)
    big = torch.randn(4, 6, generator=g)
    sd = collections.OrderedDict()
    sd["f32"] = torch.randn(3, 5, generator=g)
    sd["f16"] = torch.randn(2, 3, generator=g).half()
    sd["bf16"] = torch.randn(7, generator=g).bfloat16()
    sd["i64"] = torch.arange(-5, 7).reshape(3, 4)
    sd["bool"] = torch.tensor([[True, False, True], [False, False, True]])
    sd["f64"] = torch.randn(2, 2, generator=g).double()
    sd["i32"] = torch.arange(6, dtype=torch.int32)
    sd["u8"] = torch.arange(250, 256, dtype=torch.uint8)
    sd["i8"] = torch.arange(-3, 3, dtype=torch.int8)
    sd["transposed"] = torch.randn(3, 4, generator=g).t()
    sd["big"] = big
    sd["row_slice"] = big[1:3]  # shares storage, storage offset 6
    sd["col_slice"] = big[:, 2:5]  # offset 2 and non-contiguous
    sd["scalar"] = torch.tensor(3.25)
    sd["param"] = torch.nn.Parameter(torch.randn(2, 3, generator=g))
    sd["empty"] = torch.zeros(0, 3)
    sd["module.kept_prefix"] = torch.ones(1)
    return sd


def _torch_dtype_name(t: torch.Tensor) -> str:
    return str(t.dtype).removeprefix("torch.")


def _assert_same(ours: dict, ref: dict) -> None:
    assert list(ours) == list(ref)
    for name, tensor in ref.items():
        arr = ours[name]
        t = tensor.detach().resolve_conj().resolve_neg().contiguous()
        assert isinstance(arr, np.ndarray), name
        assert str(arr.dtype) == _torch_dtype_name(t), name
        assert arr.shape == tuple(t.shape), name
        assert arr.flags.c_contiguous and arr.flags.writeable, name
        expected = t.reshape(-1).view(torch.uint8).numpy().tobytes()
        assert arr.tobytes() == expected, name


def _save(obj, path: Path, container: str) -> Path:
    if container == "zip":
        torch.save(obj, path)
    else:
        torch.save(obj, path, _use_new_zipfile_serialization=False)
    return path


def _write_torch_zip(path: Path, data_pkl: bytes, storages=None, **extra):
    """Write a zip in the torch layout with hand-made members."""
    prefix = extra.pop("prefix", "archive")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr(f"{prefix}/data.pkl", data_pkl)
        zf.writestr(f"{prefix}/byteorder", extra.pop("byteorder", "little"))
        for key, raw in (storages or {}).items():
            zf.writestr(f"{prefix}/data/{key}", raw)
        for name, raw in extra.items():
            zf.writestr(f"{prefix}/{name}", raw)
        zf.writestr(f"{prefix}/version", "3\n")
    return path


def _write_legacy(path: Path, main_pkl: bytes, storages=None) -> Path:
    """Write a legacy torch.save stream with a hand-made main pickle.

    ``storages`` maps key -> (element count, raw bytes).
    """
    storages = storages or {}
    sys_info = {
        "protocol_version": 1001,
        "little_endian": True,
        "type_sizes": {"short": 2, "int": 4, "long": 4},
    }
    out = io.BytesIO()
    for obj in (TORCH_MAGIC, 1001, sys_info):
        pickle.dump(obj, out, protocol=2)
    out.write(main_pkl)
    pickle.dump(list(storages), out, protocol=2)
    for count, raw in storages.values():
        out.write(struct.pack("<q", count))
        out.write(raw)
    path.write_bytes(out.getvalue())
    return path


# Forging pickles that reference torch globals without torch: objects in
# this module are pickled, then their GLOBAL opcodes are renamed.


class FloatStorage:  # pickled as torch.FloatStorage after renaming
    pass


def _rebuild_tensor_v2(*args):  # renamed to torch._utils._rebuild_tensor_v2
    raise AssertionError("never called")


class _Tensor:
    def __init__(
        self, key, numel, offset, size, stride, legacy=False, view=None
    ):
        self.pid = ("storage", FloatStorage, key, "cpu", numel)
        if legacy:  # legacy ids carry view metadata
            self.pid = self.pid + (view,)
        self.args = (offset, size, stride)

    def __reduce__(self):
        pid = _PID(self.pid)
        return (
            _rebuild_tensor_v2,
            (pid, *self.args, False, collections.OrderedDict()),
        )


class _PID:
    def __init__(self, pid):
        self.pid = pid


class _ForgingPickler(pickle.Pickler):
    def persistent_id(self, obj):
        return obj.pid if isinstance(obj, _PID) else None


def _forge(obj) -> bytes:
    buf = io.BytesIO()
    _ForgingPickler(buf, protocol=2).dump(obj)
    data = buf.getvalue()
    mod = __name__.encode()
    data = data.replace(
        b"c" + mod + b"\nFloatStorage\n", b"ctorch\nFloatStorage\n"
    )
    data = data.replace(
        b"c" + mod + b"\n_rebuild_tensor_v2\n",
        b"ctorch._utils\n_rebuild_tensor_v2\n",
    )
    assert mod not in data
    return data


def _f32(values) -> bytes:
    return np.asarray(values, dtype="<f4").tobytes()


# Malicious payloads


class _Evil:
    def __init__(self, func, args):
        self.func, self.args = func, args

    def __reduce__(self):
        return (self.func, self.args)


def _payloads(marker: Path):
    code = f"open({str(marker)!r}, 'w').close()"
    return {
        "system": _Evil(os.system, (f"touch {marker}",)),
        "eval": _Evil(eval, (code,)),
        "exec": _Evil(exec, (code,)),
        "popen": _Evil(subprocess.Popen, (["touch", str(marker)],)),
    }


_EXPECTED_GLOBAL = {
    "system": {"posix.system", "os.system", "nt.system"},
    "eval": {"builtins.eval"},
    "exec": {"builtins.exec"},
    "popen": {"subprocess.Popen"},
}


def _assert_unsafe(err: UnsafeCheckpointError, path: Path, kind: str):
    assert err.global_name in _EXPECTED_GLOBAL[kind]
    msg = str(err)
    assert str(path) in msg
    assert err.global_name in msg
    assert "Nothing from the file was executed" in msg
    assert "weights_only=True" in msg and "safetensors" in msg


# --------------------------------------------------------------------------
# read_pth: round trips against torch.load
# --------------------------------------------------------------------------


@pytest.mark.parametrize("container", ["zip", "legacy"])
@pytest.mark.parametrize("wrapper", [None, "model", "state_dict", "module"])
def test_read_pth_matches_torch(tmp_path, container, wrapper):
    sd = _state_dict()
    obj = sd if wrapper is None else {wrapper: sd, "epoch": 7, "acc": 0.5}
    path = _save(obj, tmp_path / f"ckpt_{container}.pth", container)
    ref = torch.load(path, weights_only=True)
    ref = ref if wrapper is None else ref[wrapper]
    ours = read_pth(path)
    _assert_same(ours, ref)
    assert ours["bf16"].dtype == ml_dtypes.bfloat16
    assert ours["scalar"].shape == ()
    assert ours["param"].dtype == np.float32
    assert "module.kept_prefix" in ours


@pytest.mark.parametrize("container", ["zip", "legacy"])
def test_read_pth_extended_dtypes(tmp_path, container):
    g = torch.Generator().manual_seed(1)
    sd = {
        "u16": torch.tensor([1, 65535, 7]).to(torch.uint16),
        "f8": torch.randn(5, generator=g).to(torch.float8_e4m3fn),
        "c64": torch.randn(3, dtype=torch.complex64, generator=g),
        "c64_conj_view": torch.randn(
            3, dtype=torch.complex64, generator=g
        ).conj(),
        "neg_view": torch.randn(2, dtype=torch.complex64, generator=g)
        .conj()
        .imag,
        "with_attr": torch.ones(2),
    }
    sd["with_attr"].note = "rebuilt through _rebuild_from_type_v2"
    path = _save(sd, tmp_path / "ext.pt", container)
    ours = read_pth(path)
    # torch itself cannot load uint16/float8 from the legacy container, so
    # the reference is always torch.load of the zip container
    ref_path = _save(sd, tmp_path / "ref.pt", "zip")
    _assert_same(ours, torch.load(ref_path, weights_only=True))
    assert ours["f8"].dtype == ml_dtypes.float8_e4m3fn


def test_read_pth_prefix_and_extension_do_not_matter(tmp_path):
    sd = _state_dict()
    path = tmp_path / "weird-name.v2.bin"
    torch.save(sd, path)
    with zipfile.ZipFile(path) as zf:
        assert zf.namelist()[0].split("/")[0] != "archive"
    _assert_same(read_pth(str(path)), sd)


def test_read_pth_big_endian_zip(tmp_path):
    sd = {"f32": torch.randn(3, 4), "i64": torch.arange(5), "c": torch.ones(1)}
    sd["bf16"] = torch.randn(4).bfloat16()
    sd["cplx"] = torch.randn(2, dtype=torch.complex64)
    src = tmp_path / "little.pt"
    torch.save(sd, src)
    dst = tmp_path / "big.pt"
    with zipfile.ZipFile(src) as zin:
        pkl = zin.read("little/data.pkl")
        with zipfile.ZipFile(dst, "w") as zout:
            for info in zin.infolist():
                name = info.filename.replace("little/", "big/", 1)
                raw = zin.read(info)
                if name == "big/byteorder":
                    raw = b"big"
                elif name.startswith("big/data/"):
                    t = sd[list(sd)[int(name.rsplit("/", 1)[1])]]
                    unit = t.element_size()
                    unit = unit // 2 if t.is_complex() else unit
                    raw = np.frombuffer(raw, np.uint8).reshape(-1, unit)
                    raw = raw[:, ::-1].tobytes()
                elif name == "big/data.pkl":
                    raw = pkl
                zout.writestr(name, raw)
    ours = read_pth(dst)
    _assert_same(ours, torch.load(dst, weights_only=True))
    _assert_same(ours, sd)


def test_read_pth_golden_swin_checkpoint():
    ref = torch.load(GOLDEN_PTH, weights_only=True)["model"]
    ours = read_pth(GOLDEN_PTH)
    assert len(ours) == len(ref) > 100
    _assert_same(ours, ref)
    assert read_checkpoint(GOLDEN_PTH).keys() == ours.keys()


def test_read_pth_without_torch_installed():
    ref = torch.load(GOLDEN_PTH, weights_only=True)["model"]
    digest = hashlib.sha256()
    for name, t in ref.items():
        digest.update(name.encode())
        digest.update(str(tuple(t.shape)).encode())
        digest.update(t.contiguous().numpy().tobytes())
    script = (
        "import sys, hashlib\n"
        "sys.modules['torch'] = None\n"
        f"sys.path.insert(0, {str(REPO_ROOT)!r})\n"
        "from weights_tools.readers import read_pth\n"
        f"sd = read_pth({str(GOLDEN_PTH)!r})\n"
        "h = hashlib.sha256()\n"
        "for k, v in sd.items():\n"
        "    h.update(k.encode()); h.update(str(v.shape).encode())\n"
        "    h.update(v.tobytes())\n"
        "assert sys.modules['torch'] is None\n"
        "print(h.hexdigest())\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO_ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == digest.hexdigest()


# --------------------------------------------------------------------------
# read_pth: choosing the state dict
# --------------------------------------------------------------------------


def test_key_auto_order_and_explicit(tmp_path):
    a, b = {"w": torch.ones(2)}, {"w": torch.zeros(3)}
    path = tmp_path / "both.pth"
    torch.save({"state_dict": b, "model": a, "epoch": 1}, path)
    assert read_pth(path)["w"].shape == (2,)  # 'model' wins
    assert read_pth(path, key="state_dict")["w"].shape == (3,)
    with pytest.raises(CheckpointError, match="'state_dict' is a nested"):
        read_pth(path, key=None)
    with pytest.raises(CheckpointError, match="'missing' not found"):
        read_pth(path, key="missing")


def test_key_auto_skips_non_tensor_wrapper(tmp_path):
    path = tmp_path / "wrapped.pth"
    torch.save(
        {"model": {"arch": "swin"}, "state_dict": {"w": torch.ones(1)}}, path
    )
    assert list(read_pth(path)) == ["w"]


def test_non_tensor_leaf_is_error_naming_key(tmp_path):
    path = tmp_path / "leaf.pth"
    torch.save({"model": {"w": torch.ones(1), "num_batches": 3}}, path)
    with pytest.raises(CheckpointError) as info:
        read_pth(path)
    assert "num_batches" in str(info.value) and str(path) in str(info.value)


def test_nested_dict_is_error_naming_key(tmp_path):
    path = tmp_path / "nested.pth"
    torch.save({"w": torch.ones(1), "block": {"w": torch.ones(1)}}, path)
    with pytest.raises(CheckpointError, match="'block' is a nested dict"):
        read_pth(path)
    assert list(read_pth(path, key="block")) == ["w"]


def test_top_level_not_a_dict(tmp_path):
    path = tmp_path / "tensor.pt"
    torch.save(torch.ones(3), path)
    with pytest.raises(CheckpointError, match="expected a dict of tensors"):
        read_pth(path)


def test_unsupported_tensor_kinds_are_checkpoint_errors(tmp_path):
    path = tmp_path / "sparse.pt"
    torch.save({"s": torch.eye(3).to_sparse()}, path)
    with pytest.raises(CheckpointError, match="sparse") as info:
        read_pth(path)
    assert not isinstance(info.value, UnsafeCheckpointError)


def test_torchscript_archive_rejected(tmp_path):
    pkl = _forge({"w": _Tensor("0", 2, 0, (2,), (1,))})
    path = _write_torch_zip(
        tmp_path / "scripted.pt",
        pkl,
        {"0": _f32([1, 2])},
        **{"constants.pkl": b"", "code/__torch__/m.py": b""},
    )
    with pytest.raises(CheckpointError, match="TorchScript"):
        read_pth(path)


# --------------------------------------------------------------------------
# read_pth: hand-made (forged) files
# --------------------------------------------------------------------------


def test_forged_zip_strides_and_offsets(tmp_path):
    storage = _f32(np.arange(12))
    pkl = _forge(
        {
            "t": _Tensor("0", 12, 1, (3, 2), (1, 4)),
            "bcast": _Tensor("0", 12, 5, (2, 3), (0, 1)),
        }
    )
    path = _write_torch_zip(tmp_path / "forged.pth", pkl, {"0": storage})
    out = read_pth(path)
    base = np.arange(12, dtype=np.float32)
    expected = np.lib.stride_tricks.as_strided(base[1:], (3, 2), (4, 16))
    np.testing.assert_array_equal(out["t"], expected)
    np.testing.assert_array_equal(out["t"], [[1, 5], [2, 6], [3, 7]])
    np.testing.assert_array_equal(out["bcast"], [[5, 6, 7], [5, 6, 7]])
    assert out["bcast"].flags.owndata


def test_forged_legacy_storage_view(tmp_path):
    view = ("1", 2, 3)  # elements 2..4 of storage '0'
    pkl = _forge({"v": _Tensor("0", 6, 1, (2,), (1,), legacy=True, view=view)})
    path = _write_legacy(
        tmp_path / "view.pth", pkl, {"0": (6, _f32([0, 1, 2, 3, 4, 5]))}
    )
    np.testing.assert_array_equal(read_pth(path)["v"], [3, 4])


@pytest.mark.parametrize(
    "tensor, match",
    [
        (_Tensor("0", 4, 0, (5,), (1,)), "reaches element 4"),
        (_Tensor("0", 4, 3, (2,), (1,)), "reaches element 4"),
        (_Tensor("0", 4, 0, (2, 2), (3, 1)), "reaches element 4"),
        (_Tensor("0", 4, -1, (2,), (1,)), "storage offset"),
        (_Tensor("0", 4, 0, (2,), (-1,)), "stride"),
        (_Tensor("0", 4, 0, (2, 2), (1,)), "differ in length"),
        (_Tensor("0", 8, 0, (2,), (1,)), "truncated"),
        (_Tensor("9", 4, 0, (2,), (1,)), "missing archive member"),
    ],
)
def test_forged_zip_bad_geometry(tmp_path, tensor, match):
    pkl = _forge({"t": tensor})
    path = _write_torch_zip(tmp_path / "bad.pth", pkl, {"0": _f32(range(4))})
    with pytest.raises(CheckpointError, match=match) as info:
        read_pth(path)
    assert str(path) in str(info.value)


def test_forged_legacy_short_storage(tmp_path):
    pkl = _forge({"t": _Tensor("0", 4, 0, (4,), (1,), legacy=True)})
    path = _write_legacy(tmp_path / "short.pth", pkl, {"0": (4, _f32([1]))})
    with pytest.raises(CheckpointError, match="truncated"):
        read_pth(path)


def test_legacy_wrong_magic_number(tmp_path):
    path = tmp_path / "magic.pth"
    path.write_bytes(pickle.dumps(12345, protocol=2) + b"\x00" * 16)
    with pytest.raises(CheckpointError, match="magic number") as info:
        read_pth(path)
    assert str(path) in str(info.value)


def test_bad_byteorder_record(tmp_path):
    pkl = _forge({"t": _Tensor("0", 1, 0, (1,), (1,))})
    path = _write_torch_zip(
        tmp_path / "bo.pth", pkl, {"0": _f32([1])}, byteorder="middle"
    )
    with pytest.raises(CheckpointError, match="byteorder"):
        read_pth(path)


def test_allowed_globals_with_garbage_arguments(tmp_path):
    # allow-listed rebuild function called with an int instead of a storage
    pkl = (
        b"\x80\x02}X\x01\x00\x00\x00t"
        b"ctorch._utils\n_rebuild_tensor_v2\n"
        b"(K\x01K\x00))\x89NtRs."
    )
    path = _write_torch_zip(tmp_path / "garbage_args.pth", pkl)
    with pytest.raises(CheckpointError, match="storage") as info:
        read_pth(path)
    assert not isinstance(info.value, UnsafeCheckpointError)


def test_build_on_stand_in_is_refused(tmp_path):
    # BUILD on an allow-listed stand-in function must not mutate it
    pkl = (
        b"\x80\x02ctorch._utils\n_rebuild_tensor_v2\n"
        b"}X\x03\x00\x00\x00fooK\x01sb."
    )
    path = _write_torch_zip(tmp_path / "build.pth", pkl)
    with pytest.raises(CheckpointError, match="BUILD"):
        read_pth(path)


# --------------------------------------------------------------------------
# Malicious pickles
# --------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["system", "eval", "exec"])
def test_payloads_are_live(tmp_path, kind):
    """Sanity check: the payloads really run under a plain unpickler."""
    marker = tmp_path / "live"
    pickle.loads(pickle.dumps(_payloads(marker)[kind], protocol=2))
    assert marker.exists()


@pytest.mark.parametrize("kind", ["system", "eval", "exec", "popen"])
@pytest.mark.parametrize("protocol", [2, 4])
def test_malicious_zip(tmp_path, kind, protocol):
    marker = tmp_path / "pwned"
    payload = {"w": _payloads(marker)[kind]}
    pkl = pickle.dumps(payload, protocol=protocol)
    path = _write_torch_zip(tmp_path / "evil.pth", pkl)
    for reader in (read_pth, read_checkpoint):
        with pytest.raises(UnsafeCheckpointError) as info:
            reader(path)
        _assert_unsafe(info.value, path, kind)
    assert not marker.exists()


@pytest.mark.parametrize("kind", ["system", "eval", "exec", "popen"])
def test_malicious_legacy(tmp_path, kind):
    marker = tmp_path / "pwned"
    pkl = pickle.dumps({"w": _payloads(marker)[kind]}, protocol=2)
    path = _write_legacy(tmp_path / "evil_legacy.pth", pkl)
    for reader in (read_pth, read_checkpoint):
        with pytest.raises(UnsafeCheckpointError) as info:
            reader(path)
        _assert_unsafe(info.value, path, kind)
    assert not marker.exists()


def test_malicious_legacy_header_pickle(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil_header.pth"
    path.write_bytes(pickle.dumps(_payloads(marker)["system"], protocol=2))
    with pytest.raises(UnsafeCheckpointError) as info:
        read_pth(path)
    _assert_unsafe(info.value, path, "system")
    assert not marker.exists()


@pytest.mark.parametrize("container", ["zip", "legacy"])
def test_malicious_object_inside_real_torch_file(tmp_path, container):
    marker = tmp_path / "pwned"
    obj = {"model": _state_dict(), "cfg": _payloads(marker)["system"]}
    path = _save(obj, tmp_path / "trojan.pth", container)
    with pytest.raises(UnsafeCheckpointError) as info:
        read_pth(path)
    _assert_unsafe(info.value, path, "system")
    assert not marker.exists()


def test_malicious_reduce_through_allowed_wrapper(tmp_path):
    # _rebuild_from_type_v2 is allowed, but its func argument is os.system
    marker = tmp_path / "pwned"
    pkl = (
        b"\x80\x02}X\x01\x00\x00\x00w"
        b"ctorch._tensor\n_rebuild_from_type_v2\n"
        b"(cposix\nsystem\nctorch\nTensor\n"
        + b"(X"
        + struct.pack("<I", len(f"touch {marker}"))
        + f"touch {marker}".encode()
        + b"t}tRs."
    )
    path = _write_torch_zip(tmp_path / "wrapped_evil.pth", pkl)
    with pytest.raises(UnsafeCheckpointError) as info:
        read_pth(path)
    assert info.value.global_name == "posix.system"
    assert not marker.exists()


# --------------------------------------------------------------------------
# Truncated / garbage / empty files
# --------------------------------------------------------------------------


@pytest.mark.parametrize("container", ["zip", "legacy"])
@pytest.mark.parametrize("fraction", [0.02, 0.2, 0.5, 0.8, 0.98, -1])
def test_truncated_pth(tmp_path, container, fraction):
    full = _save(_state_dict(), tmp_path / "full.pth", container)
    data = full.read_bytes()
    cut = len(data) - 1 if fraction == -1 else int(len(data) * fraction)
    path = tmp_path / f"cut_{container}.pth"
    path.write_bytes(data[:cut])
    for reader in (read_pth, read_checkpoint):
        with pytest.raises(CheckpointError) as info:
            reader(path)
        assert path.name in str(info.value)


def test_corrupted_zip_member(tmp_path):
    full = _save({"w": torch.arange(1000.0)}, tmp_path / "crc.pth", "zip")
    data = bytearray(full.read_bytes())
    with zipfile.ZipFile(full) as zf:
        info = zf.getinfo("crc/data/0")
    data[info.header_offset + 200] ^= 0xFF  # inside the storage payload
    full.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="crc.pth"):
        read_pth(full)


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"\x00",
        b"hello, this is not a checkpoint\n" * 10,
        bytes(range(256)) * 4,
        np.random.default_rng(0).bytes(4096),
        b"\x80\x02" + np.random.default_rng(1).bytes(100),
        b"PK\x03\x04" + b"\x00" * 100,
    ],
)
def test_garbage_files(tmp_path, content):
    path = tmp_path / "garbage.pth"
    path.write_bytes(content)
    readers = (read_pth, read_checkpoint, read_safetensors, read_npz)
    for reader in readers:
        with pytest.raises(CheckpointError) as info:
            reader(path)
        assert "garbage.pth" in str(info.value)


def test_not_a_torch_file_says_what_was_expected(tmp_path):
    path = tmp_path / "notes.pth"
    path.write_text("plain text")
    with pytest.raises(CheckpointError, match="legacy") as info:
        read_pth(path)
    assert "zip" in str(info.value)
    empty = tmp_path / "empty.pth"
    empty.write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty"):
        read_pth(empty)


def test_zip_without_data_pkl(tmp_path):
    path = tmp_path / "other.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("readme.txt", "hi")
    with pytest.raises(CheckpointError, match="data.pkl"):
        read_pth(path)
    with pytest.raises(CheckpointError, match="supported"):
        read_checkpoint(path)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_pth(tmp_path / "nope.pth")
    with pytest.raises(FileNotFoundError):
        read_checkpoint(tmp_path / "nope.pth")


# --------------------------------------------------------------------------
# safetensors / npz / dispatch
# --------------------------------------------------------------------------


def _safetensors_fixture(path: Path) -> dict:
    from safetensors.torch import save_file

    sd = {
        "f32": torch.randn(3, 4),
        "f16": torch.randn(5).half(),
        "bf16": torch.randn(2, 3).bfloat16(),
        "i64": torch.arange(6).reshape(2, 3),
        "bool": torch.tensor([True, False]),
        "u8": torch.arange(4, dtype=torch.uint8),
    }
    save_file(sd, path)
    return sd


def test_read_safetensors(tmp_path):
    path = tmp_path / "model.safetensors"
    sd = _safetensors_fixture(path)
    ours = read_safetensors(path)
    assert set(ours) == set(sd)
    _assert_same({k: ours[k] for k in sd}, sd)
    assert ours["bf16"].dtype == ml_dtypes.bfloat16


def test_read_safetensors_float8(tmp_path):
    from safetensors.torch import save_file

    sd = {
        "e4m3": torch.randn(6).to(torch.float8_e4m3fn),
        "e5m2": torch.randn(2, 2).to(torch.float8_e5m2),
        "f32": torch.ones(2),
    }
    path = tmp_path / "f8.safetensors"
    save_file(sd, path)
    ours = read_safetensors(path)
    _assert_same({k: ours[k] for k in sd}, sd)


def test_read_safetensors_numpy_written(tmp_path):
    from safetensors.numpy import save_file

    arrays = {"a": np.arange(6, dtype=np.int32).reshape(2, 3)}
    save_file(arrays, tmp_path / "np.safetensors")
    out = read_safetensors(tmp_path / "np.safetensors")
    np.testing.assert_array_equal(out["a"], arrays["a"])
    assert out["a"].dtype == np.int32


@pytest.mark.parametrize("cut", [4, 12, 60, -3])
def test_truncated_safetensors(tmp_path, cut):
    full = tmp_path / "full.safetensors"
    _safetensors_fixture(full)
    path = tmp_path / "cut.safetensors"
    path.write_bytes(full.read_bytes()[:cut])
    for reader in (read_safetensors, read_checkpoint):
        with pytest.raises(CheckpointError, match="cut.safetensors"):
            reader(path)


def test_read_npz(tmp_path):
    arrays = {
        "w": np.random.default_rng(0).standard_normal((3, 4)).astype("f4"),
        "idx": np.arange(5, dtype=np.int64),
        "flag": np.array([True, False]),
        "scalar": np.float64(2.5),
    }
    np.savez(tmp_path / "a.npz", **arrays)
    out = read_npz(tmp_path / "a.npz")
    assert list(out) == list(arrays)
    for name, arr in arrays.items():
        assert out[name].dtype == np.asarray(arr).dtype
        np.testing.assert_array_equal(out[name], arr)


def test_read_npz_object_array_refused(tmp_path):
    path = tmp_path / "objects.npz"
    np.savez(path, ok=np.ones(2), bad=np.array([{"x": 1}], dtype=object))
    with pytest.raises(CheckpointError, match="objects.npz") as info:
        read_npz(path)
    assert "bad" in str(info.value)


def test_read_npz_rejects_npy_and_truncated(tmp_path):
    np.save(tmp_path / "single.npy", np.ones(3))
    with pytest.raises(CheckpointError, match="single.npy"):
        read_npz(tmp_path / "single.npy")
    np.savez(tmp_path / "full.npz", a=np.ones(100))
    cut = tmp_path / "cut.npz"
    cut.write_bytes((tmp_path / "full.npz").read_bytes()[:300])
    for reader in (read_npz, read_checkpoint):
        with pytest.raises(CheckpointError, match="cut.npz"):
            reader(cut)


def test_dispatch_on_content(tmp_path):
    sd = _state_dict()
    zip_bin = _save({"model": sd}, tmp_path / "pytorch_model.bin", "zip")
    _assert_same(read_checkpoint(zip_bin), sd)
    legacy_pt = _save(sd, tmp_path / "legacy.pt", "legacy")
    _assert_same(read_checkpoint(legacy_pt), sd)

    st_path = tmp_path / "weights.dat"
    st_sd = _safetensors_fixture(st_path)
    out = read_checkpoint(st_path)
    _assert_same({k: out[k] for k in st_sd}, st_sd)

    np.savez(tmp_path / "arrays.npz", w=np.arange(3.0), b=np.ones(2, "i4"))
    renamed = tmp_path / "arrays.weights"
    os.replace(tmp_path / "arrays.npz", renamed)
    out = read_checkpoint(renamed)
    assert list(out) == ["w", "b"] and out["b"].dtype == np.int32

    np.savez_compressed(tmp_path / "c.npz", w=np.arange(4.0))
    np.testing.assert_array_equal(
        read_checkpoint(tmp_path / "c.npz")["w"], np.arange(4.0)
    )


def test_dispatch_unknown_lists_formats(tmp_path):
    path = tmp_path / "model.h5"
    path.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\x00" * 64)
    with pytest.raises(CheckpointError) as info:
        read_checkpoint(path)
    msg = str(info.value)
    assert "model.h5" in msg
    for fmt in (".pth", ".pt", ".bin", ".safetensors", ".npz"):
        assert fmt in msg


def test_safetensors_header_length_with_pickle_byte_is_not_torch(tmp_path):
    # A header length whose low byte is 0x80 (a pickle's PROTO opcode):
    # the extras of a safetensors file are empty, not a failed unpickling.
    from safetensors.numpy import save_file

    from weights_tools.readers import read_checkpoint_extras

    path = tmp_path / "model.safetensors"
    for pad in range(300):
        save_file(
            {"w": np.zeros(2, "float32")}, path, metadata={"p": "x" * pad}
        )
        if path.read_bytes()[0] == 0x80:
            break
    assert path.read_bytes()[0] == 0x80
    assert read_checkpoint_extras(path) == {}
    assert read_checkpoint(path)["w"].shape == (2,)
