"""Argument types shared by several subcommands: a bad value is a usage error naming the flag."""

from __future__ import annotations

import argparse


def int_list(text: str) -> list[int]:
    """'784,128,10' -> [784, 128, 10]; every entry a positive integer."""
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated positive integers, got {text!r}") from None
    if not values or any(value < 1 for value in values):
        raise argparse.ArgumentTypeError(f"expected comma-separated positive integers, got {text!r}")
    return values


def whole_number(text: str, minimum: int, expected: str) -> int:
    """``text`` as an integer >= ``minimum``; otherwise an argparse error saying what was ``expected``."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
    return value


def positive_int(text: str) -> int:
    return whole_number(text, 1, "a positive integer")


def non_negative_int(text: str) -> int:
    return whole_number(text, 0, "an integer >= 0")


def non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value >= 0.0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {text!r}")
    return value


def rate(text: str) -> float:
    """A probability in [0, 1), such as a dropout rate."""
    value = non_negative_float(text)
    if value >= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text!r}")
    return value
