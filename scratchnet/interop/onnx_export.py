"""A scratchnet model as an ONNX inference graph: one standard operator per layer.

:data:`EXPORTERS` maps each layer type to its operator; the layer's arrays become initializers under
their own names (``0.weight``), and each operator reads the previous one's output. The graph takes
``input`` of shape ``(batch, *input_shape)``, ``batch`` symbolic, and gives ``output`` of shape
``(batch, classes)``: the network's ``forward`` in inference mode (Dropout removed, BatchNorm with its
running statistics). The metadata that says how to feed the model and read its output (dataset,
class names, input scaling) goes into ``metadata_props``. Every model is checked with
``onnx.checker.check_model(..., full_check=True)`` before it is written.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scratchnet.core.errors import ConfigError, InteropError
from scratchnet.core.registry import Shape
from scratchnet.core.version import __version__
from scratchnet.interop.extras import require
from scratchnet.interop.files import write_atomically
from scratchnet.interop.portable import Portable, portable_metadata

if TYPE_CHECKING:
    import onnx

DEFAULT_OPSET = 18  # ai.onnx opset 18 (2022): run by ONNX Runtime 1.14 and later
MIN_OPSET = 13  # from 13 on, Softmax normalizes the axis it is given instead of flattening its input
INPUT, OUTPUT, BATCH = "input", "output", "batch"
# Operators ONNX Runtime's CPU provider runs in float32 only (it has no double kernel for them).
FLOAT32_ONLY = ("Conv", "AveragePool")


@dataclass(frozen=True)
class Node:
    """The operator a layer becomes: ``op`` reading the previous output, then the layer's ``arrays``
    (by their names in the layer: ``"weight"``), with ``attributes``."""

    op: str
    arrays: tuple[str, ...] = ()
    attributes: dict[str, Any] = field(default_factory=dict)


def one_minus(value: float) -> float:
    """1 - value, computed on the shortest decimals (0.1 -> 0.9 exactly as written, not 0.9000000000000000222)."""
    return float(Decimal(1) - Decimal(repr(value)))


def _window(options: Mapping[str, Any]) -> dict[str, Any]:
    return {"kernel_shape": list(options["kernel_size"]), "strides": list(options["stride"])}


def _conv(options: Mapping[str, Any], shape: Shape) -> Node:
    ph, pw = options["padding"]
    attributes = {**_window(options), "pads": [ph, pw, ph, pw], "dilations": [1, 1], "group": 1}
    return Node("Conv", ("weight", "bias"), attributes)


def _batch_norm(options: Mapping[str, Any], shape: Shape) -> Node:
    # ONNX's running average is momentum * running + (1 - momentum) * batch: PyTorch's the other way round.
    attributes = {"epsilon": options["eps"], "momentum": one_minus(options["momentum"])}
    return Node("BatchNormalization", ("weight", "bias", "running_mean", "running_var"), attributes)


Exporter = Callable[[Mapping[str, Any], Shape], Node | None]

# Each layer type's operator, given the layer's options and input shape; None: the layer is left out.
EXPORTERS: dict[str, Exporter] = {
    "Dense": lambda o, s: Node("Gemm", ("weight", "bias"), {"transB": 1}),  # x W^T + b, W as (out, in)
    "Dropout": lambda o, s: None,  # an inference graph: dropout is the identity
    "ReLU": lambda o, s: Node("Relu"),
    "LeakyReLU": lambda o, s: Node("LeakyRelu", attributes={"alpha": o["alpha"]}),
    "Sigmoid": lambda o, s: Node("Sigmoid"),
    "Tanh": lambda o, s: Node("Tanh"),
    "Identity": lambda o, s: Node("Identity"),
    "Softmax": lambda o, s: Node("Softmax", attributes={"axis": -1}),
    "Conv2D": _conv,
    "MaxPool2D": lambda o, s: Node("MaxPool", attributes={**_window(o), "pads": [0, 0, 0, 0]}),
    "AvgPool2D": lambda o, s: Node("AveragePool", attributes={**_window(o), "pads": [0, 0, 0, 0]}),
    "Flatten": lambda o, s: Node("Flatten", attributes={"axis": 1}),
    "BatchNorm": _batch_norm,
}


def check_opset(opset: int) -> None:
    """ConfigError unless ``opset`` is one scratchnet exports to and the installed onnx knows."""
    onnx = require("onnx", "exporting to ONNX")
    newest = int(onnx.defs.onnx_opset_version())
    if not MIN_OPSET <= opset <= newest:
        raise ConfigError(
            f"--opset must be in {MIN_OPSET}..{newest} (from {MIN_OPSET} on, Softmax keeps its input's shape; "
            f"{newest} is the newest the installed onnx {onnx.__version__} knows), got {opset}"
        )


def to_onnx(model: Portable, opset: int = DEFAULT_OPSET) -> onnx.ModelProto:
    """The ONNX model of ``model``, checked by ``onnx.checker.check_model(..., full_check=True)``."""
    check_opset(opset)
    from onnx import TensorProto, checker, helper, numpy_helper

    checked = model.plan
    element = TensorProto.FLOAT if model.dtype == "float32" else TensorProto.DOUBLE
    nodes = []
    current = INPUT
    for index, kind, node in operators(model):
        inputs = [current, *(f"{index}.{name}" for name in node.arrays)]
        current = f"{index}.out"
        nodes.append(helper.make_node(node.op, inputs, [current], name=f"{index}.{kind}", **node.attributes))
    if nodes:
        nodes[-1].output[0] = OUTPUT
    else:  # every layer was left out (Dropout only): the graph is the identity
        nodes.append(helper.make_node("Identity", [INPUT], [OUTPUT], name="identity"))
    initializers = [numpy_helper.from_array(value, name) for name, value in model.arrays.items()]
    graph = helper.make_graph(
        nodes,
        "scratchnet",
        [helper.make_tensor_value_info(INPUT, element, [BATCH, *checked.input_shape])],
        [helper.make_tensor_value_info(OUTPUT, element, [BATCH, *checked.output_shape])],
        initializers,
    )
    opsets = [helper.make_opsetid("", opset)]
    proto = helper.make_model(
        graph,
        opset_imports=opsets,
        producer_name="scratchnet",
        producer_version=__version__,
        ir_version=helper.find_min_ir_version_for(opsets),
        doc_string="exported by scratchnet: the network's forward pass in inference mode",
    )
    helper.set_model_props(proto, portable_metadata(model.metadata))
    try:
        checker.check_model(proto, full_check=True)
    except Exception as error:  # onnx raises several types; any of them means a bug here
        raise InteropError(f"the exported graph fails onnx.checker: {str(error).splitlines()[0]}") from None
    return proto


def write_onnx(model: Portable, target: Path, opset: int = DEFAULT_OPSET) -> Path:
    """Write the ONNX model of ``model`` to ``target`` atomically; return ``target``."""
    proto = to_onnx(model, opset)
    return write_atomically(target, proto.SerializeToString())


def operators(model: Portable) -> list[tuple[int, str, Node]]:
    """(layer index, layer type, operator) of every layer the graph keeps, in order."""
    found = []
    for index, (kind, options, shape) in enumerate(model.plan.layers()):
        exporter = EXPORTERS.get(kind)
        if exporter is None:
            raise InteropError(f"layer {index} ({kind}) has no ONNX operator in scratchnet's export")
        node = exporter(options, shape)
        if node is not None:
            found.append((index, kind, node))
    return found


def float64_caveat(model: Portable) -> str | None:
    """A note when ONNX Runtime's CPU provider cannot run the exported float64 model, else None."""
    if model.dtype != "float64":
        return None
    ops = sorted({node.op for _, _, node in operators(model) if node.op in FLOAT32_ONLY})
    if not ops:
        return None
    return (
        f"ONNX Runtime's CPU provider runs {' and '.join(ops)} in float32 only; --dtype float32 exports a copy it runs"
    )
