"""``scratchnet check``: the loops backend against the vectorized one, and both against finite
differences, on an architecture the user names."""

from __future__ import annotations

import argparse
import time
from typing import Any

from scratchnet.checks.crosscheck import (
    CROSS_TOLERANCE,
    GRADIENT_ATOL,
    GRADIENT_RTOL,
    CheckReport,
    Comparison,
    full_check,
)
from scratchnet.checks.narrow import (
    CHECK_CHANNELS,
    CHECK_MAX_PARAMS,
    CHECK_WIDTH,
    narrowed_architecture,
    narrowed_network,
)
from scratchnet.cli.options import int_list, label_smoothing, positive_int, rate, seed
from scratchnet.core import notation
from scratchnet.core.architecture import ACTIVATION_LAYERS, LOSSES, mlp, plan
from scratchnet.core.errors import ConfigError
from scratchnet.core.jsonread import MAX_BYTES as MAX_JSON_BYTES
from scratchnet.core.jsonread import read_json

CHECK_LENGTH = 8  # a token network's narrower copy reads sequences of at most this many tokens

DESCRIPTION = (
    "Build the architecture in both backends from the same parameters and compare forward, "
    "loss, every gradient and the parameters after a few SGD steps; then compare each backend's "
    "gradients with central finite differences. Exit status 1 when anything is beyond tolerance."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--layers", type=int_list, help="an MLP's layer widths, inputs first (default 784,128,10)")
    which.add_argument(
        "--network",
        metavar="TEXT",
        help="any network in the compact notation (docs/training.md), e.g. "
        "'input(1x12x12), conv(4, 3), relu, maxpool(2), flatten, dense(10)'; --loss applies",
    )
    which.add_argument("--architecture", metavar="FILE.json", help="an architecture as JSON (what a model file holds)")
    parser.add_argument("--activation", choices=sorted(ACTIVATION_LAYERS), default="relu", help="hidden activation")
    parser.add_argument("--loss", choices=sorted(LOSSES), default="cross_entropy")
    parser.add_argument(
        "--label-smoothing",
        metavar="EPS",
        type=label_smoothing,
        default=0.0,
        help="cross-entropy's label smoothing in [0, 1] with --layers or --network (default 0)",
    )
    parser.add_argument("--dropout", type=rate, default=0.0, help="dropout rate after each hidden layer")
    parser.add_argument("--batch", type=positive_int, default=4, help="random samples to check on (default 4)")
    parser.add_argument("--steps", type=positive_int, default=3, help="SGD steps before comparing parameters")
    parser.add_argument("--seed", type=seed, default=0, help="the seed of everything random (default 0)")
    parser.add_argument(
        "--full",
        action="store_true",
        help=f"check a network of more than {CHECK_MAX_PARAMS:,} parameters at its own widths (slow: the loops "
        f"backend computes every product in Python); without it an MLP's hidden layers are narrowed to "
        f"{CHECK_WIDTH}, and a --network's widths to {CHECK_CHANNELS} (or the fewest multiples of it that fit) "
        f"and its token sequences to {CHECK_LENGTH}",
    )


def run(args: argparse.Namespace) -> int:
    description, what = narrowed(args, architecture_of(args))
    print(f"checking {what} ...", flush=True)  # at once: a big network takes a while in the loops backend
    started = time.perf_counter()
    report = full_check(description, batch=args.batch, seed=args.seed, steps=args.steps)
    seconds = time.perf_counter() - started
    print(format_report(report))
    print(f"{'passed' if report.passed else 'FAILED'} in {seconds:.1f} s")
    return 0 if report.passed else 1


def architecture_of(args: argparse.Namespace) -> dict[str, Any]:
    """The architecture the flags name; ConfigError for a bad notation or file."""
    if args.network is not None:
        return notation.parse(args.network, loss=args.loss, label_smoothing=args.label_smoothing)
    if args.architecture is not None:
        if args.label_smoothing:
            raise ConfigError("--label-smoothing goes with --layers or --network; an architecture file names its loss")
        try:
            with open(args.architecture, "rb") as handle:
                data = read_json(handle.read(MAX_JSON_BYTES + 1), "the file")
        except OSError as error:
            raise ConfigError(f"cannot read {args.architecture}: {error.strerror or error}") from None
        except ValueError as error:
            raise ConfigError(f"{args.architecture}: {error}") from None
        if isinstance(data, dict) and isinstance(data.get("architecture"), dict):
            data = data["architecture"]  # a model document: its architecture
        try:
            return plan(data).description
        except ConfigError as error:
            raise ConfigError(f"{args.architecture}: {error}") from None
    layers = args.layers if args.layers is not None else [784, 128, 10]
    return mlp(
        layers, activation=args.activation, loss=args.loss, dropout=args.dropout, label_smoothing=args.label_smoothing
    )


def narrowed(args: argparse.Namespace, description: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """The architecture to check and what the first line says of it. A network of more than
    CHECK_MAX_PARAMS parameters is checked, as ``scratchnet train`` checks it, as a copy with the same
    layer types, unless --full: an MLP (--layers) with hidden widths of at most CHECK_WIDTH, a
    --network with widths of at most CHECK_CHANNELS (:func:`narrowed_copy`)."""
    checked = plan(description)
    size = f"{checked.parameter_count:,} parameters"
    if args.full or checked.parameter_count <= CHECK_MAX_PARAMS:
        return description, f"{notation.outline(description)} ({size})"
    if args.network is not None:
        copy = narrowed_copy(args.network, args.loss, checked.parameter_count)
        if copy is None:
            return description, f"{notation.outline(description)} ({size})"
        return copy, (
            f"{notation.outline(copy)}, a copy of the network ({size}) with the same layer types, narrowed "
            "(--full checks every parameter, slowly)"
        )
    if args.layers is None:
        return description, f"{notation.outline(description)} ({size})"
    copy = narrowed_architecture(description, CHECK_WIDTH)
    return copy, (
        f"{plan(copy).outline()}, a copy of {checked.outline()} ({size}) with the same layer types, narrowed to "
        f"hidden width {CHECK_WIDTH} as scratchnet train checks it (--full checks every parameter, slowly)"
    )


def narrowed_copy(text: str, loss: str, parameters: int) -> dict[str, Any] | None:
    """The narrowest copy of the network ``text`` that still fits together: widths of at most
    CHECK_CHANNELS, else twice, four times ... that (a width must stay a multiple of attention's
    heads), token sequences of at most CHECK_LENGTH; None when no copy is smaller. Its layers start
    from He-normal weights where none is named: with GPT's N(0, 0.02) tables, a norm over 4 values
    has a curvature of 1 / rms^2 ~ 2500, at which central differences with a step of 1e-5 are off
    by 1e-5 of the gradient, the tolerance itself."""
    width = CHECK_CHANNELS
    while True:
        try:
            copy = notation.parse(narrowed_network(text, width, CHECK_LENGTH), loss=loss, init="he_normal")
        except ConfigError:
            copy = None
        if copy is not None:
            return copy if plan(copy).parameter_count < parameters else None
        if width > CHECK_MAX_PARAMS:
            return None
        width *= 2


def format_report(report: CheckReport) -> str:
    lines = [f"loops vs vectorized (float64), tolerance: relative {CROSS_TOLERANCE:g}"]
    lines += table(report.cross)
    for backend, comparisons in report.gradients.items():
        lines.append(
            f"{backend}: backprop vs central differences, tolerance: {GRADIENT_RTOL:g} x scale + {GRADIENT_ATOL:g}"
        )
        lines += table(comparisons)
    return "\n".join(lines)


def table(comparisons: list[Comparison]) -> list[str]:
    rows = [f"  {'tensor':<28} {'max abs diff':>13} {'max rel diff':>13}  status"]
    for c in comparisons:
        rows.append(f"  {c.name:<28} {c.max_abs:>13.3e} {c.max_rel:>13.3e}  {'ok' if c.passed else 'FAIL'}")
    return rows
