"""Batches of token ids for next-token prediction, from a :class:`~scratchnet.data.text.TextData`.

A batch is ``(inputs, targets)``, two ``(N, W)`` tables of ids: nested lists for the loops backend, int64
NumPy arrays for the vectorized one, with the same values in both. ``targets[n][t]`` is the id that follows
``inputs[n][t]``. Rows shorter than the batch's longest are padded: their targets with
:data:`IGNORE_INDEX` (PyTorch's default), which the loss skips, their inputs with the boundary id (documents)
or 0 (running text), which causal attention never lets an earlier position see.

* **Training, running text** (nanoGPT's ``get_batch``): ``N`` blocks at positions ``i`` drawn uniformly
  from ``0 .. train - W - 1``, inputs ``x[i : i+W]``, targets ``x[i+1 : i+W+1]``, ``W`` the context.
* **Training, documents**: the training documents in a seeded order, a new permutation each epoch (eq.
  10.4), ``N`` a step; a document ``c1..cn`` is the row ``B c1 .. cn`` with targets ``c1 .. cn B``, cut to
  the context as microgpt cuts it. ``N = 1`` is microgpt's one document per step.
* **Evaluation**: every held-out position scored once. Running text in consecutive non-overlapping blocks
  of the context (the last one shorter); documents whole, the end token included (as makemore counts),
  a document longer than the context in consecutive blocks of it.

Each training batch is a pure function of (seed, step), so a resumed run draws the batches it would have.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from functools import lru_cache
from typing import Any

from scratchnet.core import rng
from scratchnet.core.errors import DatasetError
from scratchnet.data.text import DOCUMENTS, TextData

__all__ = [
    "HELD_OUT",
    "IGNORE_INDEX",
    "PARTS",
    "TRAIN",
    "evaluation_batches",
    "steps_per_epoch",
    "target_count",
    "training_batch",
]

IGNORE_INDEX = -100  # a target the loss skips (PyTorch's CrossEntropyLoss default)
TRAIN, HELD_OUT = "train", "held_out"
PARTS = (TRAIN, HELD_OUT)
POSITION_LABEL, ORDER_LABEL = 101, 102  # child seeds of the run's seed: block positions, document orders

Row = tuple[Sequence[int], Sequence[int]]  # (inputs, targets) of one row, before padding


def training_batch(data: TextData, step: int, batch_size: int, context: int, seed: int) -> tuple[Any, Any]:
    """The ``batch_size`` rows of training step ``step`` (0, 1, ...) for a model of ``context`` positions."""
    if batch_size < 1 or context < 1:
        raise DatasetError(f"the batch size and the context must be positive, got {batch_size} and {context}")
    if data.layout == DOCUMENTS:
        rows = [_document_rows(data, i, context)[0] for i in _step_documents(data, step, batch_size, seed)]
    else:
        rows = _block_rows(data, step, batch_size, context, seed)
    return _pack(rows, _input_pad(data), data.backend)


def steps_per_epoch(data: TextData, batch_size: int) -> int | None:
    """The steps of ``batch_size`` documents that make one pass over the training documents, or None for
    running text, whose blocks are drawn at random positions and have no epochs."""
    if data.layout != DOCUMENTS:
        return None
    return -(-len(data.train_documents) // batch_size)


def _block_rows(data: TextData, step: int, batch_size: int, context: int, seed: int) -> list[Row]:
    """nanoGPT's get_batch: blocks at uniform positions of the training characters."""
    train = data.split.train
    if train <= context:
        raise DatasetError(
            f"{data.path}: {train:,} training characters, too few for a context of {context} (more than it)"
        )
    draws = rng.uniforms(rng.derive_seed(seed, POSITION_LABEL), step, batch_size)
    ids = data.ids
    starts = [int(u * (train - context)) for u in draws]  # 0 .. train - context - 1, as torch.randint
    return [(ids[i : i + context], ids[i + 1 : i + context + 1]) for i in starts]


def _step_documents(data: TextData, step: int, batch_size: int, seed: int) -> list[int]:
    """The document numbers of a step: entries step*N .. step*N + N - 1 of the epochs' permutations, one
    after another (epoch e is permutation e of the order seed)."""
    count = len(data.train_documents)
    if count == 0:
        raise DatasetError(f"{data.path}: no training documents (the whole file is held out)")
    chosen = []
    for position in range(step * batch_size, (step + 1) * batch_size):
        epoch, k = divmod(position, count)
        chosen.append(data.train_documents[_epoch_order(rng.derive_seed(seed, ORDER_LABEL), epoch, count)[k]])
    return chosen


@lru_cache(maxsize=2)  # a step mostly lies within one epoch, at times across two
def _epoch_order(seed: int, epoch: int, count: int) -> list[int]:
    return rng.permutation(seed, epoch, count)


def _document_rows(data: TextData, document: int, context: int) -> list[Row]:
    """A document ``B c1 .. cn B`` as rows of at most ``context`` positions: inputs ``B c1 .. cn``, targets
    ``c1 .. cn B``, in consecutive blocks."""
    start, end = data.document_span(document)  # its two boundaries
    ids = data.ids
    return [
        (ids[s : min(s + context, end)], ids[s + 1 : min(s + context, end) + 1]) for s in range(start, end, context)
    ]


def evaluation_batches(
    data: TextData, context: int, batch_size: int, part: str = HELD_OUT
) -> Iterator[tuple[Any, Any]]:
    """Batches of up to ``batch_size`` rows that score every position of ``part`` once (module docstring)."""
    if batch_size < 1 or context < 1:
        raise DatasetError(f"the batch size and the context must be positive, got {batch_size} and {context}")
    if part not in PARTS:
        raise DatasetError(f"unknown part {part!r}: use {' or '.join(PARTS)}")
    rows: list[Row] = []
    for row in _evaluation_rows(data, context, part):
        rows.append(row)
        if len(rows) == batch_size:
            yield _pack(rows, _input_pad(data), data.backend)
            rows = []
    if rows:
        yield _pack(rows, _input_pad(data), data.backend)


def _evaluation_rows(data: TextData, context: int, part: str) -> Iterator[Row]:
    if data.layout == DOCUMENTS:
        for document in data.train_documents if part == TRAIN else data.held_out_documents:
            yield from _document_rows(data, int(document), context)
        return
    start, end = (0, data.split.train) if part == TRAIN else (data.split.train, len(data.ids))
    ids = data.ids
    for s in range(start, end - 1, context):  # end - 1: the last character is only a target
        stop = min(s + context, end - 1)
        yield ids[s:stop], ids[s + 1 : stop + 1]


def target_count(data: TextData, part: str = HELD_OUT) -> int:
    """The number of positions :func:`evaluation_batches` scores: running text's characters but the first;
    documents' characters and one end token each."""
    if data.layout != DOCUMENTS:
        size = data.split.train if part == TRAIN else data.split.held_out
        return max(size - 1, 0)
    if part == TRAIN:  # every target but those of the held-out documents
        start, end = 0, len(data.ids) - 1
        return end - start - sum(_length(data, i) for i in data.held_out_documents)
    return sum(_length(data, i) for i in data.held_out_documents)


def _length(data: TextData, document: int) -> int:
    """A document's targets: its characters and the end token."""
    leading, trailing = data.document_span(document)
    return trailing - leading


def _input_pad(data: TextData) -> int:
    boundary = data.vocabulary.boundary_id
    return 0 if boundary is None else boundary


def _pack(rows: list[Row], pad: int, backend: str) -> tuple[Any, Any]:
    """The rows as (N, W) tables, W the longest row: inputs padded with ``pad``, targets with IGNORE_INDEX."""
    width = max(len(inputs) for inputs, _ in rows)
    if backend == "vectorized":
        import numpy as np  # the vectorized backend: NumPy is present

        inputs_table = np.full((len(rows), width), pad, dtype=np.int64)
        targets_table = np.full((len(rows), width), IGNORE_INDEX, dtype=np.int64)
        for n, (inputs, targets) in enumerate(rows):
            inputs_table[n, : len(inputs)] = inputs
            targets_table[n, : len(targets)] = targets
        return inputs_table, targets_table
    return (
        [[*inputs, *[pad] * (width - len(inputs))] for inputs, _ in rows],
        [[*targets, *[IGNORE_INDEX] * (width - len(targets))] for _, targets in rows],
    )
