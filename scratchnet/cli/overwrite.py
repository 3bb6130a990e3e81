"""The one rule of every command that writes a model or a file: nothing is replaced unless the user said so.

* A command given an output that exists (``--out``, or for ``import`` and ``export`` the default name
  beside the input) refuses in one line naming what is there (a model with its recorded accuracy) and
  the flag that replaces it, ``--overwrite``.
* ``scratchnet train`` without ``--out`` never needs the flag: a default name that holds a model
  becomes the next free one (``models/mnist-2.json``, ``-3``, ...), and the run says so first.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from scratchnet.core.errors import ConfigError

OVERWRITE_HELP = "replace an existing output (without it, a command never writes over a file that exists)"
TRAIN_OVERWRITE_HELP = (
    "replace a model that exists at --out (without it such a run is refused; a run without --out takes the next "
    "free name, models/mnist-2.json, and says so)"
)


def add_overwrite(parser: argparse.ArgumentParser | argparse._ArgumentGroup, text: str = OVERWRITE_HELP) -> None:
    parser.add_argument("--overwrite", action="store_true", help=text)


def what_is_at(path: Path, inside: bool = False) -> str:
    """``a model (test accuracy 99.00%, mnist, saved ...)`` (``inside`` parentheses: ``a model: test
    accuracy ...``), ``a training checkpoint`` or ``a file`` (``path`` is a regular file: special files
    are refused before they are opened)."""
    from scratchnet.training.outputs import file_kind, previous_model

    kind, _ = file_kind(path)
    if kind == "checkpoint":
        return "a training checkpoint"
    if kind == "model":
        return f"a model: {previous_model(path)}" if inside else f"a model ({previous_model(path)})"
    return "a file"


def model_exists(path: Path) -> bool:
    """Whether the model pair at ``path`` (``NAME.json`` + ``NAME.npz``) has either half on disk."""
    from scratchnet.io.model import model_paths

    return any(os.path.lexists(p) for p in model_paths(path))


REPLACE = "--overwrite to replace it, or another --out"


def refuse_existing(paths: list[Path], overwrite: bool, choice: str = REPLACE) -> None:
    """Refuse the outputs ``paths``: any that is not a regular file (a link, a device, a FIFO: never
    written, :func:`~scratchnet.io.model.check_replaceable`), and unless ``overwrite``, the first that
    exists, in one line naming what it holds and ``choice``, the ways on."""
    from scratchnet.io.model import check_replaceable

    for path in paths:
        check_replaceable(path)
    if overwrite:
        return
    for path in paths:
        if os.path.lexists(path):
            raise ConfigError(f"{path} exists; give {choice} (it holds {what_is_at(path, inside=True)})")


def refuse_existing_model(path: Path, overwrite: bool, choice: str = REPLACE) -> None:
    """:func:`refuse_existing` for a model pair: its ``.json`` or its ``.npz``."""
    from scratchnet.io.model import model_paths

    refuse_existing(list(model_paths(path)), overwrite, choice)


def next_free(path: Path) -> Path:
    """``path`` if no model is there, else the first of ``NAME-2.json``, ``NAME-3.json``, ... that is free."""
    if not model_exists(path):
        return path
    stem = path.name.removesuffix(".json")
    number = 2
    while model_exists(path.with_name(f"{stem}-{number}.json")):
        number += 1
    return path.with_name(f"{stem}-{number}.json")
