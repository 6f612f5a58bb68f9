"""Throughput, latency and memory of keras-swin against its baselines.

A repository tool, not part of the installed package: run it from a
clone, `python benchmarks/run.py [options]` (or `make bench`; with an
editable install `keras-swin benchmark` runs the same). In one run and
on the same machine it measures:

* keras-swin's Swin-T, ViT-B/16 and SwinV2-T (256 px, window 8) on
  every Keras backend asked for
  (inference and training-step throughput at batch 8, batch-1 latency,
  peak memory), float32 and mixed bfloat16, compiled where the backend
  compiles (XLA on TensorFlow, `jax.jit`, and PyTorch eager plus
  `torch.compile` for inference);
* the baselines present: Hugging Face `transformers` Swin and ViT in
  PyTorch (eager and `torch.compile`), the speed of the official PyTorch
  code, and KerasHub's `SwinTransformerBackbone` / `ViTBackbone` on the
  same Keras backend; for SwinV2-T, Hugging Face `Swinv2` and timm's
  `swinv2_tiny_window8_256` where timm imports (KerasHub has no Swin
  V2; a baseline that cannot run is listed in the report, not faked);
* the machine's float32 matrix-multiply peak, which bounds these
  matmul-bound models;
* a size sweep (224, 448, 896 px, batch 1) of Swin-T against ViT-B/16;
* the dense row (`benchmarks/dense.py`, model `swin_t_backbone`): the
  Swin-T detection backbone's inference at 512x512 and 800x1216 and its
  training memory with and without gradient checkpointing, each case in
  its own process;
* with `--exported`, the exported rows instead (`benchmarks/exported.py`):
  keras-swin's ONNX, OpenVINO and SavedModel exports in their runtimes
  against the PyTorch reference and its own ONNX, report exported.md.

Each (Keras backend, model, precision) runs in a fresh worker process
(`python -m benchmarks.bench --worker`, with the clone on its
PYTHONPATH, so the clone's keras_swin is the one measured).
Inside it, the implementations of one mode (keras-swin, KerasHub on that
backend, the PyTorch reference, and the `torch.compile` variants on the
torch backend) are measured side by side: built and warmed up in turn
(compilation included, its time recorded), then timed in rounds that time
each once, so a noisy spell of a shared machine slows all alike and the
ratios stay fair. Each timed call directly follows an untimed call of the
same case, so none inherits another framework's threads or heap state.
Rounds go on until `min_time` seconds and at least `min_iters` rounds;
the median call gives images/s. Workers run with the same memory-reusing
allocator settings for every framework (`ALLOCATORS`, recorded in the
report). Every call ends with
its result on the host (a numpy array or a float loss), so asynchronous
devices are synchronised. Memory ("MiB") is what building a model and
running its warm-up calls added to the process: resident memory (Linux
`VmHWM`, reset before, minus the resident size before) on CPU, the
framework's allocator peak on GPU. The result is a JSON file and a
markdown table of ratios.

Example (from the clone's root):
    >>> from benchmarks import bench
    >>> report = bench.run(backends=["jax"], models=["swin_t"],
    ...                    modes=["inference"], dtypes=["float32"])
    >>> print(bench.markdown(report))
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from benchmarks import dense

#: The clone's root: the worker processes import `benchmarks.bench` and
#: `keras_swin` from here.
ROOT = Path(__file__).resolve().parents[1]

#: Model specifications: keras-swin builder arguments, their Hugging Face
#: and KerasHub equivalents, and the analytic multiply-add count.
#: Optional keys: `size`, the model's own image side (default 224);
#: `sweep`, False to leave it out of the size sweep; `timm`, the timm
#: model name of a `timm_torch` baseline; `missing`, implementation ->
#: why it has no such model (reported, not measured).
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
    # The official SwinV2-T at 256 px, window 8 (SWINV2_CONFIGS
    # "swinv2_tiny", release swinv2_tiny_patch4_window8_256). Not in the
    # size sweep: its sizes are Swin-T's and ViT's, and that comparison
    # is the point of the sweep.
    "swinv2_t": {
        "family": "swinv2",
        "title": "SwinV2-T",
        "size": 256,
        "sweep": False,
        "timm": "swinv2_tiny_window8_256",
        "missing": {
            "keras_hub": "KerasHub has no Swin V2 (its "
            "SwinTransformerBackbone is Swin V1), so swinv2_t has no "
            "KerasHub row and no vs KerasHub ratio",
        },
        "config": dict(
            embed_dim=96,
            depths=(2, 2, 6, 2),
            num_heads=(3, 6, 12, 24),
            window_size=8,
            patch_size=4,
        ),
    },
    # The dense row (benchmarks/dense.py): Swin-T as a detection backbone.
    **dense.MODELS,
}

IMPLEMENTATIONS = ("keras_swin", "keras_hub", "hf_torch", "timm_torch")
#: The PyTorch baselines (they run in eager PyTorch whatever the Keras
#: backend of their process). `timm_torch` runs only for models with a
#: `timm` name.
TORCH_IMPLEMENTATIONS = ("hf_torch", "timm_torch")
#: Image side of a model without its own `size`.
DEFAULT_SIZE = 224
BACKENDS = ("tensorflow", "jax", "torch")
MODES = ("inference", "train", "latency")
DTYPES = ("float32", "bfloat16")
SWEEP_SIZES = (224, 448, 896)
#: Untimed calls of a case right before each of its timed calls (see
#: `run_interleaved`).
PRIMER_CALLS = 1
#: Allocator settings of the worker processes (`run(allocator=...)`).
#: "cached" keeps freed memory in the process for every framework: TF's
#: BFC allocator on CPU (TF otherwise frees large tensors to the system)
#: and glibc malloc without mmap chunks or trimming (the heap torch and
#: XLA:CPU allocate from). With the system defaults, a Swin-T training
#: step on the 2-core CPU faulted in about 300,000 fresh pages (1.2 GB)
#: per call on TensorFlow, about 1 s of kernel time; "system" measures
#: those defaults.
ALLOCATORS = {
    "cached": {
        "TF_CPU_ALLOCATOR_USE_BFC": "true",
        "MALLOC_MMAP_MAX_": "0",
        "MALLOC_TRIM_THRESHOLD_": str(2**40),
    },
    "system": {},
}


def macs(model: str, size: int) -> int:
    """Multiply-adds of one forward pass of a benchmark model.

    Args:
        model: a key of `MODELS`.
        size: square image side in pixels.

    Returns:
        The count (the papers' "FLOPs"). Swin V2 counts as Swin: its
        extra work (the cosine attention's norms, the position-bias MLP
        on a (2w-1)^2 table) is a small part, and the count is the
        paper's (SwinV2-T at 256 px, window 8: 5.9G).

    Example:
        >>> round(macs("swin_t", 224) / 1e9, 1)
        4.5
    """
    from keras_swin.flops import swin_flops, vit_flops

    spec = MODELS[model]
    config = dict(spec["config"])
    if spec["family"] in ("swin", "swinv2"):
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
    if dense.is_dense(case["model"]):
        return 2.0 * dense.case_macs(case) * case["batch"] * passes
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
        if spec["family"] == "swinv2":
            from keras_swin.models import SwinTransformerV2

            return SwinTransformerV2(
                **config,
                input_shape=shape,
                drop_path_rate=0.0,
                classifier_activation=None,
            )
        if spec["family"] == "swin":
            from keras_swin.models import SwinTransformer

            return SwinTransformer(
                **config,
                input_shape=shape,
                drop_path_rate=0.0,
                classifier_activation=None,
            )
        from keras_swin.models import VisionTransformer

        # Exact GELU, the function of the PyTorch baselines (the official
        # JAX ViT's tanh GELU would be a different computation).
        return VisionTransformer(
            **config,
            input_shape=shape,
            gelu_approximate=False,
            classifier_activation=None,
        )
    if impl in spec.get("missing", {}):
        raise ValueError(f"{impl}: {spec['missing'][impl]}.")
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
    if spec["family"] == "swinv2":
        hf_config = transformers.Swinv2Config(
            image_size=size,
            patch_size=config["patch_size"],
            embed_dim=config["embed_dim"],
            depths=list(config["depths"]),
            num_heads=list(config["num_heads"]),
            window_size=config["window_size"],
            drop_path_rate=0.0,
            num_labels=1000,
        )
        return transformers.Swinv2ForImageClassification(hf_config)
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


def _timm_model(model: str, size: int):
    import timm

    return timm.create_model(
        MODELS[model]["timm"],
        pretrained=False,
        num_classes=1000,
        img_size=size,
        drop_path_rate=0.0,
    )


def _torch_runner(case: dict):
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    if case["impl"] == "timm_torch":
        model = _timm_model(case["model"], case["size"]).to(device)

        def logits_of(pixels):
            return model(pixels)

    else:
        model = _hf_model(case["model"], case["size"]).to(device)

        def logits_of(pixels):
            return model(pixel_values=pixels).logits

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
                logits = logits_of(pixels)
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
            return logits_of(pixels)

    if case["compile"]:
        forward = torch.compile(forward)

    def call():
        with torch.inference_mode():
            return forward(x).float().cpu().numpy()

    return call


def matmul_peak(
    backend: str,
    sizes=(2048, 3072),
    repeats: int = 5,
    dtype: str = "float32",
) -> dict:
    """Matrix-multiply rate of a backend on this machine, in one precision.

    Args:
        backend: "tensorflow", "jax" or "torch" (the native library, jitted
            on TensorFlow and JAX).
        sizes: square matrix sides tried; the best rate is kept.
        repeats: timed products per size.
        dtype: "float32" or "bfloat16" (both operands and the product).

    Returns:
        {"flops_per_s": best FLOP/s, "size": the side that reached it}.

    Example:
        >>> matmul_peak("torch")["flops_per_s"] > 0
        True
    """
    if dtype not in DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}; expected one of {DTYPES}.")
    best = {"flops_per_s": 0.0, "size": None}
    for n in sizes:
        a = np.random.default_rng(0).random((n, n), "float32")
        if backend == "torch":
            import torch

            device = "cuda" if torch.cuda.is_available() else "cpu"
            ta = torch.from_numpy(a).to(device, getattr(torch, dtype))

            def product(ta=ta, device=device):
                out = ta @ ta
                if device == "cuda":
                    torch.cuda.synchronize()
                return out

        elif backend == "jax":
            import jax

            ja = jax.device_put(a).astype(dtype)
            f = jax.jit(lambda m: m @ m)

            def product(ja=ja, f=f):
                return f(ja).block_until_ready()

        else:
            import tensorflow as tf

            ta = tf.cast(tf.constant(a), dtype)
            f = tf.function(lambda m: tf.matmul(m, m), jit_compile=True)

            def product(ta=ta, f=f):
                return f(ta).numpy()[0, 0]

        timing = _time_calls(product, 2, repeats, 0.5)
        rate = 2.0 * n**3 / timing["min_s"]
        if rate > best["flops_per_s"]:
            best = {"flops_per_s": rate, "size": n}
    return best


def _error_line(error: Exception) -> str:
    message = str(error).strip().splitlines()
    return f"{type(error).__name__}: " + (message[0][:300] if message else "")


def _memory_before(memory: _Memory) -> float:
    memory.reset()
    return memory.peak_mib() or 0.0


def run_interleaved(cases: list[dict]) -> list[dict]:
    """Measures cases side by side in this process, calls interleaved.

    Every case is built and warmed up in turn; then timing goes in rounds,
    each round calling every case once, so that a slow spell of a shared
    machine slows all of them alike and their ratios stay fair. Rounds go
    on until `min_iters` rounds and `min_time` seconds (of the first
    case's settings). Each timed call directly follows `PRIMER_CALLS`
    untimed calls of the same case (none when a case is measured alone,
    as every call then follows its own), so it never inherits another
    framework's state: spinning OpenMP/Eigen worker threads, or a heap
    just trimmed by another allocator (measured: a TensorFlow training
    step right after a PyTorch one ran 1.6x slower, even 3 s later).

    Args:
        cases: dicts with `impl` (one of `IMPLEMENTATIONS`),
            `backend`, `model` (a key of `MODELS`), `mode` ("inference",
            "train", "latency", "sweep"), `dtype` ("float32",
            "bfloat16"), `batch`, `size`, `compile` (bool) and timing
            options `warmup`, `min_iters`, `min_time`. Keras cases need
            the process's Keras backend to be their `backend`.

    Returns:
        One dict per case: the case plus `images_per_s`, `ms_per_call`,
        `flops_per_s`, `memory_mib` (resident memory, or device memory on
        a GPU, added by building the model and running its warm-up calls)
        and the timing details; or the case plus `error` (one line) if it
        could not run. Errors are reported, never raised.

    Example:
        >>> case = {"impl": "keras_swin", "backend": "jax",
        ...         "model": "swin_t", "mode": "latency",
        ...         "dtype": "float32", "batch": 1, "size": 224,
        ...         "compile": True, "warmup": 1, "min_iters": 3,
        ...         "min_time": 1.0}
        >>> run_interleaved([case])[0]["images_per_s"]
    """
    results = [dict(case) for case in cases]
    live = []
    for result in results:
        memory = _Memory(
            result["backend"], _gpu_kind(result["backend"]) is not None
        )
        try:
            if result.get("dense"):
                # Imports are not the model's memory.
                dense.preload(result)
            if result.get("exported"):
                from benchmarks import exported

                # The source models and their exports: not timed, not
                # the runtime's memory.
                exported.preload(result)
            before = _memory_before(memory)
            if result.get("exported"):
                call = exported.runner(result)
            elif result.get("dense"):
                call = dense.runner(result)
            elif result["impl"] in TORCH_IMPLEMENTATIONS:
                call = _torch_runner(result)
            else:
                call = _keras_runner(result)
            start = time.perf_counter()
            for _ in range(max(result["warmup"], 1)):
                call()
            result["warmup_s"] = time.perf_counter() - start
            peak = memory.peak_mib()
            # The kernel's resident counters lag a little; an increase
            # below that lag reads as a small negative, i.e. none.
            result["memory_mib"] = (
                None if peak is None else max(peak - before, 0.0)
            )
            live.append((result, call, []))
        except Exception as error:  # reported, not raised
            result["error"] = _error_line(error)
    if not live:
        return results
    settings = cases[0]
    begin = time.perf_counter()
    rounds = 0
    while live and (
        rounds < settings["min_iters"]
        or (time.perf_counter() - begin < settings["min_time"] and rounds < 200)
    ):
        for entry in list(live):
            result, call, times = entry
            try:
                # Untimed primer: the timed call follows its own kind
                # (alone in its set, every call already does).
                for _ in range(PRIMER_CALLS if len(cases) > 1 else 0):
                    call()
                t = time.perf_counter()
                call()
                times.append(time.perf_counter() - t)
            except Exception as error:
                result["error"] = _error_line(error)
                live.remove(entry)
        rounds += 1
    for result, _, times in live:
        times.sort()
        median = times[len(times) // 2]
        result.update(
            median_s=median,
            min_s=times[0],
            iterations=len(times),
            images_per_s=result["batch"] / median,
            ms_per_call=1000 * median,
            flops_per_s=case_flops(result) / median,
        )
    return results


def run_case(case: dict) -> dict:
    """Measures one case alone; see `run_interleaved` for the fields.

    Example:
        >>> run_case({"impl": "keras_swin", "backend": "jax",
        ...           "model": "swin_t", "mode": "latency",
        ...           "dtype": "float32", "batch": 1, "size": 224,
        ...           "compile": True, "warmup": 1, "min_iters": 3,
        ...           "min_time": 1.0})["images_per_s"]
    """
    return run_interleaved([case])[0]


def _worker(args) -> int:
    groups = json.loads(Path(args.worker).read_text())
    for cases in groups:
        if cases[0].get("impl") == "peak":
            peak = cases[0]
            rate = matmul_peak(peak["backend"], dtype=_dtype(peak))
            outs = [dict(peak, **rate)]
        else:
            outs = run_interleaved(cases)
        for out in outs:
            print("@@result " + json.dumps(out), flush=True)
        import gc

        gc.collect()
    return 0


# --------------------------------------------------------------- driver --


def _installed(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def import_error(module: str, timeout: float = 300.0) -> str | None:
    """Why a module does not import, tried in a fresh Python process.

    For a baseline that can be installed yet fail to import (timm needs
    torchvision, whose PyPI build fails with the CPU torch build). The
    driver does not import the frameworks itself, so the try is a
    subprocess.

    Args:
        module: the module to import.
        timeout: seconds allowed to the import.

    Returns:
        None when it imports, else the error's last line, e.g.
        "ModuleNotFoundError: No module named 'timm'".

    Example:
        >>> import_error("json") is None
        True
    """
    try:
        out = subprocess.run(
            [sys.executable, "-c", f"import {module}"],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return f"import took over {timeout:.0f} s"
    if out.returncode == 0:
        return None
    lines = out.stderr.strip().splitlines() or [f"exit {out.returncode}"]
    return lines[-1][:300]


def implemented(model: str, impl: str) -> bool:
    """Whether an implementation has a benchmark model.

    KerasHub has no Swin V2 (the spec's `missing` says why); timm runs
    only where the spec names its model.

    Args:
        model: a key of `MODELS`.
        impl: one of `IMPLEMENTATIONS`.

    Returns:
        True when the plan measures `impl` for `model`.

    Example:
        >>> implemented("swinv2_t", "keras_hub")
        False
        >>> implemented("swinv2_t", "timm_torch")
        True
    """
    spec = MODELS[model]
    if impl in spec.get("missing", {}):
        return False
    return impl != "timm_torch" or "timm" in spec


def plan(
    backends=BACKENDS,
    models=tuple(MODELS),
    modes=MODES,
    dtypes=DTYPES,
    implementations=IMPLEMENTATIONS,
    batch: int = 8,
    size: int | None = None,
    sweep_sizes=SWEEP_SIZES,
    sweep_backends=None,
    torch_compile: bool = True,
    warmup: int = 2,
    min_iters: int = 3,
    min_time: float = 2.0,
) -> list[list[dict]]:
    """The cases of a run: processes, each a list of interleaved sets.

    A process measures one Keras backend, model and precision; a set is
    the implementations measured side by side for one mode (keras-swin,
    KerasHub on the same backend, the PyTorch reference, timm where the
    model names one, and on the torch backend the `torch.compile`
    variants of keras-swin and the reference for float32 inference).
    An implementation without the model (`implemented`) is left out.

    Args:
        backends: Keras backends for keras-swin and KerasHub.
        models: keys of `MODELS`.
        modes: "inference" (batch `batch`), "train" (one optimizer step at
            batch `batch`), "latency" (inference at batch 1).
        dtypes: "float32" and/or "bfloat16" (mixed precision).
        implementations: any of `IMPLEMENTATIONS`; ones not installed are
            left out (and listed in the report).
        batch: batch of the throughput modes.
        size: image side of the main table; None: each model's own
            (`DEFAULT_SIZE`, SwinV2-T 256).
        sweep_sizes: image sides of the batch-1 size sweep (float32,
            keras-swin and the PyTorch reference, models whose spec does
            not say `sweep: False`); empty for none.
        sweep_backends: Keras backends of the sweep; default `backends`.
        torch_compile: also measure `torch.compile` (PyTorch reference and
            keras-swin on the torch backend) for float32 inference.
        warmup: untimed calls before timing.
        min_iters: fewest timed calls.
        min_time: seconds of timed calls to reach, at least.

    Returns:
        A list of processes, each a list of sets, each a list of cases.

    Example:
        >>> groups = plan(backends=["jax"], models=["swin_t"],
        ...               modes=["inference"], dtypes=["float32"],
        ...               implementations=["keras_swin"], sweep_sizes=())
        >>> [[[c["impl"] for c in row] for row in p] for p in groups]
        [[['peak']], [['keras_swin']]]
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
    dense_models = [m for m in models if dense.is_dense(m)]
    models = [m for m in models if not dense.is_dense(m)]
    processes = []
    peak_backends = list(backends)
    if "hf_torch" in implementations and "torch" not in peak_backends:
        peak_backends.append("torch")
    processes.extend(
        [[dict(impl="peak", backend=b, model=None, dtype=d)]]
        for d in dtypes
        for b in peak_backends
    )

    def case(impl, process, model, mode, dtype, size, compiled, **extra):
        return dict(
            impl=impl,
            backend="torch" if impl in TORCH_IMPLEMENTATIONS else process,
            process=process,
            model=model,
            mode=mode,
            dtype=dtype,
            batch=batch if mode in ("inference", "train") else 1,
            size=size,
            compile=compiled,
            **dict(timing, **extra),
        )

    order = [m for m in ("latency", "inference", "train") if m in modes]
    for backend in backends:
        keras_compiled = backend != "torch"
        for model in models:
            model_size = size or MODELS[model].get("size", DEFAULT_SIZE)
            impls = [i for i in implementations if implemented(model, i)]
            for dtype in dtypes:
                sets = []
                for mode in order:
                    row = [
                        case(
                            impl,
                            backend,
                            model,
                            mode,
                            dtype,
                            model_size,
                            keras_compiled
                            and impl not in TORCH_IMPLEMENTATIONS,
                        )
                        for impl in impls
                    ]
                    if (
                        torch_compile
                        and backend == "torch"
                        and dtype == "float32"
                        and mode != "train"
                    ):
                        row += [
                            case(
                                impl,
                                backend,
                                model,
                                mode,
                                dtype,
                                model_size,
                                True,
                            )
                            for impl in ("keras_swin", "hf_torch")
                            if impl in impls
                        ]
                    sets.append(row)
                if sets:
                    processes.append(sets)
    sweep = dict(warmup=1, min_iters=2, min_time=0.0)
    for backend in sweep_backends or backends:
        for model in models:
            if not MODELS[model].get("sweep", True):
                continue
            sets = [
                [
                    case(
                        impl,
                        backend,
                        model,
                        "sweep",
                        "float32",
                        s,
                        impl == "keras_swin" and backend != "torch",
                        **sweep,
                    )
                    for impl in ("keras_swin", "hf_torch")
                    if impl in implementations
                ]
                for s in sweep_sizes
            ]
            sets = [row for row in sets if row]
            if sets:
                processes.append(sets)
    if dense_models:
        processes += dense.plan(
            backends, implementations, modes, timing, models=dense_models
        )
    return processes


def machine_info() -> dict:
    """The machine a run measures: CPU, cores, accelerator, versions.

    Returns:
        A JSON-serialisable dict.

    Example:
        >>> machine_info()["cpu_count"] >= 1
        True
    """
    from keras_swin.utils import cpu_name

    cpu = cpu_name()
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


def _run_process(
    sets: list[list[dict]], timeout: float, log, allocator: str = "cached"
) -> list[dict]:
    """Runs one worker process; results stream to `log` as they come."""
    cases = [case for row in sets for case in row]
    backend = cases[0].get("process", cases[0]["backend"])
    with tempfile.NamedTemporaryFile(
        "w", suffix=".json", delete=False
    ) as handle:
        json.dump(sets, handle)
        path = handle.name
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
    env.update(ALLOCATORS[allocator])
    # The worker imports this module, and keras_swin, from the clone.
    env["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT)] + [p for p in [os.environ.get("PYTHONPATH")] if p]
    )
    results = []
    errors = tempfile.TemporaryFile("w+")
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.bench", "--worker", path],
        stdout=subprocess.PIPE,
        stderr=errors,
        text=True,
        env=env,
    )
    timer = threading.Timer(timeout, proc.kill)
    timer.start()
    try:
        for line in proc.stdout:
            if line.startswith("@@result "):
                results.append(json.loads(line[len("@@result ") :]))
                log(results[-1])
        status = proc.wait()
    finally:
        timer.cancel()
        os.unlink(path)
    if len(results) < len(cases):
        errors.seek(0)
        tail = (errors.read().strip().splitlines() or ["no output"])[-1]
        why = (
            f"killed after the {timeout:.0f} s limit"
            if status < 0
            else f"worker exit {status}: {tail}"
        )
        for case in cases[len(results) :]:
            results.append(dict(case, error=why))
            log(results[-1])
    errors.close()
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
        return f"{_dtype(result)} matmul peak {result['backend']}: " + (
            f"{rate / 1e9:.1f} GFLOP/s" if rate else result.get("error", "")
        )
    size = f"{result['size']}px"
    if result.get("dense"):
        size = f"{result['size']}x{result['width']}" + (
            " checkpointed" if result.get("checkpoint") else ""
        )
    name = (
        f"{result['impl']}/{_backend_label(result)}"
        f" {result['model']} {result['mode']} {result['dtype']}"
        f" b{result['batch']} {size}"
    )
    if "error" in result:
        return f"{name}: {result['error']}"
    return (
        f"{name}: {result['images_per_s']:.2f} img/s, "
        f"{result['ms_per_call']:.0f} ms/call, "
        f"{result['memory_mib'] or 0:.0f} MiB added"
    )


def run(
    timeout: float = 1800.0,
    progress: bool = True,
    allocator: str = "cached",
    **plan_args,
) -> dict:
    """Runs a benchmark: every case in its own worker process.

    Args:
        timeout: seconds allowed to one worker process.
        progress: print one line per finished case to stderr.
        allocator: a key of `ALLOCATORS`: "cached" (default) sets the
            same memory-reusing allocator settings for every framework in
            the workers; "system" leaves the defaults.
        **plan_args: arguments of `plan`.

    Returns:
        The report: {"machine", "allocator", "skipped", "results",
        "seconds"}; "allocator" is {"name", "env"}.

    Example:
        >>> report = run(backends=["torch"], models=["swin_t"],
        ...              modes=["latency"], dtypes=["float32"],
        ...              sweep_sizes=())
    """
    if allocator not in ALLOCATORS:
        raise ValueError(
            f"allocator={allocator!r}; expected one of {list(ALLOCATORS)}."
        )
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
    models = list(plan_args.get("models", MODELS))
    if "timm_torch" in implementations and any(
        "timm" in MODELS[m] for m in models
    ):
        why = import_error("timm")
        if why:
            implementations.remove("timm_torch")
            skipped.append(f"timm_torch: `timm` is not importable ({why})")
    for impl in implementations:
        skipped += [
            f"{impl}: {MODELS[m]['missing'][impl]}"
            for m in models
            if impl in MODELS[m].get("missing", {})
        ]
    backends = [
        b
        for b in plan_args.pop("backends", BACKENDS)
        if _installed(b) or skipped.append(f"backend {b}: not installed")
    ]
    groups = plan(
        backends=backends, implementations=implementations, **plan_args
    )
    total = sum(len(row) for process in groups for row in process)
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
    for process in groups:
        results.extend(_run_process(process, timeout, log, allocator))
    return {
        "machine": machine_info(),
        "allocator": {"name": allocator, "env": ALLOCATORS[allocator]},
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


def _dtype(result: dict) -> str:
    # Reports written before bfloat16 peaks were measured have float32
    # peak rows without a dtype.
    return result.get("dtype") or "float32"


def peak_flops(report: dict, dtype: str = "float32") -> float | None:
    """Best matmul rate of one precision measured in a report (FLOP/s).

    Args:
        report: the dict `run` returns (or its JSON).
        dtype: "float32" or "bfloat16".

    Returns:
        The best rate of any framework, or None when none was measured.

    Example:
        >>> peak_flops({"results": [{"impl": "peak", "flops_per_s": 1e11}]})
        100000000000.0
    """
    rates = [
        r["flops_per_s"]
        for r in report["results"]
        if r.get("impl") == "peak"
        and r.get("flops_per_s")
        and _dtype(r) == dtype
    ]
    return max(rates) if rates else None


def markdown(report: dict) -> str:
    """The report as markdown tables of throughput and ratios.

    Ratios are a row's images/s over a baseline's measured side by side
    in the same process: "vs PyTorch" is against Hugging Face
    `transformers` in eager PyTorch (same precision), "vs KerasHub"
    against KerasHub on the same Keras backend; "% peak" is achieved FLOP/s
    over the best matmul rate measured in the row's precision (bfloat16
    rows: the bfloat16 matmul peak, the bound of mixed precision).

    Args:
        report: the dict `run` returns (or its JSON).

    Returns:
        Markdown text.

    Example:
        >>> print(markdown(report))  # doctest: +SKIP
    """
    results = report["results"]
    machine = report["machine"]
    peaks = {d: peak_flops(report, d) for d in DTYPES}
    lines = [
        f"Machine: {machine['cpu']}, {machine['cpu_count']} logical CPUs"
        + (f", GPU {machine['gpu']}" if machine.get("gpu") else ", no GPU")
        + ". Versions: "
        + ", ".join(f"{k} {v}" for k, v in machine["versions"].items())
        + ".",
        "",
    ]
    allocator = report.get("allocator")
    if allocator:
        settings = ", ".join(f"{k}={v}" for k, v in allocator["env"].items())
        lines += [
            f"Allocator settings of every worker: {allocator['name']}"
            + (f" ({settings})." if settings else " (system defaults)."),
            "",
        ]
    for dtype, peak in peaks.items():
        if not peak:
            continue
        per = ", ".join(
            f"{r['backend']} {r['flops_per_s'] / 1e9:.0f}"
            for r in results
            if r.get("impl") == "peak"
            and r.get("flops_per_s")
            and _dtype(r) == dtype
        )
        lines += [
            f"{dtype} matmul peak: {peak / 1e9:.0f} GFLOP/s (best of {per}).",
            "",
        ]
    main = [
        r
        for r in results
        if r.get("impl") not in ("peak", None)
        and r.get("mode") != "sweep"
        and not r.get("dense")
    ]
    keys = []
    for r in main:
        key = (
            r.get("process"),
            r["model"],
            r["mode"],
            r["dtype"],
            r["batch"],
            r["size"],
        )
        if key not in keys:
            keys.append(key)
    if main:
        lines += [
            "| model | mode | precision | implementation | backend | images/s "
            "| ms/call | MiB | vs PyTorch | vs KerasHub | % peak |",
            "|---|---|---|---|---|---:|---:|---:|---:|---:|---:|",
        ]
    for process, model, mode, dtype, batch, size in keys:
        same = dict(
            process=process,
            model=model,
            mode=mode,
            dtype=dtype,
            batch=batch,
            size=size,
        )
        reference = _find(results, impl="hf_torch", compile=False, **same)
        for r in main:
            if any(r.get(k) != v for k, v in same.items()):
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
            if r is not reference:
                vs_torch = _ratio(r, reference)
            if r["impl"] == "keras_swin":
                vs_hub = _ratio(
                    r,
                    _find(
                        results,
                        impl="keras_hub",
                        compile=r["compile"],
                        **same,
                    ),
                )
            peak = peaks.get(dtype)
            share = r["flops_per_s"] / peak * 100 if peak else None
            lines.append(
                f"| {label} | {mode} | {dtype} | {r['impl']} | {backend} "
                f"| {_fmt(r['images_per_s'])} | {_fmt(r['ms_per_call'], 0)} "
                f"| {_fmt(r['memory_mib'], 0)} "
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
            row = (r["model"], r["impl"], r["backend"], r.get("process"))
            if row not in rows:
                rows.append(row)
        for model, impl, backend, process in rows:
            same = dict(
                model=model, impl=impl, backend=backend, process=process
            )
            base = _find(sweep, size=sizes[0], **same)
            cells = []
            for s in sizes:
                r = _find(sweep, size=s, **same)
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
    lines += dense.markdown(results, _backend_label, peaks.get("float32"))
    errors = [r for r in results if "error" in r]
    if report.get("skipped") or errors:
        lines += ["", "Not measured:"]
        lines += [f"- {s}" for s in report.get("skipped", [])]
        lines += [f"- {_log_line(r)}" for r in errors]
    lines += ["", f"Run time: {report['seconds']:.0f} s."]
    return "\n".join(lines) + "\n"


def _case_key(result: dict) -> tuple:
    """What makes two results "the same case" for `merge`.

    A matmul peak is one per framework and precision, whatever matrix
    size won. A case
    is also keyed by the worker process it ran in: the PyTorch reference
    runs in every Keras backend's process, and each process's ratios
    compare against its own reference.
    """
    if result.get("impl") == "peak":
        return ("peak", result.get("backend"), _dtype(result))
    names = (
        "impl",
        "backend",
        "process",
        "model",
        "mode",
        "dtype",
        "batch",
        "size",
        "width",
    )
    return tuple(result.get(k) for k in names) + (
        bool(result.get("compile")),
        bool(result.get("checkpoint")),
    )


def merge(old: dict, new: dict) -> dict:
    """One report from two runs: `new`'s cases replace the same cases.

    A replaced case keeps its place in the report; cases only `new` has
    are appended.

    A case is the same when implementation, backend, worker process,
    model, mode, precision, batch, size and compilation match. A
    framework's matmul peak keeps the higher of the two measurements.

    Args:
        old: an earlier report (same machine).
        new: the report of a later run.

    Returns:
        The merged report; `seconds` is the sum, `machine` the new one.

    Raises:
        ValueError: if the two runs used different allocator settings
            (their numbers are not comparable).

    Example:
        >>> merge({"results": [], "skipped": [], "seconds": 1.0},
        ...       {"results": [], "skipped": [], "seconds": 2.0,
        ...        "machine": {}})["seconds"]
        3.0
    """
    if old.get("allocator") != new.get("allocator"):
        raise ValueError(
            f"cannot merge a run with allocator {new.get('allocator')} into "
            f"a report measured with {old.get('allocator')}; run again "
            "without --merge."
        )
    fresh = {_case_key(r): r for r in new["results"]}
    results = []
    for r in old["results"]:
        n = fresh.pop(_case_key(r), None)
        if n is None:
            results.append(r)
        elif r.get("impl") == "peak" and (r.get("flops_per_s") or 0) > (
            n.get("flops_per_s") or 0
        ):
            # The matmul peak is a property of the machine and "the best
            # counts": a framework's peak is the higher of the two runs'.
            results.append(r)
        else:
            # Measured again: the new case takes the old one's place, so
            # the table keeps its order (backend, model, mode).
            results.append(n)
    results.extend(fresh.values())
    skipped = list(dict.fromkeys(old.get("skipped", []) + new["skipped"]))
    return {
        "machine": new["machine"],
        "allocator": new.get("allocator"),
        "skipped": skipped,
        "results": results,
        "seconds": old.get("seconds", 0.0) + new["seconds"],
    }


def _write_atomic(path: Path, text: str):
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds the benchmark's options to an argparse parser.

    Every option has a help text with its default; lists are comma
    separated and checked against `BACKENDS`, `MODELS`, `MODES`, `DTYPES`
    and `IMPLEMENTATIONS`.

    Args:
        parser: the parser to extend (`build_parser` makes one).

    Example:
        >>> parser = argparse.ArgumentParser()
        >>> add_arguments(parser)
        >>> parser.parse_args(["--dtypes", "float32"]).dtypes
        ['float32']
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

    def every(names) -> str:
        return ",".join(names)

    parser.add_argument(
        "--backends",
        type=listed(BACKENDS),
        default=list(BACKENDS),
        help=f"comma list of Keras backends (default: {every(BACKENDS)})",
    )
    parser.add_argument(
        "--models",
        type=listed(tuple(MODELS)),
        default=list(MODELS),
        help=f"comma list of models (default: {every(MODELS)})",
    )
    parser.add_argument(
        "--modes",
        type=listed(MODES),
        default=list(MODES),
        help="comma list: inference (throughput), train (one optimizer "
        f"step), latency (batch 1) (default: {every(MODES)})",
    )
    parser.add_argument(
        "--dtypes",
        type=listed(DTYPES),
        default=list(DTYPES),
        help=f"comma list of precisions (default: {every(DTYPES)})",
    )
    parser.add_argument(
        "--implementations",
        type=listed(IMPLEMENTATIONS),
        default=list(IMPLEMENTATIONS),
        help="comma list: keras_swin, keras_hub (KerasHub), hf_torch "
        "(Hugging Face transformers on PyTorch), timm_torch (timm on "
        "PyTorch, swinv2_t only); the ones not installed or not "
        "importable are skipped and listed in the report "
        f"(default: {every(IMPLEMENTATIONS)})",
    )
    parser.add_argument(
        "--batch",
        type=int,
        default=8,
        help="images per call of the throughput and training cases "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--size",
        type=int,
        default=None,
        help="input side in pixels (default: each model's own, "
        f"{DEFAULT_SIZE}; swinv2_t 256)",
    )
    parser.add_argument(
        "--sweep-sizes",
        type=sizes,
        default=list(SWEEP_SIZES),
        help="comma list of input sides for the batch-1 size sweep of "
        "swin_t and vit_b16; empty string for no sweep "
        f"(default: {every(str(v) for v in SWEEP_SIZES)})",
    )
    parser.add_argument(
        "--sweep-backends",
        type=listed(BACKENDS),
        default=None,
        help="Keras backends of the size sweep (default: --backends)",
    )
    parser.add_argument(
        "--merge",
        action="store_true",
        help="add to the report already in --output, replacing the cases "
        "measured again (default: off, a new report)",
    )
    parser.add_argument(
        "--no-torch-compile",
        dest="torch_compile",
        action="store_false",
        help="skip the torch.compile cases (default: float32 inference is "
        "also measured with torch.compile)",
    )
    parser.add_argument(
        "--allocator",
        choices=list(ALLOCATORS),
        default="cached",
        help="cached (default): every framework keeps freed memory (TF's "
        "BFC allocator on CPU, glibc without mmap/trim); system: defaults",
    )
    parser.add_argument(
        "--min-time",
        type=float,
        default=2.0,
        help="seconds each case is timed for, at least (default: %(default)s)",
    )
    parser.add_argument(
        "--min-iters",
        type=int,
        default=3,
        help="timed calls per case, at least (default: %(default)s)",
    )
    parser.add_argument(
        "--warmup",
        type=int,
        default=2,
        help="untimed calls before timing (default: %(default)s)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=1800.0,
        help="seconds allowed to one worker process (default: %(default)s)",
    )
    parser.add_argument(
        "--exported",
        action="store_true",
        help="measure the exported rows instead (benchmarks/exported.py: "
        "keras-swin's ONNX, OpenVINO and SavedModel against the PyTorch "
        "reference and its own ONNX, batch 1 and --batch; report "
        "exported.json/md) (default: off)",
    )
    parser.add_argument(
        "--report",
        default="latest",
        help="name of the report's files in --output: NAME.json and NAME.md "
        "(default: %(default)s; the dense row alone: --models "
        "swin_t_backbone --report dense)",
    )
    parser.add_argument(
        "--output",
        default=str(ROOT / "benchmarks" / "results"),
        help="folder of latest.json and latest.md (default: the clone's "
        "benchmarks/results, wherever the command runs)",
    )


def run_from_args(args) -> int:
    """Runs the benchmark from parsed arguments (see `add_arguments`).

    The results folder is checked first, so that a bad `--output` fails
    before the run, which takes most of an hour.

    Args:
        args: the namespace of a parser set up by `add_arguments`.

    Returns:
        0; latest.json and latest.md are written under `args.output`.

    Raises:
        NotADirectoryError: `--output` (or a folder above it) is a file.
        PermissionError: `--output` cannot be written.

    Example:
        >>> parser = argparse.ArgumentParser(); add_arguments(parser)
        >>> run_from_args(parser.parse_args(["--models", "swin_t"]))
        0
    """
    from keras_swin.utils import check_writable

    if getattr(args, "exported", False):
        from benchmarks import exported

        return exported.run_from_args(args)
    check_writable(args.output, folder=True)
    report = run(
        timeout=args.timeout,
        allocator=args.allocator,
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
    name = getattr(args, "report", "latest")
    if args.merge and (out / f"{name}.json").exists():
        report = merge(json.loads((out / f"{name}.json").read_text()), report)
    table = markdown(report)
    _write_atomic(out / f"{name}.json", json.dumps(report, indent=1) + "\n")
    _write_atomic(out / f"{name}.md", table)
    print(table)
    print(f"wrote {out / f'{name}.json'} and {out / f'{name}.md'}")
    return 0


def build_parser(prog: str = "python benchmarks/run.py"):
    """The benchmark's argument parser (`add_arguments`, and the worker's).

    Args:
        prog: the command name shown in usage and errors.

    Returns:
        An `argparse.ArgumentParser`.

    Example:
        >>> build_parser().parse_args(["--models", "swin_t"]).models
        ['swin_t']
    """
    parser = argparse.ArgumentParser(
        prog=prog, description=__doc__.split("\n")[0]
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    add_arguments(parser)
    return parser


def main(argv=None, prog: str = "python benchmarks/run.py") -> int:
    """The benchmark's command: the driver, or (`--worker`) a worker.

    `python benchmarks/run.py`, `python -m benchmarks.bench` and, from an
    editable install, `keras-swin benchmark` all end here.

    Args:
        argv: arguments without the program name; default `sys.argv[1:]`.
        prog: the command name shown in usage and errors.

    Returns:
        The exit status (bad arguments exit 2 through argparse).

    Example:
        >>> main(["--models", "swin_t", "--modes", "latency"])
        0
    """
    args = build_parser(prog).parse_args(argv)
    if args.worker:
        return _worker(args)
    return run_from_args(args)


if __name__ == "__main__":
    sys.exit(main(prog="python -m benchmarks.bench"))
