"""Export a classifier or a dense backbone for inference outside Keras.

Built on Keras 3's own `model.export(path, format=...)`; this module
adds what a deployment needs around it:

* `load_model`: a registered name, a checkpoint file (official Swin
  `.pth`, ViT `.npz`, timm, Hugging Face) or a `.keras` file, loaded
  with a logits head (`keras_swin.applications`);
* `export_model`: one NHWC float32 image input with a dynamic batch,
  the logits as first output (a dense backbone: its pyramid maps, named
  as its outputs, "P2" ... "P5"), dynamic height and width for a Swin built
  for any size (SavedModel, ONNX, OpenVINO) or a fixed `image_size`
  (required by LiteRT), int8 variants (LiteRT dynamic range, ONNX
  dynamic), a checked destination and no half-written artefact;
* `run_exported`: the artefact run in its own runtime (TensorFlow,
  onnxruntime, ai-edge-litert, OpenVINO), as the tests check it.

Gaps filled here: tf2onnx 1.17 has no converter for TensorFlow's `Erfc`
(the exact GELU of Swin) and one is registered (`1 - Erf`); ONNX from
PyTorch goes through `torch.onnx.export(dynamo=True)` with a symbolic
batch (Keras' own path for a dynamic batch fails on LayerNorm); the
PyTorch and JAX exporters get a fixed size (`FIXED_SIZE`); OpenVINO is
run in float32 (its CPU default is bfloat16 where the CPU has it).
`fuse_attention=True` (ONNX from PyTorch) writes a graph for ONNX Runtime
only: each attention as one `com.microsoft.Attention` node (onnxscript's
rewriter on q, k and v exported as three projections), which none of the
exporters produces. `docs/deployment.md` has the backend x format
matrix and the measured parity.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile

from keras_swin.utils import (
    _temp_prefix,
    check_writable,
    looks_like_path,
    remove_stale_temporaries,
)
from weights_tools.convert import is_keras_model_file

#: The formats of `export_model`, by our name (Keras' name differs for
#: the SavedModel only).
FORMATS = ("saved_model", "onnx", "litert", "openvino")
_KERAS_FORMATS = {
    "saved_model": "tf_saved_model",
    "onnx": "onnx",
    "litert": "litert",
    "openvino": "openvino",
}
#: Formats Keras 3.15 exports from each backend with the packages of
#: requirements-test.txt.
SUPPORTED = {
    "tensorflow": ("saved_model", "onnx", "litert", "openvino"),
    "torch": ("onnx", "openvino"),
    "jax": ("saved_model",),
}
_WHY_NOT = {
    ("torch", "saved_model"): "Keras exports a SavedModel from PyTorch "
    "only through torch_xla",
    ("torch", "litert"): "Keras exports LiteRT from PyTorch only through "
    "litert-torch, which is not installed here",
    ("jax", "onnx"): "Keras exports ONNX from JAX only through jax2onnx, "
    "which is not installed here",
    ("jax", "litert"): "Keras exports LiteRT from TensorFlow and PyTorch only",
    ("jax", "openvino"): "Keras hands OpenVINO a jax2tf function whose "
    "XlaCallModule op OpenVINO cannot convert",
}
#: Quantised variants offered per format.
QUANTIZE = {"litert": ("int8",), "onnx": ("int8",)}
#: What the path of each format must end with ("" : a folder).
SUFFIXES = {
    "saved_model": "",
    "onnx": ".onnx",
    "litert": ".tflite",
    "openvino": ".xml",
}
#: Formats exported at one height and width (dynamic batch) from each
#: backend: PyTorch's exporters trace one size, and jax2tf cannot carry
#: the Swin padding arithmetic on symbolic sizes.
FIXED_SIZE = {"torch": ("onnx", "openvino"), "jax": ("saved_model",)}
#: Backends whose ONNX export `fuse_attention` rewrites: the torch.export
#: graph of `layers.attention.separate_projections` is the pattern
#: onnxscript's rewriter matches (tf2onnx's graph of it is not).
FUSE_ATTENTION_BACKENDS = ("torch",)


def _backend() -> str:
    import keras

    return keras.backend.backend()


def load_model(source, *, image_size=None, any_size: bool = False):
    """A classifier with a logits head, from a name, checkpoint or .keras.

    A detection or segmentation checkpoint (mmdetection, mmsegmentation,
    a dense Hugging Face backbone) gives its backbone, as
    `keras_swin.load_checkpoint` does: (B, H, W, 3) -> {"P2": ..., ...}.

    Args:
        source: a registered name (`keras_swin.available_weights()`), a
            checkpoint file or folder (`keras_swin.load_checkpoint`) or a
            `.keras` file (loaded as saved; a softmax head is switched to
            logits).
        image_size: (H, W) to build for (weights resampled as
            `load_checkpoint` does); default the weights' size.
        any_size: Swin only: build for `(None, None, 3)`.

    Returns:
        A `keras.Model` mapping (B, H, W, 3) float32 to (B, classes)
        logits.

    Raises:
        FileNotFoundError: `source` looks like a path and is missing.
        ValueError: both `image_size` and `any_size`.

    Example:
        >>> model = load_model("tests/golden/swin_official/tiny_w4_64/"
        ...                    "checkpoint.pth", any_size=True)
        >>> model.input_shape
        (None, None, None, 3)
    """
    from keras_swin.applications import build_pretrained, load_checkpoint

    if image_size is not None and any_size:
        raise ValueError("Give image_size or any_size, not both.")
    shape = None
    if any_size:
        shape = (None, None, 3)
    elif image_size is not None:
        shape = (*_pair(image_size), 3)
    source = os.fspath(source)
    if os.path.exists(source):
        if is_keras_model_file(source):
            model = load_checkpoint(source)
            saved = tuple(model.input_shape[1:])
            # A model of any size is fixed to image_size at export.
            takes_it = None in saved[:2] and not any_size
            if shape is not None and saved != shape and not takes_it:
                raise ValueError(
                    f"{source} is a saved Keras model for input {saved} and "
                    f"cannot be rebuilt for {shape}; export the original "
                    "checkpoint at that size instead."
                )
            return _logits_head(model)
        return load_checkpoint(source, input_shape=shape)
    if looks_like_path(source):
        raise FileNotFoundError(
            errno.ENOENT,
            "No such checkpoint file or folder (it looks like a path, not "
            "a registered name)",
            source,
        )
    kwargs = {"classifier_activation": None}
    if shape is not None:
        kwargs["input_shape"] = shape
    return build_pretrained(source, **kwargs)


def _logits_head(model):
    import keras

    head = next((x for x in model.layers if x.name == "head"), None)
    if head is not None and getattr(head, "activation", None) is not None:
        if keras.activations.serialize(head.activation) != "linear":
            head.activation = keras.activations.linear
    return model


def _pair(size) -> tuple[int, int]:
    if isinstance(size, int):
        return (size, size)
    size = tuple(int(s) for s in size)
    if len(size) == 1:
        return (size[0], size[0])
    if len(size) != 2 or min(size) < 1:
        raise ValueError(f"image_size must be N or (H, W); got {size}.")
    return size


def check_supported(format: str, backend: str | None = None) -> None:
    """Raises a ValueError naming what is supported, if `format` is not.

    Args:
        format: one of `FORMATS`.
        backend: a Keras backend; default the current one.

    Example:
        >>> check_supported("litert", "jax")
        Traceback (most recent call last):
        ValueError: ... litert from jax ... (jax exports: saved_model, ...)
    """
    backend = backend or _backend()
    if format not in FORMATS:
        raise ValueError(
            f"Unknown export format {format!r}; choose one of "
            f"{', '.join(FORMATS)}."
        )
    supported = SUPPORTED.get(backend, ())
    if format not in supported:
        why = _WHY_NOT.get((backend, format), "not supported by Keras")
        others = [b for b, formats in SUPPORTED.items() if format in formats]
        raise ValueError(
            f"Cannot export {format} from the {backend} backend: {why}. "
            f"{backend} exports: {', '.join(supported) or 'nothing'}; "
            f"{format} is exported from: {', '.join(others)} (pick it "
            "with KERAS_BACKEND or keras-swin --backend)."
        )


def check_output(path, format: str) -> None:
    """Checks, before a long export, that `path` suits `format` and is free.

    Args:
        path: the destination (a folder for "saved_model", else a file
            with the format's suffix, `SUFFIXES`).
        format: one of `FORMATS`.

    Raises:
        ValueError: the suffix does not fit the format.
        FileExistsError: a SavedModel folder that is not empty.
        OSError: the path cannot be written (`utils.check_writable`).

    Example:
        >>> check_output("out/model.onnx", "onnx")
        >>> check_output("out/model.onnx", "litert")
        Traceback (most recent call last):
        ValueError: A litert export is written to a file ending in .tflite...
    """
    path = os.fspath(path)
    check_supported(format, backend="tensorflow")  # a known name

    suffix = SUFFIXES[format]
    if suffix and not path.lower().endswith(suffix):
        raise ValueError(
            f"A {format} export is written to a file ending in {suffix}; "
            f"got {path}."
        )
    if not suffix:
        check_writable(path, folder=True)
        if os.path.isdir(path) and os.listdir(path):
            raise FileExistsError(
                errno.EEXIST,
                "The SavedModel folder exists and is not empty (remove "
                "it or choose another path)",
                path,
            )
    else:
        check_writable(path)


def _signature(model, format: str, image_size):
    """The input spec of the exported graph: (None, H, W, 3) float32."""
    import keras

    outputs = [tuple(t.shape) for t in model.outputs]
    classifier = len(outputs) == 1 and len(outputs[0]) == 2
    backbone = (
        getattr(model, "pyramid_outputs", None) is not None
        and outputs
        and all(len(o) == 4 for o in outputs)
    )
    if len(model.inputs) != 1 or not (classifier or backbone):
        raise ValueError(
            "Export covers classifiers (one image input, (B, classes) "
            "logits) and dense backbones (one image input, (B, h, w, C) "
            f"pyramid maps); this model has {len(model.inputs)} input(s) "
            f"and outputs {outputs} (a segmenter is not covered)."
        )
    shape = tuple(model.input_shape[1:])
    if len(shape) != 3 or shape[-1] != 3:
        raise ValueError(
            f"The model's input is {shape}; export needs one (H, W, 3) "
            "image input."
        )
    dynamic = None in shape[:2]
    if image_size is not None:
        size = _pair(image_size)
        if not dynamic and size != shape[:2]:
            raise ValueError(
                f"The model is built for {shape[0]}x{shape[1]} images; "
                f"image_size {size[0]}x{size[1]} applies only to a model "
                "of any input size (rebuild it at that size with "
                "load_model(..., image_size=...))."
            )
        shape = (*size, 3)
    elif dynamic and (
        format == "litert" or format in FIXED_SIZE.get(_backend(), ())
    ):
        raise ValueError(
            f"The model takes any input size, but a {format} export from "
            f"{_backend()} needs a fixed one: give "
            "image_size (keras-swin export --image-size N or H,W)."
        )
    return keras.InputSpec(shape=(None, *shape), dtype="float32")


def export_model(
    model,
    path,
    format: str = "saved_model",
    *,
    image_size=None,
    quantize: str | None = None,
    fuse_attention: bool = False,
    verbose: bool = False,
) -> str:
    """Writes `model` as an inference artefact of `format` at `path`.

    The artefact takes one NHWC float32 image batch (B, H, W, 3), B
    dynamic, and returns the logits (B, classes) as first output; a dense
    backbone (`SwinBackbone`, `load_checkpoint` of a detection or
    segmentation checkpoint) returns its pyramid maps (B, h_i, w_i, C_i),
    named as the model's outputs ("P2" ... "P5"). A Swin
    built for any size keeps a dynamic H and W in SavedModel, ONNX and
    OpenVINO exported from TensorFlow (padding, shift and masks in the
    graph); with `image_size` (required for LiteRT and for the PyTorch
    and JAX exporters, `FIXED_SIZE`) it is fixed to that size. The
    artefact is written beside `path` and moved there when complete: a
    failed export leaves nothing at `path`.

    Args:
        model: a Keras classifier or dense backbone with one (H, W, 3)
            input.
        path: a folder for "saved_model", else a file ending in `.onnx`,
            `.tflite` or `.xml` (OpenVINO also writes the `.bin` beside).
        format: one of `FORMATS`; see `SUPPORTED` for the backends.
        image_size: N or (H, W): fix the size of an any-size model.
        quantize: "int8": LiteRT dynamic-range int8 (TensorFlow's
            converter) or ONNX dynamic int8 (onnxruntime.quantization).
        fuse_attention: ONNX from PyTorch only: every attention layer
            becomes one ONNX Runtime `com.microsoft.Attention` node (q, k,
            v projections, scale, relative bias and shift mask, softmax
            and the weighted sum in one kernel). The file then runs in
            ONNX Runtime only; every attention layer of the model must
            be fused, or nothing is written. Not for Swin V2 (cosine
            attention has no such kernel) nor with `quantize`.
        verbose: Keras' export messages.

    Returns:
        `path`.

    Raises:
        ValueError: unknown or unsupported format, backend or quantize,
            wrong suffix, a size the model cannot take, `fuse_attention`
            where it does not apply.
        RuntimeError: `fuse_attention` fused fewer attention layers than
            the model has (nothing is written).
        OSError: `path` cannot be written (checked before exporting).

    Example:
        >>> model = load_model("tests/golden/swin_official/tiny_w4_64/"
        ...                    "checkpoint.pth")
        >>> export_model(model, "tiny.onnx", "onnx")
        'tiny.onnx'
    """
    check_supported(format)
    if quantize is not None and quantize not in QUANTIZE.get(format, ()):
        offered = [f"{f}: {', '.join(q)}" for f, q in QUANTIZE.items()]
        raise ValueError(
            f"No quantize={quantize!r} for {format}; offered: "
            f"{'; '.join(offered)}."
        )
    fused = _attention_layers(model, format, quantize) if fuse_attention else 0
    path = os.fspath(path)
    check_output(path, format)
    spec = _signature(model, format, image_size)
    # The artefact is written into a temporary folder beside `path`,
    # named as `keras_swin.utils.atomic_path` names its temporaries (so
    # the next export removes what a killed one left), and moved into
    # place when complete.
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    remove_stale_temporaries(path)
    name = os.path.basename(os.path.abspath(path))
    work = tempfile.mkdtemp(
        prefix=f"{_temp_prefix(name)}{os.getpid()}-", dir=folder
    )
    try:
        out = os.path.join(work, name)
        kwargs = {}
        if format == "onnx" and _backend() == "tensorflow":
            _register_tf2onnx_erfc()
        if quantize and format == "litert":
            import tensorflow as tf

            kwargs["optimizations"] = [tf.lite.Optimize.DEFAULT]
        renamed = None
        if _backend() == "torch" and format == "openvino":
            if isinstance(model.output, dict):
                # Keras' PyTorch-to-OpenVINO path traces with
                # torch.jit.trace, which refuses a dict output: the maps
                # go out as a list and get their names back below.
                import keras

                renamed = _output_names(model)
                model = keras.Model(
                    model.inputs, [model.output[k] for k in renamed]
                )
            _warm_up(model, spec)
        if format == "onnx" and _backend() == "torch":
            _torch_onnx(model, out, spec, separate_projections=bool(fused))
            if fused:
                _fuse_attention(out, fused)
        else:
            model.export(
                out,
                format=_KERAS_FORMATS[format],
                verbose=verbose,
                input_signature=[spec],
                **kwargs,
            )
        if renamed is not None:
            _name_openvino_outputs(out, renamed)
        if quantize and format == "onnx":
            from onnxruntime.quantization import QuantType, quantize_dynamic

            fp32 = out + ".fp32.onnx"
            os.replace(out, fp32)
            quantize_dynamic(fp32, out, weight_type=QuantType.QInt8)
        _move_into_place(out, path, format)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return path


def check_fuse_attention(
    format: str, quantize: str | None = None, backend: str | None = None
) -> None:
    """Raises a ValueError if `fuse_attention` cannot apply to this export.

    Args:
        format: one of `FORMATS` (only "onnx" is fused).
        quantize: the export's `quantize` (fusion and int8 do not combine).
        backend: a Keras backend; default the current one
            (`FUSE_ATTENTION_BACKENDS`).

    Example:
        >>> check_fuse_attention("onnx", backend="torch")
        >>> check_fuse_attention("openvino", backend="torch")
        Traceback (most recent call last):
        ValueError: fuse_attention rewrites ONNX exported from the torch ...
    """
    backend = backend or _backend()
    if format != "onnx" or backend not in FUSE_ATTENTION_BACKENDS:
        raise ValueError(
            "fuse_attention rewrites ONNX exported from the "
            f"{', '.join(FUSE_ATTENTION_BACKENDS)} backend; got {format} "
            f"from {backend} (pick the backend with KERAS_BACKEND or "
            "keras-swin --backend)."
        )
    if quantize:
        raise ValueError(
            "fuse_attention and quantize do not combine: quantize the "
            "plain ONNX export."
        )


def _attention_layers(model, format: str, quantize) -> int:
    """The number of attention layers `fuse_attention` must fuse.

    Raises:
        ValueError: `check_fuse_attention`'s cases, a Swin V2 attention,
            or no attention at all.
    """
    from keras_swin.layers.attention import Attention
    from keras_swin.layers.window_attention_v2 import WindowAttentionV2

    check_fuse_attention(format, quantize)
    layers = [
        layer
        for layer in model._flatten_layers(include_self=False)
        if isinstance(layer, Attention)
    ]
    cosine = [lay.name for lay in layers if isinstance(lay, WindowAttentionV2)]
    if cosine:
        raise ValueError(
            "fuse_attention cannot fuse Swin V2's scaled cosine attention "
            f"({cosine[0]} and {len(cosine) - 1} more): ONNX Runtime's "
            "Attention kernel has no per-head temperature. Export it "
            "without fuse_attention."
        )
    if not layers:
        raise ValueError("fuse_attention: the model has no attention layer.")
    return len(layers)


def _fuse_attention(path: str, expected: int) -> None:
    """Rewrites the ONNX file at `path` with `com.microsoft.Attention`.

    onnxscript's ONNX Runtime rewriter, only its attention rules (its
    SkipLayerNormalization fusion measured slower on CPU: ONNX Runtime's
    own LayerNormalization and BiasGelu fusions apply at load). Raises a
    RuntimeError, leaving `path` as it was, when fewer than `expected`
    attention nodes result.
    """
    import onnx_ir
    from onnx_ir.passes.common import ShapeInferencePass
    from onnxscript.optimizer import optimize
    from onnxscript.rewriter.ort_fusions import (
        attention,
        mha,
        mha_bias,
        sdpa,
        shape_optimization,
    )

    model = onnx_ir.load(path)
    ShapeInferencePass()(model)
    optimize(model)
    shape_optimization.rules.apply_to_model(model)
    optimize(model)
    sdpa.fuse_sdpa(model, apply_shape_inference=True)
    mha.fuse_mha1(model)
    mha.fuse_mha2(model)
    mha_bias.fuse_mha_bias(model)
    attention.fuse_attention(model)
    optimize(model)
    found = sum(
        node.op_type == "Attention" and node.domain == "com.microsoft"
        for node in model.graph
    )
    if found != expected:
        raise RuntimeError(
            f"fuse_attention fused {found} of the model's {expected} "
            "attention layers (onnxscript's rewriter did not match the "
            "rest); export without fuse_attention."
        )
    onnx_ir.save(model, path + ".fused")
    os.replace(path + ".fused", path)


def _name_openvino_outputs(xml: str, names: list[str]) -> None:
    """Gives the outputs of the OpenVINO model at `xml` these names, in
    order, and writes it back in float32 (`.xml` and `.bin`)."""
    import openvino

    ov_model = openvino.Core().read_model(xml)
    for port, name in zip(ov_model.outputs, names, strict=True):
        port.get_tensor().set_names({name})
    stem = os.path.splitext(xml)[0]
    openvino.save_model(ov_model, stem + ".named.xml", compress_to_fp16=False)
    os.replace(stem + ".named.bin", stem + ".bin")
    os.replace(stem + ".named.xml", xml)


def _move_into_place(out: str, path: str, format: str) -> None:
    if format == "saved_model":
        if os.path.isdir(path):
            os.rmdir(path)  # empty: checked before the export
        os.replace(out, path)
    elif format == "openvino":
        # The weights first: an .xml at `path` means a complete model.
        bin_out = os.path.splitext(out)[0] + ".bin"
        os.replace(bin_out, os.path.splitext(path)[0] + ".bin")
        os.replace(out, path)
    else:
        os.replace(out, path)


def _warm_up(model, spec) -> None:
    """One eager call at the export size before a trace (see _torch_onnx)."""
    import numpy as np

    height, width = spec.shape[1:3]
    model(np.zeros((1, height, width, 3), np.float32), training=False)


def _output_names(model) -> list[str]:
    """The names of the exported outputs: a backbone's dict keys ("P2"
    ... "P5", as TensorFlow's exporters name them), else "logits"."""
    if isinstance(model.output, dict):
        return list(model.output)
    return ["logits"]


def _torch_onnx(
    model, out: str, spec, *, separate_projections: bool = False
) -> None:
    """ONNX from PyTorch through torch.export, with a dynamic batch.

    Keras 3.15 sends a signature with a dynamic batch to the TorchScript
    exporter, which cannot convert Keras' LayerNorm; torch.export (the
    "dynamo" exporter Keras uses for static shapes only) takes the batch
    as a symbolic dimension. `separate_projections`: attention traced
    in `layers.attention.separate_projections` (for `_fuse_attention`).
    """
    import contextlib

    import torch

    from keras_swin.layers import attention

    class _Images(torch.nn.Module):
        def __init__(self, wrapped):
            super().__init__()
            self.wrapped = wrapped

        def forward(self, images):
            return self.wrapped(images, training=False)

    height, width = spec.shape[1:3]
    example = torch.zeros((2, height, width, 3), dtype=torch.float32)
    module = _Images(model).eval()
    layout = (
        attention.separate_projections()
        if separate_projections
        else contextlib.nullcontext()
    )
    with torch.no_grad(), layout:
        # One eager call first: the layers' cached constants
        # (keras_swin.layers.windows.constant) must be real tensors, not
        # the fake ones a first call inside torch.export would cache.
        module(example)
        program = torch.onnx.export(
            module,
            (example,),
            dynamo=True,
            input_names=["images"],
            output_names=_output_names(model),
            dynamic_shapes=({0: torch.export.Dim("batch")},),
            verbose=False,
        )
    program.save(out)


_ERFC_REGISTERED = False


def _register_tf2onnx_erfc() -> None:
    """tf2onnx 1.17 has no `Erfc`: convert it as `1 - Erf(x)`."""
    global _ERFC_REGISTERED
    if _ERFC_REGISTERED:
        return
    import numpy as np
    from tf2onnx.handler import tf_op

    @tf_op("Erfc")
    class _Erfc:  # noqa: F841 (registered by the decorator)
        @classmethod
        def version_9(cls, ctx, node, **kwargs):
            dtype = ctx.get_dtype(node.input[0])
            np_dtype = {1: np.float32, 10: np.float16, 11: np.float64}[dtype]
            node.type = "Erf"
            one = ctx.make_const(
                f"{node.name}_one", np.array(1, dtype=np_dtype)
            )
            ctx.insert_new_node_on_output(
                "Sub",
                node.output[0],
                name=f"{node.name}_erfc",
                inputs=[one.output[0], node.output[0]],
            )

    _ERFC_REGISTERED = True


def run_exported(path, format: str, images, *, all_outputs: bool = False):
    """The outputs of an exported artefact, run in its runtime.

    SavedModel: TensorFlow, through the `serving_default` signature;
    ONNX: onnxruntime (CPU); LiteRT: ai-edge-litert's interpreter (the
    batch is resized to the images'); OpenVINO: OpenVINO on CPU.

    Args:
        path: what `export_model` wrote.
        format: its format.
        images: (B, H, W, 3) float32, preprocessed as for the model.
        all_outputs: return every output by name (a dense backbone's
            pyramid maps), not only the first.

    Returns:
        The first output, the logits (B, classes) float32; or with
        `all_outputs` a dict {name: array} of every output (names as the
        Keras model's outputs: "P2" ... "P5" for a backbone).

    Example:
        >>> run_exported("tiny.onnx", "onnx", np.zeros((2, 64, 64, 3),
        ...              "float32")).shape
        (2, 5)
    """
    import numpy as np

    path = os.fspath(path)
    images = np.ascontiguousarray(images, dtype=np.float32)
    if format not in FORMATS:
        check_supported(format)
    if format == "saved_model":
        import tensorflow as tf

        serve = tf.saved_model.load(path).signatures["serving_default"]
        (name,) = serve.structured_input_signature[1]
        results = serve(**{name: tf.constant(images)})
        # A signature's outputs are a dict without the model's order:
        # natural name order, which is the pyramid's ("P2" ... "P5").
        order = sorted(serve.structured_outputs, key=_natural)
        outputs = {k: np.asarray(results[k]) for k in order}
    elif format == "onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(
            path, providers=["CPUExecutionProvider"]
        )
        name = session.get_inputs()[0].name
        names = [o.name for o in session.get_outputs()]
        values = session.run(None, {name: images})
        outputs = {k: np.asarray(v) for k, v in zip(names, values, strict=True)}
    elif format == "litert":
        outputs = _run_litert(path, images)
    else:
        import openvino

        # float32 as exported: OpenVINO's CPU plugin otherwise runs in
        # bfloat16 where the CPU has it (errors near 1e-2 in the logits).
        compiled = openvino.Core().compile_model(
            path, "CPU", {"INFERENCE_PRECISION_HINT": "f32"}
        )
        results = compiled(images)
        # A port may have no name (a classifier traced from PyTorch).
        outputs = {
            (sorted(port.get_names()) or [f"output_{i}"])[0]: np.asarray(
                results[port]
            )
            for i, port in enumerate(compiled.outputs)
        }
    if all_outputs:
        return outputs
    return next(iter(outputs.values()))


def _natural(name: str) -> tuple:
    """Sort key: "P2" < "P10", digits compared as numbers."""
    import re

    return tuple(
        int(part) if part.isdigit() else part
        for part in re.split(r"(\d+)", name)
    )


def _run_litert(path: str, images) -> dict:
    """Every output of a LiteRT model by name, in the signature's order.

    The interpreter's output list is in tensor order, not the model's;
    the serving signature names them (a backbone's "P2" ... "P5").
    """
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=path)
    (detail,) = interpreter.get_input_details()
    if tuple(detail["shape"]) != images.shape:
        interpreter.resize_tensor_input(detail["index"], images.shape)
    interpreter.allocate_tensors()
    signatures = interpreter.get_signature_list()
    if len(signatures) == 1:
        (key,) = signatures
        runner = interpreter.get_signature_runner(key)
        (name,) = signatures[key]["inputs"]
        results = runner(**{name: images})
        return {k: np.asarray(results[k]) for k in signatures[key]["outputs"]}
    interpreter.set_tensor(detail["index"], images)
    interpreter.invoke()
    return {
        d["name"]: np.asarray(interpreter.get_tensor(d["index"]))
        for d in interpreter.get_output_details()
    }
