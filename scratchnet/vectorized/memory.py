"""Memory for the layers of image batches: arrays kept from batch to batch, passes over large arrays
made a cache-sized block at a time on the threads of :mod:`scratchnet.vectorized.parallel`, and the
channels-first, batch-last layout (CHWN) those layers keep their arrays in
(scratchnet/vectorized/convolution.py says why).
"""

from __future__ import annotations

import math
import sys
from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np

from scratchnet.vectorized import parallel
from scratchnet.vectorized.tensor import Array

# Passes over an array larger than the cache (a first convolution's output, 11 MB for a batch of
# 128) each cost a trip to memory, so a layer that makes several passes makes them one block of
# channels at a time, each block about this many values (1 MB of float32), which stays in cache.
BLOCK_VALUES = 1 << 18
# Results larger than this many values are not kept for reuse (see Workspace.output).
KEEP_VALUES = 1 << 24


def as_chwn(x: Array, dtype: np.dtype[Any]) -> Array:
    """The batch ``x`` ``(N, C, H, W)`` as a contiguous ``(C, H, W, N)`` array of ``dtype``: a view
    when it lies so in memory (as this backend's layers give it), else a copy."""
    chwn: Array = np.ascontiguousarray(x.transpose(1, 2, 3, 0), dtype=dtype)
    return chwn


def storage_order(x: Array) -> tuple[int, ...] | None:
    """The order of axes in which ``x`` lies contiguously in memory (``x.transpose(order)`` is
    C-contiguous), or None when it has gaps: (0, 1) for an ordinary batch, (1, 2, 3, 0) for a CHWN one."""
    order = tuple(sorted(range(x.ndim), key=lambda axis: -x.strides[axis]))
    return order if x.transpose(order).flags.c_contiguous else None


def result_like(x: Array, order: tuple[int, ...], work: Workspace, name: str) -> tuple[Array, Array]:
    """A result array of ``x``'s shape and dtype lying in memory in axis ``order`` (from ``work``'s
    ``output``), and its flat view in memory order."""
    result = work.output(name, tuple(x.shape[axis] for axis in order), x.dtype)
    inverse = tuple(int(axis) for axis in np.argsort(order))
    return result.transpose(inverse), result.reshape(-1)


def flat_in(x: Array, order: tuple[int, ...]) -> Array:
    """``x``'s values as a flat array in the memory order of an array lying in axis ``order``: a
    view when ``x`` lies so itself, else a copy."""
    return np.ascontiguousarray(x.transpose(order)).reshape(-1)


def in_blocks(task: Callable[[slice], None], items: int, values_per_item: int, block_values: int | None = None) -> None:
    """Run ``task`` on consecutive blocks of ``range(items)`` (slices), each about ``block_values``
    values (``values_per_item`` per item: the channels of an image batch, or 1 for a flat array;
    a task of many passes takes smaller blocks, so that its temporaries stay in the core's cache; the
    default is ``BLOCK_VALUES``, read at each call),
    on the threads of :mod:`scratchnet.vectorized.parallel` when there is enough work for more
    than one. Each thread takes the next block left, so one that starts late (its core still
    held by the BLAS's spinning threads after a product) does less. Every value goes through the
    same operations whatever the split, so the results are the same for any thread count."""
    per_block = max(1, (block_values or BLOCK_VALUES) // max(1, values_per_item))
    blocks = deque(slice(start, min(start + per_block, items)) for start in range(0, items, per_block))
    count = min(parallel.threads(), len(blocks), max(1, items * values_per_item // parallel.MIN_CHUNK))

    def work() -> None:
        while True:
            try:
                block = blocks.popleft()  # atomic: no two threads get one block
            except IndexError:
                return
            task(block)

    parallel.run_all([work] * count)


def block_per_thread(values: int, smallest: int, largest: int = BLOCK_VALUES) -> int:
    """A block size for :func:`in_blocks` that gives each thread one block of a flat array of
    ``values``, within ``smallest`` and ``largest`` values a block. A task of many short passes
    runs on threads at once only when each pass lasts long enough: a pass of a few microseconds
    waits about as long for the interpreter's lock as it computes (measured: two threads each
    making a chain of passes over 16,384 float32 values ran no faster than one, over 196,608 1.5x)."""
    return max(smallest, min(largest, -(-values // parallel.threads())))


class Workspace:
    """A layer's arrays kept from batch to batch, reallocated only when a shape or dtype changes.

    ``get`` gives work arrays that never leave the layer (the im2col matrix, the padded input).
    ``output`` gives arrays for results the layer returns, which a caller may keep: the last one
    of a name is reused only when nothing but this workspace holds it any more (CPython's reference
    count says so), so no caller ever sees a result change. That spares the process from faulting in
    fresh pages for every large result: glibc hands large freed blocks back to the system, and
    touching 11 MB of new pages costs about as much as a pass of arithmetic over them.
    """

    def __init__(self) -> None:
        self.arrays: dict[str, Array] = {}
        self.outputs: dict[str, list[Array]] = {}

    def get(self, name: str, shape: tuple[int, ...], dtype: np.dtype[Any], fill: float | None = None) -> Array:
        """The work array ``name`` of this shape; a new one (filled with ``fill``, if given) when the
        kept one does not fit. Filled parts that the caller never writes keep their values."""
        kept = self.arrays.get(name)
        if kept is None or kept.shape != shape or kept.dtype != dtype:
            kept = np.empty(shape, dtype) if fill is None else np.full(shape, fill, dtype)
            self.arrays[name] = kept
        return kept

    def output(self, name: str, shape: tuple[int, ...], dtype: np.dtype[Any]) -> Array:
        """An array for a result, of undefined values: a kept one that fits and that nothing but this
        workspace refers to (no view of it, no caller), else a new one, kept in place of the oldest.
        Two are kept per name, since the next layer holds the last result until its next forward."""
        if math.prod(shape) > KEEP_VALUES:  # a large inference batch, say: not worth holding on to
            self.outputs.pop(name, None)
            large: Array = np.empty(shape, dtype)
            return large
        kept = self.outputs.setdefault(name, [])
        for index in range(len(kept)):
            # the count first: holding kept[index] in a variable would add a reference
            free = _FREE is not None and _references(kept, index) <= _FREE
            if free and kept[index].shape == shape and kept[index].dtype == dtype:
                return kept[index]
        fresh: Array = np.empty(shape, dtype)
        kept[:] = [*kept[-1:], fresh]
        return fresh


def _references(kept: list[Array], index: int) -> int:
    """The reference count of ``kept[index]`` as this function sees it."""
    return sys.getrefcount(kept[index])


# What an array that only a list holds shows through _references: measured, not assumed, for the
# count an interpreter reports for its own references differs between Python versions; None where
# there are no reference counts (PyPy), and then every result is a new array.
_FREE = _references([np.empty(0)], 0) if hasattr(sys, "getrefcount") else None
