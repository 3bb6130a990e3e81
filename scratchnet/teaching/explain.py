"""Explain one prediction neuron by neuron, with the numbers of the loops backend.

:func:`explain` runs one input through a loops ``Network`` and returns an :class:`Explanation`: every
layer's output, and for chosen neurons their weighted sum term by term, the bias, z, the activation,
and the gradient of the loss for the neuron's weights and bias. :func:`format_explanation` turns it
into text. Each step names its equation in ``spec/math.md`` and the loops function that computes it.

Standard library only (the loops backend does not need NumPy).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from scratchnet.core.errors import ConfigError, LabelError, ShapeError
from scratchnet.loops.activations import Elementwise, Softmax, log_sum_exp
from scratchnet.loops.layers import Dense, Dropout
from scratchnet.loops.losses import BinaryCrossEntropy, CrossEntropy, MeanSquaredError
from scratchnet.loops.network import Network
from scratchnet.loops.neuron import Neuron, nonzero

# Each activation type: (equation of f, the loops function computing it, equation of f', its function).
ACTIVATIONS: dict[str, tuple[str, str, str]] = {
    "ReLU": ("4.1", "a = max(0, z)", "f'(z) = 1 if z > 0 else 0"),
    "LeakyReLU": ("4.2", "a = z if z > 0 else alpha * z", "f'(z) = 1 if z > 0 else alpha"),
    "Sigmoid": ("4.3", "a = 1 / (1 + e^-z)", "f'(z) = a (1 - a)"),
    "Tanh": ("4.4", "a = tanh z", "f'(z) = 1 - a^2"),
    "Identity": ("4.5", "a = z", "f'(z) = 1"),
    "Softmax": ("4.6", "p[j] = e^(z[j] - m) / sum_k e^(z[k] - m), m = max_k z[k]", ""),
}
LOSSES: dict[str, tuple[str, str, str]] = {  # loss type: (equation, value function, gradient equation)
    "CrossEntropy": ("5.2", "CrossEntropy.value, log_sum_exp", "5.3"),
    "MeanSquaredError": ("5.4", "MeanSquaredError.value", "5.4"),
    "BinaryCrossEntropy": ("5.5", "BinaryCrossEntropy.value", "5.6"),
}


@dataclass(frozen=True)
class Term:
    """One term w[i] * x[i] of a weighted sum (eq. 2.1)."""

    index: int
    weight: float
    input: float
    product: float


@dataclass(frozen=True)
class WeightGradient:
    """dL/dw[i] for one weight (eq. 2.2, plus the penalties 7.1/7.2 when the model has them)."""

    index: int
    input: float
    weight: float
    gradient: float


@dataclass(frozen=True)
class LayerOutput:
    """One layer of the forward pass (eq. 6): its index, a short name and its outputs for this input."""

    index: int
    name: str
    kind: str
    outputs: list[float]


@dataclass(frozen=True)
class Backprop:
    """How the loss reaches one neuron: delta = dL/dz and the gradients of its parameters."""

    delta: float  # dL/dz for this neuron (eq. 2.2): equal to dL/db
    how: list[tuple[str, str, float]]  # (equation, text, value) steps from the loss to delta
    largest: list[WeightGradient]  # the weights with the largest |dL/dw|
    zero_inputs: int  # weights whose input is 0: dL/dw = delta * 0 = 0 (without penalties)
    grad_bias: float
    penalties: str  # the l2/l1 terms that are part of dL/dw (eq. 7.1, 7.2), "" without penalties


@dataclass(frozen=True)
class NeuronExplanation:
    """One neuron's forward computation (eq. 2.1 and its activation) and, with a label, its gradients."""

    layer: int  # index of its Dense layer in network.layers
    neuron: int
    why: str  # why this neuron was chosen
    output: bool  # whether it is a neuron of the last Dense layer (one per class)
    in_features: int
    input_name: str  # what its inputs are: "pixel" or "a of layer 1 (ReLU)"
    pixels: bool  # inputs are the 28x28 pixels (so an index is a (row, column))
    terms: list[Term]  # the largest |w[i] * x[i]|, largest first
    rest_count: int
    rest_sum: float
    zero_inputs: int
    weighted_sum: float  # sum over all i of w[i] * x[i]
    bias: float
    z: float  # Neuron.forward
    activation: str  # activation layer type after the Dense layer ("Identity" when none)
    activation_layer: int | None
    a: float  # the activation's output for this neuron (p[j] after a Softmax)
    backprop: Backprop | None


@dataclass(frozen=True)
class Explanation:
    """Everything :func:`format_explanation` prints about one input."""

    source: str
    label: int | None
    class_names: tuple[str, ...]
    layers: list[LayerOutput]
    neurons: list[NeuronExplanation]
    logits: list[float]  # the input of the final Softmax/Sigmoid (the z of the output layer)
    outputs: list[float]  # the network's output: probabilities after a Softmax
    output_kind: str
    predicted: int
    loss_kind: str
    loss: float | None  # the data loss for the label (eq. 5.x), without penalties
    penalty: float  # l2/l1 penalty (eq. 7.1, 7.2), added to the loss in training
    log_sum_exp: float | None  # logsumexp(z) for cross-entropy (eq. 5.2)


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
# after it, and Dropout (the identity at inference). Other types are refused by name.
EXPLAINED = ("Dense", "Dropout", *ACTIVATIONS)


def check_explainable(network: Network) -> None:
    """ConfigError naming the first layer whose type explain cannot explain (yet)."""
    for index, item in enumerate(network.layers):
        kind = item.describe()["type"]
        if kind not in EXPLAINED:
            raise ConfigError(f"explain cannot explain layer {index} ({kind}); it explains {', '.join(EXPLAINED)}")


def dense_indices(network: Network) -> list[int]:
    """Indices in ``network.layers`` of the Dense layers (as in parameter names ``0.weight``)."""
    return [i for i, layer in enumerate(network.layers) if isinstance(layer, Dense)]


def explain(
    network: Network,
    inputs: Sequence[float],
    label: int | None = None,
    *,
    layer: int | None = None,
    neuron: int | None = None,
    top: int = 8,
    top_gradients: int = 5,
    class_names: Sequence[str] | None = None,
    source: str = "input",
) -> Explanation:
    """Run ``inputs`` (one sample) through the loops ``network`` and explain it.

    Explained neurons: with ``layer`` (an index of a Dense layer in ``network.layers``), just
    ``neuron`` of that layer (default: as below); otherwise the most active neuron (largest
    activation) of each hidden Dense layer and the winning neuron of the output layer. ``neuron``
    alone picks a neuron of the output layer. With a ``label``, the loss and the gradients are included.
    """
    check_explainable(network)
    denses = dense_indices(network)
    if not denses:
        raise ConfigError("explain needs a network with at least one Dense layer")
    if top < 1 or top_gradients < 1:
        raise ConfigError("explain: --top and the number of gradients shown must be at least 1")
    x = [float(v) for v in inputs]
    first = network.layers[denses[0]]
    assert isinstance(first, Dense)
    if len(x) != first.in_features:
        raise ShapeError(f"explain: the input has {len(x)} values, the network expects {first.in_features}")

    # Forward, layer by layer, as Network.forward does it (eq. 6): a^l = layer_l(a^(l-1)).
    values = [x]
    for item in network.layers:
        values.append(item.forward([values[-1]], False)[0])
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

    chosen: list[tuple[int, int, str]] = []
    if layer is not None:
        if layer not in denses:
            raise ConfigError(
                f"--layer {layer} is not a Dense layer; the Dense layers are {', '.join(map(str, denses))} "
                f"(indices in the network's layer list, as in the parameter names {denses[0]}.weight)"
            )
        chosen.append((layer, neuron if neuron is not None else -1, "chosen"))
    elif neuron is not None:
        chosen.append((denses[-1], neuron, "chosen"))
    else:
        chosen = [(index, -1, "") for index in denses]

    neurons = []
    for index, j, why in chosen:
        dense = network.layers[index]
        assert isinstance(dense, Dense)
        act_index = _activation_after(network, index)
        a_values = values[act_index + 1] if act_index is not None else values[index + 1]
        if j == -1:
            if index == denses[-1]:
                j, why = predicted if len(a_values) > 1 else 0, "the winning output neuron"
            else:
                j = max(range(len(a_values)), key=a_values.__getitem__)
                why = "the most active neuron of this layer"
        if not 0 <= j < dense.out_features:
            raise ConfigError(f"--neuron {j}: layer {index} has neurons 0..{dense.out_features - 1}")
        site = _Site(network, values, denses, index, j, act_index, a_values)
        neurons.append(_explain_neuron(site, why, label, top, top_gradients))

    layers = [
        LayerOutput(i, _layer_name(item), type(item).__name__, values[i + 1]) for i, item in enumerate(network.layers)
    ]
    return Explanation(
        source=source,
        label=label,
        class_names=names,
        layers=layers,
        neurons=neurons,
        logits=list(logits),
        outputs=list(outputs),
        output_kind=type(network.layers[-1]).__name__,
        predicted=predicted,
        loss_kind=loss_kind,
        loss=loss,
        penalty=network.penalty() if label is not None else 0.0,
        log_sum_exp=lse,
    )


def _activation_after(network: Network, index: int) -> int | None:
    """The index of the activation layer that follows Dense ``index`` (Dropout, the identity at
    inference, is skipped); None when the next layer is another Dense or there is none."""
    for later in range(index + 1, len(network.layers)):
        item = network.layers[later]
        if isinstance(item, Dropout):
            continue
        if isinstance(item, (Elementwise, Softmax)):
            return later
        return None
    return None


def _layer_name(item: object) -> str:
    if isinstance(item, Dense):
        return f"Dense({item.in_features}, {item.out_features})"
    if isinstance(item, Dropout):
        return f"Dropout({item.rate:g})"
    return type(item).__name__


@dataclass(frozen=True)
class _Site:
    """A neuron being explained, in the forward pass it takes part in."""

    network: Network
    values: list[list[float]]  # values[l]: the input of layer l; values[-1]: the network's outputs
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
    backprop = None if label is None else _backprop(site, label, top_gradients)
    return NeuronExplanation(
        layer=index,
        neuron=j,
        why=why,
        output=site.is_output,
        in_features=dense.in_features,
        input_name=input_name,
        pixels=index == 0 and dense.in_features == 784,
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
    x = values[index]
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


# ---- text ----


def num(value: float) -> str:
    """A number as printed by explain: 6 significant digits."""
    return f"{value:.6g}"


def _paren(value: float, digits: int = 6) -> str:
    """A number to subtract: negative ones in parentheses."""
    return f"({_digits(value, digits)})" if value < 0 else _digits(value, digits)


def _digits(value: float, digits: int) -> str:
    return f"{value:.{digits}g}"


def _digits_to_show(a: float, b: float) -> int:
    """Significant digits that make a - b visible in the printed a and b (6 at least, 17 at most)."""
    difference = abs(a - b)
    if difference == 0.0 or not math.isfinite(difference):
        return 6
    ratio = max(abs(a), abs(b)) / difference
    return min(17, 6 + max(0, math.ceil(math.log10(ratio))))


def _index_name(i: int, pixels: bool) -> str:
    return f"{i:>4} (row {i // 28:>2}, col {i % 28:>2})" if pixels else f"{i:>4}"


def format_explanation(ex: Explanation) -> str:
    """The explanation as text, one step per line, each naming its equation in spec/math.md."""
    out: list[str] = []
    label_text = f"label {ex.label} ({ex.class_names[ex.label]!r})" if ex.label is not None else "no label"
    out.append(f"Explaining {ex.source}, {label_text}. Equation numbers (n.k) refer to spec/math.md.")
    out.append("")
    out.append("Forward pass, layer by layer (6) Network.forward:")
    for item in ex.layers:
        out.append(f"  layer {item.index:<2} {item.name:<18} {_summary(item)}")
    for n in ex.neurons:
        out.append("")
        out.extend(_format_neuron(ex, n))
    out.append("")
    out.extend(_format_outputs(ex))
    return "\n".join(out)


def _summary(item: LayerOutput) -> str:
    v = item.outputs
    best = max(range(len(v)), key=v.__getitem__)
    if item.kind == "Dense":
        return f"(3.1) Dense.forward: z has {len(v)} values, from {num(min(v))} to {num(max(v))}"
    if item.kind == "Softmax":
        return f"(4.6) softmax: p sums to {num(math.fsum(v))}, largest p[{best}] = {num(v[best])}"
    if item.kind == "Dropout":
        return "(7.3) Dropout.forward: the identity at inference"
    equation = ACTIVATIONS.get(item.kind, ("4", "", ""))[0]
    positive = sum(1 for value in v if value > 0.0)
    return f"({equation}) {item.kind}.f: {positive} of {len(v)} > 0, largest a[{best}] = {num(v[best])}"


def _format_neuron(ex: Explanation, n: NeuronExplanation) -> list[str]:
    out = []
    who = f" (class {ex.class_names[n.neuron]!r})" if n.output and len(ex.class_names) > 1 else ""
    out.append(f"Layer {n.layer} ({ex.layers[n.layer].name}), neuron {n.neuron}{who}: {n.why}")
    out.append(
        f"  (2.1) Neuron.forward: z = sum_i w[i] * x[i] + b over its {n.in_features} inputs x = {n.input_name}"
        + (f"; {n.zero_inputs} of them are 0 and add nothing" if n.zero_inputs else "")
    )
    width = 26 if n.pixels else 6
    out.append(f"    {'i':>{width}} {'w[i]':>13} {'x[i]':>13} {'w[i] * x[i]':>13}")
    for t in n.terms:
        out.append(
            f"    {_index_name(t.index, n.pixels):>{width}} {num(t.weight):>13} {num(t.input):>13} {num(t.product):>13}"
        )
    if n.rest_count:
        out.append(f"    {'+ the other ' + str(n.rest_count) + ' terms':<{width + 28}} {num(n.rest_sum):>13}")
    out.append(f"    {'= sum_i w[i] * x[i]':<{width + 28}} {num(n.weighted_sum):>13}")
    out.append(f"    {'+ b (bias)':<{width + 28}} {num(n.bias):>13}")
    out.append(f"    {'= z':<{width + 28}} {num(n.z):>13}")
    equation, rule, _ = ACTIVATIONS.get(n.activation, ("4", "a = f(z)", ""))
    if n.activation == "Softmax":
        out.append(f"  ({equation}) softmax: {rule}: p[{n.neuron}] = {num(n.a)} (all outputs below)")
    else:
        out.append(f"  ({equation}) {n.activation}.f: {rule}: a = {num(n.a)}")
    b = n.backprop
    if b is None:
        out.append("  (no label, so no loss and no gradients)")
        return out
    out.append("  Backpropagation (6.2) Network.backward, for this neuron:")
    for step_equation, text, value in b.how:
        out.append(f"    ({step_equation}) {text} = {num(value)}")
    out.append(f"    (2.2) Neuron.backward: dL/db = delta = {num(b.grad_bias)}")
    extra = f" + {b.penalties} (7.1, 7.2) Network.backward" if b.penalties else ""
    out.append(f"    (2.2) Neuron.backward: dL/dw[i] = delta * x[i]{extra}; the largest:")
    out.append(f"    {'i':>{width}} {'x[i]':>13} {'dL/dw[i]':>13}")
    for g in b.largest:
        out.append(f"    {_index_name(g.index, n.pixels):>{width}} {num(g.input):>13} {num(g.gradient):>13}")
    if b.zero_inputs and not b.penalties:
        out.append(f"    ({b.zero_inputs} weights see x[i] = 0: their gradient is 0, this input does not change them)")
    return out


def _format_outputs(ex: Explanation) -> list[str]:
    out = []
    if ex.output_kind == "Softmax":
        out.append("Softmax outputs (4.6) softmax, p[k] = e^(z[k] - m) / sum_j e^(z[j] - m):")
    else:
        out.append(f"Outputs ({ACTIVATIONS.get(ex.output_kind, ('4', '', ''))[0]}) {ex.output_kind}:")
    for k, (z, p) in enumerate(zip(ex.logits, ex.outputs)):
        marks = []
        if k == ex.predicted:
            marks.append("predicted")
        if k == ex.label:
            marks.append("true label")
        name = ex.class_names[k] if k < len(ex.class_names) else str(k)
        bar = "#" * round(20 * p) if 0.0 <= p <= 1.0 else ""
        out.append(f"  {k:>3} {name!r:<14} z = {num(z):>12}   p = {num(p):<12} {bar:<20} {' '.join(marks)}".rstrip())
    verdict = ""
    if ex.label is not None:
        verdict = " (correct)" if ex.predicted == ex.label else f" (wrong: the label is {ex.label})"
    out.append(f"Prediction: {ex.predicted} ({ex.class_names[ex.predicted]!r}){verdict}")
    if ex.loss is None:
        return out
    equation, function, _ = LOSSES.get(ex.loss_kind, ("5", ex.loss_kind, ""))
    y = ex.label
    assert y is not None
    if ex.log_sum_exp is not None:
        digits = _digits_to_show(ex.log_sum_exp, ex.logits[y])
        out.append(
            f"Loss for the true label ({equation}) {function}: L = logsumexp(z) - z[{y}] = "
            f"{_digits(ex.log_sum_exp, digits)} - {_paren(ex.logits[y], digits)} = {num(ex.loss)}  (= -log p[{y}])"
        )
    else:
        out.append(f"Loss for the true label ({equation}) {function}: L = {num(ex.loss)}")
    if ex.penalty:
        out.append(f"  plus the weight penalty (7.1, 7.2) Network.penalty: {num(ex.penalty)} (in training)")
    return out
