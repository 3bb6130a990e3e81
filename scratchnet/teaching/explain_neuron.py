"""One neuron of a Dense layer explained: its weighted sum term by term (eq. 2.1), its activation and,
with a label, how the loss reaches it and its gradients (eq. 2.2), read from the loops backward pass.
:mod:`scratchnet.teaching.layer_explainers` registers it. Standard library only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from scratchnet.loops.losses import BinaryCrossEntropy, CrossEntropy, MeanSquaredError, smoothed_targets
from scratchnet.loops.neuron import Neuron, nonzero
from scratchnet.loops.tensor import shape_of
from scratchnet.teaching.explain_text import num
from scratchnet.teaching.explainers import NEURON
from scratchnet.teaching.explanation import Backprop, NeuronExplanation, Term, WeightGradient
from scratchnet.teaching.forward_pass import NO_ACTIVATION, ForwardPass

Step = tuple[str, str, float]  # (equation, text, value) of one step from the loss to a neuron's delta


@dataclass(frozen=True)
class _Site:
    """A neuron being explained, in the forward pass it takes part in."""

    fp: ForwardPass
    index: int  # the neuron's Dense layer
    j: int  # the neuron in that layer
    act_index: int | None  # the activation layer after it; None when there is none
    a_values: list[float]  # that activation's outputs (the Dense layer's own when there is none)

    @property
    def dense(self) -> Any:
        return self.fp.layer(self.index)

    @property
    def unit(self) -> Neuron:
        neuron: Neuron = self.dense.neurons[self.j]
        return neuron

    @property
    def is_output(self) -> bool:
        return self.index == self.fp.neuron_layers()[-1]


def activated(fp: ForwardPass, index: int) -> tuple[int | None, list[float]]:
    """The activation layer after neuron layer ``index`` (None when there is none) and the outputs
    the neurons are judged by: that activation's, else the layer's own."""
    act_index = fp.activation_after(index)
    return act_index, fp.values[act_index + 1] if act_index is not None else fp.values[index + 1]


def explain_neuron(fp: ForwardPass, index: int, j: int, why: str) -> NeuronExplanation:
    """Neuron j of Dense layer ``index``: its inputs' products, largest first, z and its activation."""
    act_index, a_values = activated(fp, index)
    site = _Site(fp, index, j, act_index, a_values)
    dense, unit = site.dense, site.unit
    x = fp.values[index]  # the input of this Dense layer
    products = [Term(i, w, xi, w * xi) for i, (w, xi) in enumerate(zip(unit.weights, x))]
    ranked = sorted(products, key=lambda t: (-abs(t.product), t.index))
    shown, rest = ranked[: fp.top], ranked[fp.top :]
    z = unit.forward(nonzero(x))  # eq. 2.1, the loops code
    previous = fp.previous(index)
    grid: tuple[int, ...] = fp.image_grid if index == 0 else ()
    before = shape_of(fp.values[previous]) if previous >= 0 else ()
    if len(before) > 1 and math.prod(before) == len(x):  # the layer before flattened its input (14.1):
        grid = before  # name each input by its place in the feature maps
    then = ""
    if act_index is None and index + 1 < len(fp.sites) and fp.explainer(index + 1).units != NEURON:
        then = fp.goes_on(index)
    return NeuronExplanation(
        layer=index,
        neuron=j,
        why=why,
        output=site.is_output,
        in_features=dense.in_features,
        input_name=fp.input_name(index, "the output a"),
        pixels=index == 0 and len(grid) == 2,
        terms=shown,
        rest_count=len(rest),
        rest_sum=math.fsum(t.product for t in rest),
        zero_inputs=sum(1 for xi in x if xi == 0.0),
        weighted_sum=math.fsum(t.product for t in products),
        bias=unit.bias,
        z=z,
        activation=fp.kind(act_index) if act_index is not None else NO_ACTIVATION,
        activation_layer=act_index,
        a=a_values[j],
        backprop=None if fp.label is None else _backprop(site, fp.label),
        grid=grid,
        then=then,
    )


def _backprop(site: _Site, label: int) -> Backprop:
    """Read this neuron's gradients from the loops backward pass and show where its delta came from."""
    fp, index, j, a_values = site.fp, site.index, site.j, site.a_values
    delta = site.unit.grad_bias  # one sample, no penalty on biases: dL/db = delta (eq. 2.2, 3.3)
    loss = fp.network.loss_function
    classes = len(fp.values[-1])
    target = (1.0 if label == j else 0.0) if classes > 1 else float(label)
    if site.is_output and isinstance(loss, CrossEntropy) and loss.label_smoothing:  # q of eq. 5.7
        q = smoothed_targets(label, classes, loss.label_smoothing)[j]
        text = f"CrossEntropy.gradient: delta = dL/dz[{j}] = p[{j}] - q[{j}] = {num(a_values[j])} - {q:g}"
        return _gradients(site, delta, [("5.8", text, delta)])
    if site.is_output and isinstance(loss, CrossEntropy):
        text = f"CrossEntropy.gradient: delta = dL/dz[{j}] = p[{j}] - t[{j}] = {num(a_values[j])} - {target:g}"
        return _gradients(site, delta, [("5.3", text, delta)])
    if site.is_output and isinstance(loss, BinaryCrossEntropy):
        text = (
            f"BinaryCrossEntropy.gradient: delta = (sigmoid(z) - t) / K = ({num(a_values[j])} - {target:g}) / {classes}"
        )
        return _gradients(site, delta, [("5.6", text, delta)])
    how: list[Step] = []
    if site.is_output and isinstance(loss, MeanSquaredError):
        upstream = 2.0 * (a_values[j] - target) / classes
        text = f"MeanSquaredError.gradient: dL/da = 2 (a - t) / K = 2 ({num(a_values[j])} - {target:g}) / {classes}"
        how.append(("5.4", text, upstream))
    else:
        neurons = fp.neuron_layers()
        after = neurons[neurons.index(index) + 1]
        between = [later for later in range(index + 1, after) if later != site.act_index]
        if any(not fp.explainer(later).passes_through for later in between):
            # e.g. a BatchNorm between the two Dense layers: its own backward rule takes part
            names = ", ".join(f"{later} ({fp.names[later]})" for later in range(index + 1, after))
            how.append(("6.2", f"Network.backward from layer {after} through layers {names}: delta = dL/dz", delta))
            return _gradients(site, delta, how)
        following = fp.layer(after)
        upstream = math.fsum(n.grad_bias * n.weights[j] for n in following.neurons)
        text = (
            f"Dense.backward of layer {after}: dL/da[{j}] = sum_k delta[k] * W[k][{j}] over its "
            f"{following.out_features} neurons"
        )
        how.append(("3.4", text, upstream))
    how.extend(_through_activation(site, delta))
    return _gradients(site, delta, how)


def _through_activation(site: _Site, delta: float) -> list[Step]:
    """The steps from dL/da back to delta = dL/dz through the activation after the neuron (eq. 4)."""
    if site.act_index is None:
        return [("4.5", "no activation: delta = dL/dz = dL/da", delta)]
    kind = site.fp.kind(site.act_index)
    activation = site.fp.explainer(site.act_index).activation
    assert activation is not None  # activation_after finds activations only
    if not activation.elementwise:
        equation, text = activation.backward
        return [(equation, text, delta)]
    z = site.fp.values[site.index + 1][site.j]
    slope = site.fp.layer(site.act_index).derivative(z, site.a_values[site.j])
    return [
        (activation.equation, f"{kind}.derivative ({activation.derivative}) at z = {num(z)}: f'(z)", slope),
        ("4", "Elementwise.backward: delta = dL/dz = dL/da * f'(z)", delta),
    ]


def _gradients(site: _Site, delta: float, how: list[Step]) -> Backprop:
    """The neuron's weight and bias gradients, read from the loops backward pass (eq. 2.2)."""
    network, unit = site.fp.network, site.unit
    x = site.fp.values[site.index]
    gradients = [WeightGradient(i, xi, w, g) for i, (xi, w, g) in enumerate(zip(x, unit.weights, unit.grad_weights))]
    largest = sorted(gradients, key=lambda item: (-abs(item.gradient), item.index))[: site.fp.top_gradients]
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
