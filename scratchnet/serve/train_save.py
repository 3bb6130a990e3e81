"""Saving a Train-mode run as an ordinary model: into the server's models folder under a name the
server makes safe (``POST /api/train/save``), or as one zip file of the pair (``GET /api/train/download``).

A request names a model, never a path: anything but letters, digits, ``-`` and ``_`` becomes ``-``,
so the name cannot leave the folder, hide as a dot file or reach another drive.
"""

from __future__ import annotations

import io
import math
import re
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from scratchnet.core.errors import ScratchnetError
from scratchnet.io.model import model_paths, save
from scratchnet.serve.api import RequestError, check_fields
from scratchnet.serve.train_session import TrainRun
from scratchnet.training.checkpoint import base_metadata

MAX_NAME = 64
UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def safe_name(given: Any) -> str:
    """The file name (without extension) of a requested model name."""
    if not isinstance(given, str) or not given.strip():
        raise RequestError("'name' must be a non-empty text")
    name = UNSAFE.sub("-", given.strip())[:MAX_NAME].strip("-")
    if not name:
        raise RequestError(f"the name {given[:40]!r} has no letter or digit to make a file name of")
    return name


def metadata_of(run: TrainRun) -> dict[str, Any]:
    """What ``scratchnet train`` writes of a run: the data, input scaling and settings, the optimizer,
    the history (the records every N steps, with the test loss and accuracy) and the final figures."""
    metadata = base_metadata(run.config, run.data, run.feeder)
    history = run.loop.state.history
    last = history[-1] if history else {}
    test = run.curves["test_accuracy"][-1] if run.curves["test_accuracy"] else None
    metadata["training"].update(
        {
            "optimizer": run.optimizer.describe(),
            "seed": run.request.seed,
            "epochs": run.request.epochs,
            "train_images": len(run.split.train_labels),
            "validation_images": 0,
            "history": [clean(record) for record in history],
            "dataset": run.data.name,
            "final_metrics": {} if test is None else {"test_accuracy": test},
            "final": {
                "train_loss": last.get("loss"),
                "train_accuracy": last.get("train_accuracy"),
                "validation_accuracy": None,
                "test_accuracy": test,
                "train_seconds": run.loop.state.elapsed,
            },
            "served": {"step": run.loop.global_step, "lr_changes": run.lr_changes, "data": run.request.data.describe()},
        }
    )
    return metadata


def clean(record: dict[str, Any]) -> dict[str, Any]:
    """A record with None for numbers that are not finite (a model file holds JSON)."""
    return {
        key: None if isinstance(value, float) and not math.isfinite(value) else value for key, value in record.items()
    }


def save_run(run: TrainRun, folder: Path, body: Any) -> dict[str, Any]:
    """``POST /api/train/save``: the run as NAME.json + NAME.npz in ``folder``."""
    fields = check_fields(body, {"name", "overwrite"}, required={"name"})
    overwrite = fields.get("overwrite", False)
    if not isinstance(overwrite, bool):
        raise RequestError("'overwrite' must be true or false")
    name = safe_name(fields["name"])
    path = folder / f"{name}.json"
    taken = [file for file in model_paths(path) if file.exists() or file.is_symlink()]
    if taken and not overwrite:
        raise RequestError(f'a model named {name} is already in {folder}: send "overwrite": true to replace it', 409)
    write(run, path)
    command = "evaluate" if run.data.kind == "image" and run.data.source is None else "inspect"
    return {"name": name, "path": str(path), "replaced": bool(taken), "load": f"scratchnet {command} {path}"}


def write(run: TrainRun, path: Path) -> None:
    with run.condition:  # the parameters of one step, not of two
        metadata = metadata_of(run)
        try:
            save(run.network, path, metadata=metadata, optimizer=run.optimizer)
        except ScratchnetError as error:
            raise RequestError(f"cannot save the model: {error}", 500) from None


def download(run: TrainRun) -> tuple[bytes, str]:
    """``GET /api/train/download``: (the zip's bytes, its file name) of the run as a model."""
    name = f"scratchnet-{run.data.name}-step-{run.loop.global_step}"
    with tempfile.TemporaryDirectory(prefix="scratchnet-download-") as folder:
        path = Path(folder) / f"{name}.json"
        write(run, path)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for file in model_paths(path):
                archive.write(file, file.name)
    return buffer.getvalue(), f"{name}.zip"
