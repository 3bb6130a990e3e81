"""A scratchnet model as an ONNX inference graph: standard operators, one per layer where one does it.

:data:`EXPORTERS` maps each layer type to its operator, or to a few of them
(:mod:`scratchnet.interop.onnx_sequence`: attention, the norms, GELU, the embeddings, Dense on a
sequence); the layer's arrays become initializers under their own names (``0.weight``), and each
layer reads the previous one's output. The layers are visited by :func:`scratchnet.core.walk.walk`,
so that a container's layers export in place. The graph takes ``input`` of shape
``(batch, *input_shape)``, ``batch`` symbolic (token ids: int64 ``(batch, sequence)``, both symbolic),
and gives ``output`` of shape ``(batch, classes)`` (``(batch, sequence, classes)``): the network's
``forward`` in inference mode (Dropout removed, BatchNorm with its running statistics). The metadata
that says how to feed the model and read its output (dataset, class names, input scaling) and the
architecture (JSON) go into ``metadata_props``. Every model is checked with
``onnx.checker.check_model(..., full_check=True)`` before it is written.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scratchnet.core.errors import ConfigError, InteropError
from scratchnet.core.registry import Shape
from scratchnet.core.version import __version__
from scratchnet.core.walk import LayerSite, array_name, walk
from scratchnet.interop.extras import require
from scratchnet.interop.files import write_atomically
from scratchnet.interop.onnx_nodes import OUT, Composite, GraphParts, LayerGraph, Node
from scratchnet.interop.onnx_sequence import SEQUENCE_EXPORTERS, dense
from scratchnet.interop.portable import Portable, portable_metadata

if TYPE_CHECKING:
    import onnx

DEFAULT_OPSET = 18  # ai.onnx opset 18 (2022): run by ONNX Runtime 1.14 and later
MIN_OPSET = 13  # from 13 on, Softmax normalizes the axis it is given instead of flattening its input
INPUT, OUTPUT, BATCH, SEQUENCE = "input", "output", "batch", "sequence"
ARCHITECTURE_KEY = "architecture"  # the metadata property recording the network's architecture (JSON)
# Operators ONNX Runtime's CPU provider runs in float32 only (it has no double kernel for them).
FLOAT32_ONLY = ("Conv", "AveragePool", "Erf")  # and Gelu with approximate="none", which it runs by Erf


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


Exporter = Callable[[Mapping[str, Any], Shape], Node | Composite | None]

# Each layer type's operator(s), given the layer's options and input shape; None: the layer is left out.
EXPORTERS: dict[str, Exporter] = {
    "Dense": dense,  # Gemm with transB=1 for rows, MatMul + Add on the last axis of a sequence
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
    **SEQUENCE_EXPORTERS,
    # y = x + f(x) (eq. 23.1): the held layers export in place under their own names (3.0.weight), then Add.
    "Residual": lambda o, s: Composite(lambda g: g.node("Add", [g.x, g.layers(g.site.children, g.x)], OUT)),
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
    parts = graph_parts(model, opset)
    nodes = parts.nodes
    if nodes:
        nodes[-1].output[0] = OUTPUT  # the last node gives the network's output, read by no other node
    else:  # every layer was left out (Dropout only): the graph is the identity
        nodes.append(helper.make_node("Identity", [INPUT], [OUTPUT], name="identity"))
    initializers = [numpy_helper.from_array(value, name) for name, value in model.arrays.items()]
    initializers += [numpy_helper.from_array(value, name) for name, value in parts.constants.items()]
    if checked.vocabulary is not None:  # token ids (N, T), T dynamic; scores (N, T, classes)
        source = helper.make_tensor_value_info(INPUT, TensorProto.INT64, [BATCH, SEQUENCE])
        result = helper.make_tensor_value_info(OUTPUT, element, [BATCH, SEQUENCE, *checked.output_shape[1:]])
    else:
        source = helper.make_tensor_value_info(INPUT, element, [BATCH, *checked.input_shape])
        result = helper.make_tensor_value_info(OUTPUT, element, [BATCH, *checked.output_shape])
    graph = helper.make_graph(nodes, "scratchnet", [source], [result], initializers)
    opsets = [helper.make_opsetid("", opset)]
    proto = helper.make_model(
        graph,
        opset_imports=opsets,
        producer_name="scratchnet",
        producer_version=__version__,
        ir_version=helper.find_min_ir_version_for(opsets),
        doc_string="exported by scratchnet: the network's forward pass in inference mode",
    )
    props = portable_metadata(model.metadata)
    props[ARCHITECTURE_KEY] = json.dumps(model.architecture, sort_keys=True)
    helper.set_model_props(proto, props)
    try:
        checker.check_model(proto, full_check=True)
    except Exception as error:  # onnx raises several types; any of them means a bug here
        raise InteropError(f"the exported graph fails onnx.checker: {str(error).splitlines()[0]}") from None
    return proto


def graph_parts(model: Portable, opset: int) -> GraphParts:
    """The nodes of every layer (containers' layers in place, through :func:`scratchnet.core.walk.walk`)
    and the constants they need besides the arrays."""

    def export_layers(sites: Sequence[LayerSite], x: str) -> str:
        for site in sites:
            x = _export_layer(parts, site, x)
        return x

    parts = GraphParts(model.dtype, opset, export_layers)
    export_layers(walk(model.plan), INPUT)
    return parts


def _export_layer(parts: GraphParts, site: LayerSite, x: str) -> str:
    """Add the layer at ``site`` reading ``x``; return its output (``x`` when the layer is left out)."""
    from onnx import helper

    exporter = EXPORTERS.get(site.kind)
    if exporter is None:
        raise InteropError(f"layer {site.prefix} ({site.kind}) has no ONNX operator in scratchnet's export")
    made = exporter(site.options, site.input_shape)
    if made is None:
        return x
    if isinstance(made, Composite):
        return made.build(LayerGraph(parts, site, x))
    inputs = [x, *(array_name(site.path, name) for name in made.arrays)]
    output = f"{site.prefix}.out"
    name = f"{site.prefix}.{site.kind}"
    parts.nodes.append(helper.make_node(made.op, inputs, [output], name=name, **made.attributes))
    return output


def write_onnx(model: Portable, target: Path, opset: int = DEFAULT_OPSET) -> Path:
    """Write the ONNX model of ``model`` to ``target`` atomically; return ``target``."""
    proto = to_onnx(model, opset)
    return write_atomically(target, proto.SerializeToString())


def _float32_only(node: onnx.NodeProto) -> bool:
    exact_gelu = node.op_type == "Gelu" and all(a.s != b"tanh" for a in node.attribute if a.name == "approximate")
    return node.op_type in FLOAT32_ONLY or exact_gelu


def float64_caveat(model: Portable, opset: int = DEFAULT_OPSET) -> str | None:
    """A note when ONNX Runtime's CPU provider cannot run the exported float64 model, else None."""
    if model.dtype != "float64":
        return None
    ops = sorted({node.op_type for node in graph_parts(model, opset).nodes if _float32_only(node)})
    if not ops:
        return None
    return (
        f"ONNX Runtime's CPU provider runs {' and '.join(ops)} in float32 only; --dtype float32 exports a copy it runs"
    )
