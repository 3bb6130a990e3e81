"""Incremental decoding: a token network fed one new position at a time, each attention layer keeping
the keys and values of the positions before it (spec/math.md, section 24). Standard library only.

A layer that can decode has a method ``step(inputs, cache)``: given the new position of each sequence,
``(N, 1, C)`` (token ids ``(N, 1)`` for the first layer), it returns that position's output, exactly
row ``t`` of what ``forward`` gives for the whole sequence 0..t, with ``t = cache.position``.

* A layer that computes each position from that position alone (Dense, the activations, Softmax,
  LayerNorm, RMSNorm, Embedding, Dropout at inference) steps by its forward pass.
* A layer that reads the position (PositionEmbedding) or the positions before it (CausalSelfAttention)
  reads ``cache.position`` and keeps what it needs in its own state, ``cache.state(self, make)``.
* A **container** (a residual block ``y = x + f(x)``, ``f`` a list of layers) steps its children in
  order with the same cache, :func:`step_layers`, and combines the result as its forward pass does:
  ``x + step_layers(children, x, cache)``. Each child keeps its own state in the cache (keyed by the
  child itself), so the container needs to know nothing about which of them remember.

:class:`Decoder` drives a network (of either backend) through the steps; it advances
``cache.position`` once every layer has stepped, so that all of them see the same ``t``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

from scratchnet.core.errors import ConfigError, ShapeError

StateT = TypeVar("StateT")


class Cache:
    """What decoding keeps between steps: ``position``, the index ``t`` of the position being fed (0 for
    the first token), ``length``, the most positions it may hold (the network's context), and each
    layer's own state (an attention layer's keys and values)."""

    def __init__(self, length: int) -> None:
        self.length = length
        self.position = 0
        self.states: dict[int, Any] = {}

    def state(self, layer: object, make: Callable[[], StateT]) -> StateT:
        """``layer``'s state, made by ``make()`` on its first step."""
        key = id(layer)  # layers are compared by identity: two equal layers keep two states
        if key not in self.states:
            self.states[key] = make()
        state: StateT = self.states[key]
        return state


class Stepping(Protocol):
    """A layer that can decode one position at a time (see the module's docstring)."""

    def step(self, inputs: Any, cache: Cache) -> Any: ...
    def describe(self) -> dict[str, Any]: ...


def step_layers(layers: Sequence[Any], inputs: Any, cache: Cache, where: str = "layer") -> Any:
    """The new position through ``layers`` in order, each by its ``step`` (what a container's own
    ``step`` calls on its children)."""
    for index, layer in enumerate(layers):
        inputs = stepping(layer, f"{where} {index}").step(inputs, cache)
    return inputs


def stepping(layer: Any, where: str) -> Stepping:
    """``layer`` if it can decode one position at a time, else a one-line ConfigError naming it."""
    if not callable(getattr(layer, "step", None)):
        kind = layer.describe().get("type", type(layer).__name__)
        raise ConfigError(f"{where} ({kind}) cannot decode one position at a time: it has no step()")
    checked: Stepping = layer
    return checked


def rows(batch: Any) -> list[list[float]]:
    """The one position of each sequence of a ``(N, 1, K)`` batch (nested lists or an array), as lists."""
    if hasattr(batch, "tolist"):
        batch = batch.tolist()
    return [[float(value) for value in sample[0]] for sample in batch]


class Decoder:
    """A token network of either backend, fed one token of each of ``N`` sequences at a time.

    ``step(tokens)`` feeds position ``t = position`` and returns the network's output there for each
    sequence (the next-token distribution when it ends with a Softmax); ``logits`` then holds the scores
    that Softmax read (the outputs themselves when the network does not end with the layer its loss is
    fused with). A step costs O(t): the new query against the cached keys. ``reset()`` forgets every
    sequence. At most ``length`` positions (the network's context, its input length) can be fed.
    """

    def __init__(self, network: Any) -> None:
        if getattr(network, "vocabulary", None) is None:
            raise ConfigError("decoding needs a network that reads token ids (a vocabulary in its architecture)")
        self.network = network
        self.layers: list[Stepping] = [stepping(layer, f"layer {i}") for i, layer in enumerate(network.layers)]
        self.length: int = int(network.input_shape[0])
        self.cache = Cache(self.length)
        self.batch = 0  # N, fixed by the first step after a reset
        self.logits: list[list[float]] = []

    @property
    def position(self) -> int:
        """How many positions have been fed since the last reset (the index of the next one)."""
        return self.cache.position

    def reset(self) -> None:
        """Forget every position: the next step is position 0 again."""
        self.cache = Cache(self.length)
        self.batch = 0
        self.logits = []

    def step(self, tokens: Sequence[int]) -> list[list[float]]:
        """Feed one token id per sequence; the output at that position, one row per sequence."""
        if self.cache.position >= self.length:
            raise ShapeError(
                f"the network reads at most {self.length} positions, and {self.length} have been fed: "
                "reset the decoder and feed the last tokens again"
            )
        if not tokens or (self.batch and len(tokens) != self.batch):
            raise ShapeError(f"a step feeds one token per sequence: {self.batch or 'at least one'}, got {len(tokens)}")
        self.batch = len(tokens)
        activations: Any = [[token] for token in tokens]  # ids (N, 1); the Embedding checks them
        logits = activations
        for layer in self.layers:
            logits = activations  # the input of the last layer, when the loop ends
            activations = layer.step(activations, self.cache)
        self.cache.position += 1
        outputs = rows(activations)
        self.logits = rows(logits) if self.network.fused else outputs
        return outputs

    def feed(self, tokens: Sequence[int]) -> list[float]:
        """Feed one sequence's tokens in turn (a batch of one); the output after the last of them."""
        if not tokens:
            raise ShapeError("there are no tokens to feed")
        outputs: list[list[float]] = []
        for token in tokens:
            outputs = self.step([token])
        return outputs[0]
