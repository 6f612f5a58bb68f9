"""The benchmark (benchmarks/bench.py): plan, worker cases, report.

Speed is reported by `python benchmarks/run.py` (`keras-swin benchmark`
from an editable install) as ratios, never asserted here; these tests
check that every case kind runs, that the report's arithmetic is right
and that the tool is reached from the clone only.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import BACKEND

from benchmarks import bench, dense, exported
from keras_swin.cli import main as cli_main
from keras_swin.flops import swin_flops

ROOT = Path(__file__).resolve().parents[1]
TIMING = dict(warmup=1, min_iters=1, min_time=0.0)


@pytest.fixture
def tiny_models(monkeypatch):
    """Small Swin and ViT specs, so worker cases run in seconds."""
    models = dict(bench.MODELS)
    models["swin_tiny"] = {
        "family": "swin",
        "title": "Swin tiny",
        "config": dict(
            embed_dim=16,
            depths=(1, 1),
            num_heads=(1, 2),
            window_size=4,
            patch_size=4,
        ),
    }
    models["vit_tiny"] = {
        "family": "vit",
        "title": "ViT tiny",
        "config": dict(
            patch_size=8, hidden_size=32, num_layers=1, num_heads=2, mlp_dim=64
        ),
    }
    monkeypatch.setattr(bench, "MODELS", models)


def _case(**overrides):
    case = dict(
        impl="keras_swin",
        backend=BACKEND,
        model="swin_tiny",
        mode="inference",
        dtype="float32",
        batch=2,
        size=32,
        compile=BACKEND != "torch",
        **TIMING,
    )
    case.update(overrides)
    return case


def test_flop_counts_follow_the_papers():
    assert round(bench.macs("swin_t", 224) / 1e9, 1) == 4.5
    assert round(bench.macs("vit_b16", 224) / 1e9, 1) == 17.6
    case = dict(model="swin_t", size=224, batch=8, mode="train")
    assert bench.case_flops(case) == 2 * 3 * 8 * swin_flops()


def _assert_measured(result: dict, case: dict) -> None:
    """A case ran and its figures are the ones its timings give."""
    assert "error" not in result, result.get("error")
    for key in ("impl", "model", "mode", "batch", "size", "dtype"):
        assert result[key] == case[key]
    assert result["iterations"] >= TIMING["min_iters"]
    assert 0 < result["min_s"] <= result["median_s"]
    assert result["images_per_s"] == pytest.approx(
        case["batch"] / result["median_s"]
    )
    assert result["ms_per_call"] == pytest.approx(1000 * result["median_s"])
    assert result["flops_per_s"] * result["median_s"] == pytest.approx(
        bench.case_flops(result)
    )


@pytest.mark.parametrize("model", ["swin_tiny", "vit_tiny"])
@pytest.mark.parametrize("mode", ["inference", "train", "latency"])
def test_keras_swin_cases_run(tiny_models, model, mode):
    case = _case(model=model, mode=mode, batch=1 if mode == "latency" else 2)
    _assert_measured(bench.run_case(case), case)


def test_mixed_bfloat16_case_runs(tiny_models):
    case = _case(dtype="bfloat16")
    _assert_measured(bench.run_case(case), case)


@pytest.mark.parametrize("model", ["swin_tiny", "vit_tiny"])
def test_keras_hub_baseline_runs(tiny_models, model):
    pytest.importorskip("keras_hub", reason="the keras-hub baseline")
    case = _case(impl="keras_hub", model=model)
    _assert_measured(bench.run_case(case), case)


@pytest.mark.parametrize("mode", ["inference", "train"])
def test_pytorch_reference_runs(tiny_models, mode):
    case = _case(impl="hf_torch", mode=mode, compile=False)
    _assert_measured(bench.run_case(case), case)


def test_failing_case_is_reported_not_raised(tiny_models):
    result = bench.run_case(_case(size=2))  # smaller than a patch
    assert "error" in result and result["error"].startswith("ValueError")


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_matmul_peak_is_positive(dtype):
    peak = bench.matmul_peak(BACKEND, sizes=(128,), repeats=1, dtype=dtype)
    assert peak["flops_per_s"] > 0 and peak["size"] == 128


def test_matmul_peak_rejects_unknown_precision():
    with pytest.raises(ValueError, match="unknown dtype 'float16'"):
        bench.matmul_peak(BACKEND, sizes=(128,), dtype="float16")


def test_plan_measures_a_matmul_peak_per_precision():
    processes = bench.plan(
        backends=["jax"],
        models=["swin_t"],
        modes=["inference"],
        dtypes=["float32", "bfloat16"],
        implementations=["keras_swin"],
        sweep_sizes=(),
    )
    peaks = [p[0][0] for p in processes if p[0][0]["impl"] == "peak"]
    assert [(c["backend"], c["dtype"]) for c in peaks] == [
        ("jax", "float32"),
        ("jax", "bfloat16"),
    ]


def test_markdown_shares_are_of_the_peak_of_the_rows_precision():
    """A bfloat16 row is measured against the bfloat16 matmul peak (on a
    CPU with bfloat16 matrix units it is several times the float32 one)."""
    report = _report()
    report["results"].append(
        dict(impl="peak", backend="torch", dtype="bfloat16", flops_per_s=1e12)
    )
    report["results"].append(
        dict(
            report["results"][3],  # keras_swin / jax inference
            dtype="bfloat16",
            flops_per_s=250e9,
        )
    )
    text = bench.markdown(report)
    assert "float32 matmul peak: 120 GFLOP/s" in text
    assert "bfloat16 matmul peak: 1000 GFLOP/s (best of torch 1000)" in text
    shares = {
        cells[3]: cells[11]
        for cells in (
            [c.strip() for c in line.split("|")]
            for line in text.splitlines()
            if "| keras_swin | jax |" in line and "inference" in line
        )
    }
    # 108 of 120 GFLOP/s; 250 of 1000 GFLOP/s.
    assert shares == {"float32": "90", "bfloat16": "25"}


def test_plan_covers_the_issue_and_rejects_unknown_names():
    # The dense row's processes are checked in test_dense_plan_*.
    processes = [p for p in bench.plan() if not p[0][0].get("dense")]
    sets = [row for process in processes for row in process]
    cases = [c for row in sets for c in row]
    assert {c["backend"] for c in cases if c["impl"] == "peak"} == {
        "tensorflow",
        "jax",
        "torch",
    }
    for process in processes:  # one Keras backend and model per process
        keys = {(c.get("process"), c["model"]) for r in process for c in r}
        assert len(keys) == 1
    for row in sets:  # a set: one mode, implementations side by side
        assert len({(c.get("mode"), c.get("size")) for c in row}) == 1
        if row[0].get("mode") in ("inference", "train", "latency"):
            impls = [c["impl"] for c in row]
            expected = [
                i
                for i in ("keras_swin", "keras_hub", "hf_torch", "timm_torch")
                if bench.implemented(row[0]["model"], i)
            ]
            assert impls[: len(expected)] == expected
            assert {c["process"] for c in row} == {row[0]["backend"]}
    compiled_torch = [
        c for c in cases if c.get("compile") and c["backend"] == "torch"
    ]
    assert {c["impl"] for c in compiled_torch} == {"keras_swin", "hf_torch"}
    assert all(
        c["mode"] != "train" and c["dtype"] == "float32" for c in compiled_torch
    )
    sweep = {(c["model"], c["size"]) for c in cases if c.get("mode") == "sweep"}
    assert sweep == {
        (m, s) for m in ("swin_t", "vit_b16") for s in (224, 448, 896)
    }
    main = [c for c in cases if c.get("mode") in ("inference", "train")]
    assert {c["batch"] for c in main} == {8}
    assert {c["dtype"] for c in main} == {"float32", "bfloat16"}
    with pytest.raises(ValueError, match=r"unknown backend \['mxnet'\]"):
        bench.plan(backends=["mxnet"])


def test_interleaved_cases_are_measured_in_rounds(tiny_models):
    results = bench.run_interleaved(
        [_case(min_iters=3), _case(model="vit_tiny"), _case(size=2)]
    )
    assert [r["iterations"] for r in results[:2]] == [3, 3]
    assert "error" in results[2]  # smaller than a patch: reported


def test_each_timed_call_directly_follows_a_call_of_its_own_case(
    tiny_models, monkeypatch
):
    calls = []

    def runner(case):
        return lambda: calls.append(case["impl"])

    monkeypatch.setattr(bench, "_keras_runner", runner)
    monkeypatch.setattr(bench, "_torch_runner", runner)
    results = bench.run_interleaved(
        [
            _case(impl="keras_swin", warmup=1, min_iters=2, min_time=0),
            _case(impl="hf_torch", warmup=1, min_iters=2, min_time=0),
        ]
    )
    assert [r["iterations"] for r in results] == [2, 2]
    primer = bench.PRIMER_CALLS
    assert primer >= 1
    one_round = ["keras_swin"] * (primer + 1) + ["hf_torch"] * (primer + 1)
    assert calls == ["keras_swin", "hf_torch"] + one_round * 2


def test_allocator_settings_reach_the_worker(monkeypatch, tmp_path):
    seen = {}

    class FakeProcess:
        def __init__(self, argv, stdout, stderr, text, env):
            seen.update(env)
            self.stdout = iter(
                ["@@result " + json.dumps(dict(_case(), images_per_s=1.0))]
            )

        def wait(self):
            return 0

        def kill(self):
            pass

    monkeypatch.setattr(bench.subprocess, "Popen", FakeProcess)
    case = _case()
    bench._run_process([[case]], 60, lambda r: None, "cached")
    for key, value in bench.ALLOCATORS["cached"].items():
        assert seen[key] == value
    assert seen["KERAS_BACKEND"] == BACKEND
    with pytest.raises(ValueError, match="allocator='jemalloc'"):
        bench.run(allocator="jemalloc")


def _report():
    base = dict(
        process="jax",
        model="swin_t",
        mode="inference",
        dtype="float32",
        batch=8,
        size=224,
    )
    results = [
        dict(impl="peak", backend="torch", flops_per_s=100e9, size=2048),
        dict(impl="peak", backend="jax", flops_per_s=120e9, size=2048),
        dict(
            base,
            impl="hf_torch",
            backend="torch",
            compile=False,
            images_per_s=8.0,
            ms_per_call=1000.0,
            memory_mib=900.0,
            flops_per_s=72e9,
        ),
        dict(
            base,
            impl="keras_swin",
            backend="jax",
            compile=True,
            images_per_s=12.0,
            ms_per_call=666.7,
            memory_mib=800.0,
            flops_per_s=108e9,
        ),
        dict(
            base,
            impl="keras_hub",
            backend="jax",
            compile=True,
            images_per_s=6.0,
            ms_per_call=1333.0,
            memory_mib=1000.0,
            flops_per_s=54e9,
        ),
        dict(
            base,
            impl="keras_hub",
            backend="torch",
            compile=False,
            error="RuntimeError: boom",
        ),
        dict(
            impl="keras_swin",
            backend="jax",
            model="swin_t",
            mode="sweep",
            dtype="float32",
            batch=1,
            size=224,
            compile=True,
            ms_per_call=100.0,
            images_per_s=10.0,
            flops_per_s=1.0,
            memory_mib=1.0,
        ),
        dict(
            impl="keras_swin",
            backend="jax",
            model="swin_t",
            mode="sweep",
            dtype="float32",
            batch=1,
            size=448,
            compile=True,
            ms_per_call=420.0,
            images_per_s=1 / 0.42,
            flops_per_s=1.0,
            memory_mib=1.0,
        ),
    ]
    machine = dict(
        cpu="Test CPU", cpu_count=2, gpu=None, versions={"keras": "3"}
    )
    return dict(
        machine=machine,
        allocator=dict(name="cached", env={"TF_CPU_ALLOCATOR_USE_BFC": "true"}),
        skipped=["keras_hub: not installed"],
        results=results,
        seconds=12.0,
    )


def test_markdown_reports_ratios_peak_share_and_failures():
    text = bench.markdown(_report())
    assert "float32 matmul peak: 120 GFLOP/s" in text
    assert (
        "Allocator settings of every worker: cached "
        "(TF_CPU_ALLOCATOR_USE_BFC=true)." in text
    )
    row = next(
        line
        for line in text.splitlines()
        if "| keras_swin | jax |" in line and "inference" in line
    )
    cells = [c.strip() for c in row.split("|")]
    # images/s 12 vs PyTorch 8 -> 1.50x; vs KerasHub 6 -> 2.00x;
    # 108 GFLOP/s of a 120 GFLOP/s peak -> 90%.
    assert cells[6:] == ["12.00", "667", "800", "1.50x", "2.00x", "90", ""]
    assert "RuntimeError: boom" in text
    assert "keras_hub: not installed" in text
    sweep = next(
        line for line in text.splitlines() if "| Swin-T | keras_swin" in line
    )
    assert "| 100 | 420 (4.2x) |" in sweep


@pytest.mark.skipif(
    BACKEND != "torch",
    reason="the command's plumbing is backend-independent and each "
    "backend's cases run above (test_keras_swin_cases_run); this runs "
    "the real Swin-T once, in the torch leg, which needs no compile",
)
def test_cli_runs_a_small_benchmark_and_writes_json_and_markdown(tmp_path):
    status = cli_main(
        [
            "benchmark",
            "--backends",
            BACKEND,
            "--models",
            "swin_t",
            "--modes",
            "latency",
            "--dtypes",
            "float32",
            "--implementations",
            "keras_swin",
            "--size",
            "64",
            "--sweep-sizes",
            "",
            "--no-torch-compile",
            "--warmup",
            "1",
            "--min-iters",
            "1",
            "--min-time",
            "0",
            "--output",
            str(tmp_path),
        ]
    )
    assert status == 0
    report = json.loads((tmp_path / "latest.json").read_text())
    kinds = [(r["impl"], r.get("mode")) for r in report["results"]]
    assert kinds == [("peak", None), ("keras_swin", "latency")]
    assert all("error" not in r for r in report["results"]), report
    assert (
        "| Swin-T 64px b1 | latency |" in (tmp_path / "latest.md").read_text()
    )


def test_cli_rejects_unknown_backend(capsys):
    with pytest.raises(SystemExit):
        cli_main(["benchmark", "--backends", "mxnet"])
    assert "unknown ['mxnet']" in capsys.readouterr().err


def test_merge_replaces_cases_measured_again():
    old = _report()
    again = dict(old["results"][3], images_per_s=16.0)  # keras_swin/jax
    new = dict(
        machine=old["machine"],
        allocator=old["allocator"],
        skipped=[],
        results=[again],
        seconds=3.0,
    )
    merged = bench.merge(old, new)
    assert len(merged["results"]) == len(old["results"])
    swin = [
        r
        for r in merged["results"]
        if r.get("impl") == "keras_swin" and r.get("mode") == "inference"
    ]
    assert [r["images_per_s"] for r in swin] == [16.0]
    assert merged["seconds"] == 15.0
    assert merged["skipped"] == old["skipped"]


def test_merge_keeps_each_process_reference_and_one_peak_per_framework():
    """A re-run in the JAX process must not replace the PyTorch reference
    measured in the TensorFlow process, nor list a framework's peak twice
    when another matrix size wins: the higher peak counts."""
    ref = dict(
        impl="hf_torch",
        backend="torch",
        model="swin_t",
        mode="train",
        dtype="float32",
        batch=8,
        size=224,
        compile=False,
    )
    old = dict(
        machine={},
        allocator=None,
        skipped=[],
        seconds=1.0,
        results=[
            dict(impl="peak", backend="torch", size=2048, flops_per_s=1.0e11),
            dict(ref, process="tensorflow", images_per_s=3.0),
            dict(ref, process="jax", images_per_s=3.1),
        ],
    )
    new = dict(
        machine={},
        allocator=None,
        skipped=[],
        seconds=1.0,
        results=[
            dict(impl="peak", backend="torch", size=3072, flops_per_s=1.1e11),
            dict(ref, process="jax", images_per_s=3.5),
        ],
    )
    merged = bench.merge(old, new)["results"]
    peaks = [r for r in merged if r["impl"] == "peak"]
    assert [(r["size"], r["flops_per_s"]) for r in peaks] == [(3072, 1.1e11)]
    refs = {
        r["process"]: r["images_per_s"]
        for r in merged
        if r["impl"] == "hf_torch"
    }
    assert refs == {"tensorflow": 3.0, "jax": 3.5}
    # A lower peak in the later run does not lower the machine's peak.
    new["results"][0]["flops_per_s"] = 0.9e11
    peaks = [r for r in bench.merge(old, new)["results"] if r["impl"] == "peak"]
    assert [(r["size"], r["flops_per_s"]) for r in peaks] == [(2048, 1.0e11)]


def test_merge_keeps_the_order_of_the_report():
    """A case measured again takes the old one's place; a new case goes
    last. Otherwise the re-measured rows would land at the end of the
    table, away from their backend's other rows."""
    row = dict(backend="jax", process="jax", dtype="float32", batch=8)
    old = dict(
        machine={},
        allocator=None,
        skipped=[],
        seconds=1.0,
        results=[
            dict(row, impl="keras_swin", mode="inference", images_per_s=1.0),
            dict(row, impl="keras_swin", mode="train", images_per_s=2.0),
            dict(row, impl="keras_hub", mode="train", images_per_s=3.0),
        ],
    )
    new = dict(
        machine={},
        allocator=None,
        skipped=[],
        seconds=1.0,
        results=[
            dict(row, impl="keras_hub", mode="latency", images_per_s=9.0),
            dict(row, impl="keras_swin", mode="train", images_per_s=4.0),
        ],
    )
    merged = bench.merge(old, new)["results"]
    assert [(r["impl"], r["mode"], r["images_per_s"]) for r in merged] == [
        ("keras_swin", "inference", 1.0),
        ("keras_swin", "train", 4.0),
        ("keras_hub", "train", 3.0),
        ("keras_hub", "latency", 9.0),
    ]


def test_merge_refuses_runs_of_other_allocator_settings():
    old = _report()
    new = dict(old, allocator=dict(name="system", env={}), results=[])
    with pytest.raises(ValueError, match="run again without --merge"):
        bench.merge(old, new)


def test_run_script_works_from_any_folder(tmp_path):
    """`python benchmarks/run.py` finds the clone's code wherever it runs,
    and a bad results folder fails in one line before anything runs."""
    script = ROOT / "benchmarks" / "run.py"
    done = subprocess.run(
        [sys.executable, str(script), "--help"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: python benchmarks/run.py")
    assert "--sweep-sizes" in done.stdout
    file = tmp_path / "results"
    file.write_text("not a folder")
    done = subprocess.run(
        [sys.executable, str(script), "--output", str(file)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert done.returncode == 1
    assert done.stderr == (
        f"benchmarks/run.py: {file} is a file, not a folder; give a folder "
        "for the results (or move the file away)\n"
    )


def test_every_option_has_help_with_its_default():
    parser = bench.build_parser()
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        if action.dest == "worker":  # internal: the driver's workers
            assert action.help == argparse.SUPPRESS
            continue
        assert action.help and "default" in action.help, action.dest
    assert bench.build_parser().parse_args([]).output == str(
        ROOT / "benchmarks" / "results"
    )


def test_cli_command_outside_a_clone_says_to_use_one(
    tmp_path, monkeypatch, capsys
):
    """Installed from a wheel there is no benchmarks/ beside the package:
    `keras-swin benchmark` says where the tool is instead of failing."""
    import keras_swin

    package = tmp_path / "site-packages" / "keras_swin"
    package.mkdir(parents=True)
    monkeypatch.setattr(keras_swin, "__file__", str(package / "__init__.py"))
    assert cli_main(["benchmark", "--models", "swin_t"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("keras-swin benchmark: the benchmark is a ")
    assert "run it from a clone" in err
    assert "python benchmarks/run.py [options]" in err
    assert len(err.splitlines()) == 1


def test_cli_command_passes_every_argument_to_the_script(capsys):
    with pytest.raises(SystemExit) as exited:
        cli_main(["benchmark", "--help"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.startswith("usage: keras-swin benchmark")


# ---------------------------------------------------------- dense row --


@pytest.fixture
def tiny_dense(monkeypatch):
    """A small dense Swin backbone spec, so dense worker cases run fast."""
    spec = {
        "family": "swin_dense",
        "title": "Swin backbone tiny",
        "config": dict(
            embed_dim=8,
            depths=(1, 1),
            num_heads=(1, 2),
            window_size=4,
            patch_size=4,
            out_indices=(0, 1),
        ),
    }
    monkeypatch.setattr(
        bench, "MODELS", dict(bench.MODELS, swin_dense_tiny=spec)
    )
    monkeypatch.setattr(
        dense, "MODELS", dict(dense.MODELS, swin_dense_tiny=spec)
    )


def _dense_case(**overrides):
    case = dict(
        impl="keras_swin",
        backend=BACKEND,
        process=BACKEND,
        model="swin_dense_tiny",
        mode="inference",
        dtype="float32",
        batch=1,
        size=36,
        width=52,
        compile=BACKEND != "torch",
        checkpoint=False,
        dense=True,
        **TIMING,
    )
    case.update(overrides)
    if case["impl"] == "hf_torch":
        case.update(backend="torch", compile=False)
    return case


def test_dense_macs_count_by_hand():
    # 3x3 image, patch 1, 2 channels, window 2 (one block): the map is
    # padded to 4x4, i.e. 4 windows of 4 tokens. Patch embedding 9*2*1,
    # patch norm 18, norm1 18, attention per window 4*2*3*2 (qkv) +
    # 2*4*4*2 (scores, weighted sum) + 4*2*2 (proj) = 128, so 512; MLP
    # 2*9*2*2 = 72, norm2 18, output norm 18: 674.
    assert (
        dense.dense_macs(
            3,
            3,
            embed_dim=2,
            depths=(1,),
            window_size=2,
            patch_size=1,
            mlp_ratio=1.0,
            out_indices=(0,),
            in_channels=1,
        )
        == 674
    )


def test_dense_macs_is_the_classification_count_without_head_plus_norms():
    # At 224 px every Swin-T map is a multiple of the window: nothing is
    # padded or clamped, so the dense count is the classification count
    # without the head and the final norm, plus one norm per output.
    grids = [(56, 96), (28, 192), (14, 384), (7, 768)]
    expected = swin_flops(classes=0) - 7 * 7 * 768
    expected += sum(side * side * dim for side, dim in grids)
    assert dense.dense_macs(224, 224) == expected
    # 800x1216: the 200x304 map is padded to 203x308 for attention.
    assert dense.dense_macs(800, 1216) > dense.dense_macs(224, 224) * (
        800 * 1216 / 224**2
    )
    case = dict(model="swin_t_backbone", size=800, width=1216, batch=1)
    assert bench.case_flops(dict(case, mode="train")) == (
        2 * 3 * dense.dense_macs(800, 1216)
    )


def test_dense_plan_is_selectable_and_runs_every_case_alone():
    processes = bench.plan(
        models=["swin_t_backbone"], dtypes=["float32"], sweep_sizes=()
    )
    cases = [c for p in processes for row in p for c in row]
    assert [c["backend"] for c in cases if c["impl"] == "peak"] == [
        "tensorflow",
        "jax",
        "torch",
    ]
    dense_processes = [p for p in processes if p[0][0]["impl"] != "peak"]
    # One case per process: no peak is shared between cases.
    assert all(len(p) == 1 and len(p[0]) == 1 for p in dense_processes)
    cases = [p[0][0] for p in dense_processes]
    assert all(c["dense"] and c["batch"] == 1 for c in cases)
    assert {c["dtype"] for c in cases} == {"float32"}
    inference = [c for c in cases if c["mode"] == "inference"]
    assert {(c["size"], c["width"]) for c in inference} == {
        (512, 512),
        (800, 1216),
    }
    # keras-swin and KerasHub on every backend, the reference once a size.
    assert len(inference) == 2 * (3 * 2 + 1)
    assert sorted(
        (c["impl"], c["process"]) for c in inference if c["size"] == 512
    ) == sorted(
        [(i, b) for i in ("keras_swin", "keras_hub") for b in bench.BACKENDS]
        + [("hf_torch", "torch")]
    )
    train = [c for c in cases if c["mode"] == "train"]
    assert {(c["size"], c["width"]) for c in train} == {(512, 512)}
    assert sorted(
        (c["impl"], c["process"], c["checkpoint"]) for c in train
    ) == (
        sorted(
            (i, b, k)
            for i, b in [("keras_swin", b) for b in bench.BACKENDS]
            + [("hf_torch", "torch")]
            for k in (False, True)
        )
    )
    compiled = {c["process"] for c in cases if c["compile"]}
    assert compiled == {"tensorflow", "jax"}
    # Only what is asked: no dense case for the classification models,
    # none for latency alone.
    assert not any(
        c.get("dense")
        for p in bench.plan(models=["swin_t"], sweep_sizes=())
        for row in p
        for c in row
    )
    assert not any(
        c.get("dense")
        for p in bench.plan(models=["swin_t_backbone"], modes=["latency"])
        for row in p
        for c in row
    )


def _recording_run(seen: dict):
    """A stand-in for a `run` function: records its arguments in `seen`
    and returns an empty report."""

    def fake_run(**kwargs):
        seen.update(kwargs)
        return {
            "machine": {"cpu": "cpu", "cpu_count": 2, "versions": {}},
            "skipped": [],
            "results": [],
            "seconds": 1.0,
        }

    return fake_run


def test_dense_cli_option_selects_the_row_and_names_the_report(
    monkeypatch, tmp_path
):
    seen = {}
    fake_run = _recording_run(seen)
    monkeypatch.setattr(bench, "run", fake_run)
    args = bench.build_parser().parse_args(
        [
            "--models",
            "swin_t_backbone",
            "--report",
            "dense",
            "--output",
            str(tmp_path),
        ]
    )
    assert bench.run_from_args(args) == 0
    assert seen["models"] == ["swin_t_backbone"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "dense.json",
        "dense.md",
    ]


@pytest.mark.parametrize("checkpoint", [False, True])
def test_dense_keras_swin_cases_run(tiny_dense, checkpoint):
    for mode in ("inference", "train"):
        if mode == "inference" and checkpoint:
            continue
        case = _dense_case(mode=mode, checkpoint=checkpoint)
        result = bench.run_case(case)
        _assert_measured(result, case)
        assert result["width"] == 52 and result["checkpoint"] is checkpoint
        assert result["flops_per_s"] * result["median_s"] == pytest.approx(
            2 * (3 if mode == "train" else 1) * dense.case_macs(case)
        )


@pytest.mark.parametrize("checkpoint", [False, True])
def test_dense_pytorch_reference_runs(tiny_dense, checkpoint):
    pytest.importorskip("transformers", reason="the PyTorch reference")
    for mode in ("inference", "train"):
        case = _dense_case(impl="hf_torch", mode=mode, checkpoint=checkpoint)
        _assert_measured(bench.run_case(case), case)


def test_dense_keras_hub_has_no_training_row(tiny_dense):
    pytest.importorskip("keras_hub", reason="the keras-hub baseline")
    result = bench.run_case(_dense_case(impl="keras_hub", mode="train"))
    assert result["error"] == f"ValueError: {dense.KERAS_HUB_TRAIN_NOTE}"


def _dense_report():
    base = dict(model="swin_t_backbone", dtype="float32", batch=1, dense=True)
    infer = dict(base, mode="inference", checkpoint=False)

    def timed(ips, mib, macs):
        return dict(
            images_per_s=ips,
            ms_per_call=1000.0 / ips,
            memory_mib=mib,
            flops_per_s=2 * macs * ips,
        )

    small, large = dense.dense_macs(512, 512), dense.dense_macs(800, 1216)
    results = [
        dict(impl="peak", backend="torch", flops_per_s=100e9, size=2048),
        dict(
            infer,
            impl="keras_swin",
            backend="jax",
            process="jax",
            compile=True,
            size=512,
            width=512,
            **timed(3.0, 700.0, small),
        ),
        dict(
            infer,
            impl="keras_hub",
            backend="jax",
            process="jax",
            compile=True,
            size=512,
            width=512,
            **timed(1.5, 650.0, small),
        ),
        dict(
            infer,
            impl="hf_torch",
            backend="torch",
            process="torch",
            compile=False,
            size=512,
            width=512,
            **timed(2.0, 500.0, small),
        ),
        dict(
            infer,
            impl="keras_swin",
            backend="jax",
            process="jax",
            compile=True,
            size=800,
            width=1216,
            error="RuntimeError: out of memory",
        ),
        dict(
            infer,
            impl="hf_torch",
            backend="torch",
            process="torch",
            compile=False,
            size=800,
            width=1216,
            **timed(0.5, 1500.0, large),
        ),
    ]
    for impl, backend, off, on in (
        ("keras_swin", "jax", (800.0, 1000.0), (500.0, 1300.0)),
        ("hf_torch", "torch", (1200.0, 900.0), (900.0, 1350.0)),
    ):
        for checkpoint, (mib, ms) in ((False, off), (True, on)):
            results.append(
                dict(
                    base,
                    impl=impl,
                    backend=backend,
                    process=backend,
                    mode="train",
                    compile=backend != "torch",
                    checkpoint=checkpoint,
                    size=512,
                    width=512,
                    images_per_s=1000.0 / ms,
                    ms_per_call=ms,
                    memory_mib=mib,
                    flops_per_s=1.0,
                )
            )
    return {
        "machine": {"cpu": "cpu", "cpu_count": 2, "gpu": None, "versions": {}},
        "skipped": [],
        "results": results,
        "seconds": 10.0,
    }


def _row(text, *needles):
    lines = [
        line
        for line in text.splitlines()
        if all(n in line for n in needles) and line.startswith("|")
    ]
    assert len(lines) == 1, (needles, lines)
    return [c.strip() for c in lines[0].split("|")][1:-1]


def test_dense_markdown_reports_ratios_memory_and_checkpoint_saving():
    text = bench.markdown(_dense_report())
    # Only the dense section: no empty main table.
    assert "| model | mode | precision |" not in text
    header = _row(text, "| model | implementation | backend | 512x512")
    assert header[3:] == [
        "512x512 images/s",
        "MiB",
        "vs PyTorch",
        "% peak",
        "800x1216 images/s",
        "MiB",
        "vs PyTorch",
        "% peak",
    ]
    # 3 images/s over the reference's 2 -> 1.50x; 2 * macs * 3 of 100
    # GFLOP/s; at 800x1216 this case failed.
    share = 2 * dense.dense_macs(512, 512) * 3.0 / 100e9 * 100
    assert _row(text, "| keras_swin | jax | 3.00 |")[3:] == [
        "3.00",
        "700",
        "1.50x",
        f"{share:.0f}",
        "error",
        "error",
        "–",
        "–",
    ]
    assert _row(text, "keras_hub (last stage only)")[3:6] == [
        "1.50",
        "650",
        "0.75x",
    ]
    assert _row(text, "| hf_torch | torch eager |", "0.50")[5] == "–"
    assert dense.KERAS_HUB_NOTE in text
    # Training: 800 -> 500 MiB saves 300 MiB, 37.5%; 1300 / 1000 ms.
    assert _row(text, "| keras_swin | jax | 1000 |") == [
        "Swin-T backbone",
        "keras_swin",
        "jax",
        "1000",
        "800",
        "1300",
        "500",
        "300",
        "38",
        "1.30",
    ]
    assert _row(text, "| hf_torch | torch eager | 900 |")[7:] == [
        "300",
        "25",
        "1.50",
    ]
    assert "RuntimeError: out of memory" in text
    assert dense.KERAS_HUB_TRAIN_NOTE in text


def test_checkpoint_saving_needs_both_cases():
    results = _dense_report()["results"]
    assert dense.checkpoint_saving(results, "keras_swin", "jax") == {
        "without_mib": 800.0,
        "with_mib": 500.0,
        "saved_mib": 300.0,
        "saved_percent": 37.5,
        "slowdown": 1.3,
    }
    alone = [r for r in results if not r.get("checkpoint")]
    assert dense.checkpoint_saving(alone, "keras_swin", "jax") is None
    assert dense.checkpoint_saving(results, "keras_swin", "torch") is None


def test_merge_keeps_checkpointed_and_plain_cases_apart():
    report = _dense_report()
    train = [r for r in report["results"] if r.get("mode") == "train"]
    again = dict(train[1], memory_mib=450.0)  # keras_swin checkpointed
    new = dict(report, results=[again], seconds=1.0)
    merged = bench.merge(report, new)
    assert len(merged["results"]) == len(report["results"])
    saving = dense.checkpoint_saving(merged["results"], "keras_swin", "jax")
    assert (saving["without_mib"], saving["with_mib"]) == (800.0, 450.0)
    # The two sizes of one implementation are two cases too.
    sizes = {
        (r["size"], r["width"])
        for r in merged["results"]
        if r.get("impl") == "hf_torch" and r.get("mode") == "inference"
    }
    assert sizes == {(512, 512), (800, 1216)}


def test_benchmarks_readme_shows_the_dense_report():
    """benchmarks/README.md shows benchmarks/results/dense.md verbatim."""
    report = ROOT / "benchmarks" / "results" / "dense.md"
    if not report.exists():
        pytest.skip("no dense report yet")
    readme = (ROOT / "benchmarks" / "README.md").read_text()
    assert report.read_text().strip() in readme


# -------------------------------------------------------- exported rows --


def test_exported_plan_runs_every_implementation_side_by_side():
    processes = exported.plan(models=["swin_t", "vit_b16"], batches=[1, 8])
    assert [(p[0][0]["model"], p[0][0]["batch"]) for p in processes] == [
        ("swin_t", 1),
        ("swin_t", 8),
        ("vit_b16", 1),
        ("vit_b16", 8),
    ]
    for (row,) in processes:  # one interleaved set per process
        impls = [(c["impl"], c["compile"]) for c in row]
        expected = [(i, False) for i in exported.IMPLEMENTATIONS]
        at = expected.index(("hf_torch", False)) + 1
        assert impls == expected[:at] + [("hf_torch", True)] + expected[at:]
        assert {c["process"] for c in row} == {"tensorflow"}
        assert {c["exported"] for c in row} == {True}
        profiled = {c["impl"] for c in row if c["profile"]}
        assert profiled == (
            {
                i
                for i, (rt, _) in exported.IMPLEMENTATIONS.items()
                if rt.startswith("onnxruntime")
            }
            if row[0]["batch"] == 8
            else set()
        )
    with pytest.raises(ValueError, match="swin_t_backbone"):
        exported.plan(models=["swin_t_backbone"])


def test_exported_cli_option_runs_the_exported_rows(monkeypatch, tmp_path):
    seen = {}
    fake_run = _recording_run(seen)
    monkeypatch.setattr(exported, "run", fake_run)
    args = bench.build_parser().parse_args(
        ["--exported", "--output", str(tmp_path)]
    )
    assert bench.run_from_args(args) == 0
    assert seen["models"] == ["swin_t", "vit_b16"]
    assert seen["batches"] == [1, 8]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "exported.json",
        "exported.md",
    ]


@pytest.mark.slow
@pytest.mark.skipif(
    BACKEND != "tensorflow",
    reason="keras-swin is exported from the TensorFlow backend; the rows "
    "run once, in the TensorFlow leg",
)
def test_exported_rows_are_checked_measured_and_reported(
    tiny_models, monkeypatch, tmp_path
):
    """Tiny Swin and ViT: every runtime's logits match their source
    model's, the rows are timed side by side, the report has the ratios,
    the summary and the ONNX Runtime profile."""
    pytest.importorskip("transformers", reason="the PyTorch reference")
    monkeypatch.setattr(exported, "_PREPARED", {"folder": str(tmp_path)})
    impls = ["keras_onnx", "keras_openvino", "keras_saved_model"]
    impls += ["hf_torch", "hf_onnx", "hf_onnx_opt", "hf_openvino"]
    results = []
    for model in ("swin_tiny", "vit_tiny"):
        (row,) = exported.plan(
            models=[model],
            batches=[2],
            size=32,
            implementations=impls
            + (["keras_onnx_opt"] if "vit" in model else []),
            torch_compile=False,
            **TIMING,
        )[0]
        results += bench.run_interleaved(row)
    for r in results:
        assert "error" not in r, r["error"]
        assert r["iterations"] >= 1 and r["images_per_s"] > 0
        assert r["max_abs_err"] < 1e-5 and r["check_ok"], r
        assert r["threads"]
    profiled = [r for r in results if r.get("profile")]
    assert {r["impl"] for r in profiled} == {
        "keras_onnx",
        "keras_onnx_opt",
        "hf_onnx",
        "hf_onnx_opt",
    }
    for r in profiled:
        assert r["profile"]["optimized_graph_ops"]["MatMul"] > 0
        assert sum(r["profile"]["op_time_share"].values()) == pytest.approx(
            1.0, abs=1e-3
        )
    # The reference's ONNX Runtime optimiser fuses its LayerNorms.
    hf_opt = next(r for r in results if r["impl"] == "hf_onnx_opt")
    assert hf_opt["fused"].get("LayerNormalization", 0) > 0
    report = {
        "machine": bench.machine_info(),
        "results": results,
        "seconds": 1.0,
    }
    rows = exported.summary(report)
    assert [(s["model"], s["batch"]) for s in rows] == [
        ("swin_tiny", 2),
        ("vit_tiny", 2),
    ]
    for s in rows:
        assert s["best"].startswith("keras_") and s["vs_torch"] > 0
    text = exported.markdown(report)
    keras_onnx = next(
        line
        for line in text.splitlines()
        if line.startswith("| Swin tiny 32px | 2 | keras_onnx |")
    )
    # Ratios vs PyTorch and vs the reference's ONNX in ONNX Runtime.
    assert len(re.findall(r"\| \d+\.\d\dx ", keras_onnx)) == 2
    assert "keras-swin's best exported row" in text
    assert "ONNX Runtime profile" in text and "(!)" not in text


@pytest.mark.slow
@pytest.mark.skipif(
    BACKEND != "tensorflow",
    reason="the TensorFlow leg's worker exports from torch in a subprocess",
)
def test_exported_from_the_torch_backend_matches_the_keras_model(
    tiny_models, monkeypatch, tmp_path
):
    """keras-swin's ONNX exported from the PyTorch backend, with the
    TensorFlow model's weights, gives its logits; so does the export
    with fused attention."""
    monkeypatch.setattr(exported, "_PREPARED", {"folder": str(tmp_path)})
    (row,) = exported.plan(
        models=["swin_tiny"],
        batches=[2],
        size=32,
        implementations=["keras_onnx_torch", "keras_onnx_torch_fused"],
        torch_compile=False,
        **TIMING,
    )[0]
    results = bench.run_interleaved(row)
    assert [r["impl"] for r in results] == [
        "keras_onnx_torch",
        "keras_onnx_torch_fused",
    ]
    for result in results:
        assert "error" not in result, result["error"]
        assert result["check_ok"] and result["max_abs_err"] < 1e-5
    assert {"onnx_torch", "onnx_torch_fused"} <= set(results[1]["export_s"])
    fused = tmp_path / "keras_swin_tiny_32" / "model_torch_fused.onnx"
    import onnx

    ops = [n.op_type for n in onnx.load(str(fused)).graph.node]
    assert ops.count("Attention") == sum(
        bench.MODELS["swin_tiny"]["config"]["depths"]
    )


def test_fused_rows_are_compared_with_the_faster_reference_onnx():
    """The fused-attention row's "vs ref. ONNX" is over the faster of the
    reference's ONNX with and without ONNX Runtime's optimiser."""

    def row(impl, images_per_s):
        return dict(
            impl=impl,
            model="swin_t",
            batch=8,
            compile=False,
            exported=True,
            images_per_s=images_per_s,
            ms_per_call=8000 / images_per_s,
            max_abs_err=0.0,
            check_ok=True,
        )

    results = [
        row("keras_onnx_torch_fused", 33.0),
        row("hf_torch", 16.5),
        row("hf_onnx", 30.0),
        row("hf_onnx_opt", 31.0),
    ]
    (best,) = exported.summary({"results": results})
    assert best["best"] == "keras_onnx_torch_fused"
    assert best["vs_torch"] == pytest.approx(2.0)
    assert best["vs_same_runtime"] == pytest.approx(33.0 / 31.0)
    results[3]["images_per_s"] = 29.0
    (best,) = exported.summary({"results": results})
    assert best["vs_same_runtime"] == pytest.approx(1.1)
    assert best["met"] == [True, True]
