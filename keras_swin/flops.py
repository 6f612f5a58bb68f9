"""Analytic FLOP counts (multiply-adds), as reported in the papers.

The Swin paper's "FLOPs" are multiply-accumulate counts from the official
`flops()` methods; ViT numbers in the literature (DeiT, timm) count the
same way. Both functions follow those conventions: matrix products,
attention (q k^T and attn v), patch embedding, LayerNorms where the
official code counts them, and the head. Softmax, GELU, biases and
residual adds are not counted.
"""

from __future__ import annotations


def swin_flops(
    embed_dim: int = 96,
    depths=(2, 2, 6, 2),
    num_heads=(3, 6, 12, 24),
    window_size: int = 7,
    patch_size: int = 4,
    image_size: int = 224,
    mlp_ratio: float = 4.0,
    classes: int = 1000,
    in_channels: int = 3,
    version: int = 1,
) -> int:
    """Multiply-adds of one Swin forward pass on a square image.

    Mirrors the official `SwinTransformer.flops()` (window clamping
    included), so Swin-T at 224 px gives 4.5e9, the paper's 4.5G, and
    with `version=2` the official `SwinTransformerV2.flops()`: the same
    matrix products (the continuous position bias MLP is not counted)
    and V2's patch merging, whose LayerNorm runs after the reduction on
    the 2C-wide half-resolution map (SwinV2-T at 256 px, window 8: 5.9G).

    Args:
        embed_dim: channels of stage 0.
        depths: blocks per stage.
        num_heads: heads per stage (kept for the signature's symmetry with
            the builder; the count does not depend on them).
        window_size: window side.
        patch_size: patch side.
        image_size: image side in pixels (a multiple of the patch size).
        mlp_ratio: MLP width ratio.
        classes: classes of the head (0: no head).
        in_channels: image channels.
        version: 1 (Swin) or 2 (Swin V2).

    Returns:
        The count as an int.

    Example:
        >>> round(swin_flops() / 1e9, 1)
        4.5
        >>> round(swin_flops(window_size=8, image_size=256, version=2) / 1e9, 1)
        5.9
    """
    if version not in (1, 2):
        raise ValueError(f"version must be 1 or 2, got {version!r}.")
    del num_heads
    side = image_size // patch_size
    flops = side * side * embed_dim * in_channels * patch_size**2
    flops += side * side * embed_dim  # patch norm
    dim = embed_dim
    for i, depth in enumerate(depths):
        window = min(window_size, side)
        tokens = window * window
        windows = (
            (side // window) ** 2
            if side % window == 0
            else (-(-side // window)) ** 2
        )
        for _ in range(depth):
            flops += side * side * dim  # norm1
            attention = tokens * dim * 3 * dim  # qkv
            attention += 2 * tokens * tokens * dim  # q k^T and attn v
            attention += tokens * dim * dim  # proj
            flops += windows * attention
            flops += 2 * side * side * dim * int(dim * mlp_ratio)  # mlp
            flops += side * side * dim  # norm2
        if i < len(depths) - 1:
            if version == 1:
                flops += side * side * dim  # merge norm (official count)
            # V2's official count: H * W * dim // 2 after the reduction.
            merged_norm = side * side * dim // 2
            side = (side + 1) // 2
            flops += side * side * 4 * dim * 2 * dim  # reduction
            if version == 2:
                flops += merged_norm
            dim *= 2
    flops += side * side * dim  # final norm
    flops += dim * classes
    return int(flops)


def vit_flops(
    patch_size: int = 16,
    hidden_size: int = 768,
    num_layers: int = 12,
    mlp_dim: int = 3072,
    image_size: int = 224,
    classes: int = 1000,
    class_token: bool = True,
    representation_size: int | None = None,
    in_channels: int = 3,
) -> int:
    """Multiply-adds of one ViT forward pass on a square image.

    Args:
        patch_size: patch side.
        hidden_size: token width D.
        num_layers: transformer blocks.
        mlp_dim: MLP width.
        image_size: image side in pixels.
        classes: classes of the head (0: no head).
        class_token: whether a class token is added to the sequence.
        representation_size: width of the pre-logits layer, if any.
        in_channels: image channels.
        version: 1 (Swin) or 2 (Swin V2).

    Returns:
        The count as an int.

    Example:
        >>> round(vit_flops() / 1e9, 1)
        17.6
    """
    grid = (image_size // patch_size) ** 2
    tokens = grid + int(class_token)
    d = hidden_size
    flops = grid * d * in_channels * patch_size**2
    per_block = tokens * d * 3 * d + 2 * tokens * tokens * d
    per_block += tokens * d * d + 2 * tokens * d * mlp_dim
    flops += num_layers * per_block
    width = d
    if representation_size:
        flops += d * representation_size
        width = representation_size
    return int(flops + width * classes)
