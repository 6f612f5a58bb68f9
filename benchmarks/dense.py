"""The dense row of the benchmark: Swin-T as a detection backbone.

`python benchmarks/run.py --models swin_t_backbone --report dense`
measures keras-swin's `SwinBackbone` (Swin-T: embed 96, depths 2-2-6-2,
heads 3-6-12-24, window 7, all four pyramid outputs P2-P5, the window
semantics of the official detection code) against Hugging Face
`transformers.SwinBackbone` in PyTorch (same configuration,
`out_features` stage1-stage4, which partitions like the detection code)
and KerasHub's `SwinTransformerBackbone` where it runs:

* inference at 512x512 and 800x1216, batch 1, float32: images/s and the
  peak memory building and warming up the backbone adds;
* a training step at 512x512, batch 1 (backbone plus a trivial head:
  each level average-pooled, concatenated, one Dense layer, softmax
  cross-entropy, plain SGD so no optimizer state), with and without
  gradient checkpointing (`SwinBackbone(gradient_checkpointing=True)`;
  Hugging Face: `activation_checkpointing_enable()`).

Every dense case runs alone in its own worker process, so that a peak is
never shared with, or lowered by memory freed by, another case (the
with/without checkpointing pair above all). The frameworks a case
imports are imported before its baseline memory is read, so "MiB" is the
model, its compilation and its calls, never an import. The price: the
implementations are not timed in interleaved rounds as in the main
table, so on a shared machine their ratios carry its drift.

KerasHub's Swin returns only its last stage, flattened to tokens, at a
fixed input size, and has no `pyramid_outputs` nor checkpointing: it is
measured for inference as that (the table says so) and not for the
pyramid or training rows.

Example (from the clone's root):
    >>> from benchmarks import dense
    >>> groups = dense.plan(backends=["jax"],
    ...                     implementations=["keras_swin"],
    ...                     modes=["inference"], timing={})
    >>> [(g[0][0]["size"], g[0][0]["width"]) for g in groups]
    [(512, 512), (800, 1216)]
"""

from __future__ import annotations

import numpy as np

#: The dense models: keras-swin `SwinBackbone` arguments.
MODELS = {
    "swin_t_backbone": {
        "family": "swin_dense",
        "title": "Swin-T backbone",
        "config": dict(
            embed_dim=96,
            depths=(2, 2, 6, 2),
            num_heads=(3, 6, 12, 24),
            window_size=7,
            patch_size=4,
            out_indices=(0, 1, 2, 3),
        ),
    },
}

#: (height, width) of the inference cases: a 512 px segmentation crop and
#: the 800x1216 of COCO detection (short side 800, padded to 32).
INFERENCE_SIZES = ((512, 512), (800, 1216))
#: (height, width) of the training-memory cases.
TRAIN_SIZE = (512, 512)
#: Classes of the trivial training head.
HEAD_CLASSES = 10
#: Why KerasHub runs no dense training case (stated in the table).
KERAS_HUB_TRAIN_NOTE = (
    "KerasHub's SwinTransformerBackbone has no gradient checkpointing "
    "and no pyramid, so it has no training-memory row"
)
#: What KerasHub's inference row measures (stated in the table).
KERAS_HUB_NOTE = (
    "keras_hub: SwinTransformerBackbone has no pyramid_outputs; it runs at "
    "a fixed image_shape and returns only the last stage's normalised "
    "tokens (B, H/32 * W/32, C), so its row is that computation, "
    "without the P2-P4 norms, not a pyramid"
)


def is_dense(model: str | None) -> bool:
    """Whether `model` names a dense benchmark model (a key of `MODELS`).

    Example:
        >>> is_dense("swin_t_backbone"), is_dense("swin_t")
        (True, False)
    """
    return model in MODELS


def dense_macs(
    height: int,
    width: int,
    embed_dim: int = 96,
    depths=(2, 2, 6, 2),
    window_size: int = 7,
    patch_size: int = 4,
    mlp_ratio: float = 4.0,
    out_indices=(0, 1, 2, 3),
    in_channels: int = 3,
    **unused,
) -> int:
    """Multiply-adds of one dense Swin backbone pass on an H x W image.

    Counted as `keras_swin.flops.swin_flops` counts (LayerNorms as one
    multiply-add per element), with the dense code's windows: the window
    is never clamped, and a map is padded up to a multiple of it, so
    attention and its projections run on the padded grid while the MLP
    and the norms run on the map itself. No final norm or head; one norm
    per output stage.

    Args:
        height: image height in pixels.
        width: image width in pixels.
        embed_dim: channels of stage 0.
        depths: blocks per stage.
        window_size: window side.
        patch_size: patch side.
        mlp_ratio: MLP width ratio.
        out_indices: stages with an output norm.
        in_channels: image channels.
        **unused: other `MODELS` config keys (`num_heads`).

    Returns:
        The count as an int.

    Example:
        >>> round(dense_macs(224, 224) / 1e9, 2)
        4.49
    """
    del unused
    h, w = -(-height // patch_size), -(-width // patch_size)
    flops = h * w * embed_dim * in_channels * patch_size**2
    flops += h * w * embed_dim  # patch norm
    dim = embed_dim
    tokens = window_size * window_size
    for i, depth in enumerate(depths):
        windows = (-(-h // window_size)) * (-(-w // window_size))
        for _ in range(depth):
            flops += h * w * dim  # norm1
            attention = tokens * dim * 3 * dim  # qkv
            attention += 2 * tokens * tokens * dim  # q k^T and attn v
            attention += tokens * dim * dim  # proj
            flops += windows * attention
            flops += 2 * h * w * dim * int(dim * mlp_ratio)  # mlp
            flops += h * w * dim  # norm2
        if i in out_indices:
            flops += h * w * dim  # norm{i}
        if i < len(depths) - 1:
            flops += h * w * dim  # merge norm (official count)
            h, w = (h + 1) // 2, (w + 1) // 2
            flops += h * w * 4 * dim * 2 * dim  # reduction
            dim *= 2
    return int(flops)


def case_macs(case: dict) -> int:
    """Multiply-adds of one forward pass of a dense case (`dense_macs`).

    Example:
        >>> case_macs({"model": "swin_t_backbone", "size": 224,
        ...            "width": 224}) == dense_macs(224, 224)
        True
    """
    config = MODELS[case["model"]]["config"]
    return dense_macs(case["size"], case["width"], **config)


def plan(
    backends,
    implementations,
    modes,
    timing: dict,
    models=tuple(MODELS),
) -> list[list[list[dict]]]:
    """The dense cases: one worker process per case.

    Args:
        backends: Keras backends of keras-swin and KerasHub.
        implementations: any of "keras_swin", "keras_hub", "hf_torch".
        modes: "inference" gives the inference cases (every size in
            `INFERENCE_SIZES`), "train" the training-memory cases at
            `TRAIN_SIZE` (keras-swin and Hugging Face, each with and
            without checkpointing); "latency" adds nothing (the dense
            inference cases are batch 1 already).
        timing: `warmup`, `min_iters`, `min_time` of every case.
        models: keys of `MODELS`.

    Returns:
        Processes in `bench.plan`'s form (a process is a list of sets, a
        set a list of cases); here every process holds one set of one
        case. Cases have `size` (height) and `width`, `batch` 1,
        `dtype` "float32", `checkpoint` (bool) and `dense` True.
        Inference cases go size by size, each size's implementations
        next to each other in time; the Hugging Face reference runs once
        per size (in a torch process).

    Example:
        >>> groups = plan(["jax"], ["keras_swin", "hf_torch"], ["train"],
        ...               {"warmup": 1, "min_iters": 1, "min_time": 0})
        >>> [(g[0][0]["impl"], g[0][0]["checkpoint"]) for g in groups]
        ... # doctest: +NORMALIZE_WHITESPACE
        [('keras_swin', False), ('keras_swin', True),
         ('hf_torch', False), ('hf_torch', True)]
    """

    def case(impl, backend, model, mode, size, checkpoint):
        return dict(
            impl=impl,
            backend="torch" if impl == "hf_torch" else backend,
            process=backend,
            model=model,
            mode=mode,
            dtype="float32",
            batch=1,
            size=size[0],
            width=size[1],
            compile=impl != "hf_torch" and backend != "torch",
            checkpoint=checkpoint,
            dense=True,
            **timing,
        )

    cases = []
    for model in models:
        if "inference" in modes:
            for size in INFERENCE_SIZES:
                for backend in backends:
                    cases += [
                        case(impl, backend, model, "inference", size, False)
                        for impl in ("keras_swin", "keras_hub")
                        if impl in implementations
                    ]
                if "hf_torch" in implementations:
                    cases.append(
                        case(
                            "hf_torch", "torch", model, "inference", size, False
                        )
                    )
        if "train" in modes:
            for backend in backends:
                if "keras_swin" in implementations:
                    cases += [
                        case(
                            "keras_swin", backend, model, "train", TRAIN_SIZE, c
                        )
                        for c in (False, True)
                    ]
            if "hf_torch" in implementations:
                cases += [
                    case("hf_torch", "torch", model, "train", TRAIN_SIZE, c)
                    for c in (False, True)
                ]
    return [[[c]] for c in cases]


def preload(case: dict) -> None:
    """Imports what a dense case needs, before its baseline memory is read.

    Example:
        >>> preload({"impl": "hf_torch"})  # doctest: +SKIP
    """
    if case["impl"] == "hf_torch":
        import torch  # noqa: F401
        import transformers

        transformers.SwinBackbone  # noqa: B018 (a lazy module: load it)
        return
    import keras  # noqa: F401

    if case["impl"] == "keras_hub":
        import keras_hub

        keras_hub.models.SwinTransformerBackbone  # noqa: B018
    else:
        import keras_swin.models  # noqa: F401


def _keras_backbone(case: dict):
    import keras

    keras.config.set_dtype_policy("float32")
    config = dict(MODELS[case["model"]]["config"])
    shape = (case["size"], case["width"], 3)
    if case["impl"] == "keras_swin":
        from keras_swin.models import SwinBackbone

        return SwinBackbone(
            **config,
            drop_path_rate=0.0,
            gradient_checkpointing=case["checkpoint"],
            image_shape=shape,
        )
    if case["checkpoint"] or case["mode"] == "train":
        raise ValueError(KERAS_HUB_TRAIN_NOTE)
    import keras_hub

    return keras_hub.models.SwinTransformerBackbone(
        image_shape=shape,
        embed_dim=config["embed_dim"],
        depths=list(config["depths"]),
        num_heads=list(config["num_heads"]),
        window_size=config["window_size"],
        patch_size=config["patch_size"],
        drop_path=0.0,
    )


def _keras_runner(case: dict):
    import keras

    backbone = _keras_backbone(case)
    rng = np.random.default_rng(0)
    x = rng.random((case["batch"], case["size"], case["width"], 3), "float32")
    if case["mode"] != "train":
        backbone.compile(jit_compile=case["compile"])
        return lambda: backbone.predict_on_batch(x)
    inputs = keras.Input((case["size"], case["width"], 3))
    maps = backbone(inputs)
    pooled = keras.layers.Concatenate()(
        [keras.layers.GlobalAveragePooling2D()(m) for m in maps.values()]
    )
    logits = keras.layers.Dense(HEAD_CLASSES, name="head")(pooled)
    model = keras.Model(inputs, logits)
    y = keras.utils.to_categorical(
        rng.integers(0, HEAD_CLASSES, case["batch"]), HEAD_CLASSES
    )
    model.compile(
        optimizer=keras.optimizers.SGD(1e-3),
        loss=keras.losses.CategoricalCrossentropy(from_logits=True),
        jit_compile=case["compile"],
    )
    return lambda: model.train_on_batch(x, y)


def _hf_runner(case: dict):
    import torch
    import transformers

    config = MODELS[case["model"]]["config"]
    stages = [f"stage{i + 1}" for i in config["out_indices"]]
    hf_config = transformers.SwinConfig(
        image_size=224,
        patch_size=config["patch_size"],
        embed_dim=config["embed_dim"],
        depths=list(config["depths"]),
        num_heads=list(config["num_heads"]),
        window_size=config["window_size"],
        drop_path_rate=0.0,
        out_features=stages,
    )
    model = transformers.SwinBackbone(hf_config)
    rng = np.random.default_rng(0)
    x = torch.from_numpy(
        rng.random((case["batch"], 3, case["size"], case["width"]), "float32")
    )
    if case["mode"] != "train":
        model.eval()

        def call():
            with torch.inference_mode():
                return [f.numpy() for f in model(pixel_values=x).feature_maps]

        return call
    if case["checkpoint"]:
        enable = getattr(
            model,
            "activation_checkpointing_enable",
            model.gradient_checkpointing_enable,
        )
        enable()
    model.train()
    head = torch.nn.Linear(
        sum(config["embed_dim"] * 2**i for i in config["out_indices"]),
        HEAD_CLASSES,
    )
    params = list(model.parameters()) + list(head.parameters())
    optimizer = torch.optim.SGD(params, lr=1e-3)
    y = torch.from_numpy(rng.integers(0, HEAD_CLASSES, case["batch"]))

    def step():
        maps = model(pixel_values=x).feature_maps
        pooled = torch.cat([m.mean(dim=(2, 3)) for m in maps], dim=1)
        loss = torch.nn.functional.cross_entropy(head(pooled), y)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return float(loss.detach())

    return step


def runner(case: dict):
    """The zero-argument call a dense case times (see `bench.run_interleaved`).

    Inference returns the pyramid's maps (KerasHub: its last stage) as
    numpy; a training step returns its float loss, so every call ends on
    the host.

    Args:
        case: a dense case from `plan`.

    Returns:
        The call.

    Example:
        >>> call = runner(case)  # doctest: +SKIP
    """
    if case["impl"] == "hf_torch":
        return _hf_runner(case)
    return _keras_runner(case)


# -------------------------------------------------------------- report --


def _title(result: dict) -> str:
    return MODELS[result["model"]]["title"]


def _label(result: dict, backend_label) -> str:
    if result["impl"] == "hf_torch":
        return "torch eager"
    return backend_label(result)


def _find(results, **keys):
    for r in results:
        if "error" not in r and all(r.get(k) == v for k, v in keys.items()):
            return r
    return None


def _cell(r, key, digits):
    if r is None:
        return "–"
    if "error" in r:
        return "error"
    value = r.get(key)
    return "–" if value is None else f"{value:.{digits}f}"


def checkpoint_saving(results, impl: str, process: str) -> dict | None:
    """Training memory saved by gradient checkpointing, for one backend.

    Args:
        results: report results.
        impl: "keras_swin" or "hf_torch".
        process: the worker's Keras backend (Hugging Face: "torch").

    Returns:
        {"without_mib", "with_mib", "saved_mib", "saved_percent",
        "slowdown"} (slowdown: step time with over without), or None if
        either case is missing or failed.

    Example:
        >>> rows = [dict(impl="hf_torch", process="torch", mode="train",
        ...              dense=True, checkpoint=c, memory_mib=m,
        ...              ms_per_call=t)
        ...         for c, m, t in ((False, 1000.0, 100.0),
        ...                         (True, 600.0, 130.0))]
        >>> checkpoint_saving(rows, "hf_torch", "torch")["saved_percent"]
        40.0
    """
    same = dict(impl=impl, process=process, mode="train", dense=True)
    off = _find(results, checkpoint=False, **same)
    on = _find(results, checkpoint=True, **same)
    if off is None or on is None or not off.get("memory_mib"):
        return None
    saved = off["memory_mib"] - (on["memory_mib"] or 0.0)
    return {
        "without_mib": off["memory_mib"],
        "with_mib": on["memory_mib"],
        "saved_mib": saved,
        "saved_percent": 100.0 * saved / off["memory_mib"],
        "slowdown": on["ms_per_call"] / off["ms_per_call"],
    }


def markdown(results: list[dict], backend_label, peak=None) -> list[str]:
    """The dense section of the report: inference and training tables.

    Args:
        results: the report's results (only dense ones are read).
        backend_label: `bench._backend_label`.
        peak: the float32 matmul peak (FLOP/s), or None.

    Returns:
        Markdown lines; none when the report has no dense result.

    Example:
        >>> markdown([], str)
        []
    """
    dense = [r for r in results if r.get("dense")]
    if not dense:
        return []
    lines = []
    inference = [r for r in dense if r["mode"] == "inference"]
    if inference:
        sizes = list(dict.fromkeys((r["size"], r["width"]) for r in inference))
        lines += [
            "",
            "Dense backbone, inference, batch 1, float32: images/s and MiB "
            "(peak memory the backbone's build and warm-up calls added, "
            "each case alone in its process); vs PyTorch: over Hugging "
            "Face `SwinBackbone`; % peak: of the float32 matmul peak.",
            "",
            "| model | implementation | backend | "
            + " | ".join(
                f"{h}x{w} images/s | MiB | vs PyTorch | % peak"
                for h, w in sizes
            )
            + " |",
            "|---|---|---|" + "---:|---:|---:|---:|" * len(sizes),
        ]
        rows = list(
            dict.fromkeys(
                (r["model"], r["impl"], r["process"]) for r in inference
            )
        )
        for model, impl, process in rows:
            cells = []
            first = None
            for h, w in sizes:
                keys = dict(model=model, size=h, width=w, mode="inference")
                r = next(
                    (
                        x
                        for x in inference
                        if x["impl"] == impl
                        and x["process"] == process
                        and all(x.get(k) == v for k, v in keys.items())
                    ),
                    None,
                )
                first = first or r
                reference = _find(inference, impl="hf_torch", **keys)
                ratio = share = None
                if r is not None and "error" not in r:
                    if reference is not None and r is not reference:
                        ratio = r["images_per_s"] / reference["images_per_s"]
                    if peak:
                        share = 100.0 * r["flops_per_s"] / peak
                cells += [
                    _cell(r, "images_per_s", 2),
                    _cell(r, "memory_mib", 0),
                    "–" if ratio is None else f"{ratio:.2f}x",
                    "–" if share is None else f"{share:.0f}",
                ]
            name = impl + (" (last stage only)" if impl == "keras_hub" else "")
            lines.append(
                f"| {MODELS[model]['title']} | {name} | "
                f"{_label(first, backend_label)} | " + " | ".join(cells) + " |"
            )
        if any(r["impl"] == "keras_hub" for r in inference):
            lines += ["", f"{KERAS_HUB_NOTE}."]
    train = [r for r in dense if r["mode"] == "train"]
    if train:
        h, w = train[0]["size"], train[0]["width"]
        lines += [
            "",
            f"Dense backbone, one training step at {h}x{w}, batch 1, "
            "float32 (backbone + pooled Dense head, SGD): MiB is the peak "
            "memory the model's build and first step added, each case in "
            "its own process; saved: by gradient checkpointing.",
            "",
            "| model | implementation | backend | ms/step | MiB | "
            "ms/step checkpointed | MiB checkpointed | saved MiB | saved % "
            "| step time x |",
            "|---|---|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        rows = list(
            dict.fromkeys((r["model"], r["impl"], r["process"]) for r in train)
        )
        for model, impl, process in rows:
            same = dict(model=model, impl=impl, process=process, mode="train")
            pair = [
                next(
                    (
                        r
                        for r in train
                        if r.get("checkpoint") is c
                        and all(r.get(k) == v for k, v in same.items())
                    ),
                    None,
                )
                for c in (False, True)
            ]
            saving = checkpoint_saving(train, impl, process)
            tail = (
                ["–"] * 3
                if saving is None
                else [
                    f"{saving['saved_mib']:.0f}",
                    f"{saving['saved_percent']:.0f}",
                    f"{saving['slowdown']:.2f}",
                ]
            )
            first = pair[0] or pair[1]
            lines.append(
                f"| {MODELS[model]['title']} | {impl} | "
                f"{_label(first, backend_label)} | "
                + " | ".join(
                    [
                        _cell(pair[0], "ms_per_call", 0),
                        _cell(pair[0], "memory_mib", 0),
                        _cell(pair[1], "ms_per_call", 0),
                        _cell(pair[1], "memory_mib", 0),
                    ]
                    + tail
                )
                + " |"
            )
        if any(r.get("impl") == "keras_swin" for r in train):
            lines += ["", f"{KERAS_HUB_TRAIN_NOTE}."]
    return lines
