"""The teaching side of each layer type, registered once, keyed by the layer registry's type name.

The layer registry (:mod:`scratchnet.core.registry`) says what a layer type computes; this table
says how ``scratchnet explain`` and ``scratchnet serve``'s page show it: the short name of a layer
in a printout, the line of the forward pass, the equation of one of its units, how one unit is
explained and printed, which layers belong to the block of the layer before them, for an
activation, its equation and derivative, and its step of the backward pass (``explain --backward``).
:mod:`scratchnet.teaching.explain`, :mod:`scratchnet.teaching.explain_text`, ``serve`` and ``plot``
ask this table; none of them names a layer type. The built-in types are registered in
:mod:`scratchnet.teaching.layer_explainers`; a new type is one :func:`register_explainer` call
(docs/layers.md).

Blocks: a layer that ``heads_block`` (a Dense or Conv2D layer) and the layers right after it that
``join_block`` (BatchNorm, Dropout, an elementwise activation) are one block; the block's last
output is what the next layer sees, and what the page draws. Every other layer is a block of its
own. Standard library only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from scratchnet.core.errors import ConfigError
from scratchnet.core.walk import LayerSite, Planned, walk
from scratchnet.teaching.explanation import Explanation, LayerOutput

# What explain and follow receive: teaching.forward_pass's ForwardPass, which reads this table, so it
# cannot be imported here (not even for its type: the package has no import cycles).
ForwardPass = Any
# What a backward rule's functions receive: teaching.backward_pass's BackwardPass (the same reason).
BackwardPass = Any

NEURON = "neuron"  # units chosen by --neuron: one per output value, each a weighted sum (a Dense layer)
CHANNEL = "channel"  # units chosen by --channel (and --row, --col): one per output value of (C,) or (C, H, W)


@dataclass(frozen=True)
class Activation:
    """How explain names an activation: the equation of f and its rule, and of f'. An elementwise
    one (a = f(z) value by value) is printed as ``<type>.f``; another (Softmax) by its ``function``,
    with its outputs summed up in ``outputs`` and its backward step in ``backward``."""

    equation: str
    rule: str
    derivative: str
    elementwise: bool = True
    trivial: bool = False  # a = z: the page leaves it out
    function: str = ""  # how the printout names a non-elementwise activation ("softmax")
    outputs: str = ""  # the heading of the output section after it ("" for the plain one)
    backward: tuple[str, str] = ("", "")  # (equation, text) of its backward step, when not elementwise


UNKNOWN_ACTIVATION = Activation("4", "a = f(z)", "f'(z)")


@dataclass(frozen=True)
class BackwardRule:
    """How ``explain --backward`` shows a layer type's step of the backward pass (eq. 6.2).

    - ``equations``, ``function``, ``rule``: its equation numbers (``"3.2-3.4"``), the loops function
      (``"Dense.backward"``) and its formulas, printed on the layer's line.
    - ``arrives``, ``sends``: the names of the gradient that arrives (``"dL/dz"``: a layer whose
      output is a weighted sum calls it delta) and of the one it sends back.
    - ``note(backward_pass, layer)``: an optional line of this layer's own numbers (how many
      gradients a ReLU let through ...).
    - ``parameter(backward_pass, layer, array, index)``: one value of one of its trained arrays,
      term by term: ``(rows, value)``, each row (text, its number as printed or ""), ending with
      the value they add up to.
    - ``input_terms(backward_pass, layer, i)``: the gradient it sends back to its input ``i`` as a
      sum, dL/dx[i] = sum_k weight * delta[k]: (its equation, the terms as (k, weight, delta[k])),
      for a layer whose inputs each see every delta of its output (Dense, eq. 3.4); None otherwise.
    """

    equations: str
    function: str
    rule: str
    arrives: str = "dL/da"
    sends: str = "dL/dx"
    note: Callable[[BackwardPass, int], str] | None = None
    parameter: Callable[[BackwardPass, int, str, tuple[int, ...]], tuple[list[tuple[str, str]], float]] | None = None
    input_terms: Callable[[BackwardPass, int, int], tuple[str, list[tuple[int, float, float]]]] | None = None


@dataclass(frozen=True)
class Explainer:
    """The teaching side of one layer type; every field is optional.

    - ``name(options)``: its short name in a printout, e.g. ``Dense(784, 32)`` (default: the type).
    - ``summary(layer_output)``: its line of the forward pass (default: an activation's line, or
      the range of its outputs).
    - ``equation``: (equation number, function, formula) of one of its units, e.g. eq. 2.1 for Dense.
    - ``activation``: set for an activation layer.
    - ``units``: :data:`NEURON` or :data:`CHANNEL` when explain explains its units, by ``explain``
      (``explain(forward_pass, layer, p, why)`` returns the record of its output value p) and
      ``format`` (``format(explanation, record)``: the printout's lines); ``follow(forward_pass,
      layer, p)`` gives the unit that value p of its input feeds (None: the most active unit).
    - ``heads_block``, ``joins_block``: see the module's docstring.
    - ``passes_through``: the identity at inference (Dropout), skipped when looking for what a
      layer reads or which activation follows it.
    - ``feature_maps``: its units make feature maps (Conv2D): explain draws its block's maps.
    - ``drawn``: the page draws its output (its block's, when it heads one).
    - ``backward``: its step of the backward pass, as ``explain --backward`` shows it.
    - ``attention``: its loops layer is an attention layer that keeps, after each forward pass,
      ``attention_weights[n][h][t][s]``, ``queries``, ``keys``, ``values`` and ``outputs`` (per
      sample, position and value), ``dim``, ``heads`` and ``head_dim``: ``explain --text`` draws its heads'
      weights and explains one head term by term (eq. 20.2-20.4).
    """

    kind: str
    name: Callable[[Mapping[str, Any]], str] | None = None
    summary: Callable[[LayerOutput], str] | None = None
    equation: tuple[str, str, str] | None = None
    activation: Activation | None = None
    units: str | None = None
    explain: Callable[[ForwardPass, int, int, str], Any] | None = None  # returns its kind of record
    format: Callable[[Explanation, Any], list[str]] | None = None  # takes that record
    follow: Callable[[ForwardPass, int, int], int | None] | None = None
    heads_block: bool = False
    joins_block: bool = False
    passes_through: bool = False
    feature_maps: bool = False
    drawn: bool = False
    backward: BackwardRule | None = None
    attention: bool = False


EXPLAINERS: dict[str, Explainer] = {}


def register_explainer(explainer: Explainer) -> Explainer:
    """Add ``explainer`` to the table (replacing an entry for the same type) and return it."""
    if explainer.units is not None and (explainer.units not in (NEURON, CHANNEL) or explainer.explain is None):
        raise ConfigError(f"the explainer of {explainer.kind} needs units 'neuron' or 'channel' and an explain")
    EXPLAINERS[explainer.kind] = explainer
    return explainer


def explained_types() -> list[str]:
    """The layer types explain can explain, in the order they were registered."""
    return list(EXPLAINERS)


def explainer_of(kind: str) -> Explainer:
    """The explainer of layer type ``kind``; ConfigError naming it when there is none."""
    if kind not in EXPLAINERS:
        raise ConfigError(f"explain cannot explain {kind} layers; it explains {', '.join(EXPLAINERS)}")
    return EXPLAINERS[kind]


def activation_of(kind: str) -> Activation:
    """How explain names activation ``kind`` (a generic f for a type registered without one)."""
    entry = EXPLAINERS.get(kind)
    return entry.activation if entry is not None and entry.activation is not None else UNKNOWN_ACTIVATION


def layer_name(kind: str, options: Mapping[str, Any]) -> str:
    """The short name of a layer in a printout, e.g. ``Dense(784, 32)``, ``Conv2D(1 -> 8, 3x3)``."""
    entry = EXPLAINERS.get(kind)
    return entry.name(options) if entry is not None and entry.name is not None else kind


def site_names(sites: Sequence[LayerSite]) -> list[str]:
    """The short names of the layers at ``sites``."""
    return [layer_name(site.kind, site.options) for site in sites]


@dataclass(frozen=True)
class Block:
    """Layers ``first`` to ``last`` of one container (of the network, at the top): a layer that heads
    a block and the layers that join it, or one layer on its own. ``path`` is the container's
    (``()`` at the top), so layer ``first`` is at path ``(*path, first)``."""

    first: int
    last: int
    path: tuple[int, ...] = ()


def blocks_of(sites: Sequence[LayerSite]) -> list[Block]:
    """The blocks of a sequence of sibling layers (the network's, or those inside a container)."""
    found: list[Block] = []
    open_block = False  # whether the last block is headed by a layer that others may join
    for position, site in enumerate(sites):
        entry = EXPLAINERS.get(site.kind)
        joins = entry is not None and entry.joins_block
        if joins and open_block:
            found[-1] = Block(found[-1].first, position, found[-1].path)
            continue
        found.append(Block(position, position, site.path[:-1]))
        open_block = entry is not None and entry.heads_block
    return found


def blocks(plan: Planned) -> list[Block]:
    """The blocks of a network's layers (a container's layers are grouped by :func:`blocks_of`
    on its ``children``)."""
    return blocks_of(walk(plan))


def block_end(plan: Planned, index: int) -> int:
    """The last layer of the block that layer ``index`` heads (``index`` itself when it heads none)."""
    block = next(block for block in blocks(plan) if block.first <= index <= block.last)
    return block.last if block.first == index else index
