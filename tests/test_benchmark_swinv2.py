"""The benchmark's SwinV2-T row (benchmarks/bench.py, model `swinv2_t`).

Checks that the row is wired: the same architecture in keras-swin and in
the Hugging Face reference, its cases planned and runnable, the baselines
it cannot have reported. Nothing is timed against anything here; logit
parity with Hugging Face is tested elsewhere (tests of the V2 model).
"""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest
from test_benchmark import _case as benchmark_case

from benchmarks import bench
from keras_swin.models import SWINV2_CONFIGS

#: SwinV2-T (window 8, 256 px) with its 1000-class head: timm's
#: `swinv2_tiny_window8_256` has 28.35M parameters.
SWINV2_T_PARAMETERS = 28_347_154


@pytest.fixture
def tiny_v2(monkeypatch):
    """A small Swin V2 spec beside the real one, so cases run in seconds."""
    spec = dict(
        bench.MODELS["swinv2_t"],
        title="SwinV2 tiny",
        size=32,
        config=dict(
            embed_dim=16,
            depths=(1, 1),
            num_heads=(1, 2),
            window_size=4,
            patch_size=4,
        ),
    )
    monkeypatch.setattr(bench, "MODELS", dict(bench.MODELS, swinv2_small=spec))


def _case(**overrides):
    # test_benchmark's tiny case, on the tiny V2 model registered above.
    return benchmark_case(**{"model": "swinv2_small", **overrides})


def _assert_ran(result: dict) -> None:
    assert "error" not in result, result.get("error")
    assert result["iterations"] >= 1 and result["images_per_s"] > 0


def test_row_is_the_official_swinv2_tiny_at_window_8_and_256_px():
    spec = bench.MODELS["swinv2_t"]
    architecture = {
        k: v
        for k, v in SWINV2_CONFIGS["swinv2_tiny"].items()
        if k != "drop_path_rate"
    }
    assert {k: spec["config"][k] for k in architecture} == architecture
    assert spec["config"]["window_size"] == 8 and spec["size"] == 256
    assert spec["timm"] == "swinv2_tiny_window8_256"
    # The paper's 5.9G FLOPs (multiply-adds) for SwinV2-T 256 px, window 8.
    assert round(bench.macs("swinv2_t", 256) / 1e9, 1) == 5.9


def test_keras_and_hugging_face_models_have_the_same_parameters():
    """The two measured models are one architecture, heads included."""
    pytest.importorskip("transformers", reason="the PyTorch reference")
    keras_model = bench._keras_model("keras_swin", "swinv2_t", 256, "float32")
    hf_model = bench._hf_model("swinv2_t", 256)
    hf_count = sum(p.numel() for p in hf_model.parameters())
    assert keras_model.count_params() == hf_count == SWINV2_T_PARAMETERS
    head = hf_model.classifier
    assert tuple(head.weight.shape) == (1000, 768)
    assert keras_model.get_layer("head").kernel.shape == (768, 1000)
    assert keras_model.output_shape == (None, 1000)
    assert hf_model.config.window_size == 8
    assert hf_model.config.image_size == 256
    assert hf_model.config.drop_path_rate == 0.0


def test_plan_measures_the_row_at_its_own_size_without_keras_hub():
    processes = bench.plan(
        backends=["torch"], models=["swinv2_t"], dtypes=["float32"]
    )
    sets = [row for p in processes for row in p if row[0]["impl"] != "peak"]
    assert len(sets) == 3  # latency, inference, train; no size sweep
    for row in sets:
        assert {(c["size"], c["model"]) for c in row} == {(256, "swinv2_t")}
        eager = [c["impl"] for c in row if not c["compile"]]
        assert eager == ["keras_swin", "hf_torch", "timm_torch"]
        assert {c["backend"] for c in row if c["impl"] != "keras_swin"} == {
            "torch"
        }
        # torch.compile of keras-swin and the reference, inference only.
        compiled = [c["impl"] for c in row if c["compile"]]
        training = row[0]["mode"] == "train"
        assert compiled == ([] if training else ["keras_swin", "hf_torch"])
    batches = {c["mode"]: c["batch"] for row in sets for c in row}
    assert batches == {"latency": 1, "inference": 8, "train": 8}
    # By default each model runs at its own size; --size sets all.
    for size, expected in ((None, {224, 256}), (224, {224})):
        both = bench.plan(
            models=["swin_t", "swinv2_t"], sweep_sizes=(), size=size
        )
        sizes = {c["size"] for p in both for r in p for c in r if "size" in c}
        assert sizes == expected


def test_cli_selects_only_the_row(monkeypatch, tmp_path):
    seen = {}

    def fake_run(**kwargs):
        seen.update(kwargs)
        return {
            "machine": {"cpu": "cpu", "cpu_count": 2, "versions": {}},
            "skipped": [],
            "results": [],
            "seconds": 1.0,
        }

    monkeypatch.setattr(bench, "run", fake_run)
    args = bench.build_parser().parse_args(
        [
            "--models",
            "swinv2_t",
            "--report",
            "swinv2",
            "--output",
            str(tmp_path),
        ]
    )
    assert bench.run_from_args(args) == 0
    assert seen["models"] == ["swinv2_t"] and seen["size"] is None
    assert (tmp_path / "swinv2.json").exists()
    assert (tmp_path / "swinv2.md").exists()
    assert not (tmp_path / "latest.json").exists()


def test_missing_baselines_are_reported_with_the_reason(monkeypatch):
    """timm that does not import and KerasHub without Swin V2: listed
    under "Not measured", never measured or faked."""
    monkeypatch.setattr(
        bench,
        "import_error",
        lambda module: f"ModuleNotFoundError: No module named '{module}'",
    )
    planned = {}

    def fake_process(sets, timeout, log, allocator):
        planned.setdefault("impls", set()).update(
            c["impl"] for row in sets for c in row
        )
        return []

    monkeypatch.setattr(bench, "_run_process", fake_process)
    monkeypatch.setattr(bench, "machine_info", lambda: {})
    report = bench.run(
        backends=["torch"],
        models=["swinv2_t"],
        modes=["latency"],
        dtypes=["float32"],
        progress=False,
    )
    assert planned["impls"] == {"peak", "keras_swin", "hf_torch"}
    assert (
        "timm_torch: `timm` is not importable (ModuleNotFoundError: No "
        "module named 'timm')" in report["skipped"]
    )
    assert any(
        s.startswith("keras_hub: KerasHub has no Swin V2")
        for s in report["skipped"]
    )


def test_import_error_names_the_reason():
    assert bench.import_error("json") is None
    why = bench.import_error("keras_swin_no_such_module")
    assert why.startswith("ModuleNotFoundError")
    assert "keras_swin_no_such_module" in why


def test_markdown_shows_the_row_its_ratios_and_what_is_missing():
    same = dict(
        process="torch",
        model="swinv2_t",
        mode="inference",
        dtype="float32",
        batch=8,
        size=256,
    )
    result = dict(ms_per_call=1.0, memory_mib=1.0, flops_per_s=1e9)
    report = dict(
        machine=dict(cpu="Test CPU", cpu_count=2, gpu=None, versions={}),
        skipped=[
            "timm_torch: `timm` is not importable (ModuleNotFoundError: "
            "No module named 'timm')",
            "keras_hub: " + bench.MODELS["swinv2_t"]["missing"]["keras_hub"],
        ],
        results=[
            dict(same, impl="hf_torch", backend="torch", compile=False)
            | dict(result, images_per_s=10.0),
            dict(same, impl="keras_swin", backend="torch", compile=False)
            | dict(result, images_per_s=8.0),
        ],
        seconds=1.0,
    )
    text = bench.markdown(report)
    row = next(line for line in text.splitlines() if "| keras_swin |" in line)
    cells = [c.strip() for c in row.split("|")]
    assert cells[1] == "SwinV2-T 256px b8"
    assert cells[9:11] == ["0.80x", "–"]
    assert "- timm_torch: `timm` is not importable (" in text
    assert "- keras_hub: KerasHub has no Swin V2" in text


@pytest.mark.parametrize("mode", ["inference", "train"])
def test_keras_swin_v2_cases_run(tiny_v2, mode):
    _assert_ran(bench.run_case(_case(mode=mode)))


@pytest.mark.parametrize("mode", ["inference", "train"])
def test_hugging_face_v2_reference_runs(tiny_v2, mode):
    pytest.importorskip("transformers", reason="the PyTorch reference")
    case = _case(impl="hf_torch", backend="torch", mode=mode, compile=False)
    _assert_ran(bench.run_case(case))


def test_keras_hub_v2_case_is_refused_by_name(tiny_v2):
    result = bench.run_case(_case(impl="keras_hub"))
    assert result["error"].startswith("ValueError: keras_hub: KerasHub has")


@pytest.mark.parametrize("mode", ["inference", "train"])
def test_timm_case_builds_the_named_model(tiny_v2, monkeypatch, mode):
    """A stand-in `timm` module: the case asks for the named model, with
    no weights, no stochastic depth, and calls it on the images."""
    torch = pytest.importorskip("torch")
    asked = {}

    def create_model(name, **kwargs):
        asked.update(kwargs, name=name)
        features = 3 * kwargs["img_size"] ** 2
        return torch.nn.Sequential(
            torch.nn.Flatten(),
            torch.nn.Linear(features, kwargs["num_classes"]),
        )

    fake = types.ModuleType("timm")
    fake.create_model = create_model
    monkeypatch.setitem(sys.modules, "timm", fake)
    case = _case(impl="timm_torch", backend="torch", mode=mode, compile=False)
    result = bench.run_case(case)
    _assert_ran(result)
    assert asked == dict(
        name="swinv2_tiny_window8_256",
        pretrained=False,
        num_classes=1000,
        img_size=32,
        drop_path_rate=0.0,
    )
    assert np.isfinite(result["images_per_s"])
