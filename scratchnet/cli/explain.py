"""``scratchnet explain``: one prediction of a saved model, neuron by neuron, with the loops backend."""

from __future__ import annotations

import argparse
from typing import Any

from scratchnet.cli.options import non_negative_int, positive_int
from scratchnet.core.errors import ConfigError
from scratchnet.io.model import load_model
from scratchnet.teaching.explain import class_names_of, dataset_of, explain, format_explanation

DESCRIPTION = (
    "Load MODEL with the loops backend, run one test image (--index) or an image file (--image) "
    "through it and print, layer by layer, what happened: for chosen neurons the weighted sum term by "
    "term, the bias, z and the activation; the softmax outputs; the loss for the true label; and the "
    "gradient of that loss for the neuron's weights and bias. In a convolutional network, also the "
    "feature maps of each Conv2D layer, drawn in shaded blocks, and one unit of each Conv2D, pooling "
    "and BatchNorm layer: its window term by term, its maximum or mean, or its normalization. Each "
    "step names its equation in spec/math.md and the function computing it."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="MODEL.json", help="the model (NAME, NAME.json or NAME.npz)")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--index", type=non_negative_int, metavar="N", help="test image N of the dataset (default 0)")
    source.add_argument("--image", metavar="FILE", help="a 28x28 grey image: .npy, or .png (needs Pillow)")
    parser.add_argument("--label", type=non_negative_int, metavar="Y", help="the true class of --image (for the loss)")
    parser.add_argument(
        "--invert",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="invert --image (dark ink on white paper; default: when its border is light, saying so)",
    )
    parser.add_argument("--dataset", help="dataset of --index (default: the one in the model's metadata)")
    parser.add_argument("--data-dir", metavar="DIR", help="folder holding mnist/ and fashion-mnist/")
    parser.add_argument(
        "--layer",
        type=non_negative_int,
        metavar="L",
        help="explain a neuron of layer L only (an index in the network's layer list, as in 0.weight)",
    )
    parser.add_argument(
        "--neuron",
        type=non_negative_int,
        metavar="J",
        help="the Dense neuron to explain (default: the winning output neuron / the most active one)",
    )
    parser.add_argument(
        "--channel",
        type=non_negative_int,
        metavar="C",
        help="the channel of the unit to explain in a Conv2D, pooling or BatchNorm layer (--layer; "
        "default the first Conv2D layer), by default its most active unit",
    )
    parser.add_argument("--row", type=non_negative_int, metavar="I", help="with --col: the row of that unit")
    parser.add_argument("--col", type=non_negative_int, metavar="J", help="with --row: the column of that unit")
    parser.add_argument(
        "--maps",
        type=non_negative_int,
        default=8,
        metavar="K",
        help="feature maps drawn per Conv2D layer (default 8; 0: none)",
    )
    parser.add_argument(
        "--top",
        type=positive_int,
        default=8,
        metavar="K",
        help="terms w[i]*x[i] shown one by one, the rest summed (default 8)",
    )


def run(args: argparse.Namespace) -> int:
    loaded = load_model(args.model, backend="loops")
    metadata = loaded.metadata
    names = class_names_of(metadata)
    from scratchnet.data.images import Feeder, read_image

    shape = tuple(loaded.network.input_shape)
    feeder = Feeder.from_metadata(metadata, "loops", "float64", shape)  # the scaling training used
    if args.image is not None:
        loaded_image = read_image(args.image, invert=args.invert)
        for note in loaded_image.notes:
            print(f"note: {note}")
        image = loaded_image.pixels
        label = args.label
        source = f"image {args.image}"
    else:
        if args.label is not None or args.invert is not None:
            raise ConfigError("--label and --invert go with --image; a test image's label comes from the dataset")
        index = 0 if args.index is None else args.index
        name = args.dataset or dataset_of(metadata)
        if name is None:
            raise ConfigError(f"{args.model} does not record its dataset; give --dataset")
        from scratchnet.data import load_dataset

        data = load_dataset(name, args.data_dir, splits=("test",))
        if index >= len(data.test_labels):
            raise ConfigError(f"--index {index}: {name} has test images 0..{len(data.test_labels) - 1}")
        image = data.test_images[index]
        label = int(data.test_labels[index])
        names = names or data.class_names
        source = f"{name} test image {index}"
    inputs: list[Any] = feeder.inputs(image[None])[0]
    explanation = explain(
        loaded.network,
        inputs,
        label,
        layer=args.layer,
        neuron=args.neuron,
        channel=args.channel,
        row=args.row,
        col=args.col,
        top=args.top,
        maps=args.maps,
        class_names=names,
        source=f"{source} with model {args.model} (loops backend)",
    )
    print(format_explanation(explanation))
    return 0
