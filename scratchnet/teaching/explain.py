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

Standard library only (the loops backend does not need NumPy).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from scratchnet.core.errors import ConfigError, LabelError, ShapeError
from scratchnet.loops.activations import Elementwise, Softmax, log_sum_exp
from scratchnet.loops.convolution import Conv2D
from scratchnet.loops.layers import Dense, Dropout
from scratchnet.loops.losses import BinaryCrossEntropy, CrossEntropy, MeanSquaredError
from scratchnet.loops.network import Network
from scratchnet.loops.neuron import Neuron, nonzero
from scratchnet.loops.normalization import BatchNorm
from scratchnet.loops.pooling import AvgPool2D, MaxPool2D, Pool2D
from scratchnet.loops.reshape import Flatten
from scratchnet.loops.tensor import flatten, reshape, shape_of
from scratchnet.teaching.explain_text import draw_maps, format_explanation, format_unit, num
from scratchnet.teaching.explanation import (
    ACTIVATIONS,
    LOSSES,
    UNIT_EQUATIONS,
    Backprop,
    ConvUnitExplanation,
    Explanation,
    FeatureMaps,
    LayerOutput,
    NeuronExplanation,
    NormUnitExplanation,
    PoolUnitExplanation,
    Term,
    UnitExplanation,
    WeightGradient,
    WindowTerm,
    position,
)


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


# The layer types this module explains: a Dense layer neuron by neuron (eq. 2.1), the activations
# after it, Dropout (the identity at inference); a Conv2D layer unit by unit (eq. 12.1), the pooling
# layers (13.1, 13.3), Flatten (14.1) and BatchNorm at inference (15.6). Other types are refused by name.
# The public names: the computation here, and (so that one import gives it all) the records and the
# text of the modules it was split into.
__all__ = [
    "ACTIVATIONS",
    "DEFAULT_MAPS",
    "EXPLAINED",
    "LOSSES",
    "UNIT_EQUATIONS",
    "ConvUnitExplanation",
    "Explanation",
    "FeatureMaps",
    "NeuronExplanation",
    "NormUnitExplanation",
    "PoolUnitExplanation",
    "UnitExplanation",
    "check_explainable",
    "class_names_of",
    "dataset_of",
    "draw_maps",
    "explain",
    "explain_unit",
    "feature_maps",
    "format_explanation",
    "format_unit",
    "maps_layer",
    "num",
]

EXPLAINED = ("Dense", "Dropout", *ACTIVATIONS, "Conv2D", "MaxPool2D", "AvgPool2D", "Flatten", "BatchNorm")
BY_CHANNEL = (Conv2D, Pool2D, BatchNorm)  # the layers whose units are chosen by --channel (and --row, --col)
DEFAULT_MAPS = 8  # feature maps drawn per Conv2D layer


def check_explainable(network: Network) -> None:
    """ConfigError naming the first layer whose type explain cannot explain (yet)."""
    for index, item in enumerate(network.layers):
        kind = item.describe()["type"]
        if kind not in EXPLAINED:
            raise ConfigError(f"explain cannot explain layer {index} ({kind}); it explains {', '.join(EXPLAINED)}")


def dense_indices(network: Network) -> list[int]:
    """Indices in ``network.layers`` of the Dense layers (as in parameter names ``0.weight``)."""
    return [i for i, layer in enumerate(network.layers) if isinstance(layer, Dense)]


def layer_names(network: Network) -> list[str]:
    """The names the printout gives the network's layers, e.g. ``Dense(784, 32)``, ``Conv2D(1 -> 8, 3x3)``."""
    return [_layer_name(item) for item in network.layers]


def conv_indices(network: Network) -> list[int]:
    """Indices in ``network.layers`` of the Conv2D layers."""
    return [i for i, layer in enumerate(network.layers) if isinstance(layer, Conv2D)]


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
    values = forward_values(network, as_network_input(network, inputs))
    return _maps_of(network, values, layer)


def maps_layer(network: Network, layer: int | None = None) -> int:
    """The layer :func:`feature_maps` draws for ``layer`` (the first Conv2D layer when None),
    checked from the network's shapes before anything runs: ConfigError unless it outputs
    (channels, height, width) maps."""
    if layer is None:
        convs = conv_indices(network)
        if not convs:
            raise ConfigError("the network has no Conv2D layer, so no feature maps")
        layer = convs[0]
    if not 0 <= layer < len(network.layers):
        raise ConfigError(f"--layer {layer}: the network has layers 0..{len(network.layers) - 1}")
    shape = network.plan.output_of(layer)
    if len(shape) != 3:
        kind = type(network.layers[layer]).__name__
        raise ConfigError(f"layer {layer} ({kind}) outputs {shape}, not (channels, height, width) feature maps")
    return layer


def _maps_of(network: Network, values: list[Any], layer: int) -> FeatureMaps:
    shown = _block_end(network, layer) if isinstance(network.layers[layer], Conv2D) else layer
    output = values[shown + 1]
    flat = flatten(output)
    return FeatureMaps(shown, _layer_name(network.layers[shown]), output, min(flat), max(flat))


def _block_end(network: Network, index: int) -> int:
    """The last of the BatchNorm, Dropout and elementwise activation layers right after layer ``index``
    (``index`` when there is none): their output is the convolution's feature maps as the next layer sees them."""
    end = index
    while end + 1 < len(network.layers) and isinstance(network.layers[end + 1], (BatchNorm, Dropout, Elementwise)):
        end += 1
    return end


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
    neurons' gradients are included.
    """
    check_explainable(network)
    denses = dense_indices(network)
    if not denses and not conv_indices(network):
        raise ConfigError("explain needs a network with at least one Dense or Conv2D layer")
    if top < 1 or top_gradients < 1:
        raise ConfigError("explain: --top and the number of gradients shown must be at least 1")
    if maps < 0:
        raise ConfigError(f"explain: --maps must be 0 or more, got {maps}")
    x = as_network_input(network, inputs)

    # Forward, layer by layer, as Network.forward does it (eq. 6): a^l = layer_l(a^(l-1)).
    values = forward_values(network, x)
    outputs = values[-1]
    classes = len(outputs)
    names = tuple(class_names) if class_names is not None else tuple(str(k) for k in range(classes))
    if len(names) != classes:
        names = tuple(str(k) for k in range(classes))
    predicted = max(range(classes), key=outputs.__getitem__) if classes > 1 else int(outputs[0] >= 0.5)

    loss_kind = type(network.loss_function).__name__
    fused = network.fused  # the loss reads the logits entering the last layer
    logits = values[-2] if fused else outputs
    loss: float | None = None
    lse: float | None = None
    if label is not None:
        upper = 2 if classes == 1 else classes
        if int(label) != label or not 0 <= label < upper:
            raise LabelError(f"explain: label {label} is not a class of this network (0..{upper - 1})")
        # The loops code itself: the forward pass, the loss and backpropagation (eq. 5, 6).
        batch_outputs = network.forward([x])
        network.loss(batch_outputs, [label])
        network.backward()
        loss = network.loss_function.value(network.loss_inputs, [label])
        if isinstance(network.loss_function, CrossEntropy):
            lse = log_sum_exp(list(logits))

    chosen = _choose(network, layer, neuron, channel, row, col)
    neurons: list[NeuronExplanation] = []
    units: list[UnitExplanation] = []
    focus: tuple[int, int] | None = None  # (l, p): the last explained unit is value p of values[l], flat
    for index, j, wanted, why in chosen:
        item = network.layers[index]
        if isinstance(item, Dense):
            act_index = _activation_after(network, index)
            a_values = values[act_index + 1] if act_index is not None else values[index + 1]
            if j == -1:
                if index == denses[-1]:
                    j, why = predicted if len(a_values) > 1 else 0, "the winning output neuron"
                else:
                    j = max(range(len(a_values)), key=a_values.__getitem__)
                    why = "the most active neuron of this layer"
            if not 0 <= j < item.out_features:
                raise ConfigError(f"--neuron {j}: layer {index} has neurons 0..{item.out_features - 1}")
            site = _Site(network, values, denses, index, j, act_index, a_values)
            neurons.append(_explain_neuron(site, why, label, top, top_gradients))
            focus = (index + 1, j)
            continue
        position = None if wanted else _followed(network, values, focus, index)
        if position is not None:
            why = "the unit that the unit explained above feeds"
        else:
            ranked = values[_block_end(network, index) + 1] if isinstance(item, Conv2D) else values[index + 1]
            position = _most_active(flatten(ranked), shape_of(values[index + 1]), wanted, index)
            why = _why(item, wanted)
        if isinstance(item, Conv2D):
            units.append(_explain_conv(network, values, index, position, why, top, maps))
        elif isinstance(item, Pool2D):
            units.append(_explain_pool(network, values, index, position, why))
        else:
            assert isinstance(item, BatchNorm)
            units.append(_explain_norm(network, values, index, position, why))
        focus = (index + 1, position)

    layers = [
        LayerOutput(i, _layer_name(item), type(item).__name__, flatten(values[i + 1]), shape_of(values[i + 1]))
        for i, item in enumerate(network.layers)
    ]
    return Explanation(
        source=source,
        label=label,
        class_names=names,
        layers=layers,
        neurons=neurons,
        units=units,
        logits=list(logits),
        outputs=list(outputs),
        output_kind=type(network.layers[-1]).__name__,
        predicted=predicted,
        loss_kind=loss_kind,
        loss=loss,
        penalty=network.penalty() if label is not None else 0.0,
        log_sum_exp=lse,
    )


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
) -> tuple[Explanation, NeuronExplanation | UnitExplanation]:
    """:func:`explain` for one chosen unit of layer ``layer``, and that unit's explanation: ``unit`` is
    ``(j,)`` for neuron j of a Dense layer, ``(c, i, j)`` for a unit of the feature maps of a Conv2D
    or pooling layer, and ``(c,)`` or ``(c, i, j)`` for a BatchNorm layer's (as its output's shape
    has one or three axes). ConfigError when the layer is not one whose units are explained or the
    unit is not one of its units."""
    if not 0 <= layer < len(network.layers):
        raise ConfigError(f"layer {layer}: the network has layers 0..{len(network.layers) - 1}")
    item = network.layers[layer]
    where = [int(k) for k in unit]
    if any(k < 0 for k in where):
        raise ConfigError(f"unit {where}: its indices are 0 or more")
    neuron = channel = row = col = None
    if isinstance(item, Dense) and len(where) == 1:
        if where[0] >= item.out_features:
            raise ConfigError(f"neuron {where[0]}: layer {layer} has neurons 0..{item.out_features - 1}")
        neuron = where[0]
    elif isinstance(item, BY_CHANNEL) and len(where) == len(network.plan.output_of(layer)):
        shape = tuple(network.plan.output_of(layer))
        if any(k >= size for k, size in zip(where, shape)):
            raise ConfigError(f"{where} is not a unit of layer {layer} ({type(item).__name__}), of shape {shape}")
        channel = where[0]
        if len(where) == 3:
            row, col = where[1], where[2]
    elif isinstance(item, (Dense, *BY_CHANNEL)):
        shape = tuple(network.plan.output_of(layer))
        raise ConfigError(
            f"{where} is not a unit of layer {layer} ({type(item).__name__}), whose output has shape {shape}"
        )
    else:
        raise ConfigError(f"layer {layer} is a {type(item).__name__}, not a layer whose units explain explains")
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
    )
    explained: list[NeuronExplanation | UnitExplanation] = [*ex.neurons, *ex.units]
    return ex, explained[0]


def _why(item: object, wanted: Wanted | None) -> str:
    """Why a unit of a Conv2D, pooling or BatchNorm layer was chosen."""
    if wanted is not None and None not in wanted:
        return "chosen"
    largest = "the largest value of its feature maps" if isinstance(item, Conv2D) else "its largest output"
    if wanted is None:
        return f"the most active unit ({largest})"
    channel, row, _ = wanted
    given = f"channel {channel}" if channel is not None else f"row {row}, col {wanted[2]}"
    return f"the most active unit at the chosen {given} ({largest})"


Wanted = tuple[int | None, int | None, int | None]
"""The (channel, row, column) asked for; None where any will do."""


def _choose(
    network: Network, layer: int | None, neuron: int | None, channel: int | None, row: int | None, col: int | None
) -> list[tuple[int, int, Wanted | None, str]]:
    """The layers to explain, in order: (index, Dense neuron or -1, the unit asked for or None, why)."""
    layers = network.layers
    denses = dense_indices(network)
    spatial = channel is not None or row is not None or col is not None
    wanted: Wanted | None = (channel, row, col) if spatial else None
    if (row is None) != (col is None):
        raise ConfigError("--row and --col go together: give both, or neither")
    if layer is not None:
        explained = [i for i, item in enumerate(layers) if isinstance(item, (Dense, *BY_CHANNEL))]
        if layer not in explained:
            if explained == denses:
                raise ConfigError(
                    f"--layer {layer} is not a Dense layer; the Dense layers are {', '.join(map(str, denses))} "
                    f"(indices in the network's layer list, as in the parameter names {denses[0]}.weight)"
                )
            kind = f"a {type(layers[layer]).__name__}" if 0 <= layer < len(layers) else "not a layer"
            listed = ", ".join(f"{i} ({type(layers[i]).__name__})" for i in explained)
            raise ConfigError(f"--layer {layer} is {kind}; explain explains the units of layers {listed}")
        if isinstance(layers[layer], Dense):
            if spatial:
                raise ConfigError(
                    f"--channel/--row/--col choose a unit of a feature map; layer {layer} is Dense: give --neuron"
                )
            return [(layer, neuron if neuron is not None else -1, None, "chosen")]
        if neuron is not None:
            raise ConfigError(
                f"--neuron picks a Dense neuron; layer {layer} is a {type(layers[layer]).__name__}: "
                "choose its unit with --channel C (and --row I --col J)"
            )
        return [(layer, -1, wanted, "chosen" if spatial else "")]
    if spatial:
        if neuron is not None:
            raise ConfigError("--neuron and --channel/--row/--col choose units of different layers: give --layer too")
        convs = conv_indices(network)
        if not convs:
            raise ConfigError("--channel/--row/--col choose a unit of a Conv2D layer; this network has none")
        return [(convs[0], -1, wanted, "chosen")]
    if neuron is not None:
        if not denses:
            raise ConfigError("--neuron picks a Dense neuron; this network has no Dense layer")
        return [(denses[-1], neuron, None, "chosen")]
    return [(i, -1, None, "") for i, item in enumerate(layers) if isinstance(item, (Dense, *BY_CHANNEL))]


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


def _followed(network: Network, values: list[Any], focus: tuple[int, int] | None, index: int) -> int | None:
    """The unit of layer ``index`` that the last explained unit (``focus``) feeds, when only
    shape-preserving layers (activations, Dropout, BatchNorm) lie between them: the same unit for a
    BatchNorm, the window holding it for a pooling layer; None when there is no such unit."""
    if focus is None:
        return None
    source, p = focus
    between = network.layers[source:index]
    shape = shape_of(values[index])
    if shape != shape_of(values[source]) or not all(isinstance(b, (BatchNorm, Dropout, Elementwise)) for b in between):
        return None
    item = network.layers[index]
    if isinstance(item, BatchNorm):
        return p
    if not isinstance(item, Pool2D) or len(shape) != 3:
        return None
    c, r, s = position(p, shape)
    (kh, kw), (sh, sw) = item.kernel_size, item.stride
    _, out_h, out_w = shape_of(values[index + 1])
    # the first window holding (r, s): i*sh <= r < i*sh + kh, and the same for the columns
    rows = [i for i in range(out_h) if i * sh <= r < i * sh + kh]
    cols = [j for j in range(out_w) if j * sw <= s < j * sw + kw]
    if not rows or not cols:
        return None  # on a row or column that no window reaches (12.2), or between windows
    return (c * out_h + rows[0]) * out_w + cols[0]


def _input_name(network: Network, index: int) -> str:
    """What layer ``index`` reads: the input, or the output of the layer before it (past any Dropout,
    the identity at inference)."""
    previous = index - 1
    while previous >= 0 and isinstance(network.layers[previous], Dropout):
        previous -= 1  # Dropout passes its input through unchanged at inference
    if previous < 0:
        return "the input"
    return f"the output of layer {previous} ({_layer_name(network.layers[previous])})"


def _after(network: Network, index: int, values: list[Any], p: int) -> tuple[str, int | None, float | None, str]:
    """The activation right after layer ``index`` (past Dropout) and its output at flat position ``p``,
    or where the output goes instead: (activation type, its index, a, then)."""
    act_index = _activation_after(network, index)
    if act_index is not None and isinstance(network.layers[act_index], Elementwise):
        return type(network.layers[act_index]).__name__, act_index, flatten(values[act_index + 1])[p], ""
    if index + 1 < len(network.layers):
        return "", None, None, f"it goes on to layer {index + 1} ({_layer_name(network.layers[index + 1])})"
    return "", None, None, ""


def _explain_conv(
    network: Network, values: list[Any], index: int, p: int, why: str, top: int, maps: int
) -> ConvUnitExplanation:
    """Unit p of Conv2D layer ``index``, read from the loops layer: its window (``fields``, from its
    forward pass) and the neuron of its output channel (eq. 12.1); with its first ``maps`` feature
    maps to draw, and its own channel's when it is not one of them."""
    conv = network.layers[index]
    assert isinstance(conv, Conv2D)
    o, i, j = position(p, shape_of(values[index + 1]))
    in_shape = shape_of(values[index])
    kh, kw = conv.kernel_size
    field = conv.fields[i * conv.out_size[1] + j]  # (k, input index) of every tap not on the padding
    pixels = flatten(values[index])
    unit = conv.neurons[o]
    terms = []
    for k, q in field:
        c, r, s = position(q, in_shape)
        _, u, v = position(k, (conv.in_channels, kh, kw))
        terms.append(WindowTerm(k, c, u, v, r, s, unit.weights[k], pixels[q], unit.weights[k] * pixels[q]))
    ranked = sorted(terms, key=lambda t: (-abs(t.product), t.tap))
    shown, rest = ranked[:top], ranked[top:]
    z = unit.forward([(k, pixels[q]) for k, q in field if pixels[q] != 0.0])  # as Conv2D.forward does it
    activation, act_index, a, then = _after(network, index, values, p)
    feature = _maps_of(network, values, index)
    drawn = list(range(min(maps, len(feature.maps))))
    if maps and o not in drawn:
        drawn.append(o)
    return ConvUnitExplanation(
        layer=index,
        unit=(o, i, j),
        why=why,
        input_name=_input_name(network, index),
        input_shape=in_shape,
        kernel_size=conv.kernel_size,
        stride=conv.stride,
        padding=conv.padding,
        terms=shown,
        rest_count=len(rest),
        rest_sum=math.fsum(t.product for t in rest),
        zero_inputs=sum(1 for t in terms if t.input == 0.0),
        padded=conv.in_channels * kh * kw - len(field),
        weighted_sum=math.fsum(t.product for t in terms),
        bias=unit.bias,
        z=z,
        activation=activation,
        activation_layer=act_index,
        a=a,
        then=then,
        maps=feature,
        drawn=drawn,
    )


def _explain_pool(network: Network, values: list[Any], index: int, p: int, why: str) -> PoolUnitExplanation:
    """Unit p of a pooling layer, read from the loops layer: its window (``fields``) and, for
    MaxPool2D, the input its forward pass chose (``argmax``, eq. 13.1, 13.2)."""
    pool = network.layers[index]
    assert isinstance(pool, (MaxPool2D, AvgPool2D))
    c, i, j = position(p, shape_of(values[index + 1]))
    _, _, width = shape_of(values[index])
    window_index = i * pool.out_size[1] + j
    field = pool.fields[window_index]  # r * W + s of each input of the window, in one channel
    plane = flatten(values[index][c])
    rows = (field[0] // width, field[-1] // width)
    cols = (field[0] % width, field[-1] % width)
    window = [[plane[r * width + s] for s in range(cols[0], cols[1] + 1)] for r in range(rows[0], rows[1] + 1)]
    chosen = divmod(pool.argmax[0][c][window_index], width) if isinstance(pool, MaxPool2D) else None
    return PoolUnitExplanation(
        layer=index,
        kind=type(pool).__name__,
        unit=(c, i, j),
        why=why,
        input_name=_input_name(network, index),
        kernel_size=pool.kernel_size,
        stride=pool.stride,
        rows=rows,
        cols=cols,
        window=window,
        chosen=chosen,
        total=math.fsum(plane[q] for q in field),
        a=flatten(values[index + 1])[p],
    )


def _explain_norm(network: Network, values: list[Any], index: int, p: int, why: str) -> NormUnitExplanation:
    """Unit p of a BatchNorm layer at inference, read from the loops layer: its channel's running
    statistics, gamma, beta, eps and the x_hat its forward pass computed (eq. 15.3, 15.4, 15.6)."""
    norm = network.layers[index]
    assert isinstance(norm, BatchNorm)
    shape = shape_of(values[index])
    unit = position(p, shape)
    c = unit[0]
    within = p - c * math.prod(shape[1:])  # the unit's index in its channel's plane
    activation, act_index, a, then = _after(network, index, values, p)
    return NormUnitExplanation(
        layer=index,
        unit=unit,
        why=why,
        input_name=_input_name(network, index),
        x=flatten(values[index])[p],
        mean=norm.running_mean[c],
        var=norm.running_var[c],
        eps=norm.eps,
        x_hat=norm.x_hat[c][0][within],
        gamma=norm.weight[c],
        beta=norm.bias[c],
        y=flatten(values[index + 1])[p],
        activation=activation,
        activation_layer=act_index,
        a=a,
        then=then,
    )


def _activation_after(network: Network, index: int) -> int | None:
    """The index of the activation layer that follows layer ``index`` (Dropout, the identity at
    inference, is skipped); None when the next layer is another kind or there is none."""
    for later in range(index + 1, len(network.layers)):
        item = network.layers[later]
        if isinstance(item, Dropout):
            continue
        if isinstance(item, (Elementwise, Softmax)):
            return later
        return None
    return None


def _pair(value: tuple[int, int]) -> str:
    return f"{value[0]}x{value[1]}"


def _layer_name(item: object) -> str:
    if isinstance(item, Dense):
        return f"Dense({item.in_features}, {item.out_features})"
    if isinstance(item, Dropout):
        return f"Dropout({item.rate:g})"
    if isinstance(item, Conv2D):
        extra = "".join(
            f", {name} {_pair(value)}"
            for name, value, plain in (("stride", item.stride, (1, 1)), ("padding", item.padding, (0, 0)))
            if value != plain
        )
        return f"Conv2D({item.in_channels} -> {item.out_channels}, {_pair(item.kernel_size)}{extra})"
    if isinstance(item, Pool2D):
        stride = f", stride {_pair(item.stride)}" if item.stride != item.kernel_size else ""
        return f"{type(item).__name__}({_pair(item.kernel_size)}{stride})"
    if isinstance(item, BatchNorm):
        return f"BatchNorm({item.num_features})"
    return type(item).__name__


@dataclass(frozen=True)
class _Site:
    """A neuron being explained, in the forward pass it takes part in."""

    network: Network
    values: list[Any]  # values[l]: the input of layer l; values[-1]: the network's outputs
    denses: list[int]  # the indices of the Dense layers
    index: int  # the neuron's Dense layer
    j: int  # the neuron in that layer
    act_index: int | None  # the activation layer after it; None when there is none
    a_values: list[float]  # that activation's outputs (the Dense layer's own when there is none)

    @property
    def dense(self) -> Dense:
        dense = self.network.layers[self.index]
        assert isinstance(dense, Dense)
        return dense

    @property
    def unit(self) -> Neuron:
        return self.dense.neurons[self.j]

    @property
    def is_output(self) -> bool:
        return self.index == self.denses[-1]


def _explain_neuron(site: _Site, why: str, label: int | None, top: int, top_gradients: int) -> NeuronExplanation:
    network, index, j, act_index = site.network, site.index, site.j, site.act_index
    dense, unit = site.dense, site.unit
    x = site.values[index]  # the input of this Dense layer
    products = [Term(i, w, xi, w * xi) for i, (w, xi) in enumerate(zip(unit.weights, x))]
    ranked = sorted(products, key=lambda t: (-abs(t.product), t.index))
    shown, rest = ranked[:top], ranked[top:]
    weighted_sum = math.fsum(t.product for t in products)
    z = unit.forward(nonzero(x))  # eq. 2.1, the loops code
    activation = type(network.layers[act_index]).__name__ if act_index is not None else "Identity"
    previous = index - 1
    while previous >= 0 and isinstance(network.layers[previous], Dropout):
        previous -= 1  # Dropout passes its input through unchanged at inference
    if previous < 0:
        input_name = "the input"
    else:
        input_name = f"the output a of layer {previous} ({_layer_name(network.layers[previous])})"
    pixels = index == 0 and dense.in_features == 784
    grid: tuple[int, ...] = (28, 28) if pixels else ()
    if previous >= 0 and isinstance(network.layers[previous], Flatten):
        grid = shape_of(site.values[previous])  # name each input by its place in the feature maps (14.1)
    then = ""
    if act_index is None and index + 1 < len(network.layers) and not isinstance(network.layers[index + 1], Dense):
        then = f"it goes on to layer {index + 1} ({_layer_name(network.layers[index + 1])})"
    backprop = None if label is None else _backprop(site, label, top_gradients)
    return NeuronExplanation(
        layer=index,
        neuron=j,
        why=why,
        output=site.is_output,
        in_features=dense.in_features,
        input_name=input_name,
        pixels=pixels,
        terms=shown,
        rest_count=len(rest),
        rest_sum=math.fsum(t.product for t in rest),
        zero_inputs=sum(1 for xi in x if xi == 0.0),
        weighted_sum=weighted_sum,
        bias=unit.bias,
        z=z,
        activation=activation,
        activation_layer=act_index,
        a=site.a_values[j],
        backprop=backprop,
        grid=grid,
        then=then,
    )


def _backprop(site: _Site, label: int, top_gradients: int) -> Backprop:
    """Read this neuron's gradients from the loops backward pass and show where its delta came from."""
    network, values, index, j, a_values = site.network, site.values, site.index, site.j, site.a_values
    unit = site.unit
    delta = unit.grad_bias  # one sample, no penalty on biases: dL/db = delta (eq. 2.2, 3.3)
    how: list[tuple[str, str, float]] = []
    is_output = site.is_output
    loss = network.loss_function
    classes = len(values[-1])
    target = (1.0 if label == j else 0.0) if classes > 1 else float(label)
    activation = network.layers[site.act_index] if site.act_index is not None else None
    z = values[index + 1][j]
    if is_output and isinstance(loss, CrossEntropy):
        how.append(
            (
                "5.3",
                f"CrossEntropy.gradient: delta = dL/dz[{j}] = p[{j}] - t[{j}] = {num(a_values[j])} - {target:g}",
                delta,
            )
        )
    elif is_output and isinstance(loss, BinaryCrossEntropy):
        how.append(
            (
                "5.6",
                "BinaryCrossEntropy.gradient: delta = (sigmoid(z) - t) / K = "
                f"({num(a_values[j])} - {target:g}) / {classes}",
                delta,
            )
        )
    else:
        if is_output and isinstance(loss, MeanSquaredError):
            upstream = 2.0 * (a_values[j] - target) / classes
            how.append(
                (
                    "5.4",
                    "MeanSquaredError.gradient: dL/da = 2 (a - t) / K = "
                    f"2 ({num(a_values[j])} - {target:g}) / {classes}",
                    upstream,
                )
            )
        else:
            after = site.denses[site.denses.index(index) + 1]
            following = network.layers[after]
            assert isinstance(following, Dense)
            between = [later for later in range(index + 1, after) if later != site.act_index]
            if any(not isinstance(network.layers[later], Dropout) for later in between):
                # e.g. a BatchNorm between the two Dense layers: its own backward rule takes part
                names = ", ".join(
                    f"{later} ({_layer_name(network.layers[later])})" for later in range(index + 1, after)
                )
                how.append(("6.2", f"Network.backward from layer {after} through layers {names}: delta = dL/dz", delta))
                return _gradients(site, delta, how, top_gradients)
            upstream = math.fsum(n.grad_bias * n.weights[j] for n in following.neurons)
            how.append(
                (
                    "3.4",
                    f"Dense.backward of layer {after}: dL/da[{j}] = sum_k delta[k] * W[k][{j}] over its "
                    f"{following.out_features} neurons",
                    upstream,
                )
            )
        if isinstance(activation, Elementwise):
            slope = activation.derivative(z, a_values[j])
            equation, _, rule = ACTIVATIONS.get(type(activation).__name__, ("4", "", "f'(z)"))
            how.append((equation, f"{type(activation).__name__}.derivative ({rule}) at z = {num(z)}: f'(z)", slope))
            how.append(("4", "Elementwise.backward: delta = dL/dz = dL/da * f'(z)", delta))
        elif isinstance(activation, Softmax):
            how.append(("4.7", "Softmax.backward: delta = p[j] (g[j] - sum_k g[k] p[k])", delta))
        else:
            how.append(("4.5", "no activation: delta = dL/dz = dL/da", delta))
    return _gradients(site, delta, how, top_gradients)


def _gradients(site: _Site, delta: float, how: list[tuple[str, str, float]], top_gradients: int) -> Backprop:
    """The neuron's weight and bias gradients, read from the loops backward pass (eq. 2.2)."""
    network, unit = site.network, site.unit
    x = site.values[site.index]
    gradients = [WeightGradient(i, xi, w, g) for i, (xi, w, g) in enumerate(zip(x, unit.weights, unit.grad_weights))]
    largest = sorted(gradients, key=lambda item: (-abs(item.gradient), item.index))[:top_gradients]
    return Backprop(
        delta=delta,
        how=how,
        largest=largest,
        zero_inputs=sum(1 for xi in x if xi == 0.0),
        grad_bias=unit.grad_bias,
        penalties=" + ".join(
            term for term, on in (("l2 * w[i]", network.l2 != 0.0), ("l1 * sign(w[i])", network.l1 != 0.0)) if on
        ),
    )
