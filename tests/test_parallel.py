"""Threads for the optimizers' flat steps: how the flat arrays are split, how the parts are run, and
how many threads there are by default. That a threaded step gives the same numbers as a one-thread
step is in test_flat_storage.py."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scratchnet.core.errors import ConfigError
from scratchnet.vectorized import parallel

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def default_threads_after() -> Iterator[None]:
    yield
    parallel.set_threads(None)


@given(size=st.integers(1, 10**6), threads=st.integers(1, 8), min_chunk=st.sampled_from([1, 16, 1000, 1 << 16]))
def test_chunks_cover_the_array_in_order_aligned_and_no_smaller_than_the_minimum(
    size: int, threads: int, min_chunk: int
) -> None:
    saved = parallel.MIN_CHUNK
    parallel.MIN_CHUNK = min_chunk
    parallel.set_threads(threads)
    try:
        parts = parallel.chunks(size)
    finally:
        parallel.MIN_CHUNK = saved
        parallel.set_threads(None)
    assert parts[0].start == 0 and parts[-1].stop == size
    assert all(a.stop == b.start for a, b in zip(parts, parts[1:]))  # contiguous, no gap, no overlap
    assert all(part.start % parallel.ALIGN == 0 and part.stop > part.start for part in parts)
    assert 1 <= len(parts) <= threads
    if len(parts) > 1:
        assert all(part.stop - part.start >= min(min_chunk, parallel.ALIGN) for part in parts)
        assert size >= len(parts) * min_chunk


def test_a_small_network_steps_in_one_part_and_a_large_one_in_one_part_per_thread() -> None:
    parallel.set_threads(2)
    assert parallel.chunks(784 * 128 + 128 + 128 * 10 + 10) == [slice(0, 101_770)]
    large = 784 * 512 + 512 + 512 * 256 + 256 + 256 * 10 + 10
    assert parallel.chunks(large) == [slice(0, 267_904), slice(267_904, large)]  # 535,818 // 2, down to 16


def test_run_all_runs_every_task_once_on_two_threads_at_the_same_time() -> None:
    parallel.set_threads(2)
    meeting = threading.Barrier(2, timeout=30)  # broken unless two tasks wait at it together
    ran: list[tuple[int, int]] = []

    def task(k: int) -> None:
        meeting.wait()
        ran.append((k, threading.get_ident()))

    parallel.run_all([lambda: task(0), lambda: task(1)])
    assert sorted(k for k, _ in ran) == [0, 1]
    assert len({ident for _, ident in ran}) == 2


def test_run_all_with_more_tasks_than_threads_and_a_single_task() -> None:
    done: list[int] = []
    parallel.run_all([lambda k=k: done.append(k) for k in range(7)])  # type: ignore[misc]
    assert sorted(done) == list(range(7))
    parallel.run_all([lambda: done.append(99)])
    assert done[-1] == 99


@pytest.mark.parametrize("failing", [0, 1])
def test_a_task_error_is_raised_after_every_started_task_has_stopped(failing: int) -> None:
    started, finished = threading.Event(), threading.Event()

    def slow() -> None:
        started.set()
        time.sleep(0.2)
        finished.set()

    def fail() -> None:
        raise ValueError("task failed")

    tasks = [fail, slow] if failing == 0 else [slow, fail]
    with pytest.raises(ValueError, match="task failed"):
        parallel.run_all(tasks)
    assert finished.is_set() or not started.is_set()  # never left running
    if failing == 1:
        assert finished.is_set()  # the calling thread took the slow task first


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_set_threads_rejects_what_is_not_a_positive_whole_number(bad: object) -> None:
    with pytest.raises(ConfigError, match="threads"):
        parallel.set_threads(bad)  # type: ignore[arg-type]


def test_numpy_here_uses_openblas() -> None:
    assert parallel.numpy_uses_openblas()  # NumPy's wheels; the figures in the README are with it


def test_default_threads_follow_the_blas_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parallel, "openblas_spin_short", lambda: True)
    monkeypatch.setattr(parallel, "numpy_uses_openblas", lambda: True)
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "3")
    monkeypatch.setenv("OMP_NUM_THREADS", "5")
    assert parallel.default_threads() == 3
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "many")  # OpenBLAS ignores it too
    assert parallel.default_threads() == 5
    monkeypatch.delenv("OPENBLAS_NUM_THREADS")
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert parallel.default_threads() == len(os.sched_getaffinity(0))
    monkeypatch.setattr(parallel, "numpy_uses_openblas", lambda: False)  # another BLAS: its idle threads unmeasured
    assert parallel.default_threads() == 1
    monkeypatch.setattr(parallel, "numpy_uses_openblas", lambda: True)
    monkeypatch.setattr(parallel, "openblas_spin_short", lambda: False)  # an optimizer thread would wait for a core
    assert parallel.default_threads() == 1


def test_threads_are_read_once_and_set_threads_overrides_them(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parallel, "openblas_spin_short", lambda: True)
    monkeypatch.setattr(parallel, "numpy_uses_openblas", lambda: True)
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "3")
    parallel.set_threads(None)
    assert parallel.threads() == 3
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "2")
    assert parallel.threads() == 3  # read on first use, as OpenBLAS reads its own
    parallel.set_threads(4)
    assert parallel.threads() == 4
    parallel.set_threads(None)
    assert parallel.threads() == 2


def import_and_report(code: str, env_value: str | None) -> str:
    env = {key: value for key, value in os.environ.items() if key != "OPENBLAS_THREAD_TIMEOUT"}
    if env_value is not None:
        env["OPENBLAS_THREAD_TIMEOUT"] = env_value
    code += (
        "; from scratchnet.vectorized import parallel"
        "; print(os.environ.get('OPENBLAS_THREAD_TIMEOUT'), parallel.openblas_spin_short())"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT, check=True)
    return done.stdout.strip()


def test_importing_scratchnet_changes_no_environment_variable() -> None:
    assert import_and_report("import os, scratchnet", None) == "None False"
    assert import_and_report("import os, scratchnet", "16") == "16 True"  # the user's own setting


def test_the_command_line_shortens_openblas_spin_unless_numpy_came_first_or_the_user_chose() -> None:
    run_cli = "import os, scratchnet.cli; scratchnet.cli.shorten_openblas_spin()"
    assert import_and_report(run_cli, None) == "20 True"
    assert (
        import_and_report("import os, numpy, scratchnet.cli; scratchnet.cli.shorten_openblas_spin()", None)
        == "None False"
    )  # too late: OpenBLAS has read it
    assert import_and_report(run_cli, "28") == "28 False"  # the user's value wins
    assert import_and_report(run_cli, "0") == "0 False"  # OpenBLAS's default then
    done = subprocess.run(
        [sys.executable, "-c", "import scratchnet.cli, sys; print('numpy' in sys.modules)"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    )
    assert done.stdout.strip() == "False"  # so main() runs before any NumPy import
