"""The plain-Python twins the loops backend uses where NumPy is absent agree with the NumPy helpers they
stand for: the IDX reader, the byte arrays, the feeder's scaling, the training batches, argmax, the
predicted classes and the confusion matrix (each pair on the same data, compared value for value)."""

from __future__ import annotations

import gzip
import math
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from scratchnet.builders import build_network
from scratchnet.core.architecture import mlp
from scratchnet.core.errors import ShapeError
from scratchnet.data.byte_arrays import ByteArray
from scratchnet.data.idx import read_idx, read_idx_plain
from scratchnet.data.images import Feeder, to_input_lists, to_inputs
from scratchnet.training.config import RunSettings
from scratchnet.training.feeding import Batches
from scratchnet.training.inference import argmax_list, predict_classes, predicted_list
from scratchnet.training.metrics import confusion_counts, confusion_matrix


def random_bytes(shape: tuple[int, ...], seed: int = 0) -> np.ndarray[Any, np.dtype[np.uint8]]:
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def test_the_idx_readers_give_the_same_values(tmp_path: Path) -> None:
    images = random_bytes((5, 3, 4))
    path = tmp_path / "images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(b"\x00\x00\x08\x03" + struct.pack(">3I", 5, 3, 4) + images.tobytes()))
    plain, array = read_idx_plain(path), read_idx(path)
    assert plain.shape == array.shape == (5, 3, 4) and plain.ndim == 3
    assert plain.tolist() == array.tolist() == images.tolist()


def test_byte_arrays_index_slice_and_take_as_numpy_does() -> None:
    values = random_bytes((7, 2, 3), seed=1)
    plain = ByteArray(values.tobytes(), values.shape)
    assert len(plain) == 7 and plain.size == values.size and plain[0].size == 6
    assert plain[3].tolist() == values[3].tolist() and plain[-1].tolist() == values[-1].tolist()
    assert plain[2:5].tolist() == values[2:5].tolist() and plain[5:2].shape == (0, 2, 3)
    assert plain[::3].tolist() == values[::3].tolist()
    assert plain[[6, 0, 6, 2]].tolist() == values[[6, 0, 6, 2]].tolist()
    labels = ByteArray(bytes([3, 1, 4]), (3,))
    assert labels[2] == 4 and labels[[2, 0]].tolist() == [4, 3]
    with pytest.raises(IndexError):
        plain[7]
    with pytest.raises(ValueError):
        ByteArray(b"abc", (2, 2))


@pytest.mark.parametrize(("mean", "std", "scale"), [(0.0, 1.0, 255.0), (0.1307, 0.3081, 255.0), (0.5, 2.0, 1.0)])
def test_the_inputs_are_the_same_floats_to_the_last_bit(mean: float, std: float, scale: float) -> None:
    images = random_bytes((4, 28, 28), seed=2)
    plain = to_input_lists(ByteArray(images.tobytes(), images.shape), mean, std, scale)
    assert plain == to_inputs(images, "float64", mean, std, scale).tolist()


def test_a_feeder_gives_the_loops_backend_the_same_lists_from_either_array() -> None:
    images = random_bytes((3, 28, 28), seed=3)
    for shape in [(784,), (1, 28, 28)]:
        feeder = Feeder("loops", "float64", 0.1307, 0.3081, shape)
        assert feeder.inputs(ByteArray(images.tobytes(), images.shape)) == feeder.inputs(images)
    with pytest.raises(ShapeError, match="784 pixels"):
        Feeder("loops", "float64", shape=(10,)).inputs(ByteArray(images.tobytes(), images.shape))


@pytest.mark.parametrize("batch_size", [4, 0])
def test_the_training_batches_are_the_same(batch_size: int) -> None:
    images, labels = random_bytes((10, 28, 28), seed=4), random_bytes((10,), seed=5) % 10
    settings = RunSettings(epochs=2, batch_size=batch_size, seed=11, backend="loops")
    feeder = Feeder("loops", "float64", shape=(784,))
    arrays = Batches(settings, images, labels, feeder)
    plain = Batches(settings, ByteArray(images.tobytes(), images.shape), ByteArray(labels.tobytes(), (10,)), feeder)
    assert plain.steps == arrays.steps
    for epoch in range(2):
        for step in range(arrays.steps):
            assert plain.batch(epoch, step) == arrays.batch(epoch, step), (epoch, step)


def test_argmax_of_a_list_is_numpys_with_ties_and_nan() -> None:
    rows = [
        [0.1, 0.7, 0.2],
        [0.5, 0.5, 0.1],
        [-1.0, -3.0, -1.0],
        [0.1, math.nan, 0.9],
        [math.nan, 2.0, math.nan],
        [math.inf, 1.0, math.inf],
        [-math.inf, -math.inf],
        [3.0],
    ]
    for row in rows:
        assert argmax_list(row) == int(np.argmax(np.asarray(row))), row
    generator = np.random.default_rng(6)
    for row in generator.integers(0, 4, (200, 5)).astype(float).tolist():  # many ties
        assert argmax_list(row) == int(np.argmax(np.asarray(row))), row


def test_the_predicted_classes_are_the_same() -> None:
    images = random_bytes((25, 28, 28), seed=7)
    net = build_network(mlp([784, 8, 10]), backend="loops", seed=3)
    feeder = Feeder("loops", "float64", shape=(784,))
    plain = predicted_list(net, ByteArray(images.tobytes(), images.shape), feeder, most=10)
    assert plain == predict_classes(net, images, feeder, most=10).tolist()


def test_the_confusion_counts_are_numpys_matrix() -> None:
    generator = np.random.default_rng(8)
    labels, predictions = generator.integers(0, 4, 50).tolist(), generator.integers(0, 4, 50).tolist()
    assert confusion_counts(labels, predictions, 4) == confusion_matrix(labels, predictions, 4).tolist()
    for bad in ([0, 1], [0, 4, 1]):
        with pytest.raises(ShapeError) as plain:
            confusion_counts([0, 1, 2], bad, 4)
        with pytest.raises(ShapeError) as array:
            confusion_matrix([0, 1, 2], bad, 4)
        assert str(plain.value) == str(array.value)
