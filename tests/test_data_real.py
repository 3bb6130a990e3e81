"""The real MNIST and Fashion-MNIST files (skipped when no data directory is available)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from scratchnet.data import load_dataset


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist"])
def test_real_dataset_loads(data_dir: Path, name: str) -> None:
    ds = load_dataset(name, data_dir, download=False)
    assert ds.name == name
    assert ds.train_images.shape == (60000, 28, 28) and ds.train_images.dtype == np.uint8
    assert ds.train_labels.shape == (60000,) and ds.train_labels.dtype == np.uint8
    assert ds.test_images.shape == (10000, 28, 28) and ds.test_images.dtype == np.uint8
    assert ds.test_labels.shape == (10000,) and ds.test_labels.dtype == np.uint8
    assert len(ds.class_names) == 10
    # Every class occurs in both splits.
    assert set(np.unique(ds.train_labels).tolist()) == set(range(10))
    assert set(np.unique(ds.test_labels).tolist()) == set(range(10))


def test_mnist_spot_values(data_dir: Path) -> None:
    # Independent values from /work/shared/data/mnist/README.md.
    ds = load_dataset("mnist", data_dir, download=False)
    sums = {i: int(ds.train_images[i].sum(dtype=np.int64)) for i in (0, 1, 2, 59999)}
    assert sums == {0: 27525, 1: 31095, 2: 19443, 59999: 20920}
    assert int(ds.test_images[0].sum(dtype=np.int64)) == 18454
    assert ds.class_names == tuple("0123456789")
    assert round(float(ds.train_images.mean()) / 255, 4) == 0.1307


def test_fashion_mnist_class_names(data_dir: Path) -> None:
    ds = load_dataset("fashion-mnist", data_dir, download=False)
    assert ds.class_names[0] == "T-shirt/top" and ds.class_names[9] == "Ankle boot"
