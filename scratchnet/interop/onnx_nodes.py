"""What a layer becomes in an ONNX graph: one operator (:class:`Node`) or several (:class:`Composite`,
built through a :class:`LayerGraph`). The tables of :mod:`scratchnet.interop.onnx_export` map each
layer type to one of them.

Names, so that a graph reads layer by layer: the arrays of the layer at path ``(3,)`` are the
initializers ``3.weight`` (its registry names); the constants a composite needs besides them
(a shape, a scale) are ``3.<what>``; its steps are the nodes ``3.<Type>.<step>`` writing ``3.<step>``,
the last of them ``3.out``. A one-operator layer is the node ``3.<Type>`` writing ``3.out``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from scratchnet.core.registry import Shape
from scratchnet.core.walk import LayerSite, array_name

if TYPE_CHECKING:
    import onnx

OUT = "out"  # the step that gives a layer's output


@dataclass(frozen=True)
class Node:
    """The operator a layer becomes: ``op`` reading the previous output, then the layer's ``arrays``
    (by their names in the layer: ``"weight"``), with ``attributes``."""

    op: str
    arrays: tuple[str, ...] = ()
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Composite:
    """A layer of several operators: ``build(graph, x)`` adds them for the input tensor ``x`` and
    returns the name of the output (its last node's, the step :data:`OUT`)."""

    build: Callable[[LayerGraph], str]


@dataclass
class GraphParts:
    """The nodes and the constants (other than the arrays) of a graph being built, and how to add a
    list of layers to it (for a container, whose layers export in place)."""

    dtype: str
    opset: int
    export_layers: Callable[[Sequence[LayerSite], str], str]
    nodes: list[onnx.NodeProto] = field(default_factory=list)
    constants: dict[str, npt.NDArray[Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class LayerGraph:
    """One layer being added to the graph: its site (options, input shape, path) and its input ``x``."""

    parts: GraphParts
    site: LayerSite
    x: str

    @property
    def options(self) -> dict[str, Any]:
        return self.site.options

    @property
    def shape(self) -> Shape:
        return self.site.input_shape

    @property
    def opset(self) -> int:
        return self.parts.opset

    def array(self, name: str) -> str:
        """The initializer of the layer's array ``name``: ``"3.weight"``."""
        return array_name(self.site.path, name)

    def constant(self, what: str, value: Any, dtype: str | None = None) -> str:
        """A constant of the model's dtype (or ``dtype``), named ``"3.<what>"``."""
        name = f"{self.site.prefix}.{what}"
        self.parts.constants[name] = np.asarray(value, dtype=dtype or self.parts.dtype)
        return name

    def ints(self, what: str, values: int | Sequence[int]) -> str:
        """An int64 constant (an axis, a shape, an index): a scalar for an int, else a vector."""
        return self.constant(what, values, "int64")

    def node(self, op: str, inputs: Sequence[str], step: str, **attributes: Any) -> str:
        """Add the node ``3.<Type>.<step>`` computing ``op`` of ``inputs``; return its output ``3.<step>``."""
        from onnx import helper

        output = f"{self.site.prefix}.{step}"
        name = f"{self.site.prefix}.{self.site.kind}.{step}"
        self.parts.nodes.append(helper.make_node(op, list(inputs), [output], name=name, **attributes))
        return output

    def layers(self, sites: Sequence[LayerSite], x: str) -> str:
        """Add the layers ``sites`` (a container's) in order from ``x``; return their output."""
        return self.parts.export_layers(sites, x)
