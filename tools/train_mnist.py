#!/usr/bin/env python3
"""Train and evaluate MNIST end to end: ``scratchnet train`` (the default recipe) then ``scratchnet evaluate``.

    python tools/train_mnist.py --data-dir ../shared/data
    python tools/train_mnist.py --data-dir ../shared/data --recipe classic
    python tools/train_mnist.py --data-dir ../shared/data --backend loops --limit 2000

Every flag of ``scratchnet train`` is accepted and passed on (``--dataset fashion-mnist`` too); the
saved model is then evaluated on the test set. Works from a checkout without installing.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scratchnet.cli import build_parser, main
from scratchnet.cli.train import output_path


def run(argv: list[str]) -> int:
    if "-h" in argv or "--help" in argv:
        print(__doc__.strip() + "\n")
    status = main(["train", *argv])
    if status != 0:
        return status
    command = ["train", *argv]
    args = build_parser(command).parse_args(command)
    evaluate = ["evaluate", str(output_path(args))]
    if args.data_dir:
        evaluate += ["--data-dir", args.data_dir]
    print()
    return main(evaluate)


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
