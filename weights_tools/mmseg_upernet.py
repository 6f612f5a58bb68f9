"""Official Swin + UperNet segmenters (mmsegmentation `.pth`).

Format `"official_swin_upernet"`, family `"swin_upernet"`. The released
checkpoints of microsoft/Swin-Transformer-Semantic-Segmentation
(mmsegmentation 0.11) are `torch.save({'meta': {...}, 'state_dict':
{...}})`, sometimes with an `'optimizer'`:

* `backbone.*`: the official dense Swin backbone, converted by
  `weights_tools.dense_swin` (`norm{i}` per output);
* `decode_head.*` (`UPerHead`), every conv an mmcv `ConvModule` (`conv`
  without bias, BatchNorm `bn`, ReLU): `psp_modules.{k}.1` (1x1, the
  pyramid pooling of scale k; `.0` is the parameter-free pooling),
  `bottleneck` (3x3), `lateral_convs.{i}` (1x1) and `fpn_convs.{i}`
  (3x3) for every feature but the last, `fpn_bottleneck` (3x3) and the
  classifier `conv_seg` (1x1 with bias);
* `auxiliary_head.*` (`FCNHead`, optional): `convs.{j}` (3x3),
  `conv_cat` (3x3, with `concat_input`) and `conv_seg`.

The heads map to the Keras paths of `keras_swin.models.upernet`
(`decode_head/psp_modules_{k}/conv/kernel`, `.../bn/gamma`, ...;
kernels OIHW -> HWIO, BatchNorm weight/bias/running_mean/running_var ->
gamma/beta/moving_mean/moving_variance). `num_batches_tracked` counters
are left out with a note. `weights_tools.hf_upernet` renames Hugging
Face's head names to these and shares the checks.

What the tensors do not hold: the pool scales (only their count) come
from the `pool_scales=` of the config text in the file's `meta`, else
(1, 2, 3, 6), UPerHead's value in every released config, when there are
four modules (with a note). `meta['CLASSES']` names the classes.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np

from weights_tools import dense_swin
from weights_tools.common import (
    IMAGENET_PREPROCESSING,
    ConversionError,
    Converted,
    Converter,
    Rule,
    apply_rules,
    check_ints,
    conv_kernel,
)

FORMAT = "official_swin_upernet"
#: The model family of Swin + UperNet segmenters.
FAMILY = "swin_upernet"
#: UPerHead's pool scales in every released config.
DEFAULT_POOL_SCALES = (1, 2, 3, 6)
#: The segmenters' evaluation preprocessing: mmseg's `img_norm_cfg`
#: (mean 123.675, 116.28, 103.53, std 58.395, 57.12, 57.375 on 0-255,
#: RGB) is ImageNet's on 0-1; images are resized, not cropped.
PREPROCESSING = dict(
    IMAGENET_PREPROCESSING, crop_pct=1.0, interpolation="bilinear"
)

_BN = {
    "weight": "gamma",
    "bias": "beta",
    "running_mean": "moving_mean",
    "running_var": "moving_variance",
}
_COUNTER = "num_batches_tracked"
#: mmseg module name (regex) -> Keras layer path (with groups).
_CONV_MODULES = (
    (r"decode_head\.psp_modules\.(\d+)\.1", r"decode_head/psp_modules_\1"),
    (r"decode_head\.bottleneck", "decode_head/bottleneck"),
    (r"decode_head\.lateral_convs\.(\d+)", r"decode_head/lateral_convs_\1"),
    (r"decode_head\.fpn_convs\.(\d+)", r"decode_head/fpn_convs_\1"),
    (r"decode_head\.fpn_bottleneck", "decode_head/fpn_bottleneck"),
    (r"auxiliary_head\.convs\.(\d+)", r"auxiliary_head/convs_\1"),
    (r"auxiliary_head\.conv_cat", "auxiliary_head/conv_cat"),
)


def _head_rules() -> list[Rule]:
    rules = []
    for source, target in _CONV_MODULES:
        kernel = target + "/conv/kernel"
        rules.append(Rule(source + r"\.conv\.weight", kernel, conv_kernel))
        rules += [
            Rule(source + rf"\.bn\.{name}", f"{target}/bn/{keras}")
            for name, keras in _BN.items()
        ]
    for head in ("decode_head", "auxiliary_head"):
        rules += [
            Rule(
                rf"{head}\.conv_seg\.weight",
                f"{head}/conv_seg/kernel",
                conv_kernel,
            ),
            Rule(rf"{head}\.conv_seg\.bias", f"{head}/conv_seg/bias"),
        ]
    return rules


#: Rename table of the heads (mmseg names, with the head prefix).
HEAD_RULES = _head_rules()

_PSP = re.compile(r"decode_head\.psp_modules\.(\d+)\.")
_AUX_CONV = re.compile(r"auxiliary_head\.convs\.(\d+)\.")
_HEADS = ("decode_head.", "auxiliary_head.")
_POOL_SCALES_TEXT = re.compile(r"pool_scales\s*=\s*[(\[]([^)\]]*)[)\]]")


def _conv_module(name: str, out: int, kernel: tuple) -> dict:
    """Expected shapes of one ConvModule: conv (OIHW, no bias) + bn."""
    shapes = {f"{name}.conv.weight": (out, *kernel)}
    for part in _BN:
        shapes[f"{name}.bn.{part}"] = (out,)
    return shapes


def _count(pattern: re.Pattern, keys) -> int:
    found = [int(m[1]) for k in keys if (m := pattern.match(k))]
    return max(found) + 1 if found else 0


def _shape(heads, key) -> tuple | None:
    array = heads.get(key)
    return None if array is None else tuple(np.shape(array))


def _named(key: str, origin) -> str:
    return key if origin is None else origin(key)


def head_layout(
    heads: dict[str, np.ndarray],
    widths: tuple,
    origin: Callable[[str], str] | None = None,
    auxiliary_in_index: int | None = None,
) -> dict:
    """The UperNet heads' arguments, every tensor checked.

    Args:
        heads: the head tensors under mmseg names (`decode_head.*`,
            `auxiliary_head.*`).
        widths: the channels of each backbone output, in order (the
            decode head reads them all, the last one also through the
            pyramid pooling).
        origin: mmseg name -> the file's name, for messages (also of
            missing tensors); None: the file uses mmseg's names.
        auxiliary_in_index: the backbone output the auxiliary head reads
            (Hugging Face: always 2); None: the one whose width its first
            conv takes (widths double per stage, so it is unique).

    Returns:
        dict with `classes`, `channels`, `pool_scale_count`,
        `auxiliary_channels` (None without an auxiliary head) and, with
        one, `auxiliary_num_convs`, `auxiliary_concat_input` and
        `auxiliary_in_index`.

    Raises:
        ConversionError: listing at once every missing tensor, every
            tensor a UperNet does not have and every wrong shape, named
            as in the file.

    Example:
        >>> head_layout(heads, (96, 192, 384, 768))["pool_scale_count"]
        4
    """
    classifier = _shape(heads, "decode_head.conv_seg.weight")
    if classifier is None or len(classifier) != 4:
        found = "is missing" if classifier is None else f"is {classifier}"
        raise ConversionError(
            f"{_named('decode_head.conv_seg.weight', origin)} {found}: the "
            "UperNet classifier (a [classes, channels, 1, 1] conv) gives "
            "the class count and the head's channels."
        )
    classes, channels = int(classifier[0]), int(classifier[1])
    count = len(widths)
    pools = _count(_PSP, heads)
    expected: dict[str, tuple] = {}
    for k in range(max(pools, 1)):
        expected.update(
            _conv_module(
                f"decode_head.psp_modules.{k}.1",
                channels,
                (widths[-1], 1, 1),
            )
        )
    expected.update(
        _conv_module(
            "decode_head.bottleneck",
            channels,
            (widths[-1] + max(pools, 1) * channels, 3, 3),
        )
    )
    for i in range(count - 1):
        expected.update(
            _conv_module(
                f"decode_head.lateral_convs.{i}", channels, (widths[i], 1, 1)
            )
        )
        expected.update(
            _conv_module(
                f"decode_head.fpn_convs.{i}", channels, (channels, 3, 3)
            )
        )
    expected.update(
        _conv_module(
            "decode_head.fpn_bottleneck", channels, (count * channels, 3, 3)
        )
    )
    expected["decode_head.conv_seg.weight"] = (classes, channels, 1, 1)
    expected["decode_head.conv_seg.bias"] = (classes,)
    layout = dict(
        classes=classes,
        channels=channels,
        pool_scale_count=pools,
        auxiliary_channels=None,
    )
    if any(k.startswith("auxiliary_head.") for k in heads):
        layout.update(_auxiliary(heads, widths, origin, auxiliary_in_index))
        expected.update(_auxiliary_shapes(layout, widths))
    _compare(heads, expected, origin)
    return layout


def _auxiliary(heads, widths, origin, in_index) -> dict:
    seg = _shape(heads, "auxiliary_head.conv_seg.weight")
    first = _shape(heads, "auxiliary_head.convs.0.conv.weight")
    if seg is None or first is None or len(seg) != 4 or len(first) != 4:
        key = "auxiliary_head.conv_seg.weight"
        if seg is not None and len(seg) == 4:
            key = "auxiliary_head.convs.0.conv.weight"
        shape = _shape(heads, key)
        found = "is missing" if shape is None else f"has shape {list(shape)}"
        raise ConversionError(
            f"{_named(key, origin)} {found}: the auxiliary FCN head needs "
            "its first conv ([channels, in, 3, 3]) and its classifier "
            "([classes, channels, 1, 1])."
        )
    source = int(first[1])
    if in_index is None:
        matching = [i for i, w in enumerate(widths) if w == source]
        if len(matching) != 1:
            raise ConversionError(
                f"{_named('auxiliary_head.convs.0.conv.weight', origin)} "
                f"reads {source} channels, but the backbone's outputs have "
                f"{list(widths)}: no single output feeds the auxiliary head."
            )
        in_index = matching[0]
    elif not 0 <= in_index < len(widths):
        raise ConversionError(
            f"The auxiliary head reads backbone output {in_index}, but the "
            f"backbone has {len(widths)} outputs."
        )
    return dict(
        auxiliary_channels=int(first[0]),
        auxiliary_num_convs=_count(_AUX_CONV, heads),
        auxiliary_concat_input=any(
            k.startswith("auxiliary_head.conv_cat.") for k in heads
        ),
        auxiliary_in_index=int(in_index),
    )


def _auxiliary_shapes(layout: dict, widths) -> dict:
    channels = layout["auxiliary_channels"]
    source = widths[layout["auxiliary_in_index"]]
    expected = {}
    for j in range(layout["auxiliary_num_convs"]):
        inputs = source if j == 0 else channels
        expected.update(
            _conv_module(f"auxiliary_head.convs.{j}", channels, (inputs, 3, 3))
        )
    if layout["auxiliary_concat_input"]:
        expected.update(
            _conv_module(
                "auxiliary_head.conv_cat",
                channels,
                (source + channels, 3, 3),
            )
        )
    classes = layout["classes"]
    expected["auxiliary_head.conv_seg.weight"] = (classes, channels, 1, 1)
    expected["auxiliary_head.conv_seg.bias"] = (classes,)
    return expected


def _compare(heads, expected: dict, origin) -> None:
    problems = []
    missing = [k for k in expected if k not in heads]
    if missing:
        problems.append("missing:")
        problems += [
            f"  {_named(k, origin)} {list(expected[k])}" for k in missing
        ]
    counters = {
        k.rsplit(".", 1)[0] + "." + _COUNTER
        for k in expected
        if k.endswith(".bn.weight")
    }
    unknown = [k for k in heads if k not in expected and k not in counters]
    if unknown:
        problems.append("not part of this UperNet:")
        problems += [
            f"  {_named(k, origin)} {list(np.shape(heads[k]))}" for k in unknown
        ]
    wrong = [
        f"  {_named(k, origin)} {list(np.shape(heads[k]))}, expected "
        f"{list(shape)}"
        for k, shape in expected.items()
        if k in heads and tuple(np.shape(heads[k])) != shape
    ]
    wrong += [
        f"  {_named(k, origin)} {list(np.shape(heads[k]))}, expected []"
        for k in heads
        if k in counters and np.shape(heads[k]) not in ((), (1,))
    ]
    if wrong:
        problems.append("wrong shapes:")
        problems += wrong
    if problems:
        raise ConversionError(
            "The UperNet heads do not fit the layout their classifier and "
            "backbone imply (channels, classes and stage widths):\n"
            + "\n".join(problems)
        )


def convert_heads(
    heads: dict[str, np.ndarray], origin: dict | None = None
) -> Converted:
    """Renames checked UperNet head tensors (mmseg names) to Keras paths.

    Args:
        heads: the head tensors, already checked by `head_layout`.
        origin: mmseg name -> the file's name; sources are named by it.

    Returns:
        A `Converted` of the heads; the BatchNorm counters
        (`num_batches_tracked`) are in `ignored`, with a note.

    Example:
        >>> convert_heads(heads).weights[
        ...     "decode_head/conv_seg/kernel"].shape
        (1, 1, 512, 150)
    """
    origin = origin or {}
    counters = {k: v for k, v in heads.items() if k.endswith(_COUNTER)}
    converted = apply_rules(heads, HEAD_RULES, skip=counters)
    converted.sources = {
        p: origin.get(s, s) for p, s in converted.sources.items()
    }
    if converted.unmatched:
        stray = ", ".join(
            f"{origin.get(k, k)} {list(s)}"
            for k, s in converted.unmatched.items()
        )
        raise ConversionError(f"Not part of a UperNet head: {stray}.")
    dense_swin.note_ignored(
        converted,
        {origin.get(k, k): v for k, v in counters.items()},
        "the heads",
        "BatchNorm's num_batches_tracked counters, which inference does "
        "not use",
    )
    return converted


def merge(backbone: Converted, heads: Converted) -> Converted:
    """One `Converted` of a backbone's and its heads' conversions.

    Example:
        >>> merge(dense_swin.convert(backbone), convert_heads(heads))
    """
    for path, array in heads.weights.items():
        backbone.add(
            path, array, heads.sources[path], heads.source_shapes[path]
        )
    backbone.notes.extend(heads.notes)
    backbone.ignored.update(heads.ignored)
    return backbone


def output_widths(config: dict) -> tuple:
    """The channels of each backbone output (`embed_dim * 2**i`).

    Example:
        >>> output_widths(dict(embed_dim=96, out_indices=(0, 1, 2, 3)))
        (96, 192, 384, 768)
    """
    return tuple(config["embed_dim"] * 2**i for i in config["out_indices"])


def segmenter_config(backbone: dict, layout: dict, pool_scales) -> dict:
    """The `swin_upernet` arguments: the backbone's plus the heads'.

    `classes` is the class count (the builder's `num_classes`; the
    `swin_upernet` family maps it), `input_shape` (None, None, C).

    Example:
        >>> segmenter_config(backbone, layout, (1, 2, 3, 6))["classes"]
        150
    """
    config = dict(backbone)
    config.update(
        classes=layout["classes"],
        channels=layout["channels"],
        pool_scales=None if pool_scales is None else tuple(pool_scales),
        auxiliary_channels=layout["auxiliary_channels"],
    )
    for key in (
        "auxiliary_num_convs",
        "auxiliary_concat_input",
        "auxiliary_in_index",
    ):
        if key in layout:
            config[key] = layout[key]
    return config


def check_pool_scales(value, count: int, source: str) -> tuple:
    """Pool scales stated somewhere, checked against the module count.

    Raises:
        ConversionError: not a list of sizes, or another count than the
            checkpoint's pyramid pooling modules.

    Example:
        >>> check_pool_scales([1, 2, 3, 6], 4, "config.json")
        (1, 2, 3, 6)
    """
    scales = check_ints(list(value), "pool_scales", "image side", source)
    if len(scales) != count:
        raise ConversionError(
            f"{source}: pool_scales={list(scales)} names {len(scales)} "
            f"scales, but the checkpoint has {count} pyramid pooling "
            "modules (decode_head.psp_modules.*)."
        )
    return scales


def _split(tensors):
    backbone = {k: v for k, v in tensors.items() if k.startswith("backbone.")}
    heads = {k: v for k, v in tensors.items() if k.startswith(_HEADS)}
    others = [k for k in tensors if k not in backbone and k not in heads]
    if others:
        stray = ", ".join(
            f"{k} {list(np.shape(tensors[k]))}" for k in sorted(others)[:8]
        )
        more = f" (and {len(others) - 8} more)" if len(others) > 8 else ""
        raise ConversionError(
            f"A Swin UperNet has only backbone.*, decode_head.* and "
            f"auxiliary_head.* tensors; this one also has {stray}{more}."
        )
    return backbone, heads


def matches(tensors: dict[str, np.ndarray], meta=None) -> bool:
    """Whether `tensors` are an official Swin + UperNet segmenter.

    A dense Swin backbone under `backbone.` (`dense_swin.matches`) with
    a UPerHead (`decode_head.lateral_convs.*` or `fpn_bottleneck.*`,
    which no other mmseg head has).

    Example:
        >>> matches(read_pth("upernet_swin_tiny_patch4_window7_512x512.pth"))
        True
    """
    if meta is not None or not dense_swin.matches(tensors):
        return False
    return any(
        k.startswith(("decode_head.lateral_convs.", "decode_head.fpn_bottl"))
        for k in tensors
    )


def infer_config(
    tensors: dict[str, np.ndarray], meta=None, overrides=None
) -> dict:
    """`swin_upernet` arguments of an official segmenter checkpoint.

    The backbone's as `dense_swin.infer_config`; from the heads:
    `classes` (the classifier's rows), `channels`, `auxiliary_channels`
    (None without an auxiliary head), `auxiliary_num_convs`,
    `auxiliary_concat_input`, `auxiliary_in_index` (the output whose
    width the auxiliary head takes). `pool_scales` is added by `refine`
    (the file's config text, else the default); a `pool_scales` override
    is taken as it is.

    Raises:
        ConversionError: a head tensor missing, unknown or of a wrong
            shape (all listed, named as in the file).

    Example:
        >>> infer_config(read_pth("upernet_swin_tiny.pth"))["channels"]
        512
    """
    backbone, heads = _split(tensors)
    config = dense_swin.infer_config(backbone)
    layout = head_layout(heads, output_widths(config))
    scales = (overrides or {}).get("pool_scales")
    if scales is not None:
        scales = check_pool_scales(
            scales, layout["pool_scale_count"], "pool_scales="
        )
    return segmenter_config(config, layout, scales)


def convert(tensors: dict[str, np.ndarray], meta=None) -> Converted:
    """Renames an official segmenter checkpoint, strictly.

    The backbone through `dense_swin.convert`, the heads through
    `HEAD_RULES` after `head_layout`'s checks; the BatchNorm counters are
    noted and left out.

    Example:
        >>> convert(read_pth("upernet_swin_tiny.pth")).weights[
        ...     "decode_head/fpn_bottleneck/bn/moving_variance"].shape
        (512,)
    """
    backbone, heads = _split(tensors)
    converted = dense_swin.convert(backbone)
    config = dense_swin.infer_config(backbone)
    head_layout(heads, output_widths(config))
    return merge(converted, convert_heads(heads))


def stated_pool_scales(training_meta: dict) -> tuple | None:
    """The `pool_scales=` an mmseg checkpoint's config text states.

    mmseg keeps the training config as text in `meta['config']`; UPerHead
    is its only head with pool scales.

    Returns:
        The scales, or None when the text states none (or differing
        ones).

    Example:
        >>> stated_pool_scales({"meta": {"config": "...pool_scales=(1, 2,"
        ...                              " 3, 6), channels=512..."}})
        (1, 2, 3, 6)
    """
    text = (training_meta.get("meta") or {}).get("config")
    if not isinstance(text, str):
        return None
    found = set()
    for match in _POOL_SCALES_TEXT.finditer(text):
        parts = [p.strip() for p in match[1].split(",") if p.strip()]
        if not parts or not all(p.isdigit() for p in parts):
            return None
        found.add(tuple(int(p) for p in parts))
    return found.pop() if len(found) == 1 else None


def refine(
    config: dict, converted: Converted, training_meta: dict, overrides
) -> dict:
    """Completes `pool_scales` from the file's `meta` or the default.

    An explicit `pool_scales` (override) stays; else the config text's
    (`stated_pool_scales`); else (1, 2, 3, 6) for four pyramid pooling
    modules, with a note.

    Raises:
        ConversionError: another module count and no stated scales.

    Example:
        >>> refine(config, converted, {}, {})["pool_scales"]
        (1, 2, 3, 6)
    """
    if config.get("pool_scales") is not None:
        return config
    count = sum(
        1
        for p in converted.weights
        if p.startswith("decode_head/psp_modules_") and p.endswith("/kernel")
    )
    stated = stated_pool_scales(training_meta)
    if stated is not None:
        scales = check_pool_scales(stated, count, "meta['config']")
    elif count == len(DEFAULT_POOL_SCALES):
        scales = DEFAULT_POOL_SCALES
        converted.notes.append(
            "The checkpoint does not state its pool scales (no pool_scales= "
            "in meta['config']); its 4 pyramid pooling modules are taken "
            "as (1, 2, 3, 6), UPerHead's value in every released config. "
            "Pass pool_scales=... if it was trained with others."
        )
    else:
        raise ConversionError(
            f"The checkpoint has {count} pyramid pooling modules and does "
            "not state their scales (no pool_scales= in meta['config']): "
            f"pass pool_scales=(...) with {count} sizes."
        )
    return {**config, "pool_scales": tuple(scales)}


#: Official Swin + UperNet segmenters (`weights_tools.formats.FORMATS`).
CONVERTER = Converter(
    name=FORMAT,
    family=FAMILY,
    matches=matches,
    infer=infer_config,
    convert=convert,
    preprocessing=PREPROCESSING,
    refine=refine,
)
