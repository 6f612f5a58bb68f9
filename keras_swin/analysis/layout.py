"""Where a model's tokens sit in the input image: the layouts analyses use.

Plain records, no Keras: `keras_swin.analysis.attention` fills them from a
built model (`vit_token_layout`, `swin_window_layouts`), and the numpy
analyses (`distance`, `swin_maps`, `rollout`) read them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TokenLayout:
    """The token sequence of a ViT for one input size.

    Tokens are `[prefix (class, registers), patches]`, patches row-major
    on a `grid` of `patch_size` x `patch_size` pixel patches.

    Attributes:
        grid: (h, w) patch grid.
        patch_size: patch side in input pixels.
        num_prefix_tokens: P, the class and register tokens first.

    Example:
        >>> layout = TokenLayout(grid=(2, 3), patch_size=16,
        ...                      num_prefix_tokens=1)
        >>> layout.num_tokens
        7
        >>> layout.patch_centres()[:2].tolist()
        [[8.0, 8.0], [8.0, 24.0]]
    """

    grid: tuple[int, int]
    patch_size: int
    num_prefix_tokens: int

    @property
    def num_tokens(self) -> int:
        """P + h * w."""
        return self.num_prefix_tokens + self.grid[0] * self.grid[1]

    def patch_centres(self) -> np.ndarray:
        """(h * w, 2) float64 (y, x) pixel centres of the patches, row-major."""
        rows, cols = np.meshgrid(
            np.arange(self.grid[0]), np.arange(self.grid[1]), indexing="ij"
        )
        centres = np.stack([rows.ravel(), cols.ravel()], axis=-1)
        return (centres + 0.5) * float(self.patch_size)


@dataclass(frozen=True)
class WindowLayout:
    """How one Swin block cuts its (H, W) token map into windows.

    The block pads the map at the bottom/right to (padded_height,
    padded_width), rolls it by -shift on both axes, and cuts it into
    `window` x `window` windows, numbered row-major (the order of
    `window_partition` and of the attention arrays, (B, nW, heads, M*M,
    M*M)); inside a window, tokens are row-major too. A token of this
    stage covers `stride` x `stride` input pixels.

    Attributes:
        name: the block, e.g. "layers_1_blocks_1".
        stage: stage index i.
        block: block index j in its stage.
        height: H, tokens of the stage's map (before padding).
        width: W.
        window: M, the window side used at this size (clamped or not).
        shift: the cyclic shift used at this size (0 when not shifted).
        padded_height: Hp, a multiple of M.
        padded_width: Wp.
        stride: input pixels per token side (patch_size * 2**stage).
        image_height: height of the input image in pixels.
        image_width: width.

    Example:
        >>> layout = WindowLayout("layers_0_blocks_1", 0, 1, 7, 7, 4, 2,
        ...                       8, 8, 4, 28, 28)
        >>> layout.num_windows
        4
    """

    name: str
    stage: int
    block: int
    height: int
    width: int
    window: int
    shift: int
    padded_height: int
    padded_width: int
    stride: int
    image_height: int
    image_width: int

    @property
    def num_windows(self) -> int:
        """nW = (Hp / M) * (Wp / M)."""
        return (self.padded_height // self.window) * (
            self.padded_width // self.window
        )
