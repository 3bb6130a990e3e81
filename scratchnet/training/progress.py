"""A one-line progress bar for the steps of an epoch: drawn on a terminal only, silent when piped.

``Progress(total, label)`` redraws at most ten times a second on ``stream`` (stderr by default) and
only when that stream is a terminal, so logs and pipes get just the per-epoch lines. The line fits
the terminal's width (a narrower bar, then fewer details), so it never wraps into a scroll of bars.
``close()`` wipes the bar, leaving the line free for the epoch summary.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from typing import TextIO

BAR_WIDTH = 30
MIN_BAR_WIDTH = 10
MIN_INTERVAL = 0.1  # seconds between redraws
MIN_COLUMNS = 20  # a terminal narrower than this (or reporting 0 columns) is drawn on as if 80 wide
FALLBACK_COLUMNS = 80


def is_terminal(stream: TextIO) -> bool:
    """Whether ``stream`` is an interactive terminal (False for pipes, files and closed streams)."""
    try:
        return stream.isatty()
    except (AttributeError, ValueError, OSError):
        return False


class Progress:
    """A progress bar over ``total`` steps: ``update(done, note)`` then ``close()``."""

    def __init__(
        self,
        total: int,
        label: str = "",
        *,
        stream: TextIO | None = None,
        enabled: bool | None = None,
        columns: int | None = None,
    ) -> None:
        self.total = max(total, 1)
        self.label = label
        self.stream = sys.stderr if stream is None else stream
        self.enabled = is_terminal(self.stream) if enabled is None else enabled
        self.started = time.perf_counter()
        self.last_draw = 0.0
        self.width = 0  # characters drawn by the last redraw, to wipe them
        self.columns = columns  # the terminal's width; None: asked at each redraw (it may be resized)

    def update(self, done: int, note: str = "") -> None:
        """Show ``done`` of ``total`` steps; redraws are throttled, the final step is always drawn."""
        if not self.enabled:
            return
        now = time.perf_counter()
        if done < self.total and now - self.last_draw < MIN_INTERVAL:
            return
        self.last_draw = now
        self.draw(self.render(done, note, now - self.started, self.terminal_columns() - 1))

    def terminal_columns(self) -> int:
        """The width of the terminal the bar is drawn on; 80 where it cannot be told, or where the
        terminal reports a width too narrow for any bar (some report 0 columns)."""
        if self.columns is not None:
            columns = self.columns
        else:
            try:
                columns = os.get_terminal_size(self.stream.fileno()).columns
            except (AttributeError, ValueError, OSError):
                columns = shutil.get_terminal_size().columns
        return columns if columns >= MIN_COLUMNS else FALLBACK_COLUMNS

    def render(self, done: int, note: str, elapsed: float, width: int | None = None) -> str:
        """The bar as text, e.g. ``epoch 3 [#########.........]  120/391  loss 0.1234  4 s left``, in at
        most ``width`` characters: the bar narrows (to MIN_BAR_WIDTH), then the time left, the note and
        the count are dropped, then the line is cut."""
        fraction = min(max(done / self.total, 0.0), 1.0)
        left = elapsed / done * (self.total - done) if done > 0 else 0.0
        details = [f"{done}/{self.total}", note, f"{left:.0f} s left" if 0 < done < self.total else ""]
        details = [part for part in details if part]
        while True:
            fixed = "  ".join(part for part in (self.label, "[]", *details) if part)
            room = BAR_WIDTH if width is None else min(BAR_WIDTH, width - len(fixed))
            if room >= MIN_BAR_WIDTH or not details:
                break
            details.pop()  # the least useful detail first
        room = max(room, MIN_BAR_WIDTH)
        filled = round(fraction * room)
        bar = "#" * filled + "." * (room - filled)
        text = "  ".join(part for part in (self.label, f"[{bar}]", *details) if part)
        return text if width is None else text[: max(width, 1)]

    def draw(self, text: str) -> None:
        padding = " " * max(self.width - len(text), 0)
        try:
            self.stream.write("\r" + text + padding)
            self.stream.flush()
        except (OSError, ValueError):
            self.enabled = False
            return
        self.width = len(text)

    def close(self) -> None:
        """Wipe the bar so the next line starts clean."""
        if self.enabled and self.width:
            try:
                self.stream.write("\r" + " " * self.width + "\r")
                self.stream.flush()
            except (OSError, ValueError):
                pass
        self.width = 0
