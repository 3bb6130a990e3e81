"""Argument types shared by several subcommands: a bad value is a usage error naming the flag."""

from __future__ import annotations

import argparse


def int_list(text: str) -> list[int]:
    """'784,128,10' -> [784, 128, 10]; every entry a positive integer (an empty one, as in '32,,32', is
    a mistake, not a separator to skip)."""
    expected = f"expected comma-separated positive integers, got {text!r}"
    try:
        values = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(expected) from None
    if not values or any(value < 1 for value in values):
        raise argparse.ArgumentTypeError(expected)
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


SEED_MAX = 2**64 - 1  # seeds are 64-bit (scratchnet.core.rng)


def seed(text: str) -> int:
    """A seed: an integer in 0..2^64-1 (a larger one would run as its low 64 bits, not as given)."""
    value = whole_number(text, 0, "an integer in 0..2^64-1")
    if value > SEED_MAX:
        raise argparse.ArgumentTypeError(f"expected an integer in 0..2^64-1, got {text!r}")
    return value


def finite_float(text: str, minimum: float, inclusive: bool) -> float:
    """``text`` as a finite number >= (or >) ``minimum``; otherwise an argparse error saying so."""
    bound = f"{'>=' if inclusive else '>'} {minimum:g}"
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number {bound}, got {text!r}") from None
    if not (value >= minimum if inclusive else value > minimum) or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a finite number {bound}, got {text!r}")
    return value


def non_negative_float(text: str) -> float:
    return finite_float(text, 0.0, inclusive=True)


def positive_float(text: str) -> float:
    return finite_float(text, 0.0, inclusive=False)


def rate(text: str) -> float:
    """A probability in [0, 1), such as a dropout rate."""
    value = non_negative_float(text)
    if value >= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text!r}")
    return value


def label_smoothing(text: str) -> float:
    """A label-smoothing eps in [0, 1] (spec/math.md eq. 5.7)."""
    value = non_negative_float(text)
    if value > 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {text!r}")
    return value


def dimensions(text: str, counts: tuple[int, ...], expected: str) -> tuple[int, ...]:
    """``text`` as ``count`` positive integers separated by commas (or ``x``), ``count`` one of
    ``counts``; otherwise an argparse error saying what was ``expected``."""
    parts = text.replace("x", ",").replace("X", ",").split(",")
    try:
        values = tuple(int(part) for part in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
    if len(values) not in counts or any(value < 1 for value in values):
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
    return values


def image_shape(text: str) -> tuple[int, ...]:
    """``C,H,W`` (or ``H,W`` for one channel): the shape of the images a CSV file's rows hold."""
    return dimensions(text, (2, 3), "C,H,W or H,W: positive integers, such as 3,32,32")


def image_size(text: str) -> tuple[int, int]:
    """``H,W`` (or ``HxW``): the height and width to resize pictures to."""
    height, width = dimensions(text, (2,), "H,W: two positive integers, such as 32,32")
    return height, width


def fraction(text: str) -> float:
    """A fraction in [0, 1), such as the part of a file held out for testing."""
    return rate(text)


def column_names(text: str) -> tuple[str, str]:
    """``A,B``: the two column names of a predictions file (the sample's id, then its class)."""
    parts = [part.strip() for part in text.split(",")]
    if len(parts) != 2 or not all(parts) or parts[0] == parts[1]:
        raise argparse.ArgumentTypeError(f"expected two different column names 'ID,LABEL', got {text!r}")
    return parts[0], parts[1]


def add_picture_arguments(parser: argparse.ArgumentParser) -> None:
    """--invert and --preprocess: how --image is read, the same for predict and explain."""
    parser.add_argument(
        "--invert",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="--image is dark ink on a light background (default: inverted when its border is light, "
        "and the output says so; --no-invert never inverts)",
    )
    parser.add_argument(
        "--preprocess",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="make --image look like the model's training images: for a digit model, crop to the ink, scale it "
        "into 20x20 and centre it by its centre of mass in 28x28, as MNIST's digits are and as scratchnet serve "
        "does; for a Fashion-MNIST model, scale the whole picture to fit 28x28 (default for models of MNIST and "
        "Fashion-MNIST; --preprocess for any model of 28x28 grey images; --no-preprocess only scales a picture "
        "of another size to fit)",
    )
