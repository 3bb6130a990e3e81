"""The rows of a CSV file read so far (:mod:`scratchnet.data.tables`), held once in one growing array."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from scratchnet.core.lazy import lazy_module

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
else:
    np = lazy_module("numpy", globals(), "np")


__all__ = ["PIXEL_MAX", "RowStore"]

PIXEL_MAX = 255


class RowStore:
    """The rows read so far, in one array that grows by half when full: uint8 while every value is a
    pixel (an integer in 0..255), float32 from the first chunk that holds another value."""

    def __init__(self, columns: int) -> None:
        self.columns = columns
        self.array: npt.NDArray[Any] = np.empty((0, columns), np.uint8)
        self.rows = 0

    def add(self, block: npt.NDArray[Any]) -> None:
        """Append ``block``: uint8 pixels, or finite float32 values (which make the array float32,
        unless they are pixels too)."""
        if self.array.dtype == np.uint8 and block.dtype != np.uint8:
            if _pixels(block):
                block = block.astype(np.uint8)
            else:
                self.array = self.array.astype(np.float32)
        if self.rows + len(block) > len(self.array):
            self.reserve(max(self.rows + len(block), len(self.array) + len(self.array) // 2))
        self.array[self.rows : self.rows + len(block)] = block
        self.rows += len(block)

    def reserve(self, rows: int) -> None:
        """Room for ``rows`` rows in all."""
        if rows > len(self.array):
            bigger = np.empty((rows, self.columns), self.array.dtype)
            bigger[: self.rows] = self.array[: self.rows]
            self.array = bigger

    def values(self) -> npt.NDArray[Any]:
        """The rows read; copied when the array holds much more room than rows, so that none is kept."""
        kept = self.array[: self.rows]
        return kept.copy() if len(self.array) > self.rows + self.rows // 16 + 16 else kept


def _pixels(block: npt.NDArray[np.float32]) -> bool:
    """Whether every value of ``block`` is an integer in 0..255."""
    if block.size == 0:
        return True
    if float(block.min()) < 0.0 or float(block.max()) > PIXEL_MAX:
        return False
    return bool(np.array_equal(block, block.astype(np.uint8)))
