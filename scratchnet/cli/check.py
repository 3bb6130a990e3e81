"""``scratchnet check``: the loops backend against the vectorized one, and both against finite
differences, on an architecture the user names."""

from __future__ import annotations

import argparse
import time

from scratchnet.checks.crosscheck import (
    CROSS_TOLERANCE,
    GRADIENT_ATOL,
    GRADIENT_RTOL,
    CheckReport,
    Comparison,
    full_check,
)
from scratchnet.cli.options import int_list, positive_int, rate
from scratchnet.core.architecture import ACTIVATIONS, LOSSES, mlp

DESCRIPTION = (
    "Build the architecture in both backends from the same parameters and compare forward, "
    "loss, every gradient and the parameters after a few SGD steps; then compare each backend's "
    "gradients with central finite differences. Exit status 1 when anything is beyond tolerance."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--layers", type=int_list, default=[784, 128, 10], help="layer widths, inputs first (default 784,128,10)"
    )
    parser.add_argument("--activation", choices=sorted(ACTIVATIONS), default="relu", help="hidden activation")
    parser.add_argument("--loss", choices=sorted(LOSSES), default="cross_entropy")
    parser.add_argument("--dropout", type=rate, default=0.0, help="dropout rate after each hidden layer")
    parser.add_argument("--batch", type=positive_int, default=4, help="random samples to check on (default 4)")
    parser.add_argument("--steps", type=positive_int, default=3, help="SGD steps before comparing parameters")
    parser.add_argument("--seed", type=int, default=0)


def run(args: argparse.Namespace) -> int:
    description = mlp(args.layers, activation=args.activation, loss=args.loss, dropout=args.dropout)
    started = time.perf_counter()
    report = full_check(description, batch=args.batch, seed=args.seed, steps=args.steps)
    seconds = time.perf_counter() - started
    print(format_report(report))
    print(f"{'passed' if report.passed else 'FAILED'} in {seconds:.1f} s")
    return 0 if report.passed else 1


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
