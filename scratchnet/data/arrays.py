"""``.npz`` files of samples: an array ``x`` (one sample per row), ``y`` (one label per sample) and,
optionally, ``class_names``; read with ``allow_pickle=False``, so an object array is refused unread.

``x`` is ``(n, features)``, ``(n, height, width)`` or ``(n, channels, height, width)``, of any
integer, unsigned, boolean or float type. ``y`` holds integers or strings. With ``class_names``,
``y`` is the class index of each sample, ``0..len(class_names) - 1``; without, the labels are the
values of ``y`` as text (the class names are then made as for a CSV file).
"""

from __future__ import annotations

import math
import os
import zipfile
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from scratchnet.core.errors import DatasetError
from scratchnet.core.lazy import lazy_module
from scratchnet.data.recorded import excerpt

if TYPE_CHECKING:
    import numpy as np
    import numpy.lib.format as npformat
    import numpy.typing as npt
else:
    np = lazy_module("numpy", globals(), "np")
    npformat = lazy_module("numpy.lib.format", globals(), "npformat")

__all__ = ["MAX_NPZ_BYTES", "NPY_HEADER_BYTES", "Arrays", "npy_header", "read_entry", "read_npz"]

#: The most an ``.npz`` file's arrays x, y and class_names may inflate to, in all.
MAX_NPZ_BYTES = 2 << 30
#: The longest ``.npy`` header read (NumPy's own default limit).
NPY_HEADER_BYTES = 10_000
NPY_MAGIC = b"\x93NUMPY"
READ_BLOCK = 16 << 20
ARRAYS = ("x", "y", "class_names")


@dataclass(frozen=True, eq=False)
class Arrays:
    """An ``.npz`` read: ``x`` as stored (checked finite and numeric), ``labels`` as text, and the
    ``class_names`` the file gives (None when it has none)."""

    path: str
    x: npt.NDArray[Any]
    labels: list[str]
    class_names: tuple[str, ...] | None


def read_npz(path: str | os.PathLike[str]) -> Arrays:
    """Read ``path`` (see the module's text); every problem is a DatasetError naming the file."""
    name = os.fspath(path)
    if not os.path.isfile(name):
        raise DatasetError(f"{name}: no such file")
    try:
        with open(name, "rb") as handle:
            if handle.read(len(NPY_MAGIC)) == NPY_MAGIC:
                raise DatasetError(f"{name}: a single array (.npy), not an .npz archive of x and y")
            handle.seek(0)
            with zipfile.ZipFile(handle) as archive:
                entries = _entries(name, archive)
                x, y = (read_entry(name, archive, entries[key]) for key in ("x", "y"))
                names = read_entry(name, archive, entries["class_names"]) if "class_names" in entries else None
    except DatasetError:
        raise
    except (OSError, EOFError, zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, RuntimeError) as error:
        raise DatasetError(f"{name}: not a readable .npz file ({error})") from None
    except (ValueError, OverflowError, zlib.error) as error:  # a damaged entry, as zipfile and zlib find it
        raise DatasetError(f"{name}: not a readable .npz file ({str(error)[:200]})") from None
    return Arrays(name, _samples(name, x), *_labels(name, y, names, len(x) if x.ndim else 0))


def _entries(name: str, archive: zipfile.ZipFile) -> dict[str, zipfile.ZipInfo]:
    """The entries of the arrays read (``x``, ``y``, ``class_names``: ``NAME.npy`` as numpy.savez
    names them); a DatasetError when x or y is missing, or when their declared inflated sizes add
    up to more than MAX_NPZ_BYTES (checked before anything is inflated)."""
    infos = {info.filename.removesuffix(".npy"): info for info in archive.infolist()}
    missing = [key for key in ("x", "y") if key not in infos]
    if missing:
        held = ", ".join(list(infos)[:10]) + (", ..." if len(infos) > 10 else "")
        raise DatasetError(
            f"{name}: no array {' or '.join(missing)} (it holds {held or 'nothing'}); "
            "save it with numpy.savez(path, x=samples, y=labels)"
        )
    entries = {key: infos[key] for key in ARRAYS if key in infos}
    declared = sum(info.file_size for info in entries.values())
    if declared > MAX_NPZ_BYTES:
        raise DatasetError(
            f"{name}: its arrays inflate to {declared:,} bytes, more than the {MAX_NPZ_BYTES:,} an .npz file may hold"
        )
    return entries


def read_entry(name: str, archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> npt.NDArray[Any]:
    """One ``.npy`` entry of ``archive``, refused before any allocation unless the shape and type
    its header declares fill exactly the entry's declared size (at most MAX_NPZ_BYTES, which
    :func:`_entries` checked); then inflated into the array in blocks of READ_BLOCK bytes. zipfile
    stops at the declared size and checks the CRC, so a zip bomb that declares less is refused."""
    where = f"{name}: array {info.filename.removesuffix('.npy')}"
    if info.flag_bits & 0x1:
        raise DatasetError(f"{where}: the entry is encrypted")
    with archive.open(info) as entry:
        dtype, shape, fortran, header = npy_header(name, where, entry)
        nbytes = math.prod(shape) * dtype.itemsize
        if header + nbytes != info.file_size:
            raise DatasetError(
                f"{where}: its header declares shape {_shown(shape)} of {dtype.str} ({nbytes:,} bytes), but the entry "
                f"declares {info.file_size - header:,} bytes of data"
            )
        raw = bytearray(nbytes)
        room = memoryview(raw)
        done = 0
        while done < nbytes:
            block = entry.read(min(READ_BLOCK, nbytes - done))
            if not block:
                raise DatasetError(f"{where}: the entry ends after {done:,} of its {nbytes:,} bytes")
            room[done : done + len(block)] = block
            done += len(block)
        if entry.read(1):
            raise DatasetError(f"{where}: the entry holds more than the {nbytes:,} bytes its header declares")
    if dtype.itemsize == 0:
        return np.empty(shape, dtype)
    return np.frombuffer(raw, dtype).reshape(shape, order="F" if fortran else "C")  # writable: a bytearray


def npy_header(name: str, where: str, entry: Any) -> tuple[np.dtype[Any], tuple[int, ...], bool, int]:
    """The dtype, shape and order an ``.npy`` header declares, and the header's length (magic and
    version included); read with NumPy's own header parser (a literal, never evaluated), at most
    NPY_HEADER_BYTES long."""
    try:
        version = npformat.read_magic(entry)
        if version == (1, 0):
            shape, fortran, dtype = npformat.read_array_header_1_0(entry, max_header_size=NPY_HEADER_BYTES)
        elif version == (2, 0):
            shape, fortran, dtype = npformat.read_array_header_2_0(entry, max_header_size=NPY_HEADER_BYTES)
        else:
            raise DatasetError(f"{where}: .npy format version {version[0]}.{version[1]} is not read")
    except (ValueError, SyntaxError, TypeError) as error:
        raise DatasetError(f"{where}: not a readable .npy array ({str(error)[:120]})") from None
    if dtype.hasobject:
        raise DatasetError(
            f"{name}: holds an object array ({where.split(': ')[-1]}: Python objects, which are never unpickled); "
            "save numbers, and strings as a fixed-width str array"
        )
    if any(n < 0 for n in shape):
        raise DatasetError(f"{where}: its header declares shape {_shown(tuple(shape))}, with a negative length")
    return dtype, tuple(int(n) for n in shape), bool(fortran), int(entry.tell())  # the data starts here


def _shown(shape: tuple[int, ...]) -> str:
    text = str(shape)
    return text if len(text) <= 60 else text[:60] + "...)"


def _samples(name: str, x: npt.NDArray[Any]) -> npt.NDArray[Any]:
    if x.ndim not in (2, 3, 4):
        raise DatasetError(
            f"{name}: x has shape {x.shape}; give (n, features), (n, height, width) or (n, channels, height, width)"
        )
    if x.dtype.kind not in "biuf":
        raise DatasetError(f"{name}: x holds {x.dtype} values, not numbers")
    if len(x) == 0 or x[0].size == 0:
        raise DatasetError(f"{name}: x holds no samples (shape {x.shape})")
    if x.dtype.kind == "f" and not np.isfinite(x).all():
        index = int(np.argmax(~np.isfinite(x.reshape(len(x), -1)).all(axis=1)))
        raise DatasetError(f"{name}: sample {index} of x holds a value that is not a finite number")
    return x.astype(np.uint8) if x.dtype.kind == "b" else x


def _labels(
    name: str, y: npt.NDArray[Any], names: npt.NDArray[Any] | None, count: int
) -> tuple[list[str], tuple[str, ...] | None]:
    if y.ndim != 1 or len(y) != count:
        raise DatasetError(f"{name}: y has shape {y.shape}, but x has {count} samples: give one label per sample")
    if y.dtype.kind == "f" and np.isfinite(y).all() and np.array_equal(y, np.rint(y)):
        y = y.astype(np.int64)
    if y.dtype.kind not in "iuU":
        raise DatasetError(f"{name}: y holds {y.dtype} values; give integers or strings")
    if names is None:
        return [str(v) for v in y.tolist()], None
    if names.ndim != 1 or names.dtype.kind != "U" or len(names) == 0:
        raise DatasetError(f"{name}: class_names must be a 1-D array of strings, got {names.dtype} {names.shape}")
    given = tuple(str(n) for n in names.tolist())
    if len(set(given)) != len(given):
        raise DatasetError(f"{name}: class_names names a class twice")
    if y.dtype.kind == "U":
        unknown = next((v for v in y.tolist() if v not in given), None)
        if unknown is not None:
            raise DatasetError(f"{name}: the label {excerpt(unknown)} is not one of class_names")
        return [str(v) for v in y.tolist()], given
    bad = (y < 0) | (y >= len(given))
    if bad.any():
        index = int(np.argmax(bad))
        raise DatasetError(
            f"{name}: y[{index}] is {int(y[index])}, but class_names has {len(given)} classes (0..{len(given) - 1})"
        )
    return [given[int(v)] for v in y.tolist()], given
