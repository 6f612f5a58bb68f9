"""Throughput, latency and memory of keras-swin against its baselines.

`keras-swin benchmark` (or `python benchmarks/run.py`) measures, in one run
and on the same machine:

* keras-swin's Swin-T and ViT-B/16 on every Keras backend asked for
  (inference and training-step throughput at batch 8, batch-1 latency,
  peak memory), float32 and mixed bfloat16, compiled where the backend
  compiles (XLA on TensorFlow, `jax.jit`, and PyTorch eager plus
  `torch.compile` for inference);
* the baselines present: Hugging Face `transformers` Swin and ViT in
  PyTorch (eager and `torch.compile`), the speed of the official PyTorch
  code, and KerasHub's `SwinTransformerBackbone` / `ViTBackbone` on the
  same Keras backend;
* the machine's float32 matrix-multiply peak, which bounds these
  matmul-bound models;
* a size sweep (224, 448, 896 px, batch 1) of Swin-T against ViT-B/16.

Each (implementation, backend, model, precision) runs in a fresh process,
so backends never share a process and peak memory is that case's own.
The result is a JSON file and a markdown table of ratios.

Timing: `warmup` calls (compilation included, its time recorded), then
timed calls until `min_time` seconds and at least `min_iters` calls; the
median call gives images/s. Every call ends with its result on the host
(a numpy array or a float loss), so asynchronous devices are synchronised.
Peak memory is the process's peak resident set (Linux `VmHWM`, reset before
each case) on CPU, and the framework's peak allocation on GPU.

Example:
    >>> from keras_swin import benchmark
    >>> report = benchmark.run(backends=["jax"], models=["swin_t"],
    ...                        modes=["inference"], dtypes=["float32"])
    >>> print(benchmark.markdown(report))
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

#: Model specifications: keras-swin builder arguments, their Hugging Face
#: and KerasHub equivalents, and the analytic multiply-add count.
MODELS = {
    "swin_t": {
        "family": "swin",
        "title": "Swin-T",
        "config": dict(
            embed_dim=96,
            depths=(2, 2, 6, 2),
            num_heads=(3, 6, 12, 24),
            window_size=7,
            patch_size=4,
        ),
    },
    "vit_b16": {
        "family": "vit",
        "title": "ViT-B/16",
        "config": dict(
            patch_size=16,
            hidden_size=768,
            num_layers=12,
            num_heads=12,
            mlp_dim=3072,
        ),
    },
}

IMPLEMENTATIONS = ("keras_swin", "keras_hub", "hf_torch")
BACKENDS = ("tensorflow", "jax", "torch")
MODES = ("inference", "train", "latency")
DTYPES = ("float32", "bfloat16")
SWEEP_SIZES = (224, 448, 896)


def macs(model: str, size: int) -> int:
    """Multiply-adds of one forward pass of a benchmark model.

    Args:
        model: a key of `MODELS`.
        size: square image side in pixels.

    Returns:
        The count (the papers' "FLOPs").

    Example:
        >>> round(macs("swin_t", 224) / 1e9, 1)
        4.5
    """
    from keras_swin.flops import swin_flops, vit_flops

    spec = MODELS[model]
    config = dict(spec["config"])
    if spec["family"] == "swin":
        return swin_flops(image_size=size, **config)
    config.pop("num_heads")
    return vit_flops(image_size=size, **config)


def case_flops(case: dict) -> float:
    """Floating-point operations of one call of a case.

    2 per multiply-add; a training step counts 3 forward passes (forward,
    and backward through activations and weights), the usual convention.

    Args:
        case: a case dict (`model`, `size`, `batch`, `mode`).

    Returns:
        FLOPs per call.

    Example:
        >>> case_flops({"model": "vit_b16", "size": 224, "batch": 1,
        ...             "mode": "latency"}) / 1e9
        35.1...
    """
    passes = 3 if case["mode"] == "train" else 1
    return 2.0 * macs(case["model"], case["size"]) * case["batch"] * passes


# --------------------------------------------------------------- worker --


def _peak_memory_reset():
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def _peak_rss_mib() -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _gpu_kind(backend: str) -> str | None:
    """Name of the accelerator the backend computes on, or None (CPU)."""
    if backend == "torch":
        import torch

        if torch.cuda.is_available():
            return torch.cuda.get_device_name(0)
    elif backend == "jax":
        import jax

        device = jax.devices()[0]
        if device.platform != "cpu":
            return device.device_kind
    elif backend == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        if gpus:
            details = tf.config.experimental.get_device_details(gpus[0])
            return details.get("device_name", "GPU")
    return None


class _Memory:
    """Peak memory of one case: host RSS on CPU, allocator peak on GPU."""

    def __init__(self, backend: str, gpu: bool):
        self.backend = backend
        self.gpu = gpu

    def reset(self):
        _peak_memory_reset()
        if not self.gpu:
            return
        if self.backend == "torch":
            import torch

            torch.cuda.reset_peak_memory_stats()
        elif self.backend == "tensorflow":
            import tensorflow as tf

            tf.config.experimental.reset_memory_stats("GPU:0")

    def peak_mib(self) -> float | None:
        if not self.gpu:
            return _peak_rss_mib()
        if self.backend == "torch":
            import torch

            return torch.cuda.max_memory_allocated() / 2**20
        if self.backend == "tensorflow":
            import tensorflow as tf

            return tf.config.experimental.get_memory_info("GPU:0")["peak"] / (
                2**20
            )
        import jax

        stats = jax.devices()[0].memory_stats() or {}
        peak = stats.get("peak_bytes_in_use")
        return None if peak is None else peak / 2**20


def _time_calls(fn, warmup: int, min_iters: int, min_time: float) -> dict:
    start = time.perf_counter()
    for _ in range(max(warmup, 1)):
        fn()
    warm = time.perf_counter() - start
    times = []
    begin = time.perf_counter()
    while len(times) < min_iters or (
        time.perf_counter() - begin < min_time and len(times) < 200
    ):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    times.sort()
    return {
        "median_s": times[len(times) // 2],
        "min_s": times[0],
        "iterations": len(times),
        "warmup_s": warm,
    }


def _keras_model(impl: str, model: str, size: int, dtype: str):
    import keras

    keras.config.set_dtype_policy(
        "mixed_bfloat16" if dtype == "bfloat16" else "float32"
    )
    spec = MODELS[model]
    config = dict(spec["config"])
    shape = (size, size, 3)
    if impl == "keras_swin":
        if spec["family"] == "swin":
            from keras_swin.models.swin import SwinTransformer

            return SwinTransformer(
                **config,
                input_shape=shape,
                drop_path_rate=0.0,
                classifier_activation=None,
            )
        from keras_swin.models.vit import VisionTransformer

        # Exact GELU, the function of the PyTorch baselines (the official
        # JAX ViT's tanh GELU would be a different computation).
        return VisionTransformer(
            **config,
            input_shape=shape,
            gelu_approximate=False,
            classifier_activation=None,
        )
    import keras_hub

    if spec["family"] == "swin":
        backbone = keras_hub.models.SwinTransformerBackbone(
            image_shape=shape,
            embed_dim=config["embed_dim"],
            depths=list(config["depths"]),
            num_heads=list(config["num_heads"]),
            window_size=config["window_size"],
            patch_size=config["patch_size"],
            drop_path=0.0,
        )
    else:
        backbone = keras_hub.models.ViTBackbone(
            image_shape=shape,
            patch_size=config["patch_size"],
            num_layers=config["num_layers"],
            num_heads=config["num_heads"],
            hidden_dim=config["hidden_size"],
            mlp_dim=config["mlp_dim"],
        )
    # The same 1000-class head as the other implementations: mean over the
    # tokens of a Swin map, the class token of ViT.
    inputs = keras.Input(shape)
    features = backbone(inputs)
    if spec["family"] == "swin":
        pooled = keras.ops.mean(
            features, axis=tuple(range(1, len(features.shape) - 1))
        )
    else:
        pooled = features[:, 0]
    logits = keras.layers.Dense(1000, name="head")(pooled)
    return keras.Model(inputs, logits)


def _keras_runner(case: dict):
    import keras

    model = _keras_model(
        case["impl"], case["model"], case["size"], case["dtype"]
    )
    rng = np.random.default_rng(0)
    x = rng.random((case["batch"], case["size"], case["size"], 3), "float32")
    compiled = case["compile"]
    if case["mode"] == "train":
        y = keras.utils.to_categorical(
            rng.integers(0, 1000, case["batch"]), 1000
        )
        model.compile(
            optimizer=keras.optimizers.AdamW(1e-4),
            loss=keras.losses.CategoricalCrossentropy(from_logits=True),
            jit_compile=compiled,
        )
        return lambda: model.train_on_batch(x, y)
    model.compile(jit_compile=compiled)
    return lambda: model.predict_on_batch(x)


def _hf_model(model: str, size: int):
    import transformers

    spec = MODELS[model]
    config = spec["config"]
    if spec["family"] == "swin":
        hf_config = transformers.SwinConfig(
            image_size=size,
            patch_size=config["patch_size"],
            embed_dim=config["embed_dim"],
            depths=list(config["depths"]),
            num_heads=list(config["num_heads"]),
            window_size=config["window_size"],
            drop_path_rate=0.0,
            num_labels=1000,
        )
        return transformers.SwinForImageClassification(hf_config)
    hf_config = transformers.ViTConfig(
        image_size=size,
        patch_size=config["patch_size"],
        hidden_size=config["hidden_size"],
        num_hidden_layers=config["num_layers"],
        num_attention_heads=config["num_heads"],
        intermediate_size=config["mlp_dim"],
        num_labels=1000,
    )
    return transformers.ViTForImageClassification(hf_config)


def _torch_runner(case: dict):
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = _hf_model(case["model"], case["size"]).to(device)
    rng = np.random.default_rng(0)
    x = torch.from_numpy(
        rng.random((case["batch"], 3, case["size"], case["size"]), "float32")
    ).to(device)
    autocast = torch.autocast(
        device, dtype=torch.bfloat16, enabled=case["dtype"] == "bfloat16"
    )
    if case["mode"] == "train":
        model.train()
        y = torch.from_numpy(rng.integers(0, 1000, case["batch"])).to(device)
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)

        def step(pixels, labels):
            with autocast:
                logits = model(pixel_values=pixels).logits
                loss = torch.nn.functional.cross_entropy(logits, labels)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            return loss.detach()

        if case["compile"]:
            step = torch.compile(step)
        return lambda: float(step(x, y))

    model.eval()

    def forward(pixels):
        with autocast:
            return model(pixel_values=pixels).logits

    if case["compile"]:
        forward = torch.compile(forward)

    def call():
        with torch.inference_mode():
            return forward(x).float().cpu().numpy()

    return call


def matmul_peak(backend: str, sizes=(2048, 3072), repeats: int = 5) -> dict:
    """Float32 matrix-multiply rate of a backend on this machine.

    Args:
        backend: "tensorflow", "jax" or "torch" (the native library, jitted
            on TensorFlow and JAX).
        sizes: square matrix sides tried; the best rate is kept.
        repeats: timed products per size.

    Returns:
        {"flops_per_s": best FLOP/s, "size": the side that reached it}.

    Example:
        >>> matmul_peak("torch")["flops_per_s"] > 0
        True
    """
    best = {"flops_per_s": 0.0, "size": None}
    for n in sizes:
        a = np.random.default_rng(0).random((n, n), "float32")
        if backend == "torch":
            import torch

            device = "cuda" if torch.cuda.is_available() else "cpu"
            ta = torch.from_numpy(a).to(device)

            def product(ta=ta, device=device):
                out = ta @ ta
                if device == "cuda":
                    torch.cuda.synchronize()
                return out

        elif backend == "jax":
            import jax

            ja = jax.device_put(a)
            f = jax.jit(lambda m: m @ m)

            def product(ja=ja, f=f):
                return f(ja).block_until_ready()

        else:
            import tensorflow as tf

            ta = tf.constant(a)
            f = tf.function(lambda m: tf.matmul(m, m), jit_compile=True)

            def product(ta=ta, f=f):
                return f(ta).numpy()[0, 0]

        timing = _time_calls(product, 2, repeats, 0.5)
        rate = 2.0 * n**3 / timing["min_s"]
        if rate > best["flops_per_s"]:
            best = {"flops_per_s": rate, "size": n}
    return best


def run_case(case: dict) -> dict:
    """Measures one case in this process (the worker's unit of work).

    The Keras backend must already be `case["backend"]`.

    Args:
        case: dict with `impl` ("keras_swin", "keras_hub", "hf_torch"),
            `backend`, `model` (a key of `MODELS`), `mode` ("inference",
            "train", "latency"), `dtype` ("float32", "bfloat16"), `batch`,
            `size`, `compile` (bool) and timing options `warmup`,
            `min_iters`, `min_time`.

    Returns:
        The case plus `images_per_s`, `ms_per_call`, `flops_per_s`,
        `peak_memory_mib` and the timing details; or the case plus
        `error` (one line) if it could not run.

    Example:
        >>> run_case({"impl": "keras_swin", "backend": "jax",
        ...           "model": "swin_t", "mode": "latency",
        ...           "dtype": "float32", "batch": 1, "size": 224,
        ...           "compile": True, "warmup": 1, "min_iters": 3,
        ...           "min_time": 1.0})["images_per_s"]
    """
    result = dict(case)
    memory = _Memory(case["backend"], _gpu_kind(case["backend"]) is not None)
    try:
        memory.reset()
        if case["impl"] == "hf_torch":
            call = _torch_runner(case)
        else:
            call = _keras_runner(case)
        timing = _time_calls(
            call, case["warmup"], case["min_iters"], case["min_time"]
        )
    except Exception as error:  # reported, not raised: the run goes on
        message = str(error).strip().splitlines()
        result["error"] = f"{type(error).__name__}: " + (
            message[0][:300] if message else ""
        )
        return result
    result.update(timing)
    result["images_per_s"] = case["batch"] / timing["median_s"]
    result["ms_per_call"] = 1000 * timing["median_s"]
    result["flops_per_s"] = case_flops(case) / timing["median_s"]
    result["peak_memory_mib"] = memory.peak_mib()
    return result


def _worker(args) -> int:
    cases = json.loads(Path(args.worker).read_text())
    for case in cases:
        if case.get("impl") == "peak":
            out = dict(case, **matmul_peak(case["backend"]))
        else:
            out = run_case(case)
        print("@@result " + json.dumps(out), flush=True)
    return 0


# --------------------------------------------------------------- driver --


def _installed(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def plan(
    backends=BACKENDS,
    models=tuple(MODELS),
    modes=MODES,
    dtypes=DTYPES,
    implementations=IMPLEMENTATIONS,
    batch: int = 8,
    size: int = 224,
    sweep_sizes=SWEEP_SIZES,
    sweep_backends=None,
    torch_compile: bool = True,
    warmup: int = 2,
    min_iters: int = 3,
    min_time: float = 2.0,
) -> list[list[dict]]:
    """The cases of a run, grouped by the process that measures them.

    Args:
        backends: Keras backends for keras-swin and KerasHub.
        models: keys of `MODELS`.
        modes: "inference" (batch `batch`), "train" (one optimizer step at
            batch `batch`), "latency" (inference at batch 1).
        dtypes: "float32" and/or "bfloat16" (mixed precision).
        implementations: any of `IMPLEMENTATIONS`; ones not installed are
            left out (and listed in the report).
        batch: batch of the throughput modes.
        size: image side of the main table.
        sweep_sizes: image sides of the batch-1 size sweep (float32,
            keras-swin and the PyTorch reference); empty for none.
        sweep_backends: Keras backends of the sweep; default `backends`.
        torch_compile: also measure `torch.compile` (PyTorch baseline and
            keras-swin on the torch backend) for float32 inference.
        warmup: untimed calls before timing.
        min_iters: fewest timed calls.
        min_time: seconds of timed calls to reach, at least.

    Returns:
        A list of process groups, each a list of case dicts.

    Example:
        >>> groups = plan(backends=["jax"], models=["swin_t"],
        ...               modes=["inference"], dtypes=["float32"],
        ...               implementations=["keras_swin"], sweep_sizes=())
        >>> [[c["impl"] for c in g] for g in groups]
        [['peak'], ['keras_swin']]
    """
    for name, values, allowed in (
        ("backend", backends, BACKENDS),
        ("model", models, tuple(MODELS)),
        ("mode", modes, MODES),
        ("dtype", dtypes, DTYPES),
        ("implementation", implementations, IMPLEMENTATIONS),
    ):
        bad = [v for v in values if v not in allowed]
        if bad:
            raise ValueError(
                f"unknown {name} {bad}; expected some of {list(allowed)}."
            )
    timing = dict(warmup=warmup, min_iters=min_iters, min_time=min_time)
    groups = []
    peak_backends = list(backends)
    if "hf_torch" in implementations and "torch" not in peak_backends:
        peak_backends.append("torch")
    groups.extend(
        [dict(impl="peak", backend=b, model=None)] for b in peak_backends
    )

    def modes_cases(impl, backend, model, dtype, compiled):
        out = []
        for mode in modes:
            if mode == "train" and backend == "torch" and compiled:
                continue  # torch.compile: inference only
            out.append(
                dict(
                    impl=impl,
                    backend=backend,
                    model=model,
                    mode=mode,
                    dtype=dtype,
                    batch=1 if mode == "latency" else batch,
                    size=size,
                    compile=compiled,
                    **timing,
                )
            )
        return out

    for model in models:
        for dtype in dtypes:
            for impl in implementations:
                if impl == "hf_torch":
                    variants = [("torch", False)]
                    if torch_compile and dtype == "float32":
                        variants.append(("torch", True))
                else:
                    variants = [(b, b != "torch") for b in backends]
                    if (
                        torch_compile
                        and "torch" in backends
                        and dtype == "float32"
                    ):
                        variants.append(("torch", True))
                for backend, compiled in variants:
                    groups.append(
                        modes_cases(impl, backend, model, dtype, compiled)
                    )
    for model in models:
        for impl, backs in (
            (
                "keras_swin",
                [(b, b != "torch") for b in (sweep_backends or backends)],
            ),
            ("hf_torch", [("torch", False)]),
        ):
            if impl not in implementations:
                continue
            for backend, compiled in backs:
                groups.append(
                    [
                        dict(
                            impl=impl,
                            backend=backend,
                            model=model,
                            mode="sweep",
                            dtype="float32",
                            batch=1,
                            size=s,
                            compile=compiled,
                            warmup=1,
                            min_iters=2,
                            min_time=0.0,
                        )
                        for s in sweep_sizes
                    ]
                )
    return [g for g in groups if g]


def machine_info() -> dict:
    """The machine a run measures: CPU, cores, accelerator, versions.

    Returns:
        A JSON-serialisable dict.

    Example:
        >>> machine_info()["cpu_count"] >= 1
        True
    """
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {}
    for module in (
        "keras",
        "tensorflow",
        "jax",
        "torch",
        "transformers",
        "keras_hub",
    ):
        try:
            from importlib.metadata import version

            name = {"keras_hub": "keras-hub"}.get(module, module)
            if module == "tensorflow" and not _installed("tensorflow"):
                continue
            try:
                versions[module] = version(name)
            except Exception:
                versions[module] = version(name + "-cpu")
        except Exception:
            continue
    gpu = None
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
        )
        if out.returncode == 0 and out.stdout.strip():
            gpu = out.stdout.strip().splitlines()[0]
    except (OSError, subprocess.SubprocessError):
        pass
    return {
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "gpu": gpu,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": versions,
    }


def _run_group(group: list[dict], timeout: float, log) -> list[dict]:
    backend = group[0]["backend"]
    with tempfile.NamedTemporaryFile(
        "w", suffix=".json", delete=False
    ) as handle:
        json.dump(group, handle)
        path = handle.name
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
    results = []
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "keras_swin.benchmark", "--worker", path],
            capture_output=True,
            text=True,
            env=env,
            timeout=timeout,
        )
        for line in proc.stdout.splitlines():
            if line.startswith("@@result "):
                results.append(json.loads(line[len("@@result ") :]))
        if proc.returncode and len(results) < len(group):
            tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            for case in group[len(results) :]:
                results.append(
                    dict(case, error=f"worker exit {proc.returncode}: {tail}")
                )
    except subprocess.TimeoutExpired:
        done = len(results)
        for case in group[done:]:
            results.append(dict(case, error=f"timed out after {timeout} s"))
    finally:
        os.unlink(path)
    for result in results:
        log(result)
    return results


def _backend_label(result: dict) -> str:
    if result["backend"] == "torch":
        return "torch + compile" if result.get("compile") else "torch eager"
    if result["backend"] == "tensorflow" and result.get("compile"):
        return "tensorflow (XLA)"
    return result["backend"]


def _log_line(result: dict) -> str:
    if result.get("impl") == "peak":
        rate = result.get("flops_per_s")
        return f"matmul peak {result['backend']}: " + (
            f"{rate / 1e9:.1f} GFLOP/s" if rate else result.get("error", "")
        )
    name = (
        f"{result['impl']}/{_backend_label(result)}"
        f" {result['model']} {result['mode']} {result['dtype']}"
        f" b{result['batch']} {result['size']}px"
    )
    if "error" in result:
        return f"{name}: {result['error']}"
    return (
        f"{name}: {result['images_per_s']:.2f} img/s, "
        f"{result['ms_per_call']:.0f} ms/call, "
        f"{result['peak_memory_mib'] or 0:.0f} MiB"
    )


def run(timeout: float = 1800.0, progress: bool = True, **plan_args) -> dict:
    """Runs a benchmark: every case in its own worker process.

    Args:
        timeout: seconds allowed to one worker process.
        progress: print one line per finished case to stderr.
        **plan_args: arguments of `plan`.

    Returns:
        The report: {"machine", "skipped", "results", "seconds"}.

    Example:
        >>> report = run(backends=["torch"], models=["swin_t"],
        ...              modes=["latency"], dtypes=["float32"],
        ...              sweep_sizes=())
    """
    implementations = list(plan_args.pop("implementations", IMPLEMENTATIONS))
    skipped = []
    for impl, module in (
        ("keras_hub", "keras_hub"),
        ("hf_torch", "transformers"),
    ):
        if impl in implementations and not _installed(module):
            implementations.remove(impl)
            skipped.append(f"{impl}: `{module}` is not installed")
    if "hf_torch" in implementations and not _installed("torch"):
        implementations.remove("hf_torch")
        skipped.append("hf_torch: `torch` is not installed")
    backends = [
        b
        for b in plan_args.pop("backends", BACKENDS)
        if _installed(b) or skipped.append(f"backend {b}: not installed")
    ]
    groups = plan(
        backends=backends, implementations=implementations, **plan_args
    )
    total = sum(len(g) for g in groups)
    done = 0
    start = time.perf_counter()

    def log(result):
        nonlocal done
        done += 1
        if progress:
            elapsed = time.perf_counter() - start
            print(
                f"[{done}/{total} {elapsed:5.0f} s] {_log_line(result)}",
                file=sys.stderr,
                flush=True,
            )

    results = []
    for group in groups:
        results.extend(_run_group(group, timeout, log))
    return {
        "machine": machine_info(),
        "skipped": skipped,
        "results": results,
        "seconds": time.perf_counter() - start,
    }


# -------------------------------------------------------------- report --


def _find(results, **keys):
    for r in results:
        if "error" not in r and all(r.get(k) == v for k, v in keys.items()):
            return r
    return None


def _fmt(value, digits=2):
    return "–" if value is None else f"{value:.{digits}f}"


def _ratio(a, b):
    if a is None or b is None:
        return None
    return a["images_per_s"] / b["images_per_s"]


def peak_flops(report: dict) -> float | None:
    """Best float32 matmul rate measured in a report (FLOP/s), or None.

    Example:
        >>> peak_flops({"results": [{"impl": "peak", "flops_per_s": 1e11}]})
        100000000000.0
    """
    rates = [
        r["flops_per_s"]
        for r in report["results"]
        if r.get("impl") == "peak" and r.get("flops_per_s")
    ]
    return max(rates) if rates else None


def markdown(report: dict) -> str:
    """The report as markdown tables of throughput and ratios.

    Ratios are keras-swin's images/s over the baseline's: "vs PyTorch" is
    against Hugging Face `transformers` in eager PyTorch (same precision),
    "vs KerasHub" against KerasHub on the same Keras backend; "% peak" is
    achieved FLOP/s over the best measured float32 matmul rate.

    Args:
        report: the dict `run` returns (or its JSON).

    Returns:
        Markdown text.

    Example:
        >>> print(markdown(report))  # doctest: +SKIP
    """
    results = report["results"]
    machine = report["machine"]
    peak = peak_flops(report)
    lines = [
        f"Machine: {machine['cpu']}, {machine['cpu_count']} logical CPUs"
        + (f", GPU {machine['gpu']}" if machine.get("gpu") else ", no GPU")
        + ". Versions: "
        + ", ".join(f"{k} {v}" for k, v in machine["versions"].items())
        + ".",
        "",
    ]
    if peak:
        per = ", ".join(
            f"{r['backend']} {r['flops_per_s'] / 1e9:.0f}"
            for r in results
            if r.get("impl") == "peak" and r.get("flops_per_s")
        )
        lines += [
            f"float32 matmul peak: {peak / 1e9:.0f} GFLOP/s (best of {per}).",
            "",
        ]
    main = [
        r
        for r in results
        if r.get("impl") not in ("peak", None) and r.get("mode") != "sweep"
    ]
    keys = []
    for r in main:
        key = (r["model"], r["mode"], r["dtype"], r["batch"], r["size"])
        if key not in keys:
            keys.append(key)
    lines += [
        "| model | mode | precision | implementation | backend | images/s "
        "| ms/call | peak MiB | vs PyTorch | vs KerasHub | % peak |",
        "|---|---|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for model, mode, dtype, batch, size in keys:
        same = dict(model=model, mode=mode, dtype=dtype, batch=batch, size=size)
        reference = _find(results, impl="hf_torch", compile=False, **same)
        for r in main:
            if (r["model"], r["mode"], r["dtype"], r["batch"], r["size"]) != (
                model,
                mode,
                dtype,
                batch,
                size,
            ):
                continue
            backend = _backend_label(r)
            label = f"{MODELS[model]['title']} {size}px b{batch}"
            if "error" in r:
                lines.append(
                    f"| {label} | {mode} | {dtype} | {r['impl']} | {backend} "
                    f"| error: {r['error'][:80]} | | | | | |"
                )
                continue
            vs_torch = vs_hub = None
            if r["impl"] != "hf_torch":
                vs_torch = _ratio(r, reference)
            if r["impl"] == "keras_swin":
                vs_hub = _ratio(
                    r,
                    _find(
                        results,
                        impl="keras_hub",
                        backend=r["backend"],
                        compile=r["compile"],
                        **same,
                    ),
                )
            share = r["flops_per_s"] / peak * 100 if peak else None
            lines.append(
                f"| {label} | {mode} | {dtype} | {r['impl']} | {backend} "
                f"| {_fmt(r['images_per_s'])} | {_fmt(r['ms_per_call'], 0)} "
                f"| {_fmt(r['peak_memory_mib'], 0)} "
                f"| {_fmt(vs_torch)}{'x' if vs_torch else ''} "
                f"| {_fmt(vs_hub)}{'x' if vs_hub else ''} "
                f"| {_fmt(share, 0)} |"
            )
    sweep = [r for r in results if r.get("mode") == "sweep"]
    if sweep:
        sizes = sorted({r["size"] for r in sweep})
        lines += [
            "",
            "Size sweep, batch 1, float32: ms per image (x: time relative "
            "to 224 px; FLOPs grow "
            + ", ".join(
                f"{m} {macs(m, s) / macs(m, sizes[0]):.1f}x at {s}"
                for m in sorted({r["model"] for r in sweep})
                for s in sizes[1:]
            )
            + ").",
            "",
            "| model | implementation | backend | "
            + " | ".join(f"{s} px" for s in sizes)
            + " |",
            "|---|---|---|" + "---:|" * len(sizes),
        ]
        rows = []
        for r in sweep:
            row = (r["model"], r["impl"], r["backend"])
            if row not in rows:
                rows.append(row)
        for model, impl, backend in rows:
            base = _find(
                sweep, model=model, impl=impl, backend=backend, size=sizes[0]
            )
            cells = []
            for s in sizes:
                r = _find(
                    sweep, model=model, impl=impl, backend=backend, size=s
                )
                if r is None:
                    cells.append("–")
                    continue
                cell = f"{r['ms_per_call']:.0f}"
                if base is not None and s != sizes[0]:
                    cell += f" ({r['ms_per_call'] / base['ms_per_call']:.1f}x)"
                cells.append(cell)
            lines.append(
                f"| {MODELS[model]['title']} | {impl} | {backend} | "
                + " | ".join(cells)
                + " |"
            )
    errors = [r for r in results if "error" in r]
    if report.get("skipped") or errors:
        lines += ["", "Not measured:"]
        lines += [f"- {s}" for s in report.get("skipped", [])]
        lines += [f"- {_log_line(r)}" for r in errors]
    lines += ["", f"Run time: {report['seconds']:.0f} s."]
    return "\n".join(lines) + "\n"


def _case_key(result: dict) -> tuple:
    names = ("impl", "backend", "model", "mode", "dtype", "batch", "size")
    return tuple(result.get(k) for k in names) + (bool(result.get("compile")),)


def merge(old: dict, new: dict) -> dict:
    """One report from two runs: `new`'s cases replace the same cases.

    Args:
        old: an earlier report (same machine).
        new: the report of a later run.

    Returns:
        The merged report; `seconds` is the sum, `machine` the new one.

    Example:
        >>> merge({"results": [], "skipped": [], "seconds": 1.0},
        ...       {"results": [], "skipped": [], "seconds": 2.0,
        ...        "machine": {}})["seconds"]
        3.0
    """
    fresh = {_case_key(r) for r in new["results"]}
    results = [r for r in old["results"] if _case_key(r) not in fresh]
    skipped = list(dict.fromkeys(old.get("skipped", []) + new["skipped"]))
    return {
        "machine": new["machine"],
        "skipped": skipped,
        "results": results + new["results"],
        "seconds": old.get("seconds", 0.0) + new["seconds"],
    }


def _write_atomic(path: Path, text: str):
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds the benchmark's options to an argparse parser.

    Example:
        >>> add_arguments(argparse.ArgumentParser())
    """

    def listed(allowed):
        def parse(text):
            values = [v.strip() for v in text.split(",") if v.strip()]
            bad = [v for v in values if v not in allowed]
            if bad:
                raise argparse.ArgumentTypeError(
                    f"unknown {bad}; expected a comma list of {list(allowed)}"
                )
            return values

        return parse

    def sizes(text):
        try:
            return [int(v) for v in text.split(",") if v.strip()]
        except ValueError as error:
            raise argparse.ArgumentTypeError(
                f"expected comma-separated pixel sizes, got {text!r}"
            ) from error

    parser.add_argument(
        "--backends", type=listed(BACKENDS), default=list(BACKENDS)
    )
    parser.add_argument(
        "--models", type=listed(tuple(MODELS)), default=list(MODELS)
    )
    parser.add_argument("--modes", type=listed(MODES), default=list(MODES))
    parser.add_argument("--dtypes", type=listed(DTYPES), default=list(DTYPES))
    parser.add_argument(
        "--implementations",
        type=listed(IMPLEMENTATIONS),
        default=list(IMPLEMENTATIONS),
    )
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument(
        "--sweep-sizes",
        type=sizes,
        default=list(SWEEP_SIZES),
        help="comma list; empty string for no sweep",
    )
    parser.add_argument(
        "--no-torch-compile", dest="torch_compile", action="store_false"
    )
    parser.add_argument("--min-time", type=float, default=2.0)
    parser.add_argument("--min-iters", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument(
        "--timeout",
        type=float,
        default=1800.0,
        help="seconds allowed to one worker process",
    )
    parser.add_argument(
        "--output",
        default="benchmarks/results",
        help="folder of latest.json and latest.md",
    )


def run_from_args(args) -> int:
    """Runs `keras-swin benchmark` from parsed arguments.

    Example:
        >>> parser = argparse.ArgumentParser(); add_arguments(parser)
        >>> run_from_args(parser.parse_args(["--models", "swin_t"]))
        0
    """
    report = run(
        timeout=args.timeout,
        backends=args.backends,
        models=args.models,
        modes=args.modes,
        dtypes=args.dtypes,
        implementations=args.implementations,
        batch=args.batch,
        size=args.size,
        sweep_sizes=args.sweep_sizes,
        sweep_backends=args.sweep_backends,
        torch_compile=args.torch_compile,
        warmup=args.warmup,
        min_iters=args.min_iters,
        min_time=args.min_time,
    )
    out = Path(args.output)
    if args.merge and (out / "latest.json").exists():
        report = merge(json.loads((out / "latest.json").read_text()), report)
    table = markdown(report)
    _write_atomic(out / "latest.json", json.dumps(report, indent=1) + "\n")
    _write_atomic(out / "latest.md", table)
    print(table)
    print(f"wrote {out / 'latest.json'} and {out / 'latest.md'}")
    return 0


def main(argv=None) -> int:
    """`python -m keras_swin.benchmark`: the driver, or a worker.

    Example:
        >>> main(["--models", "swin_t", "--modes", "latency"])
        0
    """
    parser = argparse.ArgumentParser(
        prog="python -m keras_swin.benchmark",
        description=__doc__.split("\n")[0],
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    add_arguments(parser)
    args = parser.parse_args(argv)
    if args.worker:
        return _worker(args)
    return run_from_args(args)


if __name__ == "__main__":
    sys.exit(main())
