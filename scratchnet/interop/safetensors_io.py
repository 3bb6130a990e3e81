"""A scratchnet model as safetensors, under the names ``torch.nn.Sequential`` gives its tensors.

The file holds every array of the model (:func:`~scratchnet.interop.torch_names.state_dict`: the
registry's names, plus BatchNorm's ``num_batches_tracked``) and, in its ``__metadata__``, the
architecture as JSON and the metadata that says how to feed the model (dataset, class names, input
scaling), so that ``scratchnet import`` reads it back alone. A file written by PyTorch
(``safetensors.torch.save_file(model.state_dict(), ...)``) has no architecture: it is given then.
The safetensors package reads and writes the files; its checks of the header (offsets, sizes,
dtypes) are what make a damaged file one clear error.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from scratchnet.core.architecture import DTYPES, canonical, plan
from scratchnet.core.errors import ConfigError, InteropError
from scratchnet.core.jsonread import JSONInputError, read_json
from scratchnet.core.version import __version__
from scratchnet.interop.extras import require
from scratchnet.interop.files import first_line, read_bounded, write_atomically
from scratchnet.interop.portable import (
    Portable,
    check_arrays,
    check_names,
    portable_metadata,
    read_portable_metadata,
)
from scratchnet.interop.torch_names import counter_names, state_dict

ARCHITECTURE_KEY = "architecture"


def safetensors_bytes(model: Portable) -> bytes:
    """The safetensors file of ``model``: its state dict, and the architecture and metadata as ``__metadata__``."""
    require("safetensors", "writing safetensors")
    from safetensors.numpy import save

    metadata = {
        "format": "pt",  # what safetensors.torch writes: the tensors of a PyTorch state dict
        ARCHITECTURE_KEY: json.dumps(model.architecture, sort_keys=True),
        "producer": f"scratchnet {__version__}",
        **portable_metadata(model.metadata),
    }
    # np.asarray, not np.ascontiguousarray, which makes a 0-d array 1-d: num_batches_tracked has no axes
    return save({name: np.asarray(value, order="C") for name, value in state_dict(model).items()}, metadata)


def write_safetensors(model: Portable, target: Path) -> Path:
    """Write ``model`` to ``target`` as safetensors, atomically; return ``target``."""
    return write_atomically(target, safetensors_bytes(model))


def read_safetensors(path: Path, *, architecture: Mapping[str, Any] | None = None, loss: str | None = None) -> Portable:
    """The scratchnet model of the safetensors file ``path``, with the architecture its metadata
    records or ``architecture``; ``loss`` replaces the architecture's loss."""
    require("safetensors", "reading safetensors")
    from safetensors import safe_open

    where = str(path)
    if not path.is_file():
        raise InteropError(f"{path}: {'is a directory, not a safetensors file' if path.is_dir() else 'no such file'}")
    try:
        with safe_open(where, framework="numpy") as handle:
            metadata = dict(handle.metadata() or {})
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}  # noqa: SIM118 - not a dict
    except Exception as error:  # safetensors' SafetensorError and others for a damaged file
        raise InteropError(f"{path}: not a valid safetensors file ({first_line(error)})") from None
    if architecture is None:
        if ARCHITECTURE_KEY not in metadata:
            raise InteropError(
                f"{path}: records no architecture (it was not written by scratchnet export); "
                "give one with --architecture FILE.json or --layers TEXT"
            )
        try:
            architecture = read_json(metadata[ARCHITECTURE_KEY], "its metadata's architecture")
        except JSONInputError as error:
            raise InteropError(f"{path}: {error}") from None
    description = dict(architecture) if isinstance(architecture, Mapping) else architecture
    if loss is not None and isinstance(description, dict):
        description["loss"] = {"type": loss}
    try:
        checked = plan(description)  # a non-object is refused here
    except ConfigError as error:
        raise InteropError(f"{path}: architecture: {error}") from None
    counters = set(counter_names(checked))
    arrays: dict[str, npt.NDArray[Any]] = {}
    for name, value in tensors.items():
        if name in counters:
            if value.dtype.kind not in "iu" or value.size != 1:
                raise InteropError(f"{path}: {name!r} must be one integer, got {value.dtype} of shape {value.shape}")
            continue  # PyTorch's count of training batches: scratchnet keeps none
        arrays[name] = value
    check_names(checked, arrays, where)
    dtypes = sorted({str(value.dtype) for value in arrays.values()})
    if len(dtypes) > 1 or (dtypes and dtypes[0] not in DTYPES):
        raise InteropError(
            f"{path}: tensors of {', '.join(dtypes)}; scratchnet models are float32 or float64, one of them"
        )
    check_arrays(checked, arrays, where)
    dtype = dtypes[0] if dtypes else "float32"
    imported = {"format": "safetensors", "file": path.name}
    if "producer" in metadata:
        imported["producer"] = metadata["producer"]
    model_metadata = read_portable_metadata(metadata, where, checked)
    ordered = {name: arrays[name] for name in checked.shapes()}
    return Portable(canonical(checked.description), ordered, dtype, model_metadata, imported)


def read_architecture(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The architecture in the JSON file ``path``: an architecture (``{"layers": ..., "loss": ...}``)
    or a scratchnet model document, whose ``architecture`` it takes."""
    source = Path(os.fspath(path))
    try:
        document = read_json(read_bounded(source, "an architecture", limit=64 << 20), "the file", max_bytes=None)
    except JSONInputError as error:
        raise InteropError(f"{source}: {error}") from None
    if isinstance(document, dict) and "architecture" in document and "layers" not in document:
        document = document["architecture"]
    if not isinstance(document, dict):
        raise InteropError(f"{source}: an architecture is a JSON object with 'layers' and 'loss'")
    return document
