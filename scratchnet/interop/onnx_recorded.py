"""An ONNX graph that scratchnet exported, read back by the architecture it records.

A chain of one operator per layer is read node by node (:mod:`scratchnet.interop.onnx_import`). A
graph that reads token ids, or has a layer of several operators (attention, the norms, GELU, the
embeddings, Dense on a sequence, a container), is not a chain: scratchnet reads it back only as it
wrote it. The file's ``architecture`` metadata names the network; its initializers give the arrays
by their scratchnet names; and the graph scratchnet exports for that network with those arrays, at
the file's opset, must be the file's graph, node for node and constant for constant. So the model
read computes what the graph computes, and any other graph (another producer's attention, an
edited node) is refused with one line naming the first node that differs.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from scratchnet.core.architecture import Plan, canonical, plan
from scratchnet.core.errors import ConfigError, InteropError
from scratchnet.core.jsonread import JSONInputError, read_json
from scratchnet.core.walk import LayerSite, every_layer, walk
from scratchnet.interop.onnx_export import ARCHITECTURE_KEY, EXPORTERS, to_onnx
from scratchnet.interop.onnx_graph import ONNX_DTYPES, Array, constants_of, describe_node
from scratchnet.interop.onnx_nodes import Node
from scratchnet.interop.portable import Portable, check_arrays, check_names, read_portable_metadata

if TYPE_CHECKING:
    import onnx


def reads_tokens(graph: onnx.GraphProto) -> bool:
    """Whether the graph's first input holds integers (token ids)."""
    from onnx import TensorProto

    integers = (TensorProto.INT64, TensorProto.INT32)
    return bool(graph.input) and graph.input[0].type.tensor_type.elem_type in integers


def needs_recorded(graph: onnx.GraphProto, props: Mapping[str, str], where: str, chain_ops: Collection[str]) -> bool:
    """Whether the graph is read by its recorded architecture: it reads token ids, or the architecture
    it records has a layer that does not export as one of the operators ``chain_ops`` that the chain
    importer reads (see the module's docstring), or a layer without its bias (a Dense(bias=false), whose
    Gemm without C the chain importer reads as a zero bias, as from any other producer)."""
    if reads_tokens(graph):
        return True
    if ARCHITECTURE_KEY not in props:
        return False
    checked = _recorded_plan(props, where, None)
    sites = every_layer(walk(checked))
    if any(site.options.get("bias") is False for site in sites):
        return True
    return checked.vocabulary is not None or not all(_one_operator(site, chain_ops) for site in sites)


def _one_operator(site: LayerSite, chain_ops: Collection[str]) -> bool:
    """Whether the layer at ``site`` exports as one of ``chain_ops`` (or as nothing: a Dropout)."""
    exporter = EXPORTERS.get(site.kind)
    made = None if exporter is None else exporter(site.options, site.input_shape)
    return exporter is not None and (made is None or (isinstance(made, Node) and made.op in chain_ops))


def _recorded_plan(props: Mapping[str, str], where: str, loss: str | None) -> Plan:
    if ARCHITECTURE_KEY not in props:
        raise InteropError(
            f"{where}: the graph reads token ids; scratchnet imports a token network (embeddings, attention) "
            "only from a graph it exported itself, which records its architecture"
        )
    try:
        description = read_json(props[ARCHITECTURE_KEY], "its metadata's architecture")
    except JSONInputError as error:
        raise InteropError(f"{where}: {error}") from None
    if loss is not None and isinstance(description, dict):
        description = {**description, "loss": {"type": loss}}
    try:
        return plan(description)
    except ConfigError as error:
        raise InteropError(f"{where}: its metadata's architecture: {error}") from None


def from_recorded(proto: onnx.ModelProto, where: str, *, loss: str | None = None) -> Portable:
    """The scratchnet model of a graph scratchnet exported (see the module's docstring)."""
    props = {entry.key: entry.value for entry in proto.metadata_props}
    checked = _recorded_plan(props, where, loss)
    graph = proto.graph
    constants = constants_of(graph, where)
    arrays = {name: constants[name] for name in checked.shapes() if name in constants}
    check_names(checked, arrays, where)
    dtype = ONNX_DTYPES.get(graph.output[0].type.tensor_type.elem_type) if len(graph.output) == 1 else None
    if dtype is None:
        raise InteropError(f"{where}: the graph does not have one float32 or float64 output")
    for name, value in arrays.items():
        if value.dtype != np.dtype(dtype):
            raise InteropError(f"{where}: tensor {name!r} is {value.dtype}, but the graph computes in {dtype}")
    check_arrays(checked, arrays, where)
    opset = next(entry.version for entry in proto.opset_import if entry.domain in ("", "ai.onnx"))
    imported = {
        "format": "onnx",
        "file": Path(where).name,
        "producer": f"{proto.producer_name} {proto.producer_version}".strip(),
        "opset": int(opset),
    }
    metadata = read_portable_metadata(props, where, checked)
    model = Portable(canonical(checked.description), arrays, dtype, metadata, imported)
    try:
        expected = to_onnx(model, int(opset)).graph
    except (ConfigError, InteropError) as error:
        raise InteropError(f"{where}: scratchnet does not export its architecture at opset {opset}: {error}") from None
    _compare(expected, graph, constants, where)
    return model


def _compare(expected: onnx.GraphProto, graph: onnx.GraphProto, constants: Mapping[str, Array], where: str) -> None:
    """InteropError naming the first difference between the graph scratchnet exports and the file's."""
    from onnx import numpy_helper

    suffix = "scratchnet imports such a graph only as it exports it"
    for index, (node, wanted) in enumerate(zip(graph.node, expected.node)):
        if node != wanted:
            raise InteropError(
                f"{where}: {describe_node(node, index)} is not what scratchnet exports for the architecture the "
                f"file records ({describe_node(wanted, index)} with its inputs and attributes); {suffix}"
            )
    if len(graph.node) != len(expected.node):
        raise InteropError(
            f"{where}: the graph has {len(graph.node)} nodes, but scratchnet exports {len(expected.node)} for the "
            f"architecture the file records; {suffix}"
        )
    if list(graph.input) != list(expected.input) or list(graph.output) != list(expected.output):
        raise InteropError(f"{where}: its input or output is not declared as scratchnet declares it; {suffix}")
    wanted_constants = {tensor.name: numpy_helper.to_array(tensor) for tensor in expected.initializer}
    if set(constants) != set(wanted_constants):
        extra = sorted(set(constants) ^ set(wanted_constants))
        raise InteropError(f"{where}: tensor {extra[0]!r} is not one scratchnet exports here; {suffix}")
    for name, value in wanted_constants.items():
        found: Any = constants[name]
        if found.dtype != value.dtype or found.shape != value.shape or found.tobytes() != value.tobytes():
            raise InteropError(f"{where}: constant {name!r} is not the one scratchnet exports; {suffix}")
