"""``scratchnet explain``: one prediction of a saved model, neuron by neuron, with the loops backend."""

from __future__ import annotations

import argparse
from typing import Any

from scratchnet.cli.options import add_picture_arguments, non_negative_int, positive_int
from scratchnet.core.errors import ConfigError
from scratchnet.core.text import printable
from scratchnet.teaching.explain import class_names_of, dataset_of, explain, format_explanation

DESCRIPTION = (
    "Load MODEL with the loops backend, run one test image (--index) or an image file (--image) "
    "through it and print, layer by layer, what happened: for chosen neurons the weighted sum term by "
    "term, the bias, z and the activation; the softmax outputs; the loss for the true label; and the "
    "gradient of that loss for the neuron's weights and bias. In a convolutional network, also the "
    "feature maps of each Conv2D layer, drawn in shaded blocks, and one unit of each Conv2D, pooling "
    "and BatchNorm layer: its window term by term, its maximum or mean, or its normalization. Each "
    "step names its equation in spec/math.md and the function computing it. With --backward: the "
    "backward pass of that image layer by layer, one weight's gradient term by term (--weight) and its "
    "finite-difference check. With --text, for a language model: the next-character probabilities after the "
    "text, every attention head's weights as a heat map, and one head at one position term by term."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="MODEL.json", help="the model (NAME, NAME.json or NAME.npz)")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--index", type=non_negative_int, metavar="N", help="test image N of the dataset (default 0)")
    source.add_argument(
        "--image",
        metavar="FILE",
        help="an image: .npy or .png, .jpg, ... (Pillow), prepared as predict --image prepares it (see --preprocess)",
    )
    source.add_argument(
        "--text",
        metavar="TEXT",
        help="a language model: the text to read (the next-character probabilities after it, each head's "
        "attention weights, and one head term by term)",
    )
    parser.add_argument("--label", type=non_negative_int, metavar="Y", help="the true class of --image (for the loss)")
    add_picture_arguments(parser)
    parser.add_argument("--dataset", help="dataset of --index (default: the one in the model's metadata)")
    parser.add_argument("--data-dir", metavar="DIR", help="folder holding mnist/ and fashion-mnist/")
    parser.add_argument(
        "--data",
        metavar="PATH",
        help="your own test data for --index (a CSV file, a folder of class folders, an .npz; default: the "
        "model's test set)",
    )
    add_unit_arguments(parser)
    add_text_arguments(parser)
    add_backward_arguments(parser)


def add_unit_arguments(parser: argparse.ArgumentParser) -> None:
    """Which layer and unit explain shows, and how much of it."""
    parser.add_argument(
        "--layer",
        type=non_negative_int,
        metavar="L",
        help="explain a neuron of layer L only (an index in the network's layer list, as in 0.weight); with "
        "--text, the attention layer L (or the first one inside container layer L) explained term by term",
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
        help="terms w[i]*x[i] shown one by one, the rest summed; with --text, the next characters listed (default 8)",
    )


def add_text_arguments(parser: argparse.ArgumentParser) -> None:
    """--text's choices: the head and the position explained term by term."""
    parser.add_argument(
        "--head",
        type=non_negative_int,
        metavar="H",
        help="with --text: the attention head explained term by term (default: the sharpest at --position)",
    )
    parser.add_argument(
        "--position",
        type=non_negative_int,
        metavar="T",
        help="with --text: the query position explained term by term (default: the last; for a documents "
        "model, position 0 is the boundary token before the text)",
    )


def add_backward_arguments(parser: argparse.ArgumentParser) -> None:
    """--backward and the weight it follows."""
    parser.add_argument(
        "--backward",
        action="store_true",
        help="show the backward pass instead: what each layer receives and sends back, one weight's gradient "
        "term by term and a finite difference",
    )
    parser.add_argument(
        "--weight",
        metavar="NAME[I,...]",
        help="with --backward: the weight or bias to follow, e.g. 0.weight[3,100] or 2.bias[7] "
        "(default: the weight with the largest |gradient|)",
    )


def run(args: argparse.Namespace) -> int:
    from scratchnet.cli.evaluate import dataset_for, load_for_inference

    check_backward_flags(args)

    model = load_for_inference(args.model, "loops")  # fed with the scaling training used
    if args.text is not None or model.network.vocabulary is not None:
        from scratchnet.cli.explain_tokens import run_text

        return run_text(model, args)
    if args.head is not None or args.position is not None:
        raise ConfigError("--head and --position go with --text, for a language model")
    names = class_names_of(model.metadata)
    if args.image is not None:
        from scratchnet.cli.predict import picture_for

        image, notes = picture_for(model, args.image, args)
        for note in notes:
            print(f"note: {note}")
        label = args.label
        source = f"image {args.image}"
    else:
        if args.label is not None or args.invert is not None or args.preprocess is not None:
            raise ConfigError(
                "--label, --invert and --preprocess go with --image; a test image's label comes from the dataset"
            )
        index = 0 if args.index is None else args.index
        own = args.data is not None or model.layout.format is not None
        if not own and args.dataset is None and dataset_of(model.metadata) is None:
            raise ConfigError(f"{args.model} does not record its dataset; give --dataset")
        data = dataset_for(model, args)
        noun = "row" if data.kind == "features" else "image"
        if index >= len(data.test_labels):
            raise ConfigError(f"--index {index}: {data.name} has test {noun}s 0..{len(data.test_labels) - 1}")
        image = data.test_images[index]
        label = int(data.test_labels[index])
        names = names or data.class_names
        source = f"{data.name} test {noun} {index}"
    inputs: list[Any] = model.feeder.inputs(image[None])[0]
    source = printable(f"{source} with model {args.model} (loops backend)")  # class names: !r
    if args.backward:
        from scratchnet.teaching.explain_backward import explain_backward

        text = explain_backward(
            model.network,
            inputs,
            label,
            weight=args.weight,
            top=args.top,
            class_names=names,
            source=source,
            image_shape=model.layout.shape if model.layout.kind == "image" else (),
        )
        print(text)
        return 0
    explanation = explain(
        model.network,
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
        source=source,
        image_shape=model.layout.shape if model.layout.kind == "image" else (),
    )
    print(format_explanation(explanation))
    return 0


def check_backward_flags(args: argparse.Namespace) -> None:
    """--weight goes with --backward; the forward explain's choices of a unit do not."""
    if args.weight is not None and not args.backward:
        raise ConfigError("--weight goes with --backward (explain MODEL --backward --weight 0.weight[3,100])")
    if args.backward:
        given = [flag for flag in ("layer", "neuron", "channel", "row", "col") if getattr(args, flag) is not None]
        if given:
            raise ConfigError(
                f"--{given[0]} chooses a unit of the forward explain; with --backward choose a weight with --weight"
            )
