"""``scratchnet predict MODEL.json``: draw an image in the terminal and show what the model makes of it."""

from __future__ import annotations

import argparse
import math

import numpy as np
import numpy.typing as npt

from scratchnet.cli.evaluate import Model, add_common_arguments, dataset_for, load_for_inference
from scratchnet.cli.options import non_negative_int, positive_int
from scratchnet.core.errors import ConfigError
from scratchnet.data.images import draw, read_image

TOP = 3


DESCRIPTION = (
    "Draw a 28x28 image with shaded blocks, then its true label (when known), the prediction "
    "and the top-3 probabilities. The image is a test-set image (--index), a file (--image: .npy, or PNG "
    "with Pillow: pip install scratchnet[png]), or each of the first K test images the model gets wrong. "
    "An --image is first made to look like MNIST's digits (cropped to its ink, scaled to fit 20x20 and "
    "centred by its centre of mass), unless --no-preprocess."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common_arguments(parser)
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--index", type=non_negative_int, metavar="N", help="test image number N (0-based)")
    which.add_argument("--image", metavar="FILE", help="a 28x28 grey image: .npy (uint8 0..255 or floats 0..1) or .png")
    which.add_argument(
        "--misclassified", type=positive_int, metavar="K", help="the first K test images the model gets wrong"
    )
    parser.add_argument(
        "--invert",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="--image is dark ink on a light background (default: inverted when its border is light, "
        "and the output says so; --no-invert never inverts)",
    )
    parser.add_argument(
        "--preprocess",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="make --image look like MNIST's digits before predicting: crop to the ink, scale it to fit "
        "20x20 and centre it by its centre of mass in 28x28, as scratchnet serve does (default; a "
        "test image is left as it is; --no-preprocess feeds the image as it is)",
    )


def name_of(model: Model, k: int, names: tuple[str, ...] | None = None) -> str:
    """Class ``k`` by the model's class names (or by ``names``, those of the dataset a label comes from)."""
    names = model.class_names if names is None else names
    if names is None or k >= len(names):
        return str(k)
    return names[k] if names[k] == str(k) else f"{k} {names[k]}"


def describe(
    model: Model,
    image: npt.NDArray[np.uint8],
    probabilities: npt.NDArray[np.float64],
    title: str,
    label: int | None,
    label_names: tuple[str, ...] | None = None,
) -> str:
    """The drawing, then true label (named as ``label_names``, its dataset's classes), prediction and
    top-3 probabilities (named as the model's classes), as text."""
    order = np.argsort(-probabilities, kind="stable")
    predicted = int(order[0])
    lines = [title, draw(image)]
    if label is not None:
        lines.append(f"true label: {name_of(model, label, label_names)}")
    verdict = "" if label is None else ("  (right)" if predicted == label else "  (WRONG)")
    lines.append(f"prediction: {name_of(model, predicted)}{verdict}")
    top = "  ".join(f"{name_of(model, int(k))} {100 * probabilities[k]:.2f}%" for k in order[:TOP])
    lines.append(f"top {min(TOP, len(order))}: {top}")
    return "\n".join(lines)


def probabilities_of(model: Model, images: npt.NDArray[np.uint8]) -> npt.NDArray[np.float64]:
    from scratchnet.training.train import predict_probabilities

    return predict_probabilities(model.network, images, model.feeder)


def run(args: argparse.Namespace) -> int:
    model = load_for_inference(args.model, args.backend)
    if args.image is not None:
        loaded = read_image(args.image, invert=args.invert)
        image = loaded.pixels
        shape = model.plan().input_shape
        if math.prod(shape) != image.size:
            takes = f"{shape[0]} inputs" if len(shape) == 1 else f"images of shape {shape} (channels, height, width)"
            raise ConfigError(f"{args.model} takes {takes}, not a {image.shape[0]}x{image.shape[1]} image")
        notes = list(loaded.notes)
        if args.preprocess is not False:  # after the loading: inverted, composited, not blank
            from scratchnet.data.preprocess import preprocess

            prepared = preprocess(image)
            image = prepared.pixels
            if prepared.note():
                notes.append(f"{prepared.note()} (--no-preprocess feeds it as it is)")
        for note in notes:
            print(f"note: {note}")
        print(describe(model, image, probabilities_of(model, image[None])[0], args.image, None))
        return 0
    if args.invert is not None:
        raise ConfigError("--invert and --no-invert apply to --image only")
    if args.preprocess is not None:
        raise ConfigError("--preprocess and --no-preprocess apply to --image only")
    data = dataset_for(model, args)
    if args.index is not None:
        if args.index >= len(data.test_labels):
            raise ConfigError(
                f"--index {args.index} is out of range: the test set has {len(data.test_labels)} images "
                f"(0..{len(data.test_labels) - 1})"
            )
        image = data.test_images[args.index]
        probabilities = probabilities_of(model, data.test_images[args.index : args.index + 1])[0]
        print(
            describe(
                model,
                image,
                probabilities,
                f"{data.name} test image {args.index}",
                int(data.test_labels[args.index]),
                data.class_names,
            )
        )
        return 0
    probabilities = probabilities_of(model, data.test_images)
    wrong = np.flatnonzero(np.argmax(probabilities, axis=1) != data.test_labels)
    print(
        f"{len(wrong)} of {len(data.test_labels)} test images are misclassified; "
        f"the first {min(args.misclassified, len(wrong))}:"
    )
    for index in wrong[: args.misclassified]:
        print()
        print(
            describe(
                model,
                data.test_images[index],
                probabilities[index],
                f"{data.name} test image {int(index)}",
                int(data.test_labels[index]),
                data.class_names,
            )
        )
    return 0
