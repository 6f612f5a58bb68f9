"""keras_swin.imagenet: label tables, decoding, preprocessing, loading."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from helpers import to_numpy
from PIL import Image

from keras_swin import imagenet


# ---------------------------------------------------------------- labels
def test_imagenet1k_names():
    names = imagenet.class_names("imagenet1k")
    assert len(names) == 1000
    assert len({wnid for wnid, _ in names}) == 1000
    assert all(w.startswith("n") and len(w) == 9 for w, _ in names)
    # keras.applications-style names: first lemma, spaces -> underscores
    assert names[0] == ("n01440764", "tench")
    assert names[1] == ("n01443537", "goldfish")
    assert names[207] == ("n02099601", "golden_retriever")
    assert names[281] == ("n02123045", "tabby")
    assert names[999] == ("n15075141", "toilet_tissue")
    assert names[134][1] == names[517][1] == "crane"  # names repeat


def test_default_label_set_and_aliases():
    assert imagenet.class_names() == imagenet.class_names("imagenet1k")
    assert imagenet.class_names("ImageNet-1K")[0] == ("n01440764", "tench")
    assert imagenet.class_names("imagenet_22k")[359][1] == "tench"


def test_class_names_returns_a_new_list():
    names = imagenet.class_names()
    names[0] = ("x", "y")
    assert imagenet.class_names()[0] == ("n01440764", "tench")


def test_unknown_label_set():
    with pytest.raises(ValueError, match="imagenet1k.*imagenet21k.*22k"):
        imagenet.class_names("imagenet12k")


def test_22k_and_21k_tables():
    in22k = [w for w, _ in imagenet.class_names("imagenet22k")]
    in21k = [w for w, _ in imagenet.class_names("imagenet21k")]
    assert len(in22k) == len(set(in22k)) == 21841
    assert len(in21k) == len(set(in21k)) == 21843
    # Swin's 22K order: Google's, the two image-less classes replaced by
    # the last two
    assert set(in21k) - set(in22k) == {"n03931044", "n09859684"}
    assert (in21k[9205], in21k[15027]) == ("n03931044", "n09859684")
    expected = list(in21k)
    expected[9205], expected[15027] = in21k[21841], in21k[21842]
    assert in22k == expected[:21841]
    in1k = {w for w, _ in imagenet.class_names("imagenet1k")}
    assert in1k - set(in22k) == {"n04399382"}  # teddy bear


def test_map_22k_to_1k():
    rows = imagenet.map_22k_to_1k()
    assert rows.dtype == np.int64 and rows.shape == (1000,)
    assert len(set(rows.tolist())) == 1000
    assert rows.min() >= 0 and rows.max() < 21841
    first = [359, 368, 460, 475, 486, 492, 496, 514, 516, 525]
    assert rows[:10].tolist() == first  # as the official Swin file
    in1k = imagenet.class_names("imagenet1k")
    in22k = imagenet.class_names("imagenet22k")
    wrong = [i for i in range(1000) if in22k[rows[i]][0] != in1k[i][0]]
    assert wrong == [850]  # teddy bear: no 22K class, official fallback
    assert in22k[rows[850]] == ("n03013580", "chemise")
    rows[0] = -1  # a copy: the cached table is unchanged
    assert imagenet.map_22k_to_1k()[0] == 359


# ---------------------------------------------------- decode_predictions
def test_decode_predictions_order_and_top():
    preds = np.zeros((2, 1000), "float32")
    preds[0, [281, 1, 0]] = [0.5, 0.3, 0.2]
    preds[1, [999, 207]] = [0.9, 0.1]
    out = imagenet.decode_predictions(keras.ops.convert_to_tensor(preds), 3)
    assert len(out) == 2 and all(len(row) == 3 for row in out)
    assert [name for _, name, _ in out[0]] == ["tabby", "goldfish", "tench"]
    assert out[1][:2] == [
        ("n15075141", "toilet_tissue", pytest.approx(0.9)),
        ("n02099601", "golden_retriever", pytest.approx(0.1)),
    ]
    assert out[1][2][2] == 0.0 and out[1][2][0] == "n01440764"  # tie: idx 0
    assert all(isinstance(score, float) for _, _, score in out[0])
    assert len(imagenet.decode_predictions(preds)[0]) == 5
    assert len(imagenet.decode_predictions(preds, top=5000)[0]) == 1000


def test_decode_predictions_infers_label_set():
    for set_name, size in imagenet.LABEL_SETS.items():
        preds = np.zeros((1, size), "float32")
        preds[0, 7] = 1.0
        (best,) = imagenet.decode_predictions(preds, top=1)[0]
        assert best[:2] == imagenet.class_names(set_name)[7]


def test_decode_predictions_custom_names():
    preds = [[0.1, 0.7, 0.2]]
    out = imagenet.decode_predictions(preds, 2, class_names=["a", "b", "c"])
    assert out == [[("1", "b", 0.7), ("2", "c", 0.2)]]
    id2label = {"0": "a", "1": "b", "2": "c"}  # Hugging Face style
    out = imagenet.decode_predictions(preds, 1, class_names=id2label)
    assert out == [[("1", "b", 0.7)]]
    pairs = [("x0", "a"), ("x1", "b"), ("x2", "c")]
    out = imagenet.decode_predictions(preds, 1, class_names=pairs)
    assert out == [[("x1", "b", 0.7)]]


@pytest.mark.parametrize(
    "preds, kwargs, message",
    [
        (np.zeros(1000), {}, "shape"),
        (np.zeros((1, 10)), {}, r"10 classes.*1000.*21841.*21843.*label_set"),
        (np.zeros((1, 1000)), {"label_set": "imagenet22k"}, "21841"),
        (np.zeros((1, 3)), {"class_names": ["a", "b"]}, "2 entries"),
        (np.zeros((1, 3)), {"class_names": {0: "a", 1: "b"}}, "2 entries"),
        (
            np.zeros((1, 1000)),
            {"label_set": "imagenet1k", "class_names": ["a"] * 1000},
            "not both",
        ),
        (np.zeros((1, 1000)), {"top": 0}, "top"),
    ],
)
def test_decode_predictions_errors(preds, kwargs, message):
    with pytest.raises(ValueError, match=message):
        imagenet.decode_predictions(preds, **kwargs)


# ------------------------------------------------------ preprocess_input
@pytest.mark.parametrize(
    "kwargs, mean, std, scale",
    [
        ({}, imagenet.IMAGENET_MEAN, imagenet.IMAGENET_STD, 1 / 255),
        (
            {"mode": "torch"},
            imagenet.IMAGENET_MEAN,
            imagenet.IMAGENET_STD,
            1 / 255,
        ),
        ({"mode": "tf", "mean": 9}, (0.5,) * 3, (0.5,) * 3, 1 / 255),
        ({"mean": (1, 2, 3), "std": 2, "scale": 1}, (1, 2, 3), (2,) * 3, 1),
    ],
)
def test_preprocess_input_matches_numpy(rng, kwargs, mean, std, scale):
    images = rng.integers(0, 256, size=(2, 5, 4, 3)).astype("uint8")
    expected = (images * scale - np.array(mean)) / np.array(std)
    for x in (images, keras.ops.convert_to_tensor(images)):
        out = imagenet.preprocess_input(x, **kwargs)
        assert keras.backend.standardize_dtype(out.dtype) == "float32"
        np.testing.assert_allclose(to_numpy(out), expected, atol=1e-5)


def test_preprocess_input_tf_mode_range():
    images = np.array([0.0, 127.5, 255.0]).reshape(1, 1, 1, 3)
    out = to_numpy(imagenet.preprocess_input(images, mode="tf"))
    np.testing.assert_allclose(out.ravel(), [-1.0, 0.0, 1.0], atol=1e-6)


def test_preprocess_input_symbolic(rng):
    inputs = keras.Input((6, 6, 3))
    outputs = imagenet.preprocess_input(inputs, mode="torch")
    model = keras.Model(inputs, outputs)
    images = rng.uniform(0, 255, size=(2, 6, 6, 3)).astype("float32")
    expected = (images / 255 - np.array(imagenet.IMAGENET_MEAN)) / np.array(
        imagenet.IMAGENET_STD
    )
    out = model.predict(images, verbose=0)
    np.testing.assert_allclose(out, expected, atol=1e-5)


def test_preprocess_input_errors():
    with pytest.raises(ValueError, match="mode"):
        imagenet.preprocess_input(np.zeros((1, 2, 2, 3)), mode="caffe")
    with pytest.raises(ValueError, match="3 channels"):
        imagenet.preprocess_input(np.zeros((1, 2, 2, 4)))
    with pytest.raises(ValueError, match="different lengths"):
        imagenet.preprocess_input(np.zeros((2, 3)), std=(1.0, 1.0))


# ------------------------------------------------------------ load_image
def _gradient_png(path, width, height):
    """An RGB PNG whose pixels encode their position."""
    y, x = np.mgrid[0:height, 0:width]
    pixels = np.stack([x % 256, y % 256, (x + y) % 256], -1).astype("uint8")
    Image.fromarray(pixels).save(path)
    with Image.open(path) as image:
        return image.convert("RGB")


def _expected(source, resize_wh, box, resample=Image.Resampling.BICUBIC):
    return np.asarray(source.resize(resize_wh, resample).crop(box), "float32")


def test_load_image_resize_and_center_crop(tmp_path):
    path = tmp_path / "wide.png"
    source = _gradient_png(path, width=300, height=200)
    image = imagenet.load_image(path, 64)
    assert image.shape == (64, 64, 3) and image.dtype == np.float32
    assert 0.0 <= image.min() and image.max() <= 255.0
    # scale = floor(64 / 0.875) = 73; short side 200 -> 73, long side
    # int(73 * 300 / 200) = 109; crop offsets round(4.5) = 4 (top),
    # round(22.5) = 22 (left)
    np.testing.assert_array_equal(
        image, _expected(source, (109, 73), (22, 4, 86, 68))
    )


def test_load_image_crop_pct_one_and_pairs(tmp_path):
    path = tmp_path / "tall.png"
    source = _gradient_png(path, width=90, height=120)
    image = imagenet.load_image(
        str(path), 48, crop_pct=1.0, interpolation="nearest"
    )
    # short side 90 -> 48, long side int(48 * 120 / 90) = 64, top 8
    nearest = Image.Resampling.NEAREST
    np.testing.assert_array_equal(
        image, _expected(source, (48, 64), (0, 8, 48, 56), nearest)
    )
    # (h, w) target: resize by min(120 / 40, 90 / 45) = 2 -> 60 x 45,
    # then crop the centre 40 rows
    image = imagenet.load_image(
        path, (40, 45), crop_pct=1.0, interpolation="bilinear"
    )
    bilinear = Image.Resampling.BILINEAR
    np.testing.assert_array_equal(
        image, _expected(source, (45, 60), (0, 10, 45, 50), bilinear)
    )


def test_load_image_converts_to_rgb(tmp_path):
    path = tmp_path / "gray.png"
    Image.fromarray(np.full((10, 12), 200, "uint8")).save(path)  # mode L
    image = imagenet.load_image(path, 8, crop_pct=1.0)
    assert image.shape == (8, 8, 3)
    np.testing.assert_allclose(image, 200.0)


def test_load_image_missing_file(tmp_path):
    path = tmp_path / "missing.jpg"
    with pytest.raises(FileNotFoundError, match="missing.jpg"):
        imagenet.load_image(path)


@pytest.mark.parametrize("content", ["garbage", "truncated"])
def test_load_image_unreadable_file(tmp_path, content):
    path = tmp_path / "broken.png"
    if content == "garbage":
        path.write_bytes(b"this is not an image")
    else:
        _gradient_png(path, 64, 64)
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="broken.png"):
        imagenet.load_image(path)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"image_size": 0}, "image_size"),
        ({"image_size": (1, 2, 3)}, "image_size"),
        ({"crop_pct": 1.5}, "crop_pct"),
        ({"interpolation": "lanczos"}, "interpolation"),
    ],
)
def test_load_image_bad_arguments(tmp_path, kwargs, message):
    path = tmp_path / "ok.png"
    _gradient_png(path, 16, 16)
    with pytest.raises(ValueError, match=message):
        imagenet.load_image(path, **kwargs)


# ------------------------------------------- load_image: modes and bounds
def _png(path, pixels, mode=None):
    Image.fromarray(pixels, mode=mode).save(path)
    return path


def test_load_image_16bit_gray_png_is_scaled_not_clipped(tmp_path):
    # a real 16-bit PNG: columns 0, 257, ..., 65535 and, in a second row
    # block, values that are not multiples of 257
    ramp = (np.arange(256) * 257).astype(np.uint16)
    odd = np.linspace(0, 65535, 256).round().astype(np.uint16)
    pixels = np.stack([ramp] * 4 + [odd] * 4)  # (8, 256)
    path = _png(tmp_path / "gray16.png", pixels)
    with Image.open(path) as check:
        assert check.mode == "I;16"  # Pillow reads it as 16-bit
    image = imagenet.load_image(path, (8, 256), crop_pct=1.0)
    assert image.shape == (8, 256, 3)
    np.testing.assert_array_equal(
        image[:4, :, 0], np.tile(np.arange(256), (4, 1))
    )
    np.testing.assert_array_equal(
        image[4:, :, 1], np.tile(np.round(odd / 257.0), (4, 1))
    )
    assert (image[..., 0] == image[..., 2]).all()  # gray


def test_load_image_16bit_big_endian_and_32bit_int(tmp_path):
    values = np.array([[0, 257, 32896, 65535]], np.uint16)
    big = Image.frombytes("I;16B", (4, 1), values.astype(">u2").tobytes())
    big.save(tmp_path / "big.tif")
    Image.fromarray(values.astype(np.int32) * np.int32([1, 1, 1, 2])).save(
        tmp_path / "int32.tif"
    )  # mode "I"; 131070 is clipped to 65535
    for name in ("big.tif", "int32.tif"):
        image = imagenet.load_image(
            tmp_path / name, (1, 4), crop_pct=1.0, interpolation="nearest"
        )
        np.testing.assert_array_equal(image[0, :, 0], [0, 1, 128, 255])


def test_load_image_float_mode(tmp_path):
    values = np.array([[-5.0, 12.4, 12.6, 300.0]], np.float32)
    Image.fromarray(values).save(tmp_path / "float.tif")  # mode "F"
    image = imagenet.load_image(tmp_path / "float.tif", (1, 4), crop_pct=1.0)
    np.testing.assert_array_equal(image[0, :, 1], [0, 12, 13, 255])


def test_load_image_alpha_is_composited_on_white(tmp_path):
    rgba = np.array(
        [[[255, 0, 0, 128], [0, 0, 255, 0], [10, 20, 30, 255], [0, 0, 0, 64]]],
        np.uint8,
    )
    _png(tmp_path / "rgba.png", rgba)
    image = imagenet.load_image(tmp_path / "rgba.png", (1, 4), crop_pct=1.0)
    color, alpha = rgba[0, :, :3] / 1.0, rgba[0, :, 3:] / 255.0
    expected = color * alpha + 255.0 * (1 - alpha)  # over white
    np.testing.assert_allclose(image[0], expected, atol=1.0)
    assert image[0, 1].tolist() == [255.0] * 3  # transparent: white
    la = np.array([[[0, 0], [100, 255]]], np.uint8)
    Image.fromarray(la, mode="LA").save(tmp_path / "la.png")
    image = imagenet.load_image(tmp_path / "la.png", (1, 2), crop_pct=1.0)
    np.testing.assert_array_equal(image[0], [[255] * 3, [100] * 3])


@pytest.mark.parametrize("transparent", [False, True])
def test_load_image_palette(tmp_path, transparent):
    palette = Image.new("P", (3, 1))
    palette.putpalette([255, 0, 0, 0, 0, 255, 0, 128, 0] + [0] * 759)
    palette.putdata([0, 1, 2])
    path = tmp_path / "palette.png"
    if transparent:
        palette.save(path, transparency=1)  # index 1 is transparent
    else:
        palette.save(path)
    image = imagenet.load_image(path, (1, 3), crop_pct=1.0)
    middle = [255, 255, 255] if transparent else [0, 0, 255]
    np.testing.assert_array_equal(image[0], [[255, 0, 0], middle, [0, 128, 0]])


def test_load_image_cmyk_and_bilevel(tmp_path):
    cmyk = Image.new("CMYK", (3, 1))
    cmyk.putdata([(0, 255, 255, 0), (0, 0, 0, 255), (51, 102, 0, 0)])
    cmyk.save(tmp_path / "cmyk.jpg", quality=100)
    cmyk.save(tmp_path / "cmyk.tif")
    image = imagenet.load_image(tmp_path / "cmyk.tif", (1, 3), crop_pct=1.0)
    # R = (255 - K) * (255 - C) / 255, ...
    np.testing.assert_array_equal(
        image[0], [[255, 0, 0], [0, 0, 0], [204, 153, 255]]
    )
    bilevel = Image.new("1", (2, 1))
    bilevel.putdata([0, 1])
    bilevel.save(tmp_path / "bits.png")
    image = imagenet.load_image(tmp_path / "bits.png", (1, 2), crop_pct=1.0)
    np.testing.assert_array_equal(image[0], [[0, 0, 0], [255, 255, 255]])


def test_load_image_refuses_large_decoded_size(tmp_path):
    path = tmp_path / "big.png"
    _gradient_png(path, 100, 60)
    with pytest.raises(ValueError, match=r"100x60 = 6,000 pixels.*5,999"):
        imagenet.load_image(path, 16, max_pixels=5999)
    assert imagenet.load_image(path, 16, max_pixels=6000).shape == (16, 16, 3)
    with pytest.raises(ValueError, match="max_pixels"):
        imagenet.load_image(path, 16, max_pixels=0)


def _png_with_header_size(path, width, height):
    """A tiny valid PNG whose header claims width x height pixels."""
    import struct
    import zlib

    _gradient_png(path, 2, 2)
    data = bytearray(path.read_bytes())
    # IHDR: 8-byte signature, 4-byte length, "IHDR", then width, height
    data[16:24] = struct.pack(">II", width, height)
    crc = zlib.crc32(bytes(data[12:29])) & 0xFFFFFFFF
    data[29:33] = struct.pack(">I", crc)
    path.write_bytes(bytes(data))


def test_load_image_refuses_bomb_from_its_header(tmp_path):
    path = tmp_path / "bomb.png"
    _png_with_header_size(path, 100_000, 100_000)
    assert path.stat().st_size < 200
    with pytest.raises(ValueError, match=r"100000x100000.*89,478,485"):
        imagenet.load_image(path)


_EXTREME_SCRIPT = """
import resource, sys, time
import numpy as np
from PIL import Image
from keras_swin import imagenet

path = sys.argv[1]
Image.fromarray(np.full((10000, 1, 3), 90, np.uint8)).save(path)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
try:
    imagenet.load_image(path, 224)
except ValueError as error:
    message = str(error)
seconds = time.perf_counter() - start
grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
print(repr(message))
print(seconds, grown)
"""


def test_load_image_extreme_aspect_ratio_is_refused_fast(tmp_path):
    import subprocess
    import sys

    path = tmp_path / "line.png"
    result = subprocess.run(
        [sys.executable, "-c", _EXTREME_SCRIPT, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    message, figures = result.stdout.strip().splitlines()[-2:]
    assert path.stat().st_size < 200  # a 125-byte-class PNG
    # 1 wide, 10000 tall: short side -> 256 gives 256x2560000
    assert "1x10000" in message and "256x2560000" in message
    assert "655,360,000" in message and "89,478,485" in message
    seconds, grown_kib = figures.split()
    assert float(seconds) < 0.5
    assert int(grown_kib) < 20 * 1024  # under 20 MB more than before


def test_load_image_resize_bound_uses_max_pixels(tmp_path):
    path = tmp_path / "wide.png"
    source = _gradient_png(path, width=40, height=4)
    # short side 4 -> 16, long side int(16 * 40 / 4) = 160: 2560 pixels
    with pytest.raises(ValueError, match=r"160x16 = 2,560 pixels"):
        imagenet.load_image(path, 16, crop_pct=1.0, max_pixels=2559)
    image = imagenet.load_image(path, 16, crop_pct=1.0, max_pixels=2560)
    np.testing.assert_array_equal(
        image, _expected(source, (160, 16), (72, 0, 88, 16))
    )


# --------------------------------------------------------- id2label_names
def test_id2label_names():
    assert imagenet.id2label_names({"1": "dog", "0": "cat"}) == ["cat", "dog"]
    assert imagenet.id2label_names({0: "cat", 1: "dog"}) == ["cat", "dog"]


@pytest.mark.parametrize(
    "id2label, message",
    [
        ({"0": "a", "2": "b"}, r"unexpected keys: \['2'\], missing: \['1'\]"),
        ({"a": "x", "b": "y"}, r"unexpected keys: \['a', 'b'\]"),
        ({"0": "a", "01": "b"}, r"unexpected keys: \['01'\]"),
        ({"0": "a", " 1": "b"}, r"unexpected keys: \[' 1'\]"),
        ({"0": "a", "-1": "b"}, r"unexpected keys: \['-1'\]"),
        ({"0": "a", "1": 7}, r"names must be strings.*\(1, 7\)"),
        (["a", "b"], "must map class indices"),
    ],
)
def test_id2label_names_errors(id2label, message):
    with pytest.raises(ValueError, match=message):
        imagenet.id2label_names(id2label, source="cfg/config.json id2label")
