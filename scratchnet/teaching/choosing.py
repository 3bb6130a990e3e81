"""Which neurons and units :func:`scratchnet.teaching.explain.explain` explains, and why: those asked
for, the most active ones, or the unit that the unit explained before feeds; then each explained by
its layer type's explainer. Standard library only.
"""

from __future__ import annotations

import math

from scratchnet.core.errors import ConfigError
from scratchnet.loops.tensor import flatten, shape_of
from scratchnet.teaching.explain_neuron import activated
from scratchnet.teaching.explainers import NEURON, Explainer
from scratchnet.teaching.explanation import NeuronExplanation, UnitExplanation, position
from scratchnet.teaching.forward_pass import ForwardPass, layers_where, maps_layers

Wanted = tuple[int | None, int | None, int | None]
"""The (channel, row, column) asked for; None where any will do."""


def explain_chosen(
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


def choose(
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
