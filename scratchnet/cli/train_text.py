"""``scratchnet train --data FILE.txt``: train a character-level language model (docs/language-models.md).

A text run is told apart by its file's ``.txt`` ending or by ``--layout``; its settings are the flags of
an image run that apply to it (the network in ``--layers``, the optimizer, ``--epochs``, ``--batch-size``,
``--seed``, ``--backend``, ``--dtype``) and the text flags added here. ``--resume`` of a text checkpoint
continues it (:func:`scratchnet.training.text_train.resume_text`).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from scratchnet.cli.options import positive_int, seed
from scratchnet.cli.train_settings import CONFIG_FLAGS, flag_of
from scratchnet.core.errors import ConfigError
from scratchnet.data.text import DEFAULT_SPLIT_SEED, LAYOUTS
from scratchnet.training.config import SettingError, TrainConfig, optimizer_settings, optimizer_spec
from scratchnet.training.text_recipes import TEXT_RECIPES, TextRecipe
from scratchnet.training.text_train import TextSettings

# Where a text run starts: Adam at nanoGPT's rate, batches of 32, one pass (or --steps).
TEXT_DEFAULTS: dict[str, Any] = {"optimizer": "adam", "lr": 0.001, "batch_size": 32, "epochs": 1, "validation": 0}
# The image flags a text run has no use for.
IMAGE_ONLY = ("hidden", "activation", "dropout", "limit", "validation", "augment", "flip")

TEXT_FLAGS: list[tuple[tuple[str, ...], dict[str, Any]]] = [
    (("--layout",), {"choices": LAYOUTS, "help": "read --data FILE.txt as one document a line, or running text"}),
    (("--steps",), {"type": positive_int, "metavar": "N", "help": "train N steps (running text needs it)"}),
    (("--context",), {"type": positive_int, "metavar": "T", "help": "positions the model reads (default 64)"}),
    (("--eval-every",), {"type": positive_int, "metavar": "N", "help": "steps between validation estimates"}),
    (
        ("--split-seed",),
        {"type": seed, "metavar": "S", "help": f"seed of the held-out documents ({DEFAULT_SPLIT_SEED})"},
    ),
]
TEXT_DESTS = ("layout", "steps", "context", "eval_every", "split_seed")


def add_text_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("a language model (--data FILE.txt; docs/language-models.md)")
    for names, options in TEXT_FLAGS:
        group.add_argument(*names, **options)


def is_text_run(args: argparse.Namespace) -> bool:
    """A text file (``.txt``) or a layout given; any text flag without one is an error."""
    text = args.layout is not None or (args.data is not None and str(args.data).lower().endswith(".txt"))
    given = [f"--{name.replace('_', '-')}" for name in TEXT_DESTS if getattr(args, name) is not None]
    if given and not text and args.resume is None:
        raise ConfigError(f"{', '.join(given)} describe a language model: give its text with --data FILE.txt")
    return text


def is_text_checkpoint(path: str) -> bool:
    """Whether the checkpoint at ``path`` is a language model's (its metadata has text settings)."""
    from scratchnet.core.jsonread import MAX_BYTES, read_json

    try:
        with open(path, "rb") as handle:
            document = read_json(handle.read(MAX_BYTES + 1), "the file")
    except (OSError, ValueError):
        return False  # resume says what is wrong
    metadata = document.get("metadata") if isinstance(document, dict) else None
    return isinstance(metadata, dict) and isinstance(metadata.get("text"), dict)


def text_config(args: argparse.Namespace) -> tuple[TrainConfig, TextSettings]:
    """The run's settings: TEXT_DEFAULTS, then the text recipe's (``--recipe``), with every flag the
    user gave on top."""
    recipe = text_recipe(args.recipe)
    if args.dataset is not None:
        raise ConfigError("--data FILE.txt and --dataset are two sources of data: give one")
    refused = [flag_of(name) for name in IMAGE_ONLY if getattr(args, name) is not None]
    if refused:
        raise ConfigError(f"{', '.join(refused)} apply to images; a language model has no use for them")
    settings = dict(TEXT_DEFAULTS)
    text_given = {name: getattr(args, name) for name in TEXT_DESTS if getattr(args, name) is not None}
    if recipe is not None:
        settings.update(recipe.settings)
        if args.epochs is not None:  # the run's length in passes instead of the recipe's steps
            text_given.setdefault("steps", None)
        text_given = {**recipe.text, **text_given}
        settings.update(shortened_warmup(recipe, text_given.get("steps")))
    if isinstance(args.optimizer, dict):
        if "schedule" in args.optimizer:  # a schedule of its own: the recipe's schedule options do not apply
            for name in ("lr_min", "lr_step", "lr_gamma", "lr_time_decay", "lr_warmup"):
                settings.pop(name, None)
        settings.update(optimizer_settings(args.optimizer))
    for name in CONFIG_FLAGS:
        value = getattr(args, name)
        if value is not None and name not in IMAGE_ONLY and not (name == "optimizer" and isinstance(value, dict)):
            settings[name] = tuple(value) if name == "betas" else value
    if args.steps is not None and args.epochs is not None:
        raise ConfigError("--steps and --epochs both give the run's length: give one")
    text = TextSettings(
        layout=text_given.get("layout"),
        context=text_given.get("context"),
        steps=text_given.get("steps"),
        split_seed=text_given.get("split_seed", DEFAULT_SPLIT_SEED),
        eval_every=text_given.get("eval_every"),
    )
    try:
        return TrainConfig(dataset=Path(args.data).stem, data=args.data, recipe=args.recipe, **settings), text
    except SettingError as error:
        raise ConfigError(error.naming(flag_of)) from None


def text_recipe(name: str | None) -> TextRecipe | None:
    """The text recipe ``name`` (None: none); an image recipe is a one-line error."""
    if name is None:
        return None
    if name not in TEXT_RECIPES:
        raise ConfigError(f"recipe {name!r} trains on images; a language model's recipes are {', '.join(TEXT_RECIPES)}")
    return TEXT_RECIPES[name]


def shortened_warmup(recipe: TextRecipe, steps: int | None) -> dict[str, Any]:
    """A recipe's warmup in proportion to a run shorter than the recipe's (``--steps 3`` of the gpt
    recipe's 2000: none), so that a short trial run still schedules; ``{}`` when it is unchanged."""
    warmup, planned = recipe.settings.get("lr_warmup"), recipe.text.get("steps")
    if not warmup or steps is None or planned is None or steps >= planned:
        return {}
    return {"lr_warmup": warmup * steps // planned or None}


def refuse_text_recipe(name: str | None) -> None:
    """A one-line error for a text recipe given to an image run."""
    if name in TEXT_RECIPES:
        raise ConfigError(f"recipe {name!r} trains a language model: give its text with --data FILE.txt")


def show_text_settings(config: TrainConfig, text: TextSettings) -> str:
    """What ``--show`` prints for a language model: the recipe, the network, the optimizer, the run."""
    from scratchnet.training.text_train import TrainConfigView, default_layers

    recipe = TEXT_RECIPES.get(str(config.recipe))
    head = f"recipe {config.recipe} for {config.data_name}" + (f": {recipe.summary}" if recipe else "")
    spec = optimizer_spec(TrainConfigView(config, 1 if text.steps else config.epochs), text.steps or 1)
    given = ", ".join(f"{name} {value}" for name, value in text.to_dict().items() if value is not None)
    return "\n".join(
        [
            head if config.recipe else f"a language model of {config.data_name} (no recipe)",
            f" network: {config.layers or default_layers(64, '{context}')}",
            f" optimizer: {json.dumps(spec)}" + ("" if text.steps else " (a schedule's steps come from the data)"),
            f" run: batch {config.batch_size}, {config.backend} {config.dtype}, seed {config.seed}"
            + ("" if text.steps else f", epochs {config.epochs}"),
            f" text: {given}",
        ]
    )


def default_text_out(config: TrainConfig) -> Path:
    """``models/NAME-gpt[-loops].json`` for ``NAME.txt`` (the recipe's name instead of gpt when given)."""
    name = config.recipe or "gpt"
    return Path("models") / f"{config.data_name}-{name}{'' if config.backend == 'vectorized' else '-loops'}.json"
