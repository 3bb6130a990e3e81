"""``scratchnet plot``: PNG plots of a saved model (needs matplotlib: ``pip install "scratchnet[plot]"``)."""

from __future__ import annotations

import argparse
import math
import os
from pathlib import Path
from typing import Any

from scratchnet.cli.options import non_negative_int, positive_int
from scratchnet.core.architecture import plan
from scratchnet.core.errors import ConfigError
from scratchnet.io.model import LoadedModel, load_model, make_folder
from scratchnet.teaching.explain import class_names_of, dataset_of
from scratchnet.training.inference import predict_classes
from scratchnet.training.metrics import confusion_matrix

KINDS = ("curves", "confusion", "misclassified", "weights", "filters", "feature-maps")


DESCRIPTION = (
    "curves: loss and training/validation accuracy per epoch from the model's saved history. "
    "confusion: the confusion matrix on the test set. misclassified: a grid of misclassified test images "
    "with their true and predicted labels. weights: the first layer's weights as 28x28 images, one per "
    "hidden neuron (the first 64). filters: the kernels of a convolutional network's first Conv2D layer "
    "(or --layer K), one small image per output channel. feature-maps: test image --index N and the "
    "feature maps the first Conv2D layer (or --layer K) makes of it, computed with the loops backend. "
    'Needs matplotlib: pip install "scratchnet[plot]".'
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("kind", choices=KINDS, help="what to draw")
    parser.add_argument("model", metavar="MODEL.json", help="the model (NAME, NAME.json or NAME.npz)")
    parser.add_argument("--out", required=True, metavar="FILE.png", help="the PNG file to write")
    parser.add_argument("--dataset", help="test set for confusion/misclassified (default: the model's dataset)")
    parser.add_argument("--data-dir", metavar="DIR", help="folder holding mnist/ and fashion-mnist/")
    parser.add_argument(
        "--data",
        metavar="PATH",
        help="your own test data for confusion, misclassified and feature-maps (a CSV file, a folder of class "
        "folders, an .npz; default: the model's test set)",
    )
    parser.add_argument("--dpi", type=positive_int, default=100, help="resolution (default 100: 100 px per inch)")
    parser.add_argument("--layer", type=non_negative_int, metavar="K", help="filters, feature-maps: layer K")
    parser.add_argument(
        "--channel", type=non_negative_int, metavar="C", help="filters: input channel C only (default: each)"
    )
    parser.add_argument("--index", type=non_negative_int, metavar="N", help="feature-maps: test image N (default 0)")


def run(args: argparse.Namespace) -> int:
    from scratchnet.teaching import plots

    plots.require_matplotlib()  # before any slow loading
    if not str(args.out).lower().endswith(".png"):
        raise ConfigError(f"--out {args.out}: plots are written as PNG files; give a name ending in .png")
    make_folder(Path(args.out), "write")  # as scratchnet train and save do: missing folders are created
    check_options(args)
    loaded = load_model(args.model, backend="loops" if args.kind == "feature-maps" else "vectorized")
    title = os.path.basename(str(args.model))
    if args.kind == "filters":
        layer, kernels = conv_weights(loaded, args.layer)
        plots.plot_filters(kernels, args.out, channel=args.channel, layer=layer, title=title, dpi=args.dpi)
    elif args.kind == "feature-maps":
        maps, image, source = feature_maps_of(loaded, args)
        name = f"layer {maps.layer} ({maps.name})"
        plots.plot_feature_maps(maps.maps, image, args.out, source=source, layer_name=name, title=title, dpi=args.dpi)
    elif args.kind == "curves":
        plots.plot_curves(history_of(loaded, args.model), args.out, title=title, dpi=args.dpi)
    elif args.kind == "weights":
        plots.plot_weights(
            first_layer_weights(loaded), args.out, title=title, dpi=args.dpi, shape=weight_image_shape(loaded)
        )
    else:
        images, labels, predicted, names, scale = test_predictions(loaded, args)
        if args.kind == "misclassified" and images.ndim == 2:
            raise ConfigError("the model takes a table of features, not images: there are no images to draw")
        if args.kind == "confusion":
            matrix = confusion_matrix(labels, predicted, len(names)).tolist()
            plots.plot_confusion(matrix, names, args.out, title=title, dpi=args.dpi)
        else:
            every = [n for n, (y, p) in enumerate(zip(labels, predicted)) if y != p]
            wrong = every[:36]
            plots.plot_misclassified(
                [shown(images[n], scale) for n in wrong],
                [labels[n] for n in wrong],
                [predicted[n] for n in wrong],
                wrong,
                names,
                args.out,
                title=title,
                dpi=args.dpi,
                total=len(every),
            )
    width, height = plots.pixel_size(args.kind, args.dpi)
    print(f"wrote {args.out} ({width}x{height} px)")
    return 0


def history_of(loaded: LoadedModel, path: str) -> list[dict[str, Any]]:
    """The per-epoch history ``scratchnet train`` saved in the model's metadata."""
    training = loaded.metadata.get("training")
    history = training.get("history") if isinstance(training, dict) else None
    if not isinstance(history, list) or not history or not all(isinstance(r, dict) for r in history):
        raise ConfigError(
            f"{path} has no training history (metadata.training.history); models saved by scratchnet train have one"
        )
    return history


def check_options(args: argparse.Namespace) -> None:
    """ConfigError for an option the kind does not use."""
    used = {
        "layer": ("filters", "feature-maps"),
        "channel": ("filters",),
        "index": ("feature-maps",),
        "data": ("confusion", "misclassified", "feature-maps"),
    }
    for option, kinds in used.items():
        if getattr(args, option) is not None and args.kind not in kinds:
            raise ConfigError(f"--{option} goes with plot {' and '.join(kinds)}, not {args.kind}")


def conv_layers(loaded: LoadedModel) -> list[int]:
    """The indices of the model's Conv2D layers."""
    return [i for i, layer in enumerate(loaded.architecture["layers"]) if layer["type"] == "Conv2D"]


def conv_weights(loaded: LoadedModel, layer: int | None) -> tuple[int, list[Any]]:
    """The index and the kernels (out, in, kh, kw) of the first Conv2D layer, or of ``layer``."""
    convs = conv_layers(loaded)
    if not convs:
        raise ConfigError("the model has no Conv2D layer, so no filters; plot weights draws a Dense first layer")
    if layer is None:
        layer = convs[0]
    elif layer not in convs:
        raise ConfigError(f"--layer {layer} is not a Conv2D layer; the Conv2D layers are {', '.join(map(str, convs))}")
    kernels: list[Any] = loaded.network.params()[f"{layer}.weight"].tolist()
    return layer, kernels


def test_set(loaded: LoadedModel, args: argparse.Namespace, backend: str) -> tuple[Any, Any]:
    """The model (as ``scratchnet.cli.evaluate`` takes it) and its test set: --data, --dataset, or the
    model's own (its dataset, or the test data of your own it records)."""
    from scratchnet.cli.evaluate import dataset_for, model_of

    model = model_of(loaded, backend)
    own = args.data is not None or model.layout.format is not None
    if not own and args.dataset is None and dataset_of(loaded.metadata) is None:
        raise ConfigError(f"{args.model} does not record its dataset; give --dataset")
    return model, dataset_for(model, args)


def shown(image: Any, scale: float) -> Any:
    """An image as matplotlib draws it on the 0..255 scale: ``(H, W)`` grey, ``(H, W, 3)`` RGB."""
    import numpy as np

    pixels = np.clip(np.rint(np.asarray(image, dtype=np.float64) * (255.0 / scale)), 0, 255).astype(np.uint8)
    if pixels.ndim == 3:
        pixels = pixels[0] if pixels.shape[0] == 1 else np.ascontiguousarray(pixels.transpose(1, 2, 0))
    return pixels


def feature_maps_of(loaded: LoadedModel, args: argparse.Namespace) -> tuple[Any, Any, str]:
    """The feature maps (scratchnet.teaching.explain.FeatureMaps) of test image --index N, computed
    by the loops network as ``scratchnet explain`` does, the image itself and its name."""
    from scratchnet.teaching.explain import feature_maps, maps_layer

    layer = maps_layer(loaded.network, args.layer)  # before the slow loading
    model, data = test_set(loaded, args, "loops")  # fed with the scaling training used
    index = 0 if args.index is None else args.index
    if index >= len(data.test_labels):
        raise ConfigError(f"--index {index}: {data.name} has test images 0..{len(data.test_labels) - 1}")
    image = data.test_images[index]
    maps = feature_maps(loaded.network, model.feeder.inputs(image[None])[0], layer)
    label = model.names()[int(data.test_labels[index])]
    shown_label = str(int(data.test_labels[index])) if label == str(int(data.test_labels[index])) else label
    return maps, shown(image, data.scale), f"{data.name} test image {index} (label {shown_label})"


def weight_image_shape(loaded: LoadedModel) -> tuple[int, int]:
    """The (height, width) the first layer's weights are drawn as: the model's grey images'."""
    from scratchnet.data.own import Layout

    layout = Layout.from_metadata(loaded.metadata)
    if layout.kind == "features":
        raise ConfigError("the model takes a table of features: its first weights are not images to draw")
    if layout.channels != 1:
        raise ConfigError(f"the model takes {layout.describe()}: plot weights draws the weights of grey images")
    height, width = layout.shape[-2:]
    return height, width


def first_layer_weights(loaded: LoadedModel) -> list[list[float]]:
    """The first weight the penalties apply to (the layer registry's weights), one row per unit, when
    that layer sees the input directly (each row then has one number per input pixel)."""
    checked = plan(loaded.architecture)
    weight = next((array for array in checked.arrays if array.penalized), None)
    if weight is None:
        raise ConfigError("the model has no layer with weights")
    if int(weight.name.split(".", 1)[0]) in conv_layers(loaded):
        raise ConfigError(
            "the model is a convolutional network, its first weights are kernels: draw them with plot filters"
        )
    size = math.prod(checked.input_shape)
    if math.prod(weight.shape[1:]) != size:
        raise ConfigError(
            f"the first weights ({weight.name}, shape {weight.shape}) do not have one number per input; "
            "the weights plot needs a first layer that sees the image, such as a Dense layer"
        )
    rows: list[list[float]] = loaded.network.params()[weight.name].reshape(weight.shape[0], size).tolist()
    return rows


def test_predictions(
    loaded: LoadedModel, args: argparse.Namespace
) -> tuple[Any, list[int], list[int], list[str], float]:
    """The test samples (images uint8 ``(n, 28, 28)``, say), their labels, the model's predictions, the
    class names and the pixel scale."""
    model, data = test_set(loaded, args, "vectorized")
    images = data.test_images
    predicted = [int(p) for p in predict_classes(loaded.network, images, model.feeder)]
    names = list(class_names_of(loaded.metadata) or data.class_names)
    return images, [int(y) for y in data.test_labels], predicted, names, data.scale
