"""Fine-tune KerasHub's RetinaNet on a keras-swin Swin: coloured shapes.

    $ pip install --no-deps keras-hub==0.32.0
    $ python examples/detect_shapes_with_kerashub.py
    shapes: 1600 training and 200 held-out 96x96 images, 1-4 objects each
    swin backbone: 0.36M parameters; RetinaNet: 2.34M
    ...
    epoch 15/15: loss 0.111 (box 0.007, class 0.104; 14s)
    held-out box mAP@0.5: 0.722 (circle 0.695, square 0.679, triangle 0.791)
    wrote runs/detect_shapes/results.json and runs/detect_shapes/predictions.png

(TensorFlow backend, seed 0, about 4.5 minutes on 2 shared cores of an
AMD EPYC; seeds 0, 1, 2 give 0.722, 0.703 and 0.576.) KerasHub is an
optional dependency: install it with `pip install --no-deps
keras-hub==0.32.0` (the `keras-swin[hub]` extra names the same version),
because its declared tensorflow-text pulls another TensorFlow while its
model code needs nothing beyond Keras.

A generated dataset, deterministic from `--seed` and needing no download:
circles, squares and triangles of random colours and sizes on noisy
backgrounds. A small `SwinBackbone` (the official dense-prediction
backbone: normalised stage outputs P3-P5) goes into
`keras_hub.models.RetinaNetBackbone(image_encoder=...)`, which adds
KerasHub's feature pyramid; `RetinaNetObjectDetector` adds the anchor
heads, its label encoder (anchors matched to boxes by IoU), the focal and
Huber losses, and non-max suppression in `predict`. Boxes are `xyxy` in
pixels; `fit` takes `{"boxes": (B, N, 4), "labels": (B, N)}` padded with
-1.

KerasHub has no detection metric, so the held-out box mAP@0.5 is computed
here, PASCAL VOC style (`mean_average_precision`: per class, detections
ranked by score over the whole split, each matched to the unmatched
ground-truth box of its class with the highest IoU >= 0.5, AP = area under
the precision envelope, all points).

Everything trains from scratch (AdamW, warm-up then cosine decay, 15
epochs of 100 batches): the Swin's output LayerNorms start at a tenth of
their usual scale (see `build_detector`), and anchors start at 16 px.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import keras
import keras_hub
import numpy as np

from keras_swin.models.swin_backbone import SwinBackbone

CLASS_NAMES = ("circle", "square", "triangle")


# --- data -------------------------------------------------------------------


def _draw(kind, canvas, x0, y0, side, colour):
    """Paints one shape into `canvas` (H, W, 3); returns its xyxy box."""
    height, width = canvas.shape[:2]
    yy, xx = np.mgrid[:height, :width] + 0.5
    if kind == 0:  # circle
        radius = side / 2
        mask = (xx - x0 - radius) ** 2 + (yy - y0 - radius) ** 2 <= radius**2
    elif kind == 1:  # square
        mask = (xx >= x0) & (xx < x0 + side) & (yy >= y0) & (yy < y0 + side)
    else:  # triangle, apex up: |x - centre| <= (y - top) / 2 * (width/height)
        inside_rows = (yy >= y0) & (yy < y0 + side)
        half = (yy - y0) / 2
        mask = inside_rows & (np.abs(xx - x0 - side / 2) <= half)
    canvas[mask] = colour
    rows, cols = np.nonzero(mask)
    return [cols.min(), rows.min(), cols.max() + 1, rows.max() + 1]


def make_shapes(count, image_size, seed, max_objects=4):
    """Images of coloured shapes with their boxes and classes.

    Each image has a random background colour with a gradient and pixel
    noise, and 1..`max_objects` shapes (0 circle, 1 square, 2 triangle)
    of a random colour that differs from the background, sides between
    1/6 and 1/2.5 of the image, overlapping earlier shapes by at most
    IoU 0.1. Deterministic from `seed`.

    Args:
        count: number of images.
        image_size: side S of the square images.
        seed: seed of the generator.
        max_objects: most shapes per image.

    Returns:
        images (count, S, S, 3) float32 in [0, 1]; boxes
        (count, max_objects, 4) float32 xyxy pixels; labels
        (count, max_objects) float32; padding rows are -1.

    Example:
        >>> images, boxes, labels = make_shapes(2, 64, seed=0)
        >>> images.shape, boxes.shape, labels.shape
        ((2, 64, 64, 3), (2, 4, 4), (2, 4))
    """
    rng = np.random.default_rng(seed)
    images = np.empty((count, image_size, image_size, 3), "float32")
    boxes = np.full((count, max_objects, 4), -1.0, "float32")
    labels = np.full((count, max_objects), -1.0, "float32")
    ramp = np.linspace(-1, 1, image_size, dtype="float32")
    for i in range(count):
        background = rng.uniform(0.1, 0.9, 3)
        slope = rng.uniform(-0.1, 0.1, (2, 3))
        canvas = (
            background
            + ramp[:, None, None] * slope[0]
            + ramp[None, :, None] * slope[1]
        )
        placed = []
        for _ in range(rng.integers(1, max_objects + 1)):
            for _attempt in range(20):
                side = rng.uniform(image_size / 6, image_size / 2.5)
                x0, y0 = rng.uniform(0, image_size - side, 2)
                box = np.array([x0, y0, x0 + side, y0 + side])
                if not placed or _iou(box, placed).max() <= 0.1:
                    break
            else:
                continue
            colour = rng.uniform(0, 1, 3)
            while np.abs(colour - background).max() < 0.35:
                colour = rng.uniform(0, 1, 3)
            kind = int(rng.integers(0, len(CLASS_NAMES)))
            tight = _draw(kind, canvas, x0, y0, side, colour)
            boxes[i, len(placed)] = tight
            labels[i, len(placed)] = kind
            placed.append(box)
        noise = rng.normal(0, 0.04, canvas.shape)
        images[i] = np.clip(canvas + noise, 0, 1)
    return images, boxes, labels


# --- model ------------------------------------------------------------------


def build_detector(
    image_size,
    embed_dim=16,
    depths=(1, 1, 2, 1),
    num_heads=(1, 2, 4, 8),
    window_size=6,
    head_layers=0,
):
    """RetinaNet (KerasHub) on a small `SwinBackbone`.

    The Swin's P3-P5 (strides 8, 16, 32) feed KerasHub's feature pyramid;
    anchors are 2x the stride (16-101 px over the three levels, three
    scales, aspect ratios 1/2, 1, 2), sized for objects of 16-40 px.

    Args:
        image_size: side of the square input images.
        embed_dim: Swin channels of the first stage.
        depths: Swin blocks per stage.
        num_heads: attention heads per stage.
        window_size: Swin window side.
        head_layers: 256-wide 3x3 convolutions in each head before the
            output convolution.

    Returns:
        A `keras_hub.models.RetinaNetObjectDetector` for `xyxy` boxes.

    Example:
        >>> detector = build_detector(96)
        >>> outputs = detector(np.zeros((1, 96, 96, 3), "float32"))
        >>> tuple(outputs["cls_logits"].shape)  # 9 anchors x (12² + 6² + 3²)
        (1, 1701, 3)
    """
    swin = SwinBackbone(
        embed_dim=embed_dim,
        depths=depths,
        num_heads=num_heads,
        window_size=window_size,
        drop_path_rate=0.1,
        out_indices=(1, 2, 3),
        image_shape=(image_size, image_size, 3),
    )
    backbone = keras_hub.models.RetinaNetBackbone(
        image_encoder=swin,
        min_level=3,
        max_level=5,
        use_p5=False,
        image_shape=(image_size, image_size, 3),
    )
    anchors = keras_hub.layers.AnchorGenerator(
        bounding_box_format="xyxy",
        min_level=3,
        max_level=5,
        num_scales=3,
        aspect_ratios=[0.5, 1.0, 2.0],
        anchor_size=2,
    )
    decoder = keras_hub.layers.NonMaxSuppression(
        bounding_box_format="xyxy",
        from_logits=True,
        iou_threshold=0.5,
        confidence_threshold=0.05,
        max_detections=20,
    )
    # Training from scratch: the Swin's output LayerNorms start at gamma
    # 0.1. KerasHub's FPN and heads (3x3 convolutions over 256 channels,
    # `random_normal` 0.05) turn unit-variance maps into class logits of
    # standard deviation about 2, whose focal-loss spike in the first
    # steps sets the transformer back; a convolutional backbone's small
    # initial activations do not. Pretrained weights overwrite this.
    for i in swin.out_indices:
        gamma = swin.get_layer(f"norm{i}").gamma
        gamma.assign(keras.ops.full(gamma.shape, 0.1))
    detector = keras_hub.models.RetinaNetObjectDetector(
        backbone=backbone,
        num_classes=len(CLASS_NAMES),
        bounding_box_format="xyxy",
        anchor_generator=anchors,
        pre_logits_num_conv_layers=head_layers,
        prediction_decoder=decoder,
    )
    return detector


def detect(detector, images, batch_size):
    """`detector.predict` in batches of one size: decoded detections.

    KerasHub 0.32's `NonMaxSuppression` reads the batch size from the
    static shape, which TensorFlow leaves unknown once `predict` has seen
    two batch sizes (a smaller last batch), and then fails; so the last
    batch is padded with copies of the last image and the extra rows
    dropped. The other backends need nothing, and get the same result.

    Args:
        detector: a `RetinaNetObjectDetector`.
        images: (N, H, W, 3) images.
        batch_size: images per `predict` batch.

    Returns:
        {"boxes": (N, D, 4), "confidence": (N, D), "labels": (N, D),
        "num_detections": (N,)}, as `predict` returns them.
    """
    count = len(images)
    extra = -count % batch_size
    padded = np.concatenate([images, np.repeat(images[-1:], extra, 0)])
    found = detector.predict(padded, batch_size=batch_size, verbose=0)
    return {key: value[:count] for key, value in found.items()}


# --- metric -----------------------------------------------------------------


def _iou(box, boxes):
    """IoU (N,) of one xyxy box with each of `boxes` (N, 4)."""
    boxes = np.asarray(boxes, "float64").reshape(-1, 4)
    x0 = np.maximum(box[0], boxes[:, 0])
    y0 = np.maximum(box[1], boxes[:, 1])
    x1 = np.minimum(box[2], boxes[:, 2])
    y1 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return inter / np.maximum(area + areas - inter, 1e-12)


def average_precision(recall, precision):
    """Area under the precision envelope (PASCAL VOC 2010+, all points).

    Args:
        recall: (K,) non-decreasing recall after each ranked detection.
        precision: (K,) precision after each ranked detection.

    Returns:
        The AP, a float in [0, 1].

    Example:
        >>> average_precision(np.array([0.5, 0.5, 1.0]),
        ...                   np.array([1.0, 0.5, 2 / 3]))
        0.8333333333333333
    """
    r = np.concatenate([[0.0], recall, [1.0]])
    p = np.concatenate([[0.0], precision, [0.0]])
    p = np.maximum.accumulate(p[::-1])[::-1]  # precision envelope
    steps = np.nonzero(r[1:] != r[:-1])[0]
    return float(np.sum((r[steps + 1] - r[steps]) * p[steps + 1]))


def mean_average_precision(
    true_boxes,
    true_labels,
    boxes,
    scores,
    labels,
    num_classes,
    iou_threshold=0.5,
):
    """Box mAP at one IoU threshold, PASCAL VOC style.

    Per class: all detections of the class over the split, by decreasing
    score; each is a true positive if its IoU with a not yet matched
    ground-truth box of that class in the same image is >= the threshold
    (the best such box is taken), else a false positive. AP is
    `average_precision` of the resulting precision/recall curve; mAP is
    the mean over classes that have ground truth.

    Args:
        true_boxes: (N, M, 4) xyxy ground truth; rows with label -1 are
            padding.
        true_labels: (N, M) classes, -1 for padding.
        boxes: (N, D, 4) xyxy detections.
        scores: (N, D) confidences; rows with label -1 are padding.
        labels: (N, D) detected classes, -1 for padding.
        num_classes: number of classes.
        iou_threshold: minimum IoU of a true positive.

    Returns:
        {"mAP": float, "AP": [per-class AP or None without ground truth]}.

    Example:
        >>> truth = np.array([[[0, 0, 10, 10]]], "float32")
        >>> found = mean_average_precision(
        ...     truth, np.array([[0]]), truth, np.array([[0.9]]),
        ...     np.array([[0]]), num_classes=1)
        >>> found["mAP"]
        1.0
    """
    per_class = []
    for c in range(num_classes):
        truth = {
            i: true_boxes[i][true_labels[i] == c]
            for i in range(len(true_boxes))
        }
        total = sum(len(t) for t in truth.values())
        if total == 0:
            per_class.append(None)
            continue
        found = [
            (float(s), i, b)
            for i in range(len(boxes))
            for b, s, lab in zip(boxes[i], scores[i], labels[i], strict=True)
            if lab == c
        ]
        found.sort(key=lambda item: -item[0])
        used = {i: np.zeros(len(t), bool) for i, t in truth.items()}
        hits = np.zeros(len(found))
        for k, (_, i, box) in enumerate(found):
            if len(truth[i]) == 0:
                continue
            overlap = _iou(box, truth[i])
            overlap[used[i]] = -1.0
            best = int(np.argmax(overlap))
            if overlap[best] >= iou_threshold:
                used[i][best] = True
                hits[k] = 1.0
        true_positives = np.cumsum(hits)
        recall = true_positives / total
        precision = true_positives / np.arange(1, len(found) + 1)
        per_class.append(average_precision(recall, precision))
    known = [ap for ap in per_class if ap is not None]
    return {"mAP": float(np.mean(known)), "AP": per_class}


# --- figure -----------------------------------------------------------------


def plot_predictions(path, images, true, predicted, columns=4, min_score=0.5):
    """Saves a grid of held-out images: ground truth dashed, detections
    solid with class and score (detections under `min_score` hidden)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours = ("tab:red", "tab:blue", "tab:green")
    rows = -(-len(images) // columns)
    figure, axes = plt.subplots(
        rows, columns, figsize=(2.6 * columns, 2.6 * rows), squeeze=False
    )
    for ax in axes.flat:
        ax.axis("off")
    for ax, image, t_boxes, t_labels, p_boxes, p_scores, p_labels in zip(
        axes.flat, images, *true, *predicted, strict=False
    ):
        ax.imshow(image)
        for box, label in zip(t_boxes, t_labels, strict=True):
            if label < 0:
                continue
            x0, y0, x1, y1 = box
            ax.add_patch(
                plt.Rectangle(
                    (x0, y0),
                    x1 - x0,
                    y1 - y0,
                    fill=False,
                    lw=1.2,
                    ls="--",
                    ec="white",
                )
            )
        for box, score, label in zip(p_boxes, p_scores, p_labels, strict=True):
            if label < 0 or score < min_score:
                continue
            x0, y0, x1, y1 = box
            colour = colours[int(label)]
            ax.add_patch(
                plt.Rectangle(
                    (x0, y0), x1 - x0, y1 - y0, fill=False, lw=1.5, ec=colour
                )
            )
            ax.text(
                x0,
                y0 - 1,
                f"{CLASS_NAMES[int(label)]} {score:.2f}",
                color="white",
                fontsize=6,
                va="bottom",
                bbox={"fc": colour, "ec": "none", "pad": 0.5},
            )
    figure.suptitle(
        "held-out: ground truth (white dashed), detections (score >= "
        f"{min_score})",
        fontsize=9,
    )
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


# --- main -------------------------------------------------------------------


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train-images", type=int, default=1600)
    parser.add_argument("--test-images", type=int, default=200)
    parser.add_argument("--image-size", type=int, default=96)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument(
        "--steps-per-epoch",
        type=int,
        default=None,
        help="batches per epoch (default: all training images once)",
    )
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--head-layers", type=int, default=0)
    parser.add_argument("--output-dir", default="runs/detect_shapes")
    parser.add_argument("--verbose", type=int, default=2)
    return parser.parse_args(argv)


class _EpochLine(keras.callbacks.Callback):
    def __init__(self, epochs):
        super().__init__()
        self.epochs = epochs

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        print(
            f"epoch {epoch + 1}/{self.epochs}: loss {logs['loss']:.3f} "
            f"(box {logs['bbox_regression_loss']:.3f}, class "
            f"{logs['cls_logits_loss']:.3f}; "
            f"{time.perf_counter() - self.start:.0f}s)",
            flush=True,
        )


def main(argv=None):
    """Trains, evaluates and writes results.json and predictions.png.

    Args:
        argv: command-line arguments (default: `sys.argv[1:]`).

    Returns:
        The results dict written to `results.json`.
    """
    args = parse_args(argv)
    start = time.perf_counter()
    keras.utils.set_random_seed(args.seed)
    size = args.image_size
    # The training and held-out images come from different seeds.
    train = make_shapes(args.train_images, size, seed=2 * args.seed)
    test = make_shapes(args.test_images, size, seed=2 * args.seed + 1)
    print(
        f"shapes: {args.train_images} training and {args.test_images} "
        f"held-out {size}x{size} images, 1-4 objects each"
    )

    detector = build_detector(size, head_layers=args.head_layers)
    swin = detector.backbone.image_encoder
    print(
        f"swin backbone: {swin.count_params() / 1e6:.2f}M parameters; "
        f"RetinaNet: {detector.count_params() / 1e6:.2f}M"
    )
    steps = args.steps_per_epoch or -(-args.train_images // args.batch_size)
    schedule = keras.optimizers.schedules.CosineDecay(
        0.0,
        decay_steps=max(args.epochs * steps - steps // 2, 1),
        warmup_target=args.learning_rate,
        warmup_steps=max(steps // 2, 1),
    )
    detector.compile(
        optimizer=keras.optimizers.AdamW(
            schedule, weight_decay=0.05, global_clipnorm=10.0
        )
    )
    detector.fit(
        train[0],
        {"boxes": train[1], "labels": train[2]},
        batch_size=args.batch_size,
        epochs=args.epochs,
        steps_per_epoch=args.steps_per_epoch,
        callbacks=[_EpochLine(args.epochs)] if args.verbose else [],
        verbose=0,
    )
    train_seconds = time.perf_counter() - start

    found = detect(detector, test[0], args.batch_size)
    labels = np.where(found["confidence"] > 0, found["labels"], -1)
    metric = mean_average_precision(
        test[1],
        test[2],
        found["boxes"],
        found["confidence"],
        labels,
        num_classes=len(CLASS_NAMES),
    )
    per_class = ", ".join(
        f"{name} {ap:.3f}"
        for name, ap in zip(CLASS_NAMES, metric["AP"], strict=True)
        if ap is not None
    )
    print(f"held-out box mAP@0.5: {metric['mAP']:.3f} ({per_class})")

    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    results = {
        "mAP@0.5": metric["mAP"],
        "AP@0.5": dict(zip(CLASS_NAMES, metric["AP"], strict=True)),
        "backend": keras.config.backend(),
        "train_seconds": round(train_seconds, 1),
        "total_seconds": round(time.perf_counter() - start, 1),
        **vars(args),
    }
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    shown = slice(0, 8)
    plot_predictions(
        out / "predictions.png",
        test[0][shown],
        (test[1][shown], test[2][shown]),
        (found["boxes"][shown], found["confidence"][shown], labels[shown]),
    )
    print(f"wrote {out / 'results.json'} and {out / 'predictions.png'}")
    return results


if __name__ == "__main__":
    main()
