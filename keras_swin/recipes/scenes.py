"""Generated scenes for semantic segmentation: shapes on textured ground.

The segmentation main job (`keras-swin train --task segmentation`) trains
on these: no download, deterministic from a seed, numpy only. Every image
is a textured background (class 0: stripes, a checkerboard or smooth
noise over a random colour, always with fine grain: no flat patches) with
one to four flat-coloured shapes on it. A shape's class is its
geometry, never its colour (every class takes its colours from the same
distribution, at least `MIN_CONTRAST` away from the background's), so a
model must learn shape:

    0 background, 1 disc, 2 square, 3 triangle, 4 ring

By default the shapes lie whole inside the image and apart from each
other, squares axis-aligned and triangles pointing up; `overlap=True`
lets them overlap (later over earlier) and be cut by the border, and
`rotate=True` turns squares and triangles at random (harder scenes).
Triangles are drawn 1.6 times larger (their circumradius) so that the
classes cover similar areas; rings have a hole that shows the ground. The
label map is the class of the top-most shape at each pixel (pixels are
inside a shape when their centre is), exactly the pixels painted in that
shape's colour.
"""

from __future__ import annotations

import math

import numpy as np

#: Class names, index = label value.
SCENE_CLASSES = ("background", "disc", "square", "triangle", "ring")

#: A colour per class for plots (`keras_swin.ade20k.colorize`): dark
#: grey background, then red, green, blue and yellow.
SCENE_PALETTE = np.array(
    [[64, 64, 64], [230, 25, 75], [60, 180, 75], [0, 130, 200], [255, 225, 25]],
    np.uint8,
)

#: Seeds of the three splits, mixed with the dataset seed: the splits never
#: share a scene.
_SPLIT_KEYS = {"train": 0, "validation": 1, "test": 2}

#: Triangles' circumradius over the drawn size of the other shapes: an
#: equilateral triangle covers 1.30 r^2, a disc 3.14 r^2, a square 4 r^2.
TRIANGLE_SCALE = 1.6

#: Placements tried for a shape that must keep apart from the others.
_PLACEMENT_TRIES = 30

#: Strength of the grain on every background, relative to the pattern.
GRAIN = 0.5

#: Smallest gap between the boxes of shapes kept apart, in pixels (over
#: 1: no two shapes have 4-neighbouring pixels).
_GAP = 1.5

#: Smallest RGB distance between a shape's colour and the background's
#: mean colour, so that every shape is visible.
MIN_CONTRAST = 80.0


def shape_mask(kind: int, center, size: float, angle: float, height, width):
    """Pixels inside one shape, by their centres.

    Args:
        kind: class index, 1 (disc) to 4 (ring).
        center: (y, x) of the shape's centre, in pixels (the pixel grid's
            corner is (0, 0); pixel (i, j) has its centre at (i + .5,
            j + .5)).
        size: radius of the disc and ring, half side of the square,
            circumradius of the (equilateral) triangle.
        angle: rotation in radians (squares and triangles).
        height, width: image size.

    Returns:
        (height, width) bool mask.

    Example:
        >>> int(shape_mask(2, (4, 4), 2, 0.0, 8, 8).sum())
        16
    """
    yy, xx = np.mgrid[:height, :width] + 0.5
    dy, dx = yy - center[0], xx - center[1]
    if kind == 1:  # disc
        return dy**2 + dx**2 <= size**2
    if kind == 4:  # ring: the outer 45% of the radius
        r2 = dy**2 + dx**2
        return (r2 <= size**2) & (r2 >= (0.55 * size) ** 2)
    cos, sin = math.cos(angle), math.sin(angle)
    u, v = cos * dx + sin * dy, -sin * dx + cos * dy
    if kind == 2:  # square
        return (np.abs(u) <= size) & (np.abs(v) <= size)
    if kind == 3:  # equilateral triangle, circumradius `size`
        inside = np.ones((height, width), bool)
        for k in range(3):
            a = angle + 2 * math.pi * k / 3
            # Each edge lies at distance size/2 from the centre, facing
            # away from the opposite vertex.
            inside &= -math.cos(a) * dx - math.sin(a) * dy <= size / 2
        return inside
    raise ValueError(
        f"shape_mask: kind must be 1 (disc), 2 (square), 3 (triangle) or "
        f"4 (ring), got {kind!r}."
    )


def _texture(rng, height, width):
    """A background texture in about [-1, 1], (height, width, 3).

    Stripes, a checkerboard or smooth noise (one grey pattern), always
    with fine grain on top (per pixel and channel): no stretch of ground
    is flat, as every shape is.
    """
    yy, xx = np.mgrid[:height, :width].astype(np.float32)
    kind = rng.integers(3)
    if kind == 0:  # stripes at a random angle and period
        angle = rng.uniform(0, math.pi)
        period = rng.uniform(3, 8)
        phase = xx * math.cos(angle) + yy * math.sin(angle)
        pattern = np.sin(2 * math.pi * phase / period)
    elif kind == 1:  # checkerboard
        cell = int(rng.integers(2, 5))
        pattern = ((yy // cell + xx // cell) % 2) * 2.0 - 1.0
    else:  # smooth noise: a coarse random grid, upsampled
        cells = int(rng.integers(3, 7))
        grid = rng.uniform(-1, 1, (cells + 1, cells + 1))
        gy = yy / (height - 1) * cells
        gx = xx / (width - 1) * cells
        y0 = np.minimum(gy.astype(int), cells - 1)
        x0 = np.minimum(gx.astype(int), cells - 1)
        fy, fx = gy - y0, gx - x0
        pattern = (
            grid[y0, x0] * (1 - fy) * (1 - fx)
            + grid[y0 + 1, x0] * fy * (1 - fx)
            + grid[y0, x0 + 1] * (1 - fy) * fx
            + grid[y0 + 1, x0 + 1] * fy * fx
        )
    grain = rng.uniform(-1, 1, (height, width, 3)).astype(np.float32)
    return pattern[..., None].astype(np.float32) + GRAIN * grain


def _shape_colour(rng, background):
    """A random colour at least `MIN_CONTRAST` away from `background`."""
    while True:
        colour = rng.integers(0, 256, 3)
        if np.linalg.norm(colour - background) >= MIN_CONTRAST:
            return colour.astype(np.uint8)


def make_scene(
    rng: np.random.Generator,
    image_size: int = 64,
    max_shapes: int = 4,
    size_range: tuple = (0.15, 0.27),
    overlap: bool = False,
    rotate: bool = False,
):
    """One scene: an image, its label map and the shapes drawn.

    Args:
        rng: the numpy generator to draw from.
        image_size: side of the square image.
        max_shapes: 1 to this many shapes (uniform).
        size_range: shape size (see `shape_mask`) as a fraction of the
            side (times `TRIANGLE_SCALE` for triangles).
        overlap: True: centres anywhere in the middle 70% of the image,
            shapes may overlap and be cut by the border. False: every
            shape lies whole inside the image, and the boxes round the
            shapes keep 1.5 px apart (a placement is drawn up to
            `_PLACEMENT_TRIES` times; a shape that finds no room is left
            out).
        rotate: squares and triangles at random angles; False: squares
            axis-aligned and triangles pointing up.

    Returns:
        (image (S, S, 3) uint8, labels (S, S) uint8, shapes): `shapes` is
        the list of dicts (kind, center, size, angle, colour) in drawing
        order.

    Example:
        >>> image, labels, shapes = make_scene(np.random.default_rng(0))
        >>> image.shape, labels.shape
        ((64, 64, 3), (64, 64))
    """
    side = image_size
    base = rng.integers(40, 216, 3).astype(np.float32)
    amplitude = rng.uniform(20, 40)
    image = base + amplitude * _texture(rng, side, side)
    image = np.clip(np.round(image), 0, 255).astype(np.uint8)
    labels = np.zeros((side, side), np.uint8)
    shapes = []
    for _ in range(int(rng.integers(1, max_shapes + 1))):
        kind = int(rng.integers(1, len(SCENE_CLASSES)))
        size = rng.uniform(*size_range) * side
        if kind == 3:
            size *= TRIANGLE_SCALE
        angle = float(rng.uniform(0, 2 * math.pi))
        if not rotate:
            # A vertex straight up (y grows downwards).
            angle = -math.pi / 2 if kind == 3 else 0.0
        colour = _shape_colour(rng, base)
        if overlap:
            # The centre stays inside; a shape may be cut by an edge.
            center = tuple(rng.uniform(0.15 * side, 0.85 * side, 2))
            mask = _placed_mask(kind, center, size, angle, side)
        else:
            # Apart: the boxes round the shapes keep a gap of 1.5 px.
            up, down, left, right = _extent(kind, size, rotate)
            center = None
            low = (up + _GAP, left + _GAP)
            high = (side - down - _GAP, side - right - _GAP)
            room = low[0] < high[0] and low[1] < high[1]
            for _ in range(_PLACEMENT_TRIES if room else 0):
                y, x = rng.uniform(low, high)
                if all(
                    not _boxes_meet(
                        (y - up, y + down, x - left, x + right),
                        _box(other, rotate),
                    )
                    for other in shapes
                ):
                    center = (float(y), float(x))
                    break
            if center is None:
                continue
            mask = _placed_mask(kind, center, size, angle, side)
        image[mask] = colour
        labels[mask] = kind
        shapes.append(
            dict(
                kind=kind,
                center=center,
                size=float(size),
                angle=angle,
                colour=tuple(int(c) for c in colour),
            )
        )
    return image, labels, shapes


def _reach(kind, size):
    """Farthest distance of a shape's points from its centre."""
    return size * math.sqrt(2) if kind == 2 else size


def _extent(kind, size, rotate):
    """(up, down, left, right) reach of a shape from its centre."""
    if rotate:
        reach = _reach(kind, size)
        return reach, reach, reach, reach
    if kind == 3:  # upright triangle, circumradius `size`
        half = size * math.sqrt(3) / 2
        return size, size / 2, half, half
    return size, size, size, size


def _box(shape, rotate):
    """(top, bottom, left, right) of a placed shape."""
    up, down, left, right = _extent(shape["kind"], shape["size"], rotate)
    y, x = shape["center"]
    return y - up, y + down, x - left, x + right


def _boxes_meet(a, b):
    """Whether two boxes come closer than `_GAP`."""
    return not (
        a[1] + _GAP <= b[0]
        or b[1] + _GAP <= a[0]
        or a[3] + _GAP <= b[2]
        or b[3] + _GAP <= a[2]
    )


def _placed_mask(kind, center, size, angle, side):
    """`shape_mask` on a square image, computed inside the shape's box."""
    reach = _reach(kind, size)
    top = max(0, int(center[0] - reach) - 1)
    left = max(0, int(center[1] - reach) - 1)
    bottom = min(side, int(center[0] + reach) + 2)
    right = min(side, int(center[1] + reach) + 2)
    mask = np.zeros((side, side), bool)
    if bottom > top and right > left:
        mask[top:bottom, left:right] = shape_mask(
            kind,
            (center[0] - top, center[1] - left),
            size,
            angle,
            bottom - top,
            right - left,
        )
    return mask


def make_scenes(
    count: int,
    image_size: int = 64,
    seed: int = 0,
    max_shapes: int = 4,
    size_range: tuple = (0.15, 0.27),
    overlap: bool = False,
    rotate: bool = False,
):
    """`count` scenes from one seed.

    Args:
        count: number of scenes.
        image_size: side in pixels.
        seed: the same seed gives the same scenes.
        max_shapes: 1 to this many shapes per scene.
        size_range: shape size as a fraction of the side.
        overlap: shapes may overlap and be cut by the border (see
            `make_scene`).
        rotate: squares and triangles at random angles.

    Returns:
        (images (N, S, S, 3) uint8, labels (N, S, S) uint8).

    Example:
        >>> images, labels = make_scenes(4, 32, seed=1)
        >>> images.shape, labels.dtype
        ((4, 32, 32, 3), dtype('uint8'))
    """
    if count < 0 or image_size < 8:
        raise ValueError(
            f"make_scenes: count must be >= 0 and image_size >= 8, got "
            f"count={count}, image_size={image_size}."
        )
    rng = np.random.default_rng(seed)
    images = np.empty((count, image_size, image_size, 3), np.uint8)
    labels = np.empty((count, image_size, image_size), np.uint8)
    for i in range(count):
        images[i], labels[i], _ = make_scene(
            rng, image_size, max_shapes, size_range, overlap, rotate
        )
    return images, labels


def scene_splits(
    sizes: dict | None = None,
    image_size: int = 64,
    seed: int = 0,
    **kwargs,
) -> dict:
    """Train, validation and test scenes, each split from its own seed.

    Args:
        sizes: {split: count}; default 2000 / 200 / 200.
        image_size: side in pixels.
        seed: dataset seed (each split mixes in its own key, so the
            splits differ and growing one leaves the others unchanged).
        **kwargs: `make_scenes` options (max_shapes, size_range,
            overlap, rotate).

    Returns:
        {split: (images (N, S, S, 3) uint8, labels (N, S, S) uint8)}.

    Example:
        >>> splits = scene_splits({"train": 8, "test": 4}, 32)
        >>> sorted(splits), splits["test"][1].shape
        (['test', 'train'], (4, 32, 32))
    """
    sizes = sizes or {"train": 2000, "validation": 200, "test": 200}
    unknown = set(sizes) - set(_SPLIT_KEYS)
    if unknown:
        raise ValueError(
            f"scene_splits: unknown split(s) {sorted(unknown)}; splits are "
            f"{sorted(_SPLIT_KEYS)}."
        )
    return {
        split: make_scenes(
            count,
            image_size,
            seed=np.random.SeedSequence([seed, _SPLIT_KEYS[split]]),
            **kwargs,
        )
        for split, count in sizes.items()
    }
