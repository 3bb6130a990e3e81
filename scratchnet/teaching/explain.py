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
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import scratchnet.teaching.layer_explainers  # noqa: F401  (registers the built-in layer types' explainers)
from scratchnet.core.errors import ConfigError, LabelError, ShapeError
from scratchnet.core.walk import walk
from scratchnet.loops.activations import log_sum_exp
from scratchnet.loops.losses import CrossEntropy
from scratchnet.loops.network import Network
from scratchnet.loops.tensor import flatten, reshape, shape_of
from scratchnet.teaching.explain_neuron import activated
from scratchnet.teaching.explain_text import draw_maps, format_explanation, format_unit, num
from scratchnet.teaching.explainers import (
    CHANNEL,
    EXPLAINERS,
    NEURON,
    Explainer,
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
    position,
)
from scratchnet.teaching.forward_pass import DEFAULT_MAPS, ForwardPass, neuron_layers

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


def layers_where(network: Network, test: Callable[[Explainer], bool]) -> list[int]:
    """Indices in ``network.layers`` of the layers whose explainer passes ``test``."""
    return [site.index for site in walk(network.plan) if site.kind in EXPLAINERS and test(EXPLAINERS[site.kind])]


def maps_layers(network: Network) -> list[int]:
    """Indices in ``network.layers`` of the layers whose units make feature maps (the Conv2D layers)."""
    return layers_where(network, lambda entry: entry.feature_maps)


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
    check_explainable(network)
    if layer is None:
        convs = maps_layers(network)
        if not convs:
            raise ConfigError("the network has no Conv2D layer, so no feature maps")
        layer = convs[0]
    if not 0 <= layer < len(network.layers):
        raise ConfigError(f"--layer {layer}: the network has layers 0..{len(network.layers) - 1}")
    shape = network.plan.output_of(layer)
    if len(shape) != 3:
        kind = walk(network.plan)[layer].kind
        raise ConfigError(f"layer {layer} ({kind}) outputs {shape}, not (channels, height, width) feature maps")
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
    neurons, units = _explain_chosen(fp, _choose(fp, layer, neuron, channel, row, col), predicted)
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


def _explain_chosen(
    fp: ForwardPass, chosen: list[tuple[int, int, Wanted | None, str]], predicted: int
) -> tuple[list[NeuronExplanation], list[UnitExplanation]]:
    """The explanations of the chosen layers' units, by their explainers, in layer order."""
    neurons: list[NeuronExplanation] = []
    units: list[UnitExplanation] = []
    focus: tuple[int, int] | None = None  # (l, p): the last explained unit is value p of values[l], flat
    for index, j, wanted, why in chosen:
        entry = fp.explainer(index)
        assert entry.explain is not None  # _choose chooses layers whose units are explained
        if entry.units == NEURON:
            j, why = _neuron_of(fp, index, j, why, predicted)
            neurons.append(entry.explain(fp, index, j, why))
            focus = (index + 1, j)
            continue
        p = None if wanted else _followed(fp, focus, index)
        if p is not None:
            why = "the unit that the unit explained above feeds"
        else:
            ranked = fp.values[fp.block_end(index) + 1] if entry.feature_maps else fp.values[index + 1]
            p = _most_active(flatten(ranked), shape_of(fp.values[index + 1]), wanted, index)
            why = _why(entry, wanted)
        units.append(entry.explain(fp, index, p, why))
        focus = (index + 1, p)
    return neurons, units


def _neuron_of(fp: ForwardPass, index: int, j: int, why: str, predicted: int) -> tuple[int, str]:
    """The neuron of layer ``index`` to explain and why: ``j``, or (when -1) the winning output
    neuron of the last such layer, the most active one of another."""
    _, a_values = activated(fp, index)
    if j == -1:
        if index == fp.neuron_layers()[-1]:
            j, why = predicted if len(a_values) > 1 else 0, "the winning output neuron"
        else:
            j = max(range(len(a_values)), key=a_values.__getitem__)
            why = "the most active neuron of this layer"
    count = math.prod(fp.network.plan.output_of(index))
    if not 0 <= j < count:
        raise ConfigError(f"--neuron {j}: layer {index} has neurons 0..{count - 1}")
    return j, why


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


def _why(entry: Explainer, wanted: Wanted | None) -> str:
    """Why a unit of a layer explained unit by unit (Conv2D, pooling, BatchNorm) was chosen."""
    if wanted is not None and None not in wanted:
        return "chosen"
    largest = "the largest value of its feature maps" if entry.feature_maps else "its largest output"
    if wanted is None:
        return f"the most active unit ({largest})"
    channel, row, _ = wanted
    given = f"channel {channel}" if channel is not None else f"row {row}, col {wanted[2]}"
    return f"the most active unit at the chosen {given} ({largest})"


Wanted = tuple[int | None, int | None, int | None]
"""The (channel, row, column) asked for; None where any will do."""


def _choose(
    fp: ForwardPass, layer: int | None, neuron: int | None, channel: int | None, row: int | None, col: int | None
) -> list[tuple[int, int, Wanted | None, str]]:
    """The layers to explain, in order: (index, neuron or -1, the unit asked for or None, why)."""
    denses = fp.neuron_layers()
    spatial = channel is not None or row is not None or col is not None
    wanted: Wanted | None = (channel, row, col) if spatial else None
    if (row is None) != (col is None):
        raise ConfigError("--row and --col go together: give both, or neither")
    explained = layers_where(fp.network, lambda entry: entry.units is not None)
    if layer is not None:
        if layer not in explained:
            if explained == denses:
                raise ConfigError(
                    f"--layer {layer} is not a Dense layer; the Dense layers are {', '.join(map(str, denses))} "
                    f"(indices in the network's layer list, as in the parameter names {denses[0]}.weight)"
                )
            kind = f"a {fp.kind(layer)}" if 0 <= layer < len(fp.sites) else "not a layer"
            listed = ", ".join(f"{i} ({fp.kind(i)})" for i in explained)
            raise ConfigError(f"--layer {layer} is {kind}; explain explains the units of layers {listed}")
        if layer in denses:
            if spatial:
                raise ConfigError(
                    f"--channel/--row/--col choose a unit of a feature map; layer {layer} is Dense: give --neuron"
                )
            return [(layer, neuron if neuron is not None else -1, None, "chosen")]
        if neuron is not None:
            raise ConfigError(
                f"--neuron picks a Dense neuron; layer {layer} is a {fp.kind(layer)}: "
                "choose its unit with --channel C (and --row I --col J)"
            )
        return [(layer, -1, wanted, "chosen" if spatial else "")]
    if spatial:
        if neuron is not None:
            raise ConfigError("--neuron and --channel/--row/--col choose units of different layers: give --layer too")
        convs = maps_layers(fp.network)
        if not convs:
            raise ConfigError("--channel/--row/--col choose a unit of a Conv2D layer; this network has none")
        return [(convs[0], -1, wanted, "chosen")]
    if neuron is not None:
        if not denses:
            raise ConfigError("--neuron picks a Dense neuron; this network has no Dense layer")
        return [(denses[-1], neuron, None, "chosen")]
    return [(i, -1, None, "") for i in explained]


def _most_active(flat: list[float], shape: tuple[int, ...], wanted: Wanted | None, layer: int) -> int:
    """The flat index of the largest output among the units ``wanted`` allows (the first in C order
    on a tie); ConfigError when the wanted unit is not one of the layer's."""
    channel, row, col = wanted if wanted is not None else (None, None, None)
    if channel is not None and not 0 <= channel < shape[0]:
        raise ConfigError(f"--channel {channel}: layer {layer} has channels 0..{shape[0] - 1}")
    if row is not None and col is not None:
        if len(shape) != 3:
            raise ConfigError(f"--row and --col: layer {layer}'s outputs have channels only, no rows and columns")
        if not (0 <= row < shape[1] and 0 <= col < shape[2]):
            raise ConfigError(
                f"--row {row} --col {col}: layer {layer}'s maps have rows 0..{shape[1] - 1} "
                f"and columns 0..{shape[2] - 1}"
            )
    candidates = [
        p
        for p in range(len(flat))
        if (channel is None or position(p, shape)[0] == channel)
        and (row is None or position(p, shape)[1:] == (row, col))
    ]
    return max(candidates, key=flat.__getitem__)


def _followed(fp: ForwardPass, focus: tuple[int, int] | None, index: int) -> int | None:
    """The unit of layer ``index`` that the last explained unit (``focus``) feeds, when only layers
    that join a block (activations, Dropout, BatchNorm) lie between them and keep its shape: the
    one its explainer's ``follow`` gives (the same unit for a BatchNorm, the window holding it for a
    pooling layer); None when there is no such unit."""
    if focus is None:
        return None
    source, p = focus
    if shape_of(fp.values[index]) != shape_of(fp.values[source]):
        return None
    if not all(fp.explainer(between).joins_block for between in range(source, index)):
        return None
    follow = fp.explainer(index).follow
    return None if follow is None else follow(fp, index, p)
