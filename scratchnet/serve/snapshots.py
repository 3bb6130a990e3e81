"""Time travel for the Train mode: a run's snapshots (its parameters, its optimizer's state, its
place in the loop and its curves), kept every N steps in a ring bounded by count and by bytes.

When either bound is reached the oldest snapshots go first, so the ring always holds the latest
stretch of the run. A fork restores a snapshot exactly: the same parameter arrays (the vectorized
backend's float32 values, the loops backend's float64 ones), the same optimizer state and rate.
"""

from __future__ import annotations

import copy
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np

from scratchnet.serve.api import RequestError
from scratchnet.serve.train_request import SNAPSHOT_BYTES, SNAPSHOTS_KEPT
from scratchnet.training.checkpoint import RunState


@dataclass
class Snapshot:
    """A run at one step: everything a fork needs to go on from it, and what a past state shows."""

    step: int
    epoch: float
    params: dict[str, np.ndarray[Any, Any]]
    optimizer: dict[str, Any]
    lr: float
    state: RunState
    curves: dict[str, list[Any]]
    lr_changes: list[dict[str, Any]]
    nbytes: int

    def summary(self) -> dict[str, Any]:
        losses, accuracies = self.curves.get("test_loss") or [None], self.curves.get("test_accuracy") or [None]
        return {
            "step": self.step,
            "epoch": round(self.epoch, 4),
            "test_loss": losses[-1],
            "test_accuracy": accuracies[-1],
        }


def size_of(value: Any) -> int:
    """About the bytes of the arrays in ``value`` (dicts, lists and arrays; a Python float as 8)."""
    if isinstance(value, np.ndarray):
        return int(value.nbytes)
    if isinstance(value, dict):
        return sum(size_of(item) for item in value.values())
    if isinstance(value, (list, tuple)):
        return sum(size_of(item) for item in value) + 8 * len(value)
    return 8


def take(
    step: int,
    epoch: float,
    params: dict[str, Any],
    optimizer_state: dict[str, Any],
    lr: float,
    state: RunState,
    curves: dict[str, list[Any]],
    lr_changes: list[dict[str, Any]],
) -> Snapshot:
    """A snapshot of copies: the parameters as arrays, the rest deep enough that the run goes on
    without changing it (a record in the history is never changed once kept: the list is copied)."""
    arrays = {name: np.array(value) for name, value in params.items()}
    optimizer = copy.deepcopy(optimizer_state)
    kept_state = copy.copy(state)
    kept_state.history = list(state.history)
    kept_state.changes = list(state.changes)
    nbytes = size_of(arrays) + size_of(optimizer)
    return Snapshot(
        step,
        epoch,
        arrays,
        optimizer,
        lr,
        kept_state,
        {key: list(values) for key, values in curves.items()},
        copy.deepcopy(lr_changes),
        nbytes,
    )


class SnapshotRing:
    """The kept snapshots, oldest first, at most ``capacity`` of them and ``max_bytes`` in all."""

    def __init__(self, every: int, capacity: int = SNAPSHOTS_KEPT, max_bytes: int = SNAPSHOT_BYTES) -> None:
        self.every, self.capacity, self.max_bytes = every, capacity, max_bytes
        self.kept: deque[Snapshot] = deque()
        self.nbytes = 0

    def keep(self, snapshot: Snapshot) -> None:
        while self.kept and self.kept[-1].step >= snapshot.step:  # after a fork: the old future goes
            self.nbytes -= self.kept.pop().nbytes
        self.kept.append(snapshot)
        self.nbytes += snapshot.nbytes
        while len(self.kept) > 1 and (len(self.kept) > self.capacity or self.nbytes > self.max_bytes):
            self.nbytes -= self.kept.popleft().nbytes

    def find(self, step: int) -> Snapshot:
        for snapshot in self.kept:
            if snapshot.step == step:
                return snapshot
        if not self.kept:
            raise RequestError("no snapshot is kept yet", 404)
        steps = f"{self.kept[0].step}..{self.kept[-1].step}, every {self.every}"
        raise RequestError(f"no snapshot of step {step} is kept; the kept steps are {steps}", 404)

    def drop_after(self, step: int) -> None:
        while self.kept and self.kept[-1].step > step:
            self.nbytes -= self.kept.pop().nbytes

    def bounds(self) -> dict[str, Any]:
        return {
            "every": self.every,
            "capacity": self.capacity,
            "count": len(self.kept),
            "first": self.kept[0].step if self.kept else None,
            "last": self.kept[-1].step if self.kept else None,
        }

    def listing(self) -> dict[str, Any]:
        return {**self.bounds(), "kept": [snapshot.summary() for snapshot in self.kept]}
