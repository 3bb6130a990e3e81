"""Architectures as plain data: validating them, inferring every layer's shapes, and the MLP builder.

An architecture is a dict such as::

    {"layers": [{"type": "Dense", "in_features": 784, "out_features": 128, "init": "he_normal"},
                {"type": "ReLU"},
                {"type": "Dense", "in_features": 128, "out_features": 10, "init": "he_normal"},
                {"type": "Softmax"}],
     "loss": {"type": "CrossEntropy"}, "l2": 0.0, "l1": 0.0}

with an optional ``"input_shape"`` (one sample's shape, e.g. ``[1, 28, 28]``), needed when the layers
do not imply it (a Dense first layer implies ``[in_features]``). A network that reads token ids
(a language model) also has ``"vocabulary": V`` (its ids are 0..V-1) and ``"input_shape": [T]``, the
longest sequence it reads; its first layer is an Embedding of V ids, and its output has one row of
scores per position, ``(T, classes)`` (spec/math.md, section 16). Layer types are looked up in the
registry (never by ``getattr`` on a name read from a file). Standard library only; building a
network from an architecture is :mod:`scratchnet.builders`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from scratchnet.core.bounds import MAX_CLASSES, MAX_LAYERS, MAX_PARAMETERS, check_count, check_shape
from scratchnet.core.errors import ConfigError, quoted_list
from scratchnet.core.loss_options import check_loss, loss_description
from scratchnet.core.registry import Shape, describe_shape, layer_type, options_of, output_for_loss
from scratchnet.core.walk import array_name

ACTIVATION_LAYERS = {
    "relu": "ReLU",
    "leaky_relu": "LeakyReLU",
    "sigmoid": "Sigmoid",
    "tanh": "Tanh",
    "identity": "Identity",
}
LOSSES = {"cross_entropy": "CrossEntropy", "mse": "MeanSquaredError", "bce": "BinaryCrossEntropy"}
FIELDS = ("layers", "loss", "l2", "l1", "input_shape", "vocabulary")
MNIST_SIDE = 28
MNIST_PIXELS = MNIST_SIDE * MNIST_SIDE
DTYPES = ("float32", "float64")  # what a vectorized network computes in and a model file stores


@dataclass(frozen=True)
class ArrayInfo:
    """One array of a network: its name ``"<layer index>.<name>"``, shape, and whether the optimizer
    trains it, the l2/l1 penalties apply to it, and its values must be >= 0 (a variance)."""

    name: str
    shape: Shape
    trained: bool
    penalized: bool
    non_negative: bool = False


@dataclass(frozen=True)
class Plan:
    """A checked architecture with everything inferred from it before anything is allocated: each
    layer's full options (defaults filled in), input shape and output shape, and every array."""

    description: dict[str, Any]
    options: tuple[dict[str, Any], ...]
    input_shapes: tuple[Shape, ...]
    output_shape: Shape
    arrays: tuple[ArrayInfo, ...]

    @property
    def input_shape(self) -> Shape:
        return self.input_shapes[0]

    @property
    def classes(self) -> int:
        """The number of scores per sample (per position of a sequence: its output is (T, classes))."""
        return self.output_shape[-1]

    @property
    def vocabulary(self) -> int | None:
        """The number of token ids a token network reads (ids 0..vocabulary-1), else None."""
        value = self.description.get("vocabulary")
        return None if value is None else int(value)

    @property
    def parameter_count(self) -> int:
        """The number of trained numbers (weights and biases)."""
        return sum(math.prod(array.shape) for array in self.arrays if array.trained)

    def layers(self) -> list[tuple[str, dict[str, Any], Shape]]:
        """Each layer's type, its full options and its input shape, in network order."""
        return [
            (layer["type"], options, shape)
            for layer, options, shape in zip(self.description["layers"], self.options, self.input_shapes)
        ]

    def shapes(self) -> dict[str, Shape]:
        """Every array's shape by name, in network order."""
        return {array.name: array.shape for array in self.arrays}

    def outline(self) -> str:
        """The input shape and the output shape of every layer with arrays, e.g. ``784-128-10`` for an
        MLP (a shape of several axes reads ``1x28x28``)."""
        with_arrays = {int(array.name.split(".", 1)[0]) for array in self.arrays}
        shapes = [self.input_shape] + [self.output_of(index) for index in sorted(with_arrays)]
        return "-".join("x".join(map(str, shape)) for shape in shapes)

    def output_of(self, index: int) -> Shape:
        """The output shape of layer ``index``."""
        return self.input_shapes[index + 1] if index + 1 < len(self.input_shapes) else self.output_shape


def default_sample(input_shape: Shape) -> tuple[str, Shape]:
    """What one sample is for a network of ``input_shape`` whose model does not record it (an
    imported model, or one saved before the metadata said): ``("image", (28, 28))`` for 784 inputs
    (MNIST's models), ``("features", (F,))`` for any other row of F values, and an image of the
    network's (channels, height, width) otherwise (``(H, W)`` when it has one channel)."""
    if input_shape == (MNIST_PIXELS,):
        return "image", (MNIST_SIDE, MNIST_SIDE)
    if len(input_shape) == 1:
        return "features", input_shape
    if len(input_shape) == 3 and input_shape[0] == 1:
        return "image", input_shape[1:]
    return "image", input_shape


def validate(description: Mapping[str, Any]) -> dict[str, Any]:
    """Check an architecture's structure, option types and values; return it as a plain dict
    (ConfigError otherwise). :func:`plan` also checks that the layers fit together."""
    if not isinstance(description, Mapping):
        raise ConfigError("an architecture is an object with 'layers' and 'loss'")
    unknown = set(description) - set(FIELDS)
    if unknown:
        raise ConfigError(f"unknown architecture fields {quoted_list(sorted(unknown))}")
    layers = description.get("layers")
    if not isinstance(layers, list) or not layers:
        raise ConfigError("'layers' must be a non-empty list")
    if len(layers) > MAX_LAYERS:
        raise ConfigError(f"the architecture has {len(layers)} layers, more than the limit of {MAX_LAYERS}")
    for index, layer in enumerate(layers):
        if not isinstance(layer, Mapping) or not isinstance(layer.get("type"), str):
            raise ConfigError(f"layer {index} must be an object with a string 'type'")
        try:
            layer_type(layer["type"])
        except ConfigError as error:
            raise ConfigError(f"layer {index} has {error}") from None
        options_of(layer, f"layer {index}")
    total = count_layers(layers)
    if total > MAX_LAYERS:
        raise ConfigError(f"the architecture has {total} layers, more than the limit of {MAX_LAYERS}")
    check_loss(description.get("loss"))  # its type and options (scratchnet.core.loss_options)
    for key in ("l2", "l1"):
        value = description.get(key, 0.0)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0.0 <= value < math.inf:
            raise ConfigError(f"penalties must be finite numbers >= 0, got {key}={value!r}")
    if "input_shape" in description:
        shape = description["input_shape"]
        if (
            not isinstance(shape, (list, tuple))
            or not shape
            or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in shape)
        ):
            raise ConfigError(f"'input_shape' must be a non-empty list of positive integers, got {shape!r:.80}")
        check_shape(shape, "'input_shape' has")
    if "vocabulary" in description:
        vocabulary = description["vocabulary"]
        if not _is_integer(vocabulary) or vocabulary < 1:
            raise ConfigError(f"'vocabulary' must be a positive integer, got {vocabulary!r:.80}")
    return dict(description)


def _is_integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_tokens(description: Mapping[str, Any], input_shape: Shape) -> None:
    """A token network (``"vocabulary"`` given) reads (T,) ids into a first Embedding of that many
    ids; a layer that reads tokens stands first in a token network only (ConfigError otherwise)."""
    vocabulary = description.get("vocabulary")
    for index, layer in enumerate(description["layers"]):
        if layer_type(layer["type"]).reads_tokens and (index > 0 or vocabulary is None):
            where = "first layer of a network" if index > 0 else "network"
            raise ConfigError(
                f"layer {index} ({layer['type']}) reads token ids: it must be the {where} with a 'vocabulary'"
            )
    if vocabulary is None:
        return
    first = description["layers"][0]
    if not layer_type(first["type"]).reads_tokens:
        raise ConfigError(
            f"a network with a 'vocabulary' reads token ids: its first layer must read them, not {first['type']}"
        )
    if len(input_shape) != 1:
        raise ConfigError(f"a token network's 'input_shape' is [T], its longest sequence, got {list(input_shape)}")
    options = options_of(first, "layer 0")
    if options.get("num_embeddings") != vocabulary:
        raise ConfigError(
            f"layer 0 ({first['type']}) holds {options.get('num_embeddings')} ids, but the vocabulary has {vocabulary}"
        )


def implied_input_shape(layers: Sequence[Mapping[str, Any]]) -> Shape | None:
    """The input shape the layers fix by themselves: that of the first layer whose type implies one
    (a Dense layer's ``(in_features,)``), provided only shape-preserving layers come before it."""
    for index, layer in enumerate(layers):
        entry = layer_type(layer["type"])
        if entry.implied_input is not None:
            return entry.implied_input(options_of(layer, f"layer {index}"))
        if not entry.shape_preserving:
            return None
    return None


def plan(description: Mapping[str, Any]) -> Plan:
    """Validate ``description`` and infer every layer's shapes and arrays from its input shape;
    a chain that does not fit, or that leaves the bounds of :mod:`scratchnet.core.bounds` (checked
    here, from the integers alone, before anything is allocated), is a ConfigError naming the layer."""
    description = validate(description)
    layers = description["layers"]
    implied = implied_input_shape(layers)
    given = description.get("input_shape")
    shape: Shape
    if given is not None:
        shape = tuple(given)
    elif implied is not None:
        shape = implied
    else:
        raise ConfigError("the architecture needs an 'input_shape': its layers do not imply one")
    check_shape(shape, "the input has")
    check_tokens(description, shape)
    all_options: list[dict[str, Any]] = []
    input_shapes: list[Shape] = []
    arrays: list[ArrayInfo] = []
    for index, layer in enumerate(layers):
        options = options_of(layer, f"layer {index}")
        output = _place((index,), layer, options, shape, arrays)
        all_options.append(options)
        input_shapes.append(shape)
        shape = output
    loss = description["loss"]["type"]
    needed = output_for_loss(loss)
    last = layers[-1]["type"]
    if needed is not None and last != needed:
        raise ConfigError(f"{loss} reads the logits of a final {needed} layer, but the last layer is {last}")
    sequence = "vocabulary" in description and len(shape) == 2  # one row of scores per position
    if len(shape) != 1 and not sequence:
        raise ConfigError(
            f"the network's output must be one row of scores per sample, got shape {describe_shape(shape)}"
        )
    check_count(sum(math.prod(array.shape) for array in arrays), MAX_PARAMETERS, "numbers in its arrays")
    check_count(shape[-1], MAX_CLASSES, "outputs per sample (classes)")  # (classes,) or (T, classes)
    if sequence and loss != "CrossEntropy":
        raise ConfigError(f"a sequence of scores per sample is trained with CrossEntropy, not {loss}")
    return Plan(description, tuple(all_options), tuple(input_shapes), shape, tuple(arrays))


def _place(
    path: tuple[int, ...], layer: Mapping[str, Any], options: dict[str, Any], shape: Shape, arrays: list[ArrayInfo]
) -> Shape:
    """The output shape of the layer at ``path`` on inputs of ``shape``, its arrays (and those of the
    layers it holds, when it is a container, named by their paths) appended to ``arrays``;
    ConfigError naming the layer by its path (``layer 3.1 (Dense) expects ...``)."""
    entry = layer_type(layer["type"])
    where = f"layer {'.'.join(map(str, path))} ({entry.name})"
    if entry.reads_tokens and len(path) > 1:
        raise ConfigError(f"{where} reads token ids: it must be the first layer of a network with a 'vocabulary'")
    if entry.children is not None:
        inner = shape
        for index, child in enumerate(entry.children(options)):
            child_path = (*path, index)
            inner = _place(
                child_path, child, options_of(child, f"layer {'.'.join(map(str, child_path))}"), inner, arrays
            )
    try:
        output = tuple(entry.output_shape(options, shape))
    except ConfigError as error:
        raise ConfigError(f"{where} {error}") from None
    check_shape(output, f"{where} gives")
    for name, array_shape in entry.arrays(options, shape).items():
        arrays.append(
            ArrayInfo(
                array_name(path, name),
                tuple(array_shape),
                trained=name not in entry.untrained,
                penalized=name in entry.penalized,
                non_negative=name in entry.non_negative,
            )
        )
    return output


def count_layers(layers: Sequence[Mapping[str, Any]]) -> int:
    """The number of layers in ``layers``, those inside containers included."""
    total = 0
    for layer in layers:
        total += 1
        entry = layer_type(layer.get("type"))
        if entry.children is not None:
            total += count_layers(entry.children(options_of(layer, "a layer")))
    return total


def canonical(description: Mapping[str, Any]) -> dict[str, Any]:
    """``description`` with ``input_shape`` as a list, or without it when the layers imply that shape."""
    result = dict(description)
    given = result.pop("input_shape", None)
    if given is not None and tuple(given) != implied_input_shape(result["layers"]):
        result["input_shape"] = list(given)
    return result


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
    label_smoothing: float = 0.0,
) -> dict[str, Any]:
    """The architecture of a multilayer perceptron with layer widths ``sizes`` (inputs first).

    Hidden layers use ``activation`` (then dropout when ``dropout`` > 0). The final layer is
    Softmax for cross-entropy, Sigmoid for binary cross-entropy, and ``output`` for mean squared error.
    ``label_smoothing`` (cross-entropy only) is written into the loss when not 0 (eq. 5.7).
    """
    if len(sizes) < 2 or any(int(size) != size or size < 1 for size in sizes):
        raise ConfigError(f"layer sizes must be at least two positive integers, got {list(sizes)}")
    for name, table in (("activation", ACTIVATION_LAYERS), ("loss", LOSSES), ("output", ACTIVATION_LAYERS)):
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
            layers.append({"type": ACTIVATION_LAYERS[activation]})
            if dropout > 0.0:
                layers.append({"type": "Dropout", "rate": float(dropout)})
    loss_type = LOSSES[loss]
    layers.append({"type": output_for_loss(loss_type) or ACTIVATION_LAYERS[output]})
    loss_spec = loss_description(loss_type, label_smoothing=label_smoothing)
    return validate({"layers": layers, "loss": loss_spec, "l2": float(l2), "l1": float(l1)})
