"""The training batches of a language model, as the loop draws them (:class:`TextBatches`).

Batch ``step`` of loop epoch ``epoch`` is training step ``epoch * steps + step`` of
:func:`~scratchnet.data.text_batches.training_batch`, a pure function of (seed, step): documents in a
seeded order, a new permutation each pass; running text in blocks at random positions (nanoGPT). A run
given in steps is one loop epoch of that many steps; a documents run given in epochs has one loop epoch
per pass over the training documents.
"""

from __future__ import annotations

from typing import Any

from scratchnet.data.text import TextData
from scratchnet.data.text_batches import training_batch
from scratchnet.training.next_token import scored


class TextBatches:
    """``steps`` batches a loop epoch of ``batch_size`` rows of ``context`` positions; a batch's size is its
    number of scored targets, so the loop's running loss is a mean per token."""

    def __init__(self, data: TextData, steps: int, batch_size: int, context: int, seed: int) -> None:
        self.data, self.steps, self.batch_size, self.context, self.seed = data, steps, batch_size, context, seed

    def batch(self, epoch: int, step: int) -> tuple[Any, Any, int]:
        inputs, targets = training_batch(self.data, epoch * self.steps + step, self.batch_size, self.context, self.seed)
        return inputs, targets, scored(targets)
