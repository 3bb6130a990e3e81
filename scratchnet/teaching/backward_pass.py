"""One sample's backward pass through a loops network, layer by layer, as ``explain --backward`` reads
it: what arrives at each layer (dL/d its output), what it sends back (dL/d its input), every trained
array's gradient, one chosen parameter and its finite-difference check (spec/math.md, section 6).

The pass is the loops backend's own: :meth:`Network.backward` computes the gradients, and the same
layers' ``backward`` are called in the same order once more to keep what each one received and
returned (each backward pass overwrites the gradients, so the second gives the same numbers).
Standard library only.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from scratchnet.core.errors import ConfigError, quoted_list
from scratchnet.core.walk import LayerSite, walk
from scratchnet.loops.network import Network
from scratchnet.loops.tensor import flatten, reshape, shape_of
from scratchnet.teaching.explain_text import num
from scratchnet.teaching.explainers import site_names

Index = tuple[int, ...]


@dataclass
class BackwardPass:
    """``values[l]``: the input of layer l (``values[-1]``: the output, eq. 6); ``start``: the loss's
    gradient (6.1), dL/d the logits for a fused loss; ``arrives[l]``: dL/d the output of layer l,
    None for a last layer fused with the loss; ``sends[l]``: dL/d the input of layer l, None where the
    loops backend does not compute it (the first layer, 6.2); ``grads``: ``Network.grads()``."""

    network: Network
    values: list[Any]
    label: int
    loss: float
    start: Any
    arrives: list[Any]
    sends: list[Any]
    grads: dict[str, Any]
    params: dict[str, Any]
    top: int = 8
    grid: tuple[int, ...] = ()  # (rows, columns) of the grey image a flat input was read from, or ()
    sites: list[LayerSite] = field(init=False)
    names: list[str] = field(init=False)

    def __post_init__(self) -> None:
        self.sites = walk(self.network.plan)
        self.names = site_names(self.sites)

    def layer(self, index: int) -> Any:
        return self.network.layers[index]

    def kind(self, index: int) -> str:
        return self.sites[index].kind

    @property
    def fused_last(self) -> int | None:
        """The last layer when the loss reads its input (a Softmax before cross-entropy, 6.1)."""
        return len(self.network.layers) - 1 if self.network.fused else None


def run_backward(
    network: Network, x: Any, label: int, values: list[Any], top: int = 8, grid: tuple[int, ...] = ()
) -> BackwardPass:
    """Forward ``x`` at inference, the loss for ``label`` and the backward pass (eq. 6.1, 6.2), by
    the loops ``network``; ``values`` are its forward values (``explain.forward_values``)."""
    outputs = network.forward([x])
    loss = network.loss(outputs, [label])
    network.backward()
    grads = network.grads()
    # Network.backward once more, keeping each layer's gradients in and out (the same calls, in order).
    grad = network.loss_function.gradient(network.loss_inputs, network.outputs, network.labels)
    start = grad[0]
    count = len(network.layers)
    layers = network.layers[:-1] if network.fused else network.layers
    arrives: list[Any] = [None] * count
    sends: list[Any] = [None] * count
    if network.fused:
        sends[-1] = start
    for index in reversed(range(len(layers))):
        arrives[index] = grad[0]
        if index > 0:
            grad = layers[index].backward(grad)
            sends[index] = grad[0]
        elif network.first_layer_trained:
            layers[index].backward(grad, need_input_grad=False)
    return BackwardPass(network, values, label, loss, start, arrives, sends, grads, network.params(), top, grid)


WEIGHT = re.compile(r"^\s*([A-Za-z0-9_.]+)\s*\[(.*)\]\s*$")


def weight_name(name: str, index: Index) -> str:
    """``0.weight[3,100]``: how the printout names one value of an array."""
    return f"{name}[{','.join(map(str, index))}]"


def parse_weight(text: str, grads: dict[str, Any]) -> tuple[str, Index]:
    """``"0.weight[3,100]"`` (or ``0.weight[3][100]``) as (array name, index), checked against the
    trained arrays ``grads``; a one-line ConfigError listing what the model has when it is not one."""
    trained = list(grads)
    match = WEIGHT.match(text)
    if match is None:
        raise ConfigError(
            f"--weight {text!r}: expected NAME[i,j,...] such as 0.weight[3,100]; the model has {quoted_list(trained)}"
        )
    name, inside = match.group(1), match.group(2)
    if name not in grads:
        raise ConfigError(f"--weight {text!r}: the model has no trained array {name!r}; it has {quoted_list(trained)}")
    parts = [part.strip() for part in re.split(r"\]\s*\[|,", inside)]
    if not all(re.fullmatch(r"\d+", part) for part in parts):
        raise ConfigError(f"--weight {text!r}: the indices must be whole numbers 0 or more, as in {name}[0]")
    index = tuple(int(part) for part in parts)
    shape = shape_of(grads[name])
    if len(index) != len(shape):
        raise ConfigError(
            f"--weight {text!r}: {name} has shape {shape}, so {len(shape)} "
            f"ind{'ex' if len(shape) == 1 else 'ices'}, got {len(index)}"
        )
    for axis, (k, size) in enumerate(zip(index, shape)):
        if k >= size:
            raise ConfigError(f"--weight {text!r}: index {k} is out of range for axis {axis} of {name}, 0..{size - 1}")
    return name, index


def value_at(array: Any, index: Index) -> float:
    for k in index:
        array = array[k]
    return float(array)


def default_weight(bp: BackwardPass) -> tuple[str, Index]:
    """The weight with the largest |gradient|, over the penalized arrays (the weights of Dense and
    Conv2D layers, not the biases; every trained array when there are none); the first on a tie."""
    names = [name for name in bp.grads if name in bp.network.penalized] or list(bp.grads)
    best: tuple[float, str, int] = (-1.0, names[0], 0)
    for name in names:
        flat = flatten(bp.grads[name])
        for p, g in enumerate(flat):
            if abs(g) > best[0]:
                best = (abs(g), name, p)
    _, name, p = best
    return name, unflat(p, shape_of(bp.grads[name]))


def unflat(p: int, shape: Sequence[int]) -> Index:
    index = []
    for size in reversed(shape):
        p, rest = divmod(p, size)
        index.append(rest)
    return tuple(reversed(index))


def finite_difference(bp: BackwardPass, x: Any, name: str, index: Index) -> tuple[float, float]:
    """(L(w + h) - L(w - h)) / 2h for value ``index`` of array ``name``, by the loops network in
    float64 at inference, and h = 1e-5 * max(1, |w|): a central difference, whose error is of order
    h^2 against the rounding of L, of order 1e-16 / h. The network's arrays are restored after."""
    original = bp.network.params()
    w = value_at(original[name], index)
    h = 1e-5 * max(1.0, abs(w))
    losses = []
    for shifted in (w + h, w - h):
        changed = dict(original)
        flat = flatten(original[name])
        shape = shape_of(original[name])
        flat[_flat_index(index, shape)] = shifted
        changed[name] = reshape(flat, shape) if shape else flat
        bp.network.set_params(changed)
        losses.append(bp.network.loss(bp.network.forward([x]), [bp.label]))
    bp.network.set_params(original)
    return (losses[0] - losses[1]) / (2.0 * h), h


def _flat_index(index: Index, shape: Sequence[int]) -> int:
    p = 0
    for k, size in zip(index, shape):
        p = p * size + k
    return p


def stats(values: Any) -> str:
    """A gradient summed up: how many values, how many are not 0, the range, the largest |g| and
    where it is, and the root mean square."""
    shape = shape_of(values)
    flat = flatten(values) if shape else [float(values)]
    if not flat:
        return "no values"
    largest = max(range(len(flat)), key=lambda p: abs(flat[p]))
    where = "".join(f"[{k}]" for k in unflat(largest, shape)) if shape else ""
    nonzero = sum(1 for g in flat if g != 0.0)
    rms = math.sqrt(math.fsum(g * g for g in flat) / len(flat))
    size = "x".join(map(str, shape)) if len(shape) > 1 else str(len(flat))
    return (
        f"{size} values, {nonzero} not 0, from {num(min(flat))} to {num(max(flat))}, "
        f"largest |.| at {where or '[0]'} = {num(flat[largest])}, rms {num(rms)}"
    )
