"""Saving and loading models: ``NAME.json`` (architecture, manifest, metadata) + ``NAME.npz`` (arrays).

The format is specified in spec/model-format.md. This module imports NumPy only when a vectorized
network is saved or loaded, so the loops backend reads and writes models with the standard library.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from scratchnet.builders import BACKENDS, build_network
from scratchnet.core.errors import ConfigError, ModelFormatError, ScratchnetError, ShapeError
from scratchnet.core.version import __version__
from scratchnet.io.atomic import (
    ModelWriteError,
    check_replaceable,
    kind_of,
    make_folder,
    os_reason,
    remove_empty_folders,
    replace_file,
    write_pair,
)
from scratchnet.io.manifest import (
    FORMAT,
    NPY_DESCRS,
    OPTIMIZER_PREFIX,
    Document,
    Limits,
    check_json_data,
    check_model_architecture,
    dump_document,
    expected_parameters,
    fail,
    lowest_version,
    manifest_entry,
    parse_document,
    trained_parameters,
    verify_arrays,
)
from scratchnet.io.npy import NpyArray, from_nested_floats, to_nested_floats
from scratchnet.io.npz import read_npz, write_npz
from scratchnet.loops.tensor import shape_of

__all__ = [
    "Limits",
    "LoadedModel",
    "ModelFiles",
    "ModelWriteError",
    "check_replaceable",
    "kind_of",
    "load",
    "load_model",
    "make_folder",
    "model_paths",
    "read_model",
    "remove_empty_folders",
    "replace_file",
    "save",
]

# Room for unexpected .npz entries, so they are reported by name rather than by a count limit.
_EXTRA_ENTRY_SLACK = 16
# magic (6) + version (2) + header length (up to 4) in front of each .npy header.
_NPY_PREFIX = 12
_MODEL_SUFFIXES = (".json", ".npz")


@dataclass(frozen=True)
class LoadedModel:
    """Everything a model pair holds: the network, its metadata, and the optimizer's settings and
    state (None when the file has no optimizer section). ``optimizer_state`` is what the optimizer's
    ``export_state()`` returned, ready for ``import_state``; ``optimizer_spec`` is its ``describe()``,
    ready for ``scratchnet.core.settings.build_optimizer``."""

    network: Any
    metadata: dict[str, Any]
    optimizer_state: dict[str, Any] | None
    architecture: dict[str, Any]
    dtype: str
    optimizer_spec: dict[str, Any] | None = None


@dataclass(frozen=True)
class ModelFiles:
    """A model pair read and verified, with the arrays still raw (no backend involved)."""

    json_path: Path
    npz_path: Path
    document: Document
    arrays: dict[str, NpyArray]


def model_paths(path: str | os.PathLike[str]) -> tuple[Path, Path]:
    """``(NAME.json, NAME.npz)`` for ``path`` given as ``NAME``, ``NAME.json`` or ``NAME.npz``.

    The suffix is recognised in any case (``NAME.NPZ``), and once only a pair's own: ``x.npz.json``
    is the pair ``x``, not ``x.npz``."""
    base = Path(os.fspath(path))
    while base.suffix.lower() in _MODEL_SUFFIXES:
        base = base.with_suffix("")
    if not base.name or base.name in (".", ".."):
        raise ConfigError(f"model path {os.fspath(path)!r} has no file name")
    return base.with_name(base.name + ".json"), base.with_name(base.name + ".npz")


# --- saving ---------------------------------------------------------------------------------------


def save(
    net: Any,
    path: str | os.PathLike[str],
    *,
    metadata: Mapping[str, Any] | None = None,
    optimizer: Any = None,
    dtype: str | None = None,
) -> None:
    """Save ``net`` (either backend) as ``NAME.json`` + ``NAME.npz``, atomically.

    ``metadata`` is JSON data merged into the file's metadata (a ``training`` object is the
    documented place for a training summary); ``scratchnet_version`` and ``created`` are always set
    here. ``optimizer`` (anything with ``describe()`` and ``export_state()``) adds its state for
    resuming. ``dtype`` ("float32"/"float64") defaults to the network's: float64 for loops.

    Missing folders of ``path`` are created. A path that cannot be written is a
    :class:`ModelWriteError` naming it (the previous pair, if any, is left as it was).
    """
    if os.path.isdir(path):
        raise ModelWriteError(
            f"cannot save to {os.fspath(path)}: it is a directory; give a model name in it, such as "
            f"{Path(path) / 'model'}"
        )
    json_path, npz_path = model_paths(path)
    for target in (json_path, npz_path):
        check_replaceable(target)
    architecture = check_model_architecture(net.describe())
    dtype_name = _dtype_name(net, dtype)
    code = NPY_DESCRS[dtype_name]
    shapes = expected_parameters(architecture)
    params = net.params()
    if set(params) != set(shapes):
        raise ConfigError(
            f"save: the network's parameters {sorted(params)} do not match its architecture {sorted(shapes)}"
        )
    arrays = {name: _to_npy(params[name], shape, code, name) for name, shape in shapes.items()}
    document: dict[str, Any] = {
        "format": FORMAT,
        "version": lowest_version(architecture),
        "dtype": dtype_name,
        "architecture": architecture,
        "arrays": npz_path.name,
        "parameters": [manifest_entry(name, arrays[name]) for name in shapes],
        "metadata": _metadata(metadata),
    }
    if optimizer is not None:
        document["optimizer"] = _optimizer_section(optimizer, trained_parameters(architecture), code, arrays)
    check_json_data(document, "the model document")
    raw = dump_document(document)
    # Never write what a reader refuses: run the reader's own checks first.
    try:
        verify_arrays(parse_document(raw, str(json_path)), arrays, str(npz_path), json_path.name)
    except ModelFormatError as error:
        raise ConfigError(f"cannot save: {error}") from None
    created = make_folder(json_path, "save")
    try:
        write_pair(npz_path, json_path, lambda f: write_npz(f, arrays), raw)
    except OSError as error:
        remove_empty_folders(created)  # a failed save leaves nothing behind, not even its folders
        raise ModelWriteError(f"cannot save {json_path}: {os_reason(error)}") from None


def _dtype_name(net: Any, dtype: str | None) -> str:
    if dtype is None:
        # The vectorized network has a NumPy dtype; the loops one computes in float64.
        dtype = str(getattr(net, "dtype", "float64"))
    if dtype not in NPY_DESCRS:
        raise ConfigError(f"dtype must be one of {sorted(NPY_DESCRS)}, got {dtype!r}")
    return dtype


def _metadata(extra: Mapping[str, Any] | None) -> dict[str, Any]:
    created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    result: dict[str, Any] = {"scratchnet_version": __version__, "created": created}
    result.update((key, value) for key, value in (extra or {}).items() if key not in result)
    return result


def _to_npy(value: Any, shape: tuple[int, ...], code: str, name: str) -> NpyArray:
    """A tensor of either backend as little-endian C-order bytes of dtype ``code``, rounding to nearest."""
    if isinstance(value, (list, tuple, int, float)):
        try:
            return from_nested_floats(value, shape, code)
        except ShapeError as error:
            raise ShapeError(f"save: {name}: {error}") from None
    import numpy as np  # only tensors that are not nested lists get here: NumPy is present

    array = np.asarray(value)
    if array.shape != shape:
        raise ShapeError(f"save: {name} has shape {array.shape}, expected {shape}")
    if array.dtype.kind not in "fiu":
        raise ConfigError(f"save: {name} has dtype {array.dtype}, not a number type")
    return NpyArray(code, shape, np.ascontiguousarray(array, dtype=np.dtype(code)).tobytes())


def _optimizer_section(
    optimizer: Any, shapes: Mapping[str, tuple[int, ...]], code: str, arrays: dict[str, NpyArray]
) -> dict[str, Any]:
    spec = optimizer.describe()
    state = optimizer.export_state()
    if not isinstance(state, Mapping) or set(state) != {"step", "arrays"}:
        raise ConfigError("save: optimizer.export_state() must return {'step': int, 'arrays': {name: tensor}}")
    entries = []
    for name, tensor in state["arrays"].items():
        parameter = name.rpartition(".")[0]
        if parameter not in shapes:
            raise ConfigError(
                f"save: optimizer array {name!r} is not '<parameter>.<slot>' for a trained parameter of this model"
            )
        arrays[OPTIMIZER_PREFIX + name] = _to_npy(tensor, shapes[parameter], code, f"optimizer array {name}")
        entries.append(manifest_entry(name, arrays[OPTIMIZER_PREFIX + name]))
    step = state["step"]
    return {"spec": spec, "step": step, "arrays": entries}


# --- loading --------------------------------------------------------------------------------------


def read_model(path: str | os.PathLike[str], *, limits: Limits = Limits()) -> ModelFiles:
    """Read and verify a model pair without building a network: every rule of the spec but none of the maths.

    Every problem is a ModelFormatError naming the file.
    """
    if os.path.isdir(path):
        raise fail(os.fspath(path), f"is a directory, not a model ({_models_in(Path(path))})")
    given = Path(os.fspath(path))
    json_path = model_paths(path)[0]
    if given.suffix.lower() not in _MODEL_SUFFIXES and given.is_file() and not json_path.exists():
        # `inspect README.md`: name the file the user gave, not a README.md.json that never existed
        raise fail(str(given), "is not a scratchnet model: a model is a NAME.json + NAME.npz pair; give its .json")
    raw = _read_bounded(json_path, limits.json_bytes, str(json_path))
    return pair_of(json_path, raw, limits)


def pair_of(json_path: Path, raw: bytes, limits: Limits = Limits()) -> ModelFiles:
    """The verified pair of the document bytes ``raw`` (read from ``json_path``) and its arrays."""
    json_name = str(json_path)
    own_npz = model_paths(json_path)[1]
    document = parse_document(raw, json_name, limits)
    npz_path = arrays_path(json_path, document.arrays_file)
    npz_name = str(npz_path)
    if not npz_path.is_file():
        recorded = "" if document.arrays_file == own_npz.name else f" (nor {document.arrays_file}, the name it records)"
        raise fail(str(own_npz), f"the arrays file beside {json_path.name} is missing{recorded}")
    entries = document.npz_entries()
    slots = len(entries) + _EXTRA_ENTRY_SLACK
    total = sum(entry.nbytes for entry in entries.values()) + slots * (limits.npy_header + _NPY_PREFIX)
    arrays = read_npz(npz_path, npz_name, max_arrays=slots, max_total_bytes=total, max_header=limits.npy_header)
    verify_arrays(document, arrays, npz_name, json_path.name)
    return ModelFiles(json_path, npz_path, document, arrays)


def arrays_path(json_path: Path, recorded: str) -> Path:
    """The ``.npz`` of the document ``json_path``: ``NAME.npz`` beside ``NAME.json`` when it exists, else
    the file the document's ``arrays`` member names (section 1.9 of the spec): a pair renamed together
    (``cp m.json a.json; cp m.npz a.npz``) loads as itself, and the checksums prove that the arrays are
    the document's."""
    own = model_paths(json_path)[1]
    return own if own.is_file() else json_path.parent / recorded


def _models_in(directory: Path) -> str:
    """``models in it: a.json, b.json`` (the first few), or that it holds none."""
    try:
        names = sorted(p.name for p in directory.glob("*.json") if p.with_suffix(".npz").is_file())
    except OSError:
        names = []
    if not names:
        return "it holds no NAME.json + NAME.npz pair; give the path of a model's .json"
    shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
    return f"models in it: {shown}"


def _read_bounded(path: Path, limit: int, name: str) -> bytes:
    try:
        with open(path, "rb") as f:
            raw = f.read(limit + 1)
    except OSError as error:
        raise fail(name, f"cannot read the model file ({type(error).__name__}: {error.strerror or error})") from None
    if len(raw) > limit:
        raise fail(name, f"the model file is larger than the limit of {limit} bytes")
    return raw


def load_model(path: str | os.PathLike[str], backend: str = "vectorized", *, limits: Limits = Limits()) -> LoadedModel:
    """Load a model pair into ``backend`` ("vectorized" or "loops") with its metadata and optimizer state.

    The loops backend computes in float64, so a float32 model loads into it as the same values, exactly.
    """
    if backend not in BACKENDS:
        raise ConfigError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    files = read_model(path, limits=limits)
    document = files.document
    json_name = str(files.json_path)
    try:
        net = build_network(
            document.architecture, backend=backend, dtype=document.dtype if backend == "vectorized" else "float64"
        )
    except ScratchnetError as error:
        raise fail(json_name, f"architecture: {error}") from None
    convert = _to_nested if backend == "loops" else _to_numpy
    expected = {entry.name: entry.shape for entry in document.parameters}
    built = {name: _shape(value) for name, value in net.params().items()}
    if built != expected:
        raise fail(json_name, f"the architecture builds parameters {built}, but the manifest lists {expected}")
    net.set_params({name: convert(files.arrays[name]) for name in expected})
    optimizer_state, optimizer_spec = None, None
    if document.optimizer is not None:
        optimizer_spec = document.optimizer.spec
        optimizer_state = {
            "step": document.optimizer.step,
            "arrays": {
                entry.name: convert(files.arrays[OPTIMIZER_PREFIX + entry.name]) for entry in document.optimizer.arrays
            },
        }
    return LoadedModel(
        network=net,
        metadata=document.metadata,
        optimizer_state=optimizer_state,
        optimizer_spec=optimizer_spec,
        architecture=document.architecture,
        dtype=document.dtype,
    )


def load(path: str | os.PathLike[str], backend: str = "vectorized") -> Any:
    """The network saved at ``path`` (NAME, NAME.json or NAME.npz), built in ``backend``."""
    return load_model(path, backend).network


def _shape(value: Any) -> tuple[int, ...]:
    shape = getattr(value, "shape", None)
    return tuple(int(d) for d in shape) if shape is not None else shape_of(value)


def _to_nested(array: NpyArray) -> Any:
    return to_nested_floats(array)


def _to_numpy(array: NpyArray) -> Any:
    import numpy as np  # the vectorized backend is being loaded, so NumPy is present

    # A writable copy: the optimizer state is updated in place when training resumes.
    return np.frombuffer(array.data, dtype=np.dtype(array.dtype)).reshape(array.shape).copy()
