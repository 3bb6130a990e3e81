"""Saving and loading models: ``NAME.json`` (architecture, manifest, metadata) + ``NAME.npz`` (arrays).

The format is specified in spec/model-format.md. This module imports NumPy only when a vectorized
network is saved or loaded, so the loops backend reads and writes models with the standard library.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from scratchnet.builders import BACKENDS, build_network
from scratchnet.core.errors import ConfigError, ModelFormatError, ScratchnetError, ShapeError
from scratchnet.core.version import __version__
from scratchnet.io.manifest import (
    DTYPES,
    FORMAT,
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

__all__ = ["Limits", "LoadedModel", "ModelFiles", "load", "load_model", "model_paths", "read_model", "save"]

# Room for unexpected .npz entries, so they are reported by name rather than by a count limit.
_EXTRA_ENTRY_SLACK = 16
# magic (6) + version (2) + header length (up to 4) in front of each .npy header.
_NPY_PREFIX = 12
_NEW_FILE_MODE = 0o644  # where the umask cannot be read


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
    """``(NAME.json, NAME.npz)`` for ``path`` given as ``NAME``, ``NAME.json`` or ``NAME.npz``."""
    base = Path(os.fspath(path))
    if base.suffix in (".json", ".npz"):
        base = base.with_suffix("")
    if not base.name:
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
    """
    json_path, npz_path = model_paths(path)
    architecture = check_model_architecture(net.describe())
    dtype_name = _dtype_name(net, dtype)
    code = DTYPES[dtype_name]
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
    _write_pair(npz_path, json_path, lambda f: write_npz(f, arrays), raw)


def _dtype_name(net: Any, dtype: str | None) -> str:
    if dtype is None:
        # The vectorized network has a NumPy dtype; the loops one computes in float64.
        dtype = str(getattr(net, "dtype", "float64"))
    if dtype not in DTYPES:
        raise ConfigError(f"dtype must be one of {sorted(DTYPES)}, got {dtype!r}")
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


def _write_pair(npz_path: Path, json_path: Path, write_npz_to: Callable[[BinaryIO], None], json_bytes: bytes) -> None:
    """Replace both files atomically, .npz first and .json last: the .json (which holds the checksums)
    is the commit point.

    Until the .npz rename the old pair is untouched. A crash (not Ctrl-C, see below) between the two
    renames leaves the new .npz beside the old .json; the checksums in the old .json then fail and
    the reader refuses the pair instead of mixing two models.
    """
    directory = json_path.parent
    temps: dict[str, Path] = {}
    try:
        temps["npz"] = _write_temp(npz_path, write_npz_to)
        temps["json"] = _write_temp(json_path, lambda f: f.write(json_bytes))
        os.replace(temps["npz"], npz_path)
        _fsync_directory(directory)  # the .npz rename is durable before the .json can be
        os.replace(temps["json"], json_path)
        _fsync_directory(directory)
    except BaseException as error:
        # Ctrl-C after the .npz rename: finish the commit (the .json is written and synced) rather
        # than leave a mismatched pair. Decided by the files, not by a flag the interrupt could skip.
        if (
            isinstance(error, KeyboardInterrupt)
            and "json" in temps
            and not temps["npz"].exists()
            and temps["json"].exists()
        ):
            try:
                os.replace(temps["json"], json_path)
                _fsync_directory(directory)
            except OSError:
                pass
        for temp in temps.values():
            with contextlib.suppress(OSError):
                temp.unlink()
        raise


def _write_temp(target: Path, write: Callable[[BinaryIO], Any]) -> Path:
    """Write a temporary file beside ``target`` (same file system, so the rename is atomic), synced."""
    try:
        mode = stat.S_IMODE(os.stat(target).st_mode)  # replacing a file keeps its permissions
    except OSError:
        mode = _new_file_mode()  # mkstemp makes files 0600; give what open() would have given
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    temp = Path(name)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(temp, mode)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return temp


def _new_file_mode() -> int:
    """0o666 less the umask, as for a file made by open(); the umask is read from /proc where possible,
    because os.umask() can only read it by changing it, which races with other threads."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return _NEW_FILE_MODE


def _fsync_directory(directory: Path) -> None:
    """Make renames in ``directory`` durable; a no-op where directories cannot be opened (Windows)."""
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems refuse fsync on a directory; the rename itself is still atomic
    finally:
        os.close(fd)


# --- loading --------------------------------------------------------------------------------------


def read_model(path: str | os.PathLike[str], *, limits: Limits = Limits()) -> ModelFiles:
    """Read and verify a model pair without building a network: every rule of the spec but none of the maths.

    Every problem is a ModelFormatError naming the file.
    """
    json_path, _ = model_paths(path)
    json_name = str(json_path)
    raw = _read_bounded(json_path, limits.json_bytes, json_name)
    document = parse_document(raw, json_name, limits)
    npz_path = json_path.parent / document.arrays_file
    npz_name = str(npz_path)
    if not npz_path.is_file():
        raise fail(npz_name, f"the arrays file named in {json_path.name} is missing")
    entries = document.npz_entries()
    slots = len(entries) + _EXTRA_ENTRY_SLACK
    total = sum(entry.nbytes for entry in entries.values()) + slots * (limits.npy_header + _NPY_PREFIX)
    arrays = read_npz(npz_path, npz_name, max_arrays=slots, max_total_bytes=total, max_header=limits.npy_header)
    verify_arrays(document, arrays, npz_name, json_path.name)
    return ModelFiles(json_path, npz_path, document, arrays)


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
