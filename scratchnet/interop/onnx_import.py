"""An ONNX graph read back as a scratchnet model: a chain of standard operators, each a layer.

The graph must be a chain: one input, one output, and each node reading the previous node's output
(and constants: initializers or ``Constant`` nodes) and feeding only the next. :data:`IMPORTERS`
maps each operator to the layer it becomes and names the attributes it understands; an operator
that is not in it, an attribute that is not, or a value scratchnet cannot express (a grouped
convolution, padding on a pooling) is refused with one line naming the node. ``MatMul`` followed by
``Add`` of a constant is one Dense layer; a ``Dropout`` is left out (the graph is read for inference).
A graph of token ids or with layers of several operators (attention) is read only as scratchnet
exported it, by the architecture it records (:mod:`scratchnet.interop.onnx_recorded`).

The loss recorded is the one the last layer is fused with (CrossEntropy after a Softmax,
BinaryCrossEntropy after a Sigmoid), else MeanSquaredError, which leaves the outputs as they are. A
loss asked for whose layer the graph does not end with gets it appended: ``loss="CrossEntropy"`` on
a classifier exported as logits (as PyTorch models usually are) adds the Softmax.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from scratchnet.core.architecture import canonical, plan, validate
from scratchnet.core.errors import ConfigError, InteropError
from scratchnet.core.registry import Shape, layer_type, options_of, output_for_loss
from scratchnet.interop.extras import require
from scratchnet.interop.files import first_line, read_bounded
from scratchnet.interop.onnx_export import one_minus
from scratchnet.interop.onnx_graph import chain_of, check_output, constants_of, describe_node, graph_input
from scratchnet.interop.onnx_recorded import from_recorded, needs_recorded
from scratchnet.interop.portable import Portable, check_arrays, read_portable_metadata

if TYPE_CHECKING:
    import onnx

Array = npt.NDArray[Any]


def as_written(value: float) -> float:
    """A float32 attribute as the shortest decimal that is that float32 (1e-05, not 9.99999974738e-06):
    what the writer most likely meant, so that options survive export and import unchanged."""
    return float(str(np.float32(value)))


@dataclass(frozen=True)
class Layer:
    """A layer read from the graph: its description (``{"type": ..., options}``) and its arrays, by
    their names in the layer (``"weight"``)."""

    spec: dict[str, Any]
    arrays: dict[str, Array] = field(default_factory=dict)


@dataclass(frozen=True)
class Reading:
    """One node being read: the node and the one after it, the input shape of one sample, and the
    graph's constants. Its methods read attributes and constant inputs, failing with the node's name."""

    node: onnx.NodeProto
    following: onnx.NodeProto | None
    shape: Shape
    constants: Mapping[str, Array]
    dtype: str
    opset: int
    batch: int | None  # the graph input's batch size, when it is fixed
    where: str  # "FILE: node 'fc1' (Gemm)"

    def fail(self, message: str) -> InteropError:
        return InteropError(f"{self.where}: {message}")

    def attribute(self, name: str, default: Any) -> Any:
        from onnx import helper

        for attribute in self.node.attribute:
            if attribute.name == name:
                value = helper.get_attribute_value(attribute)
                return value.decode() if isinstance(value, bytes) else value
        return default

    def ints(self, name: str, default: Sequence[int] | None, count: int) -> list[int]:
        value = self.attribute(name, default)
        if value is None:
            raise self.fail(f"needs attribute {name!r}")
        values = [int(v) for v in value]
        if len(values) != count:
            raise self.fail(f"{name} {values} has {len(values)} values, expected {count} (a 2-D operation)")
        return values

    def constant(self, position: int, what: str) -> Array | None:
        """The constant input at ``position`` (None when the node has no such input)."""
        if position >= len(self.node.input) or not self.node.input[position]:
            return None
        name = self.node.input[position]
        if name not in self.constants:
            raise self.fail(
                f"its {what} ({name!r}) is computed by the graph; scratchnet needs a constant (an initializer)"
            )
        return self.constants[name]

    def weights(self, position: int, what: str, ndim: int | None = None, required: bool = True) -> Array | None:
        """A constant input holding weights: of the model's dtype, and of ``ndim`` axes when given."""
        value = self.constant(position, what)
        if value is None:
            if required:
                raise self.fail(f"has no {what}")
            return None
        if value.dtype != np.dtype(self.dtype):
            raise self.fail(f"its {what} are {value.dtype}, but the graph computes in {self.dtype}")
        if ndim is not None and value.ndim != ndim:
            raise self.fail(f"its {what} have shape {tuple(value.shape)}, expected {ndim} axes")
        return value

    def bias(self, value: Array | None, size: int, what: str = "bias") -> Array:
        """A bias broadcast to one value per output: ``size`` zeros when absent; a scalar, ``(size,)``,
        ``(1, size)`` or ``(1,)`` otherwise (anything that adds the same to every sample)."""
        if value is None:
            return np.zeros(size, self.dtype)
        if value.dtype != np.dtype(self.dtype):
            raise self.fail(f"its {what} is {value.dtype}, but the graph computes in {self.dtype}")
        per_sample = value.ndim <= 1 or (value.ndim == 2 and value.shape[0] == 1)
        if not per_sample or value.size not in (1, size):
            raise self.fail(
                f"its {what} has shape {tuple(value.shape)}, which does not add one value per output of {size}"
            )
        return np.ascontiguousarray(np.broadcast_to(value.reshape(-1), (size,)), dtype=self.dtype)

    def needs_shape(self, ndim: int, meaning: str) -> None:
        if len(self.shape) != ndim:
            raise self.fail(f"takes {meaning}, but its input has shape {self.shape} per sample")


@dataclass(frozen=True)
class Imported:
    """What one or two nodes became: no layer (a Dropout) or one, and how many nodes they were."""

    layers: tuple[Layer, ...]
    consumed: int = 1


# --- the importers ----------------------------------------------------------------------------------


def _dense(r: Reading, weight: Array, bias: Array) -> Layer:
    out_features, in_features = weight.shape
    if r.shape != (in_features,):
        raise r.fail(f"its weights take {in_features} inputs, but its input has shape {r.shape} per sample")
    spec = {"type": "Dense", "in_features": int(in_features), "out_features": int(out_features)}
    return Layer(spec, {"weight": np.ascontiguousarray(weight), "bias": bias})


def _gemm(r: Reading) -> Imported:
    """Y = alpha A' B' + beta C with A the data: a Dense layer of weight alpha B' (as (out, in)) and bias beta C."""
    if r.attribute("transA", 0):
        raise r.fail("transA=1 reads the batch along the second axis: not a layer of one sample per row")
    b = r.weights(1, "weights (B)", ndim=2)
    assert b is not None
    weight = b if r.attribute("transB", 0) else b.T
    alpha, beta = float(r.attribute("alpha", 1.0)), float(r.attribute("beta", 1.0))
    if alpha != 1.0:
        weight = (weight * np.asarray(alpha, r.dtype)).astype(r.dtype)
    bias = r.bias(r.weights(2, "bias (C)", required=False), weight.shape[0])
    if beta != 1.0:
        bias = (bias * np.asarray(beta, r.dtype)).astype(r.dtype)
    return Imported((_dense(r, weight, bias),))


def _matmul(r: Reading) -> Imported:
    """x W with W (in, out), and the Add of a constant after it if there is one: a Dense layer of weight W^T."""
    w = r.weights(1, "weights", ndim=2)
    assert w is not None
    following = r.following
    if following is not None and following.op_type == "Add" and following.domain in ("", "ai.onnx"):
        others = [name for name in following.input if name != r.node.output[0]]
        if len(others) == 1 and others[0] in r.constants:
            bias = r.bias(r.constants[others[0]], w.shape[1], "bias (the Add after it)")
            return Imported((_dense(r, w.T, bias),), consumed=2)
    return Imported((_dense(r, w.T, r.bias(None, w.shape[1])),))


def _padding(r: Reading, kernel: Sequence[int], strides: Sequence[int]) -> list[int]:
    """The (height, width) padding of a convolution or a pooling: the same before and after on each axis."""
    auto = r.attribute("auto_pad", "NOTSET")
    if auto == "VALID":
        return [0, 0]
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        padding = []
        for size, k, s in zip(r.shape[1:], kernel, strides):
            total = max((math.ceil(size / s) - 1) * s + k - size, 0)
            if total % 2:
                raise r.fail(f"auto_pad {auto} pads {total} values, unevenly; scratchnet pads both sides alike")
            padding.append(total // 2)
        return padding
    if auto != "NOTSET":
        raise r.fail(f"auto_pad {auto!r} is not an ONNX padding mode")
    pads = r.ints("pads", [0, 0, 0, 0], 4)
    if pads[:2] != pads[2:]:
        raise r.fail(f"pads {pads} differ before and after; scratchnet pads both sides alike")
    return pads[:2]


def _unit_dilations(r: Reading) -> None:
    if any(d != 1 for d in r.ints("dilations", [1, 1], 2)):
        raise r.fail("dilations other than 1 have no scratchnet layer")


def _conv(r: Reading) -> Imported:
    weight = r.weights(1, "weights", ndim=4)
    assert weight is not None
    r.needs_shape(3, "(channels, height, width) inputs")
    if r.attribute("group", 1) != 1:
        raise r.fail("a grouped convolution (group > 1) has no scratchnet layer")
    _unit_dilations(r)
    out_channels, in_channels, kh, kw = (int(n) for n in weight.shape)
    if r.shape[0] != in_channels:
        raise r.fail(f"its weights take {in_channels} channels, but its input has shape {r.shape} per sample")
    kernel = r.ints("kernel_shape", [kh, kw], 2)
    if kernel != [kh, kw]:
        raise r.fail(f"kernel_shape {kernel} is not its weights' {[kh, kw]}")
    strides = r.ints("strides", [1, 1], 2)
    spec = {
        "type": "Conv2D",
        "in_channels": in_channels,
        "out_channels": out_channels,
        "kernel_size": kernel,
        "stride": strides,
        "padding": _padding(r, kernel, strides),
    }
    bias = r.bias(r.weights(2, "bias", required=False), out_channels)
    return Imported((Layer(spec, {"weight": np.ascontiguousarray(weight), "bias": bias}),))


def _pool(kind: str) -> Callable[[Reading], Imported]:
    def read(r: Reading) -> Imported:
        r.needs_shape(3, "(channels, height, width) inputs")
        kernel = r.ints("kernel_shape", None, 2)
        strides = r.ints("strides", [1, 1], 2)  # ONNX's default stride is 1, scratchnet's the kernel size
        _unit_dilations(r)
        if _padding(r, kernel, strides) != [0, 0]:
            raise r.fail("padding: scratchnet's pooling layers take no padding")
        if r.attribute("ceil_mode", 0):
            for size, k, s in zip(r.shape[1:], kernel, strides):
                if (size - k) % s:
                    raise r.fail("ceil_mode=1 adds a partial window here; scratchnet's pooling rounds down")
        return Imported((Layer({"type": kind, "kernel_size": kernel, "stride": strides}),))

    return read


def _batch_norm(r: Reading) -> Imported:
    if r.attribute("training_mode", 0):
        raise r.fail("training_mode=1: scratchnet reads an inference graph (running statistics)")
    if r.attribute("spatial", 1) != 1:
        raise r.fail("spatial=0 (statistics per value, not per channel) has no scratchnet layer")
    arrays = {}
    for position, name in enumerate(("weight", "bias", "running_mean", "running_var"), start=1):
        value = r.weights(position, f"{name.replace('_', ' ')} (input {position})", ndim=1)
        assert value is not None
        arrays[name] = np.ascontiguousarray(value)
    channels = arrays["weight"].shape[0]
    if any(value.shape != (channels,) for value in arrays.values()):
        raise r.fail(
            f"its four parameters have shapes {[tuple(v.shape) for v in arrays.values()]}, not one per channel"
        )
    if len(r.shape) not in (1, 3) or r.shape[0] != channels:
        raise r.fail(f"normalizes {channels} channels, but its input has shape {r.shape} per sample")
    written = as_written(r.attribute("momentum", 0.9))
    if not 0.0 <= written <= 1.0:  # checked as the file wrote it: the converted value would mislead
        raise r.fail(f"momentum must be in [0, 1], got {written!r}")
    momentum = one_minus(written)  # ONNX's momentum weighs the old value
    spec = {
        "type": "BatchNorm",
        "num_features": channels,
        "momentum": momentum,
        "eps": as_written(r.attribute("epsilon", 1e-5)),
    }
    return Imported((Layer(spec, arrays),))


def _flatten(r: Reading) -> Imported:
    axis = int(r.attribute("axis", 1))
    if axis < 0:
        axis += len(r.shape) + 1
    if axis != 1:
        raise r.fail(f"axis {axis} keeps more than the batch axis; scratchnet's Flatten makes one row per sample")
    return Imported((Layer({"type": "Flatten"}),))


def _reshape(r: Reading) -> Imported:
    """A Reshape to (batch, -1): a Flatten. The batch may be written 0 (copy it), -1 with the row
    length given, or the graph input's fixed batch size."""
    shape = r.constant(1, "target shape")
    if shape is None:
        raise r.fail("has no target shape")
    target = [int(n) for n in shape.reshape(-1)]
    row = math.prod(r.shape)
    batch_ok = (target[:1] == [0] and not r.attribute("allowzero", 0)) or (
        r.batch is not None and target[:1] == [r.batch]
    )
    flat = len(target) == 2 and ((batch_ok and target[1] in (-1, row)) or (target[0] == -1 and target[1] == row))
    if not flat:
        raise r.fail(
            f"reshapes to {target}, not to one row per sample ([0, -1] or [-1, {row}]); only that is a Flatten"
        )
    return Imported((Layer({"type": "Flatten"}),))


def _softmax(r: Reading) -> Imported:
    axis = int(r.attribute("axis", -1 if r.opset >= 13 else 1))
    if len(r.shape) != 1 or axis not in (1, -1):
        raise r.fail(
            f"normalizes axis {axis} of inputs of shape {r.shape} per sample; "
            "scratchnet's Softmax takes one row of scores"
        )
    return Imported((Layer({"type": "Softmax"}),))


def _dropout(r: Reading) -> Imported:
    mode = r.constant(2, "training mode")
    if mode is not None and bool(mode.reshape(-1)[0]):
        raise r.fail("training_mode is true: scratchnet reads an inference graph")
    return Imported(())


def _plain(kind: str) -> Callable[[Reading], Imported]:
    return lambda r: Imported((Layer({"type": kind}),))


@dataclass(frozen=True)
class Operator:
    """How an ONNX operator is read, and the attributes it understands (any other is refused)."""

    read: Callable[[Reading], Imported]
    attributes: tuple[str, ...] = ()


_POOL_ATTRIBUTES = ("auto_pad", "ceil_mode", "dilations", "kernel_shape", "pads", "strides")

# Each operator's layer: the one place the import knows ONNX operators.
IMPORTERS: dict[str, Operator] = {
    "Gemm": Operator(_gemm, ("alpha", "beta", "transA", "transB")),
    "MatMul": Operator(_matmul),
    "Conv": Operator(_conv, ("auto_pad", "dilations", "group", "kernel_shape", "pads", "strides")),
    "MaxPool": Operator(_pool("MaxPool2D"), (*_POOL_ATTRIBUTES, "storage_order")),
    "AveragePool": Operator(_pool("AvgPool2D"), (*_POOL_ATTRIBUTES, "count_include_pad")),
    "BatchNormalization": Operator(_batch_norm, ("epsilon", "momentum", "training_mode", "spatial")),
    "Flatten": Operator(_flatten, ("axis",)),
    "Reshape": Operator(_reshape, ("allowzero",)),
    "Relu": Operator(_plain("ReLU")),
    "LeakyRelu": Operator(
        lambda r: Imported((Layer({"type": "LeakyReLU", "alpha": as_written(r.attribute("alpha", 0.01))}),)),
        ("alpha",),
    ),
    "Sigmoid": Operator(_plain("Sigmoid")),
    "Tanh": Operator(_plain("Tanh")),
    "Identity": Operator(_plain("Identity")),
    "Softmax": Operator(_softmax, ("axis",)),
    "Dropout": Operator(_dropout, ("ratio", "seed")),
}


# --- the graph ----------------------------------------------------------------------------------------


def read_onnx(path: Path, *, loss: str | None = None) -> Portable:
    """The scratchnet model the ONNX file ``path`` describes (see the module's docstring)."""
    onnx = require("onnx", "importing ONNX")
    data = read_bounded(path, "an ONNX model")
    try:
        proto = onnx.load_model_from_string(data)
    except Exception as error:  # protobuf's DecodeError, and others from a damaged file
        raise InteropError(f"{path}: not an ONNX model (it does not parse: {type(error).__name__})") from None
    return from_onnx(proto, str(path), loss=loss)


def from_onnx(proto: onnx.ModelProto, where: str = "the ONNX model", *, loss: str | None = None) -> Portable:
    """The scratchnet model of the ONNX model ``proto``; ``where`` names it in messages."""
    from onnx import checker

    if not proto.HasField("graph") or not proto.graph.node:
        raise InteropError(f"{where}: not an ONNX model (it holds no graph)")
    try:
        checker.check_model(proto)
    except Exception as error:  # onnx.checker.ValidationError, and errors of a malformed message
        raise InteropError(f"{where}: not a valid ONNX model: {first_line(error)}") from None
    opsets = [entry.version for entry in proto.opset_import if entry.domain in ("", "ai.onnx")]
    if not opsets:
        raise InteropError(f"{where}: imports no ai.onnx operator set")
    graph = proto.graph
    if needs_recorded(graph, {entry.key: entry.value for entry in proto.metadata_props}, where, IMPORTERS):
        return from_recorded(proto, where, loss=loss)  # token ids, attention: only as scratchnet exports them
    constants = constants_of(graph, where)
    source, input_shape, batch, dtype = graph_input(graph, constants, where)
    chain = chain_of(graph, source, where)
    layers: list[Layer] = []
    shape = input_shape
    position = 0
    while position < len(chain):
        node, index = chain[position]
        label = f"{where}: {describe_node(node, index)}"
        operator = IMPORTERS.get(node.op_type) if node.domain in ("", "ai.onnx") else None
        if operator is None:
            op = node.op_type if node.domain in ("", "ai.onnx") else f"{node.domain}.{node.op_type}"
            raise InteropError(f"{label}: unsupported operator {op}; scratchnet imports {', '.join(IMPORTERS)}")
        unknown = [a.name for a in node.attribute if a.name not in operator.attributes]
        if unknown:
            raise InteropError(f"{label}: attribute {unknown[0]!r} has no scratchnet equivalent")
        following = chain[position + 1][0] if position + 1 < len(chain) else None
        reading = Reading(node, following, shape, constants, dtype, opsets[0], batch, label)
        if node.input[0] != (chain[position - 1][0].output[0] if position else source):
            raise reading.fail("reads the data as a later input; scratchnet needs the data as the first input")
        imported = operator.read(reading)
        for layer in imported.layers:
            try:
                shape = tuple(layer_type(layer.spec["type"]).output_shape(options_of(layer.spec, "it"), shape))
            except ConfigError as error:
                raise reading.fail(str(error)) from None
            layers.append(layer)
        position += imported.consumed
    if not layers:
        raise InteropError(f"{where}: the graph has no layer scratchnet keeps (only Dropout)")
    return _portable(proto, layers, (input_shape, batch), dtype, where, loss)


def _portable(
    proto: onnx.ModelProto,
    layers: list[Layer],
    source: tuple[Shape, int | None],
    dtype: str,
    where: str,
    loss: str | None,
) -> Portable:
    """The model of ``layers`` read from ``proto`` for inputs of ``source`` (one sample's shape and the
    batch size, if fixed), checked against the bounds, the output the graph declares and its metadata."""
    input_shape, batch = source
    last = layers[-1].spec["type"]
    chosen = loss or layer_type(last).fused_loss or "MeanSquaredError"
    needed = output_for_loss(chosen)
    if needed is not None and last != needed:  # a classifier exported as logits: add what the loss reads
        layers = [*layers, Layer({"type": needed})]
    description = {
        "layers": [layer.spec for layer in layers],
        "loss": {"type": chosen},
        "l2": 0.0,
        "l1": 0.0,
        "input_shape": list(input_shape),
    }
    try:
        architecture = canonical(validate(description))
        checked = plan(architecture)
    except ConfigError as error:
        raise InteropError(f"{where}: {error}") from None
    arrays = {f"{index}.{name}": value for index, layer in enumerate(layers) for name, value in layer.arrays.items()}
    check_output(proto.graph, dtype, batch, checked.classes, where)
    check_arrays(checked, arrays, where)
    props = {entry.key: entry.value for entry in proto.metadata_props}
    metadata = read_portable_metadata(props, where, checked)
    imported = {
        "format": "onnx",
        "file": Path(where).name,
        "producer": f"{proto.producer_name} {proto.producer_version}".strip(),
        "opset": int(next(e.version for e in proto.opset_import if e.domain in ("", "ai.onnx"))),
    }
    return Portable(architecture, arrays, dtype, metadata, imported)
