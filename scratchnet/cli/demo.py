"""``scratchnet demo spiral``: a linear model fails on three spirals, one hidden ReLU layer succeeds.

Both models are trained with the loops backend and drawn in the terminal as a grid of characters,
one per class, with the training points on top. Needs neither NumPy nor matplotlib.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import TextIO

from scratchnet.cli.options import positive_int, seed
from scratchnet.core.registry import layer_type
from scratchnet.teaching.sparkline import sparkline
from scratchnet.teaching.spiral import DemoResult, Spiral, TrainedModel, decision_grid, run_demo

REGION = ".-:"  # the background of each class's region
POINT = "oxv"  # a training point of each class
COLOURS = ("31", "32", "34")  # ANSI red, green, blue
EXTENT = (-1.1, 1.1, -1.1, 1.1)


DESCRIPTION = (
    "spiral: generate three interleaved spirals of 2-D points, train a model with no hidden "
    "layer and a network with one hidden ReLU layer on them (loops backend, no NumPy needed), print "
    "both training accuracies and draw both models' decision regions in the terminal."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", choices=["spiral"], help="the demonstration to run")
    parser.add_argument("--points", type=positive_int, default=100, help="points per class (default 100)")
    parser.add_argument("--hidden", type=positive_int, default=32, help="hidden ReLU units (default 32)")
    parser.add_argument("--epochs", type=positive_int, default=60, help="epochs of mini-batch Adam (default 60)")
    parser.add_argument("--seed", type=seed, default=0, help="the seed of everything random (default 0)")
    parser.add_argument("--rows", type=positive_int, default=24, help="height of each drawing in characters")
    parser.add_argument(
        "--color",
        choices=["auto", "always", "never"],
        default="auto",
        help="colour the classes (default: on a terminal)",
    )


def run(args: argparse.Namespace) -> int:
    colour = use_colour(args.color, sys.stdout)
    print(
        f"Three spirals: {args.points} points per class, 2 inputs (x, y), 3 classes. Training with the loops backend..."
    )
    result = run_demo(points_per_class=args.points, hidden=args.hidden, epochs=args.epochs, seed=args.seed)
    print(format_demo(result, rows=args.rows, colour=colour))
    return 0


def use_colour(choice: str, stream: TextIO) -> bool:
    if choice != "auto":
        return choice == "always"
    return stream.isatty() and "NO_COLOR" not in os.environ and os.environ.get("TERM") != "dumb"


def format_demo(result: DemoResult, *, rows: int = 24, colour: bool = False) -> str:
    """The report: each model's architecture, accuracy, loss curve and decision regions, then the moral."""
    legend = "   ".join(
        f"class {c}: region {paint(REGION[c % len(REGION)], c, colour, False)} "
        f"point {paint(POINT[c % len(POINT)], c, colour, True)}"
        for c in range(result.data.classes)
    )
    lines = [legend, ""]
    for label, model in (("(a)", result.linear), ("(b)", result.relu)):
        lines.append(f"{label} {model.name}: {describe(model)}")
        lines.append(
            f"    training accuracy {model.accuracy:.1%} after {len(model.losses)} epochs in {model.seconds:.1f} s; "
            f"loss {model.losses[0]:.3f} -> {model.losses[-1]:.3f} {sparkline(model.losses, 30)}"
        )
        lines.extend(draw_regions(model, result.data, rows=rows, colour=colour))
        lines.append("")
    lines.append(
        "The linear model's regions are bounded by straight lines (its z = W x + b is linear in x, eq. 3.1),\n"
        "so it cannot follow the arms. With a ReLU between two Dense layers (eq. 4.1) the network bends its\n"
        f"boundaries and separates the spirals: {result.linear.accuracy:.0%} -> {result.relu.accuracy:.0%}."
    )
    return "\n".join(lines)


def describe(model: TrainedModel) -> str:
    """The layer types in order with their required options, e.g.
    ``Dense(2, 32) -> ReLU -> Dense(32, 3) -> Softmax``."""
    parts = []
    for layer in model.network.layers:
        info = layer.describe()
        required = [str(info[option.name]) for option in layer_type(info["type"]).options if option.required]
        parts.append(f"{info['type']}({', '.join(required)})" if required else str(info["type"]))
    return " -> ".join(parts)


def draw_regions(model: TrainedModel, data: Spiral, *, rows: int, colour: bool) -> list[str]:
    """The decision regions as ``rows`` lines of ``2 * rows`` characters (terminal cells are about twice
    as tall as wide), the training points drawn on top, in a frame."""
    cols = 2 * rows
    grid = decision_grid(model.network, rows, cols, EXTENT)
    x_min, x_max, y_min, y_max = EXTENT
    points: dict[tuple[int, int], int] = {}
    for (x, y), label in zip(data.points, data.labels):
        col = int((x - x_min) / (x_max - x_min) * cols)
        row = int((y_max - y) / (y_max - y_min) * rows)
        if 0 <= row < rows and 0 <= col < cols:
            points[(row, col)] = label  # a later point of the same cell wins
    lines = ["    +" + "-" * cols + "+"]
    for row in range(rows):
        cells = []
        for col in range(cols):
            if (row, col) in points:
                c = points[(row, col)]
                cells.append(paint(POINT[c % len(POINT)], c, colour, True))
            else:
                c = grid[row][col]
                cells.append(paint(REGION[c % len(REGION)], c, colour, False))
        lines.append("    |" + "".join(cells) + "|")
    lines.append("    +" + "-" * cols + "+")
    return lines


def paint(char: str, cls: int, colour: bool, bold: bool) -> str:
    if not colour:
        return char
    return f"\x1b[{'1;' if bold else '2;'}{COLOURS[cls % len(COLOURS)]}m{char}\x1b[0m"
