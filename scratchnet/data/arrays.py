"""``.npz`` files of samples: an array ``x`` (one sample per row), ``y`` (one label per sample) and,
optionally, ``class_names``; read with ``allow_pickle=False``, so an object array is refused unread.

``x`` is ``(n, features)``, ``(n, height, width)`` or ``(n, channels, height, width)``, of any
integer, unsigned, boolean or float type. ``y`` holds integers or strings. With ``class_names``,
``y`` is the class index of each sample, ``0..len(class_names) - 1``; without, the labels are the
values of ``y`` as text (the class names are then made as for a CSV file).
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from scratchnet.core.errors import DatasetError

__all__ = ["Arrays", "read_npz"]


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
        with np.load(name, allow_pickle=False) as archive:
            if not hasattr(archive, "files"):
                raise DatasetError(f"{name}: a single array (.npy), not an .npz archive of x and y")
            missing = [key for key in ("x", "y") if key not in archive.files]
            if missing:
                raise DatasetError(
                    f"{name}: no array {' or '.join(missing)} (it holds {', '.join(archive.files) or 'nothing'}); "
                    "save it with numpy.savez(path, x=samples, y=labels)"
                )
            x, y = archive["x"], archive["y"]
            names = archive["class_names"] if "class_names" in archive.files else None
    except DatasetError:
        raise
    except ValueError as error:
        if "allow_pickle" in str(error) or "Object arrays" in str(error):
            raise DatasetError(
                f"{name}: holds an object array (Python objects, which are never unpickled); "
                "save numbers, and strings as a fixed-width str array"
            ) from None
        raise DatasetError(f"{name}: not a readable .npz file ({error})") from None
    except (OSError, EOFError, zipfile.BadZipFile, KeyError) as error:
        raise DatasetError(f"{name}: not a readable .npz file ({error})") from None
    return Arrays(name, _samples(name, x), *_labels(name, y, names, len(x) if x.ndim else 0))


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
            raise DatasetError(f"{name}: the label {unknown!r} is not one of class_names")
        return [str(v) for v in y.tolist()], given
    bad = (y < 0) | (y >= len(given))
    if bad.any():
        index = int(np.argmax(bad))
        raise DatasetError(
            f"{name}: y[{index}] is {int(y[index])}, but class_names has {len(given)} classes (0..{len(given) - 1})"
        )
    return [given[int(v)] for v in y.tolist()], given
