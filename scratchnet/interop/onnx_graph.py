"""The structure of an ONNX graph scratchnet imports: its constants, its one data input, its chain
of nodes from that input to its one output, and the output it declares, which must agree with what
the chain computes (:mod:`scratchnet.interop.onnx_import` reads each node of the chain as a layer).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from scratchnet.core.errors import InteropError, quoted_list
from scratchnet.core.registry import Shape
from scratchnet.interop.files import first_line

if TYPE_CHECKING:
    import onnx

Array = npt.NDArray[Any]
ONNX_DTYPES = {1: "float32", 11: "float64"}  # TensorProto.FLOAT, TensorProto.DOUBLE


def describe_node(node: onnx.NodeProto, position: int) -> str:
    """``node 'fc1' (Gemm)``, or ``node 3 (Gemm)`` for a node without a name."""
    name = repr(node.name) if node.name else str(position)
    return f"node {name} ({node.op_type})"


def constants_of(graph: onnx.GraphProto, where: str) -> dict[str, Array]:
    """Every initializer and every Constant node's value, by name."""
    from onnx import TensorProto, helper, numpy_helper

    if graph.sparse_initializer:
        raise InteropError(f"{where}: sparse initializers are not supported")
    constants: dict[str, Array] = {}
    tensors = [(tensor.name, tensor) for tensor in graph.initializer]
    for index, node in enumerate(graph.node):
        if node.op_type != "Constant" or node.domain not in ("", "ai.onnx"):
            continue
        if len(node.attribute) != 1:
            raise InteropError(
                f"{where}: {describe_node(node, index)} has {len(node.attribute)} attributes, not one value"
            )
        value = helper.get_attribute_value(node.attribute[0])
        if isinstance(value, TensorProto):
            tensors.append((node.output[0], value))
        elif node.attribute[0].name in ("value_float", "value_floats", "value_int", "value_ints"):
            constants[node.output[0]] = np.asarray(value)
        else:
            raise InteropError(f"{where}: {describe_node(node, index)} holds a {node.attribute[0].name}, not a tensor")
    for name, tensor in tensors:
        if tensor.data_location == TensorProto.EXTERNAL:
            raise InteropError(
                f"{where}: tensor {name!r} is stored in an external file; scratchnet reads self-contained models"
            )
        try:
            constants[name] = numpy_helper.to_array(tensor)
        except Exception as error:  # a tensor whose data does not fit its shape or type
            raise InteropError(f"{where}: tensor {name!r} cannot be read: {first_line(error)}") from None
    return constants


def graph_input(
    graph: onnx.GraphProto, constants: Mapping[str, Array], where: str
) -> tuple[str, Shape, int | None, str]:
    """The graph's one data input: its name, the shape of one sample, the batch size if fixed, the dtype."""
    inputs = [value for value in graph.input if value.name not in constants]
    if len(inputs) != 1:
        names = quoted_list(value.name for value in inputs)
        raise InteropError(f"{where}: the graph has {len(inputs)} inputs {names}; scratchnet imports a chain with one")
    if len(graph.output) != 1:
        raise InteropError(f"{where}: the graph has {len(graph.output)} outputs; scratchnet imports a chain with one")
    value = inputs[0]
    kind = value.type.WhichOneof("value")
    if kind != "tensor_type":
        raise InteropError(f"{where}: input {value.name!r} is a {kind}, not a tensor")
    tensor = value.type.tensor_type
    if tensor.elem_type not in ONNX_DTYPES:
        from onnx import TensorProto

        element = TensorProto.DataType.Name(tensor.elem_type) if tensor.elem_type else "of no type"
        raise InteropError(f"{where}: input {value.name!r} is {element}; scratchnet computes in float32 or float64")
    if not tensor.HasField("shape") or len(tensor.shape.dim) < 2:
        raise InteropError(f"{where}: input {value.name!r} needs a shape (batch, ...) with a known size per sample")
    dims = tensor.shape.dim
    sample = []
    for dim in dims[1:]:
        if not dim.HasField("dim_value") or dim.dim_value < 1:
            raise InteropError(
                f"{where}: input {value.name!r} has a shape of unknown size per sample ({dim.dim_param!r})"
            )
        sample.append(int(dim.dim_value))
    batch = int(dims[0].dim_value) if dims[0].HasField("dim_value") else None
    return value.name, tuple(sample), batch, ONNX_DTYPES[tensor.elem_type]


def chain_of(graph: onnx.GraphProto, source: str, where: str) -> list[tuple[onnx.NodeProto, int]]:
    """The nodes from the input to the output, in order, each with its index in the graph; an
    InteropError when a tensor feeds two nodes, a node reads two computed tensors, or a node is off the chain."""
    constants = {tensor.name for tensor in graph.initializer}
    constants |= {node.output[0] for node in graph.node if node.op_type == "Constant" and node.output}
    nodes = [(node, index) for index, node in enumerate(graph.node) if node.op_type != "Constant"]
    readers: dict[str, list[tuple[onnx.NodeProto, int]]] = {}
    for node, index in nodes:
        computed = [name for name in node.input if name and name not in constants]
        if len(set(computed)) > 1:
            raise InteropError(
                f"{where}: {describe_node(node, index)} reads {len(set(computed))} computed tensors "
                f"{quoted_list(computed)}: "
                "the graph merges branches, and scratchnet imports a chain in which each node feeds only the next"
            )
        for name in set(computed):
            readers.setdefault(name, []).append((node, index))
    output = graph.output[0].name
    chain: list[tuple[onnx.NodeProto, int]] = []
    current = source
    while current != output:
        found = readers.get(current, [])
        if len(found) > 1:
            named = ", ".join(describe_node(node, index) for node, index in found)
            raise InteropError(
                f"{where}: tensor {current!r} feeds {len(found)} nodes ({named}): the graph branches, and scratchnet "
                "imports a chain in which each node feeds only the next"
            )
        if not found or len(chain) >= len(nodes):
            raise InteropError(f"{where}: no chain of nodes leads from the input {source!r} to the output {output!r}")
        node, index = found[0]
        for extra in node.output[1:]:
            if extra and (extra in readers or extra == output):
                raise InteropError(
                    f"{where}: {describe_node(node, index)} has a second output that is used: not a chain"
                )
        chain.append((node, index))
        current = node.output[0]
    if output in readers:
        node, index = readers[output][0]
        raise InteropError(f"{where}: {describe_node(node, index)} reads the graph's output: not a chain")
    off = [(node, index) for node, index in nodes if all(node is not other for other, _ in chain)]
    if off:
        raise InteropError(f"{where}: {describe_node(*off[0])} is not on the chain from the input to the output")
    return chain


def check_output(graph: onnx.GraphProto, dtype: str, batch: int | None, classes: int, where: str) -> None:
    """InteropError unless the graph's declared output agrees with what its chain computes: ``(batch,
    classes)`` of ``dtype``. What the declaration leaves open (no type, no shape, a symbolic size) is
    not checked; what it states must be true, or the file says one thing and computes another."""
    from onnx import TensorProto

    value = graph.output[0]
    kind = value.type.WhichOneof("value")
    if kind != "tensor_type":
        raise InteropError(f"{where}: output {value.name!r} is declared a {kind or 'value of no type'}, not a tensor")
    tensor = value.type.tensor_type
    if tensor.elem_type and ONNX_DTYPES.get(tensor.elem_type) != dtype:
        element = TensorProto.DataType.Name(tensor.elem_type)
        raise InteropError(f"{where}: output {value.name!r} is declared {element}, but the graph computes {dtype}")
    if not tensor.HasField("shape"):
        return
    dims = tensor.shape.dim
    computed = f"(batch, {classes}): one row of {classes} outputs per sample"
    if len(dims) != 2:
        raise InteropError(
            f"{where}: output {value.name!r} is declared with {len(dims)} axes, but the graph computes {computed}"
        )
    declared_batch, declared_classes = (int(d.dim_value) if d.HasField("dim_value") else None for d in dims)
    if declared_classes is not None and declared_classes != classes:
        raise InteropError(
            f"{where}: output {value.name!r} is declared with {declared_classes} outputs per sample, "
            f"but the graph computes {classes}"
        )
    if declared_batch is not None and batch is not None and declared_batch != batch:
        raise InteropError(
            f"{where}: output {value.name!r} is declared for a batch of {declared_batch}, but the input's is {batch}"
        )
