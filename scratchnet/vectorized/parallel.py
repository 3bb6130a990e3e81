"""Threads for the optimizers' elementwise updates (spec/math.md, section 8).

NumPy runs each elementwise operation on one core. An optimizer's update is elementwise, so a flat
step on many parameters is split into contiguous chunks that threads update at the same time (NumPy
releases the GIL inside its loops). Every element goes through the same operations in the same order
whatever the split, so the result is bit-identical for any number of threads.

The number of threads follows the BLAS's (``OPENBLAS_NUM_THREADS``, else ``OMP_NUM_THREADS``, else
the cores this process may use), or :func:`set_threads`. It is 1 when OpenBLAS's idle threads spin
long after each matrix product (``OPENBLAS_THREAD_TIMEOUT`` unset or above 20 when NumPy was
loaded): they then hold the cores, and an optimizer thread waiting for a core is slower than none.
The ``scratchnet`` command sets it to 20 (``scratchnet.cli.shorten_openblas_spin``); a library user
sets it before importing NumPy (docs/performance.md). It is 1 too when NumPy's BLAS is not
OpenBLAS (MKL, Accelerate), whose idle threads were not measured here.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

from scratchnet.core.errors import ConfigError

# Below this many elements per chunk, handing a chunk to another thread costs about as much as it
# saves, so small networks (784-128-10 has 101,770 parameters) step in one thread.
MIN_CHUNK = 1 << 16
ALIGN = 16  # chunk boundaries at multiples of 16 elements: whole 64-byte cache lines of float32

_threads: int | None = None  # set_threads(), or default_threads() read on first use
_pool: ThreadPoolExecutor | None = None
_pool_workers = 0


def openblas_spin_short() -> bool:
    """Whether OpenBLAS's idle threads stop spinning soon after a product: OPENBLAS_THREAD_TIMEOUT is
    set to 1..20 (OpenBLAS read it when NumPy was loaded; setting it later has no effect, which is
    the user's to avoid: docs/performance.md)."""
    value = os.environ.get("OPENBLAS_THREAD_TIMEOUT", "").strip()
    return value.isdigit() and 0 < int(value) <= 20


def default_threads() -> int:
    """The BLAS's thread count from the environment, else the usable cores; 1 if OpenBLAS spins."""
    if not openblas_spin_short() or not numpy_uses_openblas():
        return 1
    for variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        value = os.environ.get(variable, "").strip()
        if value.isdigit() and int(value) > 0:
            return int(value)
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def numpy_uses_openblas() -> bool:
    """Whether NumPy was built with OpenBLAS (as NumPy's own wheels are)."""
    import numpy as np

    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]["name"]
    except (AttributeError, KeyError, TypeError, ValueError):  # an older NumPy or another layout
        return False
    return "openblas" in str(blas).lower()


def threads() -> int:
    """How many threads an optimizer step may use."""
    global _threads
    if _threads is None:
        _threads = default_threads()  # once: it reads the environment and asks the OS (~20 us)
    return _threads


def set_threads(count: int | None) -> None:
    """Use ``count`` threads for optimizer steps from now on; ``None`` reads the default again."""
    global _threads
    if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 1):
        raise ConfigError(f"threads must be a whole number >= 1, got {count!r}")
    _threads = count


def chunks(size: int) -> list[slice]:
    """Contiguous parts of ``range(size)``, at most one per thread, each about ``MIN_CHUNK`` long or
    longer, starting at multiples of ``ALIGN`` (one part when ``size`` is too small to split)."""
    count = max(1, min(threads(), size // MIN_CHUNK))
    bounds = sorted({size * k // count // ALIGN * ALIGN for k in range(count)} | {size})
    return [slice(start, stop) for start, stop in zip(bounds, bounds[1:])] or [slice(0, 0)]


def run_all(tasks: Sequence[Callable[[], None]]) -> None:
    """Run every task, the calling thread among the workers; each thread takes the next task left, so
    a worker that starts late leaves its task to the others. Re-raises a task's error after every
    task has stopped, so no thread is still writing when this returns."""
    if len(tasks) == 1:
        tasks[0]()
        return
    waiting = deque(tasks)

    def work() -> None:
        while True:
            try:
                task = waiting.popleft()  # deque.popleft is atomic: no two threads get one task
            except IndexError:
                return
            task()

    helpers: list[Future[None]] = [pool(len(tasks) - 1).submit(work) for _ in range(len(tasks) - 1)]
    error: BaseException | None = None
    try:
        work()
    except BaseException as raised:  # still wait for the helpers before raising
        waiting.clear()
        error = raised
    for helper in helpers:
        try:
            helper.result()
        except BaseException as raised:
            waiting.clear()
            error = error or raised
    if error is not None:
        raise error


def pool(workers: int) -> ThreadPoolExecutor:
    """The process's worker threads, started on first use (and again if more are needed)."""
    global _pool, _pool_workers
    if _pool is None or _pool_workers < workers:
        if _pool is not None:
            _pool.shutdown(wait=True)
        _pool, _pool_workers = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="scratchnet"), workers
    return _pool


def _forget_pool() -> None:
    """A forked child has none of its parent's threads: start a new pool there when needed."""
    global _pool, _pool_workers
    _pool, _pool_workers = None, 0


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)
