"""The ``scratchnet`` command: one subcommand per module in this package.

Every subcommand module has ``register(subparsers)``, which adds its parser and sets ``run``, a
function from the parsed arguments to an exit status. A ScratchnetError anywhere becomes one line
on stderr and exit status 1; a usage error is exit status 2, as argparse does it.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from scratchnet import __version__
from scratchnet.errors import ScratchnetError

COMMANDS = ("check", "inspect", "explain", "plot", "demo", "train", "evaluate", "predict")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scratchnet",
        description="A neural-network library written from scratch: readable loops and NumPy, cross-checked.",
    )
    parser.add_argument("--version", action="version", version=f"scratchnet {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(f"scratchnet.cli.{name.replace('-', '_')}").register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv`` (default: sys.argv[1:]) and return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        status: int = args.run(args)
    except ScratchnetError as error:
        print(f"scratchnet {args.command}: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"scratchnet {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `scratchnet inspect m.json | head`
        sys.stderr.close()
        return 0
    return status
