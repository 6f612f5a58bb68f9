"""The `keras-swin train` sub-command."""

from __future__ import annotations

import argparse
from pathlib import Path

from keras_swin.recipes.config import RECIPES, SEGMENTATION_RECIPES
from keras_swin.utils import check_writable, non_negative_int, positive_int

_DESCRIPTION = """\
Train or fine-tune with a paper's recipe, then evaluate and write the
results: model.keras, metrics.json (test_accuracy, ...), learning_curves.png
and attention_maps.png. With no arguments: a small Swin on scikit-learn's
bundled handwritten digits (no download), the Swin recipe scaled down.
Real runs: --model swin_tiny --recipe swin_in1k --dataset tfds:imagenet2012
(or --weights CHECKPOINT to fine-tune). An interrupted run resumes from
OUTPUT/backup when started again with the same --output.

--task segmentation trains a Swin-UperNet instead and writes model.keras,
metrics.json (test_miou, test_macc, test_aacc, ...), learning_curves.png
and predictions.png. With no other argument: a small Swin-UperNet on
generated scenes (shapes on textured backgrounds, no download), the
paper's ADE20K recipe scaled down. Real runs: --model swin_tiny --recipe
upernet_swin_ade20k --dataset tfds:scene_parse150 --weights CHECKPOINT.
"""


def add_train_parser(sub) -> argparse.ArgumentParser:
    """Adds `train` to the sub-command parsers of `keras-swin`.

    Args:
        sub: the `argparse` sub-parsers action of the `keras-swin` parser.

    Returns:
        The `train` parser.

    Example:
        >>> from keras_swin.cli import build_parser
        >>> build_parser().parse_args(["train"]).task
        'classification'
    """
    train = sub.add_parser(
        "train",
        help="train or fine-tune with a paper's recipe (default: digits)",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    train.add_argument(
        "--task",
        choices=("classification", "segmentation"),
        default="classification",
        help="classification (Swin/ViT) or segmentation (Swin-UperNet) "
        "(default: %(default)s)",
    )
    train.add_argument(
        "--model",
        help="swin_digits, vit_digits, swin_tiny ... swin_large, "
        "vit_base_patch16, ...; "
        "segmentation: swin_scenes, swin_tiny ... swin_large (default: "
        "swin_digits; segmentation: swin_scenes)",
    )
    train.add_argument(
        "--recipe",
        choices=sorted(RECIPES)
        + ["digits"]
        + sorted(SEGMENTATION_RECIPES)
        + ["scenes"],
        help="training recipe (default: digits for the digits, swin_in1k "
        "for Swin, vit_finetune for ViT; segmentation: scenes for the "
        "scenes, upernet_swin_ade20k otherwise)",
    )
    train.add_argument(
        "--dataset",
        help="digits or tfds:NAME, e.g. tfds:imagenet2012; segmentation: "
        "scenes or tfds:scene_parse150 (default: digits; segmentation: "
        "scenes)",
    )
    train.add_argument(
        "--data-dir",
        help="tensorflow-datasets data folder (default: tfds' own)",
    )
    train.add_argument(
        "--weights",
        help="checkpoint or registered name to start from (default: "
        "random initialisation)",
    )
    train.add_argument(
        "--epochs",
        type=positive_int,
        help="training epochs (default: the recipe's)",
    )
    train.add_argument(
        "--steps",
        type=positive_int,
        help="segmentation: optimizer steps, the schedule stretched to "
        "them (default: the recipe's)",
    )
    train.add_argument(
        "--batch-size",
        type=positive_int,
        help="global batch; learning rates scale linearly (default: the "
        "recipe's)",
    )
    train.add_argument(
        "--image-size",
        type=positive_int,
        metavar="PX",
        help="input side in pixels; segmentation: the training crop (and "
        "the scenes' side) (default: the recipe's)",
    )
    train.add_argument(
        "--steps-per-epoch",
        type=positive_int,
        help="batches per epoch (default: training split size / batch; "
        "segmentation on tfds: 1000)",
    )
    train.add_argument(
        "--gradient-accumulation-steps",
        type=positive_int,
        help="micro-batches per optimizer update (default: the recipe's)",
    )
    train.add_argument(
        "--distribute",
        choices=("auto", "data_parallel", "none"),
        default="auto",
        help="auto: all local GPUs/TPUs (DataParallel on JAX, "
        "MirroredStrategy on TensorFlow) (default: %(default)s)",
    )
    train.add_argument(
        "--seed",
        type=non_negative_int,
        default=0,
        help="seed of the split, shuffle, augmentation and initial weights "
        "(default: %(default)s)",
    )
    train.add_argument(
        "--output",
        type=Path,
        help="results folder (default: a new runs/MODEL-DATASET-TIME)",
    )
    train.add_argument(
        "--list-recipes",
        action="store_true",
        help="print the recipes and exit (default: off)",
    )
    train.set_defaults(func=run_train)
    return train


def _print_recipes() -> None:
    from keras_swin.recipes.segmentation_train import SCENES_RECIPE
    from keras_swin.recipes.train import DIGITS_RECIPE

    for recipe in [*RECIPES.values(), DIGITS_RECIPE]:
        rates = recipe.learning_rates()
        length = (
            f"{recipe.epochs} epochs ({recipe.warmup_epochs} warm-up)"
            if recipe.epochs is not None
            else f"{recipe.total_steps} steps ({recipe.warmup_steps} warm-up)"
        )
        print(
            f"{recipe.name}: {recipe.optimizer}, lr {rates['peak']:g} at "
            f"batch {recipe.batch_size}, {length}. {recipe.notes}\n"
            f"    source: {recipe.source}"
        )
    for recipe in [*SEGMENTATION_RECIPES.values(), SCENES_RECIPE]:
        print(
            f"{recipe.name} (segmentation): adamw, lr {recipe.learning_rate:g}"
            f" at batch {recipe.batch_size}, {recipe.total_steps} steps "
            f"({recipe.warmup_steps} warm-up, poly {recipe.poly_power:g}), "
            f"crop {recipe.crop_size[0]}x{recipe.crop_size[1]}. "
            f"{recipe.notes}\n    source: {recipe.source}"
        )


def _run_segmentation(args) -> int:
    """`keras-swin train --task segmentation`."""
    from keras_swin.recipes.segmentation_train import train_segmentation

    refused = [
        flag
        for flag, value in (
            ("--epochs (use --steps)", args.epochs),
            ("--gradient-accumulation-steps", args.gradient_accumulation_steps),
        )
        if value is not None
    ]
    if args.recipe in RECIPES or args.recipe == "digits":
        refused.append(f"--recipe {args.recipe} (a classification recipe)")
    if refused:
        raise ValueError(
            "keras-swin train --task segmentation does not take "
            + ", ".join(refused)
            + "."
        )
    from keras_swin.recipes.segmentation_train import SCENES_RECIPE

    metrics = train_segmentation(
        model=args.model or "swin_scenes",
        recipe=SCENES_RECIPE if args.recipe == "scenes" else args.recipe,
        dataset=args.dataset or "scenes",
        weights=args.weights,
        steps=args.steps,
        batch_size=args.batch_size,
        image_size=args.image_size,
        steps_per_epoch=args.steps_per_epoch,
        output=args.output,
        seed=args.seed,
        data_dir=args.data_dir,
        distribute=args.distribute,
    )
    output = Path(metrics["output"])
    print(
        f"\ntest mIoU {metrics['test_miou']:.4f} (mAcc "
        f"{metrics['test_macc']:.4f}, aAcc {metrics['test_aacc']:.4f}) on "
        f"{metrics['test_examples']} held-out images; trained "
        f"{metrics['steps']} steps in {metrics['train_seconds']:.0f} s on "
        f"{metrics['backend']} ({metrics['total_seconds']:.0f} s in all)."
    )
    for name in (
        "model.keras",
        "metrics.json",
        "learning_curves.png",
        "predictions.png",
    ):
        if (output / name).exists():
            print(f"wrote {output / name}")
    return 0


def run_train(args) -> int:
    """Runs `keras-swin train` from parsed arguments.

    Args:
        args: the `argparse.Namespace` of the `train` parser.

    Returns:
        The exit status, 0 on success.

    Raises:
        ValueError: what `keras_swin.recipes.train.train` refuses (an
            unknown model, recipe or dataset, a size out of range).

    Example:
        >>> from keras_swin.cli import build_parser
        >>> run_train(build_parser().parse_args(["train", "--list-recipes"]))
        0
    """
    if args.list_recipes:
        _print_recipes()
        return 0
    if args.output is not None:
        # Checked, not created: train() makes the folder when the run
        # starts, so a run refused here leaves none behind.
        check_writable(args.output, folder=True)
    if args.task == "segmentation":
        return _run_segmentation(args)
    if args.steps is not None:
        raise ValueError(
            "keras-swin train: --steps is for --task segmentation; "
            "classification runs take --epochs."
        )
    if args.recipe in SEGMENTATION_RECIPES or args.recipe == "scenes":
        raise ValueError(
            f"keras-swin train: --recipe {args.recipe} is a segmentation "
            "recipe; add --task segmentation."
        )
    from keras_swin.recipes.train import DIGITS_RECIPE, train

    recipe = DIGITS_RECIPE if args.recipe == "digits" else args.recipe
    metrics = train(
        model=args.model or "swin_digits",
        recipe=recipe,
        dataset=args.dataset or "digits",
        weights=args.weights,
        epochs=args.epochs,
        batch_size=args.batch_size,
        image_size=args.image_size,
        steps_per_epoch=args.steps_per_epoch,
        output=args.output,
        seed=args.seed,
        data_dir=args.data_dir,
        distribute=args.distribute,
        gradient_accumulation_steps=args.gradient_accumulation_steps,
    )
    output = Path(metrics["output"])
    print(
        f"\ntest accuracy {metrics['test_accuracy']:.4f} "
        f"(loss {metrics['test_loss']:.4f}) on "
        f"{metrics['examples'].get('test')} held-out images; trained "
        f"{metrics['epochs']} epochs in {metrics['train_seconds']:.0f} s "
        f"on {metrics['backend']}."
    )
    for name in (
        "model.keras",
        "metrics.json",
        "learning_curves.png",
        "attention_maps.png",
    ):
        if (output / name).exists():
            print(f"wrote {output / name}")
    return 0
