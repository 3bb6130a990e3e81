"""The backward step of each built-in layer type, as ``explain --backward`` shows it: a line of the
layer's own numbers, and one trained value's gradient term by term (spec/math.md, sections 3, 4, 7,
12-15). :mod:`scratchnet.teaching.layer_explainers` registers them; every number is read from the
loops layers and the pass of :mod:`scratchnet.teaching.backward_pass`. Standard library only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from scratchnet.loops.losses import smoothed_targets
from scratchnet.loops.tensor import flatten, shape_of
from scratchnet.teaching.backward_pass import BackwardPass, Index, value_at
from scratchnet.teaching.explain_text import num
from scratchnet.teaching.explainers import explainer_of
from scratchnet.teaching.explanation import position

Rows = list[tuple[str, str]]
"""Lines of a term-by-term gradient: (text, its number as printed, or "" for none)."""
Term = tuple[str, list[float], float]
"""One term of a sum: its name, its factors, their product."""

# The start of the backward pass (6.1) for one output j, by loss: (equation, text with {j}, {a}, {t}).
STARTS = {
    "CrossEntropy": ("5.3", "CrossEntropy.gradient: delta[{j}] = p[{j}] - t[{j}] = {a} - {t}"),
    "BinaryCrossEntropy": (
        "5.6",
        "BinaryCrossEntropy.gradient: delta[{j}] = (sigmoid(z[{j}]) - t[{j}]) / K = ({a} - {t}) / {k}",
    ),
    "MeanSquaredError": (
        "5.4",
        "MeanSquaredError.gradient: dL/da[{j}] = 2 (a[{j}] - t[{j}]) / K = 2 ({a} - {t}) / {k}",
    ),
}


def at(p: int, shape: Sequence[int]) -> str:
    """``[p]`` of a flat array, ``[c][i][j]`` of feature maps."""
    index, rest = [], p
    for size in reversed(shape):
        rest, k = divmod(rest, size)
        index.append(k)
    return "".join(f"[{k}]" for k in reversed(index)) if len(shape) > 1 else f"[{p}]"


def next_layer(bp: BackwardPass, index: int) -> int | None:
    """The layer that reads layer ``index``'s output, past any that pass it through at inference."""
    later = index + 1
    while later < len(bp.sites) and explainer_of(bp.kind(later)).passes_through:
        later += 1
    return later if later < len(bp.sites) else None


def input_name(bp: BackwardPass, index: int, i: int) -> str:
    """Value i of what layer ``index`` reads: the input (its row and column in the grey image it
    was read from, when known) or the output of the layer before."""
    previous = index - 1
    while previous >= 0 and explainer_of(bp.kind(previous)).passes_through:
        previous -= 1
    if previous >= 0:
        before = shape_of(bp.values[previous])  # a Flatten's input: name the value by its place in its maps (14.1)
        place = ""
        if len(before) == 3 and math.prod(before) == len(flatten(bp.values[index])):
            c, r, s = position(i, before)
            place = f" (ch {c}, row {r}, col {s})"
        return f"value {i}{place} of the output of layer {previous} ({bp.names[previous]})"
    place = f" (row {i // bp.grid[1]}, col {i % bp.grid[1]})" if len(bp.grid) == 2 else ""
    return f"input {i}{place} of the network"


def where_from(bp: BackwardPass, index: int, p: int, what: str = "delta") -> tuple[Rows, float]:
    """Where the gradient arriving at value p of layer ``index``'s output comes from, one layer back
    (two through an elementwise activation): the loss (6.1), an activation (4), a Dense layer's sum
    (3.4) or another layer's rule; and its value."""
    rows, value = _where_from(bp, index, p, what)
    after = next_layer(bp, index)
    for skipped in range(index + 1, len(bp.sites) if after is None else after):
        rule = explainer_of(bp.kind(skipped)).backward
        equation = f" ({rule.equations})" if rule is not None else ""
        rows.append((f"through layer {skipped} ({bp.names[skipped]}), the identity at inference{equation}", ""))
    return rows, value


def _where_from(bp: BackwardPass, index: int, p: int, what: str) -> tuple[Rows, float]:
    shape = shape_of(bp.arrives[index])
    value = flatten(bp.arrives[index])[p]
    name = f"{what}{at(p, shape)}"
    after = next_layer(bp, index)
    if after is None or after == bp.fused_last:
        return _start(bp, p, name, value), value
    entry = explainer_of(bp.kind(after))
    activation = entry.activation
    if activation is not None and activation.elementwise:
        rows, upstream = where_from(bp, after, p, "dL/da")
        z, a = flatten(bp.values[after])[p], flatten(bp.values[after + 1])[p]
        slope = bp.layer(after).derivative(z, a)
        rows.append(
            (
                f"({activation.equation}) {bp.kind(after)}.derivative at z = {num(z)}: {activation.derivative}",
                num(slope),
            )
        )
        rows.append((f"(4) Elementwise.backward: {name} = dL/da * f'(z) = {num(upstream)} * {num(slope)}", num(value)))
        return rows, value
    rule = entry.backward
    if rule is not None and rule.input_terms is not None and len(shape) == 1:
        equation, found = rule.input_terms(bp, after, p)
        terms = [(f"{k}", [w, d], w * d) for k, w, d in found]
        head = (
            f"({equation}) {rule.function} of layer {after}: {name} = sum_k W[k][{p}] * delta[k] "
            f"over its {len(terms)} neurons"
        )
        rows = [(head, "")]
        rows += term_table(["k", f"W[k][{p}]", "delta[k]"], f"W[k][{p}] * delta[k]", terms, f"= {name}", bp.top)
        return rows, value
    how = f"({rule.equations}) {rule.function}" if rule is not None else "its backward"
    return [(f"{name}: sent back by layer {after} ({bp.names[after]}), {how}", num(value))], value


def _start(bp: BackwardPass, p: int, name: str, value: float) -> Rows:
    """The loss's gradient at output p (6.1)."""
    kind = type(bp.network.loss_function).__name__
    outputs = flatten(bp.values[-1])
    k = len(outputs)
    target = (1.0 if bp.label == p else 0.0) if k > 1 else float(bp.label)
    eps = getattr(bp.network.loss_function, "label_smoothing", 0.0)
    if kind == "CrossEntropy" and eps:  # the target is q = (1 - eps) one-hot(y) + eps/K (eq. 5.7)
        q = smoothed_targets(bp.label, k, eps)[p]
        return [(f"(5.8) CrossEntropy.gradient: delta[{p}] = p[{p}] - q[{p}] = {num(outputs[p])} - {q:g}", num(value))]
    if kind not in STARTS:
        return [(f"(6.1) {kind}.gradient: {name}", num(value))]
    equation, text = STARTS[kind]
    return [(f"({equation}) " + text.format(j=p, a=num(outputs[p]), t=f"{target:g}", k=k), num(value))]


def term_table(heads: list[str], product: str, terms: list[Term], total: str, top: int) -> Rows:
    """The largest terms of a sum one per row (name, factors, product), the rest summed, the sum."""
    ranked = sorted(terms, key=lambda term: -abs(term[2]))  # stable: the first of equal terms first
    shown = [term for term in ranked[:top] if term[2] != 0.0]
    rest = ranked[len(shown) :]
    width = max([len(heads[0]), *(len(term[0]) for term in shown)])
    rows: Rows = (
        [("  " + f"{heads[0]:>{width}}" + "".join(f"{head:>15}" for head in heads[1:]), product)] if shown else []
    )
    for label, factors, value in shown:
        rows.append(("  " + f"{label:>{width}}" + "".join(f"{num(f):>15}" for f in factors), num(value)))
    if rest:
        zeros = sum(1 for term in rest if term[2] == 0.0)
        of_them = f" ({'all' if zeros == len(rest) else zeros} of them 0)" if zeros else ""
        rows.append((f"  + the other {len(rest)} terms{of_them}", num(math.fsum(term[2] for term in rest))))
    rows.append((f"  {total}", num(math.fsum(term[2] for term in terms))))
    return rows


def indent(rows: Rows, by: int = 4) -> Rows:
    return [(" " * by + text, value) for text, value in rows]


def with_penalty(
    bp: BackwardPass, index: int, array: str, where: Index, rows: Rows, value: float
) -> tuple[Rows, float]:
    """The l2 and l1 terms a penalized array's gradient adds (7.1, 7.2)."""
    name = f"{bp.sites[index].prefix}.{array}"
    network = bp.network
    if name not in network.penalized or (network.l2 == 0.0 and network.l1 == 0.0):
        return rows, value
    w = value_at(bp.params[name], where)
    extra = network.l2 * w + network.l1 * float((w > 0.0) - (w < 0.0))
    rows = [*rows, (f"+ (7.1, 7.2) Network.backward: l2 * w + l1 * sign(w), w = {num(w)}", num(extra))]
    rows.append(("= the gradient with the penalties", num(value + extra)))
    return rows, value + extra


def dense_input_terms(bp: BackwardPass, index: int, i: int) -> tuple[str, list[tuple[int, float, float]]]:
    """dL/dx[i] = sum_k W[k][i] * delta[k] (eq. 3.4): the terms (k, W[k][i], delta[k])."""
    deltas = bp.arrives[index]
    return "3.4", [(k, neuron.weights[i], deltas[k]) for k, neuron in enumerate(bp.layer(index).neurons)]


def dense_parameter(bp: BackwardPass, index: int, array: str, where: Index) -> tuple[Rows, float]:
    """dL/dW[j][i] = delta[j] * a[i] (3.2) or dL/db[j] = delta[j] (3.3), for one sample."""
    j = where[0]
    delta_rows, delta = where_from(bp, index, j)
    if len(where) == 1:
        rows: Rows = [(f"(3.3) Dense.backward: dL/db[j] = delta[j] (one sample, B = 1), here j = {j}", "")]
        rows += [(f"  delta[{j}] = dL/dz[{j}] of layer {index} comes from:", ""), *indent(delta_rows)]
        rows.append((f"dL/db[{j}] = delta[{j}]", num(delta)))
        return with_penalty(bp, index, array, where, rows, delta)
    i = where[1]
    a = flatten(bp.values[index])[i]
    rows = [(f"(3.2) Dense.backward: dL/dW[j][i] = delta[j] * a[i] (one sample, B = 1), here j = {j}, i = {i}", "")]
    rows.append((f"  a[{i}] = {input_name(bp, index, i)}", num(a)))
    rows += [(f"  delta[{j}] = dL/dz[{j}] of layer {index}, which comes from:", ""), *indent(delta_rows)]
    value = delta * a
    rows.append((f"dL/dW[{j}][{i}] = delta[{j}] * a[{i}] = {num(delta)} * {num(a)}", num(value)))
    return with_penalty(bp, index, array, where, rows, value)


def conv_parameter(bp: BackwardPass, index: int, array: str, where: Index) -> tuple[Rows, float]:
    """dL/dw[o][c][u][v], a sum over the windows (12.5), or dL/db[o], a sum over the positions (12.6)."""
    conv = bp.layer(index)
    o = where[0]
    out_h, out_w = conv.out_size
    deltas = flatten(bp.arrives[index])[o * out_h * out_w : (o + 1) * out_h * out_w]
    terms: list[Term] = []
    if len(where) == 1:
        terms = [(f"delta[{o}][{p // out_w}][{p % out_w}]", [], d) for p, d in enumerate(deltas)]
        positions = list(range(len(deltas)))
        rows: Rows = [
            (
                f"(12.6) Conv2D.backward: dL/db[o] = sum_i sum_j delta[o][i][j], here o = {o}, "
                f"over {len(terms)} positions",
                "",
            )
        ]
        rows += term_table(["term"], "delta", terms, f"= dL/db[{o}]", bp.top)
    else:
        _, c, u, v = where
        _, height, width = shape_of(bp.values[index])
        x = flatten(bp.values[index])
        (sh, sw), (ph, pw) = conv.stride, conv.padding
        padded = 0
        positions = []
        for p, d in enumerate(deltas):
            i, j = divmod(p, out_w)
            r, s = i * sh + u - ph, j * sw + v - pw
            if not (0 <= r < height and 0 <= s < width):
                padded += 1  # this window puts the tap on the zero padding (12.3): the term is 0
                continue
            value = x[(c * height + r) * width + s]
            terms.append((f"delta[{o}][{i}][{j}] * x[{c}][{r}][{s}]", [d, value], d * value))
            positions.append(p)
        zeros = sum(1 for term in terms if term[2] == 0.0)
        rows = [
            (
                "(12.5) Conv2D.backward: dL/dw[o][c][u][v] = "
                "sum_i sum_j delta[o][i][j] * x[c][i*sh + u - ph][j*sw + v - pw],",
                "",
            ),
            (
                f"  here o = {o}, c = {c}, u = {u}, v = {v}: {len(terms)} windows, "
                f"{zeros} of their terms 0 (delta or x is 0)"
                + (f", {padded} more on the zero padding (12.3)" if padded else ""),
                "",
            ),
        ]
        rows += term_table(["term", "delta", "x"], "delta * x", terms, f"= dL/dw[{o}][{c}][{u}][{v}]", bp.top)
    value = math.fsum(term[2] for term in terms)
    rows += _largest_delta(bp, index, o * out_h * out_w, terms, positions)
    return with_penalty(bp, index, array, where, rows, value)


def _largest_delta(
    bp: BackwardPass, index: int, offset: int, terms: list[Term], positions: list[int], what: str = "delta"
) -> Rows:
    """Where the delta of the sum's largest term comes from (one layer back); ``positions[n]`` is
    term n's place in the channel's deltas, from ``offset`` in the layer's flat output."""
    if not terms or max(abs(term[2]) for term in terms) == 0.0:
        return []
    largest = max(range(len(terms)), key=lambda n: abs(terms[n][2]))
    rows, _ = where_from(bp, index, offset + positions[largest], what)
    arrives = "dL/dy" if what == "g" else "dL/dz"
    head = f"  the {what} of the largest term, {terms[largest][0]}, is {arrives} of layer {index} and comes from:"
    return [(head, ""), *indent(rows)]


def norm_parameter(bp: BackwardPass, index: int, array: str, where: Index) -> tuple[Rows, float]:
    """dL/dgamma[c] = sum_k g_k * x_hat_k (15.7) or dL/dbeta[c] = sum_k g_k (15.8) over channel c's
    values, with the x_hat of this pass (15.6 at inference)."""
    norm = bp.layer(index)
    c = where[0]
    shape = shape_of(bp.arrives[index])
    size = math.prod(shape[1:])
    g = flatten(bp.arrives[index])[c * size : (c + 1) * size]
    x_hat = norm.x_hat[c][0]  # channel c of the one sample, flat (BatchNorm.forward)
    places = [at(c * size + k, shape) for k in range(size)]
    if array == "bias":
        terms: list[Term] = [(f"g{place}", [], gk) for place, gk in zip(places, g)]
        head = f"(15.8) BatchNorm.backward: dL/dbeta[c] = sum_k g_k, g = dL/dy, here c = {c}, over {size} values"
        rows: Rows = [(head, ""), *term_table(["term"], "g", terms, f"= dL/dbeta[{c}]", bp.top)]
    else:
        terms = [(f"g{place} * x_hat{place}", [gk, xk], gk * xk) for place, gk, xk in zip(places, g, x_hat)]
        head = (
            f"(15.7) BatchNorm.backward: dL/dgamma[c] = sum_k g_k * x_hat_k, g = dL/dy, here c = {c}, "
            f"over {size} values"
        )
        rows = [(head, ""), *term_table(["term", "g", "x_hat"], "g * x_hat", terms, f"= dL/dgamma[{c}]", bp.top)]
    rows += _largest_delta(bp, index, c * size, terms, list(range(size)), "g")
    return rows, math.fsum(term[2] for term in terms)


def elementwise_note(bp: BackwardPass, index: int) -> str:
    """How many gradients the activation lets through: f'(z) at each value."""
    z, a = flatten(bp.values[index]), flatten(bp.values[index + 1])
    slopes = [bp.layer(index).derivative(zk, ak) for zk, ak in zip(z, a)]
    stopped = sum(1 for slope in slopes if slope == 0.0)
    return (
        f"f'(z) from {num(min(slopes))} to {num(max(slopes))}; "
        f"0 at {stopped} of {len(slopes)} values, whose gradient stops here"
    )


def max_pool_note(bp: BackwardPass, index: int) -> str:
    pool = bp.layer(index)
    windows = len(pool.fields) * len(pool.argmax[0])
    return (
        f"each of its {windows} windows sends its gradient to its first maximum (MaxPool2D.argmax), "
        "the other inputs get 0"
    )


def avg_pool_note(bp: BackwardPass, index: int) -> str:
    pool = bp.layer(index)
    return f"each input of a window gets 1/{pool.area} of the window's gradient, summed where windows overlap"


def flatten_note(bp: BackwardPass, index: int) -> str:
    shape = shape_of(bp.values[index])
    return f"the same {math.prod(shape)} numbers, back in the shape {'x'.join(map(str, shape))} of its input"


def norm_note(bp: BackwardPass, index: int) -> str:
    norm = bp.layer(index)
    scales = [gamma * inv for gamma, inv in zip(norm.weight, norm.inv_std)]
    return (
        f"at inference (15.10): dL/dx = g * gamma[c] / sqrt(running_var[c] + eps), a factor per channel "
        f"from {num(min(scales))} to {num(max(scales))}"
    )


def dropout_note(bp: BackwardPass, index: int) -> str:
    return "at inference there is no mask: what arrives is sent back unchanged"


def dense_note(bp: BackwardPass, index: int) -> str:
    deltas = flatten(bp.arrives[index])
    return f"delta is not 0 at {sum(1 for d in deltas if d != 0.0)} of its {len(deltas)} neurons"


def conv_note(bp: BackwardPass, index: int) -> str:
    deltas = flatten(bp.arrives[index])
    live = sum(1 for d in deltas if d != 0.0)
    return f"delta is not 0 at {live} of its {len(deltas)} units; the windows of the others add nothing"
