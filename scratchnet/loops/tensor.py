"""The plain-Python data types of the loops backend and the checks every layer shares.

A batch is a list of samples and a sample is a list of floats: ``batch[n][i]`` is feature ``i`` of
sample ``n``. A parameter is a list of floats (a bias) or a list of rows (a weight matrix, one row per
neuron). Nothing here needs NumPy.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeAlias, Union

from scratchnet.errors import LabelError, ShapeError

Vector: TypeAlias = list[float]
Batch: TypeAlias = list[list[float]]
Matrix: TypeAlias = list[list[float]]
Param: TypeAlias = Union[list[float], list[list[float]]]


def as_batch(inputs: Sequence[Sequence[float]], width: int | None, where: str) -> Batch:
    """Copy ``inputs`` into a batch of Python floats, checking it is non-empty and rectangular."""
    if len(inputs) == 0:
        raise ShapeError(f"{where}: the batch is empty; give at least one sample")
    batch = [[float(value) for value in sample] for sample in inputs]
    expected = len(batch[0]) if width is None else width
    for n, sample in enumerate(batch):
        if len(sample) != expected:
            raise ShapeError(f"{where}: sample {n} has {len(sample)} features, expected {expected}")
    return batch


def check_labels(labels: Sequence[int], batch_size: int, classes: int, where: str) -> list[int]:
    """Labels as a list of ints, one per sample, each a valid class (0 or 1 for a single output)."""
    if len(labels) != batch_size:
        raise ShapeError(f"{where}: {len(labels)} labels for a batch of {batch_size} samples")
    upper = 2 if classes == 1 else classes
    checked = []
    for n, label in enumerate(labels):
        if int(label) != label:
            raise LabelError(f"{where}: label {n} is {label!r}, not an integer")
        if not 0 <= int(label) < upper:
            raise LabelError(f"{where}: label {n} is {int(label)}, outside 0..{upper - 1}")
        checked.append(int(label))
    return checked


def shape_of(param: Param) -> tuple[int, ...]:
    """(rows, columns) of a weight matrix, (length,) of a bias vector."""
    if param and isinstance(param[0], list):
        return (len(param), len(param[0]))
    return (len(param),)


def flatten(param: Param) -> list[float]:
    """The elements of a parameter in row-major (C) order, as one list."""
    flat: list[float] = []
    for item in param:
        if isinstance(item, list):
            flat.extend(map(float, item))
        else:
            flat.append(float(item))
    return flat


def reshape(flat: Sequence[float], shape: tuple[int, ...]) -> Param:
    """The inverse of :func:`flatten`: a bias vector or a matrix of ``shape``."""
    if len(shape) == 1:
        return list(map(float, flat))
    rows, columns = shape
    return [list(map(float, flat[r * columns:(r + 1) * columns])) for r in range(rows)]
