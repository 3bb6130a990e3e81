"""The model document, ``NAME.json``: building it, serializing it and validating it (spec/model-format.md).

Standard library only: the loops backend and ``scratchnet inspect`` read models without NumPy.
Every check a reader makes lives here, so a writer can run the same checks on what it is about to
write and never produce a file that a reader refuses.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from scratchnet.core.architecture import plan
from scratchnet.core.errors import ConfigError, ModelFormatError, quoted_list
from scratchnet.core.jsonread import MAX_DEPTH, JSONInputError, read_json
from scratchnet.core.walk import every_layer, walk
from scratchnet.io.array_values import first_negative, first_non_finite, value_at
from scratchnet.io.metadata import input_problem, metadata_problem
from scratchnet.io.npy import NpyArray

__all__ = [
    "DIGEST_FIELD",
    "FORMAT",
    "NPY_DESCRS",
    "OPTIMIZER_PREFIX",
    "SUPPORTED_VERSIONS",
    "VERSION",
    "ArrayEntry",
    "Document",
    "Limits",
    "OptimizerSection",
    "check_model_architecture",
    "dump_document",
    "expected_parameters",
    "fail",
    "first_non_finite",
    "lowest_version",
    "manifest_entry",
    "parse_document",
    "sha256_hex",
    "trained_parameters",
    "verify_arrays",
    "version_3_features",
]

FORMAT = "scratchnet-model"
VERSION = 3  # the newest version; a writer writes the lowest one that can hold the model (lowest_version)
SUPPORTED_VERSIONS = (1, 2, 3)
# The file's "dtype" and the .npy descr of every array in it.
NPY_DESCRS = {"float32": "<f4", "float64": "<f8"}  # each of scratchnet.core.architecture.DTYPES, as a .npy descr
DIGEST_FIELD = "document_sha256"
# Optimizer arrays sit in the same .npz as the parameters, under this prefix.
OPTIMIZER_PREFIX = "optimizer."

_REQUIRED = ("format", "version", "dtype", "architecture", "arrays", "parameters", "metadata", DIGEST_FIELD)
_OPTIONAL = ("optimizer", "extensions")
_ENTRY_KEYS = ("name", "shape", "dtype", "sha256")
_OPTIMIZER_KEYS = ("spec", "step", "arrays")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_SLOT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ITEMSIZE = {"<f4": 4, "<f8": 8}
_MAX_JSON_DEPTH = MAX_DEPTH - 1  # the document object is one level: what is written, read_json reads
_LINE = 96


@dataclass(frozen=True)
class Limits:
    """What a reader agrees to read, checked before the bytes are read (spec section "Limits")."""

    json_bytes: int = 16 * 1024 * 1024
    array_bytes: int = 4 * 1024 * 1024 * 1024
    arrays: int = 10_000
    npy_header: int = 4096


@dataclass(frozen=True)
class ArrayEntry:
    """One manifest entry: an array's name, shape, dtype (``<f4``/``<f8``) and sha256."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    sha256: str

    @property
    def nbytes(self) -> int:
        return _ITEMSIZE[self.dtype] * math.prod(self.shape)


@dataclass(frozen=True)
class OptimizerSection:
    """The optional optimizer state: its settings, step count and one entry per state array."""

    spec: dict[str, Any]
    step: int
    arrays: tuple[ArrayEntry, ...]


@dataclass(frozen=True)
class Document:
    """A validated ``NAME.json``."""

    raw: dict[str, Any]
    dtype: str
    architecture: dict[str, Any]
    arrays_file: str
    parameters: tuple[ArrayEntry, ...]
    metadata: dict[str, Any]
    optimizer: OptimizerSection | None

    def npz_entries(self) -> dict[str, ArrayEntry]:
        """Every array the .npz must hold, by its name in the .npz."""
        entries = {entry.name: entry for entry in self.parameters}
        if self.optimizer is not None:
            entries.update({OPTIMIZER_PREFIX + entry.name: entry for entry in self.optimizer.arrays})
        return entries


def fail(name: str, problem: str) -> ModelFormatError:
    """A ModelFormatError naming the file; one line whatever the file contained."""
    return ModelFormatError(f"{name}: {problem}".replace("\r", " ").replace("\n", " "))


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# --- the architecture -----------------------------------------------------------------------------


def check_model_architecture(architecture: Any, version: int = VERSION) -> dict[str, Any]:
    """``architecture`` validated as a buildable network (ConfigError otherwise), without building it:
    known layer types with valid options, layers that fit together from the input shape, the final
    layer the loss needs, and nothing that format ``version`` cannot hold."""
    description = plan(architecture).description
    if "input_shape" in description and version < 2:
        raise ConfigError(f"'input_shape' needs format version 2 or later, but the file is version {version}")
    needs = version_3_features(description)
    if needs and version < 3:
        raise ConfigError(f"{needs[0]} needs format version 3 or later, but the file is version {version}")
    return description


def version_3_features(architecture: Mapping[str, Any]) -> list[str]:
    """What in ``architecture`` a version 2 reader cannot understand (section 5): token inputs
    (``'vocabulary'``), CrossEntropy's ``'ignore_index'``, and layers that hold layers."""
    found = []
    if "vocabulary" in architecture:
        found.append("'vocabulary' (token inputs)")
    loss = architecture.get("loss")
    if isinstance(loss, Mapping) and "ignore_index" in loss:
        found.append("the loss's 'ignore_index'")
    containers = [site.prefix for site in every_layer(walk(plan(architecture))) if site.children]
    if containers:
        found.append(f"layer {containers[0]}'s list of layers")
    return found


def lowest_version(architecture: Mapping[str, Any]) -> int:
    """The lowest format version that can hold ``architecture`` (section 5): 3 when it has token
    inputs, an ``ignore_index`` or a container layer; else 2 when it has an ``input_shape`` (its
    layers do not imply one); else 1. New flat layer types need no new version."""
    if version_3_features(architecture):
        return 3
    return 2 if "input_shape" in architecture else 1


def expected_parameters(architecture: Mapping[str, Any]) -> dict[str, tuple[int, ...]]:
    """Every array's name and shape, trained or not, in network order, as the layer registry infers
    them from the input shape (a Dense layer i has ``i.weight`` (out, in) and ``i.bias`` (out,))."""
    return plan(architecture).shapes()


def trained_parameters(architecture: Mapping[str, Any]) -> dict[str, tuple[int, ...]]:
    """The arrays an optimizer trains (and keeps state for): :func:`expected_parameters` less the
    ones the registry marks untrained, such as running statistics."""
    return {array.name: array.shape for array in plan(architecture).arrays if array.trained}


# --- writing --------------------------------------------------------------------------------------


def manifest_entry(name: str, array: NpyArray) -> dict[str, Any]:
    """The manifest entry of ``array``: its checksum covers the little-endian C-order bytes."""
    return {"name": name, "shape": list(array.shape), "dtype": array.dtype, "sha256": sha256_hex(array.data)}


def dump_document(document: Mapping[str, Any]) -> bytes:
    """The bytes of NAME.json, with ``document_sha256`` filled in (it is written last, as the spec asks).

    The digest is the SHA-256 of the file with the digest's 64 characters replaced by ``0``s.
    """
    body = {key: value for key, value in document.items() if key != DIGEST_FIELD}
    body[DIGEST_FIELD] = "0" * 64
    text = _pretty(body, 0) + "\n"
    prefix = f'"{DIGEST_FIELD}": "'
    # The last member, so rindex finds it; strings inside the document are escaped and cannot match.
    start = text.rindex(prefix + "0" * 64 + '"') + len(prefix)
    raw = text.encode("ascii")  # ensure_ascii: character and byte offsets agree
    return raw[:start] + sha256_hex(raw).encode("ascii") + raw[start + 64 :]


def _pretty(value: Any, level: int) -> str:
    """JSON indented by two spaces, with any object or list that fits on one line kept on one line."""
    compact = json.dumps(value, ensure_ascii=True, allow_nan=False, separators=(", ", ": "))
    if not isinstance(value, (dict, list)) or not value or len(compact) + 2 * level <= _LINE:
        return compact
    pad = "  " * (level + 1)
    if isinstance(value, dict):
        items = [
            f"{pad}{json.dumps(key, ensure_ascii=True)}: {_pretty(item, level + 1)}" for key, item in value.items()
        ]
        return "{\n" + ",\n".join(items) + "\n" + "  " * level + "}"
    items = [pad + _pretty(item, level + 1) for item in value]
    return "[\n" + ",\n".join(items) + "\n" + "  " * level + "]"


def check_json_data(value: Any, where: str, depth: int = 0) -> None:
    """ConfigError unless ``value`` is plain JSON data: dicts with str keys, lists, str, finite numbers, bool, None."""
    if depth > _MAX_JSON_DEPTH:
        raise ConfigError(f"{where} is nested more than {_MAX_JSON_DEPTH} levels deep")
    if value is None or isinstance(value, (str, bool, int)):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ConfigError(f"{where} is {value}, which JSON cannot hold")
        return
    if isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            check_json_data(item, f"{where}[{index}]", depth + 1)
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ConfigError(f"{where} has a key {key!r} that is not a string")
            check_json_data(item, f"{where}[{key!r}]", depth + 1)
        return
    raise ConfigError(f"{where} is a {type(value).__name__}, which is not JSON data")


# --- reading --------------------------------------------------------------------------------------


def _parse_json(raw: bytes, name: str) -> Any:
    try:
        return read_json(raw, "the document", max_bytes=None)  # its size was bounded when it was read
    except JSONInputError as error:
        raise fail(name, f"malformed JSON: {error}") from None


def _check_digest(raw: bytes, document: dict[str, Any], name: str) -> None:
    digest = document[DIGEST_FIELD]
    if not isinstance(digest, str) or not _HEX64.fullmatch(digest):
        raise fail(name, f"'{DIGEST_FIELD}' must be 64 lowercase hex digits, got {_short(digest)}")
    encoded = digest.encode("ascii")
    if raw.count(encoded) != 1:
        raise fail(name, f"'{DIGEST_FIELD}' must appear exactly once in the file, as written")
    if sha256_hex(raw.replace(encoded, b"0" * 64)) != digest:
        raise fail(
            name,
            "document checksum mismatch: the JSON was damaged or edited after it was saved "
            f"(if you edited it on purpose: scratchnet inspect {name} --fix-checksum)",
        )


def _parse_entry(value: Any, where: str, name: str) -> ArrayEntry:
    if not isinstance(value, dict):
        raise fail(name, f"{where} must be an object")
    missing = [key for key in _ENTRY_KEYS if key not in value]
    unknown = sorted(set(value) - set(_ENTRY_KEYS))
    if missing or unknown:
        raise fail(
            name,
            f"{where} must have exactly the fields {list(_ENTRY_KEYS)}; "
            f"missing {quoted_list(missing)}, unknown {quoted_list(unknown)}",
        )
    entry_name, shape, dtype, digest = (value[key] for key in _ENTRY_KEYS)
    if not isinstance(entry_name, str) or not entry_name:
        raise fail(name, f"{where} name must be a non-empty string, got {_short(entry_name)}")
    if not isinstance(shape, list) or not all(_is_int(d) and d >= 0 for d in shape):
        raise fail(name, f"{where} ({entry_name!r}) shape must be a list of non-negative integers, got {_short(shape)}")
    if dtype not in _ITEMSIZE:
        raise fail(name, f"{where} ({entry_name!r}) has dtype {_short(dtype)}; expected one of {sorted(_ITEMSIZE)}")
    if not isinstance(digest, str) or not _HEX64.fullmatch(digest):
        raise fail(name, f"{where} ({entry_name!r}) sha256 must be 64 lowercase hex digits, got {_short(digest)}")
    return ArrayEntry(entry_name, tuple(shape), dtype, digest)


def _parse_entries(value: Any, where: str, name: str, limits: Limits) -> list[ArrayEntry]:
    if not isinstance(value, list):
        raise fail(name, f"'{where}' must be a list of array entries")
    if len(value) > limits.arrays:
        raise fail(name, f"'{where}' lists {len(value)} arrays, more than the limit of {limits.arrays}")
    entries = [_parse_entry(item, f"{where}[{index}]", name) for index, item in enumerate(value)]
    seen: set[str] = set()
    for entry in entries:
        if entry.name in seen:
            raise fail(name, f"'{where}' lists the array {entry.name!r} twice")
        seen.add(entry.name)
    return entries


def _check_entry(entry: ArrayEntry, shape: tuple[int, ...], dtype: str, what: str, name: str) -> None:
    if entry.shape != shape:
        raise fail(
            name, f"{what} {entry.name!r} has shape {entry.shape} in the manifest; the architecture gives {shape}"
        )
    if entry.dtype != dtype:
        raise fail(
            name, f"{what} {entry.name!r} has dtype {entry.dtype} in the manifest; the model's dtype needs {dtype}"
        )


def bare_file_name_problem(value: Any) -> str | None:
    """Why ``value`` is not a bare .npz file name (no directory part), or None if it is one."""
    if not isinstance(value, str) or not value:
        return f"must be a non-empty string, got {_short(value)}"
    if "/" in value or "\\" in value or ":" in value or value in (".", ".."):
        return f"must be a bare file name, not a path: {_short(value)}"
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        return f"contains control characters: {_short(value)}"
    if not value.endswith(".npz") or value == ".npz":
        return f"must name an .npz file, got {_short(value)}"
    return None


def _parse_optimizer(
    value: Any, shapes: dict[str, tuple[int, ...]], dtype: str, name: str, limits: Limits
) -> OptimizerSection:
    if not isinstance(value, dict) or set(value) != set(_OPTIMIZER_KEYS):
        keys = sorted(value) if isinstance(value, dict) else type(value).__name__
        raise fail(
            name, f"'optimizer' must be an object with exactly the fields {list(_OPTIMIZER_KEYS)}, got {_short(keys)}"
        )
    spec, step = value["spec"], value["step"]
    if not isinstance(spec, dict) or not isinstance(spec.get("type"), str):
        raise fail(name, "'optimizer.spec' must be an object with a string 'type'")
    if not _is_int(step) or step < 0:
        raise fail(name, f"'optimizer.step' must be an integer >= 0, got {_short(step)}")
    entries = _parse_entries(value["arrays"], "optimizer.arrays", name, limits)
    for entry in entries:
        parameter, _, slot = entry.name.rpartition(".")
        if parameter not in shapes or not _SLOT.fullmatch(slot):
            raise fail(
                name,
                f"optimizer array {entry.name!r} is not '<parameter>.<slot>' for a trained parameter of this model",
            )
        _check_entry(entry, shapes[parameter], dtype, "optimizer array", name)
    return OptimizerSection(spec, step, tuple(entries))


def parse_document(raw: bytes, name: str, limits: Limits = Limits()) -> Document:
    """Validate the bytes of a NAME.json (every rule of spec/model-format.md); ModelFormatError naming ``name``."""
    document = _parse_json(raw, name)
    if not isinstance(document, dict):
        raise fail(name, f"not a scratchnet model: the JSON is a {type(document).__name__}, not an object")
    if "format" not in document:
        raise fail(name, f"not a scratchnet model: no 'format' field (expected {FORMAT!r})")
    if document["format"] != FORMAT:
        raise fail(name, f"not a scratchnet model: format is {_short(document['format'])}, expected {FORMAT!r}")
    if "version" not in document:
        raise fail(name, "no 'version' field")
    version = document["version"]
    if not _is_int(version):
        raise fail(name, f"'version' must be an integer, got {_short(version)}")
    if version not in SUPPORTED_VERSIONS:
        supported = ", ".join(str(v) for v in SUPPORTED_VERSIONS[:-1]) + f" and {SUPPORTED_VERSIONS[-1]}"
        raise fail(name, f"format version {version} is not supported (this reader supports versions {supported})")
    missing = [key for key in _REQUIRED if key not in document]
    if missing:
        raise fail(name, f"missing required fields {missing}")
    # Checked before any other field: a damaged document fails here, not with a misleading message.
    _check_digest(raw, document, name)
    unknown = sorted(set(document) - set(_REQUIRED) - set(_OPTIONAL))
    if unknown:
        raise fail(
            name, f"unknown top-level fields {quoted_list(unknown)} (readers accept only the fields of the spec)"
        )
    dtype_name = document["dtype"]
    if dtype_name not in NPY_DESCRS:
        raise fail(name, f"'dtype' must be one of {sorted(NPY_DESCRS)}, got {_short(dtype_name)}")
    dtype = NPY_DESCRS[dtype_name]
    problem = bare_file_name_problem(document["arrays"])
    if problem is not None:
        raise fail(name, f"'arrays' {problem}")
    try:
        architecture = check_model_architecture(document["architecture"], version)
    except ConfigError as error:
        raise fail(name, f"architecture: {error}") from None
    shapes = expected_parameters(architecture)
    total = sum(_ITEMSIZE[dtype] * math.prod(shape) for shape in shapes.values())
    if total > limits.array_bytes:
        raise fail(
            name, f"the architecture needs {total} bytes of parameters, more than the limit of {limits.array_bytes}"
        )
    parameters = _parse_entries(document["parameters"], "parameters", name, limits)
    listed = {entry.name for entry in parameters}
    if listed != set(shapes):
        missing_names, extra = sorted(set(shapes) - listed), sorted(listed - set(shapes))
        raise fail(
            name,
            "the parameter manifest does not fit the architecture: "
            f"missing {quoted_list(missing_names)}, unexpected {quoted_list(extra)}",
        )
    for entry in parameters:
        _check_entry(entry, shapes[entry.name], dtype, "parameter", name)
    metadata = document["metadata"]
    problem = metadata_problem(metadata) or input_problem(metadata, plan(architecture).input_shape)
    if problem is not None:
        raise fail(name, f"metadata: {problem}")
    optimizer = None
    if "optimizer" in document:
        optimizer = _parse_optimizer(document["optimizer"], trained_parameters(architecture), dtype, name, limits)
        total += sum(entry.nbytes for entry in optimizer.arrays)
        if total > limits.array_bytes:
            raise fail(name, f"the model's arrays need {total} bytes, more than the limit of {limits.array_bytes}")
    if "extensions" in document and not isinstance(document["extensions"], dict):
        raise fail(name, "'extensions' must be an object")
    return Document(
        raw=document,
        dtype=dtype_name,
        architecture=architecture,
        arrays_file=document["arrays"],
        parameters=tuple(parameters),
        metadata=metadata,
        optimizer=optimizer,
    )


def verify_arrays(document: Document, arrays: Mapping[str, NpyArray], npz_name: str, json_name: str) -> None:
    """Check that the .npz holds exactly the manifest's arrays, with their shapes, dtypes and checksums,
    and only finite numbers."""
    entries = document.npz_entries()
    missing = [key for key in entries if key not in arrays]
    if missing:
        raise fail(
            npz_name,
            f"missing array {missing[0]!r} listed in {json_name}"
            + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""),
        )
    extra = sorted(key for key in arrays if key not in entries)
    if extra:
        raise fail(npz_name, f"unexpected array {extra[0]!r} not listed in {json_name}")
    for key, entry in entries.items():
        array = arrays[key]
        if array.dtype != entry.dtype:
            raise fail(npz_name, f"array {key!r} has dtype {array.dtype}; {json_name} says {entry.dtype}")
        if array.shape != entry.shape:
            raise fail(npz_name, f"array {key!r} has shape {array.shape}; {json_name} says {entry.shape}")
        if sha256_hex(array.data) != entry.sha256:
            raise fail(
                npz_name,
                f"checksum mismatch for array {key!r}: it is damaged, "
                f"or the .npz is not the one {json_name} was saved with",
            )
        index = first_non_finite(array)
        if index is not None:
            # Checked after the checksum, so a damaged file is reported as damaged; save() runs this
            # too, so the same message refuses a network whose training diverged.
            raise fail(npz_name, f"array {key!r} holds {value_at(array, index)}; model files hold finite numbers only")
    for info in plan(document.architecture).arrays:
        index = first_negative(arrays[info.name]) if info.non_negative else None
        if index is not None:
            raise fail(
                npz_name, f"array {info.name!r} holds {value_at(arrays[info.name], index)}; its values must be >= 0"
            )
