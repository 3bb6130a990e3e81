"""Architectures as plain data, and building a network from one in either backend.

An architecture is a dict such as::

    {"layers": [{"type": "Dense", "in_features": 784, "out_features": 128, "init": "he_normal"},
                {"type": "ReLU"},
                {"type": "Dense", "in_features": 128, "out_features": 10, "init": "he_normal"},
                {"type": "Softmax"}],
     "loss": {"type": "CrossEntropy"}, "l2": 0.0, "l1": 0.0}

Layer and loss types are looked up in a closed table (never by ``getattr`` on a name read from a
file). This module needs only the standard library; a backend is imported when it is asked for.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Mapping, Sequence
from types import ModuleType
from typing import Any

from scratchnet.errors import ConfigError
from scratchnet.rng import derive_seed

BACKENDS = ("vectorized", "loops")
ACTIVATIONS = {"relu": "ReLU", "leaky_relu": "LeakyReLU", "sigmoid": "Sigmoid", "tanh": "Tanh", "identity": "Identity"}
LOSSES = {"cross_entropy": "CrossEntropy", "mse": "MeanSquaredError", "bce": "BinaryCrossEntropy"}
OUTPUT_FOR_LOSS = {"CrossEntropy": "Softmax", "BinaryCrossEntropy": "Sigmoid"}

# Every layer type a file may name, with the options it takes (name: (type, required)).
LAYER_OPTIONS: dict[str, dict[str, tuple[type, bool]]] = {
    "Dense": {"in_features": (int, True), "out_features": (int, True), "init": (str, False)},
    "Dropout": {"rate": (float, True), "seed": (int, False)},
    "ReLU": {},
    "LeakyReLU": {"alpha": (float, False)},
    "Sigmoid": {},
    "Tanh": {},
    "Identity": {},
    "Softmax": {},
}
LOSS_TYPES = ("CrossEntropy", "MeanSquaredError", "BinaryCrossEntropy")


def backend_module(backend: str) -> ModuleType:
    """``scratchnet.loops`` or ``scratchnet.vectorized``."""
    if backend not in BACKENDS:
        raise ConfigError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    return importlib.import_module(f"scratchnet.{backend}")


def check_architecture(layers: Sequence[Any], loss: Any, l2: float, l1: float) -> None:
    """Raise ConfigError unless the layers fit together and can feed the loss."""
    if not layers:
        raise ConfigError("a network needs at least one layer")
    fused = loss.fused_activation
    if fused is not None and type(layers[-1]).__name__ != fused:
        raise ConfigError(
            f"{type(loss).__name__} reads the logits of a final {fused} layer, "
            f"but the last layer is {type(layers[-1]).__name__}"
        )
    if not (0.0 <= l2 < math.inf and 0.0 <= l1 < math.inf):
        raise ConfigError(f"penalties must be finite numbers >= 0, got l2={l2}, l1={l1}")
    width = None
    for index, layer in enumerate(layers):
        in_features = getattr(layer, "in_features", None)
        if in_features is not None:
            if width is not None and in_features != width:
                raise ConfigError(f"layer {index} expects {in_features} inputs, but the layer before gives {width}")
            width = layer.out_features


def validate(description: Mapping[str, Any]) -> dict[str, Any]:
    """Check an architecture's structure and types; return it as a plain dict (ConfigError otherwise)."""
    if not isinstance(description, Mapping):
        raise ConfigError("an architecture is an object with 'layers' and 'loss'")
    unknown = set(description) - {"layers", "loss", "l2", "l1"}
    if unknown:
        raise ConfigError(f"unknown architecture fields {sorted(unknown)}")
    layers = description.get("layers")
    if not isinstance(layers, list) or not layers:
        raise ConfigError("'layers' must be a non-empty list")
    for index, layer in enumerate(layers):
        if not isinstance(layer, Mapping) or not isinstance(layer.get("type"), str):
            raise ConfigError(f"layer {index} must be an object with a string 'type'")
        kind = layer["type"]
        if kind not in LAYER_OPTIONS:
            raise ConfigError(f"layer {index} has unknown type {kind!r}; known types: {', '.join(LAYER_OPTIONS)}")
        options = LAYER_OPTIONS[kind]
        for key, value in layer.items():
            if key == "type":
                continue
            if key not in options:
                raise ConfigError(f"layer {index} ({kind}) has unknown option {key!r}")
            expected = options[key][0]
            ok = isinstance(value, (int, float)) if expected is float else isinstance(value, expected)
            if not ok or isinstance(value, bool):
                raise ConfigError(f"layer {index} ({kind}) option {key!r} must be {expected.__name__}, got {value!r}")
        for key, (_, required) in options.items():
            if required and key not in layer:
                raise ConfigError(f"layer {index} ({kind}) needs option {key!r}")
    loss = description.get("loss")
    if not isinstance(loss, Mapping) or loss.get("type") not in LOSS_TYPES or set(loss) != {"type"}:
        raise ConfigError(f"'loss' must be an object {{\"type\": one of {', '.join(LOSS_TYPES)}}}, got {loss!r}")
    for key in ("l2", "l1"):
        value = description.get(key, 0.0)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0.0 <= value < math.inf:
            raise ConfigError(f"'{key}' must be a finite number >= 0, got {value!r}")
    return dict(description)


def build_network(
    description: Mapping[str, Any], *, backend: str = "vectorized", dtype: str = "float64", seed: int = 0
) -> Any:
    """A network of ``backend`` with the architecture ``description``; Dense layer i is initialised
    from ``derive_seed(seed, i)``. The loops backend computes in float64 whatever ``dtype`` says."""
    description = validate(description)
    module = backend_module(backend)
    layers: list[Any] = []
    for index, spec in enumerate(description["layers"]):
        options = {key: value for key, value in spec.items() if key != "type"}
        kind = spec["type"]
        if kind == "Dense":
            extra = {"dtype": dtype} if backend == "vectorized" else {}
            layers.append(module.Dense(seed=derive_seed(seed, index), **options, **extra))
        elif kind == "Dropout":
            options.setdefault("seed", derive_seed(seed, index))
            layers.append(module.Dropout(float(options.pop("rate")), **options))
        elif kind == "LeakyReLU":
            layers.append(module.LeakyReLU(float(options.get("alpha", 0.01))))
        else:
            layers.append(getattr(module, kind)())  # kind was checked against LAYER_OPTIONS above
    loss = getattr(module, description["loss"]["type"])()  # checked against LOSS_TYPES above
    return module.Network(layers, loss, l2=float(description.get("l2", 0.0)), l1=float(description.get("l1", 0.0)))


def mlp(
    sizes: Sequence[int],
    *,
    activation: str = "relu",
    loss: str = "cross_entropy",
    output: str = "identity",
    dropout: float = 0.0,
    init: str | None = None,
    l2: float = 0.0,
    l1: float = 0.0,
) -> dict[str, Any]:
    """The architecture of a multilayer perceptron with layer widths ``sizes`` (inputs first).

    Hidden layers use ``activation`` (then dropout when ``dropout`` > 0). The final layer is
    Softmax for cross-entropy, Sigmoid for binary cross-entropy, and ``output`` for mean squared error.
    """
    if len(sizes) < 2 or any(int(size) != size or size < 1 for size in sizes):
        raise ConfigError(f"layer sizes must be at least two positive integers, got {list(sizes)}")
    for name, table in (("activation", ACTIVATIONS), ("loss", LOSSES), ("output", ACTIVATIONS)):
        value = {"activation": activation, "loss": loss, "output": output}[name]
        if value not in table:
            raise ConfigError(f"unknown {name} {value!r}; choose one of {', '.join(table)}")
    if not 0.0 <= dropout < 1.0:
        raise ConfigError(f"dropout rate must be in [0, 1), got {dropout}")
    if init is None:
        init = "he_normal" if activation in ("relu", "leaky_relu") else "glorot_normal"
    layers: list[dict[str, Any]] = []
    for index, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append({"type": "Dense", "in_features": int(fan_in), "out_features": int(fan_out), "init": init})
        if index < len(sizes) - 2:
            layers.append({"type": ACTIVATIONS[activation]})
            if dropout > 0.0:
                layers.append({"type": "Dropout", "rate": float(dropout)})
    loss_type = LOSSES[loss]
    layers.append({"type": OUTPUT_FOR_LOSS.get(loss_type, ACTIVATIONS[output])})
    return validate({"layers": layers, "loss": {"type": loss_type}, "l2": float(l2), "l1": float(l1)})
