"""`keras_swin.export` and `keras-swin export`, checked by numbers.

Every format is run in its own runtime on the official golden
checkpoints: TensorFlow (SavedModel, also through `.serve`), onnxruntime
(ONNX), ai-edge-litert (LiteRT), OpenVINO. float32 logits must match the
golden ones within 1e-5 * max(1, max|ref|) (`helpers.assert_parity`);
a Swin exported for any size is checked at 224 px (golden), 160 px and
200x208 px (not multiples of 32) against the Keras model itself.

Each backend exports what Keras supports there (`export.SUPPORTED`):
the TensorFlow leg the four formats (Swin of any size: SavedModel, ONNX
and OpenVINO with a dynamic height and width; LiteRT at a fixed size),
the PyTorch leg ONNX and OpenVINO (fixed size, dynamic batch), the JAX
leg SavedModel (fixed size). The int8 variants are measured and printed,
not asserted beyond sanity.
"""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
from helpers import BACKEND, assert_parity, golden
from test_pretrained import registry  # noqa: F401 (a fixture)

import keras_swin.layers
from keras_swin import export
from keras_swin.cli import main

SWIN64 = golden("swin_official", "tiny_w4_64")  # 5 classes, window 4
SWIN224 = golden("swin_official", "tiny_w7_224")  # 10 classes, window 7
VIT = golden("vit_official", "tiny_token_224")  # 10 classes
#: Sizes the any-size Swin is checked at besides the golden 224 px.
OTHER_SIZES = [(160, 160), (200, 208)]


def _case(folder):
    return np.load(folder / "inputs_nhwc.npy"), np.load(folder / "logits.npy")


def _formats(*names):
    """Those of `names` that this backend exports."""
    return [name for name in names if name in export.SUPPORTED[BACKEND]]


def _keras_logits(model, x):
    return keras.ops.convert_to_numpy(model(x, training=False))


def _fixed_set(size: int) -> np.ndarray:
    """The fixed image set of the int8 figures: 16 seeded normal images."""
    return np.random.default_rng(0).standard_normal((16, size, size, 3))


def _int8_figures(fp32, int8) -> dict:
    return {
        "top1_agreement": float(np.mean(fp32.argmax(-1) == int8.argmax(-1))),
        "max_logit_error": float(np.max(np.abs(fp32 - int8))),
    }


# -- errors: fast, no export ----------------------------------------------


def test_unknown_and_unsupported_formats_are_named():
    with pytest.raises(ValueError, match="Unknown export format 'tflite'"):
        export.check_supported("tflite")
    with pytest.raises(ValueError) as error:
        export.check_supported("litert", "jax")
    message = str(error.value)
    assert "jax exports: saved_model" in message
    assert "litert is exported from: tensorflow" in message
    with pytest.raises(ValueError, match="torch_xla"):
        export.check_supported("saved_model", "torch")
    for backend, formats in export.SUPPORTED.items():
        for name in formats:
            export.check_supported(name, backend)


def test_output_paths_are_checked_before_exporting(tmp_path):
    with pytest.raises(ValueError, match=r"ending in \.tflite"):
        export.check_output(tmp_path / "m.onnx", "litert")
    with pytest.raises(ValueError, match=r"ending in \.xml"):
        export.check_output(tmp_path / "m.bin", "openvino")
    full = tmp_path / "full"
    full.mkdir()
    (full / "x").write_text("x")
    with pytest.raises(FileExistsError, match="not empty"):
        export.check_output(full, "saved_model")
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(NotADirectoryError):
        export.check_output(a_file / "m.onnx", "onnx")
    export.check_output(tmp_path / "new" / "m.onnx", "onnx")
    assert not (tmp_path / "new").exists()


def test_cli_errors_are_one_line(tmp_path, capsys):
    pth = str(SWIN64 / "checkpoint.pth")
    with pytest.raises(SystemExit) as exited:
        main(["export", pth, "--format", "tflite", "--output", "m"])
    assert exited.value.code == 2
    capsys.readouterr()
    for name in export.SUPPORTED[BACKEND]:
        if export.SUFFIXES[name]:  # a file format: give it another suffix
            out = str(tmp_path / "m.keras")
            assert main(["export", pth, "--format", name, "--output", out]) == 1
            err = capsys.readouterr().err
            assert err.startswith(f"keras-swin export: A {name} export is")
    missing = str(tmp_path / "nope.pth")
    name = export.SUPPORTED[BACKEND][0]
    out = str(tmp_path / f"m{export.SUFFIXES[name]}")
    assert main(["export", missing, "--format", name, "--output", out]) == 1
    err = capsys.readouterr().err
    assert "No such checkpoint file" in err and "nope.pth" in err
    unsupported = [
        f for f in export.FORMATS if f not in export.SUPPORTED[BACKEND]
    ]
    for name in unsupported:
        path = str(tmp_path / f"m{export.SUFFIXES[name]}")
        assert main(["export", pth, "--format", name, "--output", path]) == 1
        err = capsys.readouterr().err
        assert f"Cannot export {name} from the {BACKEND} backend" in err
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_a_size_the_model_cannot_take_is_refused():
    model = export.load_model(SWIN64 / "checkpoint.pth")  # fixed 64 px
    with pytest.raises(ValueError, match="built for 64x64 images"):
        export._signature(model, "onnx", 96)
    spec = export._signature(model, "onnx", None)
    assert tuple(spec.shape) == (None, 64, 64, 3)
    any_size = export.load_model(SWIN64 / "checkpoint.pth", any_size=True)
    assert any_size.input_shape == (None, None, None, 3)
    with pytest.raises(ValueError, match="needs a fixed one: give image_size"):
        export._signature(any_size, "litert", None)
    assert tuple(export._signature(any_size, "litert", (72, 80)).shape) == (
        None,
        72,
        80,
        3,
    )


def test_only_classifiers_are_exported(tmp_path):
    images = keras.Input((32, 32, 3))
    maps = keras.layers.Conv2D(4, 1)(images)
    name = export.SUPPORTED[BACKEND][0]
    with pytest.raises(ValueError, match="Export covers classifiers"):
        export.export_model(
            keras.Model(images, maps), tmp_path / f"m{export.SUFFIXES[name]}",
            name,
        )  # fmt: skip
    assert list(tmp_path.iterdir()) == []


def test_a_failed_export_leaves_nothing(tmp_path, monkeypatch):
    model = export.load_model(SWIN64 / "checkpoint.pth")

    def broken(*args, **kwargs):
        raise RuntimeError("exporter failed")

    monkeypatch.setattr(model, "export", broken)
    monkeypatch.setattr(export, "_torch_onnx", broken)
    name = export.SUPPORTED[BACKEND][0]
    path = tmp_path / f"m{export.SUFFIXES[name]}"
    with pytest.raises(RuntimeError, match="exporter failed"):
        export.export_model(model, path, name)
    assert list(tmp_path.iterdir()) == []


# -- TensorFlow: the four formats -----------------------------------------


@pytest.fixture(scope="module")
def any_size_swin():
    return export.load_model(SWIN224 / "checkpoint.pth", any_size=True)


@pytest.fixture(scope="module")
def dynamic_exports(any_size_swin, tmp_path_factory):
    """The any-size Swin in every format that keeps H and W dynamic."""
    folder = tmp_path_factory.mktemp("dynamic")
    paths = {}
    for name in _formats("saved_model", "onnx", "openvino"):
        if name in export.FIXED_SIZE.get(BACKEND, ()):
            continue
        paths[name] = export.export_model(
            any_size_swin, folder / f"swin{export.SUFFIXES[name]}", name
        )
    return paths


@pytest.mark.slow
@pytest.mark.parametrize("name", ["saved_model", "onnx", "openvino"])
def test_any_size_swin_keeps_height_and_width_dynamic(
    name, any_size_swin, dynamic_exports
):
    if name not in dynamic_exports:
        pytest.skip(
            f"{name} from {BACKEND}: "
            + (
                "exported at a fixed size only (export.FIXED_SIZE)"
                if name in export.SUPPORTED[BACKEND]
                else "not exported by Keras here (export.SUPPORTED)"
            )
        )
    x, reference = _case(SWIN224)
    path = dynamic_exports[name]
    diffs = {224: assert_parity(
        export.run_exported(path, name, x), reference, what=f"{name} 224"
    )}  # fmt: skip
    rng = np.random.default_rng(1)
    # OpenVINO compiles each new shape (3 s a size): one other size.
    sizes = OTHER_SIZES[-1:] if name == "openvino" else OTHER_SIZES
    for height, width in sizes:
        images = rng.standard_normal((2, height, width, 3)).astype("float32")
        diffs[(height, width)] = assert_parity(
            export.run_exported(path, name, images),
            _keras_logits(any_size_swin, images),
            what=f"{name} {height}x{width}",
        )
    print(f"\n{BACKEND} {name} any-size max abs error: {diffs}")


@pytest.mark.slow
def test_saved_model_serves_through_its_signatures(dynamic_exports):
    if "saved_model" not in dynamic_exports:
        pytest.skip(f"no dynamic SavedModel from {BACKEND}")
    import tensorflow as tf

    x, reference = _case(SWIN224)
    loaded = tf.saved_model.load(str(dynamic_exports["saved_model"]))
    assert_parity(np.asarray(loaded.serve(x)), reference, what="serve")
    serving = loaded.signatures["serving_default"]
    (spec,) = serving.structured_input_signature[1].values()
    assert spec.shape.as_list() == [None, None, None, 3]
    assert spec.dtype == tf.float32
    outputs = serving(**{spec.name: tf.constant(x)})
    assert_parity(
        np.asarray(outputs[sorted(outputs)[0]]), reference, what="signature"
    )


@pytest.fixture(scope="module")
def fixed_exports(tmp_path_factory):
    """The 64 px Swin and the ViT, exported through the command line."""
    folder = tmp_path_factory.mktemp("fixed")
    paths = {}
    for name in _formats("litert", "onnx", "openvino", "saved_model"):
        if name in ("onnx", "openvino", "saved_model") and name not in (
            export.FIXED_SIZE.get(BACKEND, ())
        ):
            continue  # TensorFlow: checked at dynamic sizes above
        path = str(folder / f"swin64{export.SUFFIXES[name]}")
        argv = ["export", str(SWIN64 / "checkpoint.pth"), "--format", name]
        assert main([*argv, "--output", path]) == 0
        paths[name] = path
    return paths


@pytest.mark.slow
def test_fixed_size_exports_match_the_golden_logits(fixed_exports, capsys):
    if not fixed_exports:
        pytest.skip(f"{BACKEND} exports no fixed-size format here")
    x, reference = _case(SWIN64)
    for name, path in fixed_exports.items():
        for batch in (1, 2):  # the batch is dynamic
            diff = assert_parity(
                export.run_exported(path, name, x[:batch]),
                reference[:batch],
                what=f"{name} batch {batch}",
            )
        print(f"\n{BACKEND} {name} swin 64 px max abs error: {diff:.3g}")


@pytest.mark.slow
def test_vit_exports_at_its_size(tmp_path):
    name = _formats("litert", "onnx", "saved_model")[0]
    model = export.load_model(VIT / "checkpoint.npz")
    path = export.export_model(
        model, tmp_path / f"vit{export.SUFFIXES[name]}", name
    )
    x, reference = _case(VIT)
    diff = assert_parity(export.run_exported(path, name, x), reference)
    print(f"\n{BACKEND} {name} vit 224 px max abs error: {diff:.3g}")


@pytest.mark.slow
def test_int8_variants_are_measured(tmp_path, fixed_exports):
    """Top-1 agreement and max logit error against float32: recorded."""
    offered = [n for n in _formats("litert", "onnx") if n in export.QUANTIZE]
    if BACKEND == "tensorflow":
        offered = ["litert"]  # ONNX int8 is the same quantiser in torch's leg
    if not offered:
        pytest.skip(f"{BACKEND} exports no format with an int8 variant")
    model = export.load_model(SWIN64 / "checkpoint.pth")
    images = _fixed_set(64).astype("float32")
    fp32 = _keras_logits(model, images)
    figures = {}
    for name in offered:
        path = export.export_model(
            model, tmp_path / f"q{export.SUFFIXES[name]}", name, quantize="int8"
        )
        int8 = export.run_exported(path, name, images)
        assert int8.shape == fp32.shape and np.all(np.isfinite(int8))
        figures[name] = _int8_figures(fp32, int8)
    print(f"\n{BACKEND} int8 vs float32: {json.dumps(figures)}")


def test_unknown_quantize_is_refused(tmp_path):
    model = export.load_model(SWIN64 / "checkpoint.pth")
    name = next(
        n for n in export.SUPPORTED[BACKEND] if n not in export.QUANTIZE
    )
    path = tmp_path / f"m{export.SUFFIXES[name]}"
    with pytest.raises(ValueError, match=f"No quantize='int8' for {name}"):
        export.export_model(model, path, name, quantize="int8")
    assert list(tmp_path.iterdir()) == []


# -- model sources: a registered name, a .keras file ---------------------

plumbing = pytest.mark.skipif(
    BACKEND != "torch",
    reason="loading is backend-independent plumbing: runs in the PyTorch leg",
)


@plumbing
@pytest.mark.usefixtures("registry")
def test_a_registered_name_loads_with_a_logits_head():
    """`build_pretrained` gives softmax by default; export wants logits."""
    from test_pretrained import NAME

    x, reference = _case(SWIN224)
    assert_parity(_keras_logits(export.load_model(NAME), x), reference)
    any_size = export.load_model(NAME, any_size=True)
    assert any_size.input_shape == (None, None, None, 3)


@plumbing
def test_a_keras_file_is_exported_as_saved_with_logits():
    path = golden("digits", "model.keras")
    model = export.load_model(path)
    head = model.get_layer("head")
    assert keras.activations.serialize(head.activation) == "linear"
    size = model.input_shape[1]
    with pytest.raises(ValueError, match="cannot be rebuilt"):
        export.load_model(path, image_size=size + 8)
    with pytest.raises(ValueError, match="not both"):
        export.load_model(path, image_size=size, any_size=True)


# -- dense backbones: the pyramid maps ------------------------------------

DET = golden("swin_det_official", "det_e24_w7_250x333")  # 4 maps, 250x333


@pytest.mark.slow
def test_dense_backbone_exports_its_pyramid_maps(tmp_path, capsys):
    """The official detection backbone (any size, 4 outputs P2 ... P5)
    in every format of this backend, each output by name against the
    golden maps of the official code at 250x333 (padded inside)."""
    model = export.load_model(DET / "checkpoint.pth")
    assert model.input_shape == (None, None, None, 3)
    x = np.load(DET / "inputs_nhwc.npy")
    golden_maps = np.load(DET / "outputs_nhwc.npz")
    expected = {f"P{i + 2}": golden_maps[f"out{i}"] for i in range(4)}
    for name in export.SUPPORTED[BACKEND]:
        fixed = name == "litert" or name in export.FIXED_SIZE.get(BACKEND, ())
        path = str(tmp_path / f"det{export.SUFFIXES[name]}")
        if name == export.SUPPORTED[BACKEND][0]:  # once through the command
            argv = ["export", str(DET / "checkpoint.pth"), "--format", name]
            if fixed:
                argv += ["--image-size", "250,333"]
            assert main([*argv, "--output", path]) == 0
            printed = capsys.readouterr().out
            assert "maps P2 (B, h, w, 24), P3 (B, h, w, 48), " in printed
        else:
            export.export_model(
                model, path, name, image_size=(250, 333) if fixed else None
            )
        got = export.run_exported(path, name, x, all_outputs=True)
        assert list(got) == list(expected), name
        for key, reference in expected.items():
            diff = assert_parity(got[key], reference, what=f"{name} {key}")
        print(f"\n{BACKEND} {name} backbone P5 max abs error: {diff:.3g}")
        # The first output alone, as for a classifier.
        first = export.run_exported(path, name, x)
        np.testing.assert_array_equal(first, got["P2"])
    if BACKEND in export.FUSE_ATTENTION_BACKENDS:
        # Fused attention: the padded windows of the "pad" window mode.
        path = str(tmp_path / "det_fused.onnx")
        export.export_model(
            model, path, "onnx", image_size=(250, 333), fuse_attention=True
        )
        nodes = _fused_nodes(path)
        assert nodes.get("com.microsoft.Attention") == _attentions(model)
        got = export.run_exported(path, "onnx", x, all_outputs=True)
        assert list(got) == list(expected)
        for key, reference in expected.items():
            diff = assert_parity(got[key], reference, what=f"fused {key}")
        print(f"\n{BACKEND} fused backbone P5 max abs error: {diff:.3g}")


# -- fused attention (ONNX Runtime's com.microsoft.Attention) -------------


def _fused_nodes(path) -> dict:
    """Node counts by op type of the ONNX file at `path`."""
    import onnx

    counts: dict = {}
    for node in onnx.load(str(path), load_external_data=False).graph.node:
        key = f"{node.domain}.{node.op_type}" if node.domain else node.op_type
        counts[key] = counts.get(key, 0) + 1
    return counts


def _attentions(model) -> int:
    """The model's attention layers (Swin: the sum of its depths)."""
    layers = model._flatten_layers(include_self=False)
    count = sum(isinstance(lay, keras_swin.layers.Attention) for lay in layers)
    assert count > 0
    return count


def test_fuse_attention_is_refused_where_it_does_not_apply(tmp_path):
    out = tmp_path / "m.onnx"
    model = export.load_model(SWIN64 / "checkpoint.pth")
    with pytest.raises(ValueError, match="rewrites ONNX exported from the"):
        export.check_fuse_attention("openvino", backend="torch")
    with pytest.raises(ValueError, match="got onnx from tensorflow"):
        export.check_fuse_attention("onnx", backend="tensorflow")
    with pytest.raises(ValueError, match="do not combine"):
        export.check_fuse_attention("onnx", "int8", backend="torch")
    export.check_fuse_attention("onnx", backend="torch")
    if BACKEND not in export.FUSE_ATTENTION_BACKENDS:
        with pytest.raises(ValueError, match=rf"onnx from (the )?{BACKEND}"):
            export.export_model(model, out, "onnx", fuse_attention=True)
        name = export.SUPPORTED[BACKEND][0]
        path = str(tmp_path / f"m{export.SUFFIXES[name]}")
        argv = ["export", str(SWIN64 / "checkpoint.pth"), "--format", name]
        assert main([*argv, "--output", path, "--fuse-attention"]) == 1
    else:
        from keras_swin.models import SwinTransformerV2

        v2 = SwinTransformerV2(
            input_shape=(32, 32, 3),
            patch_size=4,
            embed_dim=16,
            depths=(2,),
            num_heads=(2,),
            window_size=4,
            classes=3,
        )
        with pytest.raises(ValueError, match="Swin V2's scaled cosine"):
            export.export_model(v2, out, "onnx", fuse_attention=True)
    assert not out.exists()


@pytest.mark.skipif(
    BACKEND not in export.FUSE_ATTENTION_BACKENDS,
    reason=f"fuse_attention rewrites ONNX exported from "
    f"{export.FUSE_ATTENTION_BACKENDS}",
)
@pytest.mark.parametrize("case", ["swin64", "vit"])
def test_fused_attention_matches_the_golden_logits(tmp_path, case, capsys):
    """Every attention layer is one com.microsoft.Attention node (Swin's
    shifted blocks with their relative bias and mask, ViT's global one),
    the batch stays dynamic, and the logits are the official ones."""
    folder, checkpoint = {
        "swin64": (SWIN64, "checkpoint.pth"),
        "vit": (VIT, "checkpoint.npz"),
    }[case]
    path = str(tmp_path / f"{case}.onnx")
    argv = ["export", str(folder / checkpoint), "--format", "onnx"]
    assert main([*argv, "--output", path, "--fuse-attention"]) == 0
    assert "fused attention, ONNX Runtime only" in capsys.readouterr().out
    model = export.load_model(folder / checkpoint)
    nodes = _fused_nodes(path)
    assert nodes.get("com.microsoft.Attention") == _attentions(model), nodes
    assert "Softmax" not in nodes, nodes
    x, reference = _case(folder)
    for batch in sorted({1, len(x)}):
        diff = assert_parity(
            export.run_exported(path, "onnx", x[:batch]),
            reference[:batch],
            what=f"fused {case} batch {batch}",
        )
    print(f"\n{BACKEND} fused-attention ONNX {case} max abs error: {diff:.3g}")


@pytest.mark.skipif(
    BACKEND not in export.FUSE_ATTENTION_BACKENDS,
    reason="fuse_attention runs on the torch backend only",
)
def test_an_incomplete_fusion_writes_nothing(tmp_path, monkeypatch):
    from onnxscript.rewriter.ort_fusions import attention

    monkeypatch.setattr(attention, "fuse_attention", lambda model: 0)
    model = export.load_model(SWIN64 / "checkpoint.pth")
    out = tmp_path / "m.onnx"
    with pytest.raises(RuntimeError, match=r"fused 0 of the model's 8"):
        export.export_model(model, out, "onnx", fuse_attention=True)
    assert list(tmp_path.iterdir()) == []
