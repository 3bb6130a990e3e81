"""``scratchnet evaluate MODEL.json``: test accuracy, per-class precision and recall, confusion matrix."""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import dataclass
from typing import Any

from scratchnet.builders import BACKENDS
from scratchnet.cli.output import warn
from scratchnet.core import notation
from scratchnet.core.architecture import Plan, plan
from scratchnet.core.errors import ConfigError, DatasetError
from scratchnet.data import DATASETS, Dataset, load_dataset
from scratchnet.data.images import Feeder
from scratchnet.teaching.explain import dataset_of
from scratchnet.training.metrics import ClassReport, class_report, confusion_table, per_class_table, percent


@dataclass(frozen=True)
class Model:
    """A model loaded for inference: the network, how to feed it, and what its outputs mean."""

    network: Any
    feeder: Feeder
    dataset: str | None
    class_names: tuple[str, ...] | None
    metadata: dict[str, Any]
    architecture: dict[str, Any]

    def plan(self) -> Plan:
        """The architecture's shapes, as the layer registry infers them."""
        return plan(self.architecture)


def load_for_inference(path: str, backend: str) -> Model:
    """Load ``path`` into ``backend`` with the preprocessing and class names its metadata records."""
    from scratchnet.io.model import load_model

    loaded = load_model(path, backend=backend)
    metadata = loaded.metadata
    feeder = Feeder.from_metadata(metadata, backend, loaded.dtype, plan(loaded.architecture).input_shape)
    dataset = dataset_of(metadata)  # metadata.dataset, or the spec's metadata.training.dataset
    names = metadata.get("class_names")
    class_names = tuple(str(n) for n in names) if isinstance(names, list) else None
    return Model(
        loaded.network,
        feeder,
        dataset if isinstance(dataset, str) else None,
        class_names,
        metadata,
        loaded.architecture,
    )


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="MODEL.json", help="a model saved by scratchnet train (NAME.json + NAME.npz)")
    parser.add_argument(
        "--data-dir",
        metavar="DIR",
        help="folder holding mnist/ and fashion-mnist/ "
        "(default: $SCRATCHNET_DATA_DIR, else the user cache, else download)",
    )
    parser.add_argument(
        "--dataset", choices=sorted(DATASETS), help="the dataset to use (default: the one the model was trained on)"
    )
    parser.add_argument(
        "--backend", choices=BACKENDS, default="vectorized", help="run the model on this backend (default vectorized)"
    )


DESCRIPTION = "Evaluate a saved model on its dataset's 10,000 test images."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common_arguments(parser)


def dataset_for(model: Model, args: argparse.Namespace) -> Dataset:
    """The dataset named by --dataset, else by the model's metadata; checks the data directory."""
    from scratchnet.cli.train import check_data_dir

    name = args.dataset or model.dataset
    if name is None:
        raise ConfigError(f"{args.model} does not say which dataset it was trained on; pass --dataset")
    check_data_dir(args.data_dir)
    data = load_dataset(name, args.data_dir, splits=("test",))  # evaluating needs the test files only
    if model.dataset is not None and name != model.dataset:
        warn(
            f"scratchnet {args.command}: warning: {args.model} was trained on {model.dataset}, not {name}: "
            f"its classes are {model.dataset}'s, the true labels {name}'s"
        )
    shapes = model.plan()
    if shapes.classes != data.num_classes or math.prod(shapes.input_shape) != data.test_images[0].size:
        raise DatasetError(
            f"{args.model} maps {math.prod(shapes.input_shape)} inputs to {shapes.classes} classes; "
            f"{name} has {data.test_images[0].size}-pixel images in {data.num_classes} classes"
        )
    return data


def evaluate(model: Model, data: Dataset) -> ClassReport:
    from scratchnet.training.train import predict_classes

    predictions = predict_classes(model.network, data.test_images, model.feeder)
    return class_report(data.test_labels, predictions, model.class_names or data.class_names)


def run(args: argparse.Namespace) -> int:
    model = load_for_inference(args.model, args.backend)
    data = dataset_for(model, args)
    started = time.perf_counter()
    report = evaluate(model, data)
    seconds = time.perf_counter() - started
    print(f"{args.model}: {notation.outline(model.plan().description)} on {data.name}, {args.backend} backend")
    correct = int(report.confusion.trace())
    print(f"test accuracy {percent(report.accuracy)} ({correct} of {report.total} test images; {seconds:.1f} s)")
    print()
    print(per_class_table(report))
    print()
    print("confusion matrix (rows: true class, columns: predicted class)")
    print(confusion_table(report))
    return 0
