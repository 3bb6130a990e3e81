"""The ``scratchnet`` command: one subcommand per module in this package.

Every subcommand module has ``DESCRIPTION`` (the text of its ``--help``), ``add_arguments(parser)``
and ``run``, a function from the parsed arguments to an exit status; its one-line help is in
``COMMANDS``. A ScratchnetError anywhere becomes one line on stderr and exit status 1; a usage error
is exit status 2, as argparse does it. Standard output is guarded (:mod:`scratchnet.cli.output`): a
reader that quits early does not stop the command, which then exits with status 141 (its output was
cut short), and an encoding without the drawing characters gets ASCII ones.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import os
import sys
from collections.abc import Sequence
from typing import Any

from scratchnet.cli.output import PIPE_STATUS, guarded_stdout, warn
from scratchnet.core.errors import ScratchnetError
from scratchnet.core.version import __version__

# Every subcommand and its one-line help, in the order ``scratchnet --help`` lists them. Only the
# module of the command being run is imported: commands start fast, and those that need no NumPy
# (``inspect``, ``demo spiral``) run where NumPy is missing.
COMMANDS = {
    "train": "train an MLP or a convolutional network on MNIST, Fashion-MNIST or your own data and save it",
    "lr-find": "sweep the learning rate over a few hundred steps of the run train would make, and suggest one",
    "evaluate": "test accuracy, per-class precision and recall and the confusion matrix of a model",
    "predict": "draw a test image (or your own) and show the model's top-3 classes",
    "sample": "generate text with a language model (names one a line, or running text), streamed as it comes",
    "inspect": "describe a saved model and verify its checksums",
    "check": "cross-check the two backends and the gradients on an architecture",
    "explain": "run one image through a saved model with the loops backend and explain it neuron by neuron "
    "(--backward: the backward pass and one weight's gradient; --text: a language model's attention)",
    "export": "write a model as ONNX, as safetensors or as a PyTorch script that loads it",
    "import": "read an ONNX or a safetensors file (from PyTorch, say) as a scratchnet model",
    "plot": "draw a model's training curves, confusion matrix, misclassified images, weights, filters "
    "or feature maps (PNG)",
    "serve": "a local web page: draw a digit and watch the network respond, or (--train) watch one learn",
    "demo": "small demonstrations that run in seconds (spiral: why hidden layers need a non-linearity)",
}
# The module of a command whose name is not a module name (``import`` is a Python keyword).
MODULES = {"import": "import_model", "lr-find": "lr_find"}


class Parser(argparse.ArgumentParser):
    """argparse's parser, except that an unknown flag is reported by the subcommand it was given to,
    with its usage and the closest flag it has (``scratchnet train --hiden 100``: did you mean --hidden?)."""

    commands: dict[str, argparse.ArgumentParser]

    def parse_args(self, args: Sequence[str] | None = None, namespace: Any = None) -> Any:  # type: ignore[override]
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            command = self.commands.get(getattr(parsed, "command", None) or "")
            message = f"unrecognized arguments: {' '.join(extras)}"
            if command is not None:
                flags = [flag for action in command._actions for flag in action.option_strings]
                unknown = next((extra.split("=")[0] for extra in extras if extra.startswith("-")), "")
                close = difflib.get_close_matches(unknown, flags, n=1)
                hint = (
                    f" (did you mean {close[0]}?)"
                    if close
                    else f" (scratchnet {parsed.command} --help lists its flags)"
                )
                command.error(message + hint)
            self.error(message)
        return parsed


def build_parser(argv: Sequence[str] = ()) -> argparse.ArgumentParser:
    """The parser, with the full sub-parser of the command named in ``argv`` and a stub for the others."""
    parser = Parser(
        prog="scratchnet",
        description="A neural-network library written from scratch: readable loops and NumPy, cross-checked.",
    )
    parser.add_argument("--version", action="version", version=f"scratchnet {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    chosen = next((arg for arg in argv if not arg.startswith("-")), None)
    parser.commands = {}
    for name, help_text in COMMANDS.items():
        if name == chosen:
            command = importlib.import_module(f"scratchnet.cli.{MODULES.get(name, name)}")
            sub = subparsers.add_parser(name, help=help_text, description=command.DESCRIPTION, allow_abbrev=False)
            command.add_arguments(sub)
            sub.set_defaults(run=command.run)
            parser.commands[name] = sub
        else:
            subparsers.add_parser(name, help=help_text)
    return parser


def shorten_openblas_spin() -> None:
    """Set OPENBLAS_THREAD_TIMEOUT=20 for this process, unless the user set it or NumPy is loaded.

    After every matrix product, NumPy's OpenBLAS keeps its idle threads spinning on their cores for
    2^28 cycles (~0.1 s), which leaves no core for the vectorized optimizers' threads; 2^20 cycles
    (~0.4 ms) still covers the gaps between the products of one training step. OpenBLAS reads the
    variable once, when NumPy is first imported, so the command line sets it before any subcommand
    imports NumPy. The library itself never does (importing scratchnet changes nothing global);
    docs/performance.md tells a library user how to get the same.
    """
    if "numpy" not in sys.modules:
        os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "20")


def keep_freed_memory() -> None:
    """Let glibc keep freed blocks of up to 32 MB for reuse, unless the user tuned malloc.

    glibc serves each block above a threshold (128 KB at first) with its own mmap and hands it back to
    the system when freed, so every large temporary of a training step (a GPT's activations are 0.4-1.5
    MB) comes back as fresh pages that fault in one by one: measured, about 1,000 minor faults a GPT step
    (tools/bench_gpt_step.py), 14 with this. With the threshold at 32 MB (glibc's largest) and the heap
    trimmed only above 256 MB, freed blocks are reused. Only the command line does this, for its own
    process, like :func:`shorten_openblas_spin` (docs/performance.md)."""
    if not sys.platform.startswith("linux") or any(name.startswith("MALLOC_") for name in os.environ):
        return
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc
        return
    m_trim_threshold, m_mmap_threshold = -1, -3  # glibc's <malloc.h>
    mallopt(m_mmap_threshold, 32 << 20)
    mallopt(m_trim_threshold, 256 << 20)


NUMPY_NEEDED = (
    "this needs NumPy, which is not installed (pip install numpy); without it --backend loops trains, "
    "resumes, evaluates and inspects language models and MLPs on MNIST"
)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv`` (default: sys.argv[1:]) and return the exit status."""
    if argv is None:
        argv = sys.argv[1:]
    shorten_openblas_spin()
    keep_freed_memory()
    parser = build_parser(argv)
    with guarded_stdout() as stdout:
        args = parser.parse_args(argv)
        try:
            status: int = args.run(args)
        except ScratchnetError as error:
            warn(f"scratchnet {args.command}: error: {error}")
            return 1
        except KeyboardInterrupt:
            warn(f"scratchnet {args.command}: interrupted")
            return 130
        except ModuleNotFoundError as error:
            if (error.name or "").split(".")[0] != "numpy":
                raise
            warn(f"scratchnet {args.command}: error: {NUMPY_NEEDED}")  # the loops backend's paths need none
            return 1
    if stdout.lost and status == 0:  # e.g. `scratchnet inspect m.json | head`: the work is done, not all shown
        return PIPE_STATUS
    return status
