#!/usr/bin/env python3
"""How closely ONNX Runtime reproduces scratchnet: export a model to ONNX, run both on the whole test set.

    python tools/onnx_agreement.py --data-dir ../shared/data                 # trains the two models below
    python tools/onnx_agreement.py --data-dir ../shared/data models/a.json   # or measures your own

For each model: the number of test images (10,000 for MNIST) on which ONNX Runtime predicts the same
class as scratchnet's vectorized backend, and the largest difference between their probabilities.
Without model arguments it trains, in a temporary folder, the MLP and the CNN that
tests/test_interop_onnx.py trains (:data:`MODELS`: one epoch on 5,000 images each, float32, well
under a minute together) and measures them. Needs onnx and onnxruntime (both in the dev extra).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
import numpy.typing as npt

from scratchnet.core.architecture import plan
from scratchnet.data import load_dataset
from scratchnet.data.images import Feeder
from scratchnet.interop import export_model
from scratchnet.interop.extras import require
from scratchnet.io.model import load_model
from scratchnet.teaching.explain import dataset_of
from scratchnet.training.inference import predict_probabilities
from scratchnet.training.train import TrainConfig, train

# The models the measurement trains: an MLP with Dropout (which the export removes) and a CNN with
# every kind of layer a convolutional network has here (padding, BatchNorm, both poolings).
MODELS = {
    "MLP 784-64-10 with dropout": TrainConfig(hidden=(64,), dropout=0.2, epochs=1, limit=5000),
    "CNN": TrainConfig(
        layers="conv(8, 3, padding=1), batchnorm, relu, maxpool(2), conv(8, 3), relu, avgpool(2), flatten",
        epochs=1,
        limit=5000,
    ),
}


@dataclass(frozen=True)
class Agreement:
    """scratchnet against ONNX Runtime on ``images`` test images."""

    name: str
    images: int
    same_class: int
    largest_difference: float

    def line(self) -> str:
        return (
            f"{self.name}: classes equal on {self.same_class} of {self.images}, "
            f"largest probability difference {self.largest_difference:.2e}"
        )


def onnxruntime_outputs(onnx_file: Path, inputs: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """The outputs ONNX Runtime's CPU provider computes for ``inputs`` with the model ``onnx_file``."""
    ort = require("onnxruntime", "running ONNX models")
    session = ort.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    result: npt.NDArray[Any] = session.run(None, {session.get_inputs()[0].name: inputs})[0]
    return result


def measure(model: Path, data_dir: str | None, name: str | None = None) -> Agreement:
    """Export ``model`` to ONNX (in a temporary folder) and compare ONNX Runtime with scratchnet on
    every test image of the model's dataset."""
    loaded = load_model(model)
    feeder = Feeder.from_metadata(loaded.metadata, "vectorized", loaded.dtype, plan(loaded.architecture).input_shape)
    data = load_dataset(dataset_of(loaded.metadata) or "mnist", data_dir, splits=("test",))
    ours = predict_probabilities(loaded.network, data.test_images, feeder)
    with tempfile.TemporaryDirectory() as folder:
        onnx_file = export_model(model, "onnx", Path(folder) / "model.onnx").paths[0]
        theirs = onnxruntime_outputs(onnx_file, feeder.inputs(data.test_images)).astype(np.float64)
    same = int(np.sum(np.argmax(ours, axis=1) == np.argmax(theirs, axis=1)))
    return Agreement(name or str(model), len(ours), same, float(np.max(np.abs(ours - theirs))))


def train_and_measure(data_dir: str | None) -> list[Agreement]:
    """Train each of :data:`MODELS` and measure it."""
    results = []
    with tempfile.TemporaryDirectory() as folder:
        for index, (name, config) in enumerate(MODELS.items()):
            out = Path(folder) / f"model{index}.json"
            train(config, data_dir=data_dir, out=out, log=lambda line: None, progress=False, check=False)
            results.append(measure(out, data_dir, name))
    return results


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="*", metavar="MODEL.json", help="models to measure (default: train two)")
    parser.add_argument("--data-dir", metavar="DIR", help="folder holding mnist/ and fashion-mnist/")
    args = parser.parse_args(argv)
    if args.models:
        results = [measure(Path(model), args.data_dir) for model in args.models]
    else:
        results = train_and_measure(args.data_dir)
    for result in results:
        print(result.line())
    return 0 if all(result.same_class == result.images for result in results) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
