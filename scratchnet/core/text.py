"""Text from a file, made safe to print on a terminal: control characters shown as escapes.

A class name, a dataset name, a column name or a path read from a model file or a data file can hold
characters a terminal obeys: ESC sequences that clear the screen, set the window title or recolour
what follows, a carriage return that overwrites the line, a newline that forges one, a bidirectional
override that shows text in another order. Everything scratchnet prints that came from a file goes
through :func:`printable` (docs/errors.md, "Text printed from a file"). It escapes what ``repr``
escapes, as ``scratchnet explain`` shows class names, without the quotes: every character Python
does not count as printable (``str.isprintable``: controls, format characters such as the
bidirectional overrides, separators other than the space) is written as in a string literal
(``\\x1b``, ``\\n``, ``\\u202e``). Letters, digits and symbols of any script are kept.
"""

from __future__ import annotations

__all__ = ["printable"]


def printable(text: object) -> str:
    """``str(text)`` with each character that is not printable written as its escape: ESC as the four
    characters backslash, x, 1, b; a newline as backslash, n."""
    text = str(text)
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in text)
