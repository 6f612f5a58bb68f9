"""`weights=` by name: resolve, download (file:// only), convert, cache.

No test touches the network: registry entries are pointed at golden
checkpoints through `file://` URLs, and KERAS_HOME at a temporary folder.
"""

import dataclasses
import functools
import os
import warnings

import numpy as np
import pytest
from helpers import assert_parity, golden, predict

import keras_swin.weights.families
import weights_tools.convert
from keras_swin import SwinTransformer, ViTTiny16, checkpoint_notes
from keras_swin.imagenet import model_preprocessing
from keras_swin.models import SWIN_CONFIGS, VIT_CONFIGS
from keras_swin.weights import pretrained
from keras_swin.weights.families import FAMILIES
from keras_swin.weights.loading import weights_source
from weights_tools.convert import convert_checkpoint

CASE = golden("swin_official", "tiny_w7_224")
ARCH = dict(embed_dim=24, depths=(2, 2, 2, 2), num_heads=(1, 2, 3, 6))
NAME = "swin_tiny_patch4_window7_224.golden"


@pytest.fixture
def registry(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    base = pretrained.PRETRAINED["swin_tiny_patch4_window7_224.ms_in1k"]
    entries = dict(pretrained.PRETRAINED)
    spec = dataclasses.replace(
        base,
        name=NAME,
        url=(CASE / "checkpoint.pth").as_uri(),
        classes=10,
        variant="swin_golden",
    )
    entries[NAME] = spec
    monkeypatch.setattr(pretrained, "PRETRAINED", entries)
    # A registered variant with the golden architecture, so that the
    # "imagenet" alias resolves for it.
    configs = dict(SWIN_CONFIGS, swin_golden=dict(ARCH))
    family = dataclasses.replace(FAMILIES["swin"], configs=configs)
    monkeypatch.setitem(keras_swin.weights.families.FAMILIES, "swin", family)
    tags = dict(pretrained.DEFAULT_TAGS)
    tags["swin_golden_patch4_window7_224"] = {"imagenet": NAME}
    monkeypatch.setattr(pretrained, "DEFAULT_TAGS", tags)
    return spec


def _model(weights, **kwargs):
    kwargs = {"classes": 10, "classifier_activation": None, **ARCH, **kwargs}
    return SwinTransformer(weights=weights, **kwargs)


def _count_reads_and_builds(monkeypatch) -> dict:
    """Counts checkpoint reads and Swin graph builds from now on."""
    counts = {"reads": 0, "builds": 0}
    read, family = weights_tools.convert.read_checkpoint, FAMILIES["swin"]

    def counting_read(*args, **kwargs):
        counts["reads"] += 1
        return read(*args, **kwargs)

    @functools.wraps(family.builder)  # the same signature
    def counting_build(*args, **kwargs):
        counts["builds"] += 1
        return family.builder(*args, **kwargs)

    monkeypatch.setattr(weights_tools.convert, "read_checkpoint", counting_read)
    counted = dataclasses.replace(family, builder=counting_build)
    monkeypatch.setitem(keras_swin.weights.families.FAMILIES, "swin", counted)
    return counts


def test_download_convert_and_cache(registry, monkeypatch):
    x = np.load(CASE / "inputs_nhwc.npy")
    counts = _count_reads_and_builds(monkeypatch)
    model = _model(NAME)
    # First use: the original file is read once, the model built once.
    assert counts == {"reads": 1, "builds": 1}
    assert_parity(predict(model, x), np.load(CASE / "logits.npy"))
    assert weights_source(model) == NAME
    assert model_preprocessing(model)["crop_pct"] == registry.crop_pct
    cached = convert_checkpoint(pretrained.cache_path(registry))
    assert cached.format == "official_swin" and cached.config["classes"] == 10

    def offline(spec):
        raise AssertionError("the second load must not download")

    monkeypatch.setattr(pretrained, "download", offline)
    again = _model("imagenet")  # the alias resolves to the same entry
    assert counts == {"reads": 1, "builds": 2}  # the cache, no checkpoint
    assert weights_source(again) == NAME
    assert_parity(predict(again, x), np.load(CASE / "logits.npy"))


def test_a_saved_model_keeps_its_source_and_notes(registry, tmp_path):
    import keras

    bigger = _model(NAME, input_shape=(256, 256, 3), window_size=8)
    notes = checkpoint_notes(bigger)
    assert len(notes) == 8 and all("resampled" in n for n in notes)
    bigger.save(tmp_path / "bigger.keras")
    loaded = keras.saving.load_model(tmp_path / "bigger.keras")
    assert weights_source(loaded) == NAME
    assert checkpoint_notes(loaded) == notes


def test_a_damaged_cache_is_converted_again(registry):
    _model(NAME)
    with open(pretrained.cache_path(registry), "r+b") as handle:
        handle.seek(8)
        handle.write(b"[")  # the header is no JSON object any more
    with pytest.warns(UserWarning, match="unreadable.*converting"):
        model = _model(NAME)
    x = np.load(CASE / "inputs_nhwc.npy")
    assert_parity(predict(model, x), np.load(CASE / "logits.npy"))


def test_headless_and_resampled_loads(registry):
    x = np.load(CASE / "inputs_nhwc.npy")
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # dropping is asked for
        headless = _model(NAME, include_top=False, pooling="avg")
    assert_parity(predict(headless, x), np.load(CASE / "features.npy"))
    bigger = _model(NAME, input_shape=(384, 384, 3), window_size=12)
    notes = checkpoint_notes(bigger)
    assert sum("relative_position_bias_table" in n for n in notes) == 8


def test_wrong_hash_names_url_and_local_alternative(registry, monkeypatch):
    bad = dataclasses.replace(registry, sha256="0" * 64)
    with pytest.raises(RuntimeError, match="file://.*weights='/path/to/file'"):
        pretrained.download(bad)
    downloads = os.path.join(pretrained._home(), "downloads")
    assert os.listdir(downloads) == []  # the bad file was deleted


def test_unreachable_url_is_a_clear_error(registry):
    missing = dataclasses.replace(
        registry, url=(CASE / "no_such_file.pth").as_uri()
    )
    with pytest.raises(RuntimeError, match="no_such_file.pth.*pass the file"):
        pretrained.download(missing)


def test_local_file_still_works(registry):
    model = _model(str(CASE / "checkpoint.pth"))
    x = np.load(CASE / "inputs_nhwc.npy")
    assert_parity(predict(model, x), np.load(CASE / "logits.npy"))


def test_resolution_of_real_names():
    spec = pretrained.resolve_weights(
        "imagenet",
        family="swin",
        variant="swin_base",
        image_size=384,
        window_size=12,
    )
    assert spec.name.startswith("swin_base_patch4_window12_384.")
    spec = pretrained.resolve_weights(
        "imagenet22k", family="swin", variant="swin_tiny", image_size=224
    )
    assert spec.classes == 21841
    # A 384 model without its own release takes the 224 weights.
    spec = pretrained.resolve_weights(
        "imagenet", family="swin", variant="swin_tiny", image_size=384
    )
    assert spec.image_size == 224
    spec = pretrained.resolve_weights(
        "imagenet", family="vit", variant="vit_base_patch16", image_size=224
    )
    assert spec.format == "official_vit" and spec.mean == (0.5, 0.5, 0.5)


@pytest.mark.parametrize(
    "weights, match",
    [
        ("swin_tiny_patch4_window7_224.nope", "Unknown pretrained weights"),
        ("vit_base_patch16_224.augreg_in21k_ft_in1k", "are vit weights"),
        ("imagenet", "none of the registered variants"),
    ],
)
def test_bad_names(weights, match):
    with pytest.raises(ValueError, match=match):
        pretrained.resolve_weights(
            weights, family="swin", variant=None, image_size=224
        )


def test_every_name_is_listed():
    names = pretrained.available_weights("swin")
    assert "swin_tiny_patch4_window7_224.ms_in1k" in names
    assert all(n.startswith("swin_") for n in names)


@pytest.fixture
def no_download(tmp_path, monkeypatch):
    """Any download fails the test: the fit is checked before."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))

    def download(spec):
        raise AssertionError(f"{spec.name} was downloaded before the check")

    monkeypatch.setattr(pretrained, "download", download)


def test_release_of_another_variant_is_refused_before_download(no_download):
    with pytest.raises(
        ValueError,
        match=r"vit_base_patch16_224.augreg_in21k_ft_in1k is a "
        r"vit_base_patch16 release \(hidden_size=768\) and does not fit "
        r"this model \(hidden_size=192\); nothing was downloaded",
    ):
        ViTTiny16(
            weights="vit_base_patch16_224.augreg_in21k_ft_in1k",
            input_shape=(32, 32, 3),
        )
    with pytest.raises(
        ValueError,
        match=r"swin_tiny_patch4_window7_224.ms_in1k is a swin_tiny "
        r"release \(embed_dim=96\) and does not fit this model "
        r"\(embed_dim=24\); nothing was downloaded.*available_weights",
    ):
        _model("swin_tiny_patch4_window7_224.ms_in1k")
    assert not os.path.exists(os.environ["KERAS_HOME"])


def test_fit_compares_what_a_release_fixes():
    spec = pretrained.get_weights_spec(
        "vit_base_patch16_224.augreg_in21k_ft_in1k"
    )
    base = dict(VIT_CONFIGS["vit_base_patch16"], classifier="token")
    pretrained.check_weights_fit(spec, "vit", base)
    for key, value in [
        ("num_heads", 8),
        ("patch_size", 32),
        ("num_layers", 6),
        ("classifier", "gap"),
        ("num_register_tokens", 4),
    ]:
        with pytest.raises(ValueError, match=rf"\({key}={value!r}\)"):
            pretrained.check_weights_fit(spec, "vit", {**base, key: value})
    swin = pretrained.get_weights_spec("swin_base_patch4_window7_224.ms_in1k")
    config = dict(SWIN_CONFIGS["swin_base"], patch_size=4)
    # Window and size are resampled on load, not fixed by the release.
    pretrained.check_weights_fit(swin, "swin", {**config, "window_size": 12})
    with pytest.raises(ValueError, match=r"depths=\(2, 2, 6, 2\)"):
        pretrained.check_weights_fit(
            swin, "swin", {**config, "depths": (2, 2, 6, 2)}
        )
    with pytest.raises(ValueError, match="are swin weights"):
        pretrained.check_weights_fit(swin, "vit", base)


def test_builder_head_warning_once_and_only_with_a_head(registry):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _model(NAME, classes=4)
        _model(NAME, include_top=False, pooling="avg")
    heads = [w for w in caught if "head" in str(w.message)]
    assert len(heads) == 1 and "new 4-class head" in str(heads[0].message)
