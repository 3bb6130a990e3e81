"""Finding documents in the ids of a documents text without an entry per document.

The ids are ``B d0 B d1 B ... B`` (B the boundary id). A full table of where each document starts would cost
4 bytes a document, half as much again as names of 7 letters; :class:`DocumentIndex` keeps the start of every
:data:`STRIDE`-th document only and walks the boundaries from there (``array.index``, in C), so the index
costs an eighth of a byte a document. :class:`TrainingDocuments` numbers the training documents without a
list of them: every document but the (at most 1000) held out.
"""

from __future__ import annotations

from array import array
from bisect import bisect_right
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import overload

STRIDE = 32  # the index keeps the start of documents 0, 32, 64, ...


@dataclass(frozen=True)
class DocumentIndex:
    """Where document ``i`` lies in ``store`` (the ids' array): :meth:`span` gives the positions of its
    leading and trailing boundaries. ``marks[k]`` is the leading boundary of document ``k * STRIDE``."""

    store: array[int]
    boundary: int
    count: int
    marks: array[int]

    def span(self, document: int) -> tuple[int, int]:
        """(leading, trailing) boundary positions: the document with both boundaries is
        ``ids[leading : trailing + 1]``, its characters ``ids[leading + 1 : trailing]``."""
        if not 0 <= document < self.count:
            raise IndexError(f"document {document} of {self.count}")
        start = self.marks[document // STRIDE]
        for _ in range(document % STRIDE):
            start = self.store.index(self.boundary, start + 1)
        return start, self.store.index(self.boundary, start + 1)


class TrainingDocuments(Sequence[int]):
    """The numbers of the documents not held out, in file order, as a read-only sequence: the ``k``-th is
    ``k`` plus the number of held-out documents before it, found by bisection."""

    def __init__(self, count: int, held_out: Sequence[int]) -> None:
        self.total, self.held_out = count, held_out
        # held_out[j] - j is the training index at which the j-th held-out document is skipped
        self.skips = [h - j for j, h in enumerate(held_out)] if len(held_out) < count else []

    def __len__(self) -> int:
        return self.total - len(self.held_out)

    @overload
    def __getitem__(self, k: int) -> int: ...

    @overload
    def __getitem__(self, k: slice) -> Sequence[int]: ...

    def __getitem__(self, k: int | slice) -> int | Sequence[int]:
        if isinstance(k, slice):
            return [self[i] for i in range(*k.indices(len(self)))]
        if not 0 <= k < len(self):
            raise IndexError(f"training document {k} of {len(self)}")
        return k + bisect_right(self.skips, k)

    def __iter__(self) -> Iterator[int]:
        if not len(self):
            return iter(())
        held = set(self.held_out)
        return (i for i in range(self.total) if i not in held)
