"""``scratchnet train``: train an MLP or a convolutional network on MNIST, Fashion-MNIST or your own
data (a CSV file, a folder of class folders, an .npz), from a recipe and flags."""

from __future__ import annotations

import argparse
import os
from dataclasses import fields
from pathlib import Path
from typing import Any

from scratchnet.builders import BACKENDS
from scratchnet.cli.options import (
    fraction,
    image_shape,
    image_size,
    int_list,
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
    rate,
    seed,
)
from scratchnet.cli.output import stdout_lost, warn, when_stdout_closes
from scratchnet.core.architecture import ACTIVATIONS, DTYPES
from scratchnet.core.errors import ConfigError, DatasetError
from scratchnet.core.init import INITIALIZERS
from scratchnet.core.settings import OPTIMIZERS
from scratchnet.core.text import printable
from scratchnet.data import DATASETS
from scratchnet.data.own import data_name
from scratchnet.training.recipes import RECIPES, recipe_settings
from scratchnet.training.train import (
    RESUME_OVERRIDES,
    SCHEDULES,
    SettingError,
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
    "layers",
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


# The flags of your own data (flag dest = TrainConfig field): how to read --data and --test.
DATA_FLAGS = ("data", "test", "test_fraction", "label_column", "image_shape", "table", "channels", "image_size")
# The recipe settings that are MNIST's and Fashion-MNIST's, not your data's: with --data they take
# these values unless a flag gives them (shifts and mirroring suit some images only; your data has a
# test set of its own, so no validation split is held out besides).
OWN_DATA_DEFAULTS = {"augment": 0, "flip": False, "validation": 0}
DEFAULT_DATASET = "mnist"

# The flags of the MLP that --layers replaces.
MLP_ONLY = ("hidden", "activation", "dropout")


def batch_size(text: str) -> int:
    """A positive integer, or 'full' (0): every training image in each step."""
    if text.strip().lower() == "full":
        return 0
    return positive_int(text)


def betas(text: str) -> tuple[float, float]:
    parts = text.split(",")
    if len(parts) != 2:
        raise argparse.ArgumentTypeError(f"expected two numbers 'beta1,beta2', got {text!r}")
    first, second = (rate(part) for part in parts)
    return first, second


DESCRIPTION = (
    "Train a multilayer perceptron (or, with --layers, any network) from a recipe (default: the best one "
    "found for the dataset), with any setting overridden by a flag, on MNIST, Fashion-MNIST or your own data "
    "(--data: a CSV file, a folder of class folders or an .npz; docs/own-data.md). Prints a cross-check line, "
    "one line per epoch, the test accuracy; saves the model with its history and a checkpoint after every "
    "epoch (Ctrl-C saves one too)."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    run_group = parser.add_argument_group("run")
    run_group.add_argument(
        "--recipe",
        choices=sorted(RECIPES),
        help="starting settings: default (the best MLP found for the dataset; small when "
        "--backend loops), classic (the 784-10-10 tutorial network), small (784-32-10), cnn (a "
        "convolutional network with batch norm), cnn-small (one convolution, for --backend loops); "
        "flags override them",
    )
    run_group.add_argument("--dataset", choices=sorted(DATASETS), help="a built-in dataset (default mnist)")
    run_group.add_argument(
        "--data-dir",
        metavar="DIR",
        help="folder holding mnist/ and fashion-mnist/ "
        "(default: $SCRATCHNET_DATA_DIR, else the user cache, else download)",
    )
    run_group.add_argument(
        "--out",
        metavar="PATH",
        help="model file (default: models/DATASET[-RECIPE][-BACKEND].json; a folder: that name in it)",
    )
    run_group.add_argument("--checkpoint", metavar="PATH", help="checkpoint file (default: OUT with .checkpoint.json)")
    run_group.add_argument(
        "--resume",
        metavar="CHECKPOINT",
        help="continue the run saved in CHECKPOINT, with its settings (--lr and --weight-decay may change)",
    )
    run_group.add_argument(
        "--show", action="store_true", help="print the settings the recipe and the flags give, and exit"
    )
    run_group.add_argument(
        "--no-check",
        dest="check",
        action="store_false",
        help="skip the loops-vs-vectorized cross-check before training",
    )
    own = parser.add_argument_group("your own data (docs/own-data.md)")
    own.add_argument(
        "--data",
        metavar="PATH",
        help="train on a CSV file (a 'label' column, the other columns numbers), a folder of class folders "
        "(PATH/CLASS/*.png) or an .npz (arrays x, y and optionally class_names) instead of --dataset",
    )
    own.add_argument("--test", metavar="PATH", help="the test set: a file or folder of the same kind as --data")
    own.add_argument(
        "--test-fraction",
        type=fraction,
        metavar="F",
        help="without --test: hold out this part of --data for testing, stratified by class (default 0.2; 0: none)",
    )
    own.add_argument(
        "--label-column",
        metavar="NAME",
        help="CSV: the label column's name (default 'label'), or its position (0 for the first column)",
    )
    own.add_argument(
        "--image-shape",
        type=image_shape,
        metavar="C,H,W",
        help="CSV, .npz: the rows are images of this shape, C,H,W or H,W (default: 784 columns are 28x28, "
        "others a table of features)",
    )
    own.add_argument(
        "--table",
        action="store_true",
        default=None,
        help="CSV, .npz: read the columns as a table of features, even 784 of them",
    )
    own.add_argument(
        "--channels", type=int, choices=(1, 3), help="folder: 1 grey, 3 RGB (default: as the first picture)"
    )
    own.add_argument(
        "--image-size",
        type=image_size,
        metavar="H,W",
        help="folder: resize every picture to H,W (default: the first picture's size, which all must have)",
    )
    net = parser.add_argument_group("network")
    net.add_argument("--hidden", type=int_list, metavar="W1,W2,...", help="hidden layer widths, e.g. 512,256")
    net.add_argument(
        "--layers",
        metavar="TEXT",
        help="any network in the compact notation instead of an MLP, e.g. 'conv(32, 3), relu, maxpool(2), "
        "flatten': the input and the output layer are added (docs/training.md)",
    )
    net.add_argument("--activation", choices=sorted(ACTIVATIONS), help="the hidden layers' activation")
    net.add_argument("--dropout", type=rate, metavar="RATE", help="dropout after each hidden layer, in [0, 1)")
    net.add_argument(
        "--init", choices=INITIALIZERS, help="weight initializer (default: he_normal for ReLU, glorot_normal otherwise)"
    )
    opt = parser.add_argument_group("optimizer")
    opt.add_argument("--optimizer", choices=sorted(OPTIMIZERS), help="the optimizer (PyTorch's definitions)")
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
    loop.add_argument("--epochs", type=positive_int, help="passes over the training images")
    loop.add_argument(
        "--batch-size", type=batch_size, metavar="N|full", help="images per step (full: all of them, gradient descent)"
    )
    loop.add_argument("--seed", type=seed, help="the seed of the weights, the order, the shifts and the dropout")
    loop.add_argument(
        "--backend", choices=BACKENDS, help="loops: pure Python, slow (picks the small recipe when none is given)"
    )
    loop.add_argument("--dtype", choices=DTYPES, help="vectorized backend precision")
    loop.add_argument("--limit", type=positive_int, metavar="N", help="train on the first N images only")
    loop.add_argument(
        "--validation",
        type=non_negative_int,
        metavar="N",
        help="hold out the last N training images for validation (the first N in the classic recipe)",
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
    for action in parser._actions:  # every setting's help says what each recipe sets it to
        if action.dest in CONFIG_FLAGS:
            action.help = f"{action.help or action.dest.replace('_', ' ')} [{recipe_defaults(action.dest)}]"


# How a setting left as None reads in --help and --show.
UNSET = {
    "init": "he_normal for relu, glorot_normal otherwise",
    "momentum": "the optimizer's default",
    "nesterov": "no",
    "weight_decay": "the optimizer's default (0)",
    "betas": "the optimizer's default (0.9,0.999)",
    "lr_min": "0 (cosine only)",
    "lr_step": "1 (step only)",
    "lr_gamma": "0.1 (step only)",
    "lr_decay": "0 (inverse_time only)",
    "limit": "all",
    "layers": "an MLP",
    "test": "none: a part of --data held out",
    "test_fraction": "0.2 (without --test)",
    "label_column": "label",
    "image_shape": "784 columns are 28x28, others a table",
    "channels": "the first picture's",
    "image_size": "the first picture's",
}


def setting_text(field: str, value: Any) -> str:
    """A setting's value as the command line writes it: ``800,800``, ``full``, ``yes``."""
    if value is None:
        return UNSET.get(field, "none")
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value)
    if field == "batch_size" and value == 0:
        return "full"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def recipe_defaults(field: str) -> str:
    """What each recipe sets ``field`` to: ``recipes: default 20 (fashion-mnist 40), classic 500, small 5``."""
    parts = []
    for name in RECIPES:
        values = {
            dataset: setting_text(field, getattr(TrainConfig(dataset=dataset, **recipe_settings(name, dataset)), field))
            for dataset in DATASETS
        }
        first = values[next(iter(DATASETS))]
        others = [f"{dataset} {value}" for dataset, value in values.items() if value != first]
        parts.append(f"{name} {first}" + (f" ({', '.join(others)})" if others else ""))
    texts = {part.split(" ", 1)[1] for part in parts}
    return f"every recipe: {texts.pop()}" if len(texts) == 1 else "recipes: " + ", ".join(parts)


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The recipe's settings for the dataset, with every flag the user gave on top.

    Without --recipe the default recipe is used, or the small one with --backend loops: the default
    network would take the pure-Python backend hours per epoch. With --data the recipe's settings of
    MNIST's images that are not your data's (OWN_DATA_DEFAULTS) are left out."""
    if args.recipe is None:
        args.recipe = "small" if args.backend == "loops" else "default"
    if args.data is not None and args.dataset is not None:
        raise ConfigError("--data and --dataset are two sources of data: give one")
    given_data = [f"--{name.replace('_', '-')}" for name in DATA_FLAGS[1:] if getattr(args, name) is not None]
    if args.data is None and given_data:
        raise ConfigError(f"{', '.join(given_data)} say how to read your own data: give it with --data PATH")
    dataset = args.dataset or DEFAULT_DATASET
    settings = recipe_settings(args.recipe, dataset if args.data is None else "")
    if args.data is not None:
        settings.update(OWN_DATA_DEFAULTS)
    if args.layers is not None:  # a network of its own: the recipe's MLP settings do not apply
        for name in MLP_ONLY:
            settings.pop(name, None)
    if args.layers is not None or settings.get("layers") is not None:
        given = [f"--{name}" for name in MLP_ONLY if getattr(args, name) is not None]
        if given:
            raise ConfigError(
                f"{', '.join(given)} describe an MLP; this network is given in its layers "
                "(--layers, or the recipe's): write them there, e.g. dropout(0.25)"
            )
    for name in CONFIG_FLAGS + DATA_FLAGS:
        value = getattr(args, name)
        if value is not None:
            settings[name] = tuple(value) if name in ("hidden", "betas") else value
    if args.data is not None:
        dataset = data_name(args.data)
    try:
        return TrainConfig(dataset=dataset, recipe=args.recipe, **settings)
    except SettingError as error:  # named by the flags the user knows, not by TrainConfig's fields
        raise ConfigError(error.naming(flag_of)) from None


def flag_of(field: str) -> str:
    """The flag of a TrainConfig field (``lr_min`` -> ``--lr-min``); a recipe-only field by its name."""
    return "--" + field.replace("_", "-") if field in CONFIG_FLAGS + DATA_FLAGS else f"the recipe's {field}"


def show_settings(config: TrainConfig, given: set[str]) -> str:
    """What ``--show`` prints: the recipe, then one line per setting as its flag, the flags given marked."""
    recipe = RECIPES.get(str(config.recipe))
    lines = [f"recipe {config.recipe} for {config.data_name}" + (f": {recipe.summary}" if recipe else "")]
    for item in fields(TrainConfig):
        if item.name in ("dataset", "recipe") or (config.layers is not None and item.name in MLP_ONLY):
            continue  # with --layers the network is written there, not as an MLP's widths
        if item.name in DATA_FLAGS and config.data is None:
            continue
        if item.name == "layers" and config.layers is None:
            continue
        mark = "  (given)" if item.name in given else ""
        lines.append(f"  {flag_of(item.name):<28} {setting_text(item.name, getattr(config, item.name))}{mark}")
    return "\n".join(lines)


def default_out(config: TrainConfig) -> Path:
    """``models/DATASET[-RECIPE][-BACKEND].json``: the recipe unless it is the default one, the backend
    unless it is the vectorized one, so that runs which train different networks (``--recipe small``
    and ``--backend loops``, both the small recipe) do not replace each other's models."""
    parts = [config.data_name]
    if config.recipe not in (None, "default"):
        parts.append(str(config.recipe))
    if config.backend != "vectorized":
        parts.append(config.backend)
    return Path("models") / f"{'-'.join(parts)}.json"


def output_path(args: argparse.Namespace, config: TrainConfig | None = None) -> Path:
    """Where the run's model goes: --out (a folder, given as one that exists or ends in /, gets the default
    name in it), else the checkpoint's name for --resume, else :func:`default_out`."""
    if args.out:
        out = Path(args.out)
        if config is not None and (out.is_dir() or args.out.endswith(("/", os.sep))):
            return out / default_out(config).name
        return out
    if args.resume:
        return model_path_for_checkpoint(Path(args.resume))
    if config is None:
        config = TrainConfig(dataset=args.dataset or DEFAULT_DATASET, recipe=args.recipe or "default")
    return default_out(config)


def check_data_dir(data_dir: str | None) -> None:
    if data_dir is not None and not os.path.isdir(data_dir):
        raise DatasetError(f"data directory {data_dir} does not exist (it should hold mnist/ and fashion-mnist/)")


def log(line: str) -> None:
    """One line of the run's report; it names files and data (a dataset, a replaced model's), so its
    control characters are escaped (docs/errors.md, "Text printed from a file")."""
    print(printable(line), flush=True)


# What a resume may change (to get past a NaN): the others are the checkpoint's run.
RESUME_FLAGS = RESUME_OVERRIDES


def run(args: argparse.Namespace) -> int:
    try:
        return train_command(args)
    except SettingError as error:  # a resume's new --lr or --weight-decay out of range
        raise ConfigError(error.naming(flag_of)) from None


def train_command(args: argparse.Namespace) -> int:
    if args.show:
        if args.resume is not None:
            raise ConfigError("--show prints a recipe's settings; a checkpoint's are shown by scratchnet inspect")
        config = config_from_args(args)
        print(show_settings(config, {name for name in CONFIG_FLAGS + DATA_FLAGS if getattr(args, name) is not None}))
        return 0
    check_data_dir(args.data_dir)
    when_stdout_closes(
        "scratchnet train: standard output was closed; training goes on, and its result is reported here"
    )
    try:
        if args.resume is not None:
            given = [
                name
                for name in CONFIG_FLAGS + DATA_FLAGS + ("dataset",)
                if getattr(args, name) is not None and name not in RESUME_FLAGS
            ]
            if given:
                flags = ", ".join("--" + name.replace("_", "-") for name in given)
                allowed = " and ".join("--" + name.replace("_", "-") for name in RESUME_FLAGS)
                raise ConfigError(
                    f"--resume continues the checkpoint's run with its own settings (only {allowed} may change); "
                    f"drop {flags}"
                )
            overrides = {name: getattr(args, name) for name in RESUME_FLAGS if getattr(args, name) is not None}
            result = resume(args.resume, data_dir=args.data_dir, out=output_path(args), log=log, overrides=overrides)
        else:
            config = config_from_args(args)
            out = output_path(args, config)
            result = train(
                config, data_dir=args.data_dir, out=out, checkpoint=args.checkpoint, log=log, check=args.check
            )
    except TrainingInterrupted as stop:
        warn(f"scratchnet train: {stop}")
        return 130
    summarise(result)
    if stdout_lost():
        saved = f"model saved to {result.out}; " if result.out is not None else ""
        warn(f"scratchnet train: {saved}test accuracy {100 * result.test_accuracy:.2f}%")
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
