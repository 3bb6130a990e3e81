"""``scratchnet explain --backward``: one sample's backward pass, layer by layer, and one weight's
gradient term by term, with its finite-difference check, by the loops backend.

For each layer, from the last to the first (eq. 6.2): its rule with its equation numbers, what
arrives (dL/d its output), what it sends back (dL/d its input) and its arrays' gradients, each
summed up by a few statistics; then one trained value's gradient as the chain rule with the actual
numbers (its layer type's ``BackwardRule.parameter``), and the same gradient by a central finite
difference. What it knows of each layer type comes from the explainers' table: this module names
no layer type. Standard library only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import scratchnet.teaching.layer_explainers  # noqa: F401  (registers the built-in layer types' explainers)
from scratchnet.core.errors import ConfigError, LabelError
from scratchnet.core.walk import walk
from scratchnet.loops.network import Network
from scratchnet.teaching.backward_pass import (
    BackwardPass,
    Index,
    default_weight,
    finite_difference,
    parse_weight,
    run_backward,
    stats,
    value_at,
    weight_name,
)
from scratchnet.teaching.backward_rules import Rows
from scratchnet.teaching.explain import as_network_input, check_explainable, forward_values, image_grid
from scratchnet.teaching.explain_text import num
from scratchnet.teaching.explainers import EXPLAINERS, explainer_of
from scratchnet.teaching.explanation import loss_equations


def check_backward(network: Network) -> None:
    """ConfigError naming the first layer whose type has no backward rule to show."""
    check_explainable(network)
    shown = [kind for kind, entry in EXPLAINERS.items() if entry.backward is not None]
    for index, layer_site in enumerate(walk(network.plan)):
        if explainer_of(layer_site.kind).backward is None:
            raise ConfigError(
                f"explain --backward cannot show layer {index} ({layer_site.kind}); it shows {', '.join(shown)}"
            )


def explain_backward(
    network: Network,
    inputs: Sequence[Any],
    label: int | None,
    *,
    weight: str | None = None,
    top: int = 8,
    class_names: Sequence[str] | None = None,
    source: str = "input",
    image_shape: Sequence[int] | None = None,
) -> str:
    """The backward pass of one sample (flat, or in the network's input shape) with its true
    ``label``, as text; ``weight`` names the value whose gradient is shown term by term, as
    ``0.weight[3,100]`` (default: the weight with the largest |gradient|). Its last line is
    ``dL/d<weight> = <value>; finite difference <value>``. ``image_shape`` names a flat input by
    its row and column, as in :func:`scratchnet.teaching.explain.explain`."""
    check_backward(network)
    if label is None:
        raise LabelError("explain --backward needs the true label, for the loss (give --label Y with --image)")
    if top < 1:
        raise ConfigError("explain: --top must be at least 1")
    classes = network.plan.output_of(len(network.layers) - 1)[0]
    upper = 2 if classes == 1 else classes
    if int(label) != label or not 0 <= label < upper:
        raise LabelError(f"explain: label {label} is not a class of this network (0..{upper - 1})")
    x = as_network_input(network, inputs)
    bp = run_backward(network, x, label, forward_values(network, x), top, image_grid(network, image_shape))
    if not bp.grads:
        raise ConfigError("explain --backward: the network has no trained arrays, so no gradient to show")
    chosen = parse_weight(weight, bp.grads) if weight is not None else default_weight(bp)
    names = list(class_names or [])
    out = [f"Backward pass of {source}, label {_class(names, label)}. Equation numbers (n.k) refer to spec/math.md."]
    out += _forward_line(bp, names)
    out += ["", *_layers(bp)]
    out += ["", *_one_weight(bp, x, chosen, weight is None)]
    return "\n".join(out)


def _class(names: Sequence[str], k: int) -> str:
    return f"{k} ({names[k]!r})" if k < len(names) else str(k)


def _forward_line(bp: BackwardPass, names: Sequence[str]) -> list[str]:
    outputs = bp.values[-1]
    predicted = max(range(len(outputs)), key=outputs.__getitem__) if len(outputs) > 1 else int(outputs[0] >= 0.5)
    loss_kind = type(bp.network.loss_function).__name__
    equation = (loss_equations(bp.network.loss_function) or ("5", "", ""))[0]
    penalty = " with the weight penalty (7.1, 7.2)" if bp.network.l2 or bp.network.l1 else ""
    return [
        f"Forward pass at inference (6) Network.forward: predicted {_class(names, predicted)}; "
        f"loss ({equation}) {loss_kind}.value{penalty}: L = {num(bp.loss)}"
    ]


def _layers(bp: BackwardPass) -> list[str]:
    """Each layer's step, last first (6.2), each gradient summed up by :func:`stats`."""
    loss_kind = type(bp.network.loss_function).__name__
    start_equation = (loss_equations(bp.network.loss_function) or ("", "", "6.1"))[2]
    out = [
        "Backward pass, layer by layer (6.2) Network.backward, from the last layer to the first; each gradient",
        "summed up as: its values, how many are not 0, their range, the largest |value| and the root mean square.",
        f"  (6.1) the start: ({start_equation}) {loss_kind}.gradient (one sample, B = 1): {stats(bp.start)}",
    ]
    width = max(len(name) for name in bp.names)
    for index in reversed(range(len(bp.sites))):
        rule = explainer_of(bp.kind(index)).backward
        assert rule is not None  # check_backward
        head = f"  layer {index:<2} {bp.names[index]:<{width}} "
        if index == bp.fused_last:
            out.append(
                head + f"fused with the loss (6.1): {rule.function} ({rule.equations}) is skipped; the start above "
                "is dL/dz of its input"
            )
            continue
        out.append(head + f"({rule.equations}) {rule.function}")
        out.append(f"      rule        {rule.rule}")
        out.append(f"      arrives     {rule.arrives:<7} {stats(bp.arrives[index])}")
        if rule.note is not None:
            out.append(f"      {rule.note(bp, index)}")
        prefix = bp.sites[index].prefix + "."
        for name, grad in bp.grads.items():
            if name.startswith(prefix) and "." not in name[len(prefix) :]:
                out.append(f"      gradient    dL/d{name}  {stats(grad)}")
        if bp.sends[index] is not None:
            out.append(f"      sends back  {rule.sends:<7} {stats(bp.sends[index])}")
        else:
            out.append("      sends back  nothing: dL/dx of the data itself is never used (6.2)")
    return out


def _one_weight(bp: BackwardPass, x: Any, chosen: tuple[str, Index], largest: bool) -> list[str]:
    """One value's gradient term by term, its finite difference, and the last line."""
    name, index = chosen
    label = weight_name(name, index)
    layer = next(
        site.index
        for site in bp.sites
        if name.startswith(site.prefix + ".") and "." not in name[len(site.prefix) + 1 :]
    )
    array = name[len(bp.sites[layer].prefix) + 1 :]
    why = "the weight with the largest |gradient|" if largest else "chosen with --weight"
    w = value_at(bp.params[name], index)
    out = [f"One weight, term by term: {label}, {why}, of layer {layer} ({bp.names[layer]}), w = {num(w)}"]
    rule = explainer_of(bp.kind(layer)).backward
    gradient = value_at(bp.grads[name], index)
    if rule is not None and rule.parameter is not None:
        rows, _ = rule.parameter(bp, layer, array, index)
        out += _aligned(rows, "  ")
    else:
        out.append(f"  ({rule.equations if rule else '6.2'}) read from the loops backward pass: {num(gradient)}")
    fd, h = finite_difference(bp, x, name, index)
    out.append(
        f"  check: (L(w + h) - L(w - h)) / 2h, a central finite difference by the loops network in float64, "
        f"h = {h:.3g}: {num(fd)}"
    )
    out.append(f"dL/d{label} = {num(gradient)}; finite difference {num(fd)}")
    return out


def _aligned(rows: Rows, indent: str) -> list[str]:
    """Rows with their numbers in one right-aligned column."""
    width = min(100, max((len(text) for text, value in rows if value), default=0))
    column = max([13, *(len(value) for _, value in rows)])
    return [f"{indent}{text:<{width}} {value:>{column}}" if value else f"{indent}{text}" for text, value in rows]
