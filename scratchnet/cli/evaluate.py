"""``scratchnet evaluate MODEL.json``: test accuracy, per-class precision and recall, confusion matrix.

The test set is the model's own (MNIST's, or for a model of your own data the test file or the
held-out part of the training file its metadata records), another built-in one (``--dataset``) or a
file of yours (``--data``), read as the model's training data was (its :class:`Layout`)."""

from __future__ import annotations

import argparse
import math
import os
import time
from dataclasses import dataclass, replace
from typing import Any

from scratchnet.builders import BACKENDS
from scratchnet.builders.network import default_backend
from scratchnet.checks.overflow import overflow_layer, overflow_message, watched
from scratchnet.cli.output import warn
from scratchnet.core import notation
from scratchnet.core.architecture import Plan, plan
from scratchnet.core.errors import ConfigError, DatasetError
from scratchnet.core.text import printable
from scratchnet.data import DATASETS, Dataset, load_dataset
from scratchnet.data.byte_arrays import ByteArray
from scratchnet.data.datasets import DATA_DIR_ENV
from scratchnet.data.images import Feeder
from scratchnet.data.own import Layout
from scratchnet.data.own_sets import held_out_rows, load_labelled, recorded_test
from scratchnet.data.recorded import recorded_dataset, shown_path
from scratchnet.io.model import LoadedModel
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
    layout: Layout

    def plan(self) -> Plan:
        """The architecture's shapes, as the layer registry infers them."""
        return plan(self.architecture)

    def names(self) -> tuple[str, ...]:
        """The class names: the metadata's, else the class numbers."""
        return self.class_names or tuple(str(k) for k in range(self.plan().classes))


def load_for_inference(path: str, backend: str) -> Model:
    """Load ``path`` into ``backend`` with the preprocessing and class names its metadata records."""
    from scratchnet.io.model import load_model

    return model_of(load_model(path, backend=backend), backend)


def model_of(loaded: LoadedModel, backend: str) -> Model:
    """A loaded model with the preprocessing, class names and layout its metadata records."""
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
        Layout.from_metadata(metadata, plan(loaded.architecture).input_shape),
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
        "--data",
        metavar="PATH",
        help="your own test data, labelled: a CSV file, a folder of class folders or an .npz, read as the model's "
        "training data was (default: the model's test set)",
    )
    parser.add_argument(
        "--label-column",
        metavar="NAME|N",
        help="with --data: the CSV file's label column, by name or position (default: the column the model's "
        "training data had, else 'label')",
    )
    parser.add_argument(
        "--backend",
        choices=BACKENDS,
        default=default_backend(),
        help="run the model on this backend (default vectorized; loops where NumPy is not installed)",
    )


DESCRIPTION = (
    "Evaluate a saved model on its test set: its dataset's 10,000 test images, the test set recorded when it "
    "was trained on your own data, or --data PATH."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common_arguments(parser)


def dataset_for(model: Model, args: argparse.Namespace) -> Dataset:
    """The test set: --data, else the dataset named by --dataset, else the model's own (the built-in
    dataset its metadata names, or the test data its ``source`` records); checks the data directory."""
    from scratchnet.cli.train import check_data_dir

    data_path = getattr(args, "data", None)
    if data_path is not None and args.dataset is not None:
        raise ConfigError("--data and --dataset are two test sets: give one")
    label_column = getattr(args, "label_column", None)
    if label_column is not None and data_path is None:
        raise ConfigError("--label-column says how to read --data: give the file with --data")
    if data_path is not None:
        layout = model.layout
        if label_column is not None:
            layout = replace(layout, options=replace(layout.options, label_column=label_column))
        source = model.metadata.get("source")
        source = source if isinstance(source, dict) else {}
        held = held_out_rows(data_path, layout, source, model.names())
        if held is not None:  # the training file itself: its trained-on rows would inflate the score
            print(
                printable(
                    f"note: {data_path} is the file {args.model} was trained on (its size and SHA-256 match the "
                    f"model's record): only the {len(held.test_labels)} rows held out from training "
                    f"(--test-fraction {source['test_fraction']:g}) are scored, not the ones it learned from"
                )
            )
            return fits(model, held, args, data_path)
        return fits(model, load_labelled(data_path, layout, model.names()), args, data_path)
    source = model.metadata.get("source")
    if args.dataset is None and model.layout.format is not None and isinstance(source, dict):
        # a recorded path is read only while it holds what the model records of it (data/recorded.py)
        test = source.get("test") if isinstance(source.get("test"), str) else source.get("path")
        return fits(model, recorded_test(model.layout, source, model.names()), args, shown_path(test))
    name = args.dataset or model.dataset
    if name is None:
        raise ConfigError(f"{args.model} does not say which dataset it was trained on; pass --dataset")
    check_data_dir(args.data_dir)
    data = remembered_dataset(model, name, args) or load_dataset(name, args.data_dir, splits=("test",))
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


def remembered_dataset(model: Model, name: str, args: argparse.Namespace) -> Dataset | None:
    """The test files of ``name`` from the data directory the model records it was trained from, when
    no --data-dir and no $SCRATCHNET_DATA_DIR is given: read by their fixed names and published
    checksums only, never downloaded into (:func:`~scratchnet.data.recorded.recorded_dataset`). None
    when there is none, or it no longer holds them: then the usual data directory is used."""
    recorded = model.metadata.get("data_dir")
    if args.data_dir is not None or os.environ.get(DATA_DIR_ENV) or not isinstance(recorded, str):
        return None
    if name != model.dataset:
        return None
    try:
        return recorded_dataset(name, recorded, splits=("test",))
    except DatasetError:
        return None


def fits(model: Model, data: Dataset, args: argparse.Namespace, where: str) -> Dataset:
    """``data`` (read with the model's layout), once it is known to hold samples; DatasetError if not."""
    if len(data.test_labels) == 0:
        raise DatasetError(f"{where}: no test samples to evaluate (the model was trained with --test-fraction 0)")
    shapes = model.plan()
    if math.prod(shapes.input_shape) != data.test_images[0].size:
        raise DatasetError(
            f"{where}: samples of {data.test_images[0].size} values, but {args.model} takes "
            f"{math.prod(shapes.input_shape)}"
        )
    return data


OVERFLOW_CHUNK = 500  # test images run layer by layer at a time when finding where the outputs overflow


def evaluate(model: Model, data: Dataset) -> ClassReport:
    """The report on ``data``'s test set; NumPy's overflow warnings become one line naming the layer."""
    from scratchnet.training.inference import predict_classes, predicted_list

    with watched() as flags:
        if isinstance(data.test_images, ByteArray):  # NumPy absent: the loops backend's list of classes
            predictions: Any = predicted_list(model.network, data.test_images, model.feeder)
        else:
            predictions = predict_classes(model.network, data.test_images, model.feeder)
    if flags.raised:
        where = overflow_of(model, data)
        if where is not None:
            warn(f"scratchnet evaluate: warning: {where}; its predictions where they overflow mean nothing")
    names = model.class_names or data.class_names  # from a file: printed with its control characters escaped
    return class_report(data.test_labels, predictions, [printable(name) for name in names])


def overflow_of(model: Model, data: Dataset) -> str | None:
    """The line naming the first layer whose outputs are not finite for some test sample, or None."""
    images = data.test_images
    for start in range(0, len(images), OVERFLOW_CHUNK):
        index = overflow_layer(model.network, model.feeder.inputs(images[start : start + OVERFLOW_CHUNK]))
        if index is not None:
            return overflow_message(model.network, index)
    return None


def run(args: argparse.Namespace) -> int:
    from scratchnet.cli.evaluate_text import is_language_model, run_text
    from scratchnet.io.model import load_model

    loaded = load_model(args.model, backend=args.backend)
    if is_language_model(loaded.metadata):
        return run_text(args, loaded)
    model = model_of(loaded, args.backend)
    data = dataset_for(model, args)
    started = time.perf_counter()
    report = evaluate(model, data)
    seconds = time.perf_counter() - started
    print(
        printable(f"{args.model}: {notation.outline(model.plan().description)} on {data.name}, {args.backend} backend")
    )
    correct = report.correct
    noun = "rows" if model.layout.kind == "features" else "images"
    print(f"test accuracy {percent(report.accuracy)} ({correct} of {report.total} test {noun}; {seconds:.1f} s)")
    print()
    print(per_class_table(report))
    print()
    print("confusion matrix (rows: true class, columns: predicted class)")
    print(confusion_table(report))
    return 0
