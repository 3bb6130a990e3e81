"""Batched inference: the one chunked ``predict`` that training, evaluate, predict, plot and serve use.

A network's forward pass holds every layer output of its batch at once, so a whole test set is
fed a chunk at a time: :data:`EVAL_CHUNK` samples, or fewer when one sample's largest layer output
is large (a first convolution's feature maps), so that no pass holds more than about
:data:`EVAL_VALUES` values (16 MB of float32).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING, Any

from scratchnet.core.architecture import plan
from scratchnet.core.interface import Network
from scratchnet.core.lazy import lazy_module
from scratchnet.data.byte_arrays import ByteArray
from scratchnet.data.images import Feeder

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
else:
    np = lazy_module("numpy", globals(), "np")

EVAL_CHUNK = 2000  # samples per forward pass when measuring accuracy ...
EVAL_VALUES = 1 << 22  # ... fewer when a pass would hold a layer output of more values (16 MB of float32)

AnyNetwork = Network[Any, Any]
Guard = Callable[[], AbstractContextManager[Any]]


def eval_chunk(network: AnyNetwork) -> int:
    """Samples per inference pass: EVAL_CHUNK, or fewer when one sample's largest layer output is
    large (a first convolution's feature maps: 32x24x24 values), so that no pass holds a layer
    output of more than about EVAL_VALUES values."""
    checked = plan(network.describe())
    largest = max(math.prod(shape) for shape in (*checked.input_shapes, checked.output_shape))
    return max(1, min(EVAL_CHUNK, EVAL_VALUES // largest))


def chunks(
    network: AnyNetwork,
    samples: npt.NDArray[Any],
    feeder: Feeder,
    *,
    classes: bool = False,
    guard: Guard = nullcontext,
    most: int = EVAL_CHUNK,
) -> Iterator[npt.NDArray[Any]]:
    """The network's outputs (inference mode: no dropout) for ``samples``, one chunk at a time, as
    float64 arrays; with ``classes``, ``network.predict``'s class of each sample instead. Each pass
    runs inside ``guard()`` (a lock, for a server whose requests must get their turns between chunks),
    on at most ``most`` samples."""
    step = min(most, eval_chunk(network))
    for start in range(0, len(samples), step):
        inputs = feeder.inputs(samples[start : start + step])
        with guard():
            if classes:
                yield np.asarray(network.predict(inputs), dtype=np.intp)
            else:
                yield np.asarray(network.forward(inputs), dtype=np.float64)


def predict(
    network: AnyNetwork, samples: npt.NDArray[Any], feeder: Feeder, *, guard: Guard = nullcontext
) -> npt.NDArray[np.float64]:
    """The network's outputs (class probabilities for a softmax network) for each sample, as float64."""
    parts = list(chunks(network, samples, feeder, guard=guard))
    return np.concatenate(parts) if parts else np.zeros((0, 0))


def argmax_list(row: Sequence[float]) -> int:
    """:func:`numpy.argmax` of one row of Python floats: the first largest value, or the first NaN."""
    best, index = row[0], 0
    for i, value in enumerate(row):
        if value != value:  # NaN: NumPy takes the first one as the largest
            return i
        if value > best:
            best, index = value, i
    return index


def predicted_list(network: AnyNetwork, samples: ByteArray, feeder: Feeder, most: int = EVAL_CHUNK) -> list[int]:
    """:func:`predict_classes` without NumPy (the loops backend, samples in a ByteArray): a list of classes."""
    step = min(most, eval_chunk(network))
    classes: list[int] = []
    for start in range(0, len(samples), step):
        classes += network.predict(feeder.inputs(samples[start : start + step]))
    return classes


def argmax_rows(outputs: Any) -> npt.NDArray[np.intp]:
    """The index of the largest output of each row, for arrays and for lists of lists."""
    result: npt.NDArray[np.intp] = np.argmax(np.asarray(outputs), axis=1)
    return result


def predict_classes(
    network: AnyNetwork,
    samples: npt.NDArray[Any],
    feeder: Feeder,
    *,
    guard: Guard = nullcontext,
    most: int = EVAL_CHUNK,
) -> npt.NDArray[np.intp]:
    """The network's class for each sample (``network.predict``: the largest output, or output >= 0.5
    for a single one), in chunks."""
    parts = list(chunks(network, samples, feeder, classes=True, guard=guard, most=most))
    return np.concatenate(parts) if parts else np.zeros(0, np.intp)


def predict_probabilities(network: AnyNetwork, samples: npt.NDArray[Any], feeder: Feeder) -> npt.NDArray[np.float64]:
    """:func:`predict` under the name evaluate and predict know it by."""
    return predict(network, samples, feeder)


def accuracy_of(network: AnyNetwork, samples: npt.NDArray[Any], labels: npt.NDArray[Any], feeder: Feeder) -> float:
    """The fraction of ``samples`` whose class is their label (NaN for none)."""
    if len(labels) == 0:
        return math.nan
    if isinstance(labels, ByteArray):
        right = sum(p == t for p, t in zip(predicted_list(network, samples, feeder), labels.tolist()))
        return right / len(labels)  # as np.mean of the booleans: an exact count, one rounded division
    return float(np.mean(predict_classes(network, samples, feeder) == labels))
