"""The `keras-swin` command line.

    keras-swin convert SRC OUT     checkpoint -> .weights.h5 or .keras
    keras-swin info SRC            architecture read from a checkpoint
    keras-swin parity [DIR]        official reference cases, checked

`--backend` picks the Keras backend (default: $KERAS_BACKEND, else Keras'
own default); it must come before the sub-command.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path

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
    if args.image_size:
        height = args.image_size[0]
        width = args.image_size[-1]
        return (height, width, 3)
    return None


def _builder_call(config: dict) -> str:
    family = config["family"]
    name = "SwinTransformer" if family == "swin" else "VisionTransformer"
    skip = {"family", "format"}
    items = ", ".join(f"{k}={v!r}" for k, v in config.items() if k not in skip)
    return f"keras_swin.{name}({items})"


def _cmd_convert(args) -> int:
    from keras_swin.utils import atomic_path
    from weights_tools.convert import checkpoint_config, load_checkpoint

    out = str(args.output)
    if not out.endswith(_SAVE_SUFFIXES):
        allowed = " or ".join(_SAVE_SUFFIXES)
        print(
            f"keras-swin convert: OUT must end with {allowed}, got {out}",
            file=sys.stderr,
        )
        return 2
    start = time.perf_counter()
    config = checkpoint_config(args.source, format=args.format)
    model = load_checkpoint(
        args.source,
        format=args.format,
        input_shape=_input_shape(args),
        classes=args.classes,
        classifier_activation=args.classifier_activation,
    )
    with atomic_path(out) as tmp:
        if out.endswith(".keras"):
            model.save(tmp)
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

    config = checkpoint_config(args.source, format=args.format)
    print(json.dumps(config, indent=2, default=list))
    return 0


def _case_files(folder: Path):
    checkpoint = next(
        (
            p
            for p in sorted(folder.glob("checkpoint.*"))
            if p.suffix in (".pth", ".npz")
        ),
        None,
    )
    needed = [folder / "inputs_nhwc.npy", folder / "logits.npy"]
    if checkpoint is None or not all(p.exists() for p in needed):
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
    outputs = probe.predict(images[: len(stages["patch_embed"])], verbose=0)
    return {key: outputs[name] for key, name in taps.items()}


def run_parity(directory: str | Path, tolerance: float = 1e-5) -> list[dict]:
    """Checks every reference case found under `directory`.

    A case is a folder with `checkpoint.pth` (official Swin) or
    `checkpoint.npz` (official ViT), `inputs_nhwc.npy`, `logits.npy`,
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

    for folder in sorted(
        {p.parent for p in Path(directory).rglob("inputs_nhwc.npy")}
    ):
        files = _case_files(folder)
        if files is None:
            continue
        checkpoint, pooled = files
        case = str(folder.relative_to(directory))
        images = np.load(folder / "inputs_nhwc.npy")
        model = load_checkpoint(checkpoint)
        compare(
            case,
            "logits",
            model.predict(images, verbose=0),
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
                headless = load_checkpoint(checkpoint, classes=0)
            compare(
                case,
                "pooled",
                headless.predict(images, verbose=0),
                np.load(pooled),
            )
    return rows


def _cmd_parity(args) -> int:
    import keras

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
        from keras_swin.utils import atomic_path

        with atomic_path(args.json) as tmp:
            Path(tmp).write_text(
                json.dumps(dict(backend=backend, rows=rows), indent=2)
            )
    return 0 if all(r["passed"] for r in rows) else 1


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of `keras-swin` (for docs and tests).

    Example:
        >>> build_parser().parse_args(["info", "a.pth"]).command
        'info'
    """
    parser = argparse.ArgumentParser(
        prog="keras-swin",
        description="Swin Transformer and ViT for Keras 3: convert and "
        "check checkpoints.",
    )
    parser.add_argument(
        "--backend",
        choices=BACKENDS,
        help="Keras backend (default: $KERAS_BACKEND)",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    convert = sub.add_parser(
        "convert",
        help="convert an official checkpoint to Keras",
        description="Read an official Swin .pth or ViT .npz file, build the "
        "matching model, load every weight strictly and save it.",
    )
    convert.add_argument("source", help="checkpoint file (.pth, .npz)")
    convert.add_argument(
        "output", type=Path, help="output file ending in .weights.h5 or .keras"
    )
    convert.add_argument("--format", choices=("official_swin", "official_vit"))
    size = convert.add_mutually_exclusive_group()
    size.add_argument(
        "--image-size",
        type=int,
        nargs="+",
        metavar="PX",
        help="build for H [W] pixels (default: the checkpoint's size)",
    )
    size.add_argument(
        "--any-size",
        action="store_true",
        help="Swin: build for any input size (None, None, 3)",
    )
    convert.add_argument(
        "--classes", type=int, help="classes of the head (0: pooled features)"
    )
    convert.add_argument(
        "--classifier-activation",
        default=None,
        help="head activation (default: none, logits)",
    )
    convert.set_defaults(func=_cmd_convert)

    info = sub.add_parser("info", help="print a checkpoint's architecture")
    info.add_argument("source")
    info.add_argument("--format", choices=("official_swin", "official_vit"))
    info.set_defaults(func=_cmd_info)

    parity = sub.add_parser(
        "parity",
        help="check the official reference cases",
        description="Convert every reference checkpoint under DIR and "
        "compare logits and pooled features with the official outputs.",
    )
    parity.add_argument("directory", nargs="?", default="tests/golden")
    parity.add_argument("--tolerance", type=float, default=1e-5)
    parity.add_argument("--json", help="also write the table as JSON here")
    parity.set_defaults(func=_cmd_parity)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of `keras-swin` and `python -m keras_swin`.

    Args:
        argv: arguments without the program name; default `sys.argv[1:]`.

    Returns:
        The process exit status.

    Example:
        >>> main(["info", "checkpoint.pth"])
        0
    """
    args = build_parser().parse_args(argv)
    _set_backend(args.backend)
    from weights_tools.common import ConversionError
    from weights_tools.readers import CheckpointError

    try:
        return args.func(args)
    except (CheckpointError, ConversionError, FileNotFoundError) as error:
        print(f"keras-swin {args.command}: {error}", file=sys.stderr)
        return 1
