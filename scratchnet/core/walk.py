"""The walk over a network's layers: each layer's place, type, options and input shape, containers included.

A layer's place is its *path*: ``(3,)`` for layer 3 of the network, ``(3, 0)`` for the first layer
inside layer 3 when layer 3 is a container (a layer type whose registry entry has ``children``, such
as a residual block: it runs the layers it holds, in order, on its own input). Arrays are named by
the path of their layer and their own name, ``"3.weight"`` or ``"3.0.weight"``, as PyTorch names
the parameters of nested modules. Everything that goes over a network's layers (the teaching
tools' names and blocks, say) goes through :func:`walk`, so that a container is one registry entry
away. Standard library only.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from scratchnet.core.errors import ConfigError
from scratchnet.core.registry import Shape, layer_type, options_of


class Planned(Protocol):
    """What the walk needs of a network's plan (:class:`scratchnet.core.architecture.Plan`)."""

    def layers(self) -> list[tuple[str, dict[str, Any], Shape]]: ...


@dataclass(frozen=True)
class LayerSite:
    """One layer in its place: ``path`` (see the module's docstring), its registry type name, its
    full options, its input shape, and the layers it holds when it is a container."""

    path: tuple[int, ...]
    kind: str
    options: dict[str, Any]
    input_shape: Shape
    children: tuple[LayerSite, ...] = ()

    @property
    def index(self) -> int:
        """Its index among the layers of its container (of the network, at the top)."""
        return self.path[-1]

    @property
    def prefix(self) -> str:
        """The start of its arrays' names: ``"3"``, or ``"3.0"`` inside a container."""
        return ".".join(map(str, self.path))


def array_name(path: Sequence[int], name: str) -> str:
    """The name of array ``name`` of the layer at ``path``: ``"3.weight"``, ``"3.0.weight"``."""
    return ".".join([*map(str, path), name])


def walk(plan: Planned) -> list[LayerSite]:
    """The network's layers in order, each with the layers it holds when it is a container."""
    return [_site((index,), kind, options, shape) for index, (kind, options, shape) in enumerate(plan.layers())]


def _site(path: tuple[int, ...], kind: str, options: dict[str, Any], shape: Shape) -> LayerSite:
    entry = layer_type(kind)
    if entry.children is None:
        return LayerSite(path, kind, options, shape)
    children = []
    inner = shape
    for index, description in enumerate(entry.children(options)):
        where = f"layer {array_name(path, str(index))}"
        child_options = options_of(description, where)
        child = layer_type(description.get("type"))
        children.append(_site((*path, index), child.name, child_options, inner))
        try:
            inner = tuple(child.output_shape(child_options, inner))
        except ConfigError as error:
            raise ConfigError(f"{where} ({child.name}) {error}") from None
    return LayerSite(path, kind, options, shape, tuple(children))


def every_layer(sites: Sequence[LayerSite]) -> Iterator[LayerSite]:
    """Each site and, right after a container, the sites inside it (depth first, in network order)."""
    for site in sites:
        yield site
        yield from every_layer(site.children)


def kinds(plan: Planned) -> list[str]:
    """The type name of each layer of the network (the top level), as the registry names it."""
    return [site.kind for site in walk(plan)]
