"""``scratchnet import FILE.onnx|FILE.safetensors``: a model from ONNX or PyTorch, as a scratchnet model.

The module is ``import_model`` because ``import`` is a Python keyword; the command is ``scratchnet import``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from scratchnet.cli.options import positive_float
from scratchnet.cli.overwrite import REPLACE, add_overwrite, refuse_existing_model
from scratchnet.core import notation
from scratchnet.core.architecture import LOSSES
from scratchnet.data.datasets import DATASETS
from scratchnet.interop import import_model
from scratchnet.io.model import read_model

DESCRIPTION = (
    "Read an ONNX file (a chain of standard operators: Gemm, MatMul+Add, Conv, MaxPool, AveragePool, "
    "BatchNormalization, Flatten, Reshape, Relu, LeakyRelu, Sigmoid, Tanh, Identity, Softmax, Dropout) "
    "or a safetensors file (names as torch.nn.Sequential gives them; the architecture from the file's "
    "metadata, --architecture or --layers) and save it as a scratchnet model, which then evaluates, "
    "predicts and explains like any other. Anything scratchnet cannot express is refused with one line. "
    "See docs/interop.md."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE", help="an .onnx or .safetensors file")
    parser.add_argument(
        "--out",
        metavar="MODEL.json",
        help="the model to write (default: FILE's name with .json); an existing model is replaced only with "
        "--overwrite",
    )
    add_overwrite(parser, "replace the model at --out (or at the default name) if one is there")
    layers = parser.add_mutually_exclusive_group()
    layers.add_argument(
        "--architecture",
        metavar="FILE.json",
        help="safetensors: the architecture (a JSON architecture or a scratchnet model's .json), "
        "for a file whose metadata has none",
    )
    layers.add_argument(
        "--layers",
        metavar="TEXT",
        help="safetensors: the architecture in the compact notation, e.g. "
        "'input(1x28x28), flatten, dense(128), relu, dense(10)' (a final softmax is added)",
    )
    parser.add_argument(
        "--loss",
        choices=sorted(LOSSES),
        help="the training loss to record (default: cross_entropy after a Softmax, bce after a Sigmoid, else mse); "
        "for an ONNX graph that ends before the layer the loss reads, that layer is appended (--loss cross_entropy: "
        "a Softmax after the logits)",
    )
    parser.add_argument(
        "--dataset", choices=sorted(DATASETS), help="the dataset the model takes (recorded with its class names)"
    )
    parser.add_argument(
        "--input-mean", type=float, metavar="M", help="inputs are (pixel / 255 - M) / S (default: the file's, else 0)"
    )
    parser.add_argument("--input-std", type=positive_float, metavar="S", help="see --input-mean (default 1)")


def run(args: argparse.Namespace) -> int:
    architecture = None
    if args.architecture is not None:
        from scratchnet.interop.safetensors_io import read_architecture

        architecture = read_architecture(args.architecture)
    elif args.layers is not None:
        architecture = notation.parse(args.layers, loss=args.loss or "cross_entropy")
    loss = None if args.loss is None else LOSSES[args.loss]
    target = Path(args.out) if args.out is not None else Path(args.file).with_suffix(".json")
    if Path(args.file).suffix.lower() in (".onnx", ".safetensors"):  # else the import names what it reads
        choice = REPLACE if args.out is not None else "--out to write another model, or --overwrite to replace it"
        refuse_existing_model(target, args.overwrite, choice)
    written = import_model(args.file, target, architecture=architecture, loss=loss, metadata=_metadata(args))
    print(f"wrote {written} and {written.with_suffix('.npz').name}")
    model = read_model(written).document.architecture
    if model["loss"]["type"] == "MeanSquaredError" and args.loss is None:
        last = model["layers"][-1]["type"]
        print(
            f"note: the network ends in {last}, so the loss recorded is mse; if its outputs are class scores "
            "(logits), --loss cross_entropy appends the Softmax that turns them into probabilities"
        )
    return 0


def _metadata(args: argparse.Namespace) -> dict[str, Any]:
    """What the flags say about the model's inputs and outputs, over what the file records."""
    metadata: dict[str, Any] = {}
    if args.dataset is not None:
        spec = DATASETS[args.dataset]
        metadata["dataset"] = spec.name
        metadata["class_names"] = list(spec.class_names)
    scaling = {key: value for key, value in (("mean", args.input_mean), ("std", args.input_std)) if value is not None}
    if scaling:
        metadata["input"] = scaling  # merged member by member over the file's
    return metadata
