"""A model as every format here sees it: its architecture, its arrays by name, its dtype and the
metadata another framework can carry. Reading a scratchnet model into one, saving one as a model.

The arrays are named as the registry names them, ``"<layer index>.<name>"``, which are also the names
``torch.nn.Sequential`` gives the same stack of modules (spec/model-format.md section 1.3).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from scratchnet.builders import build_network
from scratchnet.core.architecture import DTYPES, Plan, canonical, plan
from scratchnet.core.errors import ConfigError, InteropError, ScratchnetError, quoted_list
from scratchnet.core.jsonread import JSONInputError, read_json
from scratchnet.data.images import Feeder
from scratchnet.io.metadata import input_problem
from scratchnet.io.model import load_model, model_paths, save

# The metadata another format carries (ONNX metadata_props, safetensors __metadata__): string to
# string, the lists and objects as JSON.
PORTABLE_METADATA = ("dataset", "class_names", "input")


@dataclass(frozen=True, eq=False)
class Portable:
    """A model between formats. ``arrays`` holds every array of the architecture (trained or not),
    in ``dtype``; ``metadata`` what the model's metadata says about its inputs and outputs (and, read
    from a scratchnet model, the rest of it); ``imported`` where it came from, for the model written;
    ``optimizer_step`` the step count of the optimizer state saved with a scratchnet model, if any."""

    architecture: dict[str, Any]
    arrays: dict[str, npt.NDArray[Any]]
    dtype: str
    metadata: dict[str, Any]
    imported: dict[str, Any] = field(default_factory=dict)
    optimizer_step: int | None = None

    @property
    def plan(self) -> Plan:
        return plan(self.architecture)


def read_scratchnet(path: str | os.PathLike[str], dtype: str | None = None) -> Portable:
    """The scratchnet model at ``path``, verified as ``load_model`` verifies it, with its arrays in
    ``dtype`` (default: the model's own; float64 to float32 rounds to nearest)."""
    loaded = load_model(path, backend="vectorized")
    target = loaded.dtype if dtype is None else dtype
    if target not in DTYPES:
        raise ConfigError(f"dtype must be one of {', '.join(DTYPES)}, got {target!r}")
    arrays = {name: np.array(value, dtype=target) for name, value in loaded.network.params().items()}
    step = None if loaded.optimizer_state is None else int(loaded.optimizer_state["step"])
    return Portable(loaded.architecture, arrays, target, dict(loaded.metadata), optimizer_step=step)


def portable_of(network: Any, metadata: Mapping[str, Any] | None = None, dtype: str | None = None) -> Portable:
    """A built network of either backend (in memory, never saved) as a Portable: its architecture
    (``describe()``), its arrays in ``dtype`` (default: the network's; float64 for loops) and
    ``metadata`` (dataset, class names, input scaling), for :func:`scratchnet.interop.export_network`."""
    target = str(getattr(network, "dtype", "float64")) if dtype is None else dtype
    if target not in DTYPES:
        raise ConfigError(f"dtype must be one of {', '.join(DTYPES)}, got {target!r}")
    try:
        checked = plan(network.describe())
    except ConfigError as error:
        raise InteropError(f"the network does not describe a valid architecture: {error}") from None
    params = network.params()
    arrays = {info.name: np.array(params[info.name], dtype=target).reshape(info.shape) for info in checked.arrays}
    return Portable(canonical(checked.description), arrays, target, dict(metadata or {}))


def write_scratchnet(model: Portable, target: Path, metadata: Mapping[str, Any]) -> Path:
    """Save ``model`` as a scratchnet model pair at ``target`` (atomically, as ``save`` writes), with
    ``metadata`` over the model's (its ``input`` scaling member by member); return the ``.json`` written."""
    try:
        network = build_network(model.architecture, backend="vectorized", dtype=model.dtype)
        network.set_params(model.arrays)
    except ScratchnetError as error:
        raise InteropError(f"the model read does not build: {error}") from None
    merged = {**model.metadata, **metadata}
    if "input" in metadata:  # member by member: --input-std alone keeps the file's mean
        given = model.metadata.get("input") or {}
        merged["input"] = {"scale": 255.0, "mean": 0.0, "std": 1.0, **given, **metadata["input"]}
    if model.imported:
        merged["imported"] = model.imported
    save(network, target, metadata=merged, dtype=model.dtype)
    return model_paths(target)[0]


def check_arrays(checked: Plan, arrays: Mapping[str, npt.NDArray[Any]], where: str) -> None:
    """InteropError (starting with ``where``) unless ``arrays`` has exactly the plan's arrays, each of
    its shape, all finite, and every variance >= 0."""
    check_names(checked, arrays, where)
    for info in checked.arrays:
        value = arrays[info.name]
        if tuple(value.shape) != info.shape:
            raise InteropError(
                f"{where}: tensor {info.name!r} has shape {tuple(value.shape)}, but the architecture needs {info.shape}"
            )
        if not np.all(np.isfinite(value)):
            raise InteropError(f"{where}: tensor {info.name!r} holds NaN or infinite values")
        if info.non_negative and np.any(value < 0):
            raise InteropError(f"{where}: tensor {info.name!r} holds negative values (it is a variance)")


def check_names(checked: Plan, arrays: Mapping[str, Any], where: str) -> None:
    """InteropError (starting with ``where``) unless ``arrays`` names exactly the plan's arrays."""
    expected = checked.shapes()
    missing = [name for name in expected if name not in arrays]
    extra = [name for name in arrays if name not in expected]
    if missing or extra:
        parts = [f"misses {quoted_list(missing)}"] if missing else []
        parts += [f"has unexpected {quoted_list(extra)}"] if extra else []
        raise InteropError(f"{where}: the tensors do not fit the architecture: it {' and '.join(parts)}")


def portable_metadata(metadata: Mapping[str, Any]) -> dict[str, str]:
    """The members of :data:`PORTABLE_METADATA` that ``metadata`` has, as strings (JSON for a list or
    object); InteropError for a number JSON cannot hold (an exported file never says ``Infinity``)."""
    result = {}
    for key in PORTABLE_METADATA:
        if key in metadata and metadata[key] is not None:
            value = metadata[key]
            try:
                result[key] = value if isinstance(value, str) else json.dumps(value, sort_keys=True, allow_nan=False)
            except ValueError:
                raise InteropError(f"metadata {key!r} holds a number that is not finite: {value!r:.80}") from None
    return result


def read_portable_metadata(props: Mapping[str, str], where: str, checked: Plan) -> dict[str, Any]:
    """The inverse of :func:`portable_metadata`: the members it knows, checked against the network
    ``checked`` (as many class names as outputs, an input shape it takes); others are ignored.

    A member that is not what scratchnet writes there is an InteropError naming it: a model that
    says how to feed it must not be fed another way."""
    result: dict[str, Any] = {}
    if "dataset" in props:
        result["dataset"] = props["dataset"]
    for key in ("class_names", "input"):
        if key not in props:
            continue
        try:
            value = read_json(props[key], f"metadata {key!r}")
        except JSONInputError as error:
            raise InteropError(f"{where}: {error}") from None
        result[key] = value
    names = result.get("class_names")
    if names is not None and not (isinstance(names, list) and all(isinstance(n, str) for n in names)):
        raise InteropError(f"{where}: metadata 'class_names' must be a list of strings, got {names!r:.80}")
    if names is not None and len(names) not in (checked.classes, 2 if checked.classes == 1 else checked.classes):
        raise InteropError(  # (one output may name two classes: a sigmoid's no and yes)
            f"{where}: metadata 'class_names' names {len(names)} classes, "
            f"but the network computes {checked.classes} outputs"
        )
    problem = input_problem(result, checked.input_shape)
    if problem is not None:
        raise InteropError(f"{where}: metadata {problem}")
    scaling = result.get("input")
    if scaling is not None:
        try:  # the check the model's own loader makes: images (one scale, mean, std) or a table's features
            if not isinstance(scaling, dict):
                raise ConfigError("not an object")
            Feeder.from_metadata({"input": scaling}, "vectorized", "float32")
        except ConfigError:
            raise InteropError(
                f"{where}: metadata 'input' is not an input scaling scratchnet knows (spec/model-format.md 1.5.1): "
                f"{props['input']!r:.80}"
            ) from None
    return result
