"""``POST /api/train/inspect``: one weight of a paused run, its gradient as the chain rule with the
actual numbers, and what the optimizer's next step does to it.

The chain rule is ``scratchnet explain --backward``'s, by the loops backend in float64 on the
run's chosen sample (:mod:`scratchnet.teaching.explain_backward`, with each row's equation number
of spec/math.md), with its central finite difference. The update is the optimizer's own: a twin of
the run's network (same backend and dtype, the run's parameters) and a twin of its optimizer (its
exported state, its rate) take the run's next batch, so the run itself is not touched. A network
with dropout draws its masks afresh in the twin: its update can differ from the run's next step.
"""

from __future__ import annotations

import copy
import re
from dataclasses import replace
from typing import Any

import numpy as np

from scratchnet.builders import build_network, build_optimizer
from scratchnet.core.errors import ScratchnetError
from scratchnet.loops.tensor import flatten
from scratchnet.serve.api import RequestError, check_fields, whole
from scratchnet.serve.train_session import TrainRun
from scratchnet.teaching.backward_pass import BackwardPass, finite_difference, run_backward, value_at, weight_name
from scratchnet.teaching.backward_rules import dense_parameter, next_layer, where_from
from scratchnet.teaching.explain import as_network_input, forward_values
from scratchnet.teaching.explain_backward import check_backward, explain_backward
from scratchnet.teaching.explainers import explainer_of

MAX_INSPECTED = 300_000  # parameters of a network the loops backend differentiates for one click
EQUATION = re.compile(r"^\s*\((\d+(?:\.\d+)?(?:[-,] ?\d+(?:\.\d+)?)*)\)")


def inspect(run: TrainRun, body: Any, sample: tuple[str, int]) -> dict[str, Any]:
    """The answer of an inspect request on ``run`` (paused, finished or stopped)."""
    fields = check_fields(body, {"parameter", "index"}, required={"parameter", "index"})
    with run.condition:
        if run.status == "running" or run.steps_left:
            raise RequestError("the run is running: pause it before inspecting a weight", 409)
        if run.parameters > MAX_INSPECTED:
            raise RequestError(
                f"the network has {run.parameters} parameters; inspect differentiates networks of at most "
                f"{MAX_INSPECTED} with the loops backend",
                422,
            )
        params = {name: np.array(value) for name, value in run.network.params().items()}
        grads = run.network.grads()
        name, index = parameter_of(fields, params, set(grads))
        optimizer_state = copy.deepcopy(run.optimizer.export_state())
        optimizer_spec = run.optimizer.describe()
        lr = run.optimizer.lr
        loop = run.loop
        batch = None if loop.finished else (loop.state.epoch, loop.state.step)
    split, at = sample
    images, labels = (
        (run.split.test_images, run.split.test_labels)
        if split == "test"
        else (run.split.train_images, run.split.train_labels)
    )
    label = int(labels[at])
    answer: dict[str, Any] = {
        "parameter": name,
        "index": list(index),
        "value": float(params[name][index]),
        "sample": {"split": split, "index": at, "label": label},
        "chain": chain(run, params, name, index, images[at], label, f"{split} sample {at}"),
        "update": None,
    }
    if batch is not None:
        answer["update"] = update(run, params, optimizer_spec, optimizer_state, lr, name, index, batch)
    return answer


def parameter_of(fields: dict[str, Any], params: dict[str, Any], trained: set[str]) -> tuple[str, tuple[int, ...]]:
    name = fields["parameter"]
    if not isinstance(name, str) or name not in trained:
        raise RequestError(f"'parameter' must be one of the trained arrays {', '.join(sorted(trained))}")
    shape = params[name].shape
    given = fields["index"]
    if not isinstance(given, list) or len(given) != len(shape):
        raise RequestError(f"'index' must be a list of {len(shape)} whole numbers: {name} has shape {list(shape)}")
    index = tuple(whole(k, "index", 0, size - 1) for k, size in zip(given, shape))
    return name, index


def chain(
    run: TrainRun, params: dict[str, Any], name: str, index: tuple[int, ...], image: Any, label: int, source: str
) -> dict[str, Any]:
    """The gradient of the loss of one sample by the loops backend: the printout, its rows, the value
    and the finite difference."""
    twin: Any = build_network(run.architecture, backend="loops", seed=run.request.seed)
    twin.set_params({key: value.tolist() for key, value in params.items()})
    feeder = replace(run.feeder, backend="loops", dtype="float64")
    x = as_network_input(twin, feeder.inputs(np.asarray(image)[None])[0])
    try:
        check_backward(twin)
        lines = explain_backward(
            twin, x, label, weight=weight_name(name, index), class_names=run.data.class_names, source=source
        ).split("\n")
    except ScratchnetError as error:
        raise RequestError(str(error)) from None
    bp = run_backward(twin, x, label, forward_values(twin, x))
    gradient = value_at(bp.grads[name], index)
    difference, h = finite_difference(bp, x, name, index)
    layer = next(
        site.index
        for site in bp.sites
        if name.startswith(site.prefix + ".") and "." not in name[len(site.prefix) + 1 :]
    )
    array = name[len(bp.sites[layer].prefix) + 1 :]
    rule = explainer_of(bp.kind(layer)).backward
    rows: list[dict[str, Any]] = []
    if rule is not None and rule.parameter is not None:
        found, _ = rule.parameter(bp, layer, array, index)
        equation = None
        for text, value in found:  # a row without its own number is part of the equation above it
            equation = equation_of(text) or equation
            rows.append({"text": text.strip(), "value": value, "equation": equation})
    factors = (
        dense_factors(bp, layer, index, gradient) if rule is not None and rule.parameter is dense_parameter else []
    )
    return {
        "gradient": gradient,
        "finite_difference": difference,
        "h": h,
        "loss": bp.loss,
        "layer": layer,
        "rows": rows,
        "factors": factors,
        "lines": lines,
    }


def dense_factors(bp: BackwardPass, layer: int, index: tuple[int, ...], gradient: float) -> list[dict[str, Any]]:
    """The factors of a Dense weight's gradient, ``dL/dw_ji = delta_j * a_i`` (3.2) (of a bias,
    ``dL/db_j = delta_j``, 3.3), with ``delta_j = (sum_k w_kj delta_k) * f'(z_j)`` (3.4, then the
    activation's derivative) when an elementwise activation follows the layer."""
    j = index[0]
    _, delta = where_from(bp, layer, j)
    factors = [{"symbol": "delta_j", "value": delta, "equation": "6.1"}]  # the loss's gradient, unless ...
    if len(index) == 2:
        factors.append({"symbol": "a_i", "value": flatten(bp.values[layer])[index[1]], "equation": "3.2"})
    after = next_layer(bp, layer)
    activation = None if after is None else explainer_of(bp.kind(after)).activation
    if after is not None and after != bp.fused_last and activation is not None and activation.elementwise:
        z, a = flatten(bp.values[after])[j], flatten(bp.values[after + 1])[j]
        upstream = flatten(bp.arrives[after])[j]
        factors[0]["equation"] = "4"  # ... an activation sends it back (Elementwise.backward)
        factors.append({"symbol": "sum_k w_kj delta_k", "value": upstream, "equation": "3.4"})
        factors.append(
            {"symbol": "f'(z_j)", "value": bp.layer(after).derivative(z, a), "equation": activation.equation}
        )
    name = "dL/dw_ji" if len(index) == 2 else "dL/db_j"
    factors.append({"symbol": name, "value": gradient, "equation": "3.2" if len(index) == 2 else "3.3"})
    return factors


def equation_of(text: str) -> str | None:
    match = EQUATION.match(text)
    return match.group(1) if match else None


def update(
    run: TrainRun,
    params: dict[str, Any],
    spec: dict[str, Any],
    state: dict[str, Any],
    lr: float,
    name: str,
    index: tuple[int, ...],
    batch: tuple[int, int],
) -> dict[str, Any]:
    """The next step's batch gradient of the weight and the optimizer's change of it, by twins."""
    backend = run.request.backend
    twin: Any = build_network(run.architecture, backend=backend, dtype=run.config.dtype, seed=run.request.seed)
    twin.set_params({key: value.tolist() if backend == "loops" else value for key, value in params.items()})
    optimizer: Any = build_optimizer({**spec, "lr": lr}, backend)
    optimizer.import_state(copy.deepcopy(state))
    optimizer.lr = lr
    epoch, step = batch
    inputs, targets, size = run.loop.batches.batch(epoch, step)
    with np.errstate(all="ignore"):
        outputs = twin.forward(inputs, training=True)
        loss = twin.loss(outputs, targets)
        twin.backward()
        gradient = value_at(twin.grads()[name], index)
        slots_before = slots_of(optimizer.export_state(), name, index)
        optimizer.step(twin)
    after = float(np.asarray(twin.params()[name], dtype=np.float64)[index])
    before = float(params[name][index])
    exported = optimizer.export_state()
    answer: dict[str, Any] = {
        "optimizer": spec.get("type"),
        "batch": {"epoch": epoch, "step": step, "size": size, "loss": float(loss)},
        "gradient": gradient,
        "lr": lr,
        "t": exported.get("step"),
        "slots": {
            slot: {"before": slots_before.get(slot), "after": value}
            for slot, value in slots_of(exported, name, index).items()
        },
        "step": after - before,
        "new_value": after,
    }
    if spec.get("type") in ("Adam", "AdamW"):
        answer.update(adam_terms(spec, answer))
    elif spec.get("type") == "SGD" and "momentum_buffer" in answer["slots"]:
        answer["velocity"] = answer["slots"]["momentum_buffer"]["after"]
    return answer


def slots_of(state: dict[str, Any], name: str, index: tuple[int, ...]) -> dict[str, float]:
    """The optimizer's per-weight values for one weight: ``{slot: value}``."""
    found = {}
    for key, array in state.get("arrays", {}).items():
        if key.startswith(name + ".") and "." not in key[len(name) + 1 :]:
            found[key[len(name) + 1 :]] = float(np.asarray(array, dtype=np.float64)[index])
    return found


def adam_terms(spec: dict[str, Any], answer: dict[str, Any]) -> dict[str, Any]:
    """m, v, their bias corrections (eq. 8.11-8.13) of the step just taken."""
    beta1, beta2 = spec.get("betas", (0.9, 0.999))
    t = int(answer["t"])
    m = answer["slots"].get("exp_avg", {}).get("after")
    v = answer["slots"].get("exp_avg_sq", {}).get("after")
    if m is None or v is None:
        return {}
    return {
        "m": answer["slots"]["exp_avg"],
        "v": answer["slots"]["exp_avg_sq"],
        "betas": [beta1, beta2],
        "eps": spec.get("eps", 1e-8),
        "m_hat": m / (1.0 - beta1**t),
        "v_hat": v / (1.0 - beta2**t),
    }
