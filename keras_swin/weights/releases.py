"""The official pretrained releases that `weights=` can name.

Data only: no Keras import, no downloads. Every entry is a `WeightsSpec`
keyed by a timm-style name `arch.tag`:

* `arch` is the timm architecture name, which spells out the resolution and
  the window/patch: `swin_tiny_patch4_window7_224`,
  `swin_base_patch4_window12_384`, `vit_base_patch16_224`, ...
* `tag` says what the weights were trained on, as in timm's `default_cfgs`:

  - `ms_in1k`: Swin trained on ImageNet-1K by Microsoft;
  - `ms_in22k`: Swin trained on ImageNet-22K (21841 classes);
  - `ms_in22k_ft_in1k`: Swin pre-trained on 22K, fine-tuned on 1K;
  - `augreg_in21k`, `augreg_in21k_ft_in1k`, `augreg_in1k`: the ViT
    checkpoints of "How to train your ViT" (Steiner et al. 2021);
  - `orig_in21k`, `orig_in21k_ft_in1k`: the checkpoints of the original ViT
    paper (Dosovitskiy et al. 2021). The Google ImageNet-21k label set has
    21843 classes.
  - `ms_ade20k`: a Swin + UperNet segmenter of ADE20K (150 classes,
    512x512 crops, 160k iterations) released by Microsoft
    (Swin-Transformer-Semantic-Segmentation), family `swin_upernet`,
    arch `upernet_swin_{size}_patch4_window{w}_512`;
  - `openmmlab_ade20k`: the same recipe as retrained by mmsegmentation
    (its v0.5 model zoo; Swin-B and Swin-L with window 12 from 384 px
    ImageNet-22K weights) and converted by Hugging Face
    (`openmmlab/upernet-swin-{size}`).

Swin V2 (family `swin_v2`, format `official_swinv2`): the files of the
official GitHub release v2.0.0, named by the official config without its
training suffix (`swinv2_tiny_patch4_window8_256.ms_in1k`,
`swinv2_base_patch4_window12_192.ms_in22k`,
`swinv2_base_patch4_window12to16_192to256.ms_in22k_ft_in1k`: window 12
at 192 px fine-tuned to window 16 at 256 px, `pretrained_window_sizes`
(12, 12, 12, 6)). timm's `swinv2_*` weights are these files; its Hub
copies are not registered (a lone `model.safetensors` does not record
the window, see `weights_tools.timm_swinv2`).

Every URL is the original file (`format` says which reader it needs):
`official_swin` is a PyTorch `.pth` of the Swin GitHub releases,
`official_vit` a Flax `.npz` of `storage.googleapis.com/vit_models`,
`timm` a `model.safetensors` of the timm Hugging Face hub,
`official_swin_upernet` an mmsegmentation `.pth` of the Swin GitHub
releases and `hf_swin_upernet` the `pytorch_model.bin` of a Hugging Face
`UperNetForSemanticSegmentation` (read without its `config.json`: the
architecture comes from the tensors, the pool scales are UPerHead's).
The segmenters' preprocessing is mmseg's `img_norm_cfg` (ImageNet mean
and std), without a crop.

Preprocessing (`mean`, `std`, `crop_pct`, `interpolation`) follows timm's
pretrained configs, except that Swin's `crop_pct` follows the official
Swin evaluation code (resize to 256/224 of the size and center crop, i.e.
0.875, at 224; `TEST.CROP: False`, i.e. 1.0, at 384); timm uses 0.9 at 224.

Hashes: none of these files has been downloaded and hashed for this
registry, so `sha256` is None everywhere (the official file names carry no
hash either, so `hash_prefix` is None too). A loader must not treat a
missing hash as a verified file; fill `sha256` in once a file has been
hashed. Several ViT files share a base name (`ViT-B_16.npz` is both the
in21k and the fine-tuned checkpoint), so cache files by `name`, not by the
URL's base name.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class WeightsSpec:
    name: str  # "swin_tiny_patch4_window7_224.ms_in1k"
    url: str  # direct download URL of the original file
    format: str  # "official_swin", "official_vit", "timm", ...
    family: str  # "swin", "swin_v2", "vit" or "swin_upernet"
    variant: str  # key of SWIN_CONFIGS / VIT_CONFIGS / UPERNET_CONFIGS
    image_size: int  # 224 or 384 (V2: 192, 256, 384; segmenters: 512)
    window_size: int | None  # Swin window (7 or 12; V2 8 to 24), None: ViT
    classes: int  # 1000, 21841 (Swin 22K), 21843 (ViT in21k), 150
    label_set: str  # "imagenet1k", "imagenet22k", "imagenet21k", "ade20k"
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    crop_pct: float  # eval crop fraction
    interpolation: str  # "bicubic" / "bilinear"
    sha256: str | None = None
    hash_prefix: str | None = None  # leading hex digits of the sha256
    file_size: int | None = None  # bytes, only if known for certain
    representation_size: int | None = None  # ViT pre_logits width
    paper: str = ""  # short provenance
    # Swin V2: the window per stage the position-bias MLP was trained at
    # (0: none), (12, 12, 12, 6) for the 22K -> 1K fine-tunes.
    pretrained_window_sizes: tuple[int, ...] | None = None


IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
INCEPTION_MEAN = (0.5, 0.5, 0.5)
INCEPTION_STD = (0.5, 0.5, 0.5)

_SWIN_URL = "https://github.com/SwinTransformer/storage/releases/download"
_HF_URL = "https://huggingface.co"
_VIT_URL = "https://storage.googleapis.com/vit_models"

_SWIN_PAPER = "Swin (Liu et al. 2021), official release {release}"
_SWIN_CROP_NOTE = {
    224: "; eval crop 224/256 per the official code (timm: 0.9)",
    384: "; no eval crop (TEST.CROP: False) per the official code",
}
_AUGREG_PAPER = (
    "How to train your ViT / AugReg (Steiner et al. 2021), official "
    "vit_models/augreg release"
)
_ORIG_PAPER = (
    "ViT (Dosovitskiy et al. 2021), official vit_models/{folder} release"
)

_SWIN_LABELS = {
    "ms_in1k": ("imagenet1k", 1000),
    "ms_in22k_ft_in1k": ("imagenet1k", 1000),
    "ms_in22k": ("imagenet22k", 21841),
}
_VIT_LABELS = {
    "augreg_in21k_ft_in1k": ("imagenet1k", 1000),
    "orig_in21k_ft_in1k": ("imagenet1k", 1000),
    "augreg_in1k": ("imagenet1k", 1000),
    "augreg_in21k": ("imagenet21k", 21843),
    "orig_in21k": ("imagenet21k", 21843),
}


def _swin(size: str, size_px: int, tag: str, release: str, file: str):
    window = 7 if size_px == 224 else 12
    label_set, classes = _SWIN_LABELS[tag]
    return WeightsSpec(
        name=f"swin_{size}_patch4_window{window}_{size_px}.{tag}",
        url=f"{_SWIN_URL}/{release}/{file}",
        format="official_swin",
        family="swin",
        variant=f"swin_{size}",
        image_size=size_px,
        window_size=window,
        classes=classes,
        label_set=label_set,
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        crop_pct=0.875 if size_px == 224 else 1.0,
        interpolation="bicubic",
        paper=_SWIN_PAPER.format(release=release) + _SWIN_CROP_NOTE[size_px],
    )


_SWINV2_PAPER = (
    "Swin V2 (Liu et al. 2022), official release v2.0.0 {file}; eval "
    "crop {crop} (official config.py TEST.CROP {test_crop}{where})"
)
_SWINV2_LABELS = {
    "ms_in1k": ("imagenet1k", 1000, ""),
    "ms_in22k": ("imagenet22k", 21841, "_22k"),
    "ms_in22k_ft_in1k": ("imagenet1k", 1000, "_22kto1k_ft"),
}


def _swinv2(
    size: str,
    window: int,
    size_px: int,
    tag: str,
    pretrained: tuple = (0, 0, 0, 0),
    from_window: int | None = None,
    from_px: int | None = None,
):
    """A Swin V2 release of the official GitHub storage (v2.0.0).

    `arch` is the official config name without its training suffix
    (`_22k`, `_22kto1k_ft`): `swinv2_base_patch4_window12to16_192to256`
    for a fine-tune from window 12 at 192 px to window 16 at 256 px.
    Preprocessing: ImageNet mean / std, bicubic; crop as the official
    evaluation (`data/build.py`: with `TEST.CROP`, the default, resize to
    256/224 of the size and center crop, 0.875; the 384 px fine-tunes
    set `TEST.CROP: False`, 1.0). timm's pretrained_cfg says 0.9 at 256.
    """
    label_set, classes, suffix = _SWINV2_LABELS[tag]
    windows = f"{from_window}to{window}" if from_window else f"{window}"
    sizes = f"{from_px}to{size_px}" if from_px else f"{size_px}"
    arch = f"swinv2_{size}_patch4_window{windows}_{sizes}"
    file = f"{arch}{suffix}.pth"
    crop = 1.0 if size_px == 384 else 0.875
    return WeightsSpec(
        name=f"{arch}.{tag}",
        url=f"{_SWIN_URL}/v2.0.0/{file}",
        format="official_swinv2",
        family="swin_v2",
        variant=f"swinv2_{size}",
        image_size=size_px,
        window_size=window,
        classes=classes,
        label_set=label_set,
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        crop_pct=crop,
        interpolation="bicubic",
        pretrained_window_sizes=tuple(pretrained),
        paper=_SWINV2_PAPER.format(
            file=file,
            crop=crop,
            test_crop=crop != 1.0,
            where="" if crop != 1.0 else f" in {arch}{suffix}.yaml",
        ),
    )


def _swinv2_finetune(size: str, window: int, size_px: int):
    return _swinv2(
        size,
        window,
        size_px,
        "ms_in22k_ft_in1k",
        pretrained=(12, 12, 12, 6),
        from_window=12,
        from_px=192,
    )


def _upernet(size: str, window: int, tag: str, url: str, paper: str):
    return WeightsSpec(
        name=f"upernet_swin_{size}_patch4_window{window}_512.{tag}",
        url=url,
        format="official_swin_upernet"
        if tag == "ms_ade20k"
        else ("hf_swin_upernet"),
        family="swin_upernet",
        variant=f"swin_{size}",
        image_size=512,
        window_size=window,
        classes=150,
        label_set="ade20k",
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        crop_pct=1.0,
        interpolation="bilinear",
        paper=paper,
    )


def _upernet_official(size: str, miou: float):
    file = f"upernet_swin_{size}_patch4_window7_512x512.pth"
    return _upernet(
        size,
        7,
        "ms_ade20k",
        f"{_SWIN_URL}/v1.0.1/{file}",
        "Swin (Liu et al. 2021) + UperNet, official "
        "Swin-Transformer-Semantic-Segmentation release v1.0.1 "
        f"(upernet_swin_{size}_patch4_window7_512x512_160k_ade20k, "
        f"ImageNet-1K backbone; {miou} mIoU single-scale)",
    )


def _upernet_hf(size: str, window: int, pretrain: str):
    return _upernet(
        size,
        window,
        "openmmlab_ade20k",
        f"{_HF_URL}/openmmlab/upernet-swin-{size}/resolve/main/"
        "pytorch_model.bin",
        f"mmsegmentation v0.5 upernet_swin_{size}_patch4_window{window}_"
        f"512x512_160k_ade20k ({pretrain} backbone), converted by Hugging "
        f"Face: openmmlab/upernet-swin-{size}",
    )


def _vit(
    variant: str,
    size_px: int,
    tag: str,
    path: str,
    representation_size: int | None = None,
    note: str = "",
):
    label_set, classes = _VIT_LABELS[tag]
    if tag.startswith("augreg"):
        paper = _AUGREG_PAPER
    else:
        paper = _ORIG_PAPER.format(folder=path.split("/")[0])
    return WeightsSpec(
        name=f"{variant}_{size_px}.{tag}",
        url=f"{_VIT_URL}/{path}",
        format="official_vit",
        family="vit",
        variant=variant,
        image_size=size_px,
        window_size=None,
        classes=classes,
        label_set=label_set,
        mean=INCEPTION_MEAN,
        std=INCEPTION_STD,
        crop_pct=0.9 if size_px == 224 else 1.0,
        interpolation="bicubic",
        representation_size=representation_size,
        paper=paper + note,
    )


# AugReg file names: <model>-<upstream run>[--imagenet2012-<fine-tune run>].
_I21K = "i21k-300ep-lr_0.001"
_I1K = "i1k-300ep-lr_0.001"
_FT = "imagenet2012-steps_20k"
_AUGREG_RUNS = {
    "vit_tiny_patch16": f"Ti_16-{_I21K}-aug_none-wd_0.03-do_0.0-sd_0.0",
    "vit_small_patch16": f"S_16-{_I21K}-aug_light1-wd_0.03-do_0.0-sd_0.0",
    "vit_base_patch32": f"B_32-{_I21K}-aug_medium1-wd_0.03-do_0.0-sd_0.0",
    "vit_base_patch16": f"B_16-{_I21K}-aug_medium1-wd_0.1-do_0.0-sd_0.0",
    "vit_large_patch16": f"L_16-{_I21K}-aug_medium1-wd_0.1-do_0.1-sd_0.1",
}
_AUGREG_FT_LR = {
    "vit_tiny_patch16": "0.03",
    "vit_small_patch16": "0.03",
    "vit_base_patch32": "0.03",
    "vit_base_patch16": "0.01",
    "vit_large_patch16": "0.01",
}
_AUGREG_I1K_RUNS = {
    "vit_small_patch16": f"S_16-{_I1K}-aug_medium2-wd_0.1-do_0.0-sd_0.0",
    "vit_base_patch32": f"B_32-{_I1K}-aug_medium2-wd_0.1-do_0.1-sd_0.1",
    "vit_base_patch16": f"B_16-{_I1K}-aug_strong2-wd_0.1-do_0.1-sd_0.1",
}


def _augreg_ft(variant: str, size_px: int):
    run = _AUGREG_RUNS[variant]
    if variant == "vit_base_patch32" and size_px == 384:
        # timm records a different upstream run for B/32 @ 384.
        run = f"B_32-{_I21K}-aug_light1-wd_0.1-do_0.0-sd_0.0"
    lr = _AUGREG_FT_LR[variant]
    path = f"augreg/{run}--{_FT}-lr_{lr}-res_{size_px}.npz"
    return _vit(variant, size_px, "augreg_in21k_ft_in1k", path)


def _augreg_in1k(variant: str, size_px: int):
    run = _AUGREG_I1K_RUNS[variant]
    path = f"augreg/{run}--{_FT}-lr_0.01-res_{size_px}.npz"
    return _vit(variant, size_px, "augreg_in1k", path)


def _augreg_in21k(variant: str):
    path = f"augreg/{_AUGREG_RUNS[variant]}.npz"
    note = "; valid 21843-class head, no pre_logits layer"
    return _vit(variant, 224, "augreg_in21k", path, note=note)


# Original ViT checkpoints. "+" in the folder name is percent-encoded.
_ORIG_FT = "imagenet21k%2Bimagenet2012"
_ORIG_NAMES = {
    "vit_base_patch16": ("ViT-B_16", 768),
    "vit_base_patch32": ("ViT-B_32", 768),
    "vit_large_patch16": ("ViT-L_16", 1024),
    "vit_large_patch32": ("ViT-L_32", 1024),
    "vit_huge_patch14": ("ViT-H_14", 1280),
}


def _orig_in21k(variant: str):
    file, width = _ORIG_NAMES[variant]
    note = (
        "; has a pre_logits layer; the 21k head is not valid (timm: "
        "'classifier not valid', zeroed in the L/32 and H/14 files)"
    )
    return _vit(
        variant,
        224,
        "orig_in21k",
        f"imagenet21k/{file}.npz",
        representation_size=width,
        note=note,
    )


def _orig_ft(variant: str, size_px: int):
    file, _ = _ORIG_NAMES[variant]
    suffix = "-224" if size_px == 224 else ""
    path = f"{_ORIG_FT}/{file}{suffix}.npz"
    return _vit(variant, size_px, "orig_in21k_ft_in1k", path)


_ENTRIES = (
    # Swin, in timm's default_cfgs order (the first 1K tag of an
    # architecture is timm's default).
    _swin(
        "small",
        224,
        "ms_in22k_ft_in1k",
        "v1.0.8",
        "swin_small_patch4_window7_224_22kto1k_finetune.pth",
    ),
    _swin(
        "base",
        224,
        "ms_in22k_ft_in1k",
        "v1.0.0",
        "swin_base_patch4_window7_224_22kto1k.pth",
    ),
    _swin(
        "base",
        384,
        "ms_in22k_ft_in1k",
        "v1.0.0",
        "swin_base_patch4_window12_384_22kto1k.pth",
    ),
    _swin(
        "large",
        224,
        "ms_in22k_ft_in1k",
        "v1.0.0",
        "swin_large_patch4_window7_224_22kto1k.pth",
    ),
    _swin(
        "large",
        384,
        "ms_in22k_ft_in1k",
        "v1.0.0",
        "swin_large_patch4_window12_384_22kto1k.pth",
    ),
    _swin("tiny", 224, "ms_in1k", "v1.0.0", "swin_tiny_patch4_window7_224.pth"),
    _swin(
        "small", 224, "ms_in1k", "v1.0.0", "swin_small_patch4_window7_224.pth"
    ),
    _swin("base", 224, "ms_in1k", "v1.0.0", "swin_base_patch4_window7_224.pth"),
    _swin(
        "base", 384, "ms_in1k", "v1.0.0", "swin_base_patch4_window12_384.pth"
    ),
    _swin(
        "tiny",
        224,
        "ms_in22k_ft_in1k",
        "v1.0.8",
        "swin_tiny_patch4_window7_224_22kto1k_finetune.pth",
    ),
    _swin(
        "tiny",
        224,
        "ms_in22k",
        "v1.0.8",
        "swin_tiny_patch4_window7_224_22k.pth",
    ),
    _swin(
        "small",
        224,
        "ms_in22k",
        "v1.0.8",
        "swin_small_patch4_window7_224_22k.pth",
    ),
    _swin(
        "base",
        224,
        "ms_in22k",
        "v1.0.0",
        "swin_base_patch4_window7_224_22k.pth",
    ),
    _swin(
        "base",
        384,
        "ms_in22k",
        "v1.0.0",
        "swin_base_patch4_window12_384_22k.pth",
    ),
    _swin(
        "large",
        224,
        "ms_in22k",
        "v1.0.0",
        "swin_large_patch4_window7_224_22k.pth",
    ),
    _swin(
        "large",
        384,
        "ms_in22k",
        "v1.0.0",
        "swin_large_patch4_window12_384_22k.pth",
    ),
    # ViT, in timm's default_cfgs order (timm-hub-only tags such as
    # augreg2_in21k_ft_in1k are left out).
    _augreg_ft("vit_tiny_patch16", 224),
    _augreg_ft("vit_tiny_patch16", 384),
    _augreg_ft("vit_small_patch16", 224),
    _augreg_ft("vit_small_patch16", 384),
    _augreg_ft("vit_base_patch32", 224),
    _augreg_ft("vit_base_patch32", 384),
    _augreg_ft("vit_base_patch16", 224),
    _augreg_ft("vit_base_patch16", 384),
    _augreg_ft("vit_large_patch16", 224),
    _augreg_ft("vit_large_patch16", 384),
    _orig_ft("vit_base_patch16", 224),
    _orig_ft("vit_base_patch16", 384),
    _orig_ft("vit_base_patch32", 384),
    _orig_ft("vit_large_patch16", 224),
    _orig_ft("vit_large_patch16", 384),
    _orig_ft("vit_large_patch32", 384),
    _augreg_in1k("vit_small_patch16", 224),
    _augreg_in1k("vit_small_patch16", 384),
    _augreg_in1k("vit_base_patch32", 224),
    _augreg_in1k("vit_base_patch32", 384),
    _augreg_in1k("vit_base_patch16", 224),
    _augreg_in1k("vit_base_patch16", 384),
    _orig_in21k("vit_base_patch32"),
    _orig_in21k("vit_base_patch16"),
    _orig_in21k("vit_large_patch32"),
    _orig_in21k("vit_large_patch16"),
    _orig_in21k("vit_huge_patch14"),
    _augreg_in21k("vit_tiny_patch16"),
    _augreg_in21k("vit_small_patch16"),
    _augreg_in21k("vit_base_patch32"),
    _augreg_in21k("vit_base_patch16"),
    _augreg_in21k("vit_large_patch16"),
    # Swin V2, in timm's default_cfgs order (its swinv2_* entries are
    # these files; timm's Hub copies are not listed: a lone
    # model.safetensors does not record the window).
    _swinv2_finetune("base", 16, 256),
    _swinv2_finetune("base", 24, 384),
    _swinv2_finetune("large", 16, 256),
    _swinv2_finetune("large", 24, 384),
    _swinv2("tiny", 8, 256, "ms_in1k"),
    _swinv2("tiny", 16, 256, "ms_in1k"),
    _swinv2("small", 8, 256, "ms_in1k"),
    _swinv2("small", 16, 256, "ms_in1k"),
    _swinv2("base", 8, 256, "ms_in1k"),
    _swinv2("base", 16, 256, "ms_in1k"),
    _swinv2("base", 12, 192, "ms_in22k"),
    _swinv2("large", 12, 192, "ms_in22k"),
    # Swin + UperNet segmenters of ADE20K (no Swin-L in the official
    # release).
    _upernet_official("tiny", 44.51),
    _upernet_official("small", 47.64),
    _upernet_official("base", 48.13),
    _upernet_hf("tiny", 7, "ImageNet-1K 224"),
    _upernet_hf("small", 7, "ImageNet-1K 224"),
    _upernet_hf("base", 12, "ImageNet-22K 384"),
    _upernet_hf("large", 12, "ImageNet-22K 384"),
)

#: Every release, by `arch.tag` name.
PRETRAINED: dict[str, WeightsSpec] = {spec.name: spec for spec in _ENTRIES}

#: timm's names of the Swin V2 releases (`swinv2_tiny_window8_256.ms_in1k`,
#: `swinv2_base_window12to24_192to384.ms_in22k_ft_in1k`, ...: timm's
#: `swinv2_*` weights are these official files) -> the registered name.
TIMM_NAMES: dict[str, str] = {
    name.replace("_patch4_window", "_window", 1): name
    for name, spec in PRETRAINED.items()
    if spec.family == "swin_v2"
}

#: `arch` -> {"imagenet": 1K weights, "imagenet22k": 22K/21K weights}.
#: "imagenet" is timm's default 1K tag among the releases above;
#: "imagenet22k" is Swin's ms_in22k and ViT's augreg_in21k, else orig_in21k.
DEFAULT_TAGS: dict[str, dict[str, str]] = {
    "swin_tiny_patch4_window7_224": {
        "imagenet": "swin_tiny_patch4_window7_224.ms_in1k",
        "imagenet22k": "swin_tiny_patch4_window7_224.ms_in22k",
    },
    "swin_small_patch4_window7_224": {
        "imagenet": "swin_small_patch4_window7_224.ms_in22k_ft_in1k",
        "imagenet22k": "swin_small_patch4_window7_224.ms_in22k",
    },
    "swin_base_patch4_window7_224": {
        "imagenet": "swin_base_patch4_window7_224.ms_in22k_ft_in1k",
        "imagenet22k": "swin_base_patch4_window7_224.ms_in22k",
    },
    "swin_base_patch4_window12_384": {
        "imagenet": "swin_base_patch4_window12_384.ms_in22k_ft_in1k",
        "imagenet22k": "swin_base_patch4_window12_384.ms_in22k",
    },
    "swin_large_patch4_window7_224": {
        "imagenet": "swin_large_patch4_window7_224.ms_in22k_ft_in1k",
        "imagenet22k": "swin_large_patch4_window7_224.ms_in22k",
    },
    "swin_large_patch4_window12_384": {
        "imagenet": "swin_large_patch4_window12_384.ms_in22k_ft_in1k",
        "imagenet22k": "swin_large_patch4_window12_384.ms_in22k",
    },
    "swinv2_tiny_patch4_window8_256": {
        "imagenet": "swinv2_tiny_patch4_window8_256.ms_in1k",
    },
    "swinv2_tiny_patch4_window16_256": {
        "imagenet": "swinv2_tiny_patch4_window16_256.ms_in1k",
    },
    "swinv2_small_patch4_window8_256": {
        "imagenet": "swinv2_small_patch4_window8_256.ms_in1k",
    },
    "swinv2_small_patch4_window16_256": {
        "imagenet": "swinv2_small_patch4_window16_256.ms_in1k",
    },
    "swinv2_base_patch4_window8_256": {
        "imagenet": "swinv2_base_patch4_window8_256.ms_in1k",
    },
    "swinv2_base_patch4_window16_256": {
        "imagenet": "swinv2_base_patch4_window16_256.ms_in1k",
    },
    "swinv2_base_patch4_window12_192": {
        "imagenet22k": "swinv2_base_patch4_window12_192.ms_in22k",
    },
    "swinv2_base_patch4_window12to16_192to256": {
        "imagenet": "swinv2_base_patch4_window12to16_192to256.ms_in22k_ft_in1k",
    },
    "swinv2_base_patch4_window12to24_192to384": {
        "imagenet": "swinv2_base_patch4_window12to24_192to384.ms_in22k_ft_in1k",
    },
    "swinv2_large_patch4_window12_192": {
        "imagenet22k": "swinv2_large_patch4_window12_192.ms_in22k",
    },
    "swinv2_large_patch4_window12to16_192to256": {
        "imagenet": (
            "swinv2_large_patch4_window12to16_192to256.ms_in22k_ft_in1k"
        ),
    },
    "swinv2_large_patch4_window12to24_192to384": {
        "imagenet": (
            "swinv2_large_patch4_window12to24_192to384.ms_in22k_ft_in1k"
        ),
    },
    "vit_tiny_patch16_224": {
        "imagenet": "vit_tiny_patch16_224.augreg_in21k_ft_in1k",
        "imagenet22k": "vit_tiny_patch16_224.augreg_in21k",
    },
    "vit_tiny_patch16_384": {
        "imagenet": "vit_tiny_patch16_384.augreg_in21k_ft_in1k",
    },
    "vit_small_patch16_224": {
        "imagenet": "vit_small_patch16_224.augreg_in21k_ft_in1k",
        "imagenet22k": "vit_small_patch16_224.augreg_in21k",
    },
    "vit_small_patch16_384": {
        "imagenet": "vit_small_patch16_384.augreg_in21k_ft_in1k",
    },
    "vit_base_patch32_224": {
        "imagenet": "vit_base_patch32_224.augreg_in21k_ft_in1k",
        "imagenet22k": "vit_base_patch32_224.augreg_in21k",
    },
    "vit_base_patch32_384": {
        "imagenet": "vit_base_patch32_384.augreg_in21k_ft_in1k",
    },
    "vit_base_patch16_224": {
        "imagenet": "vit_base_patch16_224.augreg_in21k_ft_in1k",
        "imagenet22k": "vit_base_patch16_224.augreg_in21k",
    },
    "vit_base_patch16_384": {
        "imagenet": "vit_base_patch16_384.augreg_in21k_ft_in1k",
    },
    "vit_large_patch16_224": {
        "imagenet": "vit_large_patch16_224.augreg_in21k_ft_in1k",
        "imagenet22k": "vit_large_patch16_224.augreg_in21k",
    },
    "vit_large_patch16_384": {
        "imagenet": "vit_large_patch16_384.augreg_in21k_ft_in1k",
    },
    "vit_large_patch32_224": {
        "imagenet22k": "vit_large_patch32_224.orig_in21k",
    },
    "vit_large_patch32_384": {
        "imagenet": "vit_large_patch32_384.orig_in21k_ft_in1k",
    },
    "vit_huge_patch14_224": {
        "imagenet22k": "vit_huge_patch14_224.orig_in21k",
    },
}
