"""What ``scratchnet train --help`` and ``--show`` say of the settings: the flags that are settings,
each setting's value as the command line writes it, what every recipe sets it to, and the settings
grouped by the part of the run they describe."""

from __future__ import annotations

import json
from typing import Any

from scratchnet.data import DATASETS
from scratchnet.training.config import MLP_SETTINGS, RUN_FIELDS, TrainConfig
from scratchnet.training.recipes import RECIPES, recipe_settings

# Flags that map one to one onto TrainConfig fields (flag dest -> field).
CONFIG_FLAGS = (
    "hidden",
    "layers",
    "activation",
    "dropout",
    "init",
    "label_smoothing",
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
    "lr_time_decay",
    "lr_warmup",
    "epochs",
    "batch_size",
    "seed",
    "backend",
    "dtype",
    "limit",
    "validation",
    "augment",
    "flip",
    "crop",
    "rotate",
    "scale",
    "erase",
    "erase_noise",
)


# The flags of your own data (flag dest = TrainConfig field): how to read --data and --test.
DATA_FLAGS = ("data", "test", "test_fraction", "label_column", "image_shape", "table", "channels", "image_size")
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
    "lr_time_decay": "0 (inverse_time only)",
    "lr_warmup": "0 (cosine only)",
    "optimizer_options": "none (the optimizer's defaults)",
    "report_every_steps": "none (every report_every epochs)",
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
    if isinstance(value, dict):
        return json.dumps(value)
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


def flag_of(field: str, old: bool = False) -> str:
    """The flag of a TrainConfig field (``lr_min`` -> ``--lr-min``; with ``old``, ``lr_time_decay`` is
    the ``--lr-decay`` the user gave); a recipe-only field by its name."""
    if field == "lr_time_decay" and old:
        return "--lr-decay"
    if field == "optimizer_options":
        return "(--optimizer) options"
    return "--" + field.replace("_", "-") if field in CONFIG_FLAGS + DATA_FLAGS else f"the recipe's {field}"


# The parts of a run as --show groups its settings (the TrainConfig fields of each).
SHOWN_PARTS = {
    "network": ("layers", "hidden", "activation", "dropout", "init", "label_smoothing"),
    "optimizer": (
        "optimizer",
        "lr",
        "momentum",
        "nesterov",
        "weight_decay",
        "betas",
        "optimizer_options",
        "lr_schedule",
        "lr_min",
        "lr_step",
        "lr_gamma",
        "lr_time_decay",
        "lr_warmup",
    ),
    "data": DATA_FLAGS,
    "run": RUN_FIELDS,
}


# The run's settings that no flag sets (a recipe's), as --show names them when a recipe changes them.
RECIPE_ONLY = {
    "input_mean": "input mean",
    "input_std": "input std",
    "report_every": "epochs per report",
    "report_every_steps": "steps per report",
}


def recipe_line(config: TrainConfig) -> str:
    """The first line of --show: the recipe and its summary; for your own data, not the summary (of
    MNIST's network and images) but what of the recipe is left out."""
    line = f"recipe {config.recipe} for {config.data_name}"
    recipe = RECIPES.get(str(config.recipe))
    if config.data is not None:
        return (
            line
            + " (your own data: the recipe's shifts, mirroring and validation split for MNIST's images are not used)"
        )
    return line + (f": {recipe.summary}" if recipe else "")


def show_settings(config: TrainConfig, given: set[str]) -> str:
    """What ``--show`` prints: the recipe, then each part of the run (the network also as its
    notation), one line per setting as its flag, the flags given marked."""
    lines = [recipe_line(config)]
    for part, names in SHOWN_PARTS.items():
        if part == "data" and config.data is None:
            continue
        lines.append(f" {part}" + (f": {config.network().layers}" if part == "network" else ""))
        for name in names:
            if (config.layers is not None and name in MLP_SETTINGS) or (name == "layers" and config.layers is None):
                continue  # with --layers the network is written there, not as an MLP's widths
            mark = "  (given)" if name in given else ""
            value = setting_text(name, getattr(config, name))
            if name == "validation_split":
                continue  # said on the --validation line
            if name == "validation" and config.validation and config.validation_split == "start":
                value += " (the first training samples, not the last)"
            if name in RECIPE_ONLY:
                if getattr(config, name) == getattr(TrainConfig, name):
                    continue
                lines.append(f"  {'(recipe) ' + RECIPE_ONLY[name]:<28} {value}")
                continue
            lines.append(f"  {flag_of(name):<28} {value}{mark}")
    return "\n".join(lines)
