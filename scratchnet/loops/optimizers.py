"""Optimizers: how parameters move given their gradients (spec/math.md, section 8).

Each optimizer loops over every element of every parameter. The loops backend's ``params()`` returns
copies, so a step reads them, updates them element by element and writes them back.
"""

from __future__ import annotations

from typing import Any

from scratchnet.errors import ConfigError
from scratchnet.loops.network import Network
from scratchnet.loops.tensor import flatten, reshape, shape_of


class SGD:
    """Plain stochastic gradient descent: p <- p - lr * g (eq. 8.1)."""

    def __init__(self, lr: float = 0.01) -> None:
        if not lr > 0.0:
            raise ConfigError(f"learning rate must be > 0, got {lr}")
        self.lr = lr

    def step(self, network: Network) -> None:
        params = network.params()
        for name, grad in network.grads().items():
            p, g = flatten(params[name]), flatten(grad)
            for i in range(len(p)):
                p[i] -= self.lr * g[i]  # eq. 8.1
            params[name] = reshape(p, shape_of(params[name]))
        network.set_params(params)

    def describe(self) -> dict[str, Any]:
        return {"type": "SGD", "lr": self.lr}
