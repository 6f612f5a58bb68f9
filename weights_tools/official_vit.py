"""Official Vision Transformer (google-research/vision_transformer) `.npz`.

Layout (see the golden FORMAT.md): `/`-joined flax paths: `embedding`
(HWIO conv), `cls`, `Transformer/posembed_input/pos_embedding`,
`Transformer/encoderblock_{i}/{LayerNorm_0, MultiHeadDotProductAttention_1
/{query,key,value,out}, LayerNorm_2, MlpBlock_3/Dense_{0,1}}`,
`Transformer/encoder_norm`, `pre_logits`, `head`. Released files use the
pre-Linen child names above; files with Linen names (`LayerNorm_1`,
`MultiHeadDotProductAttention_0`, `MlpBlock_0`) are accepted too, as the
official loader does: children are renumbered per type in natural order.
q, k, v kernels (D, heads, head_dim) are fused into one (D, 3D) `qkv`.
"""

from __future__ import annotations

import math
import re

import numpy as np

from weights_tools.common import (
    INCEPTION_PREPROCESSING,
    ConversionError,
    Converted,
    Converter,
    Rule,
    apply_rules,
    check_model_config,
    natural_key,
)

FORMAT = "official_vit"

_BLOCK_CHILD = re.compile(
    r"Transformer/encoderblock_(\d+)/([A-Za-z]+)_(\d+)/(.*)"
)
# Per block: the n-th child of each type, in natural order, and its role.
_ROLES = {
    ("LayerNorm", 0): "norm1",
    ("LayerNorm", 1): "norm2",
    ("MultiHeadDotProductAttention", 0): "attn",
    ("MlpBlock", 0): "mlp",
}
_QKV = ("query", "key", "value")


def _flat(array: np.ndarray) -> np.ndarray:
    # (D, heads, head_dim) -> (D, D); (heads, head_dim) -> (D,).
    return (
        array.reshape(array.shape[0], -1)
        if array.ndim == 3
        else array.reshape(-1)
    )


RULES = [
    Rule(r"embedding/kernel", "patch_embed/proj/kernel"),
    Rule(r"embedding/bias", "patch_embed/proj/bias"),
    Rule(r"cls", "cls_token/cls"),
    Rule(r"Transformer/posembed_input/pos_embedding", "pos_embed/embedding"),
    Rule(r"blocks_(\d+)/(norm[12])/scale", r"encoder/blocks_\1/\2/gamma"),
    Rule(r"blocks_(\d+)/(norm[12])/bias", r"encoder/blocks_\1/\2/beta"),
    Rule(
        r"blocks_(\d+)/attn/qkv/(kernel|bias)", r"encoder/blocks_\1/attn/qkv/\2"
    ),
    Rule(
        r"blocks_(\d+)/attn/out/kernel",
        r"encoder/blocks_\1/attn/proj/kernel",
        lambda a: a.reshape(-1, a.shape[-1]),
    ),
    Rule(r"blocks_(\d+)/attn/out/bias", r"encoder/blocks_\1/attn/proj/bias"),
    Rule(
        r"blocks_(\d+)/mlp/Dense_0/(kernel|bias)",
        r"encoder/blocks_\1/mlp/fc1/\2",
    ),
    Rule(
        r"blocks_(\d+)/mlp/Dense_1/(kernel|bias)",
        r"encoder/blocks_\1/mlp/fc2/\2",
    ),
    Rule(r"Transformer/encoder_norm/scale", "encoder/norm/gamma"),
    Rule(r"Transformer/encoder_norm/bias", "encoder/norm/beta"),
    Rule(r"pre_logits/(kernel|bias)", r"pre_logits/\1"),
    Rule(r"head/(kernel|bias)", r"head/\1"),
]


def matches(tensors: dict[str, np.ndarray], meta=None) -> bool:
    """Whether `tensors` look like an official ViT `.npz`.

    Example:
        >>> matches(read_npz("ViT-B_16.npz"))
        True
    """
    return "embedding/kernel" in tensors and any(
        k.startswith("Transformer/encoderblock_") for k in tensors
    )


def _block_names(tensors) -> dict[str, str]:
    """Maps encoder-block keys to `blocks_{i}/{role}/...` names."""
    children: dict[str, dict[str, list[str]]] = {}
    for key in tensors:
        match = _BLOCK_CHILD.fullmatch(key)
        if match:
            kinds = children.setdefault(match[1], {})
            names = kinds.setdefault(match[2], [])
            child = f"{match[2]}_{match[3]}"
            if child not in names:
                names.append(child)
    roles = {}
    for block, kinds in children.items():
        for kind, names in kinds.items():
            for rank, child in enumerate(sorted(names, key=natural_key)):
                role = _ROLES.get((kind, rank))
                if role is not None:
                    roles[f"Transformer/encoderblock_{block}/{child}/"] = (
                        f"blocks_{block}/{role}/"
                    )
    renamed = {}
    for key in tensors:
        for prefix, target in roles.items():
            if key.startswith(prefix):
                renamed[key] = target + key[len(prefix) :]
    return renamed


def _canonical(tensors) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Renames block children and fuses q/k/v; returns arrays and sources."""
    renamed = _block_names(tensors)
    out, sources = {}, {}
    for key, array in tensors.items():
        name = renamed.get(key, key)
        out[name], sources[name] = array, key
    for name in [n for n in out if n.endswith("/attn/query/kernel")]:
        prefix = name[: -len("query/kernel")]
        for part in ("kernel", "bias"):
            keys = [f"{prefix}{p}/{part}" for p in _QKV]
            if all(k in out for k in keys):
                fused = np.concatenate(
                    [_flat(out.pop(k)) for k in keys], axis=-1
                )
                target = f"{prefix}qkv/{part}"
                out[target] = fused
                sources[target] = " + ".join(sources.pop(k) for k in keys)
    return out, sources


def infer_config(
    tensors: dict[str, np.ndarray], meta=None, overrides=None
) -> dict:
    """`VisionTransformer` arguments that reproduce the checkpoint's model.

    Read from the tensors: patch size, width, layers, heads, MLP width,
    classifier ("token" with `cls`, else "gap"), representation size,
    classes (0 without a head) and the image size from the position
    embedding (a square grid). Numerics are the official ones: LayerNorm
    epsilon 1e-6 and the tanh GELU.

    Args:
        tensors: the `.npz` entries.

    Returns:
        dict with the `VisionTransformer` keyword arguments plus `classes`
        and `input_shape`.

    Raises:
        ConversionError: an inconsistent or incomplete checkpoint.

    Example:
        >>> infer_config(read_npz("ViT-B_16.npz"))["num_layers"]
        12
    """
    kernel = tensors["embedding/kernel"]
    patch, channels, hidden = kernel.shape[0], kernel.shape[2], kernel.shape[3]
    canonical, _ = _canonical(tensors)
    layers = sorted(
        {int(m[1]) for k in canonical if (m := re.match(r"blocks_(\d+)/", k))}
    )
    if layers != list(range(len(layers))) or not layers:
        raise ConversionError(
            f"Encoder blocks must be numbered 0..n-1, found {layers}."
        )
    try:
        query = tensors[
            next(
                k
                for k in tensors
                if re.fullmatch(
                    r"Transformer/encoderblock_0/MultiHeadDotProductAttention_\d+/"
                    r"query/kernel",
                    k,
                )
            )
        ]
        mlp_dim = canonical["blocks_0/mlp/Dense_0/kernel"].shape[1]
    except (StopIteration, KeyError) as error:
        raise ConversionError(
            "encoderblock_0 lacks its attention query kernel or its "
            f"MlpBlock Dense_0 kernel ({error})."
        ) from None
    classifier = "token" if "cls" in tensors else "gap"
    pos = tensors.get("Transformer/posembed_input/pos_embedding")
    if pos is None:
        raise ConversionError(
            "Transformer/posembed_input/pos_embedding is missing."
        )
    grid_tokens = pos.shape[1] - (classifier == "token")
    side = math.isqrt(grid_tokens)
    if side * side != grid_tokens:
        raise ConversionError(
            f"The position embedding has {grid_tokens} grid rows, not a "
            "square grid; pass input_shape=... to load_checkpoint."
        )
    pre_logits = tensors.get("pre_logits/kernel")
    head = tensors.get("head/kernel")
    config = dict(
        patch_size=int(patch),
        hidden_size=int(hidden),
        num_layers=len(layers),
        num_heads=int(query.shape[1]),
        mlp_dim=int(mlp_dim),
        classifier=classifier,
        representation_size=None
        if pre_logits is None
        else int(pre_logits.shape[1]),
        layer_norm_epsilon=1e-6,
        gelu_approximate=True,
        classes=0 if head is None else int(head.shape[1]),
        input_shape=(side * patch, side * patch, int(channels)),
    )
    return check_model_config(config)


def convert(tensors: dict[str, np.ndarray], meta=None) -> Converted:
    """Renames an official ViT `.npz` to this package's weight paths.

    Args:
        tensors: the `.npz` entries.

    Returns:
        A `Converted` ready for `weights_tools.convert.fit_checkpoint`.

    Example:
        >>> convert(read_npz("ViT-B_16.npz")).weights[
        ...     "encoder/blocks_0/attn/qkv/kernel"].shape
        (768, 2304)
    """
    canonical, sources = _canonical(tensors)
    converted = apply_rules(canonical, RULES)
    converted.sources = {p: sources[s] for p, s in converted.sources.items()}
    converted.unmatched = {
        sources[k]: s for k, s in converted.unmatched.items()
    }
    return converted


#: Google's ViT `.npz` layout; its position embeddings are resized as
#: `scipy.ndimage.zoom` does in the official fine-tuning code.
CONVERTER = Converter(
    name=FORMAT,
    family="vit",
    matches=matches,
    infer=infer_config,
    convert=convert,
    position_resampling="zoom",
    preprocessing=INCEPTION_PREPROCESSING,
)
