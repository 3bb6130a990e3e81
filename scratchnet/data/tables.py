"""CSV files of numbers: one sample per row, streamed into one growing array.

A file is read in chunks of lines (``CHUNK_BYTES`` of text at a time). NumPy's C parser
(``numpy.loadtxt``) turns each chunk into a block of numbers, which is copied into one preallocated
array (its rows estimated from the file's size) that grows by half when the estimate falls short.
The array is uint8 while every value is an integer in 0..255 (pixels, as in Kaggle's
digit-recognizer files; NumPy parses those as uint8 directly, six times as fast as floats), float32
from the first value that is not; so a 100 MB file of pixels is held once, as bytes, plus one chunk.
The label column is cut out of each line as text, because labels may be words.

The first row is a header when any of its cells is not a number; without one, the columns are named
by their position, ``0`` for the first. A chunk that NumPy refuses is read again cell by cell with
the ``csv`` module, so that the error names the line and the column: a row with more or fewer cells
than the header (ragged), a cell that is not a finite number, an empty cell. Every problem is one
:class:`~scratchnet.core.errors.DatasetError` naming the file; nothing else escapes.
"""

from __future__ import annotations

import bisect
import csv
import math
import os
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import suppress
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from scratchnet.core.errors import DatasetError
from scratchnet.core.lazy import lazy_module
from scratchnet.data.recorded import escaped, excerpt
from scratchnet.data.table_store import RowStore

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
else:
    np = lazy_module("numpy", globals(), "np")

__all__ = ["CHUNK_BYTES", "MAX_COLUMNS", "MAX_LINE_CHARS", "Table", "is_number", "read_csv"]

CHUNK_BYTES = 4 << 20  # text per chunk: 4 MB is ~2,400 rows of Kaggle's 785 columns
#: The most columns a CSV file may have (a header of more is refused before it is split into cells).
MAX_COLUMNS = 100_000
#: The longest line a CSV file may have, in characters: 100,000 columns of 80 characters each. A
#: longer line is refused once this much of it is read, never read whole.
MAX_LINE_CHARS = 8 << 20
# A line whose quoted cells all close on it: a quoted cell ("..." with "" for a quote, then any
# text up to the comma, as the csv module reads it) or an unquoted one (a quote inside it is text).
_CELL = r'(?:"(?:[^"]|"")*+"[^,]*+|[^",][^,]*+|)'
_CLOSED = re.compile(rf"{_CELL}(?:,{_CELL})*+")
LABEL = "label"  # the label column's default name


@dataclass(frozen=True, eq=False)
class Table:
    """A CSV file read: ``values`` ``(rows, features)``, uint8 when every value is an integer in 0..255,
    else float32; ``labels``, the label column's cells as written (None when the file has none);
    ``columns``, the feature columns' names in the order of ``values``; ``blank_lines``, the numbers
    of the blank lines skipped (for :meth:`line_of`)."""

    path: str
    columns: tuple[str, ...]
    values: npt.NDArray[Any]
    labels: list[str] | None
    label_column: str | None
    header: bool
    blank_lines: tuple[int, ...] = ()

    @property
    def rows(self) -> int:
        return int(self.values.shape[0])

    def line_of(self, row: int) -> int:
        """The line number (1-based, as an editor shows it) of data row ``row`` (0-based)."""
        line = row + 1 + int(self.header)
        # Each blank line at or before the row's line moves it down one; the list is sorted.
        skipped = 0
        while True:
            now = bisect.bisect_right(self.blank_lines, line + skipped)
            if now == skipped:
                return line + skipped
            skipped = now

    def where(self, row: int) -> str:
        """``train.csv line 17``: where data row ``row`` is."""
        return f"{self.path} line {self.line_of(row)}"


def is_number(cell: str) -> bool:
    """Whether ``cell`` is a number as NumPy's CSV parser reads one (Python's ``float`` also takes
    ``1_000``, which NumPy does not)."""
    if "_" in cell:
        return False
    try:
        float(cell)
    except ValueError:
        return False
    return True


def read_csv(
    path: str | os.PathLike[str],
    *,
    label_column: str | None = LABEL,
    label_required: bool = True,
    features: Sequence[str] | None = None,
    chunk_bytes: int = CHUNK_BYTES,
) -> Table:
    """Read the CSV file ``path`` (see the module's text).

    ``label_column`` names the label column, or gives its position (``"0"`` for the first) when no
    column has that name; None: the file has no label column. Without ``label_required`` a missing
    label column is no error (a file to predict, such as Kaggle's test.csv) and ``labels`` is None.
    ``features`` names the feature columns to read, in that order (the columns a model was trained
    on), any other column being skipped; by default every column except the label's.
    """
    name = os.fspath(path)
    try:
        handle = open(name, encoding="utf-8-sig", newline=None)  # noqa: SIM115 (closed in the finally below)
    except FileNotFoundError:
        raise DatasetError(f"{name}: no such file") from None
    except IsADirectoryError:
        raise DatasetError(f"{name}: is a folder, not a CSV file") from None
    except OSError as error:
        raise DatasetError(f"{name}: cannot read the file ({error.strerror or error})") from None
    try:
        return _Reader(name, handle, os.fstat(handle.fileno()).st_size, chunk_bytes).read(
            label_column, label_required, features
        )
    except UnicodeDecodeError as error:
        raise DatasetError(
            f"{name}: not a text file in UTF-8 (byte {error.start} cannot be read); save it as CSV in UTF-8"
        ) from None
    except OSError as error:
        raise DatasetError(f"{name}: cannot read the file ({error.strerror or error})") from None
    finally:
        handle.close()


Where = Callable[[], str]


def _cells(line: str, where: Where) -> list[str]:
    """One line's cells, as the ``csv`` module splits them (quotes removed); a DatasetError naming
    the line (``where()``) for a cell longer than the module's field limit or another csv error."""
    try:
        return next(csv.reader([line]), [])
    except csv.Error as error:
        if "field limit" in str(error):
            raise DatasetError(
                f"{where()}: a cell of more than {csv.field_size_limit():,} characters, the most a CSV cell may have"
            ) from None
        raise DatasetError(f"{where()}: not a row of CSV cells ({error})") from None


def _check_quotes(line: str, where: Where) -> None:
    """A DatasetError when a quoted cell of ``line`` is still open at its end: a line break inside
    quotes (valid CSV), which this reader does not join (see the module's text)."""
    if '"' in line and not _CLOSED.fullmatch(line):
        raise DatasetError(
            f"{where()}: a quoted cell goes on past the end of the line (a line break inside quotes, or a stray "
            "quote); scratchnet reads one row per line, so a cell cannot hold a line break: remove it"
        )


def _blank(line: str) -> bool:
    return line.isspace() or not line


class _Reader:
    """One pass over an open CSV file (see :func:`read_csv`)."""

    def __init__(self, path: str, handle: Any, size: int, chunk_bytes: int) -> None:
        self.path = path
        self.handle = handle
        self.size = size
        self.chunk_bytes = chunk_bytes
        self.line = 0  # the number of the last line read
        self.blank: list[int] = []
        self.names: list[str] = []

    def lines(self) -> Iterator[tuple[int, list[str]]]:
        """Chunks of non-blank lines (without their line break), each with the line number of its first
        line; blank lines are skipped and remembered. The line numbers of a chunk's lines are
        consecutive except at blanks, which :meth:`numbered` accounts for. The text is read
        ``chunk_bytes`` characters at a time, so a line longer than MAX_LINE_CHARS is refused once
        that much of it is read."""
        rest = ""
        while True:
            text = self.handle.read(self.chunk_bytes)
            if not text and not rest:
                return
            joined = rest + text
            chunk = joined.split("\n")
            rest = chunk.pop() if text else ""
            if len(joined) > MAX_LINE_CHARS and max([len(rest), *map(len, chunk)]) > MAX_LINE_CHARS:
                long = next((k for k, line in enumerate(chunk) if len(line) > MAX_LINE_CHARS), len(chunk))
                raise DatasetError(
                    f"{self.path} line {self.line + long + 1}: longer than {MAX_LINE_CHARS:,} characters, the "
                    "longest line a CSV file may have"
                )
            if not chunk:
                continue
            first = self.line + 1
            self.line += len(chunk)
            if any(_blank(line) for line in chunk):
                kept = []
                for offset, line in enumerate(chunk):
                    if _blank(line):
                        self.blank.append(first + offset)
                    else:
                        kept.append(line)
                chunk = kept
            if chunk:
                yield first, chunk

    def numbered(self, first: int, count: int) -> list[int]:
        """The line numbers of the ``count`` non-blank lines of a chunk that starts at line ``first``."""
        numbers: list[int] = []
        line = first
        blanks = set(self.blank)
        while len(numbers) < count:
            if line not in blanks:
                numbers.append(line)
            line += 1
        return numbers

    def read(self, label_column: str | None, label_required: bool, wanted: Sequence[str] | None) -> Table:
        chunks = self.lines()
        head = next(chunks, None)
        if head is None:
            raise DatasetError(f"{self.path}: the file is empty")
        first_line, lines = head
        where = f"{self.path} line {self.numbered(first_line, 1)[0]}"
        commas = lines[0].count(",")
        if commas >= MAX_COLUMNS and '"' not in lines[0]:  # refused before it is split into cells
            raise DatasetError(f"{where}: {commas + 1:,} columns, more than the {MAX_COLUMNS:,} a CSV file may have")
        _check_quotes(lines[0], lambda: where)
        top = _cells(lines[0], lambda: where)
        if len(top) > MAX_COLUMNS:
            raise DatasetError(f"{where}: {len(top):,} columns, more than the {MAX_COLUMNS:,} a CSV file may have")
        # a word is a header's name, unless it is in the label column given by position (a row of data
        # whose label is a word, in a file without a header)
        by_position = label_column.strip() if label_column is not None and label_column.strip().isdigit() else None
        header = any(
            cell.strip() and not is_number(cell.strip()) and str(k) != by_position for k, cell in enumerate(top)
        )
        names = [cell.strip() for cell in top] if header else [str(k) for k in range(len(top))]
        seen: set[str] = set()
        duplicate = next((n for n in names if n in seen or seen.add(n)), None)  # type: ignore[func-returns-value]
        if duplicate is not None:
            raise DatasetError(f"{self.path}: the header names the column {excerpt(duplicate)} twice")
        self.names = names
        label = self.label_index(names, header, label_column, label_required)
        features = self.feature_indices(names, label, wanted, header)
        if header:  # the data starts on the line after the header's (which blank lines may precede)
            lines, first_line = lines[1:], self.numbered(first_line, 1)[0] + 1
        store = RowStore(len(features))
        if lines:  # room for the rows the file's size suggests, from the length of the first lines
            per_row = sum(len(line) + 1 for line in lines) / len(lines)  # with its line break
            store.reserve(int(self.size / per_row * 1.02) + 16)
        labels: list[str] | None = [] if label is not None else None
        pending: Iterator[tuple[int, list[str]]] = iter([(first_line, lines)] if lines else [])
        for start, chunk in _chained(pending, chunks):
            rows = self.quoted_rows(chunk, start)
            block = self.parse(chunk, start, len(names), features, store.array.dtype == np.uint8)
            store.add(block)
            if labels is not None and label is not None:
                labels += self.labels_of(chunk, start, label, len(names), rows)
        if store.rows == 0:
            raise DatasetError(
                f"{self.path}: the file has a header but no rows of data"
                if header
                else f"{self.path}: the file has no rows of data"
            )
        return Table(
            self.path,
            tuple(names[k] for k in features),
            store.values(),
            labels,
            None if label is None else names[label],
            header,
            tuple(self.blank),
        )

    def label_index(self, names: list[str], header: bool, label_column: str | None, required: bool) -> int | None:
        if label_column is None:
            return None
        if header and label_column in names:
            return names.index(label_column)
        text = label_column.strip()
        if text.isdigit() and text.isascii():
            position = int(text)
            if position < len(names):
                return position
            if required:
                raise DatasetError(
                    f"{self.path}: the label column is column {position}, but the rows have {len(names)} columns "
                    f"(0..{len(names) - 1})"
                )
            return None
        if not required:
            return None
        if not header:
            raise DatasetError(
                f"{self.path}: the first row is numbers, not a header, so no column is named {excerpt(label_column)}; "
                "give the label column's position with --label-column N (0 for the first column)"
            )
        shown = ", ".join(escaped(name) for name in names[:8]) + (", ..." if len(names) > 8 else "")
        raise DatasetError(
            f"{self.path}: no column is named {excerpt(label_column)} (the columns are {shown}); name the label column "
            "with --label-column NAME, or give its position (0 for the first column)"
        )

    def feature_indices(
        self, names: list[str], label: int | None, wanted: Sequence[str] | None, header: bool
    ) -> list[int]:
        if wanted is None or not header:
            # without a header the columns have no names: the model's features are the columns
            # beside the label, in order
            features = [k for k in range(len(names)) if k != label]
            if wanted is not None and len(features) != len(wanted):
                raise DatasetError(
                    f"{self.path}: the model was trained on {len(wanted)} feature columns, and this file (without a "
                    f"header) has {len(features)} beside the label"
                )
        else:
            index = {n: k for k, n in enumerate(names)}
            missing = [n for n in wanted if n not in index]
            if missing:
                shown = ", ".join(excerpt(n) for n in missing[:5]) + (", ..." if len(missing) > 5 else "")
                raise DatasetError(
                    f"{self.path}: the model was trained on {len(wanted)} feature columns, and this file has no "
                    f"column {shown}"
                )
            features = [index[n] for n in wanted]
            if label is not None and label in set(features):
                raise DatasetError(
                    f"{self.path}: the label column {excerpt(names[label])} is one of the model's features"
                )
        if not features:
            raise DatasetError(f"{self.path}: there are no feature columns beside the label column")
        return features

    def quoted_rows(self, chunk: list[str], start: int) -> list[list[str]] | None:
        """The cells of every line of ``chunk`` when a line holds a quote (None when none does); a
        DatasetError for a quoted cell that goes on past the end of its line (:func:`_check_quotes`).
        The csv module joins such a cell with the next line, so fewer rows than lines show one."""
        if not any('"' in line for line in chunk):
            return None
        try:
            rows = list(csv.reader(chunk))
        except csv.Error:
            rows = [_cells(line, partial(self.located, chunk, start, k)) for k, line in enumerate(chunk)]
        if len(rows) != len(chunk) or not _CLOSED.fullmatch(chunk[-1]):  # the last line has no next one
            for k, line in enumerate(chunk):
                _check_quotes(line, partial(self.located, chunk, start, k))
        return rows

    def parse(self, chunk: list[str], start: int, width: int, features: list[int], pixels: bool) -> npt.NDArray[Any]:
        """The feature columns of ``chunk``, ``(lines, len(features))``: uint8 when ``pixels`` (the
        rows so far are) and every value of the chunk is an integer in 0..255 (NumPy parses those
        about six times as fast as floats), else float32; a DatasetError naming the line and the
        column for any row that is not ``width`` numbers."""
        commas = width - 1
        if any(line.count(",") != commas for line in chunk):  # NumPy skips extra cells it was not asked for
            for offset, line in enumerate(chunk):
                if line.count(",") != commas and (
                    '"' not in line or len(_cells(line, partial(self.located, chunk, start, offset))) != width
                ):
                    self.raise_at(chunk, start, offset, width, features)
        block: npt.NDArray[Any] | None = None
        if pixels:
            with suppress(ValueError, TypeError, OverflowError):
                block = self.loadtxt(chunk, width, features, np.uint8)
        if block is None:
            try:
                block = self.loadtxt(chunk, width, features, np.float32)
            except (ValueError, TypeError, OverflowError) as error:
                for offset in range(len(chunk)):
                    self.check_line(chunk, start, offset, width, features)
                numbers = self.numbered(start, len(chunk))
                raise DatasetError(
                    f"{self.path} lines {numbers[0]}-{numbers[-1]}: not a table of numbers ({escaped(str(error), 120)})"
                ) from None
            finite = np.isfinite(block)
            if not finite.all():
                row, column = (int(k[0]) for k in np.nonzero(~finite))
                where = self.located(chunk, start, row)
                raise DatasetError(
                    f"{where}, column {self.column_name(features[column])}: "
                    f"{excerpt(_cells(chunk[row], lambda: where)[features[column]].strip())} is not a finite number"
                )
        if block.shape != (len(chunk), len(features)):
            raise DatasetError(f"{self.path}: lines from {start} could not be read as {len(features)} numbers each")
        return block

    @staticmethod
    def loadtxt(chunk: list[str], width: int, features: list[int], dtype: Any) -> npt.NDArray[Any]:
        block: npt.NDArray[Any] = np.loadtxt(
            chunk,
            delimiter=",",
            dtype=dtype,
            usecols=None if features == list(range(width)) else features,
            comments=None,
            quotechar='"',
            ndmin=2,
        )
        return block

    def raise_at(self, chunk: list[str], start: int, offset: int, width: int, features: list[int]) -> None:
        self.check_line(chunk, start, offset, width, features)
        raise DatasetError(f"{self.path} line {self.numbered(start, offset + 1)[-1]}: not a row of numbers")

    def check_line(self, chunk: list[str], start: int, offset: int, width: int, features: list[int]) -> None:
        """A DatasetError for line ``offset`` of ``chunk`` if it is not ``width`` cells with numbers
        in the feature columns."""
        where = f"{self.path} line {self.numbered(start, offset + 1)[-1]}"
        cells = _cells(chunk[offset], lambda: where)
        if len(cells) != width:
            raise DatasetError(
                f"{where} has {len(cells)} cell{'s' if len(cells) != 1 else ''}, but the rows have {width} "
                "(a ragged row)"
            )
        for k in features:
            cell = cells[k].strip()
            if not cell:
                raise DatasetError(f"{where}, column {self.column_name(k)}: the cell is empty")
            if not is_number(cell):
                raise DatasetError(f"{where}, column {self.column_name(k)}: {excerpt(cell)} is not a number")
            if not math.isfinite(float(np.float32(float(cell)))):
                raise DatasetError(f"{where}, column {self.column_name(k)}: {excerpt(cell)} is not a finite number")

    def column_name(self, k: int) -> str:
        return excerpt(self.names[k])

    def located(self, chunk: list[str], start: int, row: int) -> str:
        """Where row ``row`` of a chunk is: ``train.csv line 17``."""
        return f"{self.path} line {self.numbered(start, row + 1)[-1]}"

    def labels_of(
        self, chunk: list[str], start: int, label: int, width: int, rows: list[list[str]] | None
    ) -> list[str]:
        """The label cell of every line of ``chunk``, stripped of blanks and quotes (``rows``: the
        lines' cells, when a line holds a quote); a DatasetError for an empty one."""
        if rows is not None:
            ragged = next((k for k, row in enumerate(rows) if len(row) != width), None)
            if ragged is not None:
                self.check_line(chunk, start, ragged, width, [])
            cells = [row[label].strip() for row in rows]
        elif label == 0:
            cells = [line.split(",", 1)[0].strip() for line in chunk]
        elif label == width - 1:
            cells = [line.rsplit(",", 1)[1].strip() for line in chunk]
        else:
            cells = [line.split(",", label + 1)[label].strip() for line in chunk]
        if not all(cells):
            offset = cells.index("")
            raise DatasetError(f"{self.located(chunk, start, offset)}: the label cell is empty")
        return cells


def _chained(*parts: Iterator[tuple[int, list[str]]]) -> Iterator[tuple[int, list[str]]]:
    for part in parts:
        yield from part
