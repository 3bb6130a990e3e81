"""The layer registry: every layer type a network or a model file may name, described as data.

Each entry says what a layer type is: its options (with types and defaults), the arrays it holds as
a function of its options and its input shape, which of them are trained, which the l2/l1 penalties
apply to, its output shape given its input shape, the loss it is fused with when it ends a network,
and its section of spec/math.md. Validation, building, the model-file checks, the cross-check, the
command line and the teaching tools all ask this table; nothing else knows the layer types. (How the
teaching tools show a type is its explainer, in :mod:`scratchnet.teaching.explainers`, keyed by
these names; the exporters and importers of :mod:`scratchnet.interop` are tables keyed the same way.)

Shapes are per sample, without the batch axis: ``(784,)`` for a flat image, ``(1, 28, 28)`` for
one channel of 28x28. A new layer type is one :func:`register` call here (or by the user) plus one
class in each backend's ``LAYERS`` table. Standard library only.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from scratchnet.core.bounds import MAX_NESTING, MAX_SIZE, option_problem
from scratchnet.core.errors import ConfigError
from scratchnet.core.init import INITIALIZERS

Shape = tuple[int, ...]
"""The shape of one sample, without the batch axis."""

REQUIRED: Any = object()
"""The default of an option that must be given."""

SEED_MAXIMUM = (1 << 64) - 1  # a seed is a 64-bit integer (scratchnet.core.rng), not a size

# The kinds an option may have, and the Python values each accepts from a description.
OPTION_KINDS = ("int", "float", "str", "pair", "bool", "layers")


@dataclass(frozen=True)
class Option:
    """One option of a layer type: its name, kind, default, and an optional check of its value.

    ``kind`` is ``"int"``, ``"float"`` (an int is accepted and converted), ``"str"``, ``"bool"``
    (true or false), ``"pair"``: an int, or a list of two ints for (height, width), given to the
    layer as a tuple of two ints, or ``"layers"``: a non-empty list of layer descriptions, each
    checked as a layer is (a container's layers; the builder gives the class those layers, built).
    ``check`` returns why a value is invalid (a phrase that names the option), or None. A default of
    None means "not set": the builder fills it (a Dropout's seed is derived from the network's seed),
    or, with ``default_from``, it takes the value of that other option (a pool's stride is its kernel
    size unless given). Every int (and each of a pair) is at most ``maximum`` in magnitude, and every
    float is finite (:mod:`scratchnet.core.bounds`): a size, a window or a count a new layer type
    adds is bounded without a check of its own.
    """

    name: str
    kind: str
    default: Any = REQUIRED
    check: Callable[[Any], str | None] | None = None
    default_from: str | None = None
    maximum: int = MAX_SIZE

    @property
    def required(self) -> bool:
        return self.default is REQUIRED


@dataclass(frozen=True)
class LayerType:
    """What a layer type is. The functions take the layer's options (every option, defaults filled
    in, as :func:`options_of` gives them) and, where named, its input shape.

    - ``arrays(options, input_shape)``: name -> shape of every array the layer holds, trained or not,
      in the order the network lists them (``"<layer index>.<name>"``).
    - ``output_shape(options, input_shape)``: the layer's output shape; raises ConfigError (without
      the layer's index, which the caller adds) when the input shape does not fit.
    - ``untrained``: arrays the layer updates itself, not the optimizer (batch-norm running
      statistics); optimizers skip them and the model file stores them.
    - ``penalized``: arrays the l2/l1 penalties apply to (weights, never biases; eq. 7.1, 7.2).
    - ``non_negative``: arrays whose every value must be >= 0 (a variance); model files holding a
      negative value are refused.
    - ``implied_input``: the input shape the options fix (a Dense layer's ``(in_features,)``), used
      when a network's input shape is not given; ``shape_preserving`` layers before it pass it on.
    - ``fused_loss``: as the last layer, the loss that reads its input (the logits) instead.
    - ``seeded``: the builder gives it a seed derived from the network's seed and the layer's index.
    - ``needs_input_shape``: the builder passes ``input_shape`` to the backend class.
    - ``math``: its section in spec/math.md.
    - ``positional``: the options the compact notation (:mod:`scratchnet.core.notation`) takes by
      position, e.g. ``conv(32, 3)`` for out_channels and kernel_size.
    - ``from_input(input_shape)``: the options the notation fills in from the layer's input shape
      (a Dense layer's in_features, a convolution's in_channels).
    - ``width``: the option that sets how many units or channels the layer outputs (a check may
      run on a copy of the network with smaller widths).
    - ``children(options)``: for a container layer (one holding other layers, such as a residual
      block), the descriptions of the layers it holds, which it runs in order on its own input; None
      for an ordinary layer. :func:`scratchnet.core.walk.walk` visits them, and their arrays are
      named by their path, ``"3.0.weight"`` for the weight of layer 0 inside layer 3.
    - ``reads_tokens``: the layer reads token ids (an Embedding): it may only be a network's first
      layer, and only of a network whose input is tokens (``"vocabulary"`` in the architecture).
    - ``counters``: attributes of the built layer that count its training passes (Dropout's
      ``calls``, the stream of its next mask); a training checkpoint keeps them, so that a resumed
      run draws the same random numbers.
    - ``aliases``: other names the compact notation reads it by, the first the one it writes
      (``attention`` for CausalSelfAttention).
    """

    name: str
    options: tuple[Option, ...]
    output_shape: Callable[[Mapping[str, Any], Shape], Shape]
    math: str
    arrays: Callable[[Mapping[str, Any], Shape], dict[str, Shape]] = field(default=lambda options, shape: {})
    untrained: tuple[str, ...] = ()
    penalized: tuple[str, ...] = ()
    non_negative: tuple[str, ...] = ()
    implied_input: Callable[[Mapping[str, Any]], Shape] | None = None
    shape_preserving: bool = False
    fused_loss: str | None = None
    seeded: bool = False
    needs_input_shape: bool = False
    positional: tuple[str, ...] = ()
    from_input: Callable[[Shape], dict[str, Any]] | None = None
    width: str | None = None
    children: Callable[[Mapping[str, Any]], Sequence[Mapping[str, Any]]] | None = None
    reads_tokens: bool = False
    counters: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()

    def option(self, name: str) -> Option:
        return next(option for option in self.options if option.name == name)


LAYER_TYPES: dict[str, LayerType] = {}


def register(layer_type: LayerType) -> LayerType:
    """Add ``layer_type`` to the registry (replacing an entry of the same name) and return it."""
    for option in layer_type.options:
        if option.kind not in OPTION_KINDS:
            raise ConfigError(f"{layer_type.name} option {option.name!r} has unknown kind {option.kind!r}")
    LAYER_TYPES[layer_type.name] = layer_type
    return layer_type


def layer_type(name: Any) -> LayerType:
    """The registry entry of a layer type name; ConfigError listing the known ones otherwise."""
    if not isinstance(name, str) or name not in LAYER_TYPES:
        raise ConfigError(f"unknown type {name!r}; known types: {', '.join(LAYER_TYPES)}")
    return LAYER_TYPES[name]


def type_of(layer: Any) -> LayerType:
    """The registry entry of a built layer of either backend, by the type its ``describe()`` names."""
    return layer_type(layer.describe()["type"])


# --- reading options ------------------------------------------------------------------------------


def convert_option(option: Option, value: Any) -> Any:
    """``value`` as option ``option`` takes it (float for "float", a tuple for "pair"), or ConfigError
    (without the layer's name, which the caller adds)."""
    if value is None and option.default is None:
        return None
    if option.kind == "layers":
        if not isinstance(value, (list, tuple)) or not value:
            raise ConfigError(f"option {option.name!r} must be a non-empty list of layers, got {value!r:.80}")
        for index, layer in enumerate(value):
            if not isinstance(layer, Mapping) or not isinstance(layer.get("type"), str):
                raise ConfigError(f"option {option.name!r}: its layer {index} must be an object with a string 'type'")
        return [dict(layer) for layer in value]
    if option.kind == "bool":
        if not isinstance(value, bool):
            raise ConfigError(f"option {option.name!r} must be true or false, got {value!r}")
        return value
    if option.kind == "pair":
        if isinstance(value, (list, tuple)) and len(value) == 2 and all(_is_int(v) for v in value):
            return (int(value[0]), int(value[1]))
        if _is_int(value):
            return (int(value), int(value))
        raise ConfigError(f"option {option.name!r} must be an integer or a pair of integers, got {value!r}")
    expected = {"int": (int,), "float": (int, float), "str": (str,)}[option.kind]
    if isinstance(value, bool) or not isinstance(value, expected):
        raise ConfigError(f"option {option.name!r} must be {option.kind}, got {value!r}")
    return float(value) if option.kind == "float" else value


def options_of(spec: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Every option of the layer described by ``spec`` (``{"type": ..., <options>}``), converted and
    checked, with defaults filled in; ConfigError starting with ``where`` otherwise."""
    entry = layer_type(spec.get("type"))
    known = {option.name for option in entry.options}
    for key in spec:
        if key != "type" and key not in known:
            raise ConfigError(f"{where} ({entry.name}) has unknown option {key!r}")
    options: dict[str, Any] = {}
    for option in entry.options:
        if option.name not in spec:
            if option.required:
                raise ConfigError(f"{where} ({entry.name}) needs option {option.name!r}")
            options[option.name] = option.default
            continue
        try:
            value = convert_option(option, spec[option.name])
        except ConfigError as error:
            raise ConfigError(f"{where} ({entry.name}) {error}") from None
        problem = option.check(value) if option.check is not None and value is not None else None
        if problem is None and value is not None:
            problem = option_problem(option.name, option.kind, value, option.maximum)
        if problem is not None:
            raise ConfigError(f"{where} ({entry.name}): {problem}")
        if option.kind == "layers":  # each held layer is checked as a layer is, named by its path
            if where.count(".") >= MAX_NESTING:
                raise ConfigError(f"{where} ({entry.name}) nests containers more than {MAX_NESTING} deep")
            for index, layer in enumerate(value):
                options_of(layer, f"{where}.{index}")
        options[option.name] = value
    for option in entry.options:
        if option.default_from is not None and options[option.name] is None:
            options[option.name] = options[option.default_from]
    return options


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def at_least_one(name: str) -> Callable[[int], str | None]:
    """A check that option ``name`` is an integer >= 1 (a size)."""
    return lambda value: None if value >= 1 else f"{name} must be at least 1, got {value}"


def _rate(value: float) -> str | None:
    return None if 0.0 <= value < 1.0 else f"dropout rate must be in [0, 1), got {value!r}"


def _slope(value: float) -> str | None:
    return None if 0.0 <= value < math.inf else f"alpha must be a finite number >= 0, got {value!r}"


def _positive_float(name: str) -> Callable[[float], str | None]:
    return lambda value: None if 0.0 < value < math.inf else f"{name} must be a finite number > 0, got {value!r}"


def initializer(value: str) -> str | None:
    """The check of an ``init`` option: a known initializer."""
    if value in INITIALIZERS:
        return None
    return f"unknown initializer {value!r}; choose one of {', '.join(INITIALIZERS)}"


STD_OPTION = Option("std", "float", None, check=_positive_float("std"))
"""The spread of ``init="normal"`` (eq. 10.12); not given: 0.02. The layer refuses it with another init."""


def describe_shape(shape: Shape) -> str:
    """``4`` for a flat shape of 4 values, ``(1, 28, 28)`` otherwise: how error messages name shapes."""
    return str(shape[0]) if len(shape) == 1 else str(tuple(shape))


# --- the built-in layer types ---------------------------------------------------------------------


def _dense_output(options: Mapping[str, Any], shape: Shape) -> Shape:
    if len(shape) == 2 and shape[1] == options["in_features"]:  # a sequence: the same layer at each position (16.1)
        return (shape[0], options["out_features"])
    if shape != (options["in_features"],):
        hint = " (a Flatten before it makes them one row)" if len(shape) > 1 else ""
        raise ConfigError(
            f"expects {options['in_features']} inputs, but the layer before gives {describe_shape(shape)}{hint}"
        )
    return (options["out_features"],)


def _dense_arrays(options: Mapping[str, Any], shape: Shape) -> dict[str, Shape]:
    arrays: dict[str, Shape] = {"weight": (options["out_features"], options["in_features"])}
    if options.get("bias", True):
        arrays["bias"] = (options["out_features"],)
    return arrays


def _same_shape(options: Mapping[str, Any], shape: Shape) -> Shape:
    return shape


def _softmax_output(options: Mapping[str, Any], shape: Shape) -> Shape:
    if len(shape) not in (1, 2):  # one row of scores, or one per position of a sequence (16.2)
        raise ConfigError(f"normalizes one row of scores per sample, but its input has shape {describe_shape(shape)}")
    return shape


register(
    LayerType(
        name="Dense",
        options=(
            Option("in_features", "int", check=at_least_one("in_features")),
            Option("out_features", "int", check=at_least_one("out_features")),
            Option("bias", "bool", True),
            Option("init", "str", "he_normal", check=initializer),
            STD_OPTION,
        ),
        arrays=_dense_arrays,
        output_shape=_dense_output,
        penalized=("weight",),
        implied_input=lambda o: (o["in_features"],),
        seeded=True,
        math="3",
        positional=("out_features",),
        width="out_features",
        from_input=lambda shape: {"in_features": shape[-1] if len(shape) == 2 else math.prod(shape)},
    )
)
register(
    LayerType(
        name="Dropout",
        options=(Option("rate", "float", check=_rate), Option("seed", "int", None, maximum=SEED_MAXIMUM)),
        positional=("rate",),
        output_shape=_same_shape,
        shape_preserving=True,
        seeded=True,
        counters=("calls",),
        math="7",
    )
)
register(LayerType(name="ReLU", options=(), output_shape=_same_shape, shape_preserving=True, math="4"))
register(
    LayerType(
        name="LeakyReLU",
        options=(Option("alpha", "float", 0.01, check=_slope),),
        positional=("alpha",),
        output_shape=_same_shape,
        shape_preserving=True,
        math="4",
    )
)
register(
    LayerType(
        name="Sigmoid",
        options=(),
        output_shape=_same_shape,
        shape_preserving=True,
        fused_loss="BinaryCrossEntropy",
        math="4",
    )
)
register(LayerType(name="Tanh", options=(), output_shape=_same_shape, shape_preserving=True, math="4"))
register(LayerType(name="Identity", options=(), output_shape=_same_shape, shape_preserving=True, math="4"))
register(LayerType(name="Softmax", options=(), output_shape=_softmax_output, fused_loss="CrossEntropy", math="4"))


# --- convolutional layers (spec/math.md, sections 12-15) ------------------------------------------------


def _positive_pair(name: str) -> Callable[[tuple[int, int]], str | None]:
    return lambda value: None if min(value) >= 1 else f"{name} must be at least 1, got {list(value)}"


def _non_negative_pair(name: str) -> Callable[[tuple[int, int]], str | None]:
    return lambda value: None if min(value) >= 0 else f"{name} must be at least 0, got {list(value)}"


def _momentum(value: float) -> str | None:
    return None if 0.0 <= value <= 1.0 else f"momentum must be in [0, 1], got {value!r}"


def window_pair(value: int | Sequence[int], name: str, minimum: int) -> tuple[int, int]:
    """A kernel size, stride or padding given to a layer's constructor as (height, width): an int is
    used for both; ConfigError naming ``name`` when it is not one or two integers >= ``minimum``."""
    values = (value, value) if isinstance(value, int) else tuple(value)
    if len(values) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) and v >= minimum for v in values):
        raise ConfigError(f"{name} must be an integer >= {minimum} or a pair of them, got {value!r}")
    return (int(values[0]), int(values[1]))


def check_channels(where: str, in_channels: int, out_channels: int) -> None:
    """ConfigError unless a layer has at least one input and one output channel."""
    if in_channels < 1 or out_channels < 1:
        raise ConfigError(
            f"{where} needs at least one input and one output channel, got {in_channels} -> {out_channels}"
        )


def window_output(size: int, kernel: int, stride: int, padding: int) -> int:
    """The number of window positions along one axis (eq. 12.2): floor((size + 2p - k) / s) + 1,
    or 0 or less when the kernel is larger than the padded input."""
    return (size + 2 * padding - kernel) // stride + 1


def _windows(options: Mapping[str, Any], shape: Shape, channels: int | None) -> Shape:
    """The (C, H', W') output of a layer sliding a window over a (C, H, W) input."""
    if len(shape) != 3:
        raise ConfigError(
            f"expects (channels, height, width) inputs, but the layer before gives {describe_shape(shape)}"
        )
    if channels is not None and shape[0] != channels:
        raise ConfigError(f"expects {channels} input channels, but the layer before gives {describe_shape(shape)}")
    kernel = options["kernel_size"]
    stride = options["stride"]
    padding = options.get("padding", (0, 0))
    size = tuple(window_output(n, k, s, p) for n, k, s, p in zip(shape[1:], kernel, stride, padding))
    if min(size) < 1:
        raise ConfigError(
            f"kernel {list(kernel)} is larger than its padded input {describe_shape(shape)} "
            f"(padding {list(padding)}): the output would be empty"
        )
    return (options["out_channels"] if "out_channels" in options else shape[0], *size)


def _conv_arrays(options: Mapping[str, Any], shape: Shape) -> dict[str, Shape]:
    return {
        "weight": (options["out_channels"], options["in_channels"], *options["kernel_size"]),
        "bias": (options["out_channels"],),
    }


def _batch_norm_output(options: Mapping[str, Any], shape: Shape) -> Shape:
    if len(shape) not in (1, 3) or shape[0] != options["num_features"]:
        raise ConfigError(
            f"normalizes {options['num_features']} channels of (C,) or (C, height, width) inputs, "
            f"but the layer before gives {describe_shape(shape)}"
        )
    return shape


def _batch_norm_arrays(options: Mapping[str, Any], shape: Shape) -> dict[str, Shape]:
    channels = (options["num_features"],)
    return {"weight": channels, "bias": channels, "running_mean": channels, "running_var": channels}


register(
    LayerType(
        name="Conv2D",
        options=(
            Option("in_channels", "int", check=at_least_one("in_channels")),
            Option("out_channels", "int", check=at_least_one("out_channels")),
            Option("kernel_size", "pair", check=_positive_pair("kernel_size")),
            Option("stride", "pair", (1, 1), check=_positive_pair("stride")),
            Option("padding", "pair", (0, 0), check=_non_negative_pair("padding")),
            Option("init", "str", "he_normal", check=initializer),
        ),
        arrays=_conv_arrays,
        output_shape=lambda o, shape: _windows(o, shape, o["in_channels"]),
        penalized=("weight",),
        seeded=True,
        math="12",
        positional=("out_channels", "kernel_size"),
        width="out_channels",
        from_input=lambda shape: {"in_channels": shape[0]} if len(shape) == 3 else {},
    )
)
_POOL_OPTIONS = (
    Option("kernel_size", "pair", check=_positive_pair("kernel_size")),
    Option("stride", "pair", None, check=_positive_pair("stride"), default_from="kernel_size"),
)
for _pool in ("MaxPool2D", "AvgPool2D"):
    register(
        LayerType(
            name=_pool,
            options=_POOL_OPTIONS,
            output_shape=lambda o, shape: _windows(o, shape, None),
            math="13",
            positional=("kernel_size",),
        )
    )
register(LayerType(name="Flatten", options=(), output_shape=lambda o, shape: (math.prod(shape),), math="14"))
register(
    LayerType(
        name="BatchNorm",
        options=(
            Option("num_features", "int", check=at_least_one("num_features")),
            Option("momentum", "float", 0.1, check=_momentum),
            Option("eps", "float", 1e-5, check=_positive_float("eps")),
        ),
        arrays=_batch_norm_arrays,
        untrained=("running_mean", "running_var"),
        non_negative=("running_var",),
        output_shape=_batch_norm_output,
        math="15",
        from_input=lambda shape: {"num_features": shape[0]},
    )
)

# --- losses ---------------------------------------------------------------------------------------

LOSS_TYPES = ("CrossEntropy", "MeanSquaredError", "BinaryCrossEntropy")


def output_for_loss(loss: str) -> str | None:
    """The layer type a loss must follow (it reads that layer's input, the logits), or None."""
    return next((entry.name for entry in LAYER_TYPES.values() if entry.fused_loss == loss), None)
