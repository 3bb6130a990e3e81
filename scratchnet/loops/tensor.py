"""The plain-Python data types of the loops backend and the shape helpers every part of it shares.

A tensor is a float or a nested list of floats of any depth, in C order: a batch of flat samples is
``batch[n][i]`` (feature ``i`` of sample ``n``), a batch of images ``batch[n][c][h][w]``. A parameter
is a tensor too: a bias ``(out,)``, a Dense weight ``(out, in)`` (one row per neuron). Nothing here
needs NumPy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import chain
from typing import Any, TypeAlias

from scratchnet.core.errors import LabelError, ShapeError

Vector: TypeAlias = list[float]
Matrix: TypeAlias = list[list[float]]
Batch: TypeAlias = list[Any]
"""A list of samples, each a float list or a nested list (an image's channels of rows)."""
Param: TypeAlias = list[Any]
"""A parameter: a nested list of floats of the parameter's shape."""
Shape: TypeAlias = tuple[int, ...]


def shape_of(tensor: Any) -> Shape:
    """The shape of a nested list, read along its first elements: ``(rows, columns)`` of a matrix,
    ``(length,)`` of a vector, ``()`` of a float. :func:`as_tensor` checks that every element agrees."""
    dims: list[int] = []
    while isinstance(tensor, (list, tuple)):
        dims.append(len(tensor))
        if not tensor:
            break
        tensor = tensor[0]
    return tuple(dims)


def flatten(tensor: Any) -> list[float]:
    """The elements of a nested list in row-major (C) order, as one list of floats."""
    if not isinstance(tensor, (list, tuple)):
        return [float(tensor)]
    if not tensor or not isinstance(tensor[0], (list, tuple)):
        return list(map(float, tensor))
    if all(row and not isinstance(row[0], (list, tuple)) for row in tensor):  # a matrix: row after row
        return list(map(float, chain.from_iterable(tensor)))
    flat: list[float] = []
    for item in tensor:
        flat.extend(flatten(item))
    return flat


def reshape(flat: Sequence[float], shape: Shape) -> Any:
    """The inverse of :func:`flatten`: the nested list of ``shape`` holding ``flat`` in C order."""
    if len(shape) <= 1:
        return list(map(float, flat))
    if len(shape) == 2:  # a matrix: one row after another
        return [list(map(float, flat[k * shape[1] : (k + 1) * shape[1]])) for k in range(shape[0])]
    step = math.prod(shape[1:])
    return [reshape(flat[k * step : (k + 1) * step], shape[1:]) for k in range(shape[0])]


def as_tensor(value: Any, shape: Shape, where: str) -> Any:
    """A copy of ``value`` (nested lists, tuples, anything with ``tolist``) as nested lists of floats,
    checking that it has exactly ``shape``."""
    if hasattr(value, "tolist"):
        value = value.tolist()
    if not shape:
        if isinstance(value, (list, tuple)):
            raise ShapeError(f"{where}: expected a number, got a list")
        return float(value)
    if not isinstance(value, (list, tuple)) or len(value) != shape[0]:
        length = len(value) if isinstance(value, (list, tuple)) else "no"
        raise ShapeError(f"{where}: expected {shape[0]} values along an axis of shape {shape}, got {length}")
    if len(shape) == 1:
        return list(map(float, value))
    if len(shape) == 2 and all(isinstance(row, (list, tuple)) and len(row) == shape[1] for row in value):
        return [list(map(float, row)) for row in value]  # a matrix of the right shape: its rows as floats
    return [as_tensor(item, shape[1:], where) for item in value]


def as_batch(inputs: Sequence[Any], sample_shape: Shape | None, where: str) -> Batch:
    """Copy ``inputs`` into a batch of Python floats, checking it is non-empty and that every sample
    has ``sample_shape`` (the first sample's shape when None)."""
    if hasattr(inputs, "tolist"):
        inputs = inputs.tolist()
    if len(inputs) == 0:
        raise ShapeError(f"{where}: the batch is empty; give at least one sample")
    expected = shape_of(inputs[0]) if sample_shape is None else sample_shape
    if len(expected) == 1:  # flat samples, the common case: one comprehension
        batch = [list(map(float, sample)) for sample in inputs]
        for n, sample in enumerate(batch):
            if len(sample) != expected[0]:
                raise ShapeError(f"{where}: sample {n} has {len(sample)} features, expected {expected[0]}")
        return batch
    return [as_tensor(sample, expected, f"{where}: sample {n}") for n, sample in enumerate(inputs)]


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


def elementwise(function: Any, *tensors: Any) -> Any:
    """``function`` applied to the matching elements of nested lists of one shape, e.g.
    ``elementwise(lambda g, m: g * m, grads, mask)``: the result has that shape too."""
    first = tensors[0]
    if first and isinstance(first[0], list):
        return [elementwise(function, *items) for items in zip(*tensors)]
    return list(map(function, *tensors))  # function(*values) for the values of each position


def is_sequence_batch(batch: Any) -> bool:
    """Whether ``batch`` is a batch of sequences, ``batch[n][t][c]`` (three axes of numbers)."""
    try:
        return isinstance(batch[0][0], (list, tuple)) and not isinstance(batch[0][0][0], (list, tuple))
    except (IndexError, TypeError):
        return False


def as_tokens(inputs: Any, vocabulary: int, longest: int | None, where: str) -> list[list[int]]:
    """``inputs`` as a batch of token id sequences ``ids[n][t]``, each id an integer in
    0..vocabulary-1, every sequence of one length T (at most ``longest``): a one-line LabelError
    naming the first bad id, or ShapeError, otherwise (spec/math.md, section 16)."""
    if hasattr(inputs, "tolist"):
        inputs = inputs.tolist()
    if not isinstance(inputs, (list, tuple)) or not inputs or not all(isinstance(s, (list, tuple)) for s in inputs):
        raise ShapeError(f"{where}: expected a non-empty batch of token id sequences (N, T)")
    length = len(inputs[0])
    if length == 0 or any(len(sequence) != length for sequence in inputs):
        raise ShapeError(f"{where}: the sequences of a batch must all have one length T >= 1")
    if longest is not None and length > longest:
        raise ShapeError(f"{where}: sequences of {length} tokens, but the network reads at most {longest}")
    ids = []
    for n, sequence in enumerate(inputs):
        row = []
        for t, value in enumerate(sequence):
            if not whole_number(value):
                raise LabelError(f"{where}: token {value!r} (sample {n}, position {t}) is not an integer id")
            if not 0 <= int(value) < vocabulary:
                raise LabelError(
                    f"{where}: token id {int(value)} (sample {n}, position {t}) "
                    f"is outside the vocabulary 0..{vocabulary - 1}"
                )
            row.append(int(value))
        ids.append(row)
    return ids


def check_targets(labels: Any, shape: tuple[int, int], classes: int, ignore_index: int, where: str) -> list[list[int]]:
    """Targets of a sequence, ``labels[n][t]``, of ``shape`` (N, T): each an integer class in
    0..classes-1 or ``ignore_index`` (a padded position the loss skips, eq. 16.3)."""
    if hasattr(labels, "tolist"):
        labels = labels.tolist()
    if len(labels) != shape[0] or any(not isinstance(row, (list, tuple)) or len(row) != shape[1] for row in labels):
        raise ShapeError(
            f"{where}: targets of shape {shape_of(labels)} for outputs of {shape[0]} x {shape[1]} positions"
        )
    checked = []
    for n, row in enumerate(labels):
        for t, label in enumerate(row):
            if not whole_number(label):
                raise LabelError(f"{where}: target {label!r} (sample {n}, position {t}) is not an integer")
            if not (0 <= int(label) < classes or int(label) == ignore_index):
                raise LabelError(
                    f"{where}: target {int(label)} (sample {n}, position {t}) is outside 0..{classes - 1} "
                    f"and is not the ignore_index {ignore_index}"
                )
        checked.append([int(label) for label in row])
    return checked


def by_sample(rows: list[Any], positions: int) -> Batch:
    """N * T rows, position by position, as a batch of N sequences of T rows each."""
    return [rows[start : start + positions] for start in range(0, len(rows), positions)]


def whole_number(value: Any) -> bool:
    """Whether ``value`` is an int, or a float with an integer value (not a bool, NaN or infinity)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return isinstance(value, int) or value.is_integer()
