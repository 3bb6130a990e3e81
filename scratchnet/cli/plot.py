"""``scratchnet plot``: PNG plots of a saved model (needs matplotlib: ``pip install "scratchnet[plot]"``)."""

from __future__ import annotations

import argparse
import math
import os
from pathlib import Path
from typing import Any

from scratchnet.cli.options import non_negative_float, non_negative_int, positive_int, rate, seed
from scratchnet.core.architecture import plan
from scratchnet.core.errors import ConfigError
from scratchnet.core.walk import walk
from scratchnet.io.model import LoadedModel, check_replaceable, load_model, make_folder, read_model
from scratchnet.teaching.explain import EXPLAINERS, class_names_of, dataset_of
from scratchnet.training.inference import predict_classes
from scratchnet.training.metrics import confusion_matrix

KINDS = ("curves", "diagnostics", "confusion", "misclassified", "weights", "filters", "feature-maps", "augmentations")


DESCRIPTION = (
    "curves: loss and training/validation accuracy per epoch from the model's saved history. "
    "diagnostics: what scratchnet train --diagnostics recorded, over the steps: each layer's activation std and "
    "dead or saturated part, each array's gradient std, each weight's update-to-data ratio with the 1e-3 line. "
    "confusion: the confusion matrix on the test set. misclassified: a grid of misclassified test images "
    "with their true and predicted labels. weights: the first layer's weights as 28x28 images, one per "
    "hidden neuron (the first 64). filters: the kernels of a convolutional network's first Conv2D layer "
    "(or --layer K), one small image per output channel. feature-maps: test image --index N and the "
    "feature maps the first Conv2D layer (or --layer K) makes of it, computed with the loops backend. "
    "augmentations: test image --index N of the model's test set (or of --dataset, --data; no model needed) "
    "and versions of it made by each augmentation given (--shift, --flip, --crop, --rotate and --scale, "
    "--erase), one row each, then by all of them together. "
    'Needs matplotlib: pip install "scratchnet[plot]".'
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("kind", choices=KINDS, help="what to draw")
    parser.add_argument(
        "model",
        metavar="MODEL.json",
        nargs="?",
        help="the model (NAME, NAME.json or NAME.npz; optional for augmentations)",
    )
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
    parser.add_argument(
        "--index", type=non_negative_int, metavar="N", help="feature-maps, augmentations: test image N (default 0)"
    )
    add_augmentation_arguments(parser)


def add_augmentation_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of plot augmentations (spec/math.md, section 22)."""
    group = parser.add_argument_group("augmentations (spec/math.md, section 22)")
    group.add_argument("--shift", type=positive_int, metavar="PX", help="random shifts of up to PX pixels")
    group.add_argument("--flip", action="store_true", default=None, help="mirror left to right, half of the time")
    group.add_argument("--crop", type=positive_int, metavar="PX", help="pad by PX zeros, crop back at random")
    group.add_argument("--rotate", type=non_negative_float, metavar="DEG", help="rotations by up to DEG degrees")
    group.add_argument("--scale", type=rate, metavar="S", help="scalings by a factor in [1 - S, 1 + S]")
    group.add_argument("--erase", type=non_negative_float, metavar="P", help="random erasing with probability P")
    group.add_argument(
        "--erase-noise", action="store_true", default=None, help="erase with random pixels (default: with 0, black)"
    )
    group.add_argument("--count", type=positive_int, metavar="N", help="versions per row (default 8, at most 16)")
    group.add_argument("--seed", type=seed, help="the augmentations' seed (default 0)")


def run(args: argparse.Namespace) -> int:
    from scratchnet.teaching import plots

    plots.require_matplotlib()  # before any slow loading
    if not str(args.out).lower().endswith(".png"):
        raise ConfigError(f"--out {args.out}: plots are written as PNG files; give a name ending in .png")
    check_replaceable(args.out)  # a link, a device or a FIFO is never replaced: refused before any work
    make_folder(Path(args.out), "write")  # as scratchnet train and save do: missing folders are created
    check_options(args)
    if args.kind == "augmentations":
        rows, source = augmentation_rows(args)
        title = "" if args.model is None else os.path.basename(str(args.model))
        plots.plot_augmentations(rows, args.out, source=source, title=title, dpi=args.dpi)
        width, height = plots.png_size(args.out)
        print(f"wrote {args.out} ({width}x{height} px)")
        return 0
    if args.model is None:
        raise ConfigError(f"plot {args.kind} draws a model: give its file (scratchnet plot {args.kind} MODEL.json)")
    if args.kind == "feature-maps":
        check_maps_layer(args.model, args.layer)  # before the loops network is built (slow for a large MLP)
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
    elif args.kind == "diagnostics":
        from scratchnet.teaching.training_plots import plot_diagnostics

        plot_diagnostics(diagnostics_of(loaded, args.model), args.out, title=title, dpi=args.dpi)
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
    width, height = plots.png_size(args.out)  # misclassified sizes its figure to the number of images
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


def diagnostics_of(loaded: LoadedModel, path: str) -> list[dict[str, Any]]:
    """The diagnostics samples ``scratchnet train --diagnostics`` kept in the model's history."""
    from scratchnet.training.diagnostics import samples_of

    samples = samples_of(history_of(loaded, path))
    if not samples:
        raise ConfigError(f"{path} has no diagnostics in its history: train it with scratchnet train --diagnostics")
    return samples


def check_options(args: argparse.Namespace) -> None:
    """ConfigError for an option the kind does not use."""
    used = {
        "layer": ("filters", "feature-maps"),
        "channel": ("filters",),
        "index": ("feature-maps", "augmentations"),
        "data": ("confusion", "misclassified", "feature-maps", "augmentations"),
        **{name: ("augmentations",) for name in (*AUGMENTATIONS, "erase_noise", "count", "seed")},
    }
    for option, kinds in used.items():
        if getattr(args, option) is not None and args.kind not in kinds:
            drawn = [kind for kind in kinds if kind != "augmentations"] or ["augmentations"]
            too = " (plot augmentations takes it too)" if len(drawn) < len(kinds) else ""
            flag = option.replace("_", "-")
            raise ConfigError(f"--{flag} goes with plot {' and '.join(drawn)}, not {args.kind}{too}")


AUGMENTATIONS = ("shift", "flip", "crop", "rotate", "scale", "erase")


def augmentation_rows(args: argparse.Namespace) -> tuple[list[tuple[str, list[Any]]], str]:
    """The rows of plot augmentations: ("original", [the image]), then (what, --count versions) for each
    augmentation given and, with two or more, for all of them in this order; and the image's name."""
    import numpy as np

    from scratchnet.data import augment

    if all(getattr(args, name) is None for name in AUGMENTATIONS):
        raise ConfigError("plot augmentations needs one or more of --shift, --flip, --crop, --rotate, --scale, --erase")
    count = 8 if args.count is None else args.count
    if count > 16:
        raise ConfigError(f"--count {count}: at most 16 versions per row")
    if args.rotate is not None and args.rotate > 180:
        raise ConfigError(f"--rotate {args.rotate:g}: rotations go up to 180 degrees either way")
    if args.erase is not None and args.erase > 1:
        raise ConfigError(f"--erase {args.erase:g}: a probability, from 0 to 1")
    if args.erase_noise and args.erase is None:
        raise ConfigError("--erase-noise says what --erase P fills the rectangle with: give --erase too")
    image, scale, source = augmentation_image(args)
    key = 0 if args.seed is None else args.seed
    steps: list[tuple[str, Any]] = []
    if args.shift:
        steps.append((f"shift ±{args.shift} px", lambda b: augment.shift_images(b, args.shift, key, 0)))
    if args.flip:
        steps.append(("mirror (p 0.5)", lambda b: augment.flip_images(b, key, 0)))
    if args.crop:
        steps.append((f"pad {args.crop}, crop", lambda b: augment.crop_images(b, args.crop, key, 0)))
    if args.rotate or args.scale:
        degrees, factor = args.rotate or 0.0, args.scale or 0.0
        what = "\n".join(([f"rotate ±{degrees:g}°"] if degrees else []) + ([f"scale ±{factor:g}"] if factor else []))
        steps.append((what, lambda b: augment.affine_images(b, degrees, factor, key, 0)))
    if args.erase:
        fill = "noise" if args.erase_noise else 0.0
        steps.append((f"erase (p {args.erase:g})", lambda b: augment.erase_images(b, args.erase, key, 0, fill=fill)))
    batch = np.repeat(image[None], count, axis=0)
    rows: list[tuple[str, list[Any]]] = [("original", [shown(image, scale)])]
    rows += [(what, [shown(x, scale) for x in step(batch)]) for what, step in steps]
    if len(steps) > 1:
        for _, step in steps:
            batch = step(batch)
        rows.append(("all, in\nthis order", [shown(x, scale) for x in batch]))
    return rows, source


def augmentation_image(args: argparse.Namespace) -> tuple[Any, float, str]:
    """Test image --index N of the model's test set, or of --dataset or --data without a model; its pixel
    scale and its name."""
    if args.model is not None:
        _, data = test_set(load_model(args.model, backend="vectorized"), args, "vectorized")
    elif args.data is not None:
        from scratchnet.data.own_sets import load_data

        if args.dataset is not None:
            raise ConfigError("--data and --dataset are two test sets: give one")
        data = load_data(args.data)
    elif args.dataset is not None:
        from scratchnet.cli.train import check_data_dir
        from scratchnet.data.datasets import load_dataset

        check_data_dir(args.data_dir)
        data = load_dataset(args.dataset, args.data_dir, splits=("test",))
    else:
        raise ConfigError("plot augmentations draws a test image: give a model, --dataset NAME or --data PATH")
    index = 0 if args.index is None else args.index
    if data.test_images.ndim < 3:
        raise ConfigError("the data is a table of features, not images: there is nothing to augment")
    if index >= len(data.test_labels):
        raise ConfigError(f"--index {index}: {data.name} has test images 0..{len(data.test_labels) - 1}")
    label = data.class_names[int(data.test_labels[index])]
    return data.test_images[index], data.scale, f"{data.name} test image {index} ({label})"


def conv_layers(loaded: LoadedModel) -> list[int]:
    """The indices of the model's Conv2D layers: those whose units make feature maps (their explainers say)."""
    return [
        site.index
        for site in walk(plan(loaded.architecture))
        if site.kind in EXPLAINERS and EXPLAINERS[site.kind].feature_maps
    ]


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


def check_maps_layer(model: str, layer: int | None) -> None:
    """The checks of ``scratchnet.teaching.explain.maps_layer``, with its one-line errors, made on the model
    file's architecture: a model without feature maps is refused before its loops network is built or
    its test set read."""
    from scratchnet.teaching.explain import plan_maps_layer

    plan_maps_layer(plan(read_model(model).document.architecture), layer)


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
