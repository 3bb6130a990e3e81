"""Datasets of your own data (:mod:`scratchnet.data.own` reads the files): :func:`load_data` returns the
same :class:`Dataset` that MNIST loads as. The test set is a second file of the same kind (``test``),
read exactly as the training file was, or a stratified ``test_fraction`` of the file held out: the
same rows for every run, whatever its seed. The training samples are put in a fixed random order, so
that a folder read class by class does not give ``--validation`` (the last N) or ``--limit`` (the
first N) one class. :func:`load_labelled` reads a labelled file with a saved model's layout (to
evaluate), :func:`recorded_test` the test set its metadata records, :func:`load_unlabelled` a CSV
file or pictures without labels (to predict).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scratchnet.core.errors import DatasetError
from scratchnet.core.lazy import lazy_module
from scratchnet.data.datasets import Dataset
from scratchnet.data.folders import read_pictures
from scratchnet.data.own import (
    DEFAULT_TEST_FRACTION,
    MNIST_SIDE,
    ORDER_STREAM,
    SPLIT_SEED,
    TEST_STREAM,
    DataOptions,
    Layout,
    data_name,
    label_indices,
    read_samples,
    sorted_class_names,
)
from scratchnet.data.recorded import check_recorded, fingerprint, shown_path

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from scratchnet.vectorized import rng as vector_rng
else:
    np = lazy_module("numpy", globals(), "np")
    vector_rng = lazy_module("scratchnet.vectorized.rng", globals(), "vector_rng")

__all__ = [
    "Unlabelled",
    "held_out_rows",
    "load_data",
    "load_labelled",
    "load_pictures",
    "load_unlabelled",
    "recorded_test",
]


def _order(count: int, stream: int) -> npt.NDArray[np.intp]:
    """A fixed random permutation of ``range(count)`` (stream ``stream`` of SPLIT_SEED)."""
    order: npt.NDArray[np.intp] = np.argsort(vector_rng.uniforms(SPLIT_SEED, stream, count), kind="stable")
    return order


def stratified_split(labels: npt.NDArray[Any], fraction: float) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """The training rows (in a fixed random order) and the test rows (in file order): ``fraction`` of
    each class (rounded, at least one of a class of two or more when ``fraction`` > 0, never all)."""
    draws = vector_rng.uniforms(SPLIT_SEED, TEST_STREAM, len(labels))
    held: list[npt.NDArray[np.intp]] = []
    for k in np.unique(labels):
        members = np.flatnonzero(labels == k)
        count = round(fraction * len(members))
        if fraction > 0 and len(members) >= 2:
            count = max(count, 1)
        count = min(count, len(members) - 1)
        held.append(members[np.argsort(draws[members], kind="stable")][:count])
    test = np.sort(np.concatenate(held)) if held else np.zeros(0, np.intp)
    rest = np.setdiff1d(np.arange(len(labels)), test)
    return rest[_order(len(rest), ORDER_STREAM)], test.astype(np.intp)


def load_data(
    path: str | os.PathLike[str],
    *,
    test: str | os.PathLike[str] | None = None,
    test_fraction: float | None = None,
    options: DataOptions = DataOptions(),
    name: str | None = None,
) -> Dataset:
    """The dataset in ``path`` (a ``.csv`` file, a folder of class folders or an ``.npz``; see the
    module's text), with its test set from ``test`` or a stratified ``test_fraction`` of ``path``
    (default DEFAULT_TEST_FRACTION; 0: no test set). Every problem is a DatasetError naming the file
    and the row or the picture. The source records each file's fingerprint
    (:func:`scratchnet.data.recorded.fingerprint`), so that a model's recorded paths are read again
    only while they hold the same data."""
    return _load_data(path, test, test_fraction, options, name, fingerprinted=True)


def _load_data(
    path: str | os.PathLike[str],
    test: str | os.PathLike[str] | None,
    test_fraction: float | None,
    options: DataOptions,
    name: str | None,
    *,
    fingerprinted: bool,
) -> Dataset:
    if test is not None and test_fraction is not None:
        raise DatasetError("give a test file or a test fraction, not both")
    fraction = DEFAULT_TEST_FRACTION if test_fraction is None else test_fraction
    if not 0.0 <= fraction < 1.0:
        raise DatasetError(f"the test fraction must be in [0, 1), got {fraction}")
    samples = read_samples(path, options, None, labelled=True)
    where = os.fspath(path)
    assert samples.labels is not None
    names = samples.class_names or sorted_class_names(samples.labels)
    labels = label_indices(samples.labels, names, samples.where, where)
    present = np.unique(labels)
    if len(present) < 2:
        raise DatasetError(
            f"{where}: every sample has the label {names[int(present[0])]!r}; a classifier needs two classes or more"
        )
    # absolute paths, so that evaluating the model finds its test set from any working directory
    source = {**samples.source, "path": os.path.abspath(os.fspath(path))}
    source["test"] = None if test is None else os.path.abspath(os.fspath(test))
    source["test_fraction"] = None if test is not None else fraction
    if fingerprinted:
        source["fingerprint"] = fingerprint(path)
        source["test_fingerprint"] = None if test is None else fingerprint(test)
    x = samples.x
    if test is not None:
        tested = load_labelled(test, samples.layout(), names)
        order = _order(len(labels), ORDER_STREAM)
        permute_rows(x, order)
        train_x, train_y, test_x, test_y = x, labels[order], tested.test_images, tested.test_labels
    else:
        train_rows, test_rows = stratified_split(labels, fraction)
        permute_rows(x, np.concatenate([train_rows, test_rows]))  # in place: the file's samples are held once
        cut = len(train_rows)
        train_x, train_y, test_x, test_y = x[:cut], labels[train_rows], x[cut:], labels[test_rows]
    return Dataset(name or data_name(path), train_x, train_y, test_x, test_y, names, scale=samples.scale, source=source)


def permute_rows(x: npt.NDArray[Any], order: npt.NDArray[np.intp]) -> None:
    """``x[:] = x[order]`` in place, one row at a time around each cycle of the permutation, with one
    row of extra memory instead of a second copy of ``x``."""
    done = np.zeros(len(order), bool)
    for first in range(len(order)):
        if done[first] or order[first] == first:
            continue
        saved = x[first].copy()
        k = first
        while True:
            done[k] = True
            source = int(order[k])
            if source == first:
                x[k] = saved
                break
            x[k] = x[source]
            k = source


def load_labelled(path: str | os.PathLike[str], layout: Layout, class_names: Sequence[str]) -> Dataset:
    """A labelled file read as ``layout`` says (as a model's training data was read), as the test part
    of a Dataset whose classes are ``class_names``; a DatasetError for a label that is not one."""
    samples = read_samples(path, layout.options, layout, labelled=True)
    assert samples.labels is not None
    names = tuple(class_names)
    labels = label_indices(samples.labels, names, samples.where, os.fspath(path))
    source = {**samples.source, "test": None, "test_fraction": None}
    return Dataset(
        data_name(path), samples.x[:0], labels[:0], samples.x, labels, names, scale=layout.scale, source=source
    )


def recorded_test(layout: Layout, source: Mapping[str, Any], class_names: Sequence[str]) -> Dataset:
    """The test set a model's training used, from its ``source`` metadata: the test file, or the
    held-out rows of the training file (the same rows: the split does not depend on the run). A
    recorded path is read only while it holds what the model records of it
    (:func:`scratchnet.data.recorded.check_recorded`); else a DatasetError asks for ``--data``."""
    test, fraction = source.get("test"), source.get("test_fraction")
    if isinstance(test, str):
        return load_labelled(check_recorded(test, source.get("test_fingerprint"), "its test data"), layout, class_names)
    if type(fraction) not in (int, float) or not fraction:
        raise DatasetError("the model does not record a test set; give the test data with --data")
    path = check_recorded(source.get("path"), source.get("fingerprint"), "its training data")
    return _held_out(path, float(fraction), layout, class_names)


def held_out_rows(
    path: str | os.PathLike[str], layout: Layout, source: Mapping[str, Any], class_names: Sequence[str]
) -> Dataset | None:
    """The test set of ``path`` when it is the very file (or folder) a model was trained on, with a
    part held out: its size and SHA-256 match the ``fingerprint`` the model's ``source`` records, and
    the model records a ``test_fraction`` (no ``--test`` file). Then only those held-out rows are a
    fair test; None for any other file (every row of it is a test sample)."""
    fraction = source.get("test_fraction")
    if source.get("test") is not None or type(fraction) not in (int, float) or not fraction:
        return None
    try:
        check_recorded(os.fspath(path), source.get("fingerprint"), "its training data")
    except DatasetError:  # not that file (or not recorded): an ordinary test file
        return None
    return _held_out(os.fspath(path), float(fraction), layout, class_names)


def _held_out(path: str, fraction: float, layout: Layout, class_names: Sequence[str]) -> Dataset:
    """The rows of ``path`` that a ``fraction`` split holds out (:func:`stratified_split`), as a test set."""
    data = _load_data(path, None, fraction, layout.options, None, fingerprinted=False)
    if data.class_names != tuple(class_names) or Layout.of(data).shape != layout.shape:
        raise DatasetError(
            f"{shown_path(path)} has changed since the model was trained on it; give the test data with --data"
        )
    return Dataset(
        data.name,
        data.train_images[:0],
        data.train_labels[:0],
        data.test_images,
        data.test_labels,
        data.class_names,
        scale=data.scale,
        source=data.source,
    )


# ---- samples without labels, to predict ----


@dataclass(frozen=True, eq=False)
class Unlabelled:
    """Samples to predict: ``x`` as a Dataset holds them, ``ids`` naming each (a CSV's row number
    from 1, a picture's path), and whether the file is in Kaggle's digit-recognizer layout (the
    columns ``pixel0`` ... ``pixel783``), whose submissions are ``ImageId,Label``."""

    x: npt.NDArray[Any]
    ids: list[str]
    kaggle: bool
    resized: int = 0


def load_unlabelled(path: str | os.PathLike[str], layout: Layout) -> Unlabelled:
    """A CSV file's rows read as ``layout`` says, with or without a label column (one is left out)."""
    samples = read_samples(path, layout.options, layout, labelled=False)
    columns = samples.source.get("columns", [])
    kaggle = list(columns) == [f"pixel{k}" for k in range(len(columns))] and len(columns) == MNIST_SIDE**2
    return Unlabelled(samples.x, [str(k + 1) for k in range(len(samples.x))], kaggle)


def load_pictures(files: Sequence[str | os.PathLike[str]], layout: Layout) -> Unlabelled:
    """Pictures read for a model that takes ``layout`` images: in its channels, resized to its size."""
    if layout.kind != "image":
        raise DatasetError(f"the model takes {layout.describe()}, not pictures; give its rows with --csv FILE")
    paths = [Path(f) for f in files]
    if not paths:
        raise DatasetError("no pictures to predict")
    size = (layout.shape[-2], layout.shape[-1])
    images, _, _, resized = read_pictures(paths, layout.channels, size, resize=True)
    x = images[:, 0] if layout.channels == 1 else images
    if layout.scale == 1.0:
        x = (x / np.float32(255.0)).astype(np.float32)
    return Unlabelled(x, [os.fspath(p) for p in paths], kaggle=False, resized=resized)
