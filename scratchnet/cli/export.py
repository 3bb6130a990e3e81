"""``scratchnet export MODEL.json --to onnx|safetensors|pytorch``: a model for ONNX Runtime or PyTorch."""

from __future__ import annotations

import argparse
from pathlib import Path

from scratchnet.cli.options import positive_int
from scratchnet.cli.overwrite import add_overwrite, refuse_existing
from scratchnet.core.architecture import DTYPES
from scratchnet.interop import FORMATS, default_output, export_model

DESCRIPTION = (
    "Write MODEL as an ONNX file (--to onnx: one standard operator per layer, for ONNX Runtime and "
    'other runtimes; needs pip install "scratchnet[onnx]"), as safetensors under the names '
    "torch.nn.Sequential gives the same stack of modules (--to safetensors), or as a short Python file "
    "that builds that torch.nn.Sequential and loads those tensors, written beside it (--to pytorch); "
    'both need pip install "scratchnet[safetensors]". The files carry the model\'s dataset, class '
    "names and input scaling. See docs/interop.md."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="MODEL.json", help="the model (NAME, NAME.json or NAME.npz)")
    parser.add_argument("--to", required=True, choices=FORMATS, help="the format to write")
    parser.add_argument(
        "--out",
        metavar="FILE",
        help="where to write (default: beside the model, NAME.onnx, NAME.safetensors or NAME.py; "
        "--to pytorch writes FILE.py and FILE.safetensors); a file that exists is replaced only with --overwrite",
    )
    add_overwrite(parser)
    parser.add_argument(
        "--opset", type=positive_int, metavar="N", help="the ONNX operator set to export to (default 18; 13 or later)"
    )
    parser.add_argument(
        "--dtype",
        choices=DTYPES,
        help="the precision of the tensors written (default: the model's; float64 to float32 rounds to nearest)",
    )


def run(args: argparse.Namespace) -> int:
    target = Path(args.out) if args.out is not None else default_output(args.model, args.to)
    written = [target, target.with_suffix(".safetensors")] if args.to == "pytorch" else [target]
    refuse_existing(written, args.overwrite)
    exported = export_model(args.model, args.to, args.out, opset=args.opset, dtype=args.dtype)
    print(f"wrote {' and '.join(str(path) for path in exported.paths)}")
    for note in exported.notes:
        print(f"note: {note}")
    if args.to == "pytorch":
        script = exported.paths[-1]
        print(f"python {script} loads it in PyTorch and prints the module (needs: pip install torch safetensors)")
    return 0
