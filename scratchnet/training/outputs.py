"""Where a training run writes: checked and claimed before any work, described when replaced.

A run writes two model pairs: its output and its checkpoint (which it deletes when it ends). Before
loading any data, :func:`claimed_outputs` refuses paths the run must not write (a checkpoint path
that holds someone's model, which the run would overwrite and then delete; the output itself as
the checkpoint; a file that is not a scratchnet model), creates the folders, and takes the lock of
each pair (:mod:`scratchnet.io.lock`), which also proves the folder writable. A second run with the
same output is refused at once; the locks are released when the run ends, however it ends.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from scratchnet.core.errors import ConfigError
from scratchnet.core.jsonread import read_json
from scratchnet.io.lock import model_lock
from scratchnet.io.manifest import FORMAT, Limits
from scratchnet.io.model import check_replaceable, model_paths

CHECKPOINT_FORMAT = "scratchnet-checkpoint-1"

_ABSENT, _FOREIGN, _MODEL, _CHECKPOINT = "absent", "foreign", "model", "checkpoint"


def file_kind(path: Path) -> tuple[str, dict[str, Any]]:
    """What the document ``path`` is: absent, foreign (not a scratchnet model), a model or a training
    checkpoint; with its metadata (empty unless a model or a checkpoint). The document is parsed as
    JSON only: this is about whose file it is, not whether it loads."""
    if not path.exists():
        return _ABSENT, {}
    try:
        with open(path, "rb") as handle:
            raw = handle.read(Limits().json_bytes + 1)
        document = read_json(raw, max_bytes=None)  # bounded as it was read
    except (OSError, ValueError):
        return _FOREIGN, {}
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        return _FOREIGN, {}
    metadata = document.get("metadata")
    metadata = metadata if isinstance(metadata, dict) else {}
    section = metadata.get("checkpoint")
    if isinstance(section, dict) and section.get("format") == CHECKPOINT_FORMAT:
        return _CHECKPOINT, metadata
    return _MODEL, metadata


def checkpoint_position(metadata: Mapping[str, Any]) -> tuple[int, int, int] | None:
    """``(epochs done, steps done in the next, epochs of the run)`` of a checkpoint's metadata."""
    section = metadata.get("checkpoint")
    training = metadata.get("training")
    state = section.get("state") if isinstance(section, Mapping) else None
    config = training.get("config") if isinstance(training, Mapping) else None
    if not isinstance(state, Mapping) or not isinstance(config, Mapping):
        return None
    values = (state.get("epoch"), state.get("step"), config.get("epochs"))
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return None
    epoch, step, epochs = values
    assert isinstance(epoch, int) and isinstance(step, int) and isinstance(epochs, int)
    return epoch, step, epochs


def describe_position(position: tuple[int, int, int] | None) -> str:
    """``after epoch 3 of 20``, ``at epoch 4 of 20, step 17``, or ``finished (20 of 20 epochs)``."""
    if position is None:
        return "at an unknown point"
    epoch, step, epochs = position
    if epoch >= epochs:
        return f"finished ({epoch} of {epochs} epochs)"
    if step:
        return f"at epoch {epoch + 1} of {epochs}, step {step}"
    return f"after epoch {epoch} of {epochs}"


def check_output_paths(
    out: Path | None, ckpt: Path | None, *, resuming: Path | None = None, log: Callable[[str], None] = print
) -> None:
    """ConfigError for output and checkpoint paths the run must not write (see the module's text); then
    a note to ``log`` when the checkpoint path holds an unfinished run's checkpoint."""
    check_paths_writable(out, ckpt, resuming=resuming)
    note_replaced_checkpoint(ckpt, resuming=resuming, log=log)


def check_paths_writable(out: Path | None, ckpt: Path | None, *, resuming: Path | None = None) -> None:
    """ConfigError for output and checkpoint paths the run must not write (see the module's text)."""
    for path, what in ((out, "the output"), (ckpt, "the checkpoint")):
        for candidate in () if path is None else (path, path.with_suffix(".npz")):
            refuse_directory(candidate, what)
    for path in (out, ckpt):  # a link, a device or a FIFO is never replaced (nor read as a model)
        for file in model_paths(path) if path is not None else ():
            check_replaceable(file)
    if out is not None and out == ckpt and resuming != ckpt:  # a resumed checkpoint may become the model
        raise ConfigError(
            f"the output and the checkpoint are the same file, {out}: the first checkpoint would replace the "
            "model there before the run has trained anything; give another --checkpoint (or none: the default "
            "is OUT.checkpoint.json)"
        )
    if out is not None:
        kind, _ = file_kind(out)
        if kind == _FOREIGN:
            raise ConfigError(
                f"{out} exists and is not a scratchnet model; the run would replace it: choose another --out"
            )
    if ckpt is None or ckpt == resuming:
        return
    kind, _ = file_kind(ckpt)
    if kind == _FOREIGN:
        raise ConfigError(
            f"the checkpoint path {ckpt} holds a file that is not a scratchnet model; the run would overwrite "
            "it, then delete it: choose another --checkpoint"
        )
    if kind == _MODEL:
        raise ConfigError(
            f"the checkpoint path {ckpt} holds a model, not a training checkpoint; the run would overwrite it, "
            "then delete it when it ends: choose another --checkpoint"
        )


def note_replaced_checkpoint(ckpt: Path | None, *, resuming: Path | None, log: Callable[[str], None]) -> None:
    """Say so when a fresh run's checkpoint path holds the checkpoint of an unfinished run."""
    if ckpt is None or ckpt == resuming:
        return
    kind, metadata = file_kind(ckpt)
    if kind == _CHECKPOINT:
        position = checkpoint_position(metadata)
        if position is None or position[0] < position[2]:
            log(
                f"note: {ckpt} held the checkpoint of an unfinished run ({describe_position(position)}); this run "
                f"starts afresh and replaces it (to continue that run instead: scratchnet train --resume {ckpt})"
            )


def refuse_directory(path: str | os.PathLike[str] | Path | None, what: str) -> None:
    """ConfigError when ``path`` (as the caller gave it: ``models`` as well as ``models.json``) is a
    folder. A folder beside the name (``pics`` beside ``pics.json``) is no obstacle: the files are named."""
    if path is not None and Path(path).is_dir():
        raise ConfigError(f"{what} {path} is a directory; give a model file name, such as {Path(path) / 'model'}")


@contextmanager
def claimed_outputs(
    out: Path | None, ckpt: Path | None, *, resuming: Path | None = None, log: Callable[[str], None] = print
) -> Iterator[None]:
    """Check the run's paths (:func:`check_paths_writable`), then hold the lock of each while the block
    runs: ModelWriteError when another run holds one, or when a folder cannot be made or written. Only
    once the locks are held is anything said of what is there (a run refused by the lock says nothing
    else)."""
    check_paths_writable(out, ckpt, resuming=resuming)
    with ExitStack() as stack:
        for path in dict.fromkeys(p for p in (out, ckpt) if p is not None):
            stack.enter_context(model_lock(path, purpose="training"))
        note_replaced_checkpoint(ckpt, resuming=resuming, log=log)
        yield


def previous_model(path: Path) -> str | None:
    """What the model at ``path`` is, for the line that says a run replaced it: ``test accuracy 96.50%,
    saved 2026-12-01T10:00:00Z``; None when there is no model there."""
    kind, metadata = file_kind(path)
    if kind not in (_MODEL, _CHECKPOINT):
        return None
    parts = []
    accuracy = final_metric(metadata, "test_accuracy")
    if accuracy is not None:
        parts.append(f"test accuracy {100 * accuracy:.2f}%")
    training = metadata.get("training")
    dataset = metadata.get("dataset") or (training.get("dataset") if isinstance(training, Mapping) else None)
    if isinstance(dataset, str):
        parts.append(dataset)
    if isinstance(metadata.get("created"), str):
        parts.append(f"saved {metadata['created']}")
    return ", ".join(parts) if parts else "no recorded accuracy"


def final_metric(metadata: Mapping[str, Any], name: str) -> float | None:
    """A final metric of a trained model: ``training.final_metrics`` (the spec's member) or, in files
    written before it was filled in, scratchnet's own ``training.final``."""
    training = metadata.get("training")
    if not isinstance(training, Mapping):
        return None
    for section in ("final_metrics", "final"):
        values = training.get(section)
        value = values.get(name) if isinstance(values, Mapping) else None
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            return float(value)
    return None
