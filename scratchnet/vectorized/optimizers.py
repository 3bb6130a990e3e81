"""Optimizers: how parameters move given their gradients (spec/math.md, sections 8 and 9).

Every optimizer follows PyTorch's definition (``torch.optim``), with the same constructor arguments
and defaults. The vectorized backend's ``params()`` returns the live arrays, so a step updates them
in place. The gradients are live too and are never written to (weight decay makes a new array).

Per-parameter state is allocated once, on the first step, shaped and typed like the parameter, and
updated in place after that. It is keyed ``"<param>.<slot>"`` with PyTorch's slot names, e.g.
``"0.weight.exp_avg"``; ``export_state``/``import_state`` move it, with the step count, between
optimizers and between backends. The arithmetic is done in the same order as in
``scratchnet/loops/optimizers.py``, so both backends round alike.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from functools import partial
from typing import Any, Protocol, cast

import numpy as np

from scratchnet.core import optimizers
from scratchnet.core.errors import ConfigError, ShapeError
from scratchnet.core.interface import Trainable
from scratchnet.core.schedules import Schedule
from scratchnet.core.settings import parse_state
from scratchnet.vectorized.parallel import chunks, run_all
from scratchnet.vectorized.tensor import Array


class FlatTrainable(Trainable[Array], Protocol):
    """A network whose parameters are views of one flat array and whose gradients are views of
    another, in ``params()`` order (scratchnet's vectorized Network): a step then updates every
    parameter with one NumPy call per operation."""

    def flat_params(self) -> Array: ...
    def flat_grads(self) -> Array: ...


ALL = "*"  # a flat step's part k of the flat arrays is named "*k"; its state is "*k.<slot>"


class Optimizer(optimizers.Rule):
    """The state plumbing every optimizer below shares: per-parameter state as arrays (kept flat
    after a flat step), moved between optimizers and backends by ``export_state``/``import_state``.
    Settings, the learning rate and ``describe`` are :class:`scratchnet.core.optimizers.Rule`'s;
    each subclass writes ``update``."""

    def __init__(self, lr: float, schedule: Schedule | None) -> None:
        super().__init__(lr, schedule)
        self.state: dict[str, Array] = {}  # "<param>.<slot>" -> an array shaped like the parameter
        self.scratch: dict[str, Array] = {}  # a work array per parameter, so that no step allocates
        # After a flat step the state is kept flat instead, one array per part of the flat arrays
        # and slot, "*k.<slot>"; the layout gives the (name, shape) pairs in params() order and the
        # parts, and named_state() the per-parameter arrays.
        self.layout: list[tuple[str, tuple[int, ...]]] = []
        self.parts: list[slice] = []

    def step(self, network: Trainable[Array]) -> None:
        """Move every parameter of ``network`` one step against the gradients of its last backward pass.

        The update is elementwise, so when the parameters are views of one flat array (and the
        gradients of another) it is applied to the flat arrays: the same arithmetic on the same
        numbers, with a sixth of the NumPy calls for a three-layer network. A large flat array is
        split into parts that threads update at the same time (``scratchnet.vectorized.parallel``).
        """
        eta = self.current_lr()
        grads = network.grads()
        every = network.params()
        params = {name: every[name] for name in grads}  # the trained arrays: those with a gradient
        # the decay differs by array with decay_matrices_only: then one array at a time (eq. 8.16)
        flat = None if self.decay_matrices_only else flat_arrays(network, params, grads)
        if self.max_grad_norm is not None:  # eq. 8.15; scaled copies: the live gradients are never written
            norm = math.sqrt(
                float(np.vdot(flat[1], flat[1])) if flat else sum(float(np.vdot(g, g)) for g in grads.values())
            )
            scale = self.clip_coefficient(norm)
            if scale < 1.0 and flat is not None:
                flat = (flat[0], flat[1] * scale)
            elif scale < 1.0:
                grads = {name: grad * scale for name, grad in grads.items()}
        if flat is None:
            self.unflatten_state()
            self.check_state(params)
            for name, grad in grads.items():
                with self.decay_for(params[name].shape):
                    self.update(name, params[name], grad, eta)
        else:
            flat_params, flat_grads = flat
            parts = chunks(flat_params.size)
            self.flatten_state(params, parts)
            run_all(
                [
                    partial(self.update, f"{ALL}{k}", flat_params[part], flat_grads[part], eta)
                    for k, part in enumerate(parts)
                ]
            )
        self.steps += 1

    def update(self, name: str, p: Array, g: Array, eta: float) -> None:
        """Update the live parameter ``p`` in place from its gradient ``g`` at rate ``eta``."""
        raise NotImplementedError

    def slot(self, name: str, slot: str, p: Array, initial: float = 0.0) -> Array:
        """The ``slot`` state of parameter ``name``, allocated like ``p`` and filled with ``initial`` on first use."""
        key = f"{name}.{slot}"
        if key not in self.state:
            self.state[key] = np.full_like(p, initial)
        return self.state[key]

    def work(self, name: str, p: Array) -> Array:
        """A scratch array shaped like parameter ``name``, reused by every step (its contents are not state)."""
        buffer = self.scratch.get(name)
        if buffer is None or buffer.shape != p.shape or buffer.dtype != p.dtype:
            buffer = self.scratch[name] = np.empty_like(p)
        return buffer

    def named_state(self) -> dict[str, Array]:
        """The state keyed ``"<param>.<slot>"``, shaped like the parameters (views of the flat state
        when it is in one part, copies when in several)."""
        if not self.layout:
            return self.state
        named = {}
        for slot in dict.fromkeys(key.rsplit(".", 1)[1] for key in self.state):
            pieces = [self.state[f"{ALL}{k}.{slot}"] for k in range(len(self.parts))]
            flat = pieces[0] if len(pieces) == 1 else np.concatenate(pieces)
            offset = 0
            for name, shape in self.layout:
                size = math.prod(shape)
                named[f"{name}.{slot}"] = flat[offset : offset + size].reshape(shape)
                offset += size
        return named

    def flatten_state(self, params: Mapping[str, Array], parts: list[slice]) -> None:
        """Keep the state flat, laid out like ``params`` and split into ``parts`` (a no-op when it is)."""
        layout = [(name, p.shape) for name, p in params.items()]
        if layout == self.layout and parts == self.parts:
            return
        self.unflatten_state()
        self.check_state(params)
        slots = sorted({key.rsplit(".", 1)[1] for key in self.state})
        dtype = next(iter(params.values())).dtype if params else np.dtype(np.float64)
        flat_state = {
            slot: np.concatenate([self.state.pop(f"{name}.{slot}").ravel() for name in params]).astype(
                dtype, copy=False
            )
            for slot in slots
        }
        self.state = {
            f"{ALL}{k}.{slot}": flat[part] for slot, flat in flat_state.items() for k, part in enumerate(parts)
        }
        self.layout, self.parts = layout, parts

    def unflatten_state(self) -> None:
        """Back to one state array per parameter (a no-op when it is not flat)."""
        if self.layout:
            self.state = {key: value.copy() for key, value in self.named_state().items()}
            self.layout, self.parts = [], []

    def check_state(self, params: Mapping[str, Array]) -> None:
        """State (after a step or an import) must be for exactly this network's parameters and shapes;
        imported state takes the parameters' dtype here, once."""
        named = {key.rsplit(".", 1)[0] for key in self.state}
        if named and named != set(params):
            raise ShapeError(f"optimizer state is for parameters {sorted(named)}, the network has {sorted(params)}")
        for key, value in self.state.items():
            p = params[key.rsplit(".", 1)[0]]
            if value.shape != p.shape:
                raise ShapeError(f"optimizer state {key!r} has shape {value.shape}, the parameter has {p.shape}")
            if value.dtype != p.dtype:
                self.state[key] = value.astype(p.dtype)

    def export_state(self) -> dict[str, Any]:
        """``{"step": t, "arrays": {"<param>.<slot>": array shaped like the parameter}}`` (copies)."""
        return {"step": self.steps, "arrays": {key: value.copy() for key, value in self.named_state().items()}}

    def import_state(self, state: Mapping[str, Any]) -> None:
        """Replace the state with an exported one; its tensors may be NumPy arrays or nested lists."""
        steps, arrays = parse_state(type(self).__name__, state, self.slots())
        values: dict[str, Array] = {}
        shapes: dict[str, tuple[int, ...]] = {}
        for key, (name, tensor) in arrays.items():
            try:
                value = np.array(tensor, dtype=np.float64)
            except (TypeError, ValueError):
                raise ConfigError(f"state array {key!r} is not a vector or a tensor of numbers") from None
            if value.ndim == 0 or shapes.setdefault(name, value.shape) != value.shape:
                raise ConfigError(f"state array {key!r} is not a tensor shaped like its parameter")
            values[key] = value
        self.steps, self.state, self.layout, self.parts = steps, values, [], []


def flat_arrays(
    network: Trainable[Array], params: Mapping[str, Array], grads: Mapping[str, Array]
) -> tuple[Array, Array] | None:
    """The network's flat parameter and gradient arrays, if every named array is still a view of them."""
    if not hasattr(network, "flat_params"):  # (an isinstance check of a Protocol costs ~30 us)
        return None
    flat_params, flat_grads = cast(FlatTrainable, network).flat_params(), cast(FlatTrainable, network).flat_grads()
    if (
        flat_params.size == 0
        or flat_params.shape != flat_grads.shape
        or sum(p.size for p in params.values()) != flat_params.size
    ):
        return None
    if all(p.base is flat_params for p in params.values()) and all(g.base is flat_grads for g in grads.values()):
        return flat_params, flat_grads
    return None  # e.g. a copied network whose layers no longer share the flat arrays


class SGD(optimizers.SGD, Optimizer):
    """SGD (:class:`scratchnet.core.optimizers.SGD`): the update, on whole arrays, in place (eq. 8.1-8.4)."""

    def update(self, name: str, p: Array, g: Array, eta: float) -> None:
        mu = self.momentum
        d_p = g + self.weight_decay * p if self.weight_decay != 0.0 else g  # eq. 8.2
        work = self.work(name, p)
        if mu != 0.0:
            key = f"{name}.momentum_buffer"
            if key not in self.state:
                self.state[key] = d_p.copy()  # eq. 8.3, first step
            else:
                b = self.state[key]
                b *= mu  # eq. 8.3
                b += np.multiply(d_p, 1.0 - self.dampening, out=work)
            d_p = d_p + mu * self.state[key] if self.nesterov else self.state[key]  # eq. 8.4
        p -= np.multiply(d_p, eta, out=work)  # eq. 8.1, in place


class Adagrad(optimizers.Adagrad, Optimizer):
    """Adagrad (:class:`scratchnet.core.optimizers.Adagrad`): the update, on whole arrays, in place (eq. 8.5-8.6)."""

    def update(self, name: str, p: Array, g: Array, eta: float) -> None:
        clr = eta / (1.0 + self.steps * self.lr_decay)  # eq. 8.6, t = steps taken
        total = self.slot(name, "sum", p, self.initial_accumulator_value)
        d_p = g + self.weight_decay * p if self.weight_decay != 0.0 else g  # eq. 8.2
        total += d_p * d_p  # eq. 8.5
        p -= clr * d_p / (np.sqrt(total) + self.eps)  # eq. 8.6


class RMSprop(optimizers.RMSprop, Optimizer):
    """RMSprop (:class:`scratchnet.core.optimizers.RMSprop`): the update, on whole arrays, in place (eq. 8.7-8.10)."""

    def update(self, name: str, p: Array, g: Array, eta: float) -> None:
        alpha, mu = self.alpha, self.momentum
        d_p = g + self.weight_decay * p if self.weight_decay != 0.0 else g  # eq. 8.2
        square_avg = self.slot(name, "square_avg", p)
        square_avg *= alpha  # eq. 8.7
        square_avg += (1.0 - alpha) * d_p * d_p
        if self.centered:
            grad_avg = self.slot(name, "grad_avg", p)
            grad_avg *= alpha  # eq. 8.8
            grad_avg += (1.0 - alpha) * d_p
            variance = np.maximum(square_avg - grad_avg * grad_avg, 0.0)  # >= 0 against rounding
            denominator = np.sqrt(variance) + self.eps  # eq. 8.9
        else:
            denominator = np.sqrt(square_avg) + self.eps  # eq. 8.9
        if mu > 0.0:
            b = self.slot(name, "momentum_buffer", p)
            b *= mu  # eq. 8.10
            b += d_p / denominator
            p -= eta * b
        else:
            p -= eta * d_p / denominator  # eq. 8.10


class Adam(optimizers.Adam, Optimizer):
    """Adam (:class:`scratchnet.core.optimizers.Adam`): the update, on whole arrays, in place (eq. 8.11-8.14)."""

    def update(self, name: str, p: Array, g: Array, eta: float) -> None:
        beta1, beta2 = self.betas
        t = self.steps + 1  # this step, counted from 1
        step_size = eta / (1.0 - beta1**t)  # eq. 8.13, as PyTorch computes it
        bias_correction2_sqrt = math.sqrt(1.0 - beta2**t)
        d_p = g
        if self.weight_decay != 0.0:
            if self.decoupled:
                p *= 1.0 - eta * self.weight_decay  # eq. 8.14 (AdamW)
            else:
                d_p = g + self.weight_decay * p  # eq. 8.2
        m = self.slot(name, "exp_avg", p)
        v = self.slot(name, "exp_avg_sq", p)
        work = self.work(name, p)  # one pass per line below, and no allocation
        m *= beta1  # eq. 8.11
        m += np.multiply(d_p, 1.0 - beta1, out=work)
        v *= beta2  # eq. 8.12
        np.multiply(d_p, 1.0 - beta2, out=work)
        v += np.multiply(work, d_p, out=work)
        denominator = np.sqrt(v, out=work)
        denominator /= bias_correction2_sqrt
        denominator += self.eps
        step = np.divide(m, denominator, out=work)  # eq. 8.13, grouped as PyTorch's addcdiv
        p -= np.multiply(step, step_size, out=work)


class AdamW(optimizers.AdamW, Adam):
    """AdamW: :class:`scratchnet.core.optimizers.AdamW`'s settings with :class:`Adam`'s update
    (eq. 8.14, 8.11-8.13; ``decoupled`` is set)."""
