"""MNIST and Fashion-MNIST: where their files are looked for, how they are verified and loaded.

One data directory is in effect: the ``data_dir`` argument, else the
``SCRATCHNET_DATA_DIR`` environment variable, else the user cache directory
(``$XDG_CACHE_HOME/scratchnet`` or ``~/.cache/scratchnet``). A dataset's files live
in ``<dir>/<name>/``, or directly in ``<dir>`` if that subfolder does not exist.
Files missing there are downloaded into ``<dir>/<name>/``: a directory given
explicitly is never silently replaced by another one, for reading or for writing.
Only the files of the splits asked for are looked for (evaluating needs the test
files only).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scratchnet.core.errors import DatasetError
from scratchnet.core.lazy import lazy_module, numpy_available
from scratchnet.data.byte_arrays import ByteArray
from scratchnet.data.download import DEFAULT_TIMEOUT, download_file
from scratchnet.data.idx import read_idx, read_idx_plain

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray
else:
    np = lazy_module("numpy", globals(), "np")

__all__ = [
    "DATASETS",
    "DATA_DIR_ENV",
    "Dataset",
    "DatasetSpec",
    "FileSpec",
    "cache_dir",
    "has_dataset",
    "load_dataset",
    "resolve_data_dir",
]

DATA_DIR_ENV = "SCRATCHNET_DATA_DIR"


@dataclass(frozen=True)
class FileSpec:
    """One IDX file: its canonical (gzipped) name, the sha256 of its decompressed bytes, its shape."""

    filename: str
    sha256: str
    shape: tuple[int, ...]


@dataclass(frozen=True)
class DatasetSpec:
    """Everything needed to find, download and verify one MNIST-format dataset."""

    name: str
    train_images: FileSpec
    train_labels: FileSpec
    test_images: FileSpec
    test_labels: FileSpec
    class_names: tuple[str, ...]
    mirrors: tuple[str, ...]

    @property
    def files(self) -> tuple[FileSpec, FileSpec, FileSpec, FileSpec]:
        """The four files, in the order train images, train labels, test images, test labels."""
        return (self.train_images, self.train_labels, self.test_images, self.test_labels)


@dataclass(frozen=True, eq=False)  # eq=False: comparing arrays with == is elementwise, not a bool
class Dataset:
    """A loaded dataset: its samples and their labels ``(n,)`` in ``0..len(class_names)-1``.

    The samples (``train_images``, ``test_images``; the names are MNIST's) are of one of three kinds:
    grey images ``(n, height, width)`` and images ``(n, channels, height, width)``, uint8 pixels that
    a network sees divided by ``scale`` (255; or 1 for values already in [0, 1], which may be
    float32); or a table of features ``(n, features)``, float32. MNIST and Fashion-MNIST are uint8
    ``(n, 28, 28)`` with uint8 labels. ``source`` describes the file the samples came from and how it
    was read (None for the built-in datasets): a model records it (``metadata.source``), so that more
    data is read as the training data was (:mod:`scratchnet.data.own`)."""

    name: str
    train_images: NDArray[Any]
    train_labels: NDArray[Any]
    test_images: NDArray[Any]
    test_labels: NDArray[Any]
    class_names: tuple[str, ...]
    scale: float = 255.0
    source: Mapping[str, Any] | None = None

    @property
    def num_classes(self) -> int:
        """The number of classes."""
        return len(self.class_names)

    @property
    def kind(self) -> str:
        """``"image"``, or ``"features"`` for a table (samples of one dimension)."""
        return "features" if self.train_images.ndim == 2 else "image"

    @property
    def sample_shape(self) -> tuple[int, ...]:
        """The shape of one sample: ``(28, 28)``, ``(3, 32, 32)``, ``(4,)``."""
        return tuple(int(n) for n in self.train_images.shape[1:])


def _mnist_format(
    name: str,
    sha256: tuple[str, str, str, str],
    class_names: tuple[str, ...],
    mirrors: tuple[str, ...],
) -> DatasetSpec:
    """A dataset in the MNIST layout: the four canonical IDX file names, 60,000 training and 10,000
    test 28x28 images; ``sha256`` holds the four files' checksums in :attr:`DatasetSpec.files` order."""
    train_images, train_labels, test_images, test_labels = sha256
    return DatasetSpec(
        name=name,
        train_images=FileSpec("train-images-idx3-ubyte.gz", train_images, (60000, 28, 28)),
        train_labels=FileSpec("train-labels-idx1-ubyte.gz", train_labels, (60000,)),
        test_images=FileSpec("t10k-images-idx3-ubyte.gz", test_images, (10000, 28, 28)),
        test_labels=FileSpec("t10k-labels-idx1-ubyte.gz", test_labels, (10000,)),
        class_names=class_names,
        mirrors=mirrors,
    )


# The checksums are of the DECOMPRESSED files, so that recompressed copies (as
# Debian ships Fashion-MNIST) and uncompressed copies are accepted too. Values
# from /work/shared/data/{mnist,fashion-mnist}/README.md.
_MNIST = _mnist_format(
    "mnist",
    (
        "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    ),
    class_names=tuple(str(d) for d in range(10)),
    mirrors=(
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
    ),
)

_FASHION_MNIST = _mnist_format(
    "fashion-mnist",
    (
        "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    ),
    class_names=(
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ),
    mirrors=(
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://github.com/zalandoresearch/fashion-mnist/raw/master/data/fashion/",
    ),
)

#: The known datasets by name. A plain dict so other MNIST-format datasets can be registered.
DATASETS: dict[str, DatasetSpec] = {spec.name: spec for spec in (_MNIST, _FASHION_MNIST)}


def cache_dir() -> Path:
    """The user cache directory: ``$XDG_CACHE_HOME/scratchnet``, else ``~/.cache/scratchnet``."""
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    # The XDG spec says relative values are invalid and must be ignored.
    if xdg and os.path.isabs(xdg):
        return Path(xdg) / "scratchnet"
    try:
        home = Path.home()
    except RuntimeError:  # no HOME and no passwd entry, e.g. in some containers
        raise DatasetError(
            f"cannot find the home directory for the cache; set XDG_CACHE_HOME or {DATA_DIR_ENV}"
        ) from None
    return home / ".cache" / "scratchnet"


def resolve_data_dir(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """The data directory in effect: ``data_dir`` if given, else ``$SCRATCHNET_DATA_DIR``, else the cache dir.

    A dataset's files belong in ``resolve_data_dir(...) / name``. The directory may not exist yet.
    """
    if data_dir is not None:
        if not os.fspath(data_dir).strip():
            raise DatasetError("the data directory name is empty; give a folder holding mnist/ and fashion-mnist/")
        return Path(data_dir).expanduser()
    env = os.environ.get(DATA_DIR_ENV, "")
    if env:
        return Path(env).expanduser()
    return cache_dir()


SPLITS = ("train", "test")


def _lookup(name: str) -> DatasetSpec:
    key = name.strip().lower().replace("_", "-")
    spec = DATASETS.get(key)
    if spec is None:
        raise DatasetError(f"unknown dataset {name!r}; known datasets: {', '.join(sorted(DATASETS))}")
    return spec


def _find(base: Path, dataset: str, filename: str) -> Path | None:
    """The copy of ``filename`` (with or without ``.gz``) in ``<base>/<dataset>/``, or in ``<base>/``
    when that subfolder does not exist."""
    plain = filename.removesuffix(".gz")
    sub = base / dataset
    folder = sub if sub.is_dir() else base
    for candidate in (plain + ".gz", plain):
        path = folder / candidate
        if path.is_file():
            return path
    return None


def has_dataset(name: str, data_dir: str | os.PathLike[str] | None = None) -> bool:
    """Whether all four files of dataset ``name`` are in the data directory (found, not read or verified)."""
    spec = _lookup(name)
    base = resolve_data_dir(data_dir)
    return all(_find(base, spec.name, f.filename) is not None for f in spec.files)


def _check_pair(
    images: NDArray[np.uint8] | ByteArray,
    labels: NDArray[np.uint8] | ByteArray,
    image_path: Path,
    label_path: Path,
    image_spec: FileSpec,
    num_classes: int,
) -> None:
    if images.ndim != len(image_spec.shape) or images.shape[1:] != image_spec.shape[1:]:
        raise DatasetError(
            f"{image_path}: images have shape {images.shape}, expected (n, {', '.join(map(str, image_spec.shape[1:]))})"
        )
    if labels.ndim != 1:
        raise DatasetError(f"{label_path}: labels have shape {labels.shape}, expected one dimension")
    if len(images) != len(labels):
        raise DatasetError(f"{image_path} has {len(images)} images but {label_path} has {len(labels)} labels")
    if len(images) != image_spec.shape[0]:
        raise DatasetError(f"{image_path}: {len(images)} images, expected {image_spec.shape[0]}")
    if isinstance(labels, ByteArray):  # NumPy absent: the first label outside, by a plain scan
        index = next((i for i, label in enumerate(labels.tolist()) if label >= num_classes), -1)
    else:
        outside = labels >= num_classes
        index = int(np.argmax(outside)) if outside.any() else -1
    if index >= 0:
        raise DatasetError(f"{label_path}: label {int(labels[index])} at index {index} is outside 0..{num_classes - 1}")


def empty(shape: tuple[int, ...], plain: bool) -> Any:
    """No samples of ``shape[1:]``: a uint8 array, or (``plain``) a ByteArray."""
    return ByteArray(b"", shape) if plain else np.zeros(shape, np.uint8)


def load_dataset(
    name: str,
    data_dir: str | os.PathLike[str] | None = None,
    *,
    download: bool = True,
    progress: bool = True,
    mirrors: Sequence[str] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    splits: Sequence[str] = SPLITS,
) -> Dataset:
    """Load ``name`` (see :data:`DATASETS`), verifying every file; download missing files if allowed.

    Files may be gzipped or not and named with or without ``.gz``: the sha256 of
    the decompressed contents is what is checked. ``mirrors`` overrides the
    dataset's download mirrors. ``progress`` shows download progress on stderr
    when it is a terminal. ``splits`` names the parts to load, ``("test",)`` for
    evaluation: the other part's files are neither looked for nor read, and its
    arrays are empty. Every problem raises :class:`DatasetError`.
    """
    spec = _lookup(name)
    unknown = [split for split in splits if split not in SPLITS]
    if unknown or not splits:
        raise DatasetError(f"splits must be some of {', '.join(SPLITS)}, got {list(splits)}")
    wanted = [f for f, split in zip(spec.files, ("train", "train", "test", "test")) if split in splits]
    base = resolve_data_dir(data_dir)
    found: dict[str, Path] = {}
    missing: list[str] = []
    for f in wanted:
        path = _find(base, spec.name, f.filename)
        if path is None:
            missing.append(f.filename)
        else:
            found[f.filename] = path

    if missing:
        found.update(_download_missing(spec, wanted, missing, bool(found), base, download, mirrors, progress, timeout))

    num_classes = len(spec.class_names)
    plain = not numpy_available()  # the loops backend without NumPy: the bytes as ByteArrays
    parts = []
    for images_spec, labels_spec, split in (
        (spec.train_images, spec.train_labels, "train"),
        (spec.test_images, spec.test_labels, "test"),
    ):
        if split not in splits:  # not asked for: empty arrays of the right shape and type
            parts += [empty((0, *images_spec.shape[1:]), plain), empty((0,), plain)]
            continue
        image_path, label_path = found[images_spec.filename], found[labels_spec.filename]
        read: Callable[..., Any] = read_idx_plain if plain else read_idx
        images, labels = read(image_path, sha256=images_spec.sha256), read(label_path, sha256=labels_spec.sha256)
        _check_pair(images, labels, image_path, label_path, images_spec, num_classes)
        parts += [images, labels]
    train_images, train_labels, test_images, test_labels = parts
    return Dataset(
        name=spec.name,
        train_images=train_images,
        train_labels=train_labels,
        test_images=test_images,
        test_labels=test_labels,
        class_names=spec.class_names,
    )


def _download_missing(
    spec: DatasetSpec,
    wanted: Sequence[FileSpec],
    missing: Sequence[str],
    some_found: bool,
    base: Path,
    download: bool,
    mirrors: Sequence[str] | None,
    progress: bool,
    timeout: float,
) -> dict[str, Path]:
    """The ``missing`` files of ``spec`` downloaded and verified, by name; DatasetError saying where to put
    them when downloading is off or fails."""
    target = base / spec.name
    hint = (
        f"put {', '.join(missing)} in {target}{os.sep} "
        f"(or pass --data-dir DIR / set {DATA_DIR_ENV}=DIR for a DIR holding {spec.name}{os.sep}); "
        f"looked in {base}"
    )
    if not download:
        raise DatasetError(f"{spec.name}: dataset files not found and downloading is off; {hint}")
    # Into <dir>/<name>/, unless the files found are directly in <dir>: the missing ones join them.
    destination = base if some_found and not target.is_dir() else target
    downloaded: dict[str, Path] = {}
    try:
        for f in wanted:
            if f.filename in missing:
                downloaded[f.filename] = download_file(
                    f.filename,
                    spec.mirrors if mirrors is None else mirrors,
                    destination,
                    f.sha256,
                    progress=progress,
                    timeout=timeout,
                )
    except DatasetError as exc:
        raise DatasetError(f"{spec.name}: dataset files not found and the download failed ({exc}); {hint}") from exc
    return downloaded
