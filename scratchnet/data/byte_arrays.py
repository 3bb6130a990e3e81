"""Unsigned bytes of any shape in plain Python: MNIST's images and labels where NumPy is not installed.

:class:`ByteArray` is the few things the loops backend's training path asks of a dataset's arrays: its
``shape``, ``ndim`` and length, a sample (``a[i]``), a run of samples without a copy (``a[i:j]``), the
samples of a batch (``a[[5, 2, 9]]``: a copy), and the values as nested lists (``tolist``). The bytes
stay one block (a ``memoryview`` of the file's payload), so 60,000 MNIST images take their 47 MB once.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any

Row = int | list[Any]


class ByteArray:
    """A read-only C-order array of unsigned bytes: ``data`` holds ``prod(shape)`` of them."""

    def __init__(self, data: bytes | bytearray | memoryview, shape: Sequence[int]) -> None:
        view = memoryview(data).cast("B") if not isinstance(data, memoryview) else data
        self.shape = tuple(int(n) for n in shape)
        if len(view) != math.prod(self.shape):
            raise ValueError(f"{len(view)} bytes cannot have the shape {self.shape}")
        self._data = view

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        """The number of values."""
        return len(self._data)

    @property
    def row(self) -> int:
        """Bytes per sample (per entry along the first axis)."""
        return math.prod(self.shape[1:])

    def __len__(self) -> int:
        return self.shape[0]

    def __repr__(self) -> str:
        return f"ByteArray(shape={self.shape})"

    def __getitem__(self, index: int | slice | Sequence[int]) -> Any:
        if isinstance(index, slice):
            start, stop, step = index.indices(len(self))
            if step != 1:
                return self.take(range(start, stop, step))
            stop = max(start, stop)
            return ByteArray(self._data[start * self.row : stop * self.row], (stop - start, *self.shape[1:]))
        if isinstance(index, int):
            if not -len(self) <= index < len(self):
                raise IndexError(f"index {index} is out of bounds for {len(self)} samples")
            index %= len(self)
            if self.ndim == 1:
                return self._data[index]
            return ByteArray(self._data[index * self.row : (index + 1) * self.row], self.shape[1:])
        return self.take(index)

    def take(self, indices: Sequence[int]) -> ByteArray:
        """The samples at ``indices``, in that order, copied into one new block."""
        row, data, count = self.row, self._data, len(self)
        taken = bytearray()
        for i in indices:
            if not -count <= i < count:
                raise IndexError(f"index {i} is out of bounds for {count} samples")
            start = (i % count) * row
            taken += data[start : start + row]
        return ByteArray(taken, (len(indices), *self.shape[1:]))

    def flat_rows(self) -> Iterator[bytes]:
        """Each sample's bytes, in C order."""
        row, data = self.row, self._data
        for start in range(0, len(data), row):
            yield bytes(data[start : start + row])

    def tolist(self) -> list[Any]:
        """The values as nested lists of ints (as ``numpy.ndarray.tolist`` gives them)."""
        values: list[Any] = list(self._data)
        for size in reversed(self.shape[1:]):
            values = [values[k : k + size] for k in range(0, len(values), size)]
        return values
