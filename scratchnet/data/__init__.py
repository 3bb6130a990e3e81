"""Datasets: a strict IDX reader, MNIST and Fashion-MNIST loading, verification and download; your own
data (CSV files, folders of class folders, .npz arrays) through :func:`load_data`."""

from __future__ import annotations

from scratchnet.data import datasets
from scratchnet.data.datasets import *  # noqa: F403 (everything in datasets.__all__)
from scratchnet.data.idx import read_idx, read_idx_bytes
from scratchnet.data.own import DataOptions, Layout, load_data

# Everything datasets.py exports, the IDX reader's two entry points and the reader of your own data.
__all__ = ["DataOptions", "Layout", "load_data", "read_idx", "read_idx_bytes"]
__all__ += datasets.__all__
