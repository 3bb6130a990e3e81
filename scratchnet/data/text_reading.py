"""Reading a text file in bounded chunks, twice: a first pass that checks it and counts (:func:`scan`), a
second that writes its token ids into one preallocated array (:func:`encode_running`,
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
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import BinaryIO

from scratchnet.core.errors import DatasetError

CHUNK_BYTES = 1 << 20  # read 1 MiB at a time
MAX_TEXT_BYTES = 1 << 30  # 1 GiB: the largest text file read (its ids take 1 or 2 bytes a character)
MAX_DOCUMENT_CHARS = 10_000  # the longest line that can be a document
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
        raise DatasetError(f"{path}: no such file") from None
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


def scan(path: str) -> Scan:
    """The first pass over ``path``: checks it is UTF-8 and counts (see :class:`Scan`)."""
    chunks, result = Chunks(path), Scan(path)

    def counted() -> Iterator[str]:
        for text in chunks:
            result.characters += len(text)
            result.alphabet.update(text)
            yield text

    for number, lines in complete_lines(counted()):
        result.lines = number + len(lines) - 1
        stripped = [line.strip() for line in lines]
        documents = [text for text in stripped if text]
        if not documents:
            continue
        result.documents += len(documents)
        result.document_characters += sum(map(len, documents))
        result.document_alphabet.update("".join(documents))
        longest = max(map(len, documents))
        if longest > result.longest:
            result.longest, result.longest_line = longest, number + [len(t) for t in stripped].index(longest)
        if result.spaced_line is None:
            spaced = [i for i, text in enumerate(stripped) if len(text.split(maxsplit=1)) > 1]
            if spaced:
                result.spaced_line = number + spaced[0]
    result.size, result.sha256 = chunks.size, chunks.sha256
    return result


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
            known.update(text[:cut])
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
    missing = set(text[start:]) - known
    if missing:
        index = min(text.index(character, start) for character in missing)
        line = lines + text.count("\n", 0, index) + 1
        raise DatasetError(
            f"{path} line {line}: the character {describe_character(text[index])} is not in the vocabulary"
        )


def encode_documents(
    path: str,
    ids: array[int],
    offsets: array[int],
    table: Mapping[int, int],
    held_out: set[int],
    known: set[str],
    check_all: bool,
    sha256: str,
) -> None:
    """The second pass for documents: ``ids`` gets the boundary id (``table[ord("\\n")]``), then each
    document's ids followed by the boundary id; ``offsets`` gets each document's leading boundary
    position and the last boundary's. The characters of documents not in ``held_out`` add to
    ``known``; a held-out document (every document if ``check_all``) with a character ``known`` lacks is
    a DatasetError naming it and its line."""
    chunks, view, size = Chunks(path), memoryview(ids).cast("B"), ids.itemsize
    held: list[tuple[int, str]] = []  # (line, its distinct characters in order) of each held-out document
    index, position = 0, 1
    try:
        view[0:size] = _encoded("\n", table, size == 2)
        for number, lines in complete_lines(iter(chunks)):
            documents: list[str] = []
            for offset, line in enumerate(lines):
                text = line.strip()
                if not text:
                    continue
                if check_all:
                    _check_known(path, text, 0, known, number + offset - 1)
                elif index in held_out:
                    held.append((number + offset, "".join(dict.fromkeys(text))))
                else:
                    known.update(text)
                offsets.append(position - 1)
                position += len(text) + 1
                documents.append(text)
                index += 1
            data = _encoded("\n".join(documents) + "\n", table, size == 2) if documents else b""
            start = (position - len(data) // size) * size
            view[start : start + len(data)] = data
    except (ValueError, UnicodeEncodeError):
        raise _changed(path) from None
    offsets.append(position - 1)
    if position != len(ids) or chunks.sha256 != sha256:
        raise _changed(path)
    for held_line, characters in held:
        _check_known(path, characters, 0, known, held_line - 1)


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
