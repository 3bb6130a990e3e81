"""Datasets: a strict IDX reader, MNIST and Fashion-MNIST loading, verification and download; your own
data (CSV files, folders of class folders, .npz arrays) through :func:`load_data`; text for language
models (:mod:`scratchnet.data.text`).

The names below are imported on first use (PEP 562), not with the package: the image and table readers
need NumPy, while :mod:`scratchnet.data.text` must import and work without it for the loops backend.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what the lazy names are, for type checkers
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
    from scratchnet.data.own import DataOptions, Layout
    from scratchnet.data.own_sets import load_data

# Each public name and the module that defines it: everything datasets.py exports, the IDX reader's two
# entry points and the reader of your own data.
_HOMES = {
    "DATASETS": "datasets",
    "DATA_DIR_ENV": "datasets",
    "Dataset": "datasets",
    "DatasetSpec": "datasets",
    "FileSpec": "datasets",
    "cache_dir": "datasets",
    "load_dataset": "datasets",
    "resolve_data_dir": "datasets",
    "read_idx": "idx",
    "read_idx_bytes": "idx",
    "DataOptions": "own",
    "Layout": "own",
    "load_data": "own_sets",
}

__all__ = [  # written out, so that type checkers see what the package exports
    "DATASETS",
    "DATA_DIR_ENV",
    "DataOptions",
    "Dataset",
    "DatasetSpec",
    "FileSpec",
    "Layout",
    "cache_dir",
    "load_data",
    "load_dataset",
    "read_idx",
    "read_idx_bytes",
    "resolve_data_dir",
]
assert sorted(__all__) == sorted(_HOMES)


def __getattr__(name: str) -> Any:
    """Import the module that defines ``name`` on first use (PEP 562)."""
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{home}"), name)
