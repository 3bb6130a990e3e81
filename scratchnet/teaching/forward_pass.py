"""One input's pass through a loops network, as :mod:`scratchnet.teaching.explain` reads it: every
layer's input, and what the explainers need to know about the layers around the one they explain
(its name, what it reads, the activation after it, its block). Standard library only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from scratchnet.core.walk import LayerSite, walk
from scratchnet.loops.network import Network
from scratchnet.loops.tensor import flatten
from scratchnet.teaching.explainers import EXPLAINERS, NEURON, Explainer, block_end, explainer_of, site_names
from scratchnet.teaching.explanation import FeatureMaps

NO_ACTIVATION = "Identity"  # the activation a neuron with none after it is said to have: a = z (eq. 4.5)
DEFAULT_MAPS = 8  # feature maps drawn per Conv2D layer


@dataclass
class ForwardPass:
    """``values[l]``: the input of layer l for one sample; ``values[-1]``: the network's output (eq. 6).
    The rest are explain's settings: the label (None: no loss, no gradients), how many terms and
    gradients to list, how many feature maps to draw, and the shape a first layer's flat inputs
    were read from (``()``: none; names each input by its place)."""

    network: Network
    values: list[Any]
    label: int | None = None
    top: int = 8
    top_gradients: int = 5
    maps: int = DEFAULT_MAPS
    image_grid: tuple[int, ...] = ()
    sites: list[LayerSite] = field(init=False)
    names: list[str] = field(init=False)  # each layer's short name, e.g. Dense(784, 32)

    def __post_init__(self) -> None:
        self.sites = walk(self.network.plan)
        self.names = site_names(self.sites)

    def kind(self, index: int) -> str:
        return self.sites[index].kind

    def explainer(self, index: int) -> Explainer:
        return explainer_of(self.sites[index].kind)

    def layer(self, index: int) -> Any:
        """The loops layer ``index``, whose attributes (``neurons``, ``fields`` ...) the explainers read."""
        return self.network.layers[index]

    def neuron_layers(self) -> list[int]:
        """The indices of the layers explained neuron by neuron (the Dense layers)."""
        return neuron_layers(self.network)

    def block_end(self, index: int) -> int:
        return block_end(self.network.plan, index)

    def previous(self, index: int) -> int:
        """The layer whose output layer ``index`` reads, past any that pass their input through at
        inference (Dropout); -1 for the network's input."""
        previous = index - 1
        while previous >= 0 and self.explainer(previous).passes_through:
            previous -= 1
        return previous

    def input_name(self, index: int, output: str = "the output") -> str:
        """What layer ``index`` reads: the input, or the output of the layer before it."""
        previous = self.previous(index)
        if previous < 0:
            return "the input"
        return f"{output} of layer {previous} ({self.names[previous]})"

    def activation_after(self, index: int) -> int | None:
        """The index of the activation layer that follows layer ``index`` (past any Dropout, the
        identity at inference); None when the next layer is another kind or there is none."""
        for later in range(index + 1, len(self.sites)):
            entry = self.explainer(later)
            if entry.passes_through:
                continue
            return later if entry.activation is not None else None
        return None

    def after(self, index: int, p: int) -> tuple[str, int | None, float | None, str]:
        """The elementwise activation right after layer ``index`` (past Dropout) and its output at flat
        position ``p``, or where the output goes instead: (activation type, its index, a, then)."""
        act_index = self.activation_after(index)
        if act_index is not None:
            activation = self.explainer(act_index).activation
            if activation is not None and activation.elementwise:
                return self.kind(act_index), act_index, flatten(self.values[act_index + 1])[p], ""
        return "", None, None, self.goes_on(index)

    def goes_on(self, index: int) -> str:
        """Where the output of layer ``index`` goes when no activation follows it directly."""
        if index + 1 < len(self.sites):
            return f"it goes on to layer {index + 1} ({self.names[index + 1]})"
        return ""

    def maps_of(self, layer: int) -> FeatureMaps:
        """The feature maps of ``layer``: of its block, when it heads one (a Conv2D layer's)."""
        entry = EXPLAINERS.get(self.kind(layer))  # any layer of (C, H, W) outputs has maps, explained or not
        shown = self.block_end(layer) if entry is not None and entry.heads_block else layer
        output = self.values[shown + 1]
        flat = flatten(output)
        return FeatureMaps(shown, self.names[shown], output, min(flat), max(flat))


def layers_where(network: Network, test: Callable[[Explainer], bool]) -> list[int]:
    """Indices in ``network.layers`` of the layers whose explainer passes ``test``."""
    return [site.index for site in walk(network.plan) if site.kind in EXPLAINERS and test(EXPLAINERS[site.kind])]


def maps_layers(network: Network) -> list[int]:
    """Indices in ``network.layers`` of the layers whose units make feature maps (the Conv2D layers)."""
    return layers_where(network, lambda entry: entry.feature_maps)


def neuron_layers(network: Network) -> list[int]:
    """Indices in ``network.layers`` of the layers explained neuron by neuron (as in ``0.weight``)."""
    return layers_where(network, lambda entry: entry.units == NEURON)
