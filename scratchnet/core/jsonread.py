"""One bounded JSON reader for every JSON scratchnet reads from a file or a request.

:func:`read_json` is ``json.loads`` with the bounds a hostile document could otherwise exceed: its
size, its nesting depth (counted before parsing, so ``"[" * 100000`` is one line, not a
RecursionError), the digits of an integer (Python refuses more than 4300, with a ValueError that
would escape as a traceback), non-finite numbers (``NaN``, ``Infinity``, and ``1e400``, which
Python reads as ``inf``) and, unless asked otherwise, a key given twice in one object. Every
problem is a :class:`JSONInputError`: one line, a ScratchnetError and a ValueError. Standard
library only.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from itertools import accumulate
from typing import Any

from scratchnet.core.errors import ScratchnetError

__all__ = ["MAX_BYTES", "MAX_DEPTH", "MAX_INTEGER_DIGITS", "JSONInputError", "nesting_depth", "read_json"]

MAX_BYTES = 16 * 1024 * 1024  # a model document's limit (spec/model-format.md, "Limits")
MAX_DEPTH = 64  # objects and lists inside one another
MAX_INTEGER_DIGITS = 4300  # Python's own limit for int(str) (sys.get_int_max_str_digits)

_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_DEPTH_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


class JSONInputError(ScratchnetError, ValueError):
    """JSON that scratchnet refuses to read: malformed, too large, too deep, or holding a number it
    cannot hold. The message is one line, without the document's name (callers add it)."""


class _Refused(Exception):
    """Raised from inside ``json.loads``' hooks; turned into a JSONInputError."""


def read_json(
    data: str | bytes,
    what: str = "the JSON",
    *,
    max_bytes: int | None = MAX_BYTES,
    max_depth: int = MAX_DEPTH,
    unique_keys: bool = True,
    max_integer_digits: int = MAX_INTEGER_DIGITS,
) -> Any:
    """The JSON value of ``data`` (UTF-8 bytes or text) within the bounds above; JSONInputError
    otherwise, whose message names the document as ``what`` (``"the request body"``)."""
    if max_bytes is not None and len(data) > max_bytes:
        raise JSONInputError(f"{what} is {len(data)} bytes, more than the limit of {max_bytes}")
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as error:
            raise JSONInputError(f"{what} is not UTF-8 text (byte {error.start})") from None
    else:
        text = data
    depth = nesting_depth(text)
    if depth > max_depth:
        raise JSONInputError(f"{what} is nested too deeply: {depth} levels, more than the limit of {max_depth}")
    hooks: dict[str, Any] = {
        "parse_constant": _constant,
        "parse_float": _float,
        "parse_int": _bounded_int(max_integer_digits),
    }
    if unique_keys:
        hooks["object_pairs_hook"] = _object_without_duplicates
    try:
        return json.loads(text, **hooks)
    except json.JSONDecodeError as error:
        raise JSONInputError(f"{what} is not JSON: {error.msg} at line {error.lineno} column {error.colno}") from None
    except _Refused as error:
        raise JSONInputError(f"{what} {error.args[0]}") from None
    except RecursionError:  # not expected after the depth count; kept so no traceback can escape
        raise JSONInputError(f"{what} is nested too deeply") from None


def nesting_depth(text: str) -> int:
    """The deepest nesting of ``[`` and ``{`` outside strings (an upper bound on what the parser
    would reach in malformed text), counted in C-speed passes: strings removed, brackets kept."""
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    return max(0, max(accumulate(map(_DEPTH_STEP.__getitem__, brackets)), default=0))


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _constant(name: str) -> Any:
    raise _Refused(f"holds {name}, and {name} is not a JSON number")


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _Refused(f"holds the number {text[:40]}, which is too large to hold (it would be {value})")
    return value


def _bounded_int(limit: int) -> Callable[[str], int]:
    """A JSON integer of at most ``limit`` digits: ``int`` of a longer one costs time (quadratic), and
    of one of more than 4,300 digits raises ValueError."""

    def parse(text: str) -> int:
        digits = len(text.lstrip("-"))
        if digits > limit:
            raise _Refused(f"holds an integer of {digits} digits, more than the limit of {limit}")
        return int(text)

    return parse


def _object_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _Refused(f"has the key {_short(key)}, which appears twice in one object")
        result[key] = value
    return result
