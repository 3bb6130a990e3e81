"""Datasets: a strict IDX reader, MNIST and Fashion-MNIST loading, verification and download."""

from __future__ import annotations

from scratchnet.data.datasets import (
    DATA_DIR_ENV,
    DATASETS,
    Dataset,
    DatasetSpec,
    FileSpec,
    cache_dir,
    load_dataset,
    resolve_data_dir,
)
from scratchnet.data.idx import read_idx, read_idx_bytes

__all__ = [
    "DATASETS",
    "DATA_DIR_ENV",
    "Dataset",
    "DatasetSpec",
    "FileSpec",
    "cache_dir",
    "load_dataset",
    "read_idx",
    "read_idx_bytes",
    "resolve_data_dir",
]
