"""Consistency of the pretrained-weights registry (data only, no models)."""

from __future__ import annotations

import dataclasses
import re

import pytest

from keras_swin.models.swin import SWIN_CONFIGS
from keras_swin.models.swin_v2 import SWINV2_CONFIGS, SWINV2_RELEASE_CONFIGS
from keras_swin.models.upernet import UPERNET_CONFIGS
from keras_swin.models.vit import VIT_CONFIGS
from keras_swin.weights.families import FAMILIES
from keras_swin.weights.releases import DEFAULT_TAGS, PRETRAINED, WeightsSpec

SPECS = list(PRETRAINED.values())
IDS = list(PRETRAINED)

LABEL_CLASSES = {
    "imagenet1k": 1000,
    "imagenet22k": 21841,
    "imagenet21k": 21843,
    "ade20k": 150,
}
#: The classifiers' releases (the segmenters have no "imagenet" aliases).
CLASSIFIERS = [spec for spec in SPECS if spec.family != "swin_upernet"]
FORMATS = {
    "official_swin": (
        "https://github.com/SwinTransformer/storage/releases/download/",
        ".pth",
    ),
    "official_swinv2": (
        "https://github.com/SwinTransformer/storage/releases/download/v2.0.0/",
        ".pth",
    ),
    "official_vit": ("https://storage.googleapis.com/vit_models/", ".npz"),
    "timm": ("https://huggingface.co/timm/", ".safetensors"),
    "official_swin_upernet": (
        "https://github.com/SwinTransformer/storage/releases/download/",
        ".pth",
    ),
    "hf_swin_upernet": ("https://huggingface.co/openmmlab/", ".bin"),
}
HEX = re.compile(r"[0-9a-f]+")


def _arch(spec: WeightsSpec) -> str:
    return spec.name.split(".")[0]


def _tag(spec: WeightsSpec) -> str:
    return spec.name.split(".")[1]


def test_keys_are_names():
    assert SPECS
    for key, spec in PRETRAINED.items():
        assert isinstance(spec, WeightsSpec)
        assert key == spec.name


def test_specs_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        SPECS[0].url = "https://example.com/x.pth"


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_name_matches_architecture(spec):
    assert re.fullmatch(r"[a-z0-9_]+\.[a-z0-9_]+", spec.name)
    arch, tag = _arch(spec), _tag(spec)
    if spec.family == "swin":
        assert spec.variant in SWIN_CONFIGS
        assert spec.window_size in (7, 12)
        assert arch == (
            f"{spec.variant}_patch4_window{spec.window_size}_{spec.image_size}"
        )
        assert f"window{spec.window_size}_{spec.image_size}" in arch
        assert tag.startswith("ms_")
    elif spec.family == "swin_v2":
        _check_swinv2(spec, arch, tag)
        return
    elif spec.family == "vit":
        assert spec.variant in VIT_CONFIGS
        assert spec.window_size is None
        patch = VIT_CONFIGS[spec.variant]["patch_size"]
        assert arch == f"{spec.variant}_{spec.image_size}"
        assert f"patch{patch}_{spec.image_size}" in arch
        assert tag.startswith(("augreg", "orig"))
    elif spec.family == "swin_upernet":
        assert spec.variant in UPERNET_CONFIGS
        assert spec.window_size in (7, 12) and spec.image_size == 512
        assert arch == (
            f"upernet_{spec.variant}_patch4_window{spec.window_size}_512"
        )
        assert tag in ("ms_ade20k", "openmmlab_ade20k")
        return
    else:
        pytest.fail(f"unknown family {spec.family!r}")
    assert spec.image_size in (224, 384)


#: The official V2 file's suffix after the config name, per tag.
SWINV2_SUFFIX = {
    "ms_in1k": "",
    "ms_in22k": "_22k",
    "ms_in22k_ft_in1k": "_22kto1k_ft",
}


def _check_swinv2(spec: WeightsSpec, arch: str, tag: str) -> None:
    """A V2 release: its official config, variant, window and sizes."""
    assert spec.variant in SWINV2_CONFIGS
    assert spec.format == "official_swinv2"
    release = arch + SWINV2_SUFFIX[tag]
    assert spec.url.endswith(f"/{release}.pth")
    config = SWINV2_RELEASE_CONFIGS[release]
    assert config["variant"] == spec.variant
    assert config["image_size"] == spec.image_size
    assert config["window_size"] == spec.window_size
    assert config["pretrained_window_sizes"] == spec.pretrained_window_sizes
    assert config.get("classes", 1000) == spec.classes
    pretrained = set(spec.pretrained_window_sizes)
    if pretrained == {0}:
        # Trained at its own window: the family's release name.
        assert arch == FAMILIES["swin_v2"].release_name(
            spec.variant, spec.image_size, spec.window_size
        )
    else:
        # A fine-tune names the pre-training window and size too.
        first = spec.pretrained_window_sizes[0]
        assert arch == (
            f"{spec.variant}_patch4_window{first}to{spec.window_size}_"
            f"192to{spec.image_size}"
        )
        assert tag == "ms_in22k_ft_in1k"
    assert spec.image_size in (192, 256, 384)


def test_every_swinv2_release_config_is_registered():
    names = {
        _arch(spec) + SWINV2_SUFFIX[_tag(spec)]
        for spec in SPECS
        if spec.family == "swin_v2"
    }
    assert names == set(SWINV2_RELEASE_CONFIGS)


def test_only_swinv2_has_pretrained_windows():
    for spec in SPECS:
        assert (spec.pretrained_window_sizes is None) == (
            spec.family != "swin_v2"
        )


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_url_matches_format(spec):
    assert spec.format in FORMATS
    prefix, suffix = FORMATS[spec.format]
    assert spec.url.startswith("https://")
    assert spec.url.startswith(prefix)
    assert spec.url.endswith(suffix)
    if spec.format.startswith("official"):
        family = spec.family.replace("swin_v2", "swinv2")
        assert spec.format == f"official_{family}"
    if spec.format == "hf_swin_upernet":
        size = spec.variant.removeprefix("swin_")
        assert spec.url == (
            f"https://huggingface.co/openmmlab/upernet-swin-{size}/resolve/"
            "main/pytorch_model.bin"
        )
    if spec.format == "timm":
        assert spec.url == (
            f"https://huggingface.co/timm/{spec.name}/resolve/main/"
            "model.safetensors"
        )


def test_urls_are_unique():
    urls = [spec.url for spec in SPECS]
    assert len(set(urls)) == len(urls)


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_classes_match_label_set(spec):
    assert LABEL_CLASSES[spec.label_set] == spec.classes
    tag = _tag(spec)
    if tag.endswith("in1k"):
        assert spec.label_set == "imagenet1k"
    elif tag.endswith("in22k"):
        assert spec.label_set == "imagenet22k"
        assert spec.family in ("swin", "swin_v2")
    elif tag.endswith("in21k"):
        assert spec.label_set == "imagenet21k"
        assert spec.family == "vit"
    elif tag.endswith("ade20k"):
        assert spec.label_set == "ade20k"
        assert spec.family == "swin_upernet"
    else:
        pytest.fail(f"tag {tag!r} names no label set")


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_preprocessing(spec):
    assert len(spec.mean) == 3 and len(spec.std) == 3
    assert all(0 < s <= 1 for s in spec.std)
    assert all(0 <= m <= 1 for m in spec.mean)
    assert 0.5 < spec.crop_pct <= 1.0
    assert spec.interpolation in ("bicubic", "bilinear")
    if spec.image_size == 384:
        assert spec.crop_pct == 1.0
    if spec.family == "vit":
        assert spec.mean == (0.5, 0.5, 0.5) and spec.std == (0.5, 0.5, 0.5)
    assert spec.paper


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_hashes_and_sizes(spec):
    if spec.sha256 is not None:
        assert len(spec.sha256) == 64 and HEX.fullmatch(spec.sha256)
        if spec.hash_prefix is not None:
            assert spec.sha256.startswith(spec.hash_prefix)
    if spec.hash_prefix is not None:
        assert 6 <= len(spec.hash_prefix) <= 64
        assert HEX.fullmatch(spec.hash_prefix)
    if spec.file_size is not None:
        assert spec.file_size > 0


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_representation_size(spec):
    if spec.representation_size is None:
        return
    assert spec.family == "vit"
    assert spec.label_set == "imagenet21k"
    assert _tag(spec) == "orig_in21k"
    hidden = VIT_CONFIGS[spec.variant]["hidden_size"]
    assert spec.representation_size == hidden


def test_original_in21k_have_pre_logits_augreg_do_not():
    for spec in SPECS:
        if _tag(spec) == "orig_in21k":
            assert spec.representation_size is not None
        elif spec.family == "vit":
            assert spec.representation_size is None


def test_default_tags_point_at_existing_entries():
    assert DEFAULT_TAGS
    for arch, tags in DEFAULT_TAGS.items():
        assert tags
        assert set(tags) <= {"imagenet", "imagenet22k"}
        for alias, name in tags.items():
            assert name in PRETRAINED, name
            spec = PRETRAINED[name]
            assert _arch(spec) == arch
            if alias == "imagenet":
                assert spec.label_set == "imagenet1k"
                assert spec.format != "timm"
            else:
                assert spec.label_set in ("imagenet22k", "imagenet21k")


def test_every_architecture_has_default_tags():
    archs = {_arch(spec) for spec in CLASSIFIERS}
    assert archs == set(DEFAULT_TAGS)
    for arch in archs:
        labels = {spec.label_set for spec in CLASSIFIERS if _arch(spec) == arch}
        tags = DEFAULT_TAGS[arch]
        assert ("imagenet" in tags) == ("imagenet1k" in labels)
        assert ("imagenet22k" in tags) == bool(
            labels & {"imagenet22k", "imagenet21k"}
        )


def test_imagenet_alias_is_first_listed_original_1k_tag():
    """`imagenet` is the first 1K entry (timm's order) in original format."""
    for arch, tags in DEFAULT_TAGS.items():
        if "imagenet" not in tags:
            continue
        first = next(
            spec.name
            for spec in SPECS
            if _arch(spec) == arch
            and spec.label_set == "imagenet1k"
            and spec.format != "timm"
        )
        assert tags["imagenet"] == first


def test_imagenet22k_alias_prefers_augreg():
    for arch, tags in DEFAULT_TAGS.items():
        if "imagenet22k" not in tags or not arch.startswith("vit_"):
            continue
        if f"{arch}.augreg_in21k" in PRETRAINED:
            assert tags["imagenet22k"] == f"{arch}.augreg_in21k"
        else:
            assert tags["imagenet22k"] == f"{arch}.orig_in21k"


#: timm's `swinv2_*` pretrained names (its default_cfgs), the same files.
TIMM_SWINV2 = [
    "swinv2_tiny_window8_256.ms_in1k",
    "swinv2_tiny_window16_256.ms_in1k",
    "swinv2_small_window8_256.ms_in1k",
    "swinv2_small_window16_256.ms_in1k",
    "swinv2_base_window8_256.ms_in1k",
    "swinv2_base_window16_256.ms_in1k",
    "swinv2_base_window12_192.ms_in22k",
    "swinv2_large_window12_192.ms_in22k",
    "swinv2_base_window12to16_192to256.ms_in22k_ft_in1k",
    "swinv2_base_window12to24_192to384.ms_in22k_ft_in1k",
    "swinv2_large_window12to16_192to256.ms_in22k_ft_in1k",
    "swinv2_large_window12to24_192to384.ms_in22k_ft_in1k",
]


@pytest.mark.parametrize("timm_name", TIMM_SWINV2)
def test_timm_swinv2_names_name_the_official_files(timm_name):
    from keras_swin.weights.pretrained import get_weights_spec

    spec = get_weights_spec(timm_name)
    assert spec.family == "swin_v2"
    assert spec.format == "official_swinv2"
    arch, tag = timm_name.split(".")
    assert spec.name == arch.replace("_window", "_patch4_window") + "." + tag
