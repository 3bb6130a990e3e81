"""An :class:`~scratchnet.teaching.explanation.Explanation` as text: each layer's output, each chosen
neuron's or unit's weighted sum term by term, the backward pass, the outputs and the loss, each step
naming its equation and function; feature maps drawn in shaded blocks.

Standard library only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from scratchnet.teaching.explainers import activation_of, explainer_of
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


def _index_name(i: int, grid: tuple[int, ...]) -> str:
    """Input i of a Dense neuron, with its place in the image or the feature maps it was flattened from."""
    if len(grid) == 2:
        return f"{i:>4} (row {i // grid[1]:>2}, col {i % grid[1]:>2})"
    if len(grid) == 3:
        c, r, s = position(i, grid)
        return f"{i:>4} (ch {c:>2}, row {r:>2}, col {s:>2})"
    return f"{i:>4}"


def format_explanation(ex: Explanation) -> str:
    """The explanation as text, one step per line, each naming its equation in spec/math.md."""
    out: list[str] = []
    label_text = f"label {ex.label} ({class_name(ex, ex.label)!r})" if ex.label is not None else "no label"
    out.append(f"Explaining {ex.source}, {label_text}. Equation numbers (n.k) refer to spec/math.md.")
    out.append("")
    out.append("Forward pass, layer by layer (6) Network.forward:")
    width = max(18, *(len(item.name) for item in ex.layers))
    for item in ex.layers:
        out.append(f"  layer {item.index:<2} {item.name:<{width}} {_summary(item)}")
    explained: list[NeuronExplanation | UnitExplanation] = [*ex.neurons, *ex.units]
    sections = [(item.layer, format_unit(ex, item)) for item in explained]
    for _, lines in sorted(sections, key=lambda section: section[0]):
        out.append("")
        out.extend(lines)
    out.append("")
    out.extend(_format_outputs(ex))
    return "\n".join(out)


def format_unit(ex: Explanation, item: NeuronExplanation | UnitExplanation) -> list[str]:
    """The lines :func:`format_explanation` prints for one explained neuron or unit of ``ex``: those
    of the explainer of its layer's type."""
    show = explainer_of(ex.layers[item.layer].kind).format
    assert show is not None  # explain explains the units of layers whose explainer formats them
    return show(ex, item)


def class_name(ex: Explanation, k: int) -> str:
    """Class ``k``'s name; its number where the names stop (a one-output sigmoid network has classes 0
    and 1 but one output, so one name at most)."""
    return ex.class_names[k] if k < len(ex.class_names) else str(k)


def _at(p: int, shape: tuple[int, ...]) -> str:
    """``[p]`` of a flat output, ``[c][i][j]`` of feature maps."""
    return "".join(f"[{k}]" for k in position(p, shape)) if len(shape) > 1 else f"[{p}]"


def layer_summary(item: LayerOutput) -> str:
    """The forward pass's line for one layer (of any shape), as :func:`format_explanation` prints it."""
    return _summary(item)


def _summary(item: LayerOutput) -> str:
    """The forward pass's line for one layer: its explainer's, an activation's, or its outputs' range."""
    summary = explainer_of(item.kind).summary
    if summary is not None:
        return summary(item)
    if explainer_of(item.kind).activation is not None:
        return activation_summary(item)
    v = item.outputs
    return f"{item.kind}.forward: {_size(item)}, from {num(min(v))} to {num(max(v))}"


def _size(item: LayerOutput) -> str:
    """``8 feature maps of 26x26`` or ``10 values``."""
    if len(item.shape) == 3:
        return f"{item.shape[0]} feature maps of {item.shape[1]}x{item.shape[2]}"
    return f"{len(item.outputs)} values"


def activation_summary(item: LayerOutput) -> str:
    """An elementwise activation's line: how many outputs are positive, and the largest."""
    v = item.outputs
    best = max(range(len(v)), key=v.__getitem__)
    positive = sum(1 for value in v if value > 0.0)
    equation = activation_of(item.kind).equation
    return f"({equation}) {item.kind}.f: {positive} of {len(v)} > 0, largest a{_at(best, item.shape)} = {num(v[best])}"


def dense_summary(item: LayerOutput) -> str:
    v = item.outputs
    if len(item.shape) == 2:  # a sequence: the layer at every position (16.1)
        size = f"{item.shape[0]} positions of {item.shape[1]} values"
        return f"(16.1) Dense.forward at each position: z has {size}, from {num(min(v))} to {num(max(v))}"
    return f"(3.1) Dense.forward: z has {len(v)} values, from {num(min(v))} to {num(max(v))}"


def softmax_summary(item: LayerOutput) -> str:
    v = item.outputs
    if len(item.shape) == 2:  # a sequence: one softmax per position (16.2)
        rows, size = item.shape
        sums = [math.fsum(v[t * size : (t + 1) * size]) for t in range(rows)]
        last = v[(rows - 1) * size :]
        best = max(range(size), key=last.__getitem__)
        return (
            f"(16.2) softmax at each position: each of the {rows} rows of p sums to 1 (from {num(min(sums))} to "
            f"{num(max(sums))}), largest p[{rows - 1}][{best}] = {num(last[best])} at the last position"
        )
    best = max(range(len(v)), key=v.__getitem__)
    return f"(4.6) softmax: p sums to {num(math.fsum(v))}, largest p[{best}] = {num(v[best])}"


def dropout_summary(item: LayerOutput) -> str:
    return "(7.3) Dropout.forward: the identity at inference"


def conv_summary(item: LayerOutput) -> str:
    v = item.outputs
    return f"(12.1) Conv2D.forward: {_size(item)}, z from {num(min(v))} to {num(max(v))}"


def max_pool_summary(item: LayerOutput) -> str:
    return f"(13.1) MaxPool2D.forward: {_size(item)}, each the largest of its window"


def avg_pool_summary(item: LayerOutput) -> str:
    return f"(13.3) AvgPool2D.forward: {_size(item)}, each the mean of its window"


def flatten_summary(item: LayerOutput) -> str:
    return f"(14.1) Flatten.forward: {len(item.outputs)} values in one row, in C order"


def norm_summary(item: LayerOutput) -> str:
    v = item.outputs
    return f"(15.6) BatchNorm.forward with the running statistics: {_size(item)}, from {num(min(v))} to {num(max(v))}"


def format_neuron(ex: Explanation, n: NeuronExplanation) -> list[str]:
    """One neuron of a Dense layer: its weighted sum term by term, its activation, its gradients."""
    out = []
    who = f" (class {ex.class_names[n.neuron]!r})" if n.output and len(ex.class_names) > 1 else ""
    out.append(f"Layer {n.layer} ({ex.layers[n.layer].name}), neuron {n.neuron}{who}: {n.why}")
    out.append(
        f"  {_unit_equation(ex.layers[n.layer].kind)} over its {n.in_features} inputs x = {n.input_name}"
        + (f"; {n.zero_inputs} of them are 0 and add nothing" if n.zero_inputs else "")
    )
    width = 26 if n.pixels else (len(_index_name(0, n.grid)) if n.grid else 6)
    out.append(f"    {'i':>{width}} {'w[i]':>13} {'x[i]':>13} {'w[i] * x[i]':>13}")
    for t in n.terms:
        out.append(
            f"    {_index_name(t.index, n.grid):>{width}} {num(t.weight):>13} {num(t.input):>13} {num(t.product):>13}"
        )
    sum_row = ("= sum_i w[i] * x[i]", n.weighted_sum)
    out.extend(_sum_rows(width + 28, n.rest_count, n.rest_sum, sum_row, ("+ b (bias)", n.bias), n.z))
    activation = activation_of(n.activation)
    equation, rule = activation.equation, activation.rule
    if not activation.elementwise:
        out.append(f"  ({equation}) {activation.function}: {rule}: p[{n.neuron}] = {num(n.a)} (all outputs below)")
    elif n.then:
        out.append(f"  z: {n.then}")
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
        out.append(f"    {_index_name(g.index, n.grid):>{width}} {num(g.input):>13} {num(g.gradient):>13}")
    if b.zero_inputs and not b.penalties:
        out.append(f"    ({b.zero_inputs} weights see x[i] = 0: their gradient is 0, this input does not change them)")
    return out


def _sum_rows(
    label: int, rest_count: int, rest_sum: float, weighted_sum: tuple[str, float], bias: tuple[str, float], z: float
) -> list[str]:
    """The rows that end a weighted sum printed term by term (eq. 2.1, 12.1): the terms not shown, the
    sum, the bias and z, each value right-aligned after a ``label``-wide column of text."""
    rows = [(f"+ the other {rest_count} terms", rest_sum)] if rest_count else []
    rows += [weighted_sum, bias, ("= z", z)]
    return [f"    {text:<{label}} {num(value):>13}" for text, value in rows]


SHADES = " ░▒▓█"  # low to high, as scratchnet.data.images.draw shades a digit
MAPS_WIDTH = 120  # characters per line of drawn feature maps


def draw_maps(maps: FeatureMaps, channels: Sequence[int] | None = None, width: int = MAPS_WIDTH) -> list[str]:
    """Feature maps (those of ``channels``, default all) side by side in shaded blocks, each labelled
    with its channel, as many per line as fit in ``width`` characters:
    one character per column and one line per two rows (their mean), so a map keeps its shape in a
    terminal, whose cells are about twice as tall as wide. One scale for every map: ``SHADES[0]`` is
    the layer's smallest value (``maps.low``), ``SHADES[-1]`` its largest (``maps.high``)."""
    chosen = range(len(maps.maps)) if channels is None else channels
    if not chosen:
        return []
    span = maps.high - maps.low

    def shade(value: float) -> str:
        level = int((value - maps.low) / span * len(SHADES)) if span > 0 else 0
        return SHADES[min(max(level, 0), len(SHADES) - 1)]

    boxes = []
    for c in chosen:
        plane = maps.maps[c]
        cols = len(plane[0])
        lines = [f"ch {c}".ljust(cols + 2), "┌" + "─" * cols + "┐"]
        for r in range(0, len(plane), 2):
            pair = plane[r : r + 2]
            lines.append("│" + "".join(shade(math.fsum(row[s] for row in pair) / len(pair)) for s in range(cols)) + "│")
        lines.append("└" + "─" * cols + "┘")
        boxes.append(lines)
    per_line = max(1, (width + 1) // (len(boxes[0][1]) + 1))
    out: list[str] = []
    for start in range(0, len(boxes), per_line):
        group = boxes[start : start + per_line]
        out.extend(" ".join(box[k] for box in group).rstrip() for k in range(len(group[0])))
    return out


def _unit_name(unit: tuple[int, ...]) -> str:
    if len(unit) == 3:
        return f"channel {unit[0]}, row {unit[1]}, col {unit[2]}"
    return f"channel {unit[0]}"


def unit_heading(ex: Explanation, unit: UnitExplanation) -> str:
    """The first line of an explained unit (of a layer explained unit by unit, not neuron by neuron)."""
    return f"Layer {unit.layer} ({ex.layers[unit.layer].name}), {_unit_name(unit.unit)}: {unit.why}"


def _format_activation(activation: str, a: float | None, then: str, z: str = "z") -> list[str]:
    if activation and a is not None:
        equation, rule = activation_of(activation).equation, activation_of(activation).rule
        return [f"  ({equation}) {activation}.f: {rule}: a = {num(a)}" + (f"  (z = {z})" if z != "z" else "")]
    return [f"  {z}: {then}"] if then else []


def format_conv(ex: Explanation, u: ConvUnitExplanation) -> list[str]:
    """One unit of a Conv2D layer: its feature maps, then its window's weighted sum term by term."""
    o, i, j = u.unit
    (kh, kw), (sh, sw), (ph, pw) = u.kernel_size, u.stride, u.padding
    _, height, width = u.input_shape
    out = [unit_heading(ex, u)]
    if u.drawn:
        channels = len(u.maps.maps)
        appended = u.drawn[-1] != len(u.drawn) - 1  # the unit's own channel, after the first few
        drawn = "all" if len(u.drawn) == channels else f"the first {len(u.drawn) - appended}"
        if appended:
            drawn += f" and channel {u.drawn[-1]} (the unit's)"
        out.append(
            f"  Feature maps: the output of layer {u.maps.layer} ({u.maps.name}), {channels} channels of "
            f"{len(u.maps.maps[0])}x{len(u.maps.maps[0][0])}; drawn: {drawn}, one character per column and per "
            f"two rows, on one scale from '{SHADES[0]}' ({num(u.maps.low)}) to '{SHADES[-1]}' ({num(u.maps.high)}):"
        )
        out.extend("    " + line for line in draw_maps(u.maps, u.drawn))
    top, left = i * sh - ph, j * sw - pw
    rows = f"rows {max(top, 0)}..{min(top + kh, height) - 1}, cols {max(left, 0)}..{min(left + kw, width) - 1}"
    equation = _unit_equation(ex.layers[u.layer].kind)
    out.append(
        f"  {equation} (12.3, 12.4), here with o = {o}, i = {i}, j = {j}, stride {sh}x{sw}, "
        f"padding {ph}x{pw}: neuron {o} on the {kh}x{kw} window at {rows} of x = {u.input_name}"
    )
    taps = len(u.terms) + u.rest_count
    notes = [f"{taps} inputs"]
    if u.zero_inputs:
        notes.append(f"{u.zero_inputs} of them are 0 and add nothing")
    if u.padded:
        notes.append(f"{u.padded} more taps fall on the zero padding (12.3) and are left out")
    out.append("  its window: " + "; ".join(notes))
    head = f"w[{o}][c][u][v]"
    out.append(f"    {head:>15} {'x[c][r][s]':>15} {'w':>13} {'x':>13} {'w * x':>13}")
    for t in u.terms:
        weight = f"w[{o}][{t.channel}][{t.u}][{t.v}]"
        pixel = f"x[{t.channel}][{t.row}][{t.col}]"
        out.append(f"    {weight:>15} {pixel:>15} {num(t.weight):>13} {num(t.input):>13} {num(t.product):>13}")
    sum_row = ("= sum of w * x over the window", u.weighted_sum)
    out.extend(_sum_rows(59, u.rest_count, u.rest_sum, sum_row, (f"+ b[{o}] (bias)", u.bias), u.z))
    out.extend(_format_activation(u.activation, u.a, u.then))
    return out


def format_pool(ex: Explanation, u: PoolUnitExplanation) -> list[str]:
    """One unit of a pooling layer: its window, and its maximum (in brackets) or its mean."""
    c, i, j = u.unit
    kh, kw = len(u.window), len(u.window[0])
    (sh, sw) = u.stride
    where = (
        f"here with i = {i}, j = {j}, stride {sh}x{sw}: the {kh}x{kw} window at rows {u.rows[0]}..{u.rows[1]}, "
        f"cols {u.cols[0]}..{u.cols[1]} of channel {c} of x = {u.input_name}"
    )
    out = [unit_heading(ex, u), f"  {_unit_equation(u.kind)}, {where}"]
    out.append("    " + " " * 8 + "".join(f"{'col ' + str(s):>14}" for s in range(u.cols[0], u.cols[1] + 1)))
    for n, values in enumerate(u.window):
        r = u.rows[0] + n
        cells = []
        for m, value in enumerate(values):
            text = num(value)
            cells.append(f"{'[' + text + ']' if u.chosen == (r, u.cols[0] + m) else text:>14}")
        out.append(f"    {'row ' + str(r):<8}" + "".join(cells))
    if u.chosen is not None:
        r, s = u.chosen
        out.append(
            f"  = a = {num(u.a)}: x[{c}][{r}][{s}], in brackets, the window's first maximum in row-major order "
            "(MaxPool2D.argmax; in training the gradient goes to it alone, 13.2)"
        )
    else:
        out.append(f"  = a = sum / {kh * kw} = {num(u.total)} / {kh * kw} = {num(u.a)}")
    return out


def format_norm(ex: Explanation, u: NormUnitExplanation) -> list[str]:
    """One unit of a BatchNorm layer at inference: its normalization, step by step."""
    c = u.unit[0]
    at = "".join(f"[{k}]" for k in u.unit)
    out = [
        unit_heading(ex, u),
        f"  (15.6) BatchNorm.forward at inference: channel {c}'s running statistics (kept in training, 15.5) "
        "stand in for the batch's mean and variance",
    ]
    rows = [
        (f"x = {at} of {u.input_name}", u.x),
        (f"mean = running_mean[{c}]", u.mean),
        (f"var = running_var[{c}]", u.var),
        (f"(15.3) x_hat = (x - mean) / sqrt(var + eps), eps = {u.eps:g}", u.x_hat),
        (f"gamma = weight[{c}]", u.gamma),
        (f"beta = bias[{c}]", u.beta),
        ("(15.4) y = gamma * x_hat + beta", u.y),
    ]
    label = max(len(text) for text, _ in rows)
    out.extend(f"    {text:<{label}} {num(value):>13}" for text, value in rows)
    out.extend(_format_activation(u.activation, u.a, u.then, "y"))
    return out


def _unit_equation(kind: str) -> str:
    """``(2.1) Neuron.forward: z = sum_i w[i] * x[i] + b``: how the printout names a unit's computation."""
    equation = explainer_of(kind).equation
    assert equation is not None  # a layer whose units are explained has an equation
    number, function, formula = equation
    return f"({number}) {function}: {formula}"


def _format_outputs(ex: Explanation) -> list[str]:
    out = []
    activation = activation_of(ex.output_kind)
    out.append(activation.outputs or f"Outputs ({activation.equation}) {ex.output_kind}:")
    for k, (z, p) in enumerate(zip(ex.logits, ex.outputs)):
        marks = []
        if k == ex.predicted:
            marks.append("predicted")
        if k == ex.label:
            marks.append("true label")
        name = class_name(ex, k)
        bar = "#" * round(20 * p) if 0.0 <= p <= 1.0 else ""
        out.append(f"  {k:>3} {name!r:<14} z = {num(z):>12}   p = {num(p):<12} {bar:<20} {' '.join(marks)}".rstrip())
    verdict = ""
    if ex.label is not None:
        verdict = " (correct)" if ex.predicted == ex.label else f" (wrong: the label is {ex.label})"
    out.append(f"Prediction: {ex.predicted} ({class_name(ex, ex.predicted)!r}){verdict}")
    if ex.loss is None:
        return out
    equation, function, _ = LOSSES.get(ex.loss_kind, ("5", ex.loss_kind, ""))
    y = ex.label
    assert y is not None
    if ex.log_sum_exp is not None and ex.label_smoothing:
        out.append(
            f"Loss for the true label (5.7) {function}, label smoothing eps = {ex.label_smoothing:g}: "
            f"L = (1 - eps) (logsumexp(z) - z[{y}]) + (eps/K) sum_k (logsumexp(z) - z[k]) = {num(ex.loss)}"
        )
    elif ex.log_sum_exp is not None:
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
