"""Your own data: a CSV file, a folder of class folders or an ``.npz`` file, read one file at a time.

:func:`read_samples` picks the reader by the path (a folder, ``.csv``, ``.npz``) and returns its
samples, of one of three kinds:

* images ``(n, height, width)`` (grey) or ``(n, channels, height, width)``, uint8 pixels 0..255
  (``scale`` 255) or, when every value is in [0, 1], those values (``scale`` 1);
* a table of features ``(n, features)``, float32.

A CSV file or a 2-D ``x`` of 784 columns is taken as 28x28 grey images (``image_shape`` gives
another shape, ``table`` keeps them a table); any other number of columns is a table. The class
names are the labels as written, sorted (numerically when every label is a number), or an ``.npz``
file's ``class_names``.

What a model needs to read more data as it was trained is its :class:`Layout`: the sample's kind,
shape and pixel scale (its ``input`` metadata) and the file's format, feature columns and reading
options (its ``source`` metadata). :mod:`scratchnet.data.own_sets` makes datasets of these samples:
the test split, the training order, and the test or unlabelled samples a saved model reads.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scratchnet.core.architecture import default_sample
from scratchnet.core.errors import DatasetError
from scratchnet.core.lazy import lazy_module
from scratchnet.data.arrays import read_npz
from scratchnet.data.datasets import Dataset
from scratchnet.data.folders import read_folder
from scratchnet.data.recorded import escaped, excerpt
from scratchnet.data.tables import LABEL, is_number, read_csv

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
else:
    np = lazy_module("numpy", globals(), "np")

__all__ = [
    "DEFAULT_TEST_FRACTION",
    "FORMATS",
    "DataOptions",
    "Layout",
    "data_format",
    "data_name",
    "label_indices",
    "read_samples",
    "sorted_class_names",
]

FORMATS = ("csv", "folder", "npz")
DEFAULT_TEST_FRACTION = 0.2
MNIST_SIDE = 28
SPLIT_SEED = 19  # the split and the order of a file's samples: fixed, so every run holds out the same test rows
TEST_STREAM, ORDER_STREAM = 0, 1

Where = Callable[[int], str]


@dataclass(frozen=True)
class DataOptions:
    """How to read a file: the CSV's label column (a name, or a position such as ``"0"``); the shape
    of flat samples as images (``(channels, height, width)`` or ``(height, width)``; 784 columns are
    28x28 without it) or ``table`` to keep them a table of features; a folder's ``channels`` (1 grey,
    3 RGB; default: the first picture's) and ``image_size`` (height, width: resize every picture to
    it; default: the first picture's size, which all must have)."""

    label_column: str = LABEL
    image_shape: tuple[int, ...] | None = None
    table: bool = False
    channels: int | None = None
    image_size: tuple[int, int] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "label_column": self.label_column,
            "image_shape": None if self.image_shape is None else list(self.image_shape),
            "table": self.table,
            "channels": self.channels,
            "image_size": None if self.image_size is None else list(self.image_size),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DataOptions:
        try:
            shape, size = data.get("image_shape"), data.get("image_size")
            return cls(
                label_column=str(data.get("label_column", LABEL)),
                image_shape=None if shape is None else tuple(int(n) for n in shape),
                table=bool(data.get("table", False)),
                channels=None if data.get("channels") is None else int(data["channels"]),
                image_size=None if size is None else (int(size[0]), int(size[1])),
            )
        except (TypeError, ValueError, IndexError, AttributeError):
            raise DatasetError(f"the recorded reading options are not understood: {dict(data)!r:.120}") from None


@dataclass(frozen=True)
class Layout:
    """How one sample is read, as training read it: ``kind`` ``"image"`` or ``"features"``; ``shape``,
    one sample as a Dataset holds it (``(H, W)``, ``(C, H, W)`` or ``(features,)``); ``scale``, what
    a pixel is divided by (255, or 1 for values in [0, 1]); the file's ``format`` (None: a built-in
    dataset), a CSV's feature ``columns`` and the reading ``options``."""

    kind: str
    shape: tuple[int, ...]
    scale: float = 255.0
    format: str | None = None
    columns: tuple[str, ...] | None = None
    options: DataOptions = DataOptions()

    @classmethod
    def of(cls, data: Dataset) -> Layout:
        """The layout of a loaded dataset."""
        source = data.source or {}
        columns = source.get("columns")
        return cls(
            data.kind,
            data.sample_shape,
            data.scale,
            source.get("format"),
            None if columns is None else tuple(columns),
            DataOptions.from_dict(source.get("options", {})),
        )

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, Any], network_input: tuple[int, ...] | None = None) -> Layout:
        """The layout a model's metadata records (``input`` and ``source``); a model without them
        takes what its network's ``network_input`` implies (:func:`default_sample`: a table of F
        features for a row of F values other than 784), or 28x28 grey images of 0..255."""
        spec = metadata.get("input")
        spec = spec if isinstance(spec, Mapping) else {}
        source = metadata.get("source")
        source = source if isinstance(source, Mapping) else {}
        implied = default_sample(network_input) if network_input and not spec else ("image", (MNIST_SIDE, MNIST_SIDE))
        kind = spec.get("kind", implied[0])
        try:
            shape = tuple(int(n) for n in spec.get("shape", implied[1]))
            scale = float(spec.get("scale", 255.0 if kind == "image" else 1.0))
        except (TypeError, ValueError):
            raise DatasetError(f"the model's input metadata is not understood: {dict(spec)!r:.120}") from None
        columns = source.get("columns")
        fmt = source.get("format")
        if kind not in ("image", "features") or (fmt is not None and fmt not in FORMATS):
            raise DatasetError(f"the model's input metadata is not understood: kind {kind!r}, format {fmt!r}")
        return cls(
            kind,
            shape,
            scale,
            fmt,
            None if not isinstance(columns, list) else tuple(str(c) for c in columns),
            DataOptions.from_dict(source.get("options", {})),
        )

    @property
    def channels(self) -> int:
        return self.shape[0] if len(self.shape) == 3 else 1

    def describe(self) -> str:
        """``28x28 grey images`` or ``a table of 4 features``."""
        if self.kind == "features":
            return f"a table of {self.shape[0]} feature{'s' if self.shape[0] != 1 else ''}"
        height, width = self.shape[-2:]
        return f"{height}x{width} {'grey' if self.channels == 1 else f'{self.channels}-channel'} images"


@dataclass(frozen=True, eq=False)
class _Samples:
    """A file read, before the classes are named: the samples, each one's label as text, an
    ``.npz``'s own class names, the pixel scale, where sample k is (for messages), and the source."""

    x: npt.NDArray[Any]
    labels: list[str] | None
    class_names: tuple[str, ...] | None
    scale: float
    where: Where
    source: dict[str, Any]

    def layout(self) -> Layout:
        """How the samples were read, for reading more (a test file) the same way."""
        columns = self.source.get("columns")
        return Layout(
            "features" if self.x.ndim == 2 else "image",
            tuple(int(n) for n in self.x.shape[1:]),
            self.scale,
            self.source["format"],
            None if columns is None else tuple(columns),
            DataOptions.from_dict(self.source["options"]),
        )


def data_format(path: str | os.PathLike[str]) -> str:
    """``csv``, ``folder`` or ``npz``, by the path; a DatasetError for anything else."""
    name = os.fspath(path)
    if os.path.isdir(name):
        return "folder"
    suffix = os.path.splitext(name)[1].lower()
    if suffix in (".csv", ".npz"):
        if not os.path.exists(name):
            raise DatasetError(f"{name}: no such file")
        return suffix[1:]
    if not os.path.exists(name):
        raise DatasetError(f"{name}: no such file or folder")
    raise DatasetError(
        f"{name}: give a .csv file, an .npz file (arrays x and y) or a folder of class folders (DIR/CLASS/*.png)"
    )


def data_name(path: str | os.PathLike[str]) -> str:
    """The name a file gives its dataset: ``train`` for ``data/train.csv``, ``shapes`` for ``shapes/``."""
    where = Path(path)
    name = where.name if where.is_dir() else where.stem
    return name or Path(os.path.abspath(where)).name or "data"


def sorted_class_names(labels: Sequence[str]) -> tuple[str, ...]:
    """The distinct labels sorted: by their value when every one is a number, else as text."""
    unique = sorted(set(labels))
    if all(is_number(label) for label in unique):
        unique.sort(key=lambda label: (float(label), label))
    return tuple(unique)


def label_indices(labels: Sequence[str], names: Sequence[str], where: Where, path: str) -> npt.NDArray[np.int64]:
    """The class index of each label; a DatasetError naming the first label that is no class
    (a number matches a class of the same value: ``7.0`` is class ``7``)."""
    index = {name: k for k, name in enumerate(names)}
    values = {float(name): k for k, name in enumerate(names) if is_number(name)}
    result = np.empty(len(labels), np.int64)
    for row, label in enumerate(labels):
        k = index.get(label)
        if k is None and is_number(label):
            k = values.get(float(label))
        if k is None:
            shown = ", ".join(escaped(name) for name in names[:10]) + (", ..." if len(names) > 10 else "")
            raise DatasetError(
                f"{where(row)}: the label {excerpt(label)} is not one of the {len(names)} classes the training data "
                f"has ({shown})"
            )
        result[row] = k
    return result


# ---- reading one file ----


def _flat_shape(features: int, options: DataOptions, where: str) -> tuple[int, ...] | None:
    """The image shape of flat samples of ``features`` values, or None for a table."""
    if options.table:
        if options.image_shape is not None:
            raise DatasetError(f"{where}: --table and --image-shape contradict each other; give one")
        return None
    shape = options.image_shape
    if shape is None:
        return (MNIST_SIDE, MNIST_SIDE) if features == MNIST_SIDE * MNIST_SIDE else None
    if math.prod(shape) != features:
        raise DatasetError(
            f"{where}: --image-shape {','.join(map(str, shape))} is {math.prod(shape)} values, but each sample "
            f"has {features}"
        )
    return shape[1:] if len(shape) == 3 and shape[0] == 1 else shape


def _pixels(x: npt.NDArray[Any], where: Where, scale: float | None) -> tuple[npt.NDArray[Any], float]:
    """Samples as pixels and their scale: integers 0..255 (uint8, scale 255) or numbers in [0, 1]
    (scale 1, kept as they are: uint8 or float32); ``scale`` is the one to hold them to, when known."""
    flat = x.reshape(len(x), -1)
    top = float(flat.max()) if flat.size else 0.0
    low = float(flat.min()) if flat.size else 0.0
    integral = x.dtype == np.uint8 or (x.dtype.kind in "iu" and low >= 0 and top <= 255)
    if scale is None:
        scale = 1.0 if low >= 0.0 and top <= 1.0 else 255.0
    if scale == 255.0 and integral:
        return x.astype(np.uint8, copy=False), scale
    if scale == 1.0 and low >= 0.0 and top <= 1.0:
        return (x if x.dtype in (np.uint8, np.float32) else x.astype(np.float32)), scale
    if scale == 255.0:
        bad = (flat < 0) | (flat > 255) | (flat != np.rint(flat))
        expected = "integers 0..255"
    else:
        bad = (flat < 0) | (flat > 1)
        expected = "numbers in [0, 1], as the training data's"
    row = int(np.argmax(bad.any(axis=1)))
    value = flat[row][bad[row]][0]
    raise DatasetError(
        f"{where(row)}: {float(value):g} is not a pixel value ({expected}); a table of features is read with --table"
    )


def _from_csv(path: str, options: DataOptions, layout: Layout | None, labelled: bool) -> _Samples:
    label = options.label_column if layout is None else layout.options.label_column
    wanted = None if layout is None else layout.columns
    table = read_csv(path, label_column=label, label_required=labelled, features=wanted)
    features = table.values.shape[1]
    where: Where = table.where
    if layout is None:
        shape = _flat_shape(features, options, path)
        scale: float | None = None
    else:
        _check_count(path, features, layout)
        shape = layout.shape if layout.kind == "image" else None
        scale = layout.scale
    x: npt.NDArray[Any]
    if shape is None:
        x, scale = table.values.astype(np.float32, copy=False), 1.0
    else:
        x, scale = _pixels(table.values, where, scale)
        x = x.reshape(len(x), *shape)
    source = {
        "format": "csv",
        "path": path,
        "columns": list(table.columns),
        "rows": table.rows,
        "options": options.to_dict() if layout is None else layout.options.to_dict(),
    }
    return _Samples(x, table.labels, None, scale, where, source)


def _check_count(path: str, features: int, layout: Layout) -> None:
    if features != math.prod(layout.shape):
        raise DatasetError(
            f"{path}: each row has {features} feature values, but the model takes {layout.describe()} "
            f"({math.prod(layout.shape)} values)"
        )


def _from_folder(path: str, options: DataOptions, layout: Layout | None) -> _Samples:
    if layout is None:
        if options.image_shape is not None or options.table:
            raise DatasetError(
                f"{path}: --image-shape and --table are for flat samples (CSV, .npz); a folder's pictures are "
                "sized with --image-size and --channels"
            )
        folder = read_folder(path, channels=options.channels, size=options.image_size)
        recorded = options
    else:
        if layout.kind != "image":
            raise DatasetError(f"{path}: a folder of pictures, but the model takes {layout.describe()}")
        size = (layout.shape[-2], layout.shape[-1])
        resize = layout.options.image_size is not None
        folder = read_folder(path, channels=layout.channels, size=size if resize else None)
        if folder.size != size:
            raise DatasetError(
                f"{folder.files[0]}: {folder.size[0]}x{folder.size[1]} pixels, but the model takes "
                f"{layout.describe()} (it was trained without --image-size, so pictures are not resized)"
            )
        recorded = layout.options
    images: npt.NDArray[Any] = folder.images[:, 0] if folder.channels == 1 else folder.images
    scale = 255.0 if layout is None else layout.scale
    if scale == 1.0:  # a model of pixels in [0, 1] (read from a CSV file, say) sees pictures so too
        images = (images / np.float32(255.0)).astype(np.float32)
    files = folder.files

    def where(k: int) -> str:
        return files[k]

    source = {
        "format": "folder",
        "path": path,
        "rows": len(files),
        "resized": folder.resized,
        "options": recorded.to_dict(),
    }
    return _Samples(images, folder.labels, None, scale, where, source)


def _from_npz(path: str, options: DataOptions, layout: Layout | None) -> _Samples:
    arrays = read_npz(path)
    x = arrays.x

    def where(k: int) -> str:
        return f"{path} sample {k}"

    recorded = options if layout is None else layout.options
    if layout is None:
        shape = _flat_shape(x.shape[1], options, path) if x.ndim == 2 else tuple(x.shape[1:])
        if x.ndim == 4 and x.shape[1] == 1:
            shape = tuple(x.shape[2:])
        scale: float | None = None
    else:
        _check_count(path, x[0].size, layout)
        shape = layout.shape if layout.kind == "image" else None
        scale = layout.scale
    if shape is None:
        if x.ndim != 2:
            assert layout is not None  # a 2-D x is a table whenever no layout says otherwise
            raise DatasetError(f"{path}: x holds images {tuple(x.shape[1:])}, but the model takes {layout.describe()}")
        samples, scale = x.astype(np.float32), 1.0
    else:
        samples, scale = _pixels(x, where, scale)
        samples = samples.reshape(len(samples), *shape)
    source = {"format": "npz", "path": path, "rows": len(x), "options": recorded.to_dict()}
    return _Samples(samples, arrays.labels, arrays.class_names, scale, where, source)


def read_samples(path: str | os.PathLike[str], options: DataOptions, layout: Layout | None, labelled: bool) -> _Samples:
    name = os.fspath(path)
    fmt = data_format(name)
    if fmt != "folder" and (options.channels is not None or options.image_size is not None) and layout is None:
        raise DatasetError(f"{name}: --channels and --image-size are for folders of pictures, not a {fmt} file")
    if fmt == "csv":
        return _from_csv(name, options, layout, labelled)
    if fmt == "folder":
        return _from_folder(name, options, layout)
    if fmt != "npz":  # pragma: no cover (data_format gives one of the three)
        raise DatasetError(f"{name}: unknown format {fmt}")
    return _from_npz(name, options, layout)
