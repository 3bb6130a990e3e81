"""One explained neuron or unit as the JSON of ``POST /api/explain`` (docs/serve.md describes each field).

Every answer has the fields every unit has (its layer, the printout of ``scratchnet explain``, its
``kind``, ``unit``, ``title`` and ``equation``); the fields of its kind of record come from the page
entry of its layer's type in :data:`PAGE`, registered at module level. A layer type without one is
shown by the common fields alone (the page then shows explain's printout of the unit).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from scratchnet.teaching.explain import (
    EXPLAINERS,
    ConvUnitExplanation,
    Explanation,
    NeuronExplanation,
    NormUnitExplanation,
    PoolUnitExplanation,
    UnitExplanation,
    activation_of,
    format_unit,
)

Record = NeuronExplanation | UnitExplanation
PageFields = Callable[[Explanation, Any], dict[str, Any]]

PAGE: dict[str, PageFields] = {}
"""Layer type -> the fields its explained units add to the answer."""


def register_page(kind: str, fields: PageFields) -> None:
    """Show the units of layer type ``kind`` on the page with ``fields(explanation, record)``."""
    PAGE[kind] = fields


def explanation_json(ex: Explanation, item: Record) -> dict[str, Any]:
    """One explained neuron or unit as JSON: its terms largest first, its sums and explain's printout of it."""
    kind = ex.layers[item.layer].kind
    name = ex.layers[item.layer].name
    answer: dict[str, Any] = {
        "layer": item.layer,
        "layer_name": name,
        "input_name": item.input_name,
        "lines": format_unit(ex, item),
        "predicted": ex.predicted,
        "probabilities": ex.outputs,
        "kind": kind,
        "unit": list(item.unit),
        "title": f"layer {item.layer} {name}, unit {list(item.unit)}",
        "equation": equation_json(kind),
    }
    fields = PAGE.get(kind)
    return answer | fields(ex, item) if fields is not None else answer


def equation_json(kind: str) -> dict[str, str] | None:
    """The equation of one unit of layer type ``kind`` (None when its explainer names none)."""
    entry = EXPLAINERS.get(kind)
    if entry is None or entry.equation is None:
        return None
    number, function, formula = entry.equation
    return {"number": number, "function": function, "formula": formula}


def activation_json(kind: str, a: float | None, then: str) -> dict[str, Any] | None:
    """The activation after a unit (its equation and rule, as explain names them), or None."""
    if kind and not activation_of(kind).trivial and a is not None:
        activation = activation_of(kind)
        return {"kind": kind, "number": activation.equation, "rule": activation.rule, "a": a, "then": ""}
    return {"kind": "", "number": "", "rule": "", "a": None, "then": then} if then else None


def where(index: int, grid: tuple[int, ...]) -> str:
    """Input ``index`` of a Dense neuron named by its place: a pixel's row and column, a feature map's unit."""
    if len(grid) == 2:
        return f"x[{index}]: pixel (row {index // grid[1]}, col {index % grid[1]})"
    if len(grid) == 3:
        c, rest = divmod(index, grid[1] * grid[2])
        return f"x[{index}]: channel {c}, row {rest // grid[2]}, col {rest % grid[2]}"
    return f"x[{index}]"


def _neuron_fields(ex: Explanation, item: NeuronExplanation) -> dict[str, Any]:
    who = f" (class {ex.class_names[item.neuron]!r})" if item.output else ""
    return {
        "title": f"layer {item.layer} {ex.layers[item.layer].name}, neuron {item.neuron}{who}",
        "grid": list(item.grid),
        "terms": [
            {
                "index": t.index,
                "where": where(t.index, item.grid),
                "weight": t.weight,
                "input": t.input,
                "product": t.product,
            }
            for t in item.terms
        ],
        "rest_count": item.rest_count,
        "rest_sum": item.rest_sum,
        "zero_inputs": item.zero_inputs,
        "weighted_sum": item.weighted_sum,
        "bias": item.bias,
        "z": item.z,
        "activation": activation_json(item.activation, item.a, item.then),
        "output": item.output,
    }


def _conv_fields(ex: Explanation, item: ConvUnitExplanation) -> dict[str, Any]:
    o = item.unit[0]
    return {
        "terms": [
            {
                "index": t.tap,
                "where": f"w[{o}][{t.channel}][{t.u}][{t.v}] * x[{t.channel}][{t.row}][{t.col}]",
                "weight": t.weight,
                "input": t.input,
                "product": t.product,
            }
            for t in item.terms
        ],
        "rest_count": item.rest_count,
        "rest_sum": item.rest_sum,
        "zero_inputs": item.zero_inputs,
        "padded": item.padded,
        "weighted_sum": item.weighted_sum,
        "bias": item.bias,
        "z": item.z,
        "activation": activation_json(item.activation, item.a, item.then),
    }


def _pool_fields(ex: Explanation, item: PoolUnitExplanation) -> dict[str, Any]:
    return {
        "rows": list(item.rows),
        "cols": list(item.cols),
        "window": item.window,
        "chosen": None if item.chosen is None else list(item.chosen),
        "total": item.total,
        "a": item.a,
    }


def _norm_fields(ex: Explanation, item: NormUnitExplanation) -> dict[str, Any]:
    return {
        "x": item.x,
        "mean": item.mean,
        "var": item.var,
        "eps": item.eps,
        "x_hat": item.x_hat,
        "gamma": item.gamma,
        "beta": item.beta,
        "y": item.y,
        "activation": activation_json(item.activation, item.a, item.then),
    }


for _kind, _fields in (
    ("Dense", _neuron_fields),
    ("Conv2D", _conv_fields),
    ("MaxPool2D", _pool_fields),
    ("AvgPool2D", _pool_fields),
    ("BatchNorm", _norm_fields),
):
    register_page(_kind, _fields)
