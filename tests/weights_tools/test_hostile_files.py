"""Hostile checkpoint files: refused with a clear error, in bounded memory.

Each file is crafted here and is small (a few hundred bytes to a few MB),
yet before the readers were bounded each took hundreds of megabytes to
gigabytes (issue 14). The memory tests read in a fresh interpreter that
imports only ``weights_tools`` (no Keras, no torch) and report its peak
resident memory (``VmHWM``), which must stay under ``PEAK_LIMIT_MB``.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from helpers import BACKEND, golden
from test_readers import (
    _f32,
    _forge,
    _Tensor,
    _write_legacy,
    _write_torch_zip,
)

from weights_tools.common import ConversionError, check_model_config
from weights_tools.convert import checkpoint_config, read_source
from weights_tools.readers import (
    CheckpointError,
    read_checkpoint,
    read_npz,
    read_pth,
    read_safetensors,
    read_sharded,
)

#: Backend-independent (weights_tools needs no Keras backend): one leg.
pytestmark = pytest.mark.skipif(
    BACKEND != "torch",
    reason="backend-independent; runs in the PyTorch leg",
)

REPO_ROOT = Path(__file__).resolve().parents[2]

#: Peak resident memory allowed to a child that reads one crafted file
#: (an idle interpreter with numpy takes about 30 MB).
PEAK_LIMIT_MB = 300

MiB = 2**20


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------


def _peak(call: str, path: Path, root: Path = REPO_ROOT) -> tuple[str, float]:
    """Runs ``call`` on ``path`` in a fresh interpreter.

    ``call`` is an expression over ``path`` and the names of
    ``weights_tools.readers`` (e.g. ``"read_pth(path)"``). Returns the
    error it raised (``"Type: message"``, or ``"no error"``) and the
    child's peak resident memory in MB.
    """
    script = (
        "import json, re, sys\n"
        "sys.modules['torch'] = None\n"
        "sys.modules['keras'] = None\n"
        f"sys.path.insert(0, {str(root)!r})\n"
        "from weights_tools.readers import *\n"
        f"path = {str(path)!r}\n"
        "try:\n"
        f"    {call}\n"
        "    message = 'no error'\n"
        "except Exception as err:\n"
        "    message = f'{type(err).__name__}: {err}'\n"
        "status = open('/proc/self/status').read()\n"
        "peak = int(re.search(r'VmHWM:\\s+(\\d+) kB', status)[1]) / 1024\n"
        "print(json.dumps({'message': message, 'peak_mb': peak}))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        cwd="/",
        env={**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"},
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    return result["message"], result["peak_mb"]


def _assert_refused_in_bounded_memory(call: str, path: Path, *patterns):
    message, peak_mb = _peak(call, path)
    assert message.startswith("CheckpointError: "), message
    assert str(path) in message
    for pattern in patterns:
        assert pattern in message, (pattern, message)
    assert peak_mb < PEAK_LIMIT_MB, (peak_mb, message)


def _deflated(prefix: bytes, zero_mib: int, suffix: bytes = b""):
    """A raw deflate stream of ``prefix + zero_mib MiB of zeros + suffix``.

    Built without compressing the zeros each time: after a full flush the
    compressor starts afresh, so every MiB of zeros compresses to the
    same ~1 kB block. Returns (stream, uncompressed size, crc32).
    """
    zeros = bytes(MiB)
    co = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = co.compress(prefix) + co.flush(zlib.Z_FULL_FLUSH)
    block = co.compress(zeros) + co.flush(zlib.Z_FULL_FLUSH)
    tail = co.compress(suffix) + co.flush()
    crc = zlib.crc32(prefix)
    for _ in range(zero_mib):
        crc = zlib.crc32(zeros, crc)
    crc = zlib.crc32(suffix, crc)
    size = len(prefix) + zero_mib * MiB + len(suffix)
    return head + block * zero_mib + tail, size, crc


def _stored(data: bytes):
    return data, len(data), zlib.crc32(data)


def _write_zip(path: Path, members: dict) -> Path:
    """A zip of ``name -> (raw data, size, crc)``; deflated if raw != size.

    Written by hand so that a member's compressed stream can be given
    directly (``zipfile`` would have to compress gigabytes of zeros).
    """
    out, central = bytearray(), bytearray()
    for name, (raw, size, crc) in members.items():
        method = 0 if len(raw) == size else 8
        encoded = name.encode()
        common = (method, 0, 0x21, crc, len(raw), size, len(encoded), 0)
        central += struct.pack(
            "<IHHHHHHIIIHHHHHII",
            0x02014B50,
            20,
            20,
            0,
            *common,
            0,
            0,
            0,
            0,
            len(out),
        )
        central += encoded
        out += struct.pack("<IHHH", 0x04034B50, 20, 0, common[0])
        out += struct.pack("<HHIIIHH", *common[1:]) + encoded + raw
    count = len(members)
    eocd = struct.pack(
        "<IHHHHIIH", 0x06054B50, 0, 0, count, count, len(central), len(out), 0
    )
    path.write_bytes(bytes(out + central + eocd))
    return path


def _torch_members(data_pkl, storages=None) -> dict:
    members = {"archive/data.pkl": data_pkl}
    members["archive/byteorder"] = _stored(b"little")
    for key, member in (storages or {}).items():
        members[f"archive/data/{key}"] = member
    members["archive/version"] = _stored(b"3\n")
    return members


def _npy_header(dtype: str, shape: tuple) -> bytes:
    buf = io.BytesIO()
    header = {"descr": dtype, "fortran_order": False, "shape": shape}
    np.lib.format.write_array_header_1_0(buf, header)
    return b"\x93NUMPY\x01\x00" + buf.getvalue()[8:]


# --------------------------------------------------------------------------
# .pth: zero strides, overlapping views, deflate bombs, pickle bombs
# --------------------------------------------------------------------------


@pytest.mark.parametrize("container", ["zip", "legacy"])
def test_zero_stride_view_is_refused_in_bounded_memory(tmp_path, container):
    # one float viewed 402,653,184 times: 1.5 GiB from a ~620-byte file
    size = (3 * 2**27,)
    if container == "zip":
        pkl = _forge({"t": _Tensor("0", 1, 0, size, (0,))})
        path = _write_torch_zip(tmp_path / "zero.pth", pkl, {"0": _f32([1])})
    else:
        pkl = _forge({"t": _Tensor("0", 1, 0, size, (0,), legacy=True)})
        path = _write_legacy(tmp_path / "zero.pth", pkl, {"0": (1, _f32([1]))})
    assert path.stat().st_size < 1000
    for call in ("read_pth(path)", "read_checkpoint(path)"):
        _assert_refused_in_bounded_memory(
            call,
            path,
            "would materialise 1.5 GiB",
            "'t', has size (402653184,) and stride (0,)",
            "max_materialized_bytes=1610612736",
        )


def test_overlapping_views_of_one_storage_are_capped(tmp_path):
    # 128 tensors all viewing the same 4 MiB storage: 512 MiB of arrays
    n = MiB
    state = {f"t{i}": _Tensor("0", n, 0, (n,), (1,)) for i in range(128)}
    path = _write_torch_zip(
        tmp_path / "overlap.pth",
        _forge(state),
        {"0": np.zeros(n, "<f4").tobytes()},
    )
    _assert_refused_in_bounded_memory(
        "read_pth(path)", path, "its 128 tensor(s)", "would materialise 512 MiB"
    )


def test_raised_cap_reads_a_trusted_broadcast(tmp_path):
    # 80 MB from one float: over the 64 MiB default, fine once allowed
    pkl = _forge({"t": _Tensor("0", 1, 0, (20_000_000,), (0,))})
    path = _write_torch_zip(tmp_path / "bcast.pth", pkl, {"0": _f32([2.5])})
    with pytest.raises(CheckpointError, match="max_materialized_bytes="):
        read_pth(path)
    for reader in (read_pth, read_checkpoint):
        out = reader(path, max_materialized_bytes=10**8)
        assert out["t"].shape == (20_000_000,)
        assert out["t"].flags.c_contiguous and out["t"].flags.owndata
        assert out["t"].min() == out["t"].max() == 2.5
    with pytest.raises(ValueError, match="positive int"):
        read_pth(path, max_materialized_bytes=0)


def test_storage_member_expanding_beyond_its_declaration(tmp_path):
    # 4 floats declared; the deflated member expands to 512 MiB (~530 kB)
    pkl = _forge({"t": _Tensor("0", 4, 0, (4,), (1,))})
    members = _torch_members(_stored(pkl), {"0": _deflated(b"", 512)})
    path = _write_zip(tmp_path / "bomb.pth", members)
    assert path.stat().st_size < MiB
    _assert_refused_in_bounded_memory(
        "read_pth(path)",
        path,
        "archive member 'archive/data/0' expands to 512 MiB",
        "storage '0' (4 x float32) declares only 16 bytes",
        "refusing to decompress",
    )


def test_deflated_data_pkl_expanding_hugely(tmp_path):
    # a 512 MiB bytes object in a ~530 kB data.pkl
    prefix = b"\x80\x03B" + struct.pack("<I", 512 * MiB)
    members = _torch_members(_deflated(prefix, 512, b"."))
    path = _write_zip(tmp_path / "pkl_bomb.pth", members)
    assert path.stat().st_size < MiB
    _assert_refused_in_bounded_memory(
        "read_pth(path)",
        path,
        "'archive/data.pkl' expands to 512 MiB",
        "max_pickle_bytes=33554432",
    )


def test_pickle_memo_index_bomb(tmp_path):
    # 9 bytes of pickle: None stored at memo index 50,000,000, for which
    # the C unpickler allocates (and zeroes) an 800 MB memo table
    pkl = b"\x80\x02Nr" + struct.pack("<I", 50_000_000) + b"."
    path = _write_torch_zip(tmp_path / "memo.pth", pkl)
    _assert_refused_in_bounded_memory(
        "read_pth(path)", path, "stores memo entry 50000000 after only 3"
    )


def test_pickle_opcode_flood(tmp_path):
    # one million one-byte EMPTY_DICT opcodes: ~90 bytes of memory each
    pkl = b"\x80\x02(" + b"}" * 1_000_000 + b"l."
    path = _write_torch_zip(tmp_path / "flood.pth", pkl)
    with pytest.raises(CheckpointError, match="more than 524288 pickle opc"):
        read_pth(path)
    # a raised cap lets the unpickler run: it finds a list, not a dict
    with pytest.raises(CheckpointError, match="holds a list"):
        read_pth(path, max_pickle_bytes=2**26)


def test_legacy_storage_count_must_match_its_declaration(tmp_path):
    pkl = _forge({"t": _Tensor("0", 2, 0, (2,), (1,), legacy=True)})
    path = _write_legacy(
        tmp_path / "count.pth", pkl, {"0": (4, _f32([1, 2, 3, 4]))}
    )
    with pytest.raises(CheckpointError, match="holds 4 elements but its dec"):
        read_pth(path)


# --------------------------------------------------------------------------
# .npz and .safetensors
# --------------------------------------------------------------------------


def test_npz_deflate_bomb_is_refused_in_bounded_memory(tmp_path):
    # a well-formed 512 MiB float32 array of zeros, deflated to ~530 kB
    header = _npy_header("<f4", (128 * MiB,))
    path = _write_zip(tmp_path / "bomb.npz", {"w.npy": _deflated(header, 512)})
    for call in ("read_npz(path)", "read_checkpoint(path)"):
        _assert_refused_in_bounded_memory(
            call, path, "its 1 array(s) would materialise 512 MiB"
        )


def test_npz_header_must_match_the_member_size(tmp_path):
    header = _npy_header("<f4", (10**9,))
    path = _write_zip(
        tmp_path / "lying.npz", {"w.npy": _stored(header + bytes(16))}
    )
    with pytest.raises(CheckpointError, match="'w.npy' holds 144 bytes"):
        read_npz(path)


def test_npz_raised_cap_and_fortran_order(tmp_path):
    arrays = {
        "z": np.zeros(20 * MiB, "<f4"),
        "f": np.asfortranarray(np.arange(6, dtype="<i2").reshape(2, 3)),
    }
    np.savez_compressed(tmp_path / "c.npz", **arrays)
    with pytest.raises(CheckpointError, match="would materialise 80 MiB"):
        read_npz(tmp_path / "c.npz")
    out = read_npz(tmp_path / "c.npz", max_materialized_bytes=2**27)
    assert out["z"].shape == (20 * MiB,) and not out["z"].any()
    np.testing.assert_array_equal(out["f"], arrays["f"])
    assert out["f"].flags.c_contiguous and out["f"].dtype == np.int16


def test_safetensors_overlapping_entries_are_refused(tmp_path):
    # 512 float8 entries that all name the same 1 MiB of data
    header = {
        f"t{i}": {"dtype": "F8_E4M3", "shape": [MiB], "data_offsets": [0, MiB]}
        for i in range(512)
    }
    raw = json.dumps(header).encode()
    path = tmp_path / "overlap.safetensors"
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + bytes(MiB))
    for call in ("read_safetensors(path)", "read_checkpoint(path)"):
        _assert_refused_in_bounded_memory(
            call, path, "overlaps 't0'", "without overlaps or gaps"
        )


def test_safetensors_offsets_outside_the_file(tmp_path):
    header = {"a": {"dtype": "F32", "shape": [4], "data_offsets": [8, 24]}}
    raw = json.dumps(header).encode()
    path = tmp_path / "outside.safetensors"
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + bytes(16))
    with pytest.raises(CheckpointError, match=r"\[8, 24\) .* 16 bytes"):
        read_safetensors(path)


# --------------------------------------------------------------------------
# config.json sizes
# --------------------------------------------------------------------------


def _hf_folder(tmp_path: Path, **changes) -> Path:
    source = golden("hf", "swin_tiny_e24_w7_224")
    folder = tmp_path / "hf"
    folder.mkdir()
    shutil.copy(source / "model.safetensors", folder)
    config = json.loads((source / "config.json").read_text())
    config.update(changes)
    (folder / "config.json").write_text(json.dumps(config))
    return folder


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("image_size", 60000, "image_size=60000 is not a valid image side"),
        ("image_size", "224", "image_size='224' is not a valid image side"),
        ("image_size", [224], "expected a list of 2 ints"),
        ("depths", [2, -1, 2, 2], "depths[1]=-1 is not a valid block count"),
        ("num_heads", [1, 2, 3, 2.5], "num_heads[3]=2.5"),
        ("window_size", 0, "window_size=0 is not a valid window size"),
        ("patch_size", True, "patch_size=True"),
        ("layer_norm_eps", -1.0, "layer_norm_eps=-1.0"),
    ],
)
def test_hf_config_sizes_are_range_checked(tmp_path, key, value, message):
    folder = _hf_folder(tmp_path, **{key: value})
    for call in (checkpoint_config, read_source):
        with pytest.raises(ConversionError) as info:
            call(folder)
        text = str(info.value)
        assert str(folder / "config.json") in text
        assert message in text, text
    if key == "image_size" and value == 60000:
        assert "expected an int in 1..8192" in text


def test_timm_config_sizes_are_range_checked(tmp_path):
    source = golden("timm", "vit_tiny_e64_d2_224")
    cases = [
        (("pretrained_cfg", "input_size"), [3, 60000, 60000], "input_size[1]"),
        (("model_args", "img_size"), 60000, "model_args.img_size=60000"),
        (("model_args", "num_heads"), 0, "model_args.num_heads=0"),
        (("pretrained_cfg", "crop_pct"), 0, "pretrained_cfg.crop_pct=0"),
        (("pretrained_cfg", "std"), [0.5, 0, 0.5], "pretrained_cfg.std[1]=0"),
    ]
    for i, ((part, key), value, message) in enumerate(cases):
        folder = tmp_path / f"timm{i}"
        folder.mkdir()
        shutil.copy(source / "model.safetensors", folder)
        config = json.loads((source / "config.json").read_text())
        config[part][key] = value
        (folder / "config.json").write_text(json.dumps(config))
        with pytest.raises(ConversionError, match=r"config\.json: ") as info:
            checkpoint_config(folder)
        assert message in str(info.value), str(info.value)


def test_sizes_implied_by_tensors_are_range_checked():
    with pytest.raises(ConversionError, match=r"input_shape\[0\]=60000"):
        check_model_config({"input_shape": (60000, 60000, 3)})
    with pytest.raises(ConversionError, match=r"x 2 implies: depths\[1\]=2000"):
        check_model_config({"depths": (2, 2000)}, source="x 2")
    config = {"patch_size": 4, "depths": (2, 2), "input_shape": (8, 8, 3)}
    assert check_model_config(config) is config


# --------------------------------------------------------------------------
# sharded checkpoints
# --------------------------------------------------------------------------


def _sharded(folder: Path, weight_map: dict) -> Path:
    from safetensors.numpy import save_file

    folder.mkdir(parents=True, exist_ok=True)
    save_file({"a": np.arange(3, dtype="f4")}, folder / "one.safetensors")
    save_file({"b": np.ones(2, "i8")}, folder / "two.safetensors")
    index = folder / "model.safetensors.index.json"
    index.write_text(json.dumps({"weight_map": weight_map}))
    return index


def test_sharded_index_reads_its_shards(tmp_path):
    index = _sharded(
        tmp_path / "ok", {"a": "one.safetensors", "b": "./two.safetensors"}
    )
    out = read_sharded(index)
    np.testing.assert_array_equal(out["a"], [0, 1, 2])
    np.testing.assert_array_equal(out["b"], [1, 1])
    file, tensors, _ = read_source(tmp_path / "ok")
    assert file.endswith("model.safetensors.index.json")
    assert sorted(tensors) == ["a", "b"]


@pytest.mark.parametrize(
    "shard, message",
    [
        ("../../etc/passwd", "outside the index's folder"),
        ("sub/../../outside.safetensors", "outside the index's folder"),
        ("/etc/passwd", "names the absolute path '/etc/passwd'"),
        ("link.safetensors", "through '..' or a symbolic link"),
    ],
)
def test_sharded_index_cannot_name_files_outside_its_folder(
    tmp_path, shard, message
):
    from safetensors.numpy import save_file

    outside = tmp_path / "outside.safetensors"
    save_file({"b": np.zeros(2, "i8")}, outside)
    folder = tmp_path / "model"
    index = _sharded(folder, {"a": "one.safetensors", "b": shard})
    (folder / "link.safetensors").symlink_to(outside)
    for call in (read_sharded, lambda p: read_source(p.parent)):
        with pytest.raises(CheckpointError) as info:
            call(index)
        text = str(info.value)
        assert str(index) in text and repr(shard) in text, text
        assert message in text, text
