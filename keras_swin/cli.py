"""The `keras-swin` command line.

    keras-swin convert SRC OUT     checkpoint -> .weights.h5 or .keras
    keras-swin info SRC            architecture read from a checkpoint
    keras-swin predict IMAGE...    top-5 classes with pretrained weights
    keras-swin segment IMAGE...    label maps and overlays of a segmenter
    keras-swin export MODEL ...    SavedModel, ONNX, LiteRT or OpenVINO
                                   (--format, --output)
    keras-swin parity CKPT ...     a checkpoint against your reference
                                   outputs (--inputs, --expected)
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

from keras_swin.export import FORMATS as EXPORT_FORMATS
from keras_swin.export import (
    check_fuse_attention,
    check_output,
    check_supported,
    export_model,
    load_model,
)
from keras_swin.utils import (
    TENSORFLOW_BANNERS,
    SizeAction,
    atomic_path,
    check_writable,
    looks_like_path,
    non_negative_float,
    non_negative_int,
    positive_int,
    quiet_import_of,
)
from weights_tools.formats import FORMAT_NAMES

BACKENDS = ("tensorflow", "jax", "torch")
_SAVE_SUFFIXES = (".weights.h5", ".keras", ".safetensors")


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
    windows = getattr(args, "pretrained_window_sizes", None)
    if windows is not None:
        overrides["pretrained_window_sizes"] = (
            windows[0] if len(windows) == 1 else tuple(windows)
        )
    return overrides


def _builder_call(config: dict) -> str:
    import inspect

    import keras_swin
    from keras_swin.weights.families import get_family

    name = get_family(config["family"]).application
    config = {k: v for k, v in config.items() if k not in {"family", "format"}}
    parameters = inspect.signature(getattr(keras_swin, name)).parameters
    if "classes" not in parameters and "num_classes" in parameters:
        # A segmenter's builder counts its classes as num_classes.
        config["num_classes"] = config.pop("classes")
    items = ", ".join(f"{k}={v!r}" for k, v in config.items())
    return f"keras_swin.{name}({items})"


def _cmd_convert(args) -> int:
    from weights_tools.convert import convert_checkpoint

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
    if out.endswith(".safetensors"):
        return _convert_without_keras(args, out)
    # Keras only now: a .safetensors output needs none.
    from keras_swin.applications import build_from_checkpoint
    from keras_swin.weights.loading import checkpoint_notes
    from weights_tools.convert import HeadWarning

    start = time.perf_counter()
    overrides = _overrides(args)
    # The checkpoint is read once; the model built once.
    checkpoint = convert_checkpoint(
        args.source, format=args.format, **overrides
    )
    config = dict(
        family=checkpoint.family,
        format=checkpoint.format,
        **{**checkpoint.config, **overrides},
    )
    with warnings.catch_warnings():
        # A replaced head is one of the notes printed below: say it once.
        warnings.simplefilter("ignore", HeadWarning)
        model = build_from_checkpoint(
            checkpoint,
            input_shape=_input_shape(args),
            classes=args.classes,
            classifier_activation=args.classifier_activation,
            overrides=overrides,
        )
    for note in checkpoint_notes(model):
        print(f"note: {note}")
    with atomic_path(out) as tmp:
        if out.endswith(".keras"):
            model.save(tmp)  # with its PreprocessingInfo: source, notes
        else:
            model.save_weights(tmp)
    print(
        f"{args.source} ({checkpoint.format}) -> {out}: "
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


def _convert_without_keras(args, out: str) -> int:
    """`convert SRC OUT.safetensors`: the neutral conversion, no model.

    The arrays under keras-swin's weight paths and their description
    (`weights_tools.convert.save_checkpoint`); what needs the model
    (another size, window or head) is applied when the file is loaded.
    """
    from weights_tools.convert import convert_checkpoint, save_checkpoint

    refused = [
        option
        for option, given in (
            ("--image-size", args.image_size is not None),
            ("--any-size", args.any_size),
            ("--classes", args.classes is not None),
            ("--classifier-activation", args.classifier_activation),
            ("--window-size", getattr(args, "window_size", None) is not None),
        )
        if given
    ]
    if refused:
        raise ValueError(
            f"{', '.join(refused)} change(s) the model, and a .safetensors "
            "output holds the checkpoint as it is (no model is built): "
            "pass them when loading it (keras_swin.load_checkpoint(OUT, "
            "input_shape=..., window_size=..., classes=...)), or convert to "
            ".keras or .weights.h5"
        )
    start = time.perf_counter()
    checkpoint = convert_checkpoint(
        args.source, format=args.format, **_overrides(args)
    )
    for note in checkpoint.notes:
        print(f"note: {note}")
    save_checkpoint(checkpoint, out)
    arrays = checkpoint.weights.weights
    print(
        f"{args.source} ({checkpoint.format}) -> {out}: {len(arrays)} "
        f"arrays, {sum(a.size for a in arrays.values()):,} parameters, "
        f"{time.perf_counter() - start:.1f} s (no Keras needed; load it "
        "with keras_swin.load_checkpoint)"
    )
    return 0


def _cmd_info(args) -> int:
    from weights_tools.convert import checkpoint_config

    config = checkpoint_config(
        args.source, format=args.format, **_overrides(args)
    )
    print(json.dumps(config, indent=2, default=list))
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
    from keras_swin.applications import build_pretrained, load_checkpoint
    from keras_swin.imagenet import model_preprocessing
    from weights_tools.convert import is_keras_model_file

    if os.path.exists(weights):
        if is_keras_model_file(weights):
            import keras

            model = load_checkpoint(weights)
            settings = _keras_file_settings(model, weights)
            names = settings.pop("class_names")
            head = next((x for x in model.layers if x.name == "head"), None)
            logits = head is not None and (
                keras.activations.serialize(head.activation) == "linear"
            )
            return model, settings, names, logits
        model = load_checkpoint(weights, classifier_activation="softmax")
    elif looks_like_path(weights):
        raise FileNotFoundError(
            errno.ENOENT,
            "No such checkpoint file or folder (--weights looks like a "
            "path, not a registered name)",
            weights,
        )
    else:
        model = build_pretrained(weights)
    # Both record their preprocessing (and class names) in the model.
    settings = model_preprocessing(model)
    names = settings.pop("class_names")
    return model, settings, names, False


def _load_batch(paths, size, settings: dict):
    """Images read and resized as the weights expect, and normalised.

    Returns (pixels (B, H, W, 3) float in [0, 255], batch: the model's
    input, `preprocess_input` with the weights' mean and std).
    """
    import numpy as np

    from keras_swin.imagenet import load_image, preprocess_input

    pixels = np.stack(
        [
            load_image(
                path,
                size,
                crop_pct=settings["crop_pct"],
                interpolation=settings["interpolation"],
            )
            for path in paths
        ]
    )
    batch = preprocess_input(pixels, mean=settings["mean"], std=settings["std"])
    return pixels, batch


def _cmd_predict(args) -> int:
    import numpy as np

    from keras_swin.imagenet import (
        LABEL_SETS,
        decode_predictions,
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
    _, batch = _load_batch(args.images, size, settings)
    scores = np.asarray(model.predict(batch, verbose=0), dtype=np.float64)
    if logits:
        scores = _softmax(scores)
    decoded = decode_predictions(scores, top=args.top, class_names=names)
    for path, rows in zip(args.images, decoded, strict=True):
        print(path)
        for rank, (wnid, label, score) in enumerate(rows, 1):
            print(f"  {rank}. {label:30s} {score:.4f}  ({wnid})")
    return 0


def _int_pair(text: str) -> tuple[int, int]:
    """argparse `type=`: `N` or `H,W`, positive ints -> (H, W)."""
    parts = text.split(",")
    if len(parts) not in (1, 2):
        raise argparse.ArgumentTypeError(
            f"must be N or H,W (positive integers), got {text!r}"
        )
    values = tuple(positive_int(part.strip()) for part in parts)
    return values[0], values[-1]


def _query_point(text: str) -> tuple[int, int]:
    """argparse `type=`: `Y,X`, non-negative ints -> (y, x)."""
    parts = text.split(",")
    if len(parts) != 2:
        raise argparse.ArgumentTypeError(
            f"must be Y,X (two non-negative integers), got {text!r}"
        )
    y, x = (non_negative_int(part.strip()) for part in parts)
    return y, x


def _test_scale(text: str) -> tuple[int, int] | None:
    """argparse `type=` of `segment --scale`: `LONG,SHORT` or `none`."""
    if text.strip().lower() == "none":
        return None
    parts = text.split(",")
    if len(parts) != 2:
        raise argparse.ArgumentTypeError(
            f"must be LONG,SHORT (e.g. 2048,512) or none, got {text!r}"
        )
    return tuple(positive_int(part.strip()) for part in parts)


def _ratios(text: str) -> tuple[float, ...]:
    """argparse `type=` of `segment --scales`: positive numbers, by commas."""
    values = []
    for part in text.split(","):
        try:
            value = float(part)
        except ValueError:
            value = float("nan")
        if not 0 < value < float("inf"):
            raise argparse.ArgumentTypeError(
                f"must be positive numbers separated by commas (e.g. "
                f"0.5,0.75,1.0), got {part.strip()!r} in {text!r}"
            )
        values.append(value)
    return tuple(values)


def _segment_model(weights: str):
    """The segmenter of `--weights`: a registered name or a path."""
    from keras_swin.applications import build_pretrained, load_checkpoint

    if os.path.exists(weights):
        return load_checkpoint(weights)  # a segmenter takes any size
    if looks_like_path(weights):
        raise FileNotFoundError(
            errno.ENOENT,
            "No such checkpoint file or folder (--weights looks like a "
            "path, not a registered name)",
            weights,
        )
    return build_pretrained(weights)


def _segment_classes(model, weights: str) -> list[str]:
    """Class names: the model's own, ADE20K's for 150 classes, else
    `class k`."""
    from keras_swin import ade20k
    from keras_swin.imagenet import model_preprocessing

    output = model.output
    if isinstance(output, dict):
        if "logits" not in output:
            raise ValueError(
                f"{weights} is not a segmenter: its outputs "
                f"{sorted(output)} have no 'logits'."
            )
        output = output["logits"]
    if not hasattr(output, "shape") or len(output.shape) != 4:
        raise ValueError(
            f"{weights} is not a segmenter: it outputs "
            f"{getattr(output, 'shape', output)}, not (B, H, W, classes) "
            "logits (keras-swin predict classifies images)."
        )
    classes = output.shape[-1]
    settings = model_preprocessing(model) or {}
    names = settings.get("class_names")
    if names is not None:
        if len(names) != classes:
            raise ValueError(
                f"{weights} names {len(names)} classes but outputs {classes}."
            )
        return list(names)
    if classes == ade20k.NUM_CLASSES:
        return ade20k.class_names()
    return [f"class {k}" for k in range(classes)]


def _read_rgb(path: str):
    """The image at its own size, uint8 RGB (alpha on white, 16-bit and
    palette images converted as `keras_swin.imagenet.load_image` does)."""
    import numpy as np
    from PIL import Image

    from keras_swin.imagenet import load_image

    try:
        with Image.open(path) as image:
            width, height = image.size
    except Exception:  # load_image names what is wrong with the file
        width = height = 1
    pixels = load_image(
        path, (height, width), crop_pct=1.0, interpolation="bilinear"
    )
    return pixels.astype(np.uint8)  # integers 0..255: no resize happened


def _cmd_segment(args) -> int:
    import numpy as np
    from PIL import Image

    from keras_swin import ade20k
    from keras_swin.segmentation import ADE20K_RATIOS, segment

    # Before the model loads: a wrong path fails now, not after minutes.
    stems = {}
    for path in args.images:
        if not os.path.isfile(path):
            raise FileNotFoundError(errno.ENOENT, "No such image file", path)
        stem = Path(path).stem
        if stem in stems:
            raise ValueError(
                f"{stems[stem]} and {path} would both write "
                f"{stem}_overlay.png and {stem}_labels.png in {args.output}; "
                "segment them in two runs with different --output folders."
            )
        stems[stem] = path
    check_writable(args.output, folder=True)
    scales, flip = args.scales, args.flip
    if args.aug_test:
        scales, flip = scales or ADE20K_RATIOS, True
    start = time.perf_counter()
    model = _segment_model(args.weights)
    names = _segment_classes(model, args.weights)
    colours = None if len(names) == ade20k.NUM_CLASSES else len(names)
    for path in args.images:
        image = _read_rgb(path)
        labels = segment(
            model,
            image,
            mode=args.mode,
            crop_size=args.crop_size,
            stride=args.stride,
            scale=args.scale,
            scales=scales,
            flip=flip,
            batch_size=args.batch_size,
        )
        stem = Path(path).stem
        blend = ade20k.overlay(
            image, labels, args.alpha, palette=colours, ignore_index=None
        )
        # class ids: 8-bit PNG ("L"), 16-bit ("I;16") over 256 classes
        ids = labels.astype(np.uint8 if len(names) <= 256 else np.uint16)
        for suffix, array in (("overlay", blend), ("labels", ids)):
            with atomic_path(Path(args.output) / f"{stem}_{suffix}.png") as tmp:
                Image.fromarray(array).save(tmp, format="PNG")
        (rows,) = ade20k.decode_segmentation(
            labels, class_names=names, top=args.top, ignore_index=None
        )
        shares = ", ".join(f"{name} {share:.1%}" for _, name, share in rows)
        print(f"{path} ({image.shape[0]}x{image.shape[1]}): {shares}")
    print(
        f"{len(args.images)} label maps and overlays in {args.output}, "
        f"{time.perf_counter() - start:.1f} s"
    )
    return 0


def _cmd_analyze(args) -> int:
    import numpy as np

    from keras_swin.analysis.report import analyze_model

    # Before the model loads: a wrong path fails now, not after minutes.
    for path in args.images:
        if not os.path.isfile(path):
            raise FileNotFoundError(errno.ENOENT, "No such image file", path)
    check_writable(args.output, folder=True)
    start = time.perf_counter()
    model, settings, _, _ = _predict_model(args.weights)
    size = tuple(model.inputs[0].shape[1:3])
    if args.image_size is not None:
        if None not in size and tuple(args.image_size) != size:
            raise ValueError(
                f"{args.weights} is built for {size[0]}x{size[1]} images; "
                f"--image-size {args.image_size[0]},{args.image_size[1]} "
                "applies only to a model of any input size."
            )
        size = tuple(args.image_size)
    if None in size:
        raise ValueError(
            f"{args.weights} is built for any input size; pass "
            "--image-size N or H,W to choose the size to analyse at."
        )
    pixels, batch = _load_batch(args.images, size, settings)
    result = analyze_model(
        model,
        batch,
        args.output,
        pixels=pixels.astype(np.uint8),
        names=[Path(path).name for path in args.images],
        query=args.query,
        head_fusion=args.head_fusion,
        log=print,
    )
    for name, reason in result["notes"].items():
        print(f"left out {name}: {reason}")
    print(
        f"{len(result['figures'])} figures and summary.json in "
        f"{args.output}, {time.perf_counter() - start:.1f} s"
    )
    return 0


def _cmd_export(args) -> int:
    # Before the model loads: a wrong format or path fails now.
    check_supported(args.format)
    check_output(args.output, args.format)
    if args.fuse_attention:
        check_fuse_attention(args.format, args.quantize)
    start = time.perf_counter()
    model = load_model(
        args.model, image_size=args.image_size, any_size=args.any_size
    )
    export_model(
        model,
        args.output,
        args.format,
        image_size=args.image_size,
        quantize=args.quantize,
        fuse_attention=args.fuse_attention,
    )
    shape = tuple(args.image_size or model.input_shape[1:3])
    size = "H, W" if None in shape else f"{shape[0]}, {shape[1]}"
    if isinstance(model.output, dict):  # a dense backbone's pyramid
        outputs = "maps " + ", ".join(
            f"{name} (B, h, w, {tensor.shape[-1]})"
            for name, tensor in model.output.items()
        )
    else:
        outputs = f"logits (B, {model.output_shape[-1]})"
    variant = " int8" if args.quantize else ""
    if args.fuse_attention:
        variant = " (fused attention, ONNX Runtime only)"
    print(
        f"{args.format}{variant} written to "
        f"{args.output}: input (B, {size}, 3) float32, {outputs}, "
        f"{time.perf_counter() - start:.1f} s"
    )
    return 0


#: The layout `keras-swin parity` expects its inputs in; see `_as_nhwc`.
_CHANNELS = 3


def _load_array(spec: str, what: str):
    """(array, label) of `--inputs` / `--expected` FILE[.npz:NAME].

    A `.npy` file is the array; a `.npz` file gives its first array, or
    with `FILE.npz:NAME` the array NAME.
    """
    import numpy as np

    path, name = spec, None
    if ":" in spec and spec.rsplit(":", 1)[0].lower().endswith(".npz"):
        path, name = spec.rsplit(":", 1)
    lower = path.lower()
    if not lower.endswith((".npy", ".npz")):
        raise ValueError(
            f"{what} {spec}: expected a .npy file, or a .npz file "
            "(FILE.npz for its first array, FILE.npz:NAME for the array "
            "NAME)"
        )
    if not os.path.isfile(path):
        raise FileNotFoundError(errno.ENOENT, f"No such {what} file", path)
    if lower.endswith(".npy"):
        return np.load(path, allow_pickle=False), path
    with np.load(path, allow_pickle=False) as archive:
        names = list(archive.files)
        if not names:
            raise ValueError(f"{what} {path}: the .npz file holds no array")
        if name is None:
            name = names[0]
        elif name not in names:
            raise ValueError(
                f"{what} {path} has no array {name!r}; it holds "
                f"{', '.join(names)}"
            )
        return archive[name], f"{path}:{name}"


def _as_nhwc(x, label: str):
    """(float32 NHWC batch, a note on the layout read) of `--inputs`.

    NHWC (B, H, W, 3) is expected and wins when both could apply; an
    array whose last axis is not 3 and whose axis 1 is 3 is NCHW
    (B, 3, H, W), transposed. Three axes are one image (HWC or CHW).
    """
    import numpy as np

    expected = (
        f"expected images NHWC (B, H, W, {_CHANNELS}) or NCHW (B, "
        f"{_CHANNELS}, H, W), or one image with 3 axes"
    )
    if not np.issubdtype(x.dtype, np.number) or np.iscomplexobj(x):
        raise ValueError(f"inputs {label} are {x.dtype}; {expected}")
    if x.ndim == 3:
        x = x[None]
    if x.ndim != 4:
        raise ValueError(
            f"inputs {label} have shape {tuple(x.shape)}; {expected}"
        )
    if x.shape[-1] == _CHANNELS:
        layout = "NHWC"
    elif x.shape[1] == _CHANNELS:
        layout = f"NCHW (axis 1 is {_CHANNELS}, the last is not), transposed"
        x = x.transpose(0, 2, 3, 1)
    else:
        raise ValueError(
            f"inputs {label} have shape {tuple(x.shape)}: neither the last "
            f"axis nor axis 1 is {_CHANNELS} channels; {expected}"
        )
    return np.ascontiguousarray(x, dtype=np.float32), layout


def _parity_row(output: str, result, expected, tolerance: float) -> dict:
    import numpy as np

    result = np.asarray(result, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    diff = float(np.max(np.abs(result - expected)))
    bound = tolerance * max(1.0, float(np.max(np.abs(expected))))
    row = dict(
        output=output,
        shape=list(expected.shape),
        max_abs_diff=diff,
        bound=bound,
        passed=bool(diff <= bound),  # NaN fails
    )
    if output == "output" and expected.ndim == 2 and expected.shape[1] > 1:
        same = result.argmax(-1) == expected.argmax(-1)
        row["top1_agree"] = int(same.sum())
    return row


def _cmd_parity(args) -> int:
    import keras
    import numpy as np

    from keras_swin import checkpoint_notes, load_checkpoint

    if args.json:
        check_writable(args.json)
    start = time.perf_counter()
    x, inputs_label = _load_array(args.inputs, "inputs")
    x, layout = _as_nhwc(x, inputs_label)
    references = [("output", args.expected)]
    if args.expected_features:
        references.append(("features", args.expected_features))
    expected = {
        output: _load_array(spec, f"expected {output}")
        for output, spec in references
    }
    for output, (value, label) in expected.items():
        if value.ndim == 0 or len(value) != len(x):
            raise ValueError(
                f"expected {output} {label} has shape {tuple(value.shape)} "
                f"for {len(x)} inputs; expected the reference's "
                f"{output} on the same inputs, one row each"
            )
    shape = (x.shape[1], x.shape[2], _CHANNELS)
    model = load_checkpoint(
        args.checkpoint,
        input_shape=shape,
        format=args.format,
        **_overrides(args),
    )
    for note in checkpoint_notes(model):
        print(f"note: {note}")
    runs = [("output", model)]
    if "features" in expected:
        with warnings.catch_warnings():
            # classes=0 drops the head on purpose; no need to warn.
            warnings.simplefilter("ignore", UserWarning)
            headless = load_checkpoint(
                args.checkpoint,
                input_shape=shape,
                classes=0,
                format=args.format,
                **_overrides(args),
            )
        runs.append(("features", headless))
    rows = []
    for output, net in runs:
        value, label = expected[output]
        result = np.asarray(
            net.predict(x, verbose=0, batch_size=min(len(x), 32))
        )
        if result.shape != value.shape:
            raise ValueError(
                f"expected {output} {label} has shape {tuple(value.shape)}, "
                f"but the model outputs {tuple(result.shape)} for these "
                "inputs; expected the reference model's "
                f"{'logits' if output == 'output' else 'pooled features'} "
                "on the same inputs"
            )
        rows.append(_parity_row(output, result, value, args.tolerance))
    backend = keras.backend.backend()
    print(
        f"{args.checkpoint} on {inputs_label} {tuple(x.shape)}, read as "
        f"{layout}; backend {backend}"
    )
    print("| output | reference | shape | max abs diff | bound | result |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['output']} | {expected[row['output']][1]} | "
            f"{tuple(row['shape'])} | {row['max_abs_diff']:.2e} | "
            f"{row['bound']:.2e} | {'pass' if row['passed'] else 'FAIL'} |"
        )
    for row in rows:
        if "top1_agree" in row:
            print(
                f"{row['output']}: the top-1 class agrees on "
                f"{row['top1_agree']}/{row['shape'][0]} inputs"
            )
    passed = sum(r["passed"] for r in rows)
    print(
        f"{passed}/{len(rows)} within tolerance (max |diff| <= "
        f"{args.tolerance:g} x max(1, max |expected|)), "
        f"{time.perf_counter() - start:.1f} s"
    )
    if args.json:
        with atomic_path(args.json) as tmp:
            Path(tmp).write_text(
                json.dumps(
                    dict(
                        checkpoint=str(args.checkpoint),
                        inputs=inputs_label,
                        layout=layout,
                        backend=backend,
                        tolerance=args.tolerance,
                        rows=rows,
                    ),
                    indent=2,
                )
            )
    return 0 if passed == len(rows) else 1


#: `keras-swin parity --help`: what it does and how to make its files.
PARITY_DESCRIPTION = """\
Check a checkpoint against outputs you recorded from its original code:
load CHECKPOINT as keras_swin.load_checkpoint does, run it on the
inputs and print the largest absolute difference to the expected
outputs. Exit status 0 when every output is within tolerance, 1 when
one is not (or on an error).

Making the reference files, e.g. with the original PyTorch model (timm,
Hugging Face or the official code) in eval mode:

    x = torch.randn(2, 3, 224, 224)          # the exact model input
    numpy.save("inputs.npy", x.numpy())      # NCHW: transposed here
    with torch.no_grad():
        logits = model(x)                    # HF: model(x).logits
    numpy.save("logits.npy", logits.numpy())
    # optional, --expected-features: the pooled head input (timm)
    # model.forward_head(model.forward_features(x), pre_logits=True)

then: keras-swin parity CHECKPOINT --inputs inputs.npy --expected
logits.npy. For the official JAX ViT save the NHWC inputs and the
logits of model.apply(params, x, train=False).

Inputs are fed as they are (no resizing or normalisation): save the
tensor the reference model was called with. NHWC (B, H, W, 3) is
expected; an array whose last axis is not 3 and whose axis 1 is 3 is
read as NCHW (B, 3, H, W) and transposed (3 axes: one image). The model
is built for the inputs' height and width (position tables resampled
if that differs from the checkpoint's, as its notes say). The bundled
reference cases of a clone are checked by python
tests/golden_harness.py instead.
"""


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
            "resampled (Swin V2: nothing is; default: the checkpoint's "
            "window)",
        )
        parser.add_argument(
            "--pretrained-window-sizes",
            type=non_negative_int,
            nargs="+",
            metavar="P",
            help="Swin V2: the window the position-bias MLP was trained at "
            "(one value, or one per stage; 0 for none), e.g. 12 12 12 6 "
            "for the 22K -> 1K fine-tunes (default: the checkpoint's)",
        )
    parser.add_argument(
        "--num-heads",
        type=positive_int,
        nargs="+",
        metavar="N",
        help="attention heads (one value, or one per stage), needed for a "
        "timm ViT without config.json (default: read from the checkpoint)",
    )


def _images_and_weights(parser, output: bool) -> None:
    """IMAGE... and --weights (and --output): predict, segment, analyze."""
    parser.add_argument("images", nargs="+", help="image files")
    parser.add_argument(
        "--weights",
        required=True,
        help="registered name (keras_swin.available_weights()) or "
        "checkpoint path",
    )
    if output:
        parser.add_argument(
            "--output",
            required=True,
            help="folder for the PNG files (created if missing)",
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
        "output",
        type=Path,
        help="output file ending in .keras (the model), .weights.h5 (its "
        "weights) or .safetensors (the converted arrays and their "
        "description, written without Keras; sizes, window and head are "
        "then chosen when loading it)",
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
    _images_and_weights(predict, output=False)
    predict.add_argument(
        "--top",
        type=positive_int,
        default=5,
        help="classes printed per image (default: %(default)s)",
    )
    predict.set_defaults(func=_cmd_predict)

    seg = sub.add_parser(
        "segment",
        help="segment images with a segmenter (label maps and overlays)",
        description="Load a segmenter (a registered name, downloaded and "
        "cached on first use, or a checkpoint file, folder or .keras "
        "model), segment each image with mmsegmentation's test "
        "semantics (keras_swin.segment) and write NAME_overlay.png (the "
        "classes' colours over the image) and NAME_labels.png (the class "
        "id of each pixel: 8-bit, 16-bit over 256 classes) into OUTPUT; "
        "print each image's largest classes.",
    )
    _images_and_weights(seg, output=True)
    seg.add_argument(
        "--mode",
        choices=("whole", "slide"),
        default="whole",
        help="whole image, or sliding windows (default: %(default)s)",
    )
    seg.add_argument(
        "--crop-size",
        type=_int_pair,
        default=(512, 512),
        metavar="N|H,W",
        help="slide window (default: 512)",
    )
    seg.add_argument(
        "--stride",
        type=_int_pair,
        default=(341, 341),
        metavar="N|H,W",
        help="slide step (default: 341)",
    )
    seg.add_argument(
        "--scale",
        type=_test_scale,
        default=(2048, 512),
        metavar="LONG,SHORT",
        help="resize each image to fit this long and short edge, keeping "
        "its aspect ratio; none: its own size (default: 2048,512, the "
        "ADE20K test)",
    )
    seg.add_argument(
        "--scales",
        type=_ratios,
        metavar="R,R,...",
        help="test at these ratios of --scale and average, e.g. "
        "0.5,0.75,1.0,1.25,1.5,1.75 (default: 1 only)",
    )
    seg.add_argument(
        "--flip",
        action="store_true",
        help="also test each scale flipped horizontally (default: off)",
    )
    seg.add_argument(
        "--aug-test",
        action="store_true",
        help="mmsegmentation's multi-scale + flip test: --scales "
        "0.5,0.75,1.0,1.25,1.5,1.75 --flip (default: off)",
    )
    seg.add_argument(
        "--batch-size",
        type=positive_int,
        default=4,
        help="windows or images per model call (default: %(default)s)",
    )
    seg.add_argument(
        "--alpha",
        type=non_negative_float,
        default=0.5,
        help="opacity of the colours in the overlay, 0..1 (default: "
        "%(default)s)",
    )
    seg.add_argument(
        "--top",
        type=positive_int,
        default=5,
        help="classes printed per image (default: %(default)s)",
    )
    seg.set_defaults(func=_cmd_segment)

    analyze = sub.add_parser(
        "analyze",
        help="what a ViT or Swin attends to: the papers' analyses as figures",
        description="Load a ViT or Swin (a registered name, downloaded and "
        "cached on first use, or a checkpoint file, folder or .keras "
        "model), preprocess each image as its weights expect and write "
        "into OUTPUT the figures that apply to the model: mean attention "
        "distance per head against depth, attention rollout (ViT), the "
        "attention of a query point across stages (Swin), "
        "position-embedding similarity and the patch-embedding filters' "
        "principal components; summary.json holds the numbers.",
    )
    _images_and_weights(analyze, output=True)
    analyze.add_argument(
        "--image-size",
        type=_int_pair,
        metavar="N|H,W",
        help="input size for a model of any size (default: the model's)",
    )
    analyze.add_argument(
        "--query",
        type=_query_point,
        metavar="Y,X",
        help="pixel of the model input whose attention the Swin figure "
        "shows (default: the centre)",
    )
    analyze.add_argument(
        "--head-fusion",
        choices=("mean", "max", "min"),
        default="mean",
        help="how rollout fuses the heads (default: %(default)s)",
    )
    analyze.set_defaults(func=_cmd_analyze)

    export = sub.add_parser(
        "export",
        help="export a classifier or backbone: SavedModel, ONNX, LiteRT, "
        "OpenVINO",
        description="Load a classifier (a registered name, a checkpoint "
        "file or folder, or a .keras model) with a logits head and "
        "export it with Keras' model.export: one NHWC float32 image "
        "input with a dynamic batch, the logits as first output (a "
        "detection or segmentation checkpoint: its backbone, the pyramid "
        "maps P2 ... P5 as outputs). A Swin "
        "of any size (--any-size, or such a .keras model) keeps a "
        "dynamic height and width in SavedModel, ONNX and OpenVINO from "
        "TensorFlow; LiteRT and the PyTorch and JAX exporters need a "
        "fixed size. See docs/deployment.md for what each backend "
        "exports.",
    )
    export.add_argument(
        "model",
        help="registered name (keras_swin.available_weights()), "
        "checkpoint file or folder, or .keras file",
    )
    export.add_argument(
        "--format",
        required=True,
        choices=EXPORT_FORMATS,
        help="saved_model (a folder), onnx (.onnx), litert (.tflite) or "
        "openvino (.xml, and the .bin beside it)",
    )
    export.add_argument(
        "--output",
        required=True,
        help="the folder (saved_model) or file to write",
    )
    export_size = export.add_mutually_exclusive_group()
    export_size.add_argument(
        "--image-size",
        type=_int_pair,
        metavar="N|H,W",
        help="export at this fixed size: a checkpoint or name is built "
        "for it (weights resampled), a model of any size is fixed to it "
        "(default: the weights' size)",
    )
    export_size.add_argument(
        "--any-size",
        action="store_true",
        help="Swin checkpoint or name: build for any size, exported with "
        "a dynamic height and width (default: off)",
    )
    export.add_argument(
        "--quantize",
        choices=("int8",),
        help="int8 weights: LiteRT dynamic range, ONNX dynamic "
        "(default: float32)",
    )
    export.add_argument(
        "--fuse-attention",
        action="store_true",
        help="ONNX from the torch backend: each attention as one ONNX "
        "Runtime com.microsoft.Attention node (faster there; the file "
        "then runs in ONNX Runtime only; not Swin V2; default: off)",
    )
    export.set_defaults(func=_cmd_export)

    parity = sub.add_parser(
        "parity",
        help="check a checkpoint against reference outputs you recorded",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=PARITY_DESCRIPTION,
    )
    parity.add_argument(
        "checkpoint",
        help="checkpoint file (.pth, .bin, .safetensors, .npz, .keras) or a "
        "Hugging Face / timm folder with config.json",
    )
    parity.add_argument(
        "--inputs",
        required=True,
        metavar="FILE",
        help="the images the reference model was called with: .npy, or "
        ".npz (first array, or FILE.npz:NAME); NHWC, or NCHW transposed",
    )
    parity.add_argument(
        "--expected",
        required=True,
        metavar="FILE",
        help="the reference model's outputs (logits) on those inputs: "
        ".npy, or .npz (first array, or FILE.npz:NAME)",
    )
    parity.add_argument(
        "--expected-features",
        metavar="FILE",
        help="also compare the pooled features (the head's input) of the "
        "checkpoint loaded without its head (default: not compared)",
    )
    parity.add_argument(
        "--format",
        choices=FORMAT_NAMES,
        help="checkpoint layout (default: detected from the keys)",
    )
    _transfer_arguments(parity)
    parity.add_argument(
        "--tolerance",
        type=non_negative_float,
        default=1e-5,
        help="pass if max |diff| <= TOLERANCE * max(1, max |expected|) "
        "(default: %(default)s)",
    )
    parity.add_argument(
        "--json",
        help="also write the rows as JSON to this file (default: none)",
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
    "ai_edge_litert": "ai-edge-litert",
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
