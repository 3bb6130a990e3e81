"""Saving and loading models: ``NAME.json`` (architecture, manifest, metadata) + ``NAME.npz`` (arrays).

The format is specified in spec/model-format.md. This module imports NumPy only when a vectorized
network is saved or loaded, so the loops backend reads and writes models with the standard library.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import stat
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from scratchnet.builders import BACKENDS, build_network
from scratchnet.core.errors import ConfigError, ModelFormatError, ScratchnetError, ShapeError
from scratchnet.core.version import __version__
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
    "load",
    "load_model",
    "model_paths",
    "read_model",
    "save",
]

# Room for unexpected .npz entries, so they are reported by name rather than by a count limit.
_EXTRA_ENTRY_SLACK = 16
# magic (6) + version (2) + header length (up to 4) in front of each .npy header.
_NPY_PREFIX = 12
_NEW_FILE_MODE = 0o644  # where the umask cannot be read
_MODEL_SUFFIXES = (".json", ".npz")
# A temporary file is ".<target name>.<pid>-<random>.tmp" (spec/model-format.md section 4): the
# process id tells a later save whether its writer still runs. The name is cut (and a hash of it
# added) where the whole would pass the file system's limit on a name.
_TEMP_SUFFIX = ".tmp"
_TEMP_ROOM = 32  # the pid (up to 10 digits), "-", mkstemp's random part (8), ".tmp", and spare
_TEMP_TAIL = re.compile(r"(?:(\d+)-)?[a-z0-9_]+")
_LEGACY_TEMP_AGE = 3600.0  # seconds: a temporary file without a pid (older scratchnet) is stale after an hour


class ModelWriteError(ScratchnetError):
    """A model pair that cannot be written where it was asked for: a folder that cannot be made or
    written, a path that is a directory, a name too long, a full disk. Nothing is left half-written."""


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
        _write_pair(npz_path, json_path, lambda f: write_npz(f, arrays), raw)
    except OSError as error:
        remove_empty_folders(created)  # a failed save leaves nothing behind, not even its folders
        raise ModelWriteError(f"cannot save {json_path}: {_os_reason(error)}") from None


def remove_empty_folders(folders: list[Path]) -> None:
    """Remove ``folders`` (outermost first, as :func:`make_folder` returns them) innermost first,
    each only if it is empty; one that cannot be removed, and the ones around it, stay."""
    for folder in reversed(folders):
        try:
            folder.rmdir()
        except OSError:
            return


def make_folder(path: Path, verb: str = "write") -> list[Path]:
    """Create the missing folders of the file ``path`` and return them, outermost first;
    ModelWriteError ("cannot save PATH: ...") when that fails, naming the part of the path that is a
    file rather than a folder, if one is."""
    missing = [folder for folder in reversed(path.parents) if not folder.exists()]
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        blocking = next((p for p in path.parents if p.exists() and not p.is_dir()), None)
        reason = f"{blocking} is a file, not a folder" if blocking is not None else _os_reason(error)
        raise ModelWriteError(f"cannot {verb} {path}: {reason}") from None
    return missing


_KINDS = (
    (stat.S_ISLNK, "a symbolic link"),
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISSOCK, "a socket"),
)


def kind_of(mode: int) -> str:
    """What a file of ``st_mode`` is, in words: ``a symbolic link``, ``a named pipe (FIFO)``, ..."""
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def check_replaceable(target: str | os.PathLike[str]) -> None:
    """ModelWriteError naming ``target`` when it exists and is not a regular file.

    Every file scratchnet writes is replaced by renaming a new file over it: that would turn a device
    or a FIFO into a regular file, and a symbolic link (which a neighbour sharing the folder may have
    planted) into a file of its own. So only a missing path or a regular file is written; anything
    else is refused before any work is done (docs/errors.md, "Files scratchnet writes")."""
    try:
        mode = os.lstat(target).st_mode
    except OSError:  # missing (it will be created), or unreadable: the write itself then says why
        return
    if not stat.S_ISREG(mode):
        raise ModelWriteError(
            f"cannot write {os.fspath(target)}: it is {kind_of(mode)}, not a regular file; scratchnet replaces "
            "only regular files: remove it or choose another path"
        )


def _os_reason(error: OSError) -> str:
    """Why an OS call failed, without the temporary file name it may carry."""
    return error.strerror or str(error) or type(error).__name__


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


def _write_pair(npz_path: Path, json_path: Path, write_npz_to: Callable[[BinaryIO], None], json_bytes: bytes) -> None:
    """Replace both files atomically, .npz first and .json last: the .json (which holds the checksums)
    is the commit point.

    Until the .npz rename the old pair is untouched. A crash (not Ctrl-C, see below) between the two
    renames leaves the new .npz beside the old .json; the checksums in the old .json then fail and
    the reader refuses the pair instead of mixing two models.
    """
    directory = json_path.parent
    for target in (npz_path, json_path):
        remove_stale_temporary_files(target)
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


def replace_file(target: Path, write: Callable[[BinaryIO], Any]) -> None:
    """Replace ``target`` by what ``write`` writes, in one rename of a synced temporary file beside it
    (the old file, or none, stays until then; a replaced file keeps its permissions); OSError as the
    system gives it. Temporary files that killed writers left beside ``target`` are removed first."""
    remove_stale_temporary_files(target)
    temp = _write_temp(target, write)
    try:
        os.replace(temp, target)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    _fsync_directory(target.parent)


def _write_temp(target: Path, write: Callable[[BinaryIO], Any]) -> Path:
    """Write a temporary file beside ``target`` (same file system, so the rename is atomic), synced.

    ``target`` must be missing or a regular file (:func:`check_replaceable`). The temporary file is
    made with O_EXCL (mkstemp), so it is never a link someone planted, and its mode is set through
    its descriptor, never through the name another process could have swapped for a link."""
    check_replaceable(target)
    try:
        mode = stat.S_IMODE(os.lstat(target).st_mode)  # replacing a file keeps its permissions
    except OSError:
        mode = _new_file_mode()  # mkstemp makes files 0600; give what open() would have given
    fd, name = tempfile.mkstemp(prefix=f"{_temp_prefix(target)}{os.getpid()}-", suffix=_TEMP_SUFFIX, dir=target.parent)
    temp = Path(name)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            if hasattr(os, "fchmod"):
                os.fchmod(f.fileno(), mode)
            os.fsync(f.fileno())
        if not hasattr(os, "fchmod"):  # pragma: no cover - Windows, where modes are only read-only or not
            os.chmod(temp, mode)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return temp


def _temp_prefix(target: Path) -> str:
    """``.NAME.json.`` for ``NAME.json``; a name so long that the temporary file's would pass the file
    system's limit is cut, and 8 hex digits of its sha256 keep it apart from other cut names."""
    prefix = f".{target.name}."
    limit = _name_max(target.parent)
    if len(prefix.encode()) + _TEMP_ROOM <= limit:
        return prefix
    digest = hashlib.sha256(target.name.encode()).hexdigest()[:8]
    keep = target.name.encode()[: max(limit - _TEMP_ROOM - len(digest) - 3, 1)].decode(errors="ignore")
    return f".{keep}~{digest}."


def _name_max(directory: Path) -> int:
    """The longest file name (in bytes) the file system of ``directory`` allows; 255 where unknown."""
    try:
        return int(os.pathconf(directory, "PC_NAME_MAX"))
    except (OSError, ValueError, AttributeError):  # Windows has no pathconf; a missing folder fails too
        return 255


def remove_stale_temporary_files(target: Path) -> list[Path]:
    """Delete the temporary files of ``target`` that a killed save left behind, and return them.

    A temporary file is stale when the process named in it no longer runs (one without a process id,
    from an older scratchnet, when it is more than an hour old). Those of a save still running in
    another process are kept, and so are this process's own."""
    prefix = _temp_prefix(target)
    removed: list[Path] = []
    try:
        entries = list(os.scandir(target.parent))
    except OSError:
        return removed
    for entry in entries:
        name = entry.name
        if not (name.startswith(prefix) and name.endswith(_TEMP_SUFFIX)):
            continue
        tail = _TEMP_TAIL.fullmatch(name[len(prefix) : -len(_TEMP_SUFFIX)])
        if tail is None:  # another file's name that begins the same way
            continue
        try:
            if tail.group(1) is not None:
                pid = int(tail.group(1))
                stale = pid != os.getpid() and not _process_runs(pid)
            else:
                stale = time.time() - entry.stat(follow_symlinks=False).st_mtime > _LEGACY_TEMP_AGE
            if stale and entry.is_file(follow_symlinks=False):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
        except OSError:
            continue
    return removed


def _process_runs(pid: int) -> bool:
    """Whether process ``pid`` exists on this machine (True where that cannot be told)."""
    if os.name != "posix":
        return True  # os.kill(pid, 0) would end the process on Windows
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True  # it exists, under another user (or the number is no pid: keep the file)
    return True


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
