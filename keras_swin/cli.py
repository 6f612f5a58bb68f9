"""The `keras-swin` command line.

    keras-swin convert SRC OUT     checkpoint -> .weights.h5 or .keras
    keras-swin info SRC            architecture read from a checkpoint
    keras-swin predict IMAGE...    top-5 classes with pretrained weights
    keras-swin parity [DIR]        official reference cases, checked
    keras-swin train [...]         train with a paper's recipe (default:
                                   a small Swin on the bundled digits)

`--backend` picks the Keras backend (default: $KERAS_BACKEND, else Keras'
own default); it must come before the sub-command. Expected failures (a
missing or unwritable path, a bad checkpoint or config, out of memory)
print one line `keras-swin COMMAND: what and how to fix it` and exit 1;
`--debug`, before the sub-command, shows the traceback instead.

Only the commands that build a model import Keras (and with it a
backend): `--help` and `info` start in a fraction of a second.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import sys
import time
import warnings
from pathlib import Path

from keras_swin.utils import (
    TENSORFLOW_BANNERS,
    SizeAction,
    atomic_path,
    check_writable,
    non_negative_float,
    non_negative_int,
    positive_int,
    quiet_import_of,
)
from weights_tools.common import FORMAT_NAMES

BACKENDS = ("tensorflow", "jax", "torch")
_SAVE_SUFFIXES = (".weights.h5", ".keras")


def _set_backend(name: str | None) -> None:
    if name is None:
        return
    if "keras" in sys.modules:
        import keras

        if keras.backend.backend() != name:
            raise SystemExit(
                f"keras-swin: Keras is already imported with the "
                f"{keras.backend.backend()} backend; --backend {name} must "
                "be chosen before Keras is imported (or set KERAS_BACKEND)."
            )
        return
    os.environ["KERAS_BACKEND"] = name


def _input_shape(args) -> tuple | None:
    if args.any_size:
        return (None, None, 3)
    if args.image_size is not None:
        height, width = args.image_size
        return (height, width, 3)
    return None


def _overrides(args) -> dict:
    overrides = {}
    if getattr(args, "window_size", None) is not None:
        overrides["window_size"] = args.window_size
    if getattr(args, "num_heads", None) is not None:
        heads = args.num_heads
        overrides["num_heads"] = heads[0] if len(heads) == 1 else tuple(heads)
    return overrides


def _builder_call(config: dict) -> str:
    family = config["family"]
    name = "SwinTransformer" if family == "swin" else "VisionTransformer"
    skip = {"family", "format"}
    items = ", ".join(f"{k}={v!r}" for k, v in config.items() if k not in skip)
    return f"keras_swin.{name}({items})"


def _cmd_convert(args) -> int:
    from weights_tools.convert import (
        HeadWarning,
        checkpoint_config,
        load_checkpoint,
    )

    out = str(args.output)
    if not out.endswith(_SAVE_SUFFIXES):
        allowed = " or ".join(_SAVE_SUFFIXES)
        print(
            f"keras-swin convert: OUT must end with {allowed}, got {out}",
            file=sys.stderr,
        )
        return 2
    # Before the conversion, which can take minutes: a bad output path
    # fails now, not after the work.
    check_writable(out)
    start = time.perf_counter()
    overrides = _overrides(args)
    config = checkpoint_config(args.source, format=args.format, **overrides)
    if out.endswith(".keras"):  # checked before the long conversion
        preprocessing = _source_preprocessing(config, args.source)
    with warnings.catch_warnings():
        # A replaced head is one of the notes printed below: say it once.
        warnings.simplefilter("ignore", HeadWarning)
        model = load_checkpoint(
            args.source,
            format=args.format,
            input_shape=_input_shape(args),
            classes=args.classes,
            classifier_activation=args.classifier_activation,
            **overrides,
        )
    for note in model.checkpoint_notes:
        print(f"note: {note}")
    with atomic_path(out) as tmp:
        if out.endswith(".keras"):
            _with_preprocessing(model, *preprocessing).save(tmp)
        else:
            model.save_weights(tmp)
    print(
        f"{args.source} ({config['format']}) -> {out}: "
        f"{model.count_params():,} parameters, "
        f"{time.perf_counter() - start:.1f} s"
    )
    if out.endswith(".weights.h5"):
        config["input_shape"] = tuple(model.input_shape[1:])
        config["classes"] = (
            args.classes if args.classes is not None else config["classes"]
        )
        print("Rebuild the architecture with:\n  " + _builder_call(config))
    return 0


def _cmd_info(args) -> int:
    from weights_tools.convert import checkpoint_config

    config = checkpoint_config(
        args.source, format=args.format, **_overrides(args)
    )
    print(json.dumps(config, indent=2, default=list))
    return 0


def _source_preprocessing(config: dict, source) -> tuple[dict, list | None]:
    """(settings, class names) a checkpoint's .keras conversion carries.

    Settings from `_family_preprocessing`; names from its config.json
    `id2label` (validated), or None.
    """
    from weights_tools.convert import source_meta

    meta = source_meta(source)
    names = _checkpoint_class_names(meta, source)
    return _family_preprocessing(config, meta), names


def _with_preprocessing(model, settings: dict, names: list | None):
    """`model` with a PreprocessingInfo layer, for a .keras output.

    The names are dropped when they do not match the head: after
    `--classes` changed it (a 1000-class head is then named from the
    ImageNet table by `predict`) or removed it.
    """
    from keras_swin.imagenet import attach_preprocessing

    if names is not None and len(names) != _head_classes(model):
        names = None
    return attach_preprocessing(model, **settings, class_names=names)


def _family_preprocessing(config: dict, meta: dict | None) -> dict:
    """mean/std/crop/interpolation for a checkpoint outside the registry."""
    from keras_swin.imagenet import (
        IMAGENET_MEAN,
        IMAGENET_STD,
        INCEPTION_MEAN,
        INCEPTION_STD,
    )

    settings = dict(crop_pct=0.875, interpolation="bicubic")
    if config["format"] == "official_vit":
        settings.update(mean=INCEPTION_MEAN, std=INCEPTION_STD)
    else:
        settings.update(mean=IMAGENET_MEAN, std=IMAGENET_STD)
    cfg = (meta or {}).get("pretrained_cfg") or {}  # timm config.json
    for key in ("mean", "std", "crop_pct", "interpolation"):
        if cfg.get(key) is not None:
            settings[key] = cfg[key]
    return settings


#: A --weights value ending so is a path, never a registered name.
_CHECKPOINT_SUFFIXES = (
    ".pth",
    ".pt",
    ".bin",
    ".safetensors",
    ".npz",
    ".h5",
    ".keras",
    ".json",
)


def _looks_like_path(value: str) -> bool:
    separators = {"/", os.sep, os.altsep} - {None}
    return any(sep in value for sep in separators) or value.lower().endswith(
        _CHECKPOINT_SUFFIXES
    )


def _checkpoint_class_names(meta: dict | None, source) -> list | None:
    """The names of a config.json `id2label`, validated, or None."""
    from keras_swin.imagenet import id2label_names

    labels = (meta or {}).get("id2label")
    if not labels:
        return None
    return id2label_names(labels, source=f"{source}: config.json id2label")


def _head_classes(model) -> int:
    """Units of the `head` layer; 0 for a model without one."""
    for layer in model.layers:
        if layer.name == "head":
            return int(layer.units)
    return 0


def _keras_file_settings(model, path) -> dict:
    """The PreprocessingInfo of a loaded .keras model, or a clear error."""
    from keras_swin.imagenet import model_preprocessing

    settings = model_preprocessing(model)
    if settings is None:
        raise ValueError(
            f"{path} carries no preprocessing settings (no "
            "PreprocessingInfo layer: saved by an older keras-swin or by "
            "hand), so predict cannot know its mean, std and crop. Save "
            "it again through keras_swin.imagenet.attach_preprocessing("
            "model, mean=..., std=..., crop_pct=..., interpolation=..., "
            "class_names=...), or re-create it with `keras-swin convert` "
            "or `keras-swin train`."
        )
    return settings


def _softmax(scores):
    import numpy as np

    shifted = np.exp(scores - scores.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def _predict_model(weights: str):
    """(model, settings, class names, whether outputs are logits)."""
    if os.path.exists(weights):
        from weights_tools.convert import (
            checkpoint_config,
            is_keras_model_file,
            load_checkpoint,
            source_meta,
        )

        if is_keras_model_file(weights):
            model = load_checkpoint(weights)
            settings = _keras_file_settings(model, weights)
            names = settings.pop("class_names")
            import keras

            head = next((x for x in model.layers if x.name == "head"), None)
            logits = head is not None and (
                keras.activations.serialize(head.activation) == "linear"
            )
            return model, settings, names, logits
        config = checkpoint_config(weights)
        meta = source_meta(weights)
        names = _checkpoint_class_names(meta, weights)
        model = load_checkpoint(weights, classifier_activation="softmax")
        return model, _family_preprocessing(config, meta), names, False
    if _looks_like_path(weights):
        raise FileNotFoundError(
            errno.ENOENT,
            "No such checkpoint file or folder (--weights looks like a "
            "path, not a registered name)",
            weights,
        )
    from keras_swin.pretrained import build_pretrained

    model = build_pretrained(weights)
    spec = model.pretrained_spec
    settings = dict(
        mean=spec.mean,
        std=spec.std,
        crop_pct=spec.crop_pct,
        interpolation=spec.interpolation,
    )
    return model, settings, None, False


def _cmd_predict(args) -> int:
    import numpy as np

    from keras_swin.imagenet import (
        LABEL_SETS,
        decode_predictions,
        load_image,
        preprocess_input,
    )

    if args.weights is None:
        raise SystemExit("keras-swin predict: --weights is required.")
    model, settings, names, logits = _predict_model(args.weights)
    size = tuple(model.inputs[0].shape[1:3])
    if None in size:
        raise ValueError(
            f"{args.weights} is built for any input size; predict needs "
            "the size to resize images to: convert the checkpoint with "
            "--image-size."
        )
    classes = model.outputs[0].shape[-1]
    if names is not None and len(names) != classes:
        raise ValueError(
            f"{args.weights} names {len(names)} classes but the model "
            f"outputs {classes}."
        )
    if names is None and classes not in LABEL_SETS.values():
        names = [f"class_{i}" for i in range(classes)]
    images = [
        load_image(
            path,
            size,
            crop_pct=settings["crop_pct"],
            interpolation=settings["interpolation"],
        )
        for path in args.images
    ]
    batch = preprocess_input(
        np.stack(images), mean=settings["mean"], std=settings["std"]
    )
    scores = np.asarray(model.predict(batch, verbose=0), dtype=np.float64)
    if logits:
        scores = _softmax(scores)
    decoded = decode_predictions(scores, top=args.top, class_names=names)
    for path, rows in zip(args.images, decoded, strict=True):
        print(path)
        for rank, (wnid, label, score) in enumerate(rows, 1):
            print(f"  {rank}. {label:30s} {score:.4f}  ({wnid})")
    return 0


def case_inputs(folder: Path):
    """The NHWC inputs of a reference case, or None if it has none.

    `inputs_nhwc.npy`, or `inputs.json`: the seed of the `torch.randn`
    draw that made the timm and Hugging Face inputs, regenerated (torch
    needed) and checked against the recorded sha256.

    Example:
        >>> case_inputs(Path("tests/golden/timm/vit_tiny_e64_d2_224")).shape
        (2, 224, 224, 3)
    """
    import numpy as np

    folder = Path(folder)
    if (folder / "inputs_nhwc.npy").exists():
        return np.load(folder / "inputs_nhwc.npy")
    if not (folder / "inputs.json").exists():
        return None
    import hashlib

    import torch

    spec = json.loads((folder / "inputs.json").read_text())
    size = spec["size"]
    x = torch.randn(
        (2, 3, size, size),
        generator=torch.Generator().manual_seed(spec["seed"]),
    ).numpy()
    if hashlib.sha256(x.tobytes()).hexdigest() != spec["sha256_nchw"]:
        raise ValueError(f"{folder}: regenerated inputs differ from the record")
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1))


def _case_checkpoint(folder: Path):
    for name in ("checkpoint.pth", "checkpoint.npz"):
        if (folder / name).exists():
            return folder / name
    if (folder / "config.json").exists() and any(
        (folder / n).exists()
        for n in ("model.safetensors", "pytorch_model.bin")
    ):
        return folder  # a timm or Hugging Face folder
    return None


def _case_files(folder: Path):
    checkpoint = _case_checkpoint(folder)
    if checkpoint is None:  # e.g. padded_250/: the parent's weights
        checkpoint = _case_checkpoint(folder.parent)
    if checkpoint is None or not (folder / "logits.npy").exists():
        return None
    pooled = next(
        (
            folder / n
            for n in ("features.npy", "pre_logits.npy")
            if (folder / n).exists()
        ),
        None,
    )
    return checkpoint, pooled


def golden_stage_layers(depth: int) -> dict[str, str]:
    """Golden `stages.npz` keys -> the Swin layers that produce them.

    The official reference data holds `patch_embed`, `stage{i}_blocks`
    (stage i before patch merging), `stage{i}` (after it; the last stage
    has none) and `final_norm`, as tokens (B, H*W, C).

    Args:
        depth: number of stages.

    Returns:
        dict golden key -> layer name.

    Example:
        >>> golden_stage_layers(2)["stage0"]
        'layers_0_downsample'
    """
    taps = {"patch_embed": "patch_embed", "final_norm": "norm"}
    for i in range(depth):
        taps[f"stage{i}_blocks"] = f"layers_{i}"
        taps[f"stage{i}"] = (
            f"layers_{i}_downsample" if i < depth - 1 else f"layers_{i}"
        )
    return taps


def _stage_outputs(model, images, stages) -> dict:
    from keras_swin.models.swin import swin_feature_model

    depth = sum(
        layer.name.startswith("layers_") and "_down" not in layer.name
        for layer in model.layers
    )
    taps = golden_stage_layers(depth)
    probe = swin_feature_model(model, sorted(set(taps.values())))
    outputs = _forward(probe, images[: len(stages["patch_embed"])])
    return {key: outputs[name] for key, name in taps.items()}


def _forward(model, images):
    """One inference pass of a model built for this one case.

    On TensorFlow an eager call: each case builds new models, and a
    `predict` per model would trace a new `tf.function` for each (and,
    from the fifth, TensorFlow warns about retracing). Elsewhere
    `predict`: a compiled pass on JAX, where an eager call compiles every
    operation on its own, and a no-grad pass on PyTorch.
    """
    import keras

    if keras.backend.backend() != "tensorflow":
        return model.predict(images, verbose=0, batch_size=len(images))
    # In the structure the model was built with (a feature model built
    # from `model.inputs` takes a list), or Keras warns.
    structured = [images] if isinstance(model.input, list) else images
    outputs = model(structured, training=False)
    if isinstance(outputs, dict):
        return {k: keras.ops.convert_to_numpy(v) for k, v in outputs.items()}
    return keras.ops.convert_to_numpy(outputs)


def run_parity(directory: str | Path, tolerance: float = 1e-5) -> list[dict]:
    """Checks every reference case found under `directory`.

    A case is a folder with `checkpoint.pth` (official Swin),
    `checkpoint.npz` (official ViT) or a timm / Hugging Face checkpoint
    folder (config.json + weights; a sub-folder without weights, such as
    `padded_250/`, uses its parent's), `inputs_nhwc.npy` or `inputs.json`
    (see `case_inputs`), `logits.npy`,
    optionally `features.npy` / `pre_logits.npy` (the pooled head input)
    and, for Swin, `stages.npz` or `stages_first_image.npz` (per-stage
    outputs, see `golden_stage_layers`).

    Args:
        directory: folder searched recursively for cases.
        tolerance: pass if max |diff| <= tolerance * max(1, max |ref|).

    Returns:
        One dict per case and output: case, output, max_abs_diff, bound,
        passed.

    Example:
        >>> rows = run_parity("tests/golden")
        >>> all(r["passed"] for r in rows)
        True
    """
    import numpy as np

    from weights_tools.convert import load_checkpoint

    rows = []

    def compare(case, output, result, reference):
        result = np.asarray(result).reshape(reference.shape)
        diff = float(np.max(np.abs(result - reference)))
        bound = tolerance * max(1.0, float(np.max(np.abs(reference))))
        rows.append(
            dict(
                case=case,
                output=output,
                max_abs_diff=diff,
                bound=bound,
                passed=diff <= bound,
            )
        )

    found = {p.parent for p in Path(directory).rglob("inputs_nhwc.npy")}
    found |= {p.parent for p in Path(directory).rglob("inputs.json")}
    for folder in sorted(found):
        files = _case_files(folder)
        if files is None:
            continue
        checkpoint, pooled = files
        case = str(folder.relative_to(directory))
        images = case_inputs(folder)
        shape = (images.shape[1], images.shape[2], images.shape[3])
        model = load_checkpoint(checkpoint, input_shape=shape)
        compare(
            case,
            "logits",
            _forward(model, images),
            np.load(folder / "logits.npy"),
        )
        stages_file = next(
            (
                folder / n
                for n in ("stages.npz", "stages_first_image.npz")
                if (folder / n).exists()
            ),
            None,
        )
        if stages_file is not None:
            stages = np.load(stages_file)
            for key, value in _stage_outputs(model, images, stages).items():
                compare(case, key, value, stages[key])
        if pooled is not None:
            with warnings.catch_warnings():
                # classes=0 drops the head on purpose; no need to warn.
                warnings.simplefilter("ignore", UserWarning)
                headless = load_checkpoint(
                    checkpoint, classes=0, input_shape=shape
                )
            compare(
                case,
                "pooled",
                _forward(headless, images),
                np.load(pooled),
            )
    return rows


def _cmd_parity(args) -> int:
    import keras

    if args.json:
        check_writable(args.json)
    start = time.perf_counter()
    rows = run_parity(args.directory, args.tolerance)
    if not rows:
        print(
            f"keras-swin parity: no reference case under {args.directory}",
            file=sys.stderr,
        )
        return 2
    backend = keras.backend.backend()
    print("| case | output | backend | max abs diff | bound | result |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['case']} | {r['output']} | {backend} | "
            f"{r['max_abs_diff']:.2e} | {r['bound']:.2e} | "
            f"{'pass' if r['passed'] else 'FAIL'} |"
        )
    print(
        f"{sum(r['passed'] for r in rows)}/{len(rows)} within tolerance, "
        f"{time.perf_counter() - start:.1f} s"
    )
    if args.json:
        with atomic_path(args.json) as tmp:
            Path(tmp).write_text(
                json.dumps(dict(backend=backend, rows=rows), indent=2)
            )
    return 0 if all(r["passed"] for r in rows) else 1


def _benchmark_module():
    """`benchmarks.bench` of the clone this package was installed from.

    The benchmark is a repository tool, outside the wheel: it is found
    in `benchmarks/` beside the package's folder, which an editable
    install (`pip install -e .`) of a clone has.

    Raises:
        RuntimeError: keras_swin is not installed from a clone.
    """
    import importlib

    import keras_swin

    root = Path(keras_swin.__file__).resolve().parents[1]
    script = root / "benchmarks" / "bench.py"
    if not script.is_file():
        raise RuntimeError(
            f"the benchmark is a repository tool, not part of the "
            f"installed package (no {script}); run it from a clone of the "
            "keras-swin repository: python benchmarks/run.py [options] "
            "(or make bench), or install the clone with pip install -e ."
        )
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    module = importlib.import_module("benchmarks.bench")
    if Path(module.__file__).resolve() != script:
        raise RuntimeError(
            f"benchmarks.bench was imported from {module.__file__}, not "
            f"{script}; run python {root / 'benchmarks' / 'run.py'} instead."
        )
    return module


def _cmd_benchmark(args) -> int:
    return _benchmark_module().main(args.arguments, prog="keras-swin benchmark")


def _transfer_arguments(parser, window: bool = True) -> None:
    if window:
        parser.add_argument(
            "--window-size",
            type=positive_int,
            metavar="M",
            help="Swin window to build for; the position-bias tables are "
            "resampled (default: the checkpoint's window)",
        )
    parser.add_argument(
        "--num-heads",
        type=positive_int,
        nargs="+",
        metavar="N",
        help="attention heads (one value, or one per stage), needed for a "
        "timm ViT without config.json (default: read from the checkpoint)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of `keras-swin` (for docs and tests).

    Example:
        >>> build_parser().parse_args(["info", "a.pth"]).command
        'info'
    """
    parser = argparse.ArgumentParser(
        prog="keras-swin",
        description="Swin Transformer and ViT for Keras 3: convert and "
        "check checkpoints, predict, train.",
    )
    parser.add_argument(
        "--backend",
        choices=BACKENDS,
        help="Keras backend (default: $KERAS_BACKEND, else Keras' default)",
    )
    parser.add_argument(
        "--debug",
        action="store_true",
        help="show the full traceback of an error instead of one line, "
        "and TensorFlow's start-up logging (default: off)",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    convert = sub.add_parser(
        "convert",
        help="convert a checkpoint to Keras",
        description="Read an official Swin .pth or ViT .npz file, a timm "
        "state dict or a Hugging Face folder, build the matching model, "
        "load every weight strictly (resampling position tables and "
        "embeddings for another size or window) and save it.",
    )
    convert.add_argument(
        "source",
        help="checkpoint file (.pth, .bin, .safetensors, .npz) or a "
        "Hugging Face / timm folder with config.json",
    )
    convert.add_argument(
        "output", type=Path, help="output file ending in .weights.h5 or .keras"
    )
    convert.add_argument(
        "--format",
        choices=FORMAT_NAMES,
        help="checkpoint layout (default: detected from the keys)",
    )
    size = convert.add_mutually_exclusive_group()
    size.add_argument(
        "--image-size",
        type=positive_int,
        nargs="+",
        action=SizeAction,
        metavar="PX",
        help="build for H [W] pixels, one or two values (default: the "
        "checkpoint's size)",
    )
    size.add_argument(
        "--any-size",
        action="store_true",
        help="Swin: build for any input size (None, None, 3) (default: off)",
    )
    convert.add_argument(
        "--classes",
        type=non_negative_int,
        help="classes of the head (0: pooled features; 1000 for a Swin "
        "22K checkpoint: the official 22K-to-1K rows; default: the "
        "checkpoint's head)",
    )
    _transfer_arguments(convert)
    convert.add_argument(
        "--classifier-activation",
        default=None,
        help="head activation (default: none, logits)",
    )
    convert.set_defaults(func=_cmd_convert)

    info = sub.add_parser(
        "info",
        help="print a checkpoint's architecture",
        description="Read a checkpoint's tensor names and shapes (and its "
        "config.json) and print the builder arguments it was made for, as "
        "JSON. Needs no Keras.",
    )
    info.add_argument(
        "source",
        help="checkpoint file (.pth, .bin, .safetensors, .npz) or a "
        "Hugging Face / timm folder with config.json",
    )
    info.add_argument(
        "--format",
        choices=FORMAT_NAMES,
        help="checkpoint layout (default: detected from the keys)",
    )
    _transfer_arguments(info, window=False)
    info.set_defaults(func=_cmd_info)

    predict = sub.add_parser(
        "predict",
        help="classify images with pretrained weights (top 5)",
        description="Load weights (a registered name such as "
        "swin_tiny_patch4_window7_224.ms_in1k, downloaded and cached on "
        "first use, or a local checkpoint file or folder), preprocess each "
        "image as those weights expect (resize, center crop, mean/std) and "
        "print the best classes.",
    )
    predict.add_argument("images", nargs="+", help="image files")
    predict.add_argument(
        "--weights",
        required=True,
        help="registered name (keras_swin.pretrained.available_weights()) "
        "or checkpoint path",
    )
    predict.add_argument(
        "--top",
        type=positive_int,
        default=5,
        help="classes printed per image (default: %(default)s)",
    )
    predict.set_defaults(func=_cmd_predict)

    parity = sub.add_parser(
        "parity",
        help="check the official reference cases",
        description="Convert every reference checkpoint under DIR and "
        "compare logits and pooled features with the official outputs.",
    )
    parity.add_argument(
        "directory",
        nargs="?",
        default="tests/golden",
        help="folder searched for reference cases (default: %(default)s)",
    )
    parity.add_argument(
        "--tolerance",
        type=non_negative_float,
        default=1e-5,
        help="pass if max |diff| <= TOLERANCE * max(1, max |reference|) "
        "(default: %(default)s)",
    )
    parity.add_argument(
        "--json",
        help="also write the table as JSON to this file (default: none)",
    )
    parity.set_defaults(func=_cmd_parity)

    from keras_swin.recipes.command import add_train_parser

    add_train_parser(sub)

    # A repository tool (benchmarks/ of a clone): its options are its
    # own (`keras-swin benchmark --help`), so every argument passes
    # through, none read as an option here.
    bench = sub.add_parser(
        "benchmark",
        help="from a clone: speed against PyTorch and KerasHub "
        "(python benchmarks/run.py)",
        add_help=False,
        prefix_chars="\0",
    )
    bench.add_argument(
        "arguments",
        nargs="*",
        help="the options of python benchmarks/run.py (--help lists them)",
    )
    bench.set_defaults(func=_cmd_benchmark)
    return parser


#: Failures the command line reports in one line (see `main`).
EXPECTED_ERRORS = (
    OSError,
    MemoryError,
    ValueError,  # includes CheckpointError and ConversionError
    KeyError,
    RuntimeError,
    ImportError,
)

_OS_HINTS = {
    errno.EACCES: "check its permissions or choose another path",
    errno.EPERM: "check its permissions or choose another path",
    errno.ENOENT: "check the path",
    errno.EISDIR: "a folder is in the way; give a file path",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
    errno.ENOSPC: "free some space or choose another disk",
    errno.EROFS: "the file system is read-only; choose another path",
}


#: Modules whose pip distribution has another name.
_PIP_NAMES = {
    "sklearn": "scikit-learn",
    "PIL": "pillow",
    "tensorflow_datasets": "tensorflow-datasets",
    "keras_hub": "keras-hub",
}


def error_message(error: BaseException) -> str:
    """One line saying what failed and, where known, how to fix it.

    Args:
        error: one of `EXPECTED_ERRORS`.

    Returns:
        The message, without newlines.

    Example:
        >>> error_message(PermissionError(13, "Permission denied", "/x"))
        'Permission denied: /x (check its permissions or choose another path)'
    """
    if isinstance(error, MemoryError):
        detail = f" ({error})" if str(error) else ""
        text = (
            f"out of memory{detail}; try a smaller input size or batch, "
            "or a machine with more memory"
        )
    elif isinstance(error, KeyError):
        key = error.args[0] if error.args else "?"
        text = f"missing key {key!r} in a config or checkpoint"
    elif isinstance(error, ModuleNotFoundError) and error.name:
        module = error.name.split(".")[0]
        text = (
            f"this needs the Python module {module!r}, which is not "
            f"installed; pip install {_PIP_NAMES.get(module, module)}"
        )
    elif isinstance(error, OSError) and error.strerror:
        text = error.strerror
        if error.filename is not None:
            text += f": {os.fsdecode(error.filename)}"
            if error.filename2 is not None:
                text += f" -> {os.fsdecode(error.filename2)}"
            hint = _OS_HINTS.get(error.errno)
            if hint:
                text += f" ({hint})"
    else:
        text = str(error) or type(error).__name__
    return " ".join(text.split())


def main(argv: list[str] | None = None) -> int:
    """Entry point of `keras-swin` and `python -m keras_swin`.

    Expected failures (`EXPECTED_ERRORS`: a missing, unreadable or
    unwritable path, a corrupt checkpoint, a bad config, out of memory)
    print one line `keras-swin COMMAND: message` to stderr and return 1;
    with `--debug` they are raised with their traceback. Bad arguments
    exit with argparse's status 2.

    Args:
        argv: arguments without the program name; default `sys.argv[1:]`.

    Returns:
        The process exit status.

    Example:
        >>> main(["info", "checkpoint.pth"])
        0
    """
    args = build_parser().parse_args(argv)
    if not args.debug:
        # Before any backend is imported: TensorFlow's native logging
        # reads this once, and its load-time banners are filtered on
        # import. --debug shows them.
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        quiet_import_of("tensorflow", TENSORFLOW_BANNERS)
    _set_backend(args.backend)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        if args.debug:
            raise
        print(f"keras-swin {args.command}: interrupted", file=sys.stderr)
        return 130
    except EXPECTED_ERRORS as error:
        if args.debug:
            raise
        print(
            f"keras-swin {args.command}: {error_message(error)}",
            file=sys.stderr,
        )
        return 1
