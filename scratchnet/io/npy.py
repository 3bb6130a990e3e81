"""A standard-library codec for NumPy's .npy format (read 1.0/2.0/3.0, write 1.0).

Format facts relied on (numpy.lib.format, "NEP 1"):

* A file starts with the 6-byte magic ``b"\\x93NUMPY"``, then one byte each for the
  major and minor version.
* Version 1.0 stores the header length as a 2-byte little-endian unsigned int;
  versions 2.0 and 3.0 use a 4-byte little-endian unsigned int.  Versions 1.0/2.0
  encode the header as latin-1, 3.0 as UTF-8.
* The header is a Python dict literal with exactly the keys ``descr``,
  ``fortran_order`` and ``shape``, terminated by ``\\n`` and padded with spaces so
  that magic + version + length field + header is a multiple of 64 bytes (older
  writers used 16), which aligns the payload.
* The payload is the raw array bytes, ``itemsize * prod(shape)`` of them, in C order
  unless ``fortran_order`` is true.

No numpy here: the ``loops`` backend must work without it.
"""

from __future__ import annotations

import ast
import math
import struct
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeAlias

from scratchnet.core.errors import ModelFormatError, ShapeError

__all__ = [
    "SUPPORTED_DTYPES",
    "NestedFloats",
    "NestedNumbers",
    "NpyArray",
    "format_npy",
    "from_nested_floats",
    "parse_npy",
    "to_nested_floats",
]

MAGIC = b"\x93NUMPY"
# magic (6) + major (1) + minor (1); the header-length field follows.
_PREFIX_LEN = len(MAGIC) + 2
# numpy pads headers so the payload starts at a multiple of 64 bytes.
_ALIGN = 64
# numpy's own limit on dimensions (NPY_MAXDIMS is 64 in numpy 2.x).
_MAX_NDIM = 64

# Normalized (little-endian) dtype string -> itemsize.
SUPPORTED_DTYPES: dict[str, int] = {"<f4": 4, "<f8": 8, "<i4": 4, "<i8": 8, "|u1": 1}

# Accepted header descr -> (normalized dtype, needs byte swap).
_DESCR: dict[str, tuple[str, bool]] = {
    "<f4": ("<f4", False),
    ">f4": ("<f4", True),
    "<f8": ("<f8", False),
    ">f8": ("<f8", True),
    "<i4": ("<i4", False),
    ">i4": ("<i4", True),
    "<i8": ("<i8", False),
    ">i8": ("<i8", True),
    "|u1": ("|u1", False),
}

# struct codes used to turn items into Python numbers.
_STRUCT_CODE: dict[str, str] = {"<f4": "f", "<f8": "d", "<i4": "i", "<i8": "q", "|u1": "B"}

_HEADER_KEYS = frozenset({"descr", "fortran_order", "shape"})

NestedFloats: TypeAlias = "float | list[NestedFloats]"
NestedNumbers: TypeAlias = "float | int | Sequence[NestedNumbers]"


@dataclass(frozen=True)
class NpyArray:
    """An n-d array as raw bytes: ``data`` is little-endian, C order, ``dtype`` a key of SUPPORTED_DTYPES."""

    dtype: str
    shape: tuple[int, ...]
    data: bytes

    def __post_init__(self) -> None:
        if self.dtype not in SUPPORTED_DTYPES:
            raise ValueError(f"unsupported dtype {self.dtype!r}; expected one of {sorted(SUPPORTED_DTYPES)}")
        if not isinstance(self.shape, tuple) or not all(type(d) is int and d >= 0 for d in self.shape):
            raise ShapeError(f"shape must be a tuple of non-negative ints, got {self.shape!r}")
        if len(self.shape) > _MAX_NDIM:
            raise ShapeError(f"at most {_MAX_NDIM} dimensions are supported, got {len(self.shape)}")
        if not isinstance(self.data, bytes):
            raise TypeError(f"data must be bytes, got {type(self.data).__name__}")
        expected = self.itemsize * self.size
        if len(self.data) != expected:
            raise ShapeError(f"shape {self.shape} with dtype {self.dtype} needs {expected} bytes, got {len(self.data)}")

    @property
    def itemsize(self) -> int:
        """Bytes per element."""
        return SUPPORTED_DTYPES[self.dtype]

    @property
    def size(self) -> int:
        """Number of elements (1 for a 0-d array)."""
        return math.prod(self.shape)


def _fail(name: str, problem: str) -> ModelFormatError:
    # Messages must stay on one line whatever bytes the file contained.
    return ModelFormatError(f"{name}: {problem}".replace("\r", " ").replace("\n", " "))


def _snippet(text: str, limit: int = 60) -> str:
    r = repr(text)
    return r if len(r) <= limit else r[:limit] + "..."


def _array_code(itemsize: int) -> str:
    """An array typecode with the given itemsize, used to move items without decoding them."""
    for code in ("B", "H", "I", "L", "Q"):
        if array(code).itemsize == itemsize:
            return code
    raise AssertionError(f"no array typecode of size {itemsize}")  # pragma: no cover


def _fortran_to_c(payload: bytes, shape: tuple[int, ...], itemsize: int) -> bytes:
    """Reorder items of a Fortran-order (column-major) payload into C order."""
    if len(shape) < 2 or math.prod(shape) <= 1:
        return payload  # 0-d, 1-d and single-element arrays are the same in both orders
    code = _array_code(itemsize)
    src = array(code, payload)
    # In Fortran order axis k has stride prod(shape[:k]) items; visiting axes
    # outermost-first builds the source index of each item in C order.
    indices = [0]
    stride = 1
    strides = []
    for dim in shape:
        strides.append(stride)
        stride *= dim
    for dim, st in zip(shape, strides):
        indices = [base + i * st for base in indices for i in range(dim)]
    return array(code, (src[i] for i in indices)).tobytes()


def _byteswap(payload: bytes, itemsize: int) -> bytes:
    if itemsize == 1:
        return payload
    items = array(_array_code(itemsize), payload)
    items.byteswap()
    return items.tobytes()


def _parse_header(text: str, name: str) -> tuple[str, bool, tuple[int, ...]]:
    """Validate the header dict literal without evaluating anything; return (descr, fortran, shape)."""
    if not text.endswith("\n"):
        raise _fail(name, "npy header does not end with a newline")
    if not text.startswith("{"):
        raise _fail(name, f"npy header is not a dict literal: {_snippet(text)}")
    try:
        tree = ast.parse(text, mode="eval")
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        # MemoryError/RecursionError: CPython's parser gives up on deeply nested input.
        raise _fail(name, f"npy header is not a valid literal: {_snippet(text)}") from None
    body = tree.body
    if not isinstance(body, ast.Dict):
        raise _fail(name, f"npy header is not a dict literal: {_snippet(text)}")
    keys: list[str] = []
    for key in body.keys:
        # A None key is a ``**mapping`` expansion.
        if not (isinstance(key, ast.Constant) and type(key.value) is str):
            raise _fail(name, "npy header has a key that is not a string literal")
        keys.append(key.value)
    if len(set(keys)) != len(keys):
        raise _fail(name, "npy header has a duplicate key")
    if set(keys) != _HEADER_KEYS:
        missing = sorted(_HEADER_KEYS - set(keys))
        extra = sorted(set(keys) - _HEADER_KEYS)
        raise _fail(name, f"npy header keys are wrong (missing {missing}, unexpected {[_snippet(k) for k in extra]})")
    nodes = dict(zip(keys, body.values))
    descr_node = nodes["descr"]
    fortran_node = nodes["fortran_order"]
    shape_node = nodes["shape"]
    # Only plain constants / a tuple of int constants are allowed: no calls, names,
    # operators (so no negative numbers) or nested containers.
    if not (isinstance(descr_node, ast.Constant) and type(descr_node.value) is str):
        raise _fail(name, "npy header 'descr' is not a plain dtype string (structured or object dtypes are refused)")
    if not (isinstance(fortran_node, ast.Constant) and type(fortran_node.value) is bool):
        raise _fail(name, "npy header 'fortran_order' is not True or False")
    if not (
        isinstance(shape_node, ast.Tuple)
        and all(isinstance(e, ast.Constant) and type(e.value) is int for e in shape_node.elts)
    ):
        raise _fail(name, "npy header 'shape' is not a tuple of non-negative ints")
    # The tree is now known to hold only literals, so literal_eval is safe and exact.
    try:
        value = ast.literal_eval(body)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):  # pragma: no cover
        raise _fail(name, "npy header could not be read as a literal") from None
    descr, fortran, shape = value["descr"], value["fortran_order"], value["shape"]
    assert isinstance(descr, str) and isinstance(fortran, bool) and isinstance(shape, tuple)
    return descr, fortran, tuple(int(d) for d in shape)


def parse_npy(data: bytes, name: str, *, max_header: int, max_bytes: int) -> NpyArray:
    """Parse a complete .npy file held in ``data``; ``name`` is used in error messages.

    ``max_header`` bounds the declared header length and ``max_bytes`` the payload
    size; both are checked before the corresponding bytes are looked at.  Raises
    ModelFormatError for anything malformed, unsupported or unsafe (object dtypes,
    which would need pickle, are refused).
    """
    view = memoryview(data)
    if len(view) < _PREFIX_LEN or bytes(view[: len(MAGIC)]) != MAGIC:
        raise _fail(name, "not an npy file (bad magic)")
    major, minor = view[6], view[7]
    if (major, minor) == (1, 0):
        len_format = "<H"
    elif (major, minor) in ((2, 0), (3, 0)):
        len_format = "<I"
    else:
        raise _fail(name, f"unsupported npy format version {major}.{minor}")
    len_size = struct.calcsize(len_format)
    if len(view) < _PREFIX_LEN + len_size:
        raise _fail(name, "npy file is truncated in its header length")
    (header_len,) = struct.unpack_from(len_format, view, _PREFIX_LEN)
    if header_len > max_header:
        raise _fail(name, f"npy header length {header_len} exceeds the limit of {max_header} bytes")
    start = _PREFIX_LEN + len_size
    if len(view) < start + header_len:
        raise _fail(name, "npy file is truncated in its header")
    raw = bytes(view[start : start + header_len])
    # Headers of the plain dtypes we accept are ASCII in every version (3.0 only
    # adds UTF-8 for structured field names, which are refused anyway).
    if not raw.isascii():
        raise _fail(name, "npy header is not ASCII")
    text = raw.decode("ascii")
    descr, fortran, shape = _parse_header(text, name)

    if descr not in _DESCR:
        if "O" in descr:
            raise _fail(name, f"npy dtype {_snippet(descr)} is an object dtype; refused (it would need pickle)")
        raise _fail(name, f"unsupported npy dtype {_snippet(descr)}")
    dtype, swap = _DESCR[descr]
    if any(d < 0 for d in shape):
        raise _fail(name, f"npy shape {shape} has a negative dimension")
    if len(shape) > _MAX_NDIM:
        raise _fail(name, f"npy shape has {len(shape)} dimensions; at most {_MAX_NDIM} are supported")
    itemsize = SUPPORTED_DTYPES[dtype]
    nbytes = itemsize * math.prod(shape)
    if nbytes > max_bytes:
        raise _fail(name, f"npy array of shape {shape} needs {nbytes} bytes, over the limit of {max_bytes}")
    payload_len = len(view) - start - header_len
    if payload_len != nbytes:
        problem = "truncated" if payload_len < nbytes else "too long"
        raise _fail(
            name, f"npy payload is {problem}: {payload_len} bytes for shape {shape} {descr} ({nbytes} expected)"
        )
    payload = bytes(view[start + header_len :])
    if swap:
        payload = _byteswap(payload, itemsize)
    if fortran:
        payload = _fortran_to_c(payload, shape, itemsize)
    return NpyArray(dtype, shape, payload)


def format_npy(arr: NpyArray) -> bytes:
    """Serialize ``arr`` as a version 1.0, little-endian, C-order .npy file."""
    header = f"{{'descr': '{arr.dtype}', 'fortran_order': False, 'shape': {arr.shape!r}, }}"
    # Like numpy: pad with spaces, end with "\n", so the payload starts at a multiple of 64.
    unpadded = _PREFIX_LEN + 2 + len(header) + 1
    header += " " * (-unpadded % _ALIGN) + "\n"
    encoded = header.encode("latin-1")
    if len(encoded) > 0xFFFF:  # pragma: no cover - needs > 64 dims' worth of digits
        raise ValueError("npy header too long for format version 1.0")
    return MAGIC + bytes((1, 0)) + struct.pack("<H", len(encoded)) + encoded + arr.data


def _reshape(flat: Sequence[float], shape: tuple[int, ...]) -> NestedFloats:
    if not shape:
        return flat[0]
    if len(shape) == 1:
        return list(flat)
    step = math.prod(shape[1:])
    return [_reshape(flat[i * step : (i + 1) * step], shape[1:]) for i in range(shape[0])]


def to_nested_floats(arr: NpyArray) -> NestedFloats:
    """Nested lists of floats in C order (a bare float for a 0-d array); ints are converted to float."""
    code = _STRUCT_CODE[arr.dtype]
    values = struct.unpack(f"<{arr.size}{code}", arr.data)
    flat = values if code in ("f", "d") else tuple(float(v) for v in values)
    return _reshape(flat, arr.shape)


def _pack_f4(value: float) -> bytes:
    try:
        return struct.pack("<f", value)
    except OverflowError:
        # struct rounds to nearest float32 and refuses only results that round to
        # infinity; IEEE round-to-nearest gives that infinity.
        return struct.pack("<f", math.copysign(math.inf, value))


def from_nested_floats(values: NestedNumbers, shape: tuple[int, ...], dtype: str = "<f8") -> NpyArray:
    """Build an NpyArray from nested lists (a bare number for shape ``()``); float32 rounds to nearest.

    Raises ShapeError if the nesting does not match ``shape`` or a leaf is not a number.
    """
    if dtype not in ("<f4", "<f8"):
        raise ValueError(f"dtype must be '<f4' or '<f8', got {dtype!r}")
    if not isinstance(shape, tuple) or not all(type(d) is int and d >= 0 for d in shape):
        raise ShapeError(f"shape must be a tuple of non-negative ints, got {shape!r}")
    # Flatten one nesting level at a time (C order) instead of recursing per element.
    level: list[object] = [values]
    for depth, dim in enumerate(shape):
        below: list[object] = []
        for node in level:
            if not isinstance(node, (list, tuple)):
                raise ShapeError(f"expected a list of length {dim} at depth {depth}, got {type(node).__name__}")
            if len(node) != dim:
                raise ShapeError(f"expected a list of length {dim} at depth {depth}, got length {len(node)}")
            below.extend(node)
        level = below
    flat: list[float] = []
    for leaf in level:
        if type(leaf) is bool or not isinstance(leaf, (int, float)):
            raise ShapeError(f"expected a number at depth {len(shape)}, got {type(leaf).__name__}")
        try:
            flat.append(float(leaf))
        except OverflowError:
            raise ShapeError(f"an integer at depth {len(shape)} is out of float range") from None
    if dtype == "<f8":
        data = struct.pack(f"<{len(flat)}d", *flat)
    else:
        try:
            data = struct.pack(f"<{len(flat)}f", *flat)
        except OverflowError:
            data = b"".join(_pack_f4(v) for v in flat)
    return NpyArray(dtype, shape, data)
