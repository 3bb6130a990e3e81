"""``scratchnet train``: train an MLP or a convolutional network on MNIST, Fashion-MNIST or your own
data (a CSV file, a folder of class folders, an .npz), from a recipe and flags."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from scratchnet.builders import BACKENDS
from scratchnet.cli.options import (
    fraction,
    image_shape,
    image_size,
    int_list,
    label_smoothing,
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
    rate,
    seed,
)
from scratchnet.cli.output import stdout_lost, warn, when_stdout_closes
from scratchnet.cli.overwrite import TRAIN_OVERWRITE_HELP, next_free, refuse_existing_model
from scratchnet.cli.train_help import (
    BACKEND_HELP,
    BATCH_HELP,
    CROP_HELP,
    DATA_DIR_HELP,
    DATA_HELP,
    DIAGNOSTICS_HELP,
    ERASE_HELP,
    ERASE_NOISE_HELP,
    FLIP_HELP,
    IMAGE_SHAPE_HELP,
    IMAGE_SIZE_HELP,
    INIT_HELP,
    LABEL_COLUMN_HELP,
    LAYERS_HELP,
    NO_CHECK_HELP,
    OPTIMIZER_HELP,
    OUT_HELP,
    RECIPE_HELP,
    RESUME_HELP,
    ROTATE_HELP,
    SCALE_HELP,
    SMOOTHING_HELP,
    TABLE_HELP,
    TEST_FRACTION_HELP,
    TIME_DECAY_HELP,
    VALIDATION_HELP,
)
from scratchnet.cli.train_settings import CONFIG_FLAGS, DATA_FLAGS, flag_of, recipe_defaults, show_settings
from scratchnet.cli.train_text import (
    TEXT_DESTS,
    add_text_arguments,
    default_text_out,
    is_text_checkpoint,
    is_text_run,
    refuse_text_recipe,
    show_text_settings,
    text_config,
)
from scratchnet.cli.train_warmup import shortened_image_warmup
from scratchnet.core.architecture import ACTIVATION_LAYERS, DTYPES
from scratchnet.core.errors import ConfigError, DatasetError
from scratchnet.core.init import INITIALIZERS
from scratchnet.core.settings import OPTIMIZERS
from scratchnet.core.text import printable
from scratchnet.data import DATASETS
from scratchnet.data.own import data_name
from scratchnet.training.checkpoint import json_path
from scratchnet.training.config import (
    MLP_SETTINGS,
    SCHEDULES,
    SettingError,
    TrainConfig,
    optimizer_settings,
)
from scratchnet.training.diagnostics import DEFAULT_EVERY, Diagnostics
from scratchnet.training.recipes import RECIPES, recipe_settings
from scratchnet.training.text_recipes import TEXT_RECIPES
from scratchnet.training.text_train import resume_text, train_text
from scratchnet.training.train import (
    RESUME_OVERRIDES,
    TrainingInterrupted,
    TrainResult,
    model_path_for_checkpoint,
    resume,
    train,
)

# The recipe settings that are MNIST's and Fashion-MNIST's, not your data's: with --data they take
# these values unless a flag gives them (shifts and mirroring suit some images only; your data has a
# test set of its own, so no validation split is held out besides).
OWN_DATA_DEFAULTS = {"augment": 0, "flip": False, "crop": 0, "rotate": 0.0, "scale": 0.0, "erase": 0.0, "validation": 0}
DEFAULT_DATASET = "mnist"

# The flags of the MLP that --layers replaces.
MLP_ONLY = MLP_SETTINGS


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


def optimizer_choice(text: str) -> str | dict[str, Any]:
    """An optimizer's name, or a JSON object of its options (``{"type": "adam", "eps": 1e-7}``)."""
    if text.lstrip().startswith("{"):
        try:
            value = json.loads(text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(f"not a JSON object: {error}") from None
        if not isinstance(value, dict):
            raise argparse.ArgumentTypeError('expected a JSON object such as \'{"type": "adam", "eps": 1e-7}\'')
        return value
    if text not in OPTIMIZERS:
        choices = ", ".join(repr(name) for name in sorted(OPTIMIZERS))
        raise argparse.ArgumentTypeError(f"invalid choice: {text!r} (choose from {choices}, or a JSON object)")
    return text


# The flags of ``scratchnet train``, by the part of the run they describe: (flags, argparse options).
FLAG_GROUPS: dict[str, list[tuple[tuple[str, ...], dict[str, Any]]]] = {
    "where (the recipe, the files)": [
        (("--recipe",), {"choices": sorted([*RECIPES, *TEXT_RECIPES]), "help": RECIPE_HELP}),
        (("--data-dir",), {"metavar": "DIR", "help": DATA_DIR_HELP}),
        (("--out",), {"metavar": "PATH", "help": OUT_HELP}),
        (("--overwrite",), {"action": "store_true", "help": TRAIN_OVERWRITE_HELP}),
        (("--checkpoint",), {"metavar": "PATH", "help": "checkpoint file (default: OUT with .checkpoint.json)"}),
        (("--resume",), {"metavar": "CHECKPOINT", "help": RESUME_HELP}),
        (("--show",), {"action": "store_true", "help": "print the settings the recipe and the flags give, and exit"}),
        (("--no-check",), {"dest": "check", "action": "store_false", "help": NO_CHECK_HELP}),
    ],
    "the data (your own: docs/own-data.md)": [
        (("--dataset",), {"choices": sorted(DATASETS), "help": "a built-in dataset (default mnist)"}),
        (("--data",), {"metavar": "PATH", "help": DATA_HELP}),
        (("--test",), {"metavar": "PATH", "help": "the test set: a file or folder of the same kind as --data"}),
        (("--test-fraction",), {"type": fraction, "metavar": "F", "help": TEST_FRACTION_HELP}),
        (("--label-column",), {"metavar": "NAME", "help": LABEL_COLUMN_HELP}),
        (("--image-shape",), {"type": image_shape, "metavar": "C,H,W", "help": IMAGE_SHAPE_HELP}),
        (("--table",), {"action": "store_true", "default": None, "help": TABLE_HELP}),
        (("--channels",), {"type": int, "choices": (1, 3), "help": "folder: 1 grey, 3 RGB (default: the first's)"}),
        (("--image-size",), {"type": image_size, "metavar": "H,W", "help": IMAGE_SIZE_HELP}),
    ],
    "the network (the compact notation; --hidden, --activation and --dropout write an MLP's)": [
        (("--layers",), {"metavar": "TEXT", "help": LAYERS_HELP}),
        (("--hidden",), {"type": int_list, "metavar": "W1,W2,...", "help": "hidden layer widths, e.g. 512,256"}),
        (("--activation",), {"choices": sorted(ACTIVATION_LAYERS), "help": "the hidden layers' activation"}),
        (("--dropout",), {"type": rate, "metavar": "RATE", "help": "dropout after each hidden layer, in [0, 1)"}),
        (("--init",), {"choices": INITIALIZERS, "help": INIT_HELP}),
        (("--label-smoothing",), {"type": label_smoothing, "metavar": "EPS", "help": SMOOTHING_HELP}),
    ],
    "the optimizer (PyTorch's definitions; docs/training.md)": [
        (("--optimizer",), {"type": optimizer_choice, "metavar": "NAME|JSON", "help": OPTIMIZER_HELP}),
        (("--lr",), {"type": positive_float, "help": "learning rate"}),
        (("--momentum",), {"type": rate, "help": "momentum (sgd, rmsprop)"}),
        (("--nesterov",), {"action": "store_true", "default": None, "help": "Nesterov momentum (sgd)"}),
        (("--weight-decay",), {"type": non_negative_float, "metavar": "WD", "help": "weight decay"}),
        (("--betas",), {"type": betas, "metavar": "B1,B2", "help": "Adam's betas, e.g. 0.9,0.999"}),
        (("--lr-schedule",), {"choices": SCHEDULES, "help": "learning-rate schedule over the run"}),
        (("--lr-min",), {"type": non_negative_float, "metavar": "LR", "help": "final rate of the cosine schedule"}),
        (("--lr-step",), {"type": positive_int, "metavar": "EPOCHS", "help": "epochs between step decays"}),
        (("--lr-gamma",), {"type": positive_float, "metavar": "G", "help": "factor of each step decay"}),
        (("--lr-time-decay",), {"type": non_negative_float, "metavar": "D", "help": TIME_DECAY_HELP}),
        (("--lr-warmup",), {"type": non_negative_int, "metavar": "STEPS", "help": "cosine: steps of warmup first"}),
        (("--lr-decay",), {"type": non_negative_float, "help": argparse.SUPPRESS}),  # the old --lr-time-decay
    ],
    "the run": [
        (("--epochs",), {"type": positive_int, "help": "passes over the training images"}),
        (("--batch-size",), {"type": batch_size, "metavar": "N|full", "help": BATCH_HELP}),
        (("--seed",), {"type": seed, "help": "the seed of the weights, the order, the shifts and the dropout"}),
        (("--backend",), {"choices": BACKENDS, "help": BACKEND_HELP}),
        (("--dtype",), {"choices": DTYPES, "help": "vectorized backend precision"}),
        (("--limit",), {"type": positive_int, "metavar": "N", "help": "train on the first N images only"}),
        (("--validation",), {"type": non_negative_int, "metavar": "N", "help": VALIDATION_HELP}),
        (("--augment",), {"type": non_negative_int, "metavar": "PX", "help": "random shifts of up to PX pixels"}),
        (("--flip",), {"action": argparse.BooleanOptionalAction, "default": None, "help": FLIP_HELP}),
        (("--crop",), {"type": non_negative_int, "metavar": "PX", "help": CROP_HELP}),
        (("--rotate",), {"type": non_negative_float, "metavar": "DEG", "help": ROTATE_HELP}),
        (("--scale",), {"type": non_negative_float, "metavar": "S", "help": SCALE_HELP}),
        (("--erase",), {"type": non_negative_float, "metavar": "P", "help": ERASE_HELP}),
        (("--erase-noise",), {"action": argparse.BooleanOptionalAction, "default": None, "help": ERASE_NOISE_HELP}),
    ],
    "diagnostics (docs/training.md; they do not change the trained model)": [
        (
            ("--diagnostics",),
            {"type": positive_int, "nargs": "?", "const": DEFAULT_EVERY, "metavar": "N", "help": DIAGNOSTICS_HELP},
        ),
    ],
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    for title, flags in FLAG_GROUPS.items():
        group = parser.add_argument_group(title)
        for names, options in flags:
            group.add_argument(*names, **options)
    add_text_arguments(parser)
    for action in parser._actions:  # every setting's help says what each recipe sets it to
        if action.dest in CONFIG_FLAGS and action.help != argparse.SUPPRESS:
            action.help = f"{action.help or action.dest.replace('_', ' ')} [{recipe_defaults(action.dest)}]"


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The recipe's settings for the dataset, with every flag the user gave on top.

    Without --recipe the default recipe is used, or the small one with --backend loops: the default
    network would take the pure-Python backend hours per epoch. With --data the recipe's settings of
    MNIST's images that are not your data's (OWN_DATA_DEFAULTS) are left out. An --optimizer JSON
    object is merged over the recipe's optimizer (:func:`optimizer_settings`), and the optimizer
    flags over that."""
    refuse_text_recipe(args.recipe)
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
    settings.update(shortened_image_warmup(settings, args, dataset))
    if args.layers is not None:  # a network of its own: the recipe's MLP settings do not apply
        for name in MLP_ONLY:
            settings.pop(name, None)
    if args.layers is not None or settings.get("layers") is not None:
        given = [f"--{name}" for name in MLP_ONLY if getattr(args, name) is not None]
        if given:
            verb = "describes an MLP's hidden layers" if len(given) == 1 else "describe an MLP's hidden layers"
            raise ConfigError(
                f"{' and '.join(given)} {verb}, and this network is given by its layers (--layers, or the "
                f'recipe\'s): write them there instead, e.g. --layers "{mlp_example(args)}"'
            )
    if args.lr_decay is not None and args.lr_time_decay is None:
        args.lr_time_decay = args.lr_decay  # the old name of --lr-time-decay
    if isinstance(args.optimizer, dict):
        merged = optimizer_settings(args.optimizer)
        if "lr_schedule" in merged:  # a schedule of its own: the recipe's schedule options do not apply
            for name in ("lr_min", "lr_step", "lr_gamma", "lr_time_decay", "lr_warmup"):
                settings.pop(name, None)
        settings.update(merged)
    for name in CONFIG_FLAGS + DATA_FLAGS:
        value = getattr(args, name)
        if value is not None and not (name == "optimizer" and isinstance(value, dict)):
            settings[name] = tuple(value) if name in ("hidden", "betas") else value
    if args.data is not None:
        dataset = data_name(args.data)
    try:
        return TrainConfig(dataset=dataset, recipe=args.recipe, **settings)
    except SettingError as error:  # named by the flags the user knows, not by TrainConfig's fields
        raise ConfigError(error.naming(lambda field: flag_of(field, old=args.lr_decay is not None))) from None


def mlp_example(args: argparse.Namespace) -> str:
    """The layers that --hidden, --activation and --dropout would write, in the notation: ``dense(10),
    relu`` for ``--hidden 10``, appended to the --layers given (or the recipe's)."""
    widths = args.hidden or ()
    activation = args.activation or "relu"
    dropout = f", dropout({args.dropout:g})" if args.dropout else ""
    if widths:
        written = ", ".join(f"dense({w}), {activation}{dropout}" for w in widths)
    else:
        written = (activation if args.activation else "") + dropout
    base = args.layers if args.layers is not None else recipe_settings(args.recipe, DEFAULT_DATASET).get("layers", "")
    return ", ".join(part.strip(", ") for part in (str(base), written) if part.strip(", "))


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


def chosen_output(args: argparse.Namespace, config: TrainConfig) -> Path:
    """:func:`output_path`, never over a model unasked: a model file named by --out needs --overwrite; a
    default name (or one in an --out folder) that holds a model becomes the next free one, said first."""
    return kept_output(output_path(args, config), args)


def kept_output(out: Path, args: argparse.Namespace) -> Path:
    """``out`` if the run may write it: an --out naming a model needs --overwrite; a default name that
    holds a model becomes the next free one, said first."""
    named = args.out is not None and out == Path(args.out)
    if named or args.overwrite:
        refuse_existing_model(out, args.overwrite)
        return out
    free = next_free(json_path(out))
    if free != json_path(out):
        from scratchnet.cli.overwrite import what_is_at

        log(
            f"note: {out} holds {what_is_at(json_path(out))}, which is kept; this run saves to {free} "
            f"(--out {out} --overwrite replaces it)"
        )
    return free


def check_before_training(config: TrainConfig) -> None:
    """What a run checks before it trains, for --show: the settings (checked as the config was
    built) and the network built for the dataset's images and classes (the notation parsed, the output
    layer fitted). Your own data is read by the run only: its layers are checked item by item."""
    from scratchnet.core import notation
    from scratchnet.core.architecture import plan
    from scratchnet.training.task import Classification
    from scratchnet.training.train import architecture_of

    if config.data is not None:  # the data is read by the run only: its samples' shape is not known here
        for number, item in enumerate(filter(str.strip, notation.split_top_level(config.network().layers)), 1):
            try:
                notation.resolve(notation.parse_item(item)[0])
            except ConfigError as error:
                raise ConfigError(f"item {number} {item.strip()!r}: {error}") from None
        return
    spec = DATASETS[config.dataset]  # the built-in datasets' shapes are known without reading them
    shape, classes = spec.test_images.shape[1:], len(spec.class_names)
    architecture = architecture_of(config, tuple(shape), classes)
    Classification().check_output(plan(architecture).output_shape, classes)


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
        if is_text_run(args):
            print(show_text_settings(*text_config(args)))
            return 0
        config = config_from_args(args)
        check_before_training(config)
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
                for name in CONFIG_FLAGS + DATA_FLAGS + ("dataset", "lr_decay")
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
            text_given = [f"--{name.replace('_', '-')}" for name in TEXT_DESTS if getattr(args, name) is not None]
            if text_given:
                raise ConfigError(
                    f"--resume continues the checkpoint's run with its own settings; drop {', '.join(text_given)}"
                )
            out = output_path(args)
            if json_path(out) != model_path_for_checkpoint(json_path(args.resume)):  # its own model is its own
                refuse_existing_model(out, args.overwrite)
            if is_text_checkpoint(args.resume):
                result = resume_text(args.resume, out=out, log=log)
            else:
                result = resume(
                    args.resume,
                    data_dir=args.data_dir,
                    out=out,
                    log=log,
                    overrides=overrides,
                    callbacks=diagnostics_of(args),
                )
        elif is_text_run(args):
            text, settings = text_config(args)
            out = kept_output(Path(args.out) if args.out else default_text_out(text), args)
            result = train_text(text, settings, out=out, checkpoint=args.checkpoint, log=log, check=args.check)
        else:
            config = config_from_args(args)
            out = chosen_output(args, config)
            result = train(
                config,
                data_dir=args.data_dir,
                out=out,
                checkpoint=args.checkpoint,
                log=log,
                check=args.check,
                callbacks=diagnostics_of(args),
            )
    except TrainingInterrupted as stop:
        warn(f"scratchnet train: {stop}")
        return 130
    summarise(result)
    if stdout_lost():
        saved = f"model saved to {result.out}; " if result.out is not None else ""
        warn(f"scratchnet train: {saved}test accuracy {100 * result.test_accuracy:.2f}%")
    return 0


def diagnostics_of(args: argparse.Namespace) -> tuple[Diagnostics, ...]:
    """The --diagnostics callback, whose warnings go to stderr, one line each."""
    if args.diagnostics is None:
        return ()
    return (Diagnostics(args.diagnostics, warn=lambda line: warn(f"scratchnet train: warning: {line}")),)


def summarise(result: TrainResult) -> None:
    """A sparkline of the loss over the epochs, when there are a few."""
    try:
        from scratchnet.teaching.sparkline import sparkline
    except ImportError:  # pragma: no cover
        return
    losses = [float(h["loss"]) for h in result.history]
    if len(losses) >= 3:
        first = result.history[0]  # a run recorded every N steps (a language model's) says so
        per = f"every {first['step']} steps" if "step" in first else "per epoch"
        log(f"loss {per} {sparkline(losses, width=60)}  {losses[0]:.4f} -> {losses[-1]:.4f}")
