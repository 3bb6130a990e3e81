"""Reading a text file in bounded chunks (256 KiB), twice: a first pass that checks it and counts
(:func:`scan`), a second that writes its token ids into one preallocated array (:func:`encode_running`,
:func:`encode_documents`).

Memory is the ids array plus about one chunk: the file is never held whole as ``bytes`` or ``str``. A line is
never held whole either beyond :data:`MAX_DOCUMENT_CHARS` characters (a longer line is cut short and marked
too long), so a file of one huge line costs no more than a file of many.
"""

from __future__ import annotations

import codecs
import hashlib
import os
import stat
import sys
from array import array
from bisect import bisect_left
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import accumulate
from typing import BinaryIO

from scratchnet.core.errors import DatasetError
from scratchnet.data.text_documents import STRIDE

CHUNK_BYTES = 1 << 18  # read 256 KiB at a time: a chunk of short lines costs about 20 times its size as strings
MAX_TEXT_BYTES = 1 << 30  # 1 GiB: the largest text file read (its ids take 1 or 2 bytes a character)
MAX_DOCUMENT_CHARS = 10_000  # the longest line that can be a document
DETECT_MAX_CHARS = 64  # the detector takes a file with a longer line for running text (names are at most 15)
BOM = "\ufeff"  # a byte-order mark at the start of the file is not text
UTF16 = "utf-16-le" if sys.byteorder == "little" else "utf-16-be"  # array('H')'s byte order


def describe_character(character: str) -> str:
    """A character as an error names it, escaped so that the message stays one line: ``'\\n' (U+000A)``."""
    return f"{character!r} (U+{ord(character):04X})"


def open_text_file(path: str) -> BinaryIO:
    """The file opened for reading bytes; a DatasetError if it is missing, a folder, not a regular file or
    larger than MAX_TEXT_BYTES."""
    try:
        handle = open(path, "rb")  # noqa: SIM115 (returned to the caller, who closes it)
    except FileNotFoundError:
        raise DatasetError(f"{path}: no such file or folder") from None  # as --data says of any missing path
    except IsADirectoryError:
        raise DatasetError(f"{path}: is a folder, not a text file") from None
    except OSError as error:
        raise DatasetError(f"{path}: cannot read the file ({error.strerror or error})") from None
    info = os.fstat(handle.fileno())
    if not stat.S_ISREG(info.st_mode):
        handle.close()
        raise DatasetError(f"{path}: not a regular file")
    if info.st_size > MAX_TEXT_BYTES:
        handle.close()
        raise DatasetError(f"{path}: {info.st_size:,} bytes, more than the {MAX_TEXT_BYTES:,} a text file may have")
    return handle


def file_identity(path: str) -> dict[str, object]:
    """``{"size": bytes, "sha256": hex}`` of a file, read in chunks: what a model records to find its text
    again. (It belongs in scratchnet/data/recorded.py once that module exists.)"""
    digest, size = hashlib.sha256(), 0
    with open_text_file(path) as handle:
        while raw := _read(handle, path):
            digest.update(raw)
            size += len(raw)
    return {"size": size, "sha256": digest.hexdigest()}


def _read(handle: BinaryIO, path: str) -> bytes:
    try:
        return handle.read(CHUNK_BYTES)
    except OSError as error:
        raise DatasetError(f"{path}: cannot read the file ({error.strerror or error})") from None


@dataclass
class Chunks:
    """The file's text, a chunk at a time (``iter``), strictly UTF-8 and without a leading byte-order mark;
    its size and sha256 are known once the iteration has ended."""

    path: str
    size: int = 0
    sha256: str = ""

    def __iter__(self) -> Iterator[str]:
        decoder = codecs.getincrementaldecoder("utf-8")("strict")
        digest, lines, first = hashlib.sha256(), 0, True
        with open_text_file(self.path) as handle:
            while True:
                raw = _read(handle, self.path)
                self.size += len(raw)
                if self.size > MAX_TEXT_BYTES:  # grew after the size check, or lied about its size
                    raise DatasetError(f"{self.path}: more than the {MAX_TEXT_BYTES:,} bytes a text file may have")
                digest.update(raw)
                try:
                    text = decoder.decode(raw, final=not raw)
                except UnicodeDecodeError as error:
                    line = lines + error.object[: error.start].count(b"\n") + 1
                    byte = error.object[error.start]
                    raise DatasetError(f"{self.path} line {line}: not UTF-8 text (byte 0x{byte:02x})") from None
                if first and text:
                    text, first = text.removeprefix(BOM), False
                lines += text.count("\n")
                if text:
                    yield text
                if not raw:
                    break
        self.sha256 = digest.hexdigest()


def complete_lines(chunks: Iterator[str]) -> Iterator[tuple[int, list[str]]]:
    """(number of the first line, the lines) for the text's lines a chunk at a time, without their "\\n".
    A line longer than MAX_DOCUMENT_CHARS comes cut to MAX_DOCUMENT_CHARS + 1 characters (too long to be
    a document, which is all that matters about it here)."""
    carry, skipping, number = "", False, 1
    for text in chunks:
        parts = text.split("\n")
        if skipping and len(parts) == 1:
            continue  # still inside an overlong line
        parts[0] = carry if skipping else carry + parts[0]
        carry, skipping = parts.pop(), False
        if len(carry) > MAX_DOCUMENT_CHARS:
            carry, skipping = carry[: MAX_DOCUMENT_CHARS + 1], True
        if parts:
            yield number, parts
            number += len(parts)
    if carry:
        yield number, [carry]


@dataclass
class Scan:
    """What the first pass learns: the counts and characters of the file read as running text and as
    documents (its stripped, non-empty lines), and the lines that decide between the two."""

    path: str
    size: int = 0
    sha256: str = ""
    characters: int = 0  # as running text, every character, newlines included
    lines: int = 0
    alphabet: set[str] = field(default_factory=set)
    documents: int = 0  # as documents: the lines that are not blank
    document_characters: int = 0
    document_alphabet: set[str] = field(default_factory=set)
    longest: int = 0  # characters in the longest document
    longest_line: int = 0
    spaced_line: int | None = None  # the first line with a space (or other whitespace) inside its text

    @property
    def not_documents(self) -> bool:
        """Whether the detector must call it running text: a line too long, or with a space inside."""
        return self.longest > DETECT_MAX_CHARS or self.spaced_line is not None


def scan(path: str, documents: bool | None = None) -> Scan:
    """The first pass over ``path``: checks it is UTF-8 and counts (see :class:`Scan`). The document counts
    are kept if ``documents`` is True, not at all if False, and if None until the file cannot be documents."""
    chunks, result, last = Chunks(path), Scan(path), "\n"

    def counted() -> Iterator[str]:
        nonlocal last
        for text in chunks:
            result.characters += len(text)
            result.lines += text.count("\n")
            result.alphabet.update(new_characters(text, result.alphabet))
            last = text[-1]
            yield text

    stream = counted()
    if documents is not False:
        for number, lines in complete_lines(stream):
            _count_documents(result, number, lines)
            if documents is None and result.not_documents:
                break  # decided: running text
    for _ in stream:  # the rest, for the counts and the hash
        pass
    result.lines += last != "\n"
    result.size, result.sha256 = chunks.size, chunks.sha256
    return result


def _count_documents(result: Scan, number: int, lines: list[str]) -> None:
    """Add lines ``number``, ``number + 1``, ... to the document counts."""
    stripped = list(map(str.strip, lines))
    documents = list(filter(None, stripped))
    if not documents:
        return
    result.documents += len(documents)
    result.document_characters += sum(map(len, documents))
    result.document_alphabet.update(new_characters("".join(documents), result.document_alphabet))
    longest = max(map(len, documents))
    if longest > result.longest:
        result.longest, result.longest_line = longest, number + [len(t) for t in stripped].index(longest)
    if result.spaced_line is None and any(c.isspace() for c in result.document_alphabet):
        # a stripped line holds whitespace only inside; this chunk brought the first
        result.spaced_line = number + next(i for i, t in enumerate(stripped) if any(c.isspace() for c in t))


def new_characters(text: str, known: set[str]) -> set[str]:
    """The distinct characters of ``text`` that ``known`` lacks. ASCII text (the common case, which str
    knows without looking) goes through bytes.translate, which deletes the known bytes in C and leaves
    only the new ones: several times faster than a set of every character."""
    if not text.isascii():
        return set(text) - known
    rest = text.encode("ascii").translate(None, "".join(c for c in known if c.isascii()).encode("ascii"))
    found: set[str] = set()
    while rest:
        sample = set(rest[:4096].decode("ascii"))
        found |= sample
        rest = rest.translate(None, "".join(sample).encode("ascii"))
    return found


def id_array(count: int, wide: bool) -> array[int]:
    """``count`` zero token ids, one byte each (``'B'``) or two for a vocabulary over 256 (``'H'``)."""
    return array("H" if wide else "B", [0]) * count


def _encoded(text: str, table: Mapping[int, int], wide: bool) -> bytes:
    """The ids of ``text``'s characters as the bytes of an id array: translate maps each character to
    the character whose code is its id, and an 8-bit (or 16-bit) encoding writes those codes."""
    translated = text.translate(table)
    return translated.encode(UTF16, "surrogatepass") if wide else translated.encode("latin-1")


def _changed(path: str) -> DatasetError:
    return DatasetError(f"{path}: the file changed while it was read")


def encode_running(
    path: str, ids: array[int], table: Mapping[int, int], train: int, known: set[str], sha256: str
) -> None:
    """The second pass for running text: every character's id into ``ids``. The first ``train``
    characters add to ``known``; a character after them that ``known`` lacks is a DatasetError naming it
    and its line (with ``train`` 0 and ``known`` a vocabulary: every character must be in it)."""
    chunks, view = Chunks(path), memoryview(ids).cast("B")
    position, lines = 0, 0
    try:
        for text in chunks:
            cut = min(max(train - position, 0), len(text))
            known.update(new_characters(text[:cut], known))
            _check_known(path, text, cut, known, lines)
            data = _encoded(text, table, ids.itemsize == 2)
            view[position * ids.itemsize : position * ids.itemsize + len(data)] = data
            position += len(text)
            lines += text.count("\n")
    except (ValueError, UnicodeEncodeError):
        raise _changed(path) from None
    if position != len(ids) or chunks.sha256 != sha256:
        raise _changed(path)


def _check_known(path: str, text: str, start: int, known: set[str], lines: int) -> None:
    """A DatasetError for the first character of ``text[start:]`` that ``known`` lacks."""
    missing = new_characters(text[start:], known)
    if missing:
        index = min(text.index(character, start) for character in missing)
        line = lines + text.count("\n", 0, index) + 1
        raise DatasetError(
            f"{path} line {line}: the character {describe_character(text[index])} is not in the vocabulary"
        )


def encode_documents(
    path: str,
    ids: array[int],
    marks: array[int],
    table: Mapping[int, int],
    held_out: Sequence[int],
    known: set[str],
    check_all: bool,
    sha256: str,
) -> None:
    """The second pass for documents: ``ids`` gets the boundary id (``table[ord("\\n")]``), then each
    document's ids followed by the boundary id; ``marks`` the position of the leading boundary of every
    STRIDE-th document (text_documents.py). The characters of the documents not in ``held_out`` (sorted)
    add to ``known``; a held-out document (every document if ``check_all``) with a character ``known``
    lacks is a DatasetError naming it and its line."""
    chunks, view, size = Chunks(path), memoryview(ids).cast("B"), ids.itemsize
    held: list[tuple[int, str]] = []  # (line, its distinct characters) of each held-out document
    count, position = 0, 1  # documents so far; where the next document starts
    try:
        view[0:size] = _encoded("\n", table, size == 2)
        for number, lines in complete_lines(iter(chunks)):
            stripped = list(map(str.strip, lines))
            documents = list(filter(None, stripped))
            if not documents:
                continue
            first, count = count, count + len(documents)
            if check_all:
                for k in _with_new_characters(documents, known):
                    _check_known(path, documents[k], 0, known, _lines_of(number, stripped)[k] - 1)
            else:
                here = [h - first for h in held_out[bisect_left(held_out, first) : bisect_left(held_out, count)]]
                if here:
                    lines_of = _lines_of(number, stripped)
                    held += [(lines_of[k], "".join(dict.fromkeys(documents[k]))) for k in here]
                cuts = [-1, *here, len(documents)]  # the training documents lie between the held-out ones
                training = "".join("".join(documents[a + 1 : b]) for a, b in zip(cuts, cuts[1:]))
                known.update(new_characters(training, known))
            before = list(accumulate(map(len, documents), initial=0))  # characters before the k-th
            marks.extend(position - 1 + before[k] + k for k in range(-first % STRIDE, len(documents), STRIDE))
            data = _encoded("\n".join(documents) + "\n", table, size == 2)
            view[position * size : position * size + len(data)] = data
            position += len(data) // size
    except (ValueError, UnicodeEncodeError):
        raise _changed(path) from None
    if position != len(ids) or chunks.sha256 != sha256:
        raise _changed(path)
    for held_line, characters in held:
        _check_known(path, characters, 0, known, held_line - 1)


def _lines_of(number: int, stripped: list[str]) -> Sequence[int]:
    """The line of each document of a chunk whose first line is ``number``."""
    if all(stripped):  # no blank line
        return range(number, number + len(stripped))
    return [number + i for i, text in enumerate(stripped) if text]


def _with_new_characters(documents: list[str], known: set[str]) -> list[int]:
    """The positions of the documents with a character ``known`` lacks (none, mostly: checked at once)."""
    if not new_characters("".join(documents), known):
        return []
    return [k for k, text in enumerate(documents) if new_characters(text, known)]


def held_out_documents(count: int, held: int, seed: int, stream: int) -> list[int]:
    """The last ``held`` entries of the permutation ``rng.permutation(seed, stream, count)`` (eq. 10.4),
    as makemore holds out the last entries of a random permutation, sorted. Fisher-Yates fixes the
    positions from the end first, so only ``held`` swaps are needed, kept in a dictionary: memory and time
    are O(held), whatever the number of documents."""
    from scratchnet.core import rng  # the counter-based generator, shared by both backends

    draws = rng.uniforms(seed, stream, held, start=count - held)
    swapped: dict[int, int] = {}
    for i in range(count - 1, count - held - 1, -1):
        j = int(draws[i - (count - held)] * (i + 1))  # uniform in 0..i, as rng.permutation draws it
        swapped[i], swapped[j] = swapped.get(j, j), swapped.get(i, i)
    return sorted(swapped.get(i, i) for i in range(count - held, count))
