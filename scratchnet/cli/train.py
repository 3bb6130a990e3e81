"""``scratchnet train``: train an MLP on MNIST or Fashion-MNIST, from a recipe and flags."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from scratchnet.builders import BACKENDS
from scratchnet.cli.options import int_list, non_negative_float, non_negative_int, positive_int, rate
from scratchnet.core.architecture import ACTIVATIONS, DTYPES
from scratchnet.core.errors import ConfigError, DatasetError
from scratchnet.core.init import INITIALIZERS
from scratchnet.core.settings import OPTIMIZERS
from scratchnet.data import DATASETS
from scratchnet.training.recipes import RECIPES, recipe_settings
from scratchnet.training.train import (
    SCHEDULES,
    TrainConfig,
    TrainingInterrupted,
    TrainResult,
    model_path_for_checkpoint,
    resume,
    train,
)

# Flags that map one to one onto TrainConfig fields (flag dest -> field).
CONFIG_FLAGS = (
    "hidden",
    "activation",
    "dropout",
    "init",
    "optimizer",
    "lr",
    "momentum",
    "nesterov",
    "weight_decay",
    "betas",
    "lr_schedule",
    "lr_min",
    "lr_step",
    "lr_gamma",
    "lr_decay",
    "epochs",
    "batch_size",
    "seed",
    "backend",
    "dtype",
    "limit",
    "validation",
    "augment",
    "flip",
)


def batch_size(text: str) -> int:
    """A positive integer, or 'full' (0): every training image in each step."""
    if text.strip().lower() == "full":
        return 0
    return positive_int(text)


def positive_float(text: str) -> float:
    value = non_negative_float(text)
    if value == 0.0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}")
    return value


def betas(text: str) -> tuple[float, float]:
    parts = text.split(",")
    if len(parts) != 2:
        raise argparse.ArgumentTypeError(f"expected two numbers 'beta1,beta2', got {text!r}")
    first, second = (rate(part) for part in parts)
    return first, second


DESCRIPTION = (
    "Train a multilayer perceptron from a recipe (default: the best one found for the dataset), "
    "with any setting overridden by a flag. Prints a cross-check line, one line per epoch, the test "
    "accuracy; saves the model with its history and a checkpoint after every epoch (Ctrl-C saves one too)."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    run_group = parser.add_argument_group("run")
    run_group.add_argument(
        "--recipe",
        choices=sorted(RECIPES),
        help="starting settings: default (the best MLP found for the dataset; small when "
        "--backend loops), classic (the 784-10-10 tutorial network), small (784-32-10); "
        "flags override them",
    )
    run_group.add_argument("--dataset", choices=sorted(DATASETS), default="mnist")
    run_group.add_argument(
        "--data-dir",
        metavar="DIR",
        help="folder holding mnist/ and fashion-mnist/ "
        "(default: $SCRATCHNET_DATA_DIR, else the user cache, else download)",
    )
    run_group.add_argument("--out", metavar="PATH", help="model file (default: models/DATASET[-RECIPE].json)")
    run_group.add_argument("--checkpoint", metavar="PATH", help="checkpoint file (default: OUT with .checkpoint.json)")
    run_group.add_argument(
        "--resume", metavar="CHECKPOINT", help="continue the run saved in CHECKPOINT, with its settings"
    )
    run_group.add_argument(
        "--no-check",
        dest="check",
        action="store_false",
        help="skip the loops-vs-vectorized cross-check before training",
    )
    net = parser.add_argument_group("network")
    net.add_argument("--hidden", type=int_list, metavar="W1,W2,...", help="hidden layer widths, e.g. 512,256")
    net.add_argument("--activation", choices=sorted(ACTIVATIONS))
    net.add_argument("--dropout", type=rate, metavar="RATE", help="dropout after each hidden layer, in [0, 1)")
    net.add_argument(
        "--init", choices=INITIALIZERS, help="weight initializer (default: he_normal for ReLU, glorot_normal otherwise)"
    )
    opt = parser.add_argument_group("optimizer")
    opt.add_argument("--optimizer", choices=sorted(OPTIMIZERS))
    opt.add_argument("--lr", type=positive_float, help="learning rate")
    opt.add_argument("--momentum", type=rate, help="momentum (sgd, rmsprop)")
    opt.add_argument("--nesterov", action="store_true", default=None, help="Nesterov momentum (sgd)")
    opt.add_argument("--weight-decay", type=non_negative_float, metavar="WD", help="weight decay")
    opt.add_argument("--betas", type=betas, metavar="B1,B2", help="Adam's betas, e.g. 0.9,0.999")
    opt.add_argument("--lr-schedule", choices=SCHEDULES, help="learning-rate schedule over the run")
    opt.add_argument("--lr-min", type=non_negative_float, metavar="LR", help="final rate of the cosine schedule")
    opt.add_argument("--lr-step", type=positive_int, metavar="EPOCHS", help="epochs between step decays")
    opt.add_argument("--lr-gamma", type=positive_float, metavar="G", help="factor of each step decay")
    opt.add_argument("--lr-decay", type=non_negative_float, metavar="D", help="inverse_time: lr / (1 + D * step)")
    loop = parser.add_argument_group("training")
    loop.add_argument("--epochs", type=positive_int)
    loop.add_argument("--batch-size", type=batch_size, metavar="N|full")
    loop.add_argument("--seed", type=int)
    loop.add_argument("--backend", choices=BACKENDS)
    loop.add_argument("--dtype", choices=DTYPES, help="vectorized backend precision")
    loop.add_argument("--limit", type=positive_int, metavar="N", help="train on the first N images only")
    loop.add_argument(
        "--validation",
        type=non_negative_int,
        metavar="N",
        help="hold out the last N training images for validation (default 10000)",
    )
    loop.add_argument(
        "--augment", type=non_negative_int, metavar="PX", help="random shifts of up to PX pixels (0: off)"
    )
    loop.add_argument(
        "--flip",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="mirror half the training images left to right (clothes yes, digits no)",
    )


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The recipe's settings for the dataset, with every flag the user gave on top.

    Without --recipe the default recipe is used, or the small one with --backend loops: the default
    network would take the pure-Python backend hours per epoch."""
    if args.recipe is None:
        args.recipe = "small" if args.backend == "loops" else "default"
    settings = recipe_settings(args.recipe, args.dataset)
    for name in CONFIG_FLAGS:
        value = getattr(args, name)
        if value is not None:
            settings[name] = tuple(value) if name in ("hidden", "betas") else value
    return TrainConfig(dataset=args.dataset, recipe=args.recipe, **settings)


def default_out(config: TrainConfig) -> Path:
    suffix = "" if config.recipe in (None, "default") else f"-{config.recipe}"
    return Path("models") / f"{config.dataset}{suffix}.json"


def output_path(args: argparse.Namespace) -> Path:
    """Where the run's model goes: --out, else the checkpoint's name for --resume, else models/DATASET[-RECIPE].json."""
    if args.out:
        return Path(args.out)
    if args.resume:
        return model_path_for_checkpoint(Path(args.resume))
    recipe = args.recipe or ("small" if args.backend == "loops" else "default")
    return default_out(TrainConfig(dataset=args.dataset, recipe=recipe))


def check_data_dir(data_dir: str | None) -> None:
    if data_dir is not None and not os.path.isdir(data_dir):
        raise DatasetError(f"data directory {data_dir} does not exist (it should hold mnist/ and fashion-mnist/)")


def log(line: str) -> None:
    print(line, flush=True)


def run(args: argparse.Namespace) -> int:
    check_data_dir(args.data_dir)
    try:
        if args.resume is not None:
            given = [name for name in CONFIG_FLAGS if getattr(args, name) is not None]
            if given:
                flags = ", ".join("--" + name.replace("_", "-") for name in given)
                raise ConfigError(f"--resume continues the checkpoint's run with its own settings; drop {flags}")
            result = resume(args.resume, data_dir=args.data_dir, out=output_path(args), log=log)
        else:
            config = config_from_args(args)
            out = output_path(args)
            result = train(
                config, data_dir=args.data_dir, out=out, checkpoint=args.checkpoint, log=log, check=args.check
            )
    except TrainingInterrupted as stop:
        print(f"scratchnet train: {stop}", file=sys.stderr)
        return 130
    summarise(result)
    return 0


def summarise(result: TrainResult) -> None:
    """A sparkline of the loss over the epochs, when there are a few."""
    try:
        from scratchnet.teaching.sparkline import sparkline
    except ImportError:  # pragma: no cover
        return
    losses = [float(h["loss"]) for h in result.history]
    if len(losses) >= 3:
        log(f"loss per epoch {sparkline(losses, width=60)}  {losses[0]:.4f} -> {losses[-1]:.4f}")
