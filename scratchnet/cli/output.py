"""Standard output of the command line, guarded against a reader that quits and a narrow encoding.

``main`` runs every command with ``sys.stdout`` replaced by a :class:`GuardedStdout`:

* **A closed pipe** (``| head``, ``grep -m1``, a pager that quits): the first write that fails
  marks the output lost, points the file descriptor at the null device (so nothing fails again,
  not even Python's last flush at exit), and drops the rest of the output. The command carries on
  (``scratchnet train`` still trains and saves its model, and says so on stderr) and then exits with
  :data:`PIPE_STATUS`, not 0: its output was not all delivered.
* **An encoding without the drawing characters** (``PYTHONIOENCODING=ascii``, a latin-1
  terminal): a write that cannot be encoded is written again with each character the encoding
  lacks replaced by its ASCII stand-in (:data:`ASCII`: one character for one, so drawings keep
  their shape), or by ``?``.
"""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import TextIO

from scratchnet.core.text import printable

# 128 + SIGPIPE: what a shell reports for a command a closed pipe ended, so `set -o pipefail` and
# callers that check the status see that the output was cut short.
PIPE_STATUS = 141

# ASCII stand-ins for the characters scratchnet draws with: the image shades, the frame, the
# sparkline's blocks, and a few symbols of the explanations.
ASCII = {
    "░": ".",
    "▒": ":",
    "▓": "*",
    "█": "#",
    "┌": "+",
    "┐": "+",
    "└": "+",
    "┘": "+",
    "─": "-",
    "│": "|",
    "▁": "_",
    "▂": ".",
    "▃": "-",
    "▄": "=",
    "▅": "+",
    "▆": "*",
    "▇": "%",
    "×": "x",
    "·": ".",
    "→": ">",
    "←": "<",
    "≈": "~",
    "≤": "<",
    "≥": ">",
    "−": "-",
    "–": "-",
    "—": "-",
    "…": ".",
    "’": "'",
    "‘": "'",
    "“": '"',
    "”": '"',
}


def to_encoding(text: str, encoding: str) -> str:
    """``text`` with every character ``encoding`` cannot encode replaced by its ASCII stand-in or ``?``."""
    out = []
    for char in text:
        try:
            char.encode(encoding)
        except UnicodeEncodeError:
            char = ASCII.get(char, "?")
        except LookupError:  # an encoding Python does not know: ASCII is safe everywhere
            char = char if char.isascii() else ASCII.get(char, "?")
        out.append(char)
    return "".join(out)


class GuardedStdout(io.TextIOBase):
    """``stream`` that survives a closed pipe and an encoding it cannot write (see the module's text)."""

    def __init__(self, stream: TextIO) -> None:
        super().__init__()
        self.stream = stream
        self.lost = False
        # Said once on stderr when the pipe closes, by commands whose work goes on (train).
        self.notice: str | None = None

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.stream, "encoding", None) or "utf-8"

    @property
    def errors(self) -> str | None:  # type: ignore[override]
        return getattr(self.stream, "errors", None)

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        if self.lost:
            return False
        try:
            return self.stream.isatty()
        except (AttributeError, ValueError, OSError):
            return False

    def fileno(self) -> int:
        return self.stream.fileno()

    def write(self, text: str) -> int:
        if self.lost:
            return len(text)
        try:
            try:
                self.stream.write(text)
            except UnicodeEncodeError:
                self.stream.write(to_encoding(text, self.encoding))
        except (BrokenPipeError, ValueError) as error:  # ValueError: a closed file
            self._lose(error)
        except OSError as error:
            if not _is_pipe_error(error):
                raise
            self._lose(error)
        return len(text)

    def flush(self) -> None:
        if self.lost:
            return
        try:
            self.stream.flush()
        except (BrokenPipeError, ValueError) as error:
            self._lose(error)
        except OSError as error:
            if not _is_pipe_error(error):
                raise
            self._lose(error)

    def _lose(self, error: BaseException) -> None:
        self.lost = True
        # Point the descriptor at the null device: what is still buffered, and Python's flush at
        # exit, then go nowhere instead of raising BrokenPipeError again.
        with suppress(OSError, ValueError, AttributeError, io.UnsupportedOperation):
            fd = self.stream.fileno()
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, fd)
            os.close(null)
        if self.notice is not None:
            warn(self.notice)


def _is_pipe_error(error: OSError) -> bool:
    import errno

    return error.errno in (errno.EPIPE, errno.EINVAL) or isinstance(error, BrokenPipeError)


def warn(line: str) -> None:
    """``line`` on stderr, if stderr is still open (a closed stderr is not an error of its own), as one
    line: an error or a note quotes names from files, so its control characters are escaped."""
    with suppress(OSError, ValueError):
        print(printable(line), file=sys.stderr, flush=True)


@contextmanager
def guarded_stdout() -> Iterator[GuardedStdout]:
    """Replace ``sys.stdout`` with a :class:`GuardedStdout` while the block runs."""
    original = sys.stdout
    guard = GuardedStdout(original)
    sys.stdout = guard
    try:
        yield guard
    finally:
        guard.flush()
        sys.stdout = original


def current() -> GuardedStdout | None:
    """The guard in place, when a command runs under ``main``."""
    return sys.stdout if isinstance(sys.stdout, GuardedStdout) else None


def stdout_lost() -> bool:
    """Whether standard output was closed before the command finished."""
    guard = current()
    return guard is not None and guard.lost


def when_stdout_closes(notice: str) -> None:
    """Say ``notice`` on stderr if standard output closes from now on (or say it now, if it has)."""
    guard = current()
    if guard is None:
        return
    if guard.lost:
        warn(notice)
    else:
        guard.notice = notice
