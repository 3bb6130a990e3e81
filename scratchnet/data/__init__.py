"""Datasets: a strict IDX reader, MNIST and Fashion-MNIST loading, verification and download."""

from __future__ import annotations

from scratchnet.data import datasets
from scratchnet.data.datasets import *  # noqa: F403 (everything in datasets.__all__)
from scratchnet.data.idx import read_idx, read_idx_bytes

# Everything datasets.py exports, and the IDX reader's two entry points.
__all__ = ["read_idx", "read_idx_bytes"]
__all__ += datasets.__all__
