"""The exported rows of the benchmark: the fastest CPU path, measured.

`python benchmarks/run.py --exported` measures keras-swin's Swin-T and
ViT-B/16 (random weights, classes=1000, float32, 224 px) exported with
`keras_swin.export.export_model` from the TensorFlow backend, each in
its own runtime, against the Hugging Face `transformers` models of the
same architecture in PyTorch and exported by PyTorch itself. One worker
process per (model, batch) (batch 1 and `--batch`, default 8); inside it
every implementation below is built and checked, then timed in the same
interleaved rounds (`bench.run_interleaved`):

* `keras_onnx`: keras-swin's ONNX (tf2onnx) in ONNX Runtime (CPU,
  default session: graph optimisation level ORT_ENABLE_ALL);
* `keras_onnx_opt`: the same ONNX after ONNX Runtime's transformer
  optimiser (`onnxruntime.transformers.optimizer.optimize_model`,
  model_type "swin" or "vit"), in ONNX Runtime;
* `keras_onnx_torch` (`_opt`): keras-swin's ONNX exported from the
  PyTorch backend (torch.export), the same weights;
* `keras_onnx_torch_fused`: that export with `fuse_attention=True`, each
  attention one `com.microsoft.Attention` node; compared with the faster
  of `hf_onnx` and `hf_onnx_opt`;
* `keras_openvino`: keras-swin's OpenVINO IR in OpenVINO, float32
  (`INFERENCE_PRECISION_HINT: f32`; its CPU default is bfloat16 on CPUs
  with bfloat16 units);
* `keras_saved_model`: keras-swin's SavedModel in TensorFlow, through
  its `serving_default` signature;
* `hf_torch`: the PyTorch reference, eager and `torch.compile`;
* `hf_onnx`: the reference's own ONNX (`torch.onnx.export`, opset 17,
  dynamic batch) in ONNX Runtime; `hf_onnx_opt`: after the same
  transformer optimiser; `hf_openvino`: that ONNX in OpenVINO, float32.

Before timing, each implementation's output on the timed input is
compared with its source model's (the Keras model in TensorFlow for
keras-swin's artefacts, the eager Hugging Face model for the
reference's): `max_abs_err` in the results, so that no speed is measured
on a broken graph. At the larger batch, each ONNX Runtime case is also
profiled (`SessionOptions.enable_profiling`, two calls): time per
operator type, and the node types of ONNX Runtime's optimised graph
(`optimized_model_filepath`), which show the fusions it applied.

Results: benchmarks/results/exported.json and exported.md (`--report`),
with the workers' OMP_WAIT_POLICY / OMP_NUM_THREADS. On a small shared
CPU run it as `OMP_WAIT_POLICY=PASSIVE python benchmarks/run.py
--exported`: PyTorch's spinning OpenMP threads otherwise slow every
runtime in the process, PyTorch most (docs/deployment.md, "Speed").

Example (from the clone's root):
    >>> from benchmarks import exported
    >>> groups = exported.plan(models=["swin_t"], batches=[8])
    >>> [c["impl"] for c in groups[0][0]][:3]
    ['keras_onnx', 'keras_onnx_opt', 'keras_onnx_torch']
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks import bench

#: Models of the exported rows (keys of `bench.MODELS`).
MODELS = ("swin_t", "vit_b16")
#: Batches measured by default.
BATCHES = (1, 8)
#: Implementation -> (runtime shown in the table, source model).
IMPLEMENTATIONS = {
    "keras_onnx": ("onnxruntime", "keras"),
    "keras_onnx_opt": ("onnxruntime + transformers optimizer", "keras"),
    "keras_onnx_torch": ("onnxruntime, exported from torch", "keras"),
    "keras_onnx_torch_opt": (
        "onnxruntime + transformers optimizer, exported from torch",
        "keras",
    ),
    "keras_onnx_torch_fused": (
        "onnxruntime, fused attention, exported from torch",
        "keras",
    ),
    "keras_openvino": ("openvino f32", "keras"),
    "keras_saved_model": ("tensorflow", "keras"),
    "hf_torch": ("torch", "hf"),
    "hf_onnx": ("onnxruntime", "hf"),
    "hf_onnx_opt": ("onnxruntime + transformers optimizer", "hf"),
    "hf_openvino": ("openvino f32", "hf"),
}
#: The reference of the same runtime, for the "vs reference ONNX" ratio
#: (a tuple: the fastest of them in the same rounds).
SAME_RUNTIME = {
    "keras_onnx": "hf_onnx",
    "keras_onnx_opt": "hf_onnx_opt",
    "keras_onnx_torch": "hf_onnx",
    "keras_onnx_torch_opt": "hf_onnx_opt",
    "keras_onnx_torch_fused": ("hf_onnx", "hf_onnx_opt"),
    "keras_openvino": "hf_openvino",
}
#: ONNX opset of the reference's `torch.onnx.export`.
OPSET = 17
#: ONNX Runtime operator types whose count the report shows (fusions).
FUSED_OPS = (
    "Attention",
    "MultiHeadAttention",
    "LayerNormalization",
    "SkipLayerNormalization",
    "SimplifiedLayerNormalization",
    "Gelu",
    "BiasGelu",
    "FastGelu",
    "Gemm",
    "FusedMatMul",
    "MatMul",
    "Softmax",
    "Erf",
    "Transpose",
    "Reshape",
)
#: A runtime's logits match their source model's within this, times
#: max(1, largest logit): float32 reordering, not a broken graph.
TOLERANCE = 1e-4
#: Issue targets at the larger batch: (vs PyTorch eager, vs the
#: reference's ONNX in the same runtime).
TARGETS = {"swin_t": (1.3, 1.0), "vit_b16": (1.0, 1.0)}


def _source(impl: str) -> str:
    return IMPLEMENTATIONS[impl][1]


def plan(
    models=MODELS,
    batches=BATCHES,
    size: int = 224,
    implementations=tuple(IMPLEMENTATIONS),
    torch_compile: bool = True,
    profile_batch: int | None = None,
    warmup: int = 1,
    min_iters: int = 3,
    min_time: float = 0.0,
) -> list[list[list[dict]]]:
    """The exported cases: one worker process per (model, batch).

    Args:
        models: keys of `bench.MODELS` (Swin or ViT classifiers).
        batches: batches, one process each.
        size: image side.
        implementations: keys of `IMPLEMENTATIONS`.
        torch_compile: also `hf_torch` with `torch.compile`.
        profile_batch: batch whose ONNX Runtime cases are profiled;
            default the largest of `batches`.
        warmup: untimed calls before timing (after the numerical check).
        min_iters: fewest timed rounds.
        min_time: seconds of rounds to reach, at least.

    Returns:
        Processes (each one set of interleaved cases), as `bench.plan`.

    Example:
        >>> [len(p[0]) for p in plan(models=["vit_b16"], batches=[1, 8])]
        [12, 12]
    """
    bad = [
        m for m in models if m not in bench.MODELS or bench.dense.is_dense(m)
    ]
    bad += [i for i in implementations if i not in IMPLEMENTATIONS]
    if bad:
        raise ValueError(
            f"unknown {bad}; exported rows take models of "
            f"{[m for m in bench.MODELS if not bench.dense.is_dense(m)]} "
            f"and implementations of {list(IMPLEMENTATIONS)}."
        )
    profile_batch = max(batches) if profile_batch is None else profile_batch
    processes = []
    for model in models:
        for batch in batches:
            row = []
            for impl in implementations:
                runtime, _ = IMPLEMENTATIONS[impl]
                for compiled in (False, True):
                    if compiled and not (impl == "hf_torch" and torch_compile):
                        continue
                    row.append(
                        dict(
                            impl=impl,
                            backend="torch" if impl == "hf_torch" else runtime,
                            process="tensorflow",
                            exported=True,
                            model=model,
                            mode="inference",
                            dtype="float32",
                            batch=batch,
                            size=size,
                            compile=compiled,
                            profile=batch == profile_batch
                            and runtime.startswith("onnxruntime"),
                            warmup=warmup,
                            min_iters=min_iters,
                            min_time=min_time,
                        )
                    )
            processes.append([row])
    return processes


# --------------------------------------------------------------- worker --

#: Per worker process: the models and artefacts of one (model, size).
_PREPARED: dict = {}


def _work_folder() -> str:
    """The folder of the exports: the run's cache (shared by its worker
    processes, so each model is exported once), or a temporary one."""
    folder = _PREPARED.get("folder")
    if folder is None:
        folder = tempfile.mkdtemp(prefix="keras-swin-exported-")
        _PREPARED["folder"] = folder
        import atexit

        atexit.register(shutil.rmtree, folder, True)
    return folder


def _export_timed(folder: str, what: str, export, path: str) -> None:
    """Runs `export` unless `path` exists; its seconds go to a JSON file."""
    if os.path.exists(path):
        return
    start = time.perf_counter()
    export()
    log = Path(folder) / "export_s.json"
    times = json.loads(log.read_text()) if log.exists() else {}
    times[what] = round(time.perf_counter() - start, 1)
    bench._write_atomic(log, json.dumps(times))


def _export_times(folder: str) -> dict:
    log = Path(folder) / "export_s.json"
    return json.loads(log.read_text()) if log.exists() else {}


def _keras_net(model: str, size: int, weights: str):
    """keras-swin's model of `model`, seeded, with the run's weights."""
    import keras

    keras.utils.set_random_seed(0)
    net = bench._keras_model("keras_swin", model, size, "float32")
    if os.path.exists(weights):
        net.load_weights(weights)
    else:
        net.save_weights(weights)
    return net


def _keras_artefacts(model: str, size: int) -> dict:
    key = ("keras", model, size)
    if key in _PREPARED:
        return _PREPARED[key]
    from keras_swin.export import export_model

    folder = os.path.join(_work_folder(), f"keras_{model}_{size}")
    os.makedirs(folder, exist_ok=True)
    net = _keras_net(model, size, os.path.join(folder, "model.weights.h5"))
    paths = {}
    for fmt, name in (
        ("onnx", "model.onnx"),
        ("openvino", "model.xml"),
        ("saved_model", "saved_model"),
    ):
        paths[fmt] = os.path.join(folder, name)
        _export_timed(
            folder,
            fmt,
            lambda fmt=fmt: export_model(net, paths[fmt], fmt),
            paths[fmt],
        )
    _PREPARED[key] = {"model": net, "paths": paths, "folder": folder}
    _PREPARED[key]["outputs"] = {}
    return _PREPARED[key]


def _keras_torch_onnx(model: str, size: int, fused: bool = False) -> str:
    """keras-swin's ONNX exported from the PyTorch backend (same weights).

    `export_model` on the torch backend (torch.export, dynamic batch;
    `fuse_attention=fused`), in a subprocess, as a process has one Keras
    backend.
    """
    import subprocess

    artefacts = _keras_artefacts(model, size)
    folder = artefacts["folder"]
    name = "model_torch_fused.onnx" if fused else "model_torch.onnx"
    path = os.path.join(folder, name)

    def export():
        env = dict(os.environ, KERAS_BACKEND="torch")
        env["PYTHONPATH"] = os.pathsep.join(
            [str(bench.ROOT)] + [p for p in [os.environ.get("PYTHONPATH")] if p]
        )
        code = (
            "import json, sys; from benchmarks import bench, exported; "
            "bench.MODELS.update(json.loads(sys.argv[1])); "
            "exported._export_from_torch(*sys.argv[2:])"
        )
        spec = json.dumps({model: bench.MODELS[model]})
        done = subprocess.run(
            [sys.executable, "-c", code, spec, model, str(size), folder]
            + (["fused"] if fused else []),
            env=env,
            capture_output=True,
            text=True,
        )
        if done.returncode:
            tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise RuntimeError(f"torch-backend export failed: {tail}")

    key = "onnx_torch_fused" if fused else "onnx_torch"
    _export_timed(folder, key, export, path)
    artefacts["paths"][key] = path
    return path


def _export_from_torch(
    model: str, size: str, folder: str, fused: str = ""
) -> None:
    """In a torch-backend process: the run's weights, exported to ONNX
    (with `fuse_attention` when `fused` is "fused")."""
    from keras_swin.export import export_model

    size = int(size)
    net = _keras_net(model, size, os.path.join(folder, "model.weights.h5"))
    name = "model_torch_fused.onnx" if fused else "model_torch.onnx"
    export_model(
        net, os.path.join(folder, name), "onnx", fuse_attention=bool(fused)
    )


def _hf_artefacts(model: str, size: int) -> dict:
    key = ("hf", model, size)
    if key in _PREPARED:
        return _PREPARED[key]
    import torch

    torch.manual_seed(0)
    net = bench._hf_model(model, size).eval()

    class _Logits(torch.nn.Module):
        def __init__(self, wrapped):
            super().__init__()
            self.wrapped = wrapped

        def forward(self, pixel_values):
            return self.wrapped(pixel_values=pixel_values).logits

    folder = os.path.join(_work_folder(), f"hf_{model}_{size}")
    os.makedirs(folder, exist_ok=True)
    weights = os.path.join(folder, "model.pt")
    if os.path.exists(weights):
        net.load_state_dict(torch.load(weights))
    else:
        torch.save(net.state_dict(), weights)
    path = os.path.join(folder, "model.onnx")
    example = torch.zeros((2, 3, size, size), dtype=torch.float32)

    def export():
        tmp = path + ".tmp.onnx"
        with torch.no_grad():
            torch.onnx.export(
                _Logits(net),
                (example,),
                tmp,
                opset_version=OPSET,
                dynamo=False,
                input_names=["pixel_values"],
                output_names=["logits"],
                dynamic_axes={
                    "pixel_values": {0: "batch"},
                    "logits": {0: "batch"},
                },
            )
        os.replace(tmp, path)

    _export_timed(folder, "onnx", export, path)
    _PREPARED[key] = {
        "model": net,
        "paths": {"onnx": path},
        "folder": folder,
        "outputs": {},
    }
    return _PREPARED[key]


def _optimized(source: str, model: str) -> tuple[str, dict]:
    """`source` after onnxruntime.transformers' optimiser, and its fusions.

    model_type "swin" or "vit" (ViT with its heads and width; Swin's
    heads change by stage, so 0: read from the graph).
    """
    out = source[: -len(".onnx")] + "_opt.onnx"
    stats = out + ".fused.json"
    if not os.path.exists(stats):
        from onnxruntime.transformers.optimizer import optimize_model

        config = bench.MODELS[model]["config"]
        if bench.MODELS[model]["family"] == "swin":
            kwargs = dict(model_type="swin")
        else:
            kwargs = dict(
                model_type="vit",
                num_heads=config["num_heads"],
                hidden_size=config["hidden_size"],
            )
        start = time.perf_counter()
        optimizer = optimize_model(source, **kwargs)
        optimizer.save_model_to_file(out)
        fused = optimizer.get_fused_operator_statistics() or {}
        fused = {k: int(v) for k, v in fused.items() if v}
        fused["seconds"] = round(time.perf_counter() - start, 1)
        bench._write_atomic(Path(stats), json.dumps(fused))
    fused = json.loads(Path(stats).read_text())
    fused.pop("seconds", None)
    return out, fused


def _inputs(case: dict) -> np.ndarray:
    """The timed images, NHWC float32, the same for every implementation."""
    rng = np.random.default_rng(0)
    shape = (case["batch"], case["size"], case["size"], 3)
    return rng.random(shape, "float32")


def _reference(case: dict, source: str) -> np.ndarray:
    """The source model's logits on the timed images."""
    artefacts = (_keras_artefacts if source == "keras" else _hf_artefacts)(
        case["model"], case["size"]
    )
    batch = case["batch"]
    if batch not in artefacts["outputs"]:
        x = _inputs(case)
        if source == "keras":
            out = artefacts["model"](x, training=False)
        else:
            import torch

            with torch.inference_mode():
                pixels = torch.from_numpy(x.transpose(0, 3, 1, 2).copy())
                out = artefacts["model"](pixel_values=pixels).logits.numpy()
        artefacts["outputs"][batch] = np.asarray(out, np.float32)
    return artefacts["outputs"][batch]


def preload(case: dict) -> None:
    """Builds, exports and checks the source models of a case (untimed).

    Called by `bench.run_interleaved` before a case's memory baseline, so
    the table's memory is the runtime session, not the export.

    Example:
        >>> preload(plan(models=["swin_t"], batches=[1])[0][0][0])
    """
    if case.get("cache"):
        _PREPARED.setdefault("folder", case["cache"])
    _reference(case, _source(case["impl"]))


def _ort_session(path: str, profile_prefix: str | None = None, graph=None):
    import onnxruntime as ort

    options = ort.SessionOptions()
    if profile_prefix:
        options.enable_profiling = True
        options.profile_file_prefix = profile_prefix
    if graph:
        options.optimized_model_filepath = graph
    return ort.InferenceSession(
        path, options, providers=["CPUExecutionProvider"]
    )


def _ort_profile(path: str, x: np.ndarray, calls: int = 2) -> dict:
    """ONNX Runtime's time per operator type and its optimised graph.

    A profiling session runs `calls` + 1 times; the first call (buffer
    allocation) is left out of the times.
    """
    import onnx

    folder = tempfile.mkdtemp(dir=_work_folder())
    graph = os.path.join(folder, "optimized.onnx")
    session = _ort_session(path, os.path.join(folder, "profile"), graph)
    name = session.get_inputs()[0].name
    for _ in range(calls + 1):
        session.run(None, {name: x})
    trace = json.loads(Path(session.end_profiling()).read_text())
    runs = sorted(
        (e["ts"], e["ts"] + e.get("dur", 0))
        for e in trace
        if e.get("cat") == "Session" and e.get("name") == "model_run"
    )
    after = runs[0][1] if len(runs) > 1 else -1
    per_op: dict = {}
    for event in trace:
        args = event.get("args", {})
        if event.get("ts", 0) < after:
            continue
        if event.get("cat") == "Node" and "op_name" in args:
            if event.get("name", "").endswith("_kernel_time"):
                op = args["op_name"]
                per_op[op] = per_op.get(op, 0) + event.get("dur", 0)
    total = sum(per_op.values()) or 1
    ops: dict = {}
    for node in onnx.load(graph, load_external_data=False).graph.node:
        ops[node.op_type] = ops.get(node.op_type, 0) + 1
    shutil.rmtree(folder, ignore_errors=True)
    return {
        "op_time_share": {
            op: round(t / total, 4)
            for op, t in sorted(per_op.items(), key=lambda kv: -kv[1])
        },
        "op_ms_per_call": round(total / 1000 / calls, 2),
        "optimized_graph_ops": dict(sorted(ops.items(), key=lambda kv: -kv[1])),
    }


def _openvino(path: str):
    import openvino

    compiled = openvino.Core().compile_model(
        path, "CPU", {"INFERENCE_PRECISION_HINT": "f32"}
    )
    threads = compiled.get_property("INFERENCE_NUM_THREADS")
    precision = str(compiled.get_property("INFERENCE_PRECISION_HINT"))
    return compiled, f"INFERENCE_NUM_THREADS={threads}, precision {precision}"


def runner(case: dict):
    """A call of an exported case, checked against its source model.

    Builds the runtime session of `case["impl"]` (exporting on first use
    in the process), runs it once on the timed images and stores, in
    `case`, `max_abs_err` against the source model's logits (and
    `ref_max_abs`, the largest logit), the runtime's `threads` and, for a
    profiled ONNX Runtime case, `profile`.

    Args:
        case: an exported case (`plan`).

    Returns:
        A function of no arguments running one batch, returning logits.

    Example:
        >>> case = plan(models=["swin_t"], batches=[1])[0][0][0]
        >>> call = runner(case); case["max_abs_err"] < 1e-4
        True
    """
    impl, model, size = case["impl"], case["model"], case["size"]
    if case.get("cache"):
        _PREPARED.setdefault("folder", case["cache"])
    source = _source(impl)
    expected = _reference(case, source)
    x = _inputs(case)
    artefacts = (_keras_artefacts if source == "keras" else _hf_artefacts)(
        model, size
    )
    if IMPLEMENTATIONS[impl][0].startswith("onnxruntime"):
        if impl.startswith("keras_onnx_torch"):
            fused = impl.endswith("_fused")
            path = _keras_torch_onnx(model, size, fused=fused)
        else:
            path = artefacts["paths"]["onnx"]
        if impl.endswith("_opt"):
            path, case["fused"] = _optimized(path, model)
        if source == "hf":
            x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
        session = _ort_session(path)
        name = session.get_inputs()[0].name
        options = session.get_session_options()
        case["threads"] = (
            f"intra_op_num_threads={options.intra_op_num_threads} (0: one "
            f"per core), graph_optimization_level="
            f"{options.graph_optimization_level.name}"
        )
        if case.get("profile"):
            case["profile"] = _ort_profile(path, x)

        def call():
            return session.run(None, {name: x})[0]

    elif impl in ("keras_openvino", "hf_openvino"):
        path = artefacts["paths"]["openvino" if source == "keras" else "onnx"]
        if source == "hf":
            x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
        compiled, case["threads"] = _openvino(path)
        request = compiled.create_infer_request()

        def call():
            request.infer({0: x})
            return request.get_output_tensor(0).data.copy()

    elif impl == "keras_saved_model":
        import tensorflow as tf

        serve = tf.saved_model.load(artefacts["paths"]["saved_model"])
        serve = serve.signatures["serving_default"]
        (name,) = serve.structured_input_signature[1]
        images = tf.constant(x)
        case["threads"] = (
            "intra_op="
            f"{tf.config.threading.get_intra_op_parallelism_threads()}, "
            f"inter_op={tf.config.threading.get_inter_op_parallelism_threads()}"
            " (0: TensorFlow's default)"
        )

        def call():
            outputs = serve(**{name: images})
            return outputs[sorted(outputs)[0]].numpy()

    elif impl == "hf_torch":
        import torch

        net = artefacts["model"]
        pixels = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))

        def forward(pixels):
            return net(pixel_values=pixels).logits

        if case["compile"]:
            forward = torch.compile(forward)
        case["threads"] = f"torch.get_num_threads()={torch.get_num_threads()}"

        def call():
            with torch.inference_mode():
                return forward(pixels).numpy()

    else:
        raise ValueError(f"unknown exported implementation {impl!r}")
    case["export_s"] = _export_times(artefacts["folder"])
    out = np.asarray(call(), np.float32)
    case["max_abs_err"] = float(np.max(np.abs(out - expected)))
    case["ref_max_abs"] = float(np.max(np.abs(expected)))
    case["check_ok"] = case["max_abs_err"] <= TOLERANCE * max(
        1.0, case["ref_max_abs"]
    )
    case["checked_against"] = (
        "Keras model (TensorFlow)" if source == "keras" else "HF PyTorch eager"
    )
    return call


# --------------------------------------------------------------- driver --


def run(
    timeout: float = 1800.0,
    progress: bool = True,
    allocator: str = "cached",
    **plan_args,
) -> dict:
    """Runs the exported rows, one worker process per (model, batch).

    Args:
        timeout: seconds allowed to one worker process.
        progress: print one line per finished case to stderr.
        allocator: a key of `bench.ALLOCATORS`.
        **plan_args: arguments of `plan`.

    Returns:
        The report, as `bench.run`'s: {"machine", "allocator", "skipped",
        "results", "seconds"}.

    Example:
        >>> report = run(models=["swin_t"], batches=[1])
        >>> print(markdown(report))  # doctest: +SKIP
    """
    groups = plan(**plan_args)
    # The exports, shared by the worker processes (one per model and
    # batch): each model is exported once per run.
    cache = tempfile.mkdtemp(prefix="keras-swin-exported-")
    for process in groups:
        for row in process:
            for case in row:
                case["cache"] = cache
    total = sum(len(row) for process in groups for row in process)
    start = time.perf_counter()
    done = 0

    def log(result):
        nonlocal done
        done += 1
        if progress:
            elapsed = time.perf_counter() - start
            line = bench._log_line(result)
            if "max_abs_err" in result:
                line += f", max abs err {result['max_abs_err']:.1e}"
            print(
                f"[{done}/{total} {elapsed:5.0f} s] {line}",
                file=sys.stderr,
                flush=True,
            )

    results = []
    # The load of a shared machine around the run (1-minute averages).
    loads = [round(os.getloadavg()[0], 2)]
    try:
        for process in groups:
            results.extend(bench._run_process(process, timeout, log, allocator))
            loads.append(round(os.getloadavg()[0], 2))
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    for result in results:
        result.pop("cache", None)
    return {
        "load_average": loads,
        # Thread settings the workers inherit (OMP_WAIT_POLICY: libgomp's,
        # i.e. PyTorch's, waiting threads spin or sleep).
        "env": {
            k: os.environ[k]
            for k in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
            if k in os.environ
        },
        "machine": bench.machine_info(),
        "allocator": {"name": allocator, "env": bench.ALLOCATORS[allocator]},
        "skipped": [],
        "results": results,
        "seconds": time.perf_counter() - start,
    }


# -------------------------------------------------------------- report --


def _label(r: dict) -> str:
    if r["impl"] == "hf_torch":
        return "torch + compile" if r.get("compile") else "torch eager"
    return IMPLEMENTATIONS[r["impl"]][0]


def _get(results, model, batch, impl, compiled=False):
    return bench._find(
        results, model=model, batch=batch, impl=impl, compile=compiled
    )


def _same_runtime(results, row):
    """The reference row `row` is compared with (`SAME_RUNTIME`): the
    fastest of its references in the same rounds, or None."""
    same = SAME_RUNTIME.get(row["impl"]) or ()
    if isinstance(same, str):
        same = (same,)
    found = [_get(results, row["model"], row["batch"], s) for s in same]
    found = [r for r in found if r and "error" not in r]
    return max(found, key=lambda r: r["images_per_s"], default=None)


def summary(report: dict) -> list[dict]:
    """Per (model, batch): keras-swin's best exported row and its ratios.

    Returns:
        Dicts with `model`, `batch`, `best` (implementation), `images_per_s`,
        `vs_torch` (over PyTorch eager), `vs_same_runtime` (over the
        reference's ONNX in the best row's runtime; None for TensorFlow)
        and, at a batch with targets, `targets` and `met`.

    Example:
        >>> summary({"results": []})
        []
    """
    results = [r for r in report["results"] if r.get("exported")]
    rows = []
    for model in dict.fromkeys(r["model"] for r in results):
        for batch in sorted(
            {r["batch"] for r in results if r["model"] == model}
        ):
            keras_rows = [
                r
                for r in results
                if r["model"] == model
                and r["batch"] == batch
                and _source(r["impl"]) == "keras"
                and "error" not in r
            ]
            if not keras_rows:
                continue
            best = max(keras_rows, key=lambda r: r["images_per_s"])
            eager = _get(results, model, batch, "hf_torch")
            ref_same = _same_runtime(results, best)
            row = dict(
                model=model,
                batch=batch,
                best=best["impl"],
                images_per_s=best["images_per_s"],
                vs_torch=bench._ratio(best, eager),
                vs_same_runtime=bench._ratio(best, ref_same),
            )
            if batch == max(r["batch"] for r in results) and model in TARGETS:
                row["targets"] = TARGETS[model]
                ratios = (row["vs_torch"], row["vs_same_runtime"])
                row["met"] = [
                    r is not None and r >= t
                    for r, t in zip(ratios, TARGETS[model], strict=True)
                ]
            rows.append(row)
    return rows


def markdown(report: dict) -> str:
    """The exported rows as markdown: throughput, ratios, checks, profile.

    "vs PyTorch" is a row's images/s over the Hugging Face model in eager
    PyTorch measured in the same rounds; "vs ref. ONNX" over the
    reference's own ONNX in the same runtime (`SAME_RUNTIME`, the faster
    reference where it names two); "max abs
    err" the largest difference from the source model's logits, marked
    "(!)" above `TOLERANCE` * max(1, largest logit).

    Args:
        report: the dict `run` returns (or its JSON).

    Returns:
        Markdown text.

    Example:
        >>> print(markdown(report))  # doctest: +SKIP
    """
    machine = report["machine"]
    results = [r for r in report["results"] if r.get("exported")]
    lines = [
        f"Machine: {machine['cpu']}, {machine['cpu_count']} logical CPUs"
        + (f", GPU {machine['gpu']}" if machine.get("gpu") else ", no GPU")
        + ". Versions: "
        + ", ".join(f"{k} {v}" for k, v in machine["versions"].items())
        + ".",
        "",
        "Environment of the workers: "
        + (
            ", ".join(f"{k}={v}" for k, v in report["env"].items())
            if report.get("env")
            else "no OMP_WAIT_POLICY / OMP_NUM_THREADS set (defaults)"
        )
        + ".",
        "",
        "| model | batch | implementation | runtime | images/s | ms/call "
        "| vs PyTorch | vs ref. ONNX | max abs err |",
        "|---|---:|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        title = bench.MODELS[r["model"]]["title"]
        label = (
            f"| {title} {r['size']}px | {r['batch']} | {r['impl']} "
            f"| {_label(r)} "
        )
        if "error" in r:
            lines.append(label + f"| error: {r['error'][:80]} | | | | |")
            continue
        eager = _get(results, r["model"], r["batch"], "hf_torch")
        vs_torch = None if r is eager else bench._ratio(r, eager)
        ref_same = _same_runtime(results, r)
        vs_same = bench._ratio(r, ref_same) if ref_same else None
        lines.append(
            label + f"| {bench._fmt(r['images_per_s'])} "
            f"| {bench._fmt(r['ms_per_call'], 0)} "
            f"| {bench._fmt(vs_torch)}{'x' if vs_torch else ''} "
            f"| {bench._fmt(vs_same)}{'x' if vs_same else ''} "
            f"| {r['max_abs_err']:.1e}{'' if r['check_ok'] else ' (!)'} |"
        )
    threads = {}
    for r in results:
        if r.get("threads"):
            threads.setdefault(_label(r), r["threads"])
    if threads:
        lines += ["", "Thread settings (as the runtimes report them):"]
        lines += [f"- {label}: {t}" for label, t in threads.items()]
    best = summary(report)
    if best:
        lines += [
            "",
            "keras-swin's best exported row against the PyTorch reference "
            "(eager) and against the reference's own ONNX in the same "
            "runtime:",
            "",
            "| model | batch | best keras-swin | images/s | vs PyTorch eager "
            "| vs ref. ONNX, same runtime | target | met |",
            "|---|---:|---|---:|---:|---:|---|---|",
        ]
        for row in best:
            target = met = ""
            if "targets" in row:
                target = "≥ {:.1f}x / ≥ {:.1f}x".format(*row["targets"])
                met = " / ".join("yes" if m else "no" for m in row["met"])
            lines.append(
                f"| {bench.MODELS[row['model']]['title']} | {row['batch']} "
                f"| {row['best']} | {bench._fmt(row['images_per_s'])} "
                f"| {bench._fmt(row['vs_torch'])}x "
                f"| {bench._fmt(row['vs_same_runtime'])}"
                f"{'x' if row['vs_same_runtime'] else ''} | {target} | {met} |"
            )
    lines += _profile_lines(results)
    errors = [r for r in results if "error" in r]
    if errors:
        lines += ["", "Not measured:"]
        lines += [f"- {bench._log_line(r)}" for r in errors]
    lines += ["", f"Run time: {report['seconds']:.0f} s."]
    if report.get("load_average"):
        lines[-1] += (
            " Load average (1 min) before the run and after each worker: "
            + ", ".join(f"{v:.1f}" for v in report["load_average"])
            + f" on {machine['cpu_count']} CPUs."
        )
    return "\n".join(lines) + "\n"


def _profile_lines(results) -> list[str]:
    profiled = [r for r in results if isinstance(r.get("profile"), dict)]
    if not profiled:
        return []
    lines = [
        "",
        "ONNX Runtime profile (two calls at the profiled batch): share of "
        "operator time by type (top 6), and node counts in ONNX Runtime's "
        "optimised graph; `fused`: the transformer optimiser's fusions.",
        "",
        "| model | batch | implementation | op ms/call | time by op type "
        "| optimised graph nodes | fused |",
        "|---|---:|---|---:|---|---|---|",
    ]
    for r in profiled:
        profile = r["profile"]
        shares = ", ".join(
            f"{op} {share * 100:.0f}%"
            for op, share in list(profile["op_time_share"].items())[:6]
        )
        ops = profile["optimized_graph_ops"]
        nodes = ", ".join(f"{op} {ops[op]}" for op in FUSED_OPS if op in ops)
        nodes += f"; {sum(ops.values())} in all"
        fused = ", ".join(f"{k} {v}" for k, v in r.get("fused", {}).items())
        lines.append(
            f"| {bench.MODELS[r['model']]['title']} | {r['batch']} "
            f"| {r['impl']} "
            f"| {profile['op_ms_per_call']:.0f} | {shares} | {nodes} "
            f"| {fused} |"
        )
    return lines


def run_from_args(args) -> int:
    """`python benchmarks/run.py --exported`: runs and writes the report.

    Uses `--models` (those of `MODELS` among them), batches 1 and
    `--batch`, `--size`, `--warmup`, `--min-iters`, `--min-time`,
    `--timeout`, `--allocator`, `--no-torch-compile` and `--output`; the
    report is NAME.json and NAME.md, NAME `--report` or "exported" when
    that is left at "latest".

    Args:
        args: the namespace of `bench.build_parser()`.

    Returns:
        0.

    Example:
        >>> args = bench.build_parser().parse_args(["--exported"])
        >>> run_from_args(args)  # doctest: +SKIP
        0
    """
    from keras_swin.utils import check_writable

    check_writable(args.output, folder=True)
    models = [m for m in args.models if m in MODELS] or list(MODELS)
    report = run(
        timeout=args.timeout,
        allocator=args.allocator,
        models=models,
        batches=sorted({1, args.batch}),
        size=args.size or bench.DEFAULT_SIZE,
        torch_compile=args.torch_compile,
        warmup=args.warmup,
        min_iters=args.min_iters,
        min_time=args.min_time,
    )
    name = args.report if args.report != "latest" else "exported"
    out = Path(args.output)
    table = markdown(report)
    bench._write_atomic(
        out / f"{name}.json", json.dumps(report, indent=1) + "\n"
    )
    bench._write_atomic(out / f"{name}.md", table)
    print(table)
    print(f"wrote {out / f'{name}.json'} and {out / f'{name}.md'}")
    return 0
