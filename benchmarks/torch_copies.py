"""Attention copies on the PyTorch backend: before and after, side by side.

keras-swin's `Attention` used to run Keras' `ops.dot_product_attention`,
whose PyTorch implementation copies q, k and v into contiguous (B, heads,
N, head_dim) tensors before calling the fused kernel. It now hands the
kernel strided views (`Attention._torch_fused_attention`). This script
measures both in the same rounds, in one process, on the same model and
input, with the Hugging Face PyTorch reference beside them:

* images/s (median call; calls interleaved round by round, so a noisy
  spell of a shared machine slows all alike), and the ratios;
* `aten::copy_` calls and their time in one profiled forward
  (`torch.profiler`);
* that "before" and "after" give the same logits (max abs difference).

"Before" is the old code path exactly: the layer's fused-attention call
patched back to `keras.ops.dot_product_attention` for that call only.

    $ python benchmarks/torch_copies.py --output benchmarks/results
    | model | batch | before (img/s) | after (img/s) | after / before | ...

Example (from the clone's root, tiny settings):
    >>> from benchmarks import torch_copies
    >>> rows = torch_copies.measure(["vit_b16"], [1], min_time=1.0)
    >>> sorted(rows[0])[:3]
    ['after_copies', 'after_copy_ms', 'after_images_per_s']
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import bench  # noqa: E402

#: The three implementations measured in every round.
IMPLEMENTATIONS = ("before", "after", "hf_torch")


@contextlib.contextmanager
def keras_dot_product_attention():
    """Within the block, `Attention` runs Keras' `dot_product_attention`
    on PyTorch, as before the strided-view path (the "before" case)."""
    import keras

    from keras_swin.layers.attention import Attention

    def old(self, q, k, v, bias):
        return keras.ops.dot_product_attention(
            q, k, v, bias=bias, scale=self.scale
        )

    new = Attention._torch_fused_attention
    Attention._torch_fused_attention = old
    try:
        yield
    finally:
        Attention._torch_fused_attention = new


def _copies(fn) -> tuple[int, float]:
    """(`aten::copy_` calls, their milliseconds) in one call of `fn`."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    for event in prof.key_averages():
        if event.key == "aten::copy_":
            return event.count, event.self_cpu_time_total / 1000.0
    return 0, 0.0


def _runners(model: str, batch: int, size: int) -> tuple[dict, float]:
    """The three calls of one case, and before vs after's max difference."""
    import torch

    keras_model = bench._keras_model("keras_swin", model, size, "float32")
    hf = bench._hf_model(model, size).eval()
    rng = np.random.default_rng(0)
    x = rng.random((batch, size, size, 3), "float32")
    x_torch = torch.from_numpy(x)
    x_nchw = torch.from_numpy(x.transpose(0, 3, 1, 2).copy())

    def after():
        with torch.inference_mode():
            return keras_model(x_torch, training=False).cpu().numpy()

    def before():
        with keras_dot_product_attention():
            return after()

    def hf_torch():
        with torch.inference_mode():
            return hf(pixel_values=x_nchw).logits.cpu().numpy()

    difference = float(np.max(np.abs(before() - after())))
    return {"before": before, "after": after, "hf_torch": hf_torch}, difference


def measure(
    models, batches, *, size: int = 224, min_time: float = 20.0
) -> list[dict]:
    """Measures every (model, batch): images/s, copies, the difference.

    Args:
        models: keys of `benchmarks.bench.MODELS` ("swin_t", "vit_b16").
        batches: batch sizes.
        size: image side in pixels.
        min_time: seconds of timed rounds per case (at least 3 rounds).

    Returns:
        One dict per case: model, batch, for each of "before", "after"
        and "hf_torch" `{impl}_images_per_s`, `{impl}_copies`,
        `{impl}_copy_ms`, plus `max_abs_difference` (before vs after
        logits) and `rounds`.

    Example:
        >>> measure(["vit_b16"], [8], min_time=30.0)[0]["after_copies"]
        51
    """
    rows = []
    for model in models:
        for batch in batches:
            calls, difference = _runners(model, batch, size)
            row = dict(model=model, batch=batch, max_abs_difference=difference)
            for name, fn in calls.items():
                fn()  # warm-up
                row[f"{name}_copies"], row[f"{name}_copy_ms"] = _copies(fn)
            times = {name: [] for name in calls}
            begin = time.perf_counter()
            while len(times["after"]) < 3 or (
                time.perf_counter() - begin < min_time
            ):
                for name, fn in calls.items():
                    start = time.perf_counter()
                    fn()
                    times[name].append(time.perf_counter() - start)
            for name, values in times.items():
                median = float(np.median(values))
                row[f"{name}_images_per_s"] = batch / median
            row["rounds"] = len(times["after"])
            rows.append(row)
    return rows


def markdown(rows: list[dict], machine: dict, size: int = 224) -> str:
    """The rows as a markdown table, with the machine.

    Example:
        >>> print(markdown(rows, bench.machine_info()))  # doctest: +SKIP
    """
    lines = [
        "# Attention copies on the PyTorch backend: before and after",
        "",
        f"{machine['cpu']}, {machine['cpu_count']} cores, torch "
        f"{machine['versions'].get('torch')}, float32, {size} px. Images/s "
        "(median of interleaved rounds); `aten::copy_` calls and time in "
        "one profiled forward.",
        "",
        "| model | batch | before (img/s) | after (img/s) | after / before "
        "| after / HF PyTorch | copies before | copies after | copies HF "
        "| max abs diff |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        title = bench.MODELS[r["model"]]["title"]
        lines.append(
            f"| {title} | {r['batch']} | {r['before_images_per_s']:.2f} "
            f"| {r['after_images_per_s']:.2f} "
            f"| {r['after_images_per_s'] / r['before_images_per_s']:.2f}x "
            f"| {r['after_images_per_s'] / r['hf_torch_images_per_s']:.2f}x "
            f"| {r['before_copies']} ({r['before_copy_ms']:.0f} ms) "
            f"| {r['after_copies']} ({r['after_copy_ms']:.0f} ms) "
            f"| {r['hf_torch_copies']} ({r['hf_torch_copy_ms']:.0f} ms) "
            f"| {r['max_abs_difference']:.1e} |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    """`python benchmarks/torch_copies.py [--models] [--batches] ...`."""
    parser = argparse.ArgumentParser(
        prog="python benchmarks/torch_copies.py", description=__doc__
    )
    parser.add_argument("--models", default="vit_b16,swin_t")
    parser.add_argument("--batches", default="1,8")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--min-time", type=float, default=20.0)
    parser.add_argument("--output", default="benchmarks/results")
    args = parser.parse_args(argv)
    import keras

    if keras.backend.backend() != "torch":
        parser.error("runs on the PyTorch backend (KERAS_BACKEND=torch)")
    models = [m for m in args.models.split(",") if m]
    unknown = [m for m in models if m not in bench.MODELS]
    if unknown:
        parser.error(
            f"unknown models {unknown}; expected some of swin_t, vit_b16"
        )
    batches = [int(b) for b in args.batches.split(",") if b]
    start = time.perf_counter()
    rows = measure(models, batches, size=args.size, min_time=args.min_time)
    machine = bench.machine_info()
    report = dict(
        rows=rows,
        machine=machine,
        size=args.size,
        wall_seconds=round(time.perf_counter() - start, 1),
    )
    out = Path(args.output)
    bench._write_atomic(
        out / "torch_copies.json", json.dumps(report, indent=2) + "\n"
    )
    table = markdown(rows, machine, args.size)
    bench._write_atomic(out / "torch_copies.md", table)
    print(table, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
