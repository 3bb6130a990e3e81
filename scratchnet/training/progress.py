"""A one-line progress bar for the steps of an epoch: drawn on a terminal only, silent when piped.

``Progress(total, label)`` redraws at most ten times a second on ``stream`` (stderr by default) and
only when that stream is a terminal, so logs and pipes get just the per-epoch lines. ``close()``
wipes the bar, leaving the line free for the epoch summary.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

BAR_WIDTH = 30
MIN_INTERVAL = 0.1  # seconds between redraws


def is_terminal(stream: TextIO) -> bool:
    """Whether ``stream`` is an interactive terminal (False for pipes, files and closed streams)."""
    try:
        return stream.isatty()
    except (AttributeError, ValueError, OSError):
        return False


class Progress:
    """A progress bar over ``total`` steps: ``update(done, note)`` then ``close()``."""

    def __init__(
        self, total: int, label: str = "", *, stream: TextIO | None = None, enabled: bool | None = None
    ) -> None:
        self.total = max(total, 1)
        self.label = label
        self.stream = sys.stderr if stream is None else stream
        self.enabled = is_terminal(self.stream) if enabled is None else enabled
        self.started = time.perf_counter()
        self.last_draw = 0.0
        self.width = 0  # characters drawn by the last redraw, to wipe them

    def update(self, done: int, note: str = "") -> None:
        """Show ``done`` of ``total`` steps; redraws are throttled, the final step is always drawn."""
        if not self.enabled:
            return
        now = time.perf_counter()
        if done < self.total and now - self.last_draw < MIN_INTERVAL:
            return
        self.last_draw = now
        self.draw(self.render(done, note, now - self.started))

    def render(self, done: int, note: str, elapsed: float) -> str:
        """The bar as text, e.g. ``epoch 3 [#########.........]  120/391  loss 0.1234  4 s left``."""
        fraction = min(max(done / self.total, 0.0), 1.0)
        filled = round(fraction * BAR_WIDTH)
        bar = "#" * filled + "." * (BAR_WIDTH - filled)
        left = elapsed / done * (self.total - done) if done > 0 else 0.0
        parts = [self.label, f"[{bar}]", f"{done}/{self.total}"]
        if note:
            parts.append(note)
        if done > 0 and done < self.total:
            parts.append(f"{left:.0f} s left")
        return "  ".join(part for part in parts if part)

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
