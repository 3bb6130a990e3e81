"""How many sampled documents are new: not among the documents a model was trained on (``sample --new``), or
not lines of a file of yours (``sample --data FILE.txt``).

A model file may come from anyone, so the training text it records is read again only under the rule of
scratchnet/data/recorded.py: still a regular file of the recorded size and SHA-256 (checked before it is
read as text, and again by :func:`scratchnet.data.text.load_recorded_text`), split as the model records.
Otherwise the count cannot be made, and the one-line error says why and asks for ``--data``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from scratchnet.core.errors import DatasetError
from scratchnet.core.text import printable
from scratchnet.data.recorded import check_recorded
from scratchnet.data.text import DOCUMENTS, TextData, Vocabulary, load_recorded_text, load_text


@dataclass(frozen=True)
class Known:
    """The documents samples are compared with: ``training`` (the model's training documents, or every line
    of ``--data``), ``held_out`` (the model's held-out documents; empty for ``--data``), and ``what`` the
    set is called in the report."""

    training: frozenset[str]
    held_out: frozenset[str]
    what: str


def documents_of(data: TextData, numbers: Sequence[int]) -> frozenset[str]:
    """The text of documents ``numbers`` of ``data``."""
    found = set()
    for number in numbers:
        leading, trailing = data.document_span(number)
        found.add(data.vocabulary.decode(data.ids[leading + 1 : trailing]))
    return frozenset(found)


def known_documents(metadata: Mapping[str, Any], vocabulary: Vocabulary, data: str | None, name: str) -> Known:
    """The documents to count new samples against: ``data``'s lines (every character must be in the
    vocabulary, as ``evaluate --data`` reads a file), else the model's recorded training documents."""
    if data is not None:
        text = load_text(data, layout=DOCUMENTS, vocabulary=vocabulary)
        return Known(documents_of(text, text.held_out_documents), frozenset(), f"the lines of {printable(data)}")
    source = metadata.get("source")
    source = source if isinstance(source, Mapping) else {}
    why = f"cannot count the new samples of {name}"
    try:
        check_recorded(source.get("path"), recorded_identity(source), "its training text")
        recorded = load_recorded_text(source, vocabulary)
    except DatasetError as error:
        reason = str(error).replace("give the test data with --data", "give the training documents with --data")
        raise DatasetError(f"{why}: {reason}") from None
    training = documents_of(recorded, recorded.train_documents)
    return Known(training, documents_of(recorded, recorded.held_out_documents), "the training set")


def recorded_identity(source: Mapping[str, Any]) -> dict[str, Any] | None:
    """The size and SHA-256 a model records for its training text, as data/recorded.py checks them."""
    if "size" not in source or "sha256" not in source:
        return None
    return {"size": source["size"], "sha256": source["sha256"]}


def new_report(samples: Sequence[str], known: Known) -> str:
    """``8 of 10 samples are new (not in the training set; 1 of them is among the held-out documents)``."""
    new = [sample for sample in samples if sample not in known.training]
    held = sum(sample in known.held_out for sample in new)
    verb = "is" if len(new) == 1 else "are"
    among = "" if not held else f"; {held} of them {'is' if held == 1 else 'are'} among the held-out documents"
    return f"{len(new)} of {len(samples)} samples {verb} new (not in {known.what}{among})"
