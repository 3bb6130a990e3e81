"""The array types of the vectorized backend and the shape checks every part of it shares.

A batch is an array with the batch axis first: ``(batch, features)`` for flat samples,
``(batch, channels, height, width)`` for images. A Dense weight is ``(out_features, in_features)``.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any, TypeAlias

import numpy as np
import numpy.typing as npt

from scratchnet.core.architecture import DTYPES
from scratchnet.core.errors import ConfigError, LabelError, ShapeError

Array: TypeAlias = npt.NDArray[np.floating[Any]]
Labels: TypeAlias = npt.NDArray[np.intp]


def check_dtype(dtype: str) -> np.dtype[Any]:
    """The NumPy dtype for "float32" or "float64"; anything else is a ConfigError."""
    if str(dtype) not in DTYPES:
        raise ConfigError(f"dtype must be float32 or float64, got {dtype!r}")
    return np.dtype(str(dtype))


def as_batch(inputs: Any, sample_shape: tuple[int, ...] | None, dtype: np.dtype[Any], where: str) -> Array:
    """``inputs`` as an array of ``dtype``, checking it is a non-empty batch of samples of
    ``sample_shape`` (of any shape, at least one axis, when None)."""
    try:
        batch = np.asarray(inputs)
        if batch.dtype != dtype:
            batch = batch.astype(dtype)
    except (ValueError, TypeError):
        raise ShapeError(f"{where}: the inputs are not a rectangular batch of numbers") from None
    if batch.ndim >= 1 and batch.shape[0] == 0:
        raise ShapeError(f"{where}: the batch is empty; give at least one sample")
    if sample_shape is None:
        if batch.ndim < 2:
            raise ShapeError(f"{where}: expected a batch of samples (batch first), got shape {batch.shape}")
        return batch
    if batch.shape[1:] != tuple(sample_shape):
        if len(sample_shape) == 1 and batch.ndim == 2:
            raise ShapeError(f"{where}: samples have {batch.shape[1]} features, expected {sample_shape[0]}")
        expected = ("batch", *sample_shape)
        raise ShapeError(f"{where}: expected a batch of shape ({', '.join(map(str, expected))}), got {batch.shape}")
    return batch


def check_labels(labels: Sequence[int] | npt.NDArray[Any], batch_size: int, classes: int, where: str) -> Labels:
    """Labels as an integer array, one per sample, each a valid class (0 or 1 for a single output)."""
    array = np.asarray(labels)
    if array.ndim != 1 or array.shape[0] != batch_size:
        raise ShapeError(f"{where}: labels of shape {array.shape} for a batch of {batch_size} samples")
    if array.dtype.kind not in "iu":
        whole = np.isfinite(array) & (np.mod(array, 1) == 0) if array.dtype.kind == "f" else np.zeros(array.shape, bool)
        if not whole.all():
            n = int(np.flatnonzero(~whole)[0])
            raise LabelError(f"{where}: label {n} is {array[n]!r}, not an integer")
    upper = 2 if classes == 1 else classes
    if array.min() < 0 or array.max() >= upper:  # two reductions; find the culprit only on failure
        n = int(np.flatnonzero((array < 0) | (array >= upper))[0])
        raise LabelError(f"{where}: label {n} is {int(array[n])}, outside 0..{upper - 1}")
    return array.astype(np.intp, copy=False)


def copy_params(where: str, own: Mapping[str, Array], named: Mapping[str, Any]) -> None:
    """Copy every array of ``own`` in from ``named`` (arrays of either backend or nested lists),
    converting to the layer's dtype, in place (the network may hold views of them); a one-line
    ShapeError when a name is missing or a shape does not fit."""
    missing = sorted(set(own) - set(named))
    if missing:
        raise ShapeError(f"{where}.set_params: missing {missing}")
    given = {name: np.asarray(named[name]) for name in own}
    wrong = [
        f"{name} {given[name].shape} does not fit {own[name].shape}"
        for name in own
        if given[name].shape != own[name].shape
    ]
    if wrong:
        raise ShapeError(f"{where}.set_params: {', '.join(wrong)}")
    for name, target in own.items():
        if given[name] is not target:
            np.copyto(target, given[name], casting="unsafe")


def as_tokens(inputs: Any, vocabulary: int, longest: int | None, where: str) -> Labels:
    """``inputs`` as an (N, T) integer array of token ids in 0..vocabulary-1, T at most ``longest``:
    a one-line LabelError naming the first bad id, or ShapeError, otherwise (spec/math.md, section 16)."""
    try:
        ids = np.asarray(inputs)
    except (ValueError, TypeError):
        raise ShapeError(f"{where}: the token ids are not a rectangular batch (N, T)") from None
    if ids.ndim != 2 or 0 in ids.shape:
        raise ShapeError(f"{where}: expected a non-empty batch of token id sequences (N, T), got shape {ids.shape}")
    if longest is not None and ids.shape[1] > longest:
        raise ShapeError(f"{where}: sequences of {ids.shape[1]} tokens, but the network reads at most {longest}")
    if ids.dtype.kind not in "iu":
        whole = np.isfinite(ids) & (np.mod(ids, 1) == 0) if ids.dtype.kind == "f" else np.zeros(ids.shape, bool)
        if not whole.all():
            n, t = (int(i) for i in np.argwhere(~whole)[0])
            raise LabelError(f"{where}: token {ids[n, t]!r} (sample {n}, position {t}) is not an integer id")
    if ids.min() < 0 or ids.max() >= vocabulary:
        n, t = (int(i) for i in np.argwhere((ids < 0) | (ids >= vocabulary))[0])
        raise LabelError(
            f"{where}: token id {int(ids[n, t])} (sample {n}, position {t}) "
            f"is outside the vocabulary 0..{vocabulary - 1}"
        )
    return ids.astype(np.intp, copy=False)


def check_targets(labels: Any, shape: tuple[int, int], classes: int, ignore_index: int, where: str) -> Labels:
    """Targets of a sequence, an (N, T) integer array: each a class in 0..classes-1 or
    ``ignore_index`` (a padded position the loss skips, eq. 16.3)."""
    array = np.asarray(labels)
    if array.shape != shape:
        raise ShapeError(f"{where}: targets of shape {array.shape} for outputs of {shape[0]} x {shape[1]} positions")
    if array.dtype.kind not in "iu":
        whole = np.isfinite(array) & (np.mod(array, 1) == 0) if array.dtype.kind == "f" else np.zeros(shape, bool)
        if not whole.all():
            n, t = (int(i) for i in np.argwhere(~whole)[0])
            raise LabelError(f"{where}: target {array[n, t]!r} (sample {n}, position {t}) is not an integer")
    bad = ((array < 0) | (array >= classes)) & (array != ignore_index)
    if bad.any():
        n, t = (int(i) for i in np.argwhere(bad)[0])
        raise LabelError(
            f"{where}: target {int(array[n, t])} (sample {n}, position {t}) is outside 0..{classes - 1} "
            f"and is not the ignore_index {ignore_index}"
        )
    return array.astype(np.intp, copy=False)


# Sums along the short axes of a transformer's arrays (a row of 64 scores, of 128 features) by a
# matrix product with a vector of ones: BLAS's loop is three to five times faster there than NumPy's
# sum(axis=...), which works a short row at a time (measured on (768, 128) and (12, 4, 64, 64) arrays).


def row_sums(x: Array) -> Array:
    """The sum of each row of ``x``'s last axis, shaped to broadcast back over it (last axis 1)."""
    sums: Array = (x.reshape(-1, x.shape[-1]) @ ones(x.shape[-1], x.dtype)).reshape(*x.shape[:-1], 1)
    return sums


def column_sums(x: Array, out: Array) -> Array:
    """The sum over the rows of the matrix ``x`` (rows, columns) of each column, into ``out``."""
    result: Array = np.matmul(ones(x.shape[0], x.dtype), x, out=out)
    return result


@functools.lru_cache(maxsize=64)
def ones(length: int, dtype: np.dtype[Any]) -> Array:
    """A read-only vector of ``length`` ones, made once for each length and dtype (a step asks for
    the same few dozens of times)."""
    vector: Array = np.ones(length, dtype)
    vector.setflags(write=False)
    return vector
