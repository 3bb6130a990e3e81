"""The layer registry: a new layer type is one registry entry plus one class per backend.

``Scale`` is defined here and nowhere in the package: a = w * x elementwise, with a trained ``weight``
of the input's shape (penalized by l2/l1, like a Dense weight) and an untrained ``running_mean`` of
the inputs, which the layer updates itself in training, as batch norm does its running statistics.
Registering it in the three tables (the registry and each backend's LAYERS) is enough to build,
train, save, load, inspect and cross-check a network with it; one more registration (its explainer)
and ``explain`` explains its units, one more (its page entry) and ``scratchnet serve``'s API shows
them with their own fields. This test is the proof that nothing else in the package knows the layer
types: keep it.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from scratchnet import loops, vectorized
from scratchnet.builders import build_network, build_optimizer
from scratchnet.checks.crosscheck import cross_check, full_check, random_batch
from scratchnet.cli import main
from scratchnet.core import registry
from scratchnet.core.architecture import plan, validate
from scratchnet.core.errors import ConfigError
from scratchnet.data.images import Feeder
from scratchnet.io.manifest import check_model_architecture
from scratchnet.io.model import load_model, save
from scratchnet.loops.tensor import flatten, reshape, shape_of
from scratchnet.serve import explanation_json
from scratchnet.serve.api import Session
from scratchnet.teaching.explain import EXPLAINERS, Explanation, explain, explain_unit, format_explanation, format_unit
from scratchnet.teaching.explain_text import unit_heading
from scratchnet.teaching.explainers import CHANNEL, Explainer
from scratchnet.teaching.forward_pass import ForwardPass

MOMENTUM = 0.25


class LoopsScale:
    """a[n][i] = w[i] x[n][i]; dL/dw[i] = sum_n g[n][i] x[n][i]; dL/dx[n][i] = g[n][i] w[i]."""

    def __init__(self, input_shape: Sequence[int], momentum: float = 0.1) -> None:
        (size,) = input_shape
        self.momentum = momentum
        self.weight = [1.0 + 0.1 * i for i in range(size)]
        self.running_mean = [0.0] * size
        self.grad_weight = [0.0] * size
        self.inputs: list[list[float]] = []

    def forward(self, inputs: list[list[float]], training: bool = False) -> list[list[float]]:
        self.inputs = inputs
        if training:
            for i in range(len(self.weight)):
                mean = sum(x[i] for x in inputs) / len(inputs)
                self.running_mean[i] = (1.0 - self.momentum) * self.running_mean[i] + self.momentum * mean
        return [[w * x for w, x in zip(self.weight, row)] for row in inputs]

    def backward(self, grad_outputs: list[list[float]], need_input_grad: bool = True) -> list[list[float]]:
        self.grad_weight = [
            sum(g[i] * x[i] for g, x in zip(grad_outputs, self.inputs)) for i in range(len(self.weight))
        ]
        return [[g * w for g, w in zip(row, self.weight)] for row in grad_outputs]

    def params(self) -> dict[str, Any]:
        return {"weight": list(self.weight), "running_mean": list(self.running_mean)}

    def grads(self) -> dict[str, Any]:
        return {"weight": list(self.grad_weight)}

    def set_params(self, named: Mapping[str, Any]) -> None:
        self.weight = [float(v) for v in named["weight"]]
        self.running_mean = [float(v) for v in named["running_mean"]]

    def describe(self) -> dict[str, Any]:
        return {"type": "Scale", "momentum": self.momentum}


class VectorizedScale:
    """The same on arrays: ``weight``/``grad_weight`` attributes, so the network can share storage."""

    def __init__(self, input_shape: Sequence[int], momentum: float = 0.1, dtype: str = "float64") -> None:
        self.momentum = momentum
        self.weight = (1.0 + 0.1 * np.arange(input_shape[0])).astype(dtype)
        self.running_mean = np.zeros(tuple(input_shape), dtype)
        self.grad_weight = np.zeros_like(self.weight)
        self.inputs = np.zeros((0, *input_shape), dtype)

    def forward(self, inputs: Any, training: bool = False) -> Any:
        self.inputs = inputs
        if training:
            self.running_mean *= 1.0 - self.momentum
            self.running_mean += self.momentum * inputs.mean(axis=0)
        return inputs * self.weight

    def backward(self, grad_outputs: Any, need_input_grad: bool = True) -> Any:
        self.grad_weight[...] = (grad_outputs * self.inputs).sum(axis=0)
        return grad_outputs * self.weight

    def params(self) -> dict[str, Any]:
        return {"weight": self.weight, "running_mean": self.running_mean}

    def grads(self) -> dict[str, Any]:
        return {"weight": self.grad_weight}

    def set_params(self, named: Mapping[str, Any]) -> None:
        self.weight[...] = np.asarray(named["weight"])
        self.running_mean[...] = np.asarray(named["running_mean"])

    def describe(self) -> dict[str, Any]:
        return {"type": "Scale", "momentum": self.momentum}


SCALE = registry.LayerType(
    name="Scale",
    options=(registry.Option("momentum", "float", 0.1),),
    output_shape=lambda options, shape: shape,
    arrays=lambda options, shape: {"weight": shape, "running_mean": shape},
    untrained=("running_mean",),
    penalized=("weight",),
    shape_preserving=True,
    needs_input_shape=True,
    math="(a test layer)",
)


class LoopsFlat:
    """(N, C, H, W) -> (N, C*H*W) in C order, and back for the gradient: a layer whose input is n-D."""

    def __init__(self) -> None:
        self.shape: tuple[int, ...] = ()

    def forward(self, inputs: list[Any], training: bool = False) -> list[Any]:
        self.shape = shape_of(inputs[0])
        return [flatten(sample) for sample in inputs]

    def backward(self, grad_outputs: list[Any], need_input_grad: bool = True) -> list[Any]:
        return [reshape(row, self.shape) for row in grad_outputs]

    def params(self) -> dict[str, Any]:
        return {}

    def grads(self) -> dict[str, Any]:
        return {}

    def set_params(self, named: Mapping[str, Any]) -> None:
        assert not named

    def describe(self) -> dict[str, Any]:
        return {"type": "Flat"}


class VectorizedFlat(LoopsFlat):
    def forward(self, inputs: Any, training: bool = False) -> Any:
        self.shape = inputs.shape
        return inputs.reshape(inputs.shape[0], -1)

    def backward(self, grad_outputs: Any, need_input_grad: bool = True) -> Any:
        return grad_outputs.reshape(self.shape)


FLAT = registry.LayerType(
    name="Flat",
    options=(),
    output_shape=lambda options, shape: (math.prod(shape),),
    math="(a test layer)",
)


@pytest.fixture(autouse=True)
def scale_registered(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Scale in the registry and in both backends, for this test only: the three places of a new layer."""
    monkeypatch.setitem(registry.LAYER_TYPES, "Scale", SCALE)
    monkeypatch.setitem(loops.LAYERS, "Scale", LoopsScale)
    monkeypatch.setitem(vectorized.LAYERS, "Scale", VectorizedScale)
    monkeypatch.setitem(registry.LAYER_TYPES, "Flat", FLAT)
    monkeypatch.setitem(loops.LAYERS, "Flat", LoopsFlat)
    monkeypatch.setitem(vectorized.LAYERS, "Flat", VectorizedFlat)
    yield


def architecture(l2: float = 0.0, l1: float = 0.0) -> dict[str, Any]:
    return {
        "layers": [
            {"type": "Dense", "in_features": 4, "out_features": 6},
            {"type": "Scale", "momentum": MOMENTUM},
            {"type": "ReLU"},
            {"type": "Dense", "in_features": 6, "out_features": 3},
            {"type": "Softmax"},
        ],
        "loss": {"type": "CrossEntropy"},
        "l2": l2,
        "l1": l1,
    }


def test_the_registry_infers_the_new_layers_arrays_and_shapes() -> None:
    checked = plan(architecture())
    assert checked.input_shape == (4,) and checked.output_shape == (3,)
    assert [(a.name, a.shape, a.trained, a.penalized) for a in checked.arrays] == [
        ("0.weight", (6, 4), True, True),
        ("0.bias", (6,), True, False),
        ("1.weight", (6,), True, True),
        ("1.running_mean", (6,), False, False),
        ("3.weight", (3, 6), True, True),
        ("3.bias", (3,), True, False),
    ]
    assert checked.parameter_count == 6 * 4 + 6 + 6 + 3 * 6 + 3  # running_mean is not a parameter
    with pytest.raises(ConfigError, match="layer 1 \\(Scale\\) option 'momentum' must be float"):
        validate({**architecture(), "layers": [architecture()["layers"][0], {"type": "Scale", "momentum": "x"}]})


@pytest.mark.parametrize("l2,l1", [(0.0, 0.0), (0.01, 0.003)])
def test_both_backends_agree_on_the_new_layer_and_finite_differences_agree(l2: float, l1: float) -> None:
    results = cross_check(architecture(l2, l1), batch=5, seed=3, steps=3)
    names = {c.name for c in results}
    assert {"grad 1.weight", "after 3 steps 1.weight", "after 3 steps 1.running_mean"} <= names
    assert "grad 1.running_mean" not in names  # untrained: no gradient
    assert all(c.passed for c in results), [c for c in results if not c.passed]
    report = full_check(architecture(l2, l1), batch=3, seed=1, max_per_tensor=0)
    assert report.passed


def test_the_penalty_applies_to_the_new_layers_weight_as_the_registry_says() -> None:
    inputs, labels = random_batch(4, 3, 5, 2)
    grads = {}
    for l2 in (0.0, 0.5):
        net = build_network(architecture(l2=l2), backend="loops", seed=4)
        net.loss(net.forward(inputs), labels)
        net.backward()
        grads[l2] = net.grads()["1.weight"]
    weight = build_network(architecture(), backend="loops", seed=4).params()["1.weight"]
    assert grads[0.5] == pytest.approx([g + 0.5 * w for g, w in zip(grads[0.0], weight)], rel=1e-12)


@pytest.mark.parametrize("backend", ["loops", "vectorized"])
def test_training_updates_the_trained_array_and_leaves_the_untrained_one_to_the_layer(backend: str) -> None:
    net = build_network(architecture(), backend=backend, seed=0)
    optimizer = build_optimizer({"type": "Adam", "lr": 0.05}, backend)
    inputs, labels = random_batch(4, 3, 16, 5)
    first = None
    for _ in range(30):
        out = net.forward(inputs, training=True)
        loss = net.loss(out, labels)
        first = loss if first is None else first
        net.backward()
        before = np.array(net.params()["1.running_mean"], dtype=float)
        optimizer.step(net)
        after = np.array(net.params()["1.running_mean"], dtype=float)
        assert np.array_equal(after, before)  # the optimizer leaves the untrained array alone ...
    assert first is not None and loss < 0.5 * first
    assert np.all(after != 0.0)  # ... and the layer itself moved it
    state = optimizer.export_state()["arrays"]
    assert "1.weight.exp_avg" in state and not any(key.startswith("1.running_mean") for key in state)


@pytest.mark.parametrize("backend", ["loops", "vectorized"])
def test_a_network_with_the_new_layer_saves_loads_in_either_backend_and_inspects(
    backend: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    net = build_network(architecture(l2=0.01), backend=backend, seed=2)
    optimizer = build_optimizer({"type": "SGD", "lr": 0.1, "momentum": 0.9}, backend)
    inputs, labels = random_batch(4, 3, 8, 6)
    for _ in range(3):
        net.loss(net.forward(inputs, training=True), labels)
        net.backward()
        optimizer.step(net)
    save(net, tmp_path / "m", optimizer=optimizer, dtype="float64")
    document = json.loads((tmp_path / "m.json").read_text())
    assert document["version"] == 1  # a new layer type needs no new version (spec section 5)
    assert [entry["name"] for entry in document["parameters"]] == [
        "0.weight",
        "0.bias",
        "1.weight",
        "1.running_mean",
        "3.weight",
        "3.bias",
    ]
    assert {entry["name"] for entry in document["optimizer"]["arrays"]} == {
        f"{name}.momentum_buffer" for name in ("0.weight", "0.bias", "1.weight", "3.weight", "3.bias")
    }
    for other in ("loops", "vectorized"):
        loaded = load_model(tmp_path / "m.json", backend=other)
        for name, value in net.params().items():
            assert np.array_equal(np.asarray(loaded.network.params()[name]), np.asarray(value)), name
        assert np.array_equal(np.asarray(loaded.network.predict(inputs)), np.asarray(net.predict(inputs)))
        assert loaded.optimizer_state is not None and loaded.optimizer_state["step"] == 3
    assert main(["inspect", str(tmp_path / "m.json")]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if " Scale " in line)
    assert "weight (6,), running_mean (6,) (untrained)" in row and row.split()[-1] == "6"
    assert "total: 57 parameters in 5 arrays, 6 untrained values in 1 arrays" in out
    assert "format: scratchnet-model version 1" in out


def test_a_layer_type_without_a_backend_class_is_refused_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(vectorized.LAYERS, "Scale")
    with pytest.raises(ConfigError, match="layer 1: the vectorized backend has no Scale layer"):
        build_network(architecture(), backend="vectorized")
    assert math.isfinite(build_network(architecture(), backend="loops").penalty())


def image_architecture(in_features: int = 6) -> dict[str, Any]:
    return {
        "input_shape": [2, 1, 3],
        "layers": [
            {"type": "Flat"},
            {"type": "Dense", "in_features": in_features, "out_features": 4},
            {"type": "Tanh"},
            {"type": "Dense", "in_features": 4, "out_features": 3},
            {"type": "Softmax"},
        ],
        "loss": {"type": "CrossEntropy"},
        "l2": 0.0,
        "l1": 0.0,
    }


def test_an_n_d_input_is_inferred_through_the_layers_and_a_chain_that_does_not_fit_is_named() -> None:
    checked = plan(image_architecture())
    assert checked.input_shapes == ((2, 1, 3), (6,), (4,), (4,), (3,))
    assert checked.outline() == "2x1x3-4-3"
    with pytest.raises(ConfigError, match=r"layer 1 \(Dense\) expects 5 inputs, but the layer before gives 6"):
        plan(image_architecture(in_features=5))
    without = {key: value for key, value in image_architecture().items() if key != "input_shape"}
    with pytest.raises(ConfigError, match="needs an 'input_shape'"):
        plan(without)


def test_n_d_batches_cross_check_and_the_model_file_records_the_input_shape_in_version_2(tmp_path: Path) -> None:
    results = cross_check(image_architecture(), batch=4, seed=2, steps=2)
    assert all(c.passed for c in results), [c for c in results if not c.passed]
    assert full_check(image_architecture(), batch=3, seed=4, max_per_tensor=0).passed  # finite differences too
    net = build_network(image_architecture(), backend="vectorized", seed=1)
    inputs, _ = random_batch((2, 1, 3), 3, 5, 7)
    save(net, tmp_path / "m")
    document = json.loads((tmp_path / "m.json").read_text())
    assert document["version"] == 2 and document["architecture"]["input_shape"] == [2, 1, 3]
    loaded = load_model(tmp_path / "m.json", backend="loops")
    assert loaded.network.describe() == net.describe()
    assert loaded.network.predict(inputs) == net.predict(np.array(inputs)).tolist()
    with pytest.raises(ConfigError, match="'input_shape' needs format version 2 or later, but the file is version 1"):
        check_model_architecture(document["architecture"], version=1)
    # a plain MLP still writes version 1, which every earlier reader reads
    save(build_network(architecture(), backend="loops"), tmp_path / "mlp")
    assert json.loads((tmp_path / "mlp.json").read_text())["version"] == 1


def test_an_input_shape_the_layers_imply_is_not_written() -> None:
    given = {**architecture(), "input_shape": [4]}
    net = build_network(given, backend="loops")
    assert "input_shape" not in net.describe()
    with pytest.raises(ConfigError, match=r"layer 0 \(Dense\) expects 4 inputs, but the layer before gives 5"):
        build_network({**architecture(), "input_shape": [5]}, backend="loops")


# --- explaining it: one explainer for explain, one page entry for serve's API ---------------------


@dataclass(frozen=True)
class ScaleUnit:
    """One unit of a Scale layer explained: a[i] = w[i] * x[i]."""

    layer: int
    unit: tuple[int, ...]
    why: str
    input_name: str
    x: float
    w: float
    a: float


def explain_scale(fp: ForwardPass, index: int, p: int, why: str) -> ScaleUnit:
    """Unit p of a Scale layer, read from the loops layer's weight and the pass's values."""
    x = flatten(fp.values[index])[p]
    return ScaleUnit(
        index, (p,), why, fp.input_name(index), x, fp.layer(index).weight[p], flatten(fp.values[index + 1])[p]
    )


def format_scale(ex: Explanation, u: ScaleUnit) -> list[str]:
    return [unit_heading(ex, u), f"  a = w[{u.unit[0]}] * x = {u.w:.6g} * {u.x:.6g} = {u.a:.6g}"]


SCALE_EXPLAINER = Explainer(
    "Scale",
    name=lambda options: f"Scale(momentum {options['momentum']:g})",
    equation=("(a test layer)", "Scale.forward", "a[i] = w[i] * x[i]"),
    units=CHANNEL,
    explain=explain_scale,
    format=format_scale,
    follow=lambda fp, index, p: p,  # unit p of its input feeds unit p
    heads_block=True,  # the ReLU after it belongs to its block
    drawn=True,
)


def page_fields(ex: Explanation, u: ScaleUnit) -> dict[str, Any]:
    return {"x": u.x, "w": u.w, "a": u.a}


def image_architecture_784() -> dict[str, Any]:
    layers = architecture()["layers"]
    return {**architecture(), "layers": [{**layers[0], "in_features": 784}, *layers[1:]]}


def test_the_new_layer_is_explained_after_one_registration_of_its_explainer(monkeypatch: pytest.MonkeyPatch) -> None:
    net = build_network(architecture(), backend="loops", seed=5)
    x = [0.5, -1.0, 2.0, 0.25]
    with pytest.raises(ConfigError, match=r"explain cannot explain layer 1 \(Scale\); it explains Dense, "):
        explain(net, x)
    monkeypatch.setitem(EXPLAINERS, "Scale", SCALE_EXPLAINER)
    params = net.params()
    z = [math.fsum(w * xi for w, xi in zip(row, x)) + b for row, b in zip(params["0.weight"], params["0.bias"])]
    j = max(range(6), key=z.__getitem__)  # the Dense neuron explained (its most active): its unit of Scale follows
    ex = explain(net, x, label=2)
    (unit,) = ex.units
    assert isinstance(unit, ScaleUnit) and unit.layer == 1 and unit.unit == (j,)
    assert unit.x == pytest.approx(z[j]) and unit.w == params["1.weight"][j] and unit.a == pytest.approx(unit.w * z[j])
    assert unit.input_name == "the output of layer 0 (Dense(4, 6))"
    text = format_explanation(ex)
    assert f"Layer 1 (Scale(momentum 0.25)), channel {j}: the unit that the unit explained above feeds" in text
    assert f"  a = w[{j}] * x = {unit.w:.6g} * {z[j]:.6g} = {unit.a:.6g}" in text
    assert "it goes on to layer 1 (Scale(momentum 0.25))" in text  # the Dense neuron's z goes to the new layer
    assert re.search(r"layer 1 +Scale\(momentum 0.25\) +Scale.forward: 6 values, from ", text)
    ex, item = explain_unit(net, x, 1, [4])
    assert isinstance(item, ScaleUnit) and item.unit == (4,) and item.w == params["1.weight"][4]
    assert (
        item.x == pytest.approx(z[4])
        and item.why == "the most active unit at the chosen channel 4 (its largest output)"
    )


def test_the_page_shows_the_new_layer_after_one_registration_of_its_page_entry(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(EXPLAINERS, "Scale", SCALE_EXPLAINER)
    save(build_network(image_architecture_784(), backend="vectorized", seed=6), tmp_path / "scale")
    session = Session(str(tmp_path / "scale.json"), test_set=False)
    assert session.info()["layers"] == [
        {"index": 0, "explain": 0, "name": "Dense(784, 6)", "shape": [6]},
        {"index": 2, "explain": 1, "name": "Scale(momentum 0.25) + ReLU", "shape": [6]},  # its block
    ]
    pixels = np.zeros((28, 28), np.uint8)
    pixels[8:20, 12:16] = 255
    body = {"pixels": pixels.tolist(), "preprocess": False, "layer": 1, "unit": [3]}
    plain = session.explain(body)
    loops = load_model(tmp_path / "scale.json", backend="loops")
    inputs = Feeder.from_metadata(loops.metadata, "loops", "float64", (784,)).inputs(pixels[None])[0]
    ex, item = explain_unit(loops.network, inputs, 1, [3], class_names=session.class_names, source="the drawing")
    assert isinstance(item, ScaleUnit)
    assert plain["kind"] == "Scale" and plain["unit"] == [3] and plain["lines"] == format_unit(ex, item)
    assert plain["equation"] == {
        "number": "(a test layer)",
        "function": "Scale.forward",
        "formula": "a[i] = w[i] * x[i]",
    }
    assert "a" not in plain  # without a page entry: the fields every unit has (the page shows the printout)
    monkeypatch.setitem(explanation_json.PAGE, "Scale", page_fields)
    shown = session.explain(body)
    assert (shown["x"], shown["w"], shown["a"]) == (item.x, item.w, item.a) and item.a == item.w * item.x
    relu = session.predict({"pixels": pixels.tolist(), "preprocess": False})["layers"][1]
    assert relu["index"] == 2 and relu["values"][3] == pytest.approx(max(0.0, item.a), rel=1e-3, abs=1e-6)
