"""``scratchnet predict MODEL.json``: draw an image in the terminal and show what the model makes of it;
or predict every row of a CSV file or every picture of a folder, into a CSV file of predictions."""

from __future__ import annotations

import argparse
import math
import os
import re
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from scratchnet.cli.evaluate import Model, add_common_arguments, dataset_for, load_for_inference
from scratchnet.cli.options import add_picture_arguments, column_names, non_negative_int, positive_int
from scratchnet.cli.overwrite import add_overwrite, refuse_existing
from scratchnet.core.errors import ConfigError, DatasetError, ScratchnetError
from scratchnet.core.text import printable
from scratchnet.data.images import Images, draw, read_image
from scratchnet.data.preprocess import picture_style, prepare
from scratchnet.io.model import check_replaceable

TOP = 3
KAGGLE_COLUMNS = ("ImageId", "Label")  # Kaggle's digit-recognizer submission: ImageId from 1, then the digit
ROW_COLUMNS = ("row", "label")  # any other CSV file: its data rows numbered from 1
FILE_COLUMNS = ("file", "label")  # a folder's pictures
SHOWN_FEATURES = 12  # the values of a table's row printed before "..."
# A cell a spreadsheet would read as a formula (OWASP, "CSV Injection"): it is written as text.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


DESCRIPTION = (
    "Draw an image with shaded blocks, then its true label (when known), the prediction and the top-3 "
    "probabilities. The image is a test-set image (--index), a file (--image: .npy, or PNG with Pillow: "
    "pip install scratchnet[png]), or each of the first K test images the model gets wrong. For a model of "
    "MNIST-style digits an --image is first made to look like MNIST's digits (cropped to its ink, scaled to fit "
    "20x20 and centred by its centre of mass), unless --no-preprocess. --csv FILE predicts every row of a CSV "
    "file and --folder DIR every picture in a folder, writing one row per input to --out (a CSV file; "
    "ImageId,Label for Kaggle's digit-recognizer test.csv; --out - for standard output). A cell that a "
    "spreadsheet would read as a formula (beginning with = + - @, a tab or a carriage return, other than a "
    "plain number) is written as text, with a ' in front."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common_arguments(parser)
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--index", type=non_negative_int, metavar="N", help="test image number N (0-based)")
    which.add_argument(
        "--image", metavar="FILE", help="an image: .npy (uint8 0..255 or floats 0..1) or .png, .jpg, ... (Pillow)"
    )
    which.add_argument(
        "--misclassified", type=positive_int, metavar="K", help="the first K test images the model gets wrong"
    )
    which.add_argument(
        "--csv",
        metavar="FILE",
        help="predict every row of a CSV file whose columns are the model's features (a label column is left out)",
    )
    which.add_argument("--folder", metavar="DIR", help="predict every picture in DIR (and its sub-folders)")
    parser.add_argument(
        "--out",
        metavar="FILE.csv",
        help="--csv, --folder: write the predictions to this CSV file, one row per input (default, and "
        "--out -: print them to standard output); a file that exists is replaced only with --overwrite",
    )
    add_overwrite(parser, "--out: replace the CSV file if it exists (--out - never needs it)")
    parser.add_argument(
        "--columns",
        type=column_names,
        metavar="ID,LABEL",
        help="--csv, --folder: the two column names of the predictions (default: ImageId,Label for Kaggle's "
        "digit-recognizer layout, row,label for another CSV file, file,label for pictures)",
    )
    add_picture_arguments(parser)


def name_of(model: Model, k: int, names: tuple[str, ...] | None = None) -> str:
    """Class ``k`` by the model's class names (or by ``names``, those of the dataset a label comes from)."""
    names = model.class_names if names is None else names
    if names is None or k >= len(names):
        return str(k)
    return printable(names[k]) if names[k] == str(k) else f"{k} {printable(names[k])}"


def shown(model: Model, sample: npt.NDArray[Any]) -> str:
    """A sample as text: an image drawn in shaded blocks, a table's row as its values."""
    if model.layout.kind != "features":
        return draw(sample, model.layout.scale)
    columns = model.layout.columns or tuple(str(k) for k in range(sample.size))
    values = [f"{printable(name)}={float(v):.4g}" for name, v in zip(columns, sample.reshape(-1).tolist())]
    more = f", ... ({len(values)} values)" if len(values) > SHOWN_FEATURES else ""
    return "features: " + ", ".join(values[:SHOWN_FEATURES]) + more


def describe(
    model: Model,
    image: npt.NDArray[Any],
    probabilities: npt.NDArray[np.float64],
    title: str,
    label: int | None,
    label_names: tuple[str, ...] | None = None,
) -> str:
    """The drawing, then true label (named as ``label_names``, its dataset's classes), prediction and
    top-3 probabilities (named as the model's classes), as text."""
    order = np.argsort(-probabilities, kind="stable")
    predicted = int(order[0])
    lines = [printable(title), shown(model, image)]
    if label is not None:
        lines.append(f"true label: {name_of(model, label, label_names)}")
    verdict = "" if label is None else ("  (right)" if predicted == label else "  (WRONG)")
    lines.append(f"prediction: {name_of(model, predicted)}{verdict}")
    top = "  ".join(f"{name_of(model, int(k))} {100 * probabilities[k]:.2f}%" for k in order[:TOP])
    lines.append(f"top {min(TOP, len(order))}: {top}")
    return "\n".join(lines)


def probabilities_of(model: Model, images: npt.NDArray[Any]) -> npt.NDArray[np.float64]:
    from scratchnet.training.inference import predict_probabilities

    return predict_probabilities(model.network, images, model.feeder)


def check_options(args: argparse.Namespace) -> None:
    """ConfigError for an option the chosen input does not use."""
    if args.invert is not None and args.image is None and args.folder is None:
        raise ConfigError("--invert and --no-invert apply to --image only (and to the pictures of --folder)")
    if args.preprocess is not None and args.image is None and args.folder is None:
        raise ConfigError("--preprocess and --no-preprocess apply to --image only (and to the pictures of --folder)")
    for option in ("out", "columns"):
        if getattr(args, option) is not None and args.csv is None and args.folder is None:
            raise ConfigError(f"--{option} goes with --csv and --folder")
    if args.out is not None and args.out != "-":  # before the model is loaded: an output it cannot write
        if Path(args.out).is_dir():
            raise ConfigError(f"--out {args.out} is a folder; give the name of the CSV file to write")
        check_replaceable(args.out)
        refuse_existing([Path(args.out)], args.overwrite)
    if args.data is not None and (args.csv is not None or args.folder is not None or args.image is not None):
        raise ConfigError("--data is the test set of --index and --misclassified; --csv, --folder and --image are read")


def run(args: argparse.Namespace) -> int:
    check_options(args)
    model = load_for_inference(args.model, args.backend)
    if args.image is not None:
        return predict_image(model, args)
    if args.csv is not None:
        return predict_csv(model, args)
    if args.folder is not None:
        return predict_folder(model, args)
    data = dataset_for(model, args)
    if args.index is not None:
        if args.index >= len(data.test_labels):
            raise ConfigError(
                f"--index {args.index} is out of range: the test set has {len(data.test_labels)} {noun(model)}s "
                f"(0..{len(data.test_labels) - 1})"
            )
        image = data.test_images[args.index]
        probabilities = probabilities_of(model, data.test_images[args.index : args.index + 1])[0]
        print(
            describe(
                model,
                image,
                probabilities,
                f"{data.name} test {noun(model)} {args.index}",
                int(data.test_labels[args.index]),
                data.class_names,
            )
        )
        return 0
    probabilities = probabilities_of(model, data.test_images)
    wrong = np.flatnonzero(np.argmax(probabilities, axis=1) != data.test_labels)
    print(
        f"{len(wrong)} of {len(data.test_labels)} test {noun(model)}s are misclassified; "
        f"the first {min(args.misclassified, len(wrong))}:"
    )
    for index in wrong[: args.misclassified]:
        print()
        print(
            describe(
                model,
                data.test_images[index],
                probabilities[index],
                f"{data.name} test {noun(model)} {int(index)}",
                int(data.test_labels[index]),
                data.class_names,
            )
        )
    return 0


def noun(model: Model) -> str:
    return "row" if model.layout.kind == "features" else "image"


def digits_model(model: Model, preprocess: bool | None) -> bool:
    """Whether pictures are read for the model as MNIST's digits are drawn (inverted when on white,
    and preprocessed unless ``preprocess`` is False): the default for a model of a built-in dataset,
    and on ``--preprocess`` for any model of 28x28 grey images."""
    mnist_like = model.layout.kind == "image" and model.layout.channels == 1 and model.layout.shape[-2:] == (28, 28)
    if preprocess and not mnist_like:
        raise ConfigError(
            f"--preprocess makes a picture look like MNIST's digits; {model.layout.describe()} are not 28x28 grey"
        )
    return mnist_like and (model.layout.format is None or bool(preprocess))


def prepared_picture(path: str, style: str, invert: bool | None, normalise: bool) -> tuple[Images, list[str]]:
    """The picture at ``path`` made to look like the model's 28x28 images (``style``, from its dataset:
    :func:`scratchnet.data.preprocess.prepare`), and notes saying what was done: the one preparation
    that predict, explain and the page share."""
    loaded = read_image(path, invert=invert)
    notes = list(loaded.notes)
    try:
        prepared = prepare(loaded.pixels, style, normalise=normalise)
    except ScratchnetError as error:
        if invert and "blank" in str(error):
            raise ScratchnetError(
                f"{path}: --invert made the picture blank: it is light on a dark background already, as the "
                "training images are; leave --invert out"
            ) from None
        raise
    if prepared.note():
        undo = " (--no-preprocess feeds it as it is)" if normalise and style == "digits" else ""
        notes.append(prepared.note() + undo)
    return prepared.pixels, notes


def predict_image(model: Model, args: argparse.Namespace) -> int:
    image, notes = picture_for(model, args.image, args)
    for note in notes:
        print(f"note: {note}")
    print(describe(model, image, probabilities_of(model, image[None])[0], args.image, None))
    return 0


def picture_for(model: Model, path: str, args: argparse.Namespace) -> tuple[npt.NDArray[Any], list[str]]:
    """The picture at ``path`` as the model takes its samples, and notes on what was done to it:
    for a model of MNIST-style digits as MNIST draws them (inverted when on white, preprocessed);
    for a model of your own pictures in its channels and size (resized when it is another size)."""
    from scratchnet.data.own_sets import load_pictures

    shape = model.plan().input_shape
    if model.layout.kind == "features":
        raise ConfigError(f"{args.model} takes {model.layout.describe()}, not images; give its rows with --csv FILE")
    if digits_model(model, args.preprocess):
        return prepared_picture(path, picture_style(model.dataset), args.invert, args.preprocess is not False)
    if path.lower().endswith(".npy"):
        raise ConfigError(f"{path}: give this model a picture (.png, .jpg, ...): it was trained on your own images")
    pictures = load_pictures([path], model.layout)
    image = pictures.x[0]
    notes = []
    if pictures.resized:
        height, width = model.layout.shape[-2:]
        notes.append(f"resized to {height}x{width}, the size of the model's training images")
    if args.invert:
        image = (model.layout.scale - image).astype(image.dtype)
        notes.append("inverted (--invert)")
    if math.prod(shape) != image.size:
        raise ConfigError(f"{args.model} takes samples of shape {shape}, not {image.shape}")
    return image, notes


def csv_cell(value: str) -> str:
    """``value`` as one cell of a CSV file that a spreadsheet opens as text, never as a formula.

    A cell beginning with one of :data:`FORMULA_STARTS` that is not a plain number (``-3``, ``+1.5e3``
    stay numbers) gets a ``'`` in front and is quoted, as OWASP advises for CSV injection; any other
    cell is quoted only when it holds a comma, a quote or a line break (RFC 4180)."""
    if value.startswith(FORMULA_STARTS) and not PLAIN_NUMBER.fullmatch(value):
        value = "'" + value
    elif not any(c in value for c in ',"\r\n'):
        return value
    return '"' + value.replace('"', '""') + '"'


def predictions_csv(
    ids: Sequence[str], labels: Sequence[str], columns: tuple[str, str], *, terminal: bool = False
) -> bytes:
    """The CSV text of the predictions: a header, then one row per input, each cell :func:`csv_cell`
    (for a ``terminal``, with its control characters escaped first)."""
    rows = [columns, *zip(ids, labels)]
    cell = (lambda value: csv_cell(printable(value))) if terminal else csv_cell
    return "".join(f"{cell(a)},{cell(b)}\n" for a, b in rows).encode("utf-8")


def write_predictions(
    args: argparse.Namespace, model: Model, ids: Sequence[str], labels: Sequence[str], columns: tuple[str, str]
) -> None:
    """The predictions to --out (replaced in one rename: never a half-written file), else (or with
    ``--out -``) to stdout; on a terminal, with the control characters of the cells escaped."""
    if args.out is None or args.out == "-":
        print(predictions_csv(ids, labels, columns, terminal=sys.stdout.isatty()).decode("utf-8"), end="")
        return
    data = predictions_csv(ids, labels, columns)
    from scratchnet.interop.files import write_atomically

    out = Path(args.out)
    write_atomically(out, data)
    print(f"wrote {printable(out)}: {len(ids)} predictions ({printable(','.join(columns))})")
    counts = Counter(labels)
    if len(counts) <= 20:
        shown = ", ".join(f"{printable(n)} {counts[n]}" for n in model.names() if n in counts)
        print(f"predicted classes: {shown}")


def labels_of(model: Model, samples: npt.NDArray[Any]) -> list[str]:
    """The model's class name for each sample (in chunks: a whole file of samples at once)."""
    names = model.names()
    return [names[int(k)] for k in np.argmax(probabilities_of(model, samples), axis=1)]


def predict_csv(model: Model, args: argparse.Namespace) -> int:
    from scratchnet.data.own_sets import load_unlabelled

    rows = load_unlabelled(args.csv, model.layout)
    if math.prod(model.plan().input_shape) != rows.x[0].size:
        raise DatasetError(
            f"{args.csv}: rows of {rows.x[0].size} values, but {args.model} takes {model.plan().input_shape}"
        )
    labels = labels_of(model, rows.x)
    columns = args.columns or (KAGGLE_COLUMNS if rows.kaggle else ROW_COLUMNS)
    write_predictions(args, model, rows.ids, labels, columns)
    return 0


def predict_folder(model: Model, args: argparse.Namespace) -> int:
    from scratchnet.data.folders import image_files

    folder = Path(args.folder)
    if not folder.is_dir():
        raise DatasetError(f"{folder}: no such folder")
    files = image_files(folder)
    if not files:
        raise DatasetError(f"{folder}: no pictures in it (.png, .jpg, ...)")
    if digits_model(model, args.preprocess):
        samples = np.stack([picture_for(model, os.fspath(f), args)[0] for f in files])
    else:
        from scratchnet.data.own_sets import load_pictures

        samples = load_pictures(files, model.layout).x
    labels = labels_of(model, samples)
    ids = [os.path.relpath(f, folder) for f in files]
    write_predictions(args, model, ids, labels, args.columns or FILE_COLUMNS)
    return 0
