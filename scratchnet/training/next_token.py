"""The next-token task: a language model's loss in nats per token, with bits per character and perplexity.

The loop (:mod:`scratchnet.training.loop`) calls it as it calls :class:`~scratchnet.training.task.Classification`:
the batch's loss is the network's cross-entropy averaged over the targets that are not ``ignore_index``
(spec/math.md eq. 16.3), and a batch's size is its number of scored targets, so the loss of a record is
the mean over the tokens of its steps. Bits per character are nats / ln 2 and the perplexity exp(nats)
(one token is one character here). The held-out loss is :func:`text_loss` over
:func:`~scratchnet.data.text_batches.evaluation_batches`: every held-out position once.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from scratchnet.core.interface import Network
from scratchnet.data.images import Feeder
from scratchnet.data.text import TextData
from scratchnet.data.text_batches import HELD_OUT, IGNORE_INDEX, evaluation_batches
from scratchnet.training.loop import Callback, Loop

AnyNetwork = Network[Any, Any]
EVAL_BATCH = 32  # rows a forward pass scores at a time


def scored(targets: Any) -> int:
    """The number of targets a batch scores: every entry but the ``IGNORE_INDEX`` padding."""
    return sum(1 for row in targets for target in row if int(target) != IGNORE_INDEX)


def bits(nats: float) -> float:
    """Nats per character as bits per character: nats / ln 2."""
    return nats / math.log(2)


def perplexity(nats: float) -> float:
    """exp(nats), inf past what a float holds."""
    return math.exp(nats) if nats < 700 else math.inf


def describe_loss(nats: float) -> str:
    """``1.2345 nats/char (1.7810 bits/char, perplexity 3.44)``."""
    return f"{nats:.4f} nats/char ({bits(nats):.4f} bits/char, perplexity {perplexity(nats):.2f})"


def text_loss(
    network: AnyNetwork, data: TextData, context: int, part: str = HELD_OUT, max_rows: int | None = None
) -> tuple[float, int]:
    """(mean nats per scored position, positions scored) of ``part`` of ``data``: every position once, in
    consecutive blocks of ``context`` (:func:`evaluation_batches`); with ``max_rows``, its first rows only
    (an estimate). NaN for nothing to score."""
    total, count, rows = 0.0, 0, 0
    for inputs, targets in evaluation_batches(data, context, EVAL_BATCH, part):
        if max_rows is not None and rows >= max_rows:
            break
        if max_rows is not None and rows + len(inputs) > max_rows:
            inputs, targets = inputs[: max_rows - rows], targets[: max_rows - rows]
        rows += len(inputs)
        n = scored(targets)
        if n == 0:
            continue
        outputs = network.forward(inputs, training=False)
        total += network.loss(outputs, targets) * n
        count += n
    return (total / count if count else math.nan), count


class NextToken:
    """Predict each next token: the loss in nats per token; no right answers to count (the score is 0);
    the held-out metric is the validation loss."""

    metric = "validation_loss"

    def loss(self, network: AnyNetwork, outputs: Any, targets: Any) -> float:
        return network.loss(outputs, targets)

    def score(self, outputs: Any, targets: Any) -> int:
        """0: a language model's record has its loss, not an accuracy (the Task seam asks for a count)."""
        return 0

    def train_metrics(self, score: int, seen: int) -> dict[str, Any]:
        return {"train_tokens": seen}

    def evaluate(self, network: AnyNetwork, samples: Any, targets: Any, feeder: Feeder) -> float:
        """The held-out loss of ``samples``, a :class:`TextData` (``targets`` is its context: the
        Task seam's arguments are a classifier's; ``feeder`` is unused, token ids go in as they are)."""
        return text_loss(network, samples, int(targets))[0]

    def format_metrics(self, record: Mapping[str, Any]) -> str:
        """``1.781 bits/char  val 2.1234 nats (3.063 bits/char, ppl 8.36)``."""
        line = f"{bits(record['loss']):.3f} bits/char"
        val = record.get(self.metric)
        if val is None:
            return line + "  val -"
        return line + f"  val {val:.4f} nats ({bits(val):.3f} bits/char, ppl {perplexity(val):.2f})"


class TextValidation(Callback):
    """The validation loss in every record: an estimate on the first ``max_rows`` held-out rows (None:
    all of them), as nanoGPT estimates it every N steps; ``scratchnet evaluate`` scores them all."""

    def __init__(self, data: TextData, context: int, max_rows: int | None) -> None:
        self.data, self.context, self.max_rows = data, context, max_rows

    def on_measure(self, loop: Loop, record: dict[str, Any]) -> None:
        if self.data.split.held_out:
            record[loop.task.metric] = text_loss(loop.network, self.data, self.context, HELD_OUT, self.max_rows)[0]
