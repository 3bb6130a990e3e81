"""The task seam: what the network predicts and how a prediction is scored, as one object the loop calls.

The loop knows nothing of labels or accuracy. Each step it asks the task for the batch's loss and
for a count to add up (:meth:`Task.score`: right answers for a classifier); at a report it asks
for the record's training metrics from those sums (:meth:`Task.train_metrics`), and the validation
callback asks for the held-out metrics (:meth:`Task.evaluate`). :class:`Classification` is today's
task: labels, accuracy, the confusion matrix. A next-token task (token sequences, the loss in nats
per token, sampling) implements the same methods, with its own batches, and the loop and the
callbacks are unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

from scratchnet.core.errors import ConfigError
from scratchnet.core.interface import Network
from scratchnet.core.lazy import lazy_module, numpy_loaded
from scratchnet.data.images import Feeder
from scratchnet.training.inference import accuracy_of, argmax_list, argmax_rows
from scratchnet.training.metrics import confusion_matrix

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
else:
    np = lazy_module("numpy", globals(), "np")

AnyNetwork = Network[Any, Any]


class Task(Protocol):
    """What the loop needs of a task. ``metric`` names the held-out metric the records carry
    (``validation_accuracy``), ``unit`` what a sample is called in the speed figure."""

    metric: str

    def loss(self, network: AnyNetwork, outputs: Any, targets: Any) -> float: ...
    def score(self, outputs: Any, targets: Any) -> int: ...
    def train_metrics(self, score: int, seen: int) -> dict[str, Any]: ...
    def evaluate(self, network: AnyNetwork, samples: Any, targets: Any, feeder: Feeder) -> float: ...
    def format_metrics(self, record: Mapping[str, Any]) -> str: ...


class Classification:
    """One class per sample: the loss is the network's (cross-entropy of the softmax), the score the
    number of samples whose largest output is their label, the metric the accuracy."""

    metric = "validation_accuracy"

    def loss(self, network: AnyNetwork, outputs: Any, targets: Any) -> float:
        return network.loss(outputs, targets)

    def score(self, outputs: Any, targets: Any) -> int:
        """The right answers of a batch (its outputs and labels as the network took them)."""
        if isinstance(outputs, list) and not numpy_loaded():  # the loops backend without NumPy
            return sum(argmax_list(row) == target for row, target in zip(outputs, targets))
        return int(np.sum(argmax_rows(outputs) == np.asarray(targets)))

    def train_metrics(self, score: int, seen: int) -> dict[str, Any]:
        return {"train_accuracy": score / seen}

    def evaluate(self, network: AnyNetwork, samples: Any, targets: Any, feeder: Feeder) -> float:
        """The accuracy on held-out samples (NaN for none), predicted in chunks."""
        return accuracy_of(network, samples, targets, feeder)

    def format_metrics(self, record: Mapping[str, Any]) -> str:
        """A record's metrics as its report line shows them: ``train 96.50%  val 97.10%`` (no ``val``
        when the run holds out no validation samples)."""
        val = record.get(self.metric)
        return f"train {100 * record['train_accuracy']:.2f}%" + ("" if val is None else f"  val {100 * val:.2f}%")

    def check_output(self, output_shape: tuple[int, ...], classes: int) -> None:
        """ConfigError unless the network gives each sample one score per class, ``(classes,)``: a
        network that keeps a feature map's axes to the end lacks a flatten before its output layer."""
        if tuple(output_shape) != (classes,):
            raise ConfigError(
                f"the network's output is {'x'.join(map(str, output_shape))} per sample, but a classifier of "
                f"{classes} classes gives one score per class ({classes}): put a flatten before the output layer"
            )

    def confusion(self, labels: Any, predictions: Any, classes: int) -> npt.NDArray[np.int64]:
        """The ``classes x classes`` counts: row = true class, column = predicted class."""
        return confusion_matrix(labels, predictions, classes)
