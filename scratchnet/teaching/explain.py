"""Explain one prediction neuron by neuron, with the numbers of the loops backend.

:func:`explain` runs one input through a loops ``Network`` and returns an :class:`Explanation`: every
layer's output, and for chosen neurons their weighted sum term by term, the bias, z, the activation,
and the gradient of the loss for the neuron's weights and bias. :func:`format_explanation` turns it
into text. Each step names its equation in ``spec/math.md`` and the loops function that computes it.

In a convolutional network it explains one unit of each Conv2D layer (its window's weighted sum term
by term, eq. 12.1, with the layer's feature maps drawn in shaded blocks), of each pooling layer (the
window and its maximum or mean, eq. 13.1, 13.3) and of each BatchNorm layer (the normalization of its
channel, eq. 15.3, 15.4, 15.6). The numbers are read from the loops layers themselves (their
``fields``, ``argmax``, ``running_mean`` ...): one implementation of the numbers.

What it knows of each layer type comes from the type's explainer (:mod:`scratchnet.teaching.explainers`;
the built-in ones in :mod:`scratchnet.teaching.layer_explainers`): this module names no layer type.
Standard library only (the loops backend does not need NumPy).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import scratchnet.teaching.layer_explainers  # noqa: F401  (registers the built-in layer types' explainers)
from scratchnet.core.architecture import Plan
from scratchnet.core.errors import ConfigError, LabelError, ShapeError
from scratchnet.core.walk import walk
from scratchnet.loops.activations import log_sum_exp
from scratchnet.loops.losses import CrossEntropy
from scratchnet.loops.network import Network
from scratchnet.loops.tensor import flatten, reshape, shape_of
from scratchnet.teaching.choosing import choose, explain_chosen
from scratchnet.teaching.explain_text import draw_maps, format_explanation, format_unit, num
from scratchnet.teaching.explainers import (
    CHANNEL,
    EXPLAINERS,
    NEURON,
    activation_of,
    blocks,
    explained_types,
    register_explainer,
    site_names,
)
from scratchnet.teaching.explanation import (
    LOSSES,
    ConvUnitExplanation,
    Explanation,
    FeatureMaps,
    LayerOutput,
    NeuronExplanation,
    NormUnitExplanation,
    PoolUnitExplanation,
    UnitExplanation,
)
from scratchnet.teaching.forward_pass import DEFAULT_MAPS, ForwardPass, maps_layers, neuron_layers

DEFAULT_IMAGE = (28, 28)  # a model's samples are 28x28 grey images unless told otherwise (data.own.Layout)


def dataset_of(metadata: Mapping[str, Any]) -> str | None:
    """The name of the dataset a model was trained on, from its metadata (None when not recorded)."""
    for section in (metadata, metadata.get("training")):
        if isinstance(section, Mapping) and isinstance(section.get("dataset"), str):
            name: str = section["dataset"]
            return name
    return None


def class_names_of(metadata: Mapping[str, Any]) -> tuple[str, ...] | None:
    """The class names recorded in a model's metadata, if any."""
    names = metadata.get("class_names")
    if isinstance(names, list) and all(isinstance(name, str) for name in names):
        return tuple(names)
    return None


# The public names: the computation here, and (so that one import gives it all) the records, the
# text and the explainers' table of the modules it was split into. Import the table from here: this
# module registers the built-in types' explainers.
__all__ = [
    "DEFAULT_MAPS",
    "EXPLAINERS",
    "LOSSES",
    "ConvUnitExplanation",
    "Explanation",
    "FeatureMaps",
    "NeuronExplanation",
    "NormUnitExplanation",
    "PoolUnitExplanation",
    "UnitExplanation",
    "activation_of",
    "blocks",
    "check_explainable",
    "class_names_of",
    "dataset_of",
    "draw_maps",
    "explain",
    "explain_unit",
    "feature_maps",
    "format_explanation",
    "format_unit",
    "image_grid",
    "layer_names",
    "maps_layer",
    "neuron_layers",
    "num",
    "register_explainer",
]


def check_explainable(network: Network) -> None:
    """ConfigError naming the first layer whose type has no explainer (docs/layers.md)."""
    for index, site in enumerate(walk(network.plan)):
        if site.kind not in EXPLAINERS:
            raise ConfigError(
                f"explain cannot explain layer {index} ({site.kind}); it explains {', '.join(explained_types())}"
            )


def layer_names(network: Any) -> list[str]:
    """The names the printout gives the network's layers, e.g. ``Dense(784, 32)``, ``Conv2D(1 -> 8, 3x3)``
    (of a network of either backend)."""
    return site_names(walk(network.plan))


def image_grid(network: Network, image_shape: Sequence[int] | None = None) -> tuple[int, ...]:
    """The (rows, columns) that name the inputs of a flat network's first layer: those of the grey
    image its inputs were read from, ``image_shape`` ((H, W) or (1, H, W); default: 28x28); ``()``
    when the network takes several axes, the inputs are not a grey image or have another size."""
    shape = tuple(DEFAULT_IMAGE if image_shape is None else image_shape)
    if len(shape) == 3 and shape[0] == 1:
        shape = shape[1:]
    flat = tuple(network.input_shape)
    if len(flat) != 1 or len(shape) != 2 or math.prod(shape) != flat[0]:
        return ()
    return shape


def as_network_input(network: Network, inputs: Sequence[Any]) -> Any:
    """One sample in the network's input shape: ``inputs`` nested in that shape, or flat (784
    pixels for a (1, 28, 28) network); ShapeError when the number of values does not fit."""
    x = flatten(list(inputs))
    shape = tuple(network.input_shape)
    if len(x) != math.prod(shape):
        expected = str(shape[0]) if len(shape) == 1 else f"{math.prod(shape)} (shape {shape})"
        raise ShapeError(f"explain: the input has {len(x)} values, the network expects {expected}")
    return reshape(x, shape)


def forward_values(network: Network, x: Any) -> list[Any]:
    """``values[l]``: the input of layer l for one sample; ``values[-1]``: the network's output (eq. 6)."""
    values = [x]
    for item in network.layers:
        values.append(item.forward([values[-1]], False)[0])
    return values


def feature_maps(network: Network, inputs: Sequence[Any], layer: int | None = None) -> FeatureMaps:
    """The feature maps of one input: the output of the first Conv2D layer's block (the Conv2D and
    the BatchNorm, Dropout and activation layers right after it: what the next layer sees), or of
    ``layer``'s block when it is a Conv2D, or of ``layer`` itself when it outputs (C, H, W) maps."""
    layer = maps_layer(network, layer)
    return ForwardPass(network, forward_values(network, as_network_input(network, inputs))).maps_of(layer)


def maps_layer(network: Network, layer: int | None = None) -> int:
    """The layer :func:`feature_maps` draws for ``layer`` (the first Conv2D layer when None),
    checked from the network's shapes before anything runs: ConfigError unless it outputs
    (channels, height, width) maps."""
    return plan_maps_layer(network.plan, layer)


def plan_maps_layer(checked: Plan, layer: int | None = None) -> int:
    """:func:`maps_layer` on an architecture's plan alone, so that ``plot feature-maps`` refuses a
    model without feature maps before its network is built or its test set read."""
    sites = walk(checked)
    if layer is None:
        convs = [site.index for site in sites if site.kind in EXPLAINERS and EXPLAINERS[site.kind].feature_maps]
        if not convs:
            raise ConfigError("the network has no Conv2D layer, so no feature maps")
        layer = convs[0]
    if not 0 <= layer < len(sites):
        raise ConfigError(f"--layer {layer}: the network has layers 0..{len(sites) - 1}")
    shape = checked.output_of(layer)
    if len(shape) != 3:
        raise ConfigError(
            f"layer {layer} ({sites[layer].kind}) outputs {shape}, not (channels, height, width) feature maps"
        )
    return layer


def explain(
    network: Network,
    inputs: Sequence[Any],
    label: int | None = None,
    *,
    layer: int | None = None,
    neuron: int | None = None,
    channel: int | None = None,
    row: int | None = None,
    col: int | None = None,
    top: int = 8,
    top_gradients: int = 5,
    maps: int = DEFAULT_MAPS,
    class_names: Sequence[str] | None = None,
    source: str = "input",
    image_shape: Sequence[int] | None = None,
) -> Explanation:
    """Run ``inputs`` (one sample: flat, or nested in the network's input shape) through the loops
    ``network`` and explain it.

    Explained neurons and units: with ``layer`` (an index in ``network.layers``), just one of that
    layer: ``neuron`` of a Dense layer, or the unit (``channel``, ``row``, ``col``) of a Conv2D,
    pooling or BatchNorm layer, each defaulting to the most active one (the unit with the largest
    output among those the given ones allow). ``neuron`` alone picks a neuron of the output layer;
    ``channel``/``row``/``col`` alone pick a unit of the first Conv2D layer. Otherwise: the most
    active neuron (largest activation) of each hidden Dense layer, the winning neuron of the output
    layer, the most active unit of each Conv2D layer (largest value of its feature maps), and in each
    pooling or BatchNorm layer the unit that the unit explained before it feeds (else its most active
    one). ``maps`` feature maps are drawn per Conv2D layer. With a ``label``, the loss and the Dense
    neurons' gradients are included. ``image_shape`` is the shape of the grey image a flat input was
    read from (:func:`image_grid`): a first Dense layer's inputs are named by their row and column.
    """
    check_explainable(network)
    if not neuron_layers(network) and not maps_layers(network):
        raise ConfigError("explain needs a network with at least one Dense or Conv2D layer")
    if top < 1 or top_gradients < 1:
        raise ConfigError("explain: --top and the number of gradients shown must be at least 1")
    if maps < 0:
        raise ConfigError(f"explain: --maps must be 0 or more, got {maps}")
    x = as_network_input(network, inputs)

    # Forward, layer by layer, as Network.forward does it (eq. 6): a^l = layer_l(a^(l-1)).
    values = forward_values(network, x)
    fp = ForwardPass(network, values, label, top, top_gradients, maps, image_grid(network, image_shape))
    outputs = values[-1]
    classes = len(outputs)
    names = tuple(class_names) if class_names is not None else tuple(str(k) for k in range(classes))
    if len(names) != classes:
        names = tuple(str(k) for k in range(classes))
    predicted = max(range(classes), key=outputs.__getitem__) if classes > 1 else int(outputs[0] >= 0.5)
    logits = values[-2] if network.fused else outputs  # a fused loss reads the logits entering the last layer
    loss, lse = _loss(network, x, label, classes, logits)
    neurons, units = explain_chosen(fp, choose(fp, layer, neuron, channel, row, col), predicted)
    return Explanation(
        source=source,
        label=label,
        class_names=names,
        layers=[
            LayerOutput(i, fp.names[i], fp.kind(i), flatten(values[i + 1]), shape_of(values[i + 1]))
            for i in range(len(fp.sites))
        ],
        neurons=neurons,
        units=units,
        logits=list(logits),
        outputs=list(outputs),
        output_kind=fp.kind(len(fp.sites) - 1),
        predicted=predicted,
        loss_kind=type(network.loss_function).__name__,
        loss=loss,
        penalty=network.penalty() if label is not None else 0.0,
        log_sum_exp=lse,
        label_smoothing=float(getattr(network.loss_function, "label_smoothing", 0.0)),
    )


def _loss(
    network: Network, x: Any, label: int | None, classes: int, logits: Sequence[float]
) -> tuple[float | None, float | None]:
    """The loss for ``label`` (eq. 5) and, for cross-entropy, logsumexp of the logits; running the
    loops code's forward pass, loss and backpropagation (eq. 5, 6) so that the neurons' gradients
    can be read. (None, None) without a label."""
    if label is None:
        return None, None
    upper = 2 if classes == 1 else classes
    if int(label) != label or not 0 <= label < upper:
        raise LabelError(f"explain: label {label} is not a class of this network (0..{upper - 1})")
    batch_outputs = network.forward([x])
    network.loss(batch_outputs, [label])
    network.backward()
    loss = network.loss_function.value(network.loss_inputs, [label])
    lse = log_sum_exp(list(logits)) if isinstance(network.loss_function, CrossEntropy) else None
    return loss, lse


def explain_unit(
    network: Network,
    inputs: Sequence[Any],
    layer: int,
    unit: Sequence[int],
    label: int | None = None,
    *,
    top: int = 8,
    class_names: Sequence[str] | None = None,
    source: str = "input",
    image_shape: Sequence[int] | None = None,
) -> tuple[Explanation, NeuronExplanation | UnitExplanation]:
    """:func:`explain` for one chosen unit of layer ``layer``, and that unit's explanation: ``unit`` is
    ``(j,)`` for neuron j of a Dense layer, ``(c, i, j)`` for a unit of the feature maps of a Conv2D
    or pooling layer, and ``(c,)`` or ``(c, i, j)`` for a BatchNorm layer's (as its output's shape
    has one or three axes). ConfigError when the layer is not one whose units are explained or the
    unit is not one of its units."""
    if not 0 <= layer < len(network.layers):
        raise ConfigError(f"layer {layer}: the network has layers 0..{len(network.layers) - 1}")
    kind = walk(network.plan)[layer].kind
    units = EXPLAINERS[kind].units if kind in EXPLAINERS else None
    where = [int(k) for k in unit]
    if any(k < 0 for k in where):
        raise ConfigError(f"unit {where}: its indices are 0 or more")
    shape = tuple(network.plan.output_of(layer))
    neuron = channel = row = col = None
    if units == NEURON and len(where) == 1:
        if where[0] >= math.prod(shape):
            raise ConfigError(f"neuron {where[0]}: layer {layer} has neurons 0..{math.prod(shape) - 1}")
        neuron = where[0]
    elif units == CHANNEL and len(where) == len(shape):
        if any(k >= size for k, size in zip(where, shape)):
            raise ConfigError(f"{where} is not a unit of layer {layer} ({kind}), of shape {shape}")
        channel = where[0]
        if len(where) == 3:
            row, col = where[1], where[2]
    elif units is not None:
        raise ConfigError(f"{where} is not a unit of layer {layer} ({kind}), whose output has shape {shape}")
    else:
        raise ConfigError(f"layer {layer} is a {kind}, not a layer whose units explain explains")
    ex = explain(
        network,
        inputs,
        label,
        layer=layer,
        neuron=neuron,
        channel=channel,
        row=row,
        col=col,
        top=top,
        maps=0,
        class_names=class_names,
        source=source,
        image_shape=image_shape,
    )
    explained: list[NeuronExplanation | UnitExplanation] = [*ex.neurons, *ex.units]
    return ex, explained[0]
