"""Text for language models: a UTF-8 file read as documents or running text, its character vocabulary, its
split, and its token ids in one compact array (docs/language-models.md).

* **Layouts.** ``documents``: one document per line (names), outer whitespace stripped and blank lines
  skipped, as makemore reads them; each document is framed by a boundary token. ``running``: the file
  as one stream of characters, newlines included (Shakespeare). :func:`detect_layout` picks documents
  for a file of at least two lines, none longer than :data:`DETECT_MAX_CHARS` characters and none with
  whitespace inside; the caller may choose instead, and :attr:`TextData.description` says which and why.
* **Vocabulary.** The sorted distinct characters of the training text get ids 0, 1, ...; a documents
  vocabulary adds the boundary token as the last id (microgpt's BOS, which makemore also uses as the
  end token), so a character has the same id in both layouts.
* **Split**, fixed by a seed: documents hold out ``min(1000, 10%)`` documents, the last entries of a seeded
  permutation (makemore's rule, eq. 10.4); running text keeps its first 90% of characters for training and
  its last 10% for validation (nanoGPT's). A held-out character the training text lacks is an error.
* **Memory.** The ids of the whole file sit in one ``array('B')`` (or ``'H'`` for a vocabulary over 256
  tokens), which the vectorized backend sees as a uint8/uint16 NumPy array without a copy; the file is read
  twice in 256 KiB chunks (scratchnet/data/text_reading.py). Files are at most
  :data:`~scratchnet.data.text_reading.MAX_TEXT_BYTES` bytes and documents at most
  :data:`~scratchnet.data.text_reading.MAX_DOCUMENT_CHARS` characters.

Batches are built by scratchnet/data/text_batches.py. NumPy is imported only for ``backend="vectorized"``.
"""

from __future__ import annotations

import os
from array import array
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from scratchnet.core.errors import DatasetError
from scratchnet.data.text_documents import DocumentIndex, TrainingDocuments
from scratchnet.data.text_reading import (
    DETECT_MAX_CHARS,
    MAX_DOCUMENT_CHARS,
    Scan,
    describe_character,
    encode_documents,
    encode_running,
    file_identity,
    held_out_documents,
    id_array,
    scan,
)

__all__ = [
    "BACKENDS",
    "DEFAULT_SPLIT_SEED",
    "DETECT_MAX_CHARS",
    "DOCUMENTS",
    "LAYOUTS",
    "RUNNING",
    "Split",
    "TextData",
    "Vocabulary",
    "detect_layout",
    "file_identity",
    "load_recorded_text",
    "load_text",
]

DOCUMENTS, RUNNING = "documents", "running"
LAYOUTS = (DOCUMENTS, RUNNING)
BACKENDS = ("loops", "vectorized")
HELD_OUT_DOCUMENTS, HELD_OUT_FRACTION = 1000, 0.1  # makemore: min(1000, 10%) of the documents
TRAIN_FRACTION = 0.9  # nanoGPT: the first 90% of the characters
DEFAULT_SPLIT_SEED = 3407  # makemore's default seed
SPLIT_STREAM = 0  # the stream of the split seed that the held-out permutation draws from
MAX_TOKENS = 1 << 16  # ids are stored in 16 bits at most


@dataclass(frozen=True)
class Vocabulary:
    """The characters of the training text, sorted, with ids 0..len-1, and for documents a boundary token
    with the next id (it starts and ends every document). ``to_dict`` is what a model records."""

    characters: str
    boundary: bool = False

    def __post_init__(self) -> None:
        if list(self.characters) != sorted(set(self.characters)):
            raise DatasetError("a vocabulary's characters must be distinct and sorted")
        if self.boundary and "\n" in self.characters:
            raise DatasetError("a documents vocabulary cannot hold a newline")

    @property
    def size(self) -> int:
        """The number of token ids: the characters, and the boundary token if any."""
        return len(self.characters) + self.boundary

    @property
    def boundary_id(self) -> int | None:
        """The boundary token's id (the last), or None for running text."""
        return len(self.characters) if self.boundary else None

    def table(self) -> dict[int, int]:
        """``{code point: id}`` for ``str.translate``; a documents vocabulary maps "\\n" to the boundary."""
        table = {ord(character): i for i, character in enumerate(self.characters)}
        if self.boundary:
            table[ord("\n")] = len(self.characters)
        return table

    def encode(self, text: str, where: str = "the text") -> list[int]:
        """The ids of ``text``'s characters; a character outside the vocabulary is a DatasetError naming it
        and its line in ``where`` (a file name, or "the prefix")."""
        table = self.table()
        if self.boundary:
            del table[ord("\n")]  # a newline in a document's text is not its boundary
        for index, character in enumerate(text):
            if ord(character) not in table:
                line = text.count("\n", 0, index) + 1
                raise DatasetError(
                    f"{where} line {line}: the character {describe_character(character)} is not in the "
                    f"vocabulary of {len(self.characters)} characters"
                )
        return [table[ord(character)] for character in text]

    def decode(self, ids: Iterable[int]) -> str:
        """The text of ``ids``; the boundary token reads as a newline, as documents are written one a line."""
        characters = self.characters + ("\n" if self.boundary else "")
        chosen = [int(i) for i in ids]
        wrong = [i for i in chosen if not 0 <= i < self.size]
        if wrong:
            raise DatasetError(f"the token id {wrong[0]} is not in the vocabulary of {self.size} tokens")
        return "".join(characters[i] for i in chosen)

    def to_dict(self) -> dict[str, Any]:
        return {"unit": "character", "characters": self.characters, "boundary": self.boundary}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Vocabulary:
        characters, boundary = data.get("characters"), data.get("boundary", False)
        if data.get("unit", "character") != "character" or not isinstance(characters, str):
            raise DatasetError(f"the recorded vocabulary is not understood: {dict(data)!r:.120}")
        if not isinstance(boundary, bool):
            raise DatasetError(f"the recorded vocabulary's boundary is not true or false: {boundary!r:.40}")
        return cls(characters, boundary)


@dataclass(frozen=True)
class Split:
    """How the text was divided: by ``seed`` (documents; None for running text, whose split is fixed),
    ``train`` and ``held_out`` counts of ``unit``\\ s (documents or characters)."""

    layout: str
    unit: str
    train: int
    held_out: int
    seed: int | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "layout": self.layout,
            "unit": self.unit,
            "train": self.train,
            "held_out": self.held_out,
            "seed": self.seed,
        }


@dataclass
class TextData:
    """A text file as token ids. ``ids`` is an ``array('B'/'H')`` (loops) or a uint8/uint16 NumPy array
    (vectorized) over the whole file:

    * running text: the training characters are ``ids[:split.train]``, the validation ones the rest;
    * documents: ``ids`` is ``B d0 B d1 B ... B`` (B the boundary id); :meth:`document_span` finds
      document ``i``; ``train_documents`` and ``held_out_documents`` are sequences of document numbers,
      in file order.

    ``store`` is the array behind ``ids`` (the same memory). ``source`` is what a model records to find the
    text again: path, size, sha256, layout, split."""

    path: str
    layout: str
    description: str
    vocabulary: Vocabulary
    split: Split
    size: int
    sha256: str
    backend: str
    ids: Any
    store: array[int]
    index: DocumentIndex | None = None
    train_documents: Sequence[int] = ()
    held_out_documents: Sequence[int] = ()
    longest: int = 0  # characters in the longest document (0 for running text)

    def document_span(self, document: int) -> tuple[int, int]:
        """The positions of document ``document``'s leading and trailing boundaries in ``ids``: the
        document with both is ``ids[leading : trailing + 1]``."""
        if self.index is None:
            raise DatasetError(f"{self.path}: running text has no documents")
        return self.index.span(document)

    @property
    def source(self) -> dict[str, Any]:
        return {"path": self.path, "size": self.size, "sha256": self.sha256, "split": self.split.to_dict()}


def detect_layout(found: Scan) -> tuple[str, str]:
    """(layout, why): documents for at least two non-blank lines, none longer than DETECT_MAX_CHARS and none
    with whitespace inside; running text otherwise."""
    if found.documents < 2:
        return RUNNING, "fewer than two lines"
    if found.longest > DETECT_MAX_CHARS:
        return RUNNING, f"line {found.longest_line:,} has {found.longest:,} characters"
    if found.spaced_line is not None:
        return RUNNING, f"line {found.spaced_line:,} has a space inside"
    return DOCUMENTS, f"{found.documents:,} lines of at most {found.longest} characters, none with a space"


def load_text(
    path: str | os.PathLike[str],
    *,
    layout: str | None = None,
    seed: int = DEFAULT_SPLIT_SEED,
    vocabulary: Vocabulary | None = None,
    backend: str = "loops",
    identity: Mapping[str, Any] | None = None,
) -> TextData:
    """Read ``path`` (module docstring). ``layout`` None detects it. With a ``vocabulary`` (a model's,
    to evaluate on another file) nothing is trained on: the whole file is held out and every character
    must be in the vocabulary. With an ``identity`` (``{"size", "sha256"}``), the file must have that size
    and hash, checked before its ids are read. Every problem is a one-line DatasetError naming the file
    (and the line)."""
    name = os.fspath(path)
    if layout is not None and layout not in LAYOUTS:
        raise DatasetError(f"unknown text layout {layout!r}: use {' or '.join(LAYOUTS)}")
    if backend not in BACKENDS:
        raise DatasetError(f"unknown backend {backend!r}: use {' or '.join(BACKENDS)}")
    if identity is not None:
        _check_size(name, identity)
    found = scan(name, None if layout is None else layout == DOCUMENTS)
    if identity is not None and found.sha256 != identity.get("sha256"):
        raise DatasetError(
            f"{name}: not the text the model was trained on (its sha256 differs); give a text with --data"
        )
    if found.characters == 0:
        raise DatasetError(f"{name}: the file is empty")
    if layout is None:
        layout, why = detect_layout(found)
        said = f"detected: {why}"
    else:
        said = "as asked"
    if vocabulary is not None and vocabulary.boundary != (layout == DOCUMENTS):
        raise DatasetError(
            f"{name}: the model reads {'documents' if vocabulary.boundary else 'running text'}, not {layout}"
        )
    if layout == DOCUMENTS:
        data = _documents(name, found, seed, vocabulary)
        counts = f"{found.documents:,} documents of 1 to {found.longest} characters"
    else:
        data = _running(name, found, vocabulary)
        counts = f"{found.characters:,} characters on {found.lines:,} lines"
    seeded = "" if data.split.seed is None else f" (seed {data.split.seed})"
    data.description = (
        f"{name}: {layout} ({said}); {counts}; vocabulary of {data.vocabulary.size} tokens; "
        f"{data.split.train:,} {data.split.unit} for training, {data.split.held_out:,} held out{seeded}"
    )
    if backend == "vectorized":
        _as_numpy(data)
    return data


def load_recorded_text(source: Mapping[str, Any], vocabulary: Vocabulary, backend: str = "loops") -> TextData:
    """The text a model was trained on, from its ``source`` record (:attr:`TextData.source`), split as
    it was: the file must still have the recorded size and sha256, and give the model's vocabulary."""
    path, split = source.get("path"), source.get("split")
    if not isinstance(path, str) or not isinstance(split, Mapping) or split.get("layout") not in LAYOUTS:
        raise DatasetError("the model does not record the text it was trained on; give a text with --data")
    seed = split.get("seed")
    if not os.path.exists(path):
        raise DatasetError(f"the model's training text {path} is not there any more; give a text with --data")
    data = load_text(
        path,
        layout=split["layout"],
        seed=seed if isinstance(seed, int) else DEFAULT_SPLIT_SEED,
        backend=backend,
        identity=source,
    )
    if data.vocabulary != vocabulary or data.split.to_dict() != dict(split):
        raise DatasetError(f"{path}: its vocabulary or split is not the model's; give a text with --data")
    return data


def _check_size(name: str, identity: Mapping[str, Any]) -> None:
    """The recorded size against the file's, before a byte is read."""
    try:
        size = os.stat(name).st_size
    except OSError:
        return  # reading it says what is wrong
    if size != identity.get("size"):
        raise DatasetError(
            f"{name}: not the text the model was trained on ({size:,} bytes, not {identity.get('size')!r:.40})"
        )


def _vocabulary(name: str, alphabet: set[str], boundary: bool, given: Vocabulary | None) -> Vocabulary:
    """The training text's vocabulary (its alphabet, checked), or the given one."""
    if given is not None:
        return given
    if len(alphabet) < 2:
        only = describe_character(next(iter(alphabet)))
        raise DatasetError(f"{name} line 1: every character is {only}; a language model needs two or more")
    if len(alphabet) + boundary > MAX_TOKENS:
        raise DatasetError(f"{name}: {len(alphabet):,} distinct characters, more than the {MAX_TOKENS - 1:,} allowed")
    return Vocabulary("".join(sorted(alphabet)), boundary)


def _running(name: str, found: Scan, given: Vocabulary | None) -> TextData:
    """Running text: nanoGPT's split, the ids of every character."""
    count = found.characters
    train = 0 if given is not None else int(count * TRAIN_FRACTION)
    # The vocabulary of the whole file is the training text's unless a held-out character is missing from
    # the training text, which the encoding pass reports as an error.
    vocabulary = _vocabulary(name, found.alphabet, False, given)
    ids = id_array(count, vocabulary.size > 256)
    known = set() if given is None else set(given.characters)
    encode_running(name, ids, vocabulary.table(), train, known, found.sha256)
    split = Split(RUNNING, "characters", train, count - train, None)
    return TextData(name, RUNNING, "", vocabulary, split, found.size, found.sha256, "loops", ids, ids)


def _documents(name: str, found: Scan, seed: int, given: Vocabulary | None) -> TextData:
    """Documents: makemore's held-out documents, the boundary-framed ids of every document."""
    count = found.documents
    if count == 0:
        raise DatasetError(f"{name}: no documents (every line is blank)")
    if found.longest > MAX_DOCUMENT_CHARS:
        raise DatasetError(
            f"{name} line {found.longest_line:,}: more than {MAX_DOCUMENT_CHARS:,} characters, too long for a "
            "document (read the file as running text)"
        )
    held = count if given is not None else min(HELD_OUT_DOCUMENTS, int(count * HELD_OUT_FRACTION))
    if given is None and held == 0:
        raise DatasetError(f"{name}: {count} documents, too few to hold 10% out (10 or more are needed)")
    held_out: Sequence[int] = range(count) if held == count else held_out_documents(count, held, seed, SPLIT_STREAM)
    vocabulary = _vocabulary(name, found.document_alphabet, True, given)
    ids, marks = id_array(found.document_characters + count + 1, vocabulary.size > 256), array("I")
    known = set() if given is None else set(given.characters)
    encode_documents(name, ids, marks, vocabulary.table(), held_out, known, given is not None, found.sha256)
    index = DocumentIndex(ids, len(vocabulary.characters), count, marks)
    split = Split(DOCUMENTS, "documents", count - held, held, None if given is not None else seed)
    return TextData(
        name, DOCUMENTS, "", vocabulary, split, found.size, found.sha256, "loops", ids, ids,
        index, TrainingDocuments(count, held_out), held_out, found.longest,
    )  # fmt: skip


def _as_numpy(data: TextData) -> None:
    """Let the vectorized backend see the ids as a NumPy array, without a copy."""
    import numpy as np  # only the vectorized backend gets here, so NumPy is present

    dtype = np.uint8 if data.store.typecode == "B" else np.uint16
    data.ids = np.frombuffer(data.store, dtype=dtype)  # the array's memory, not a copy
    data.backend = "vectorized"
