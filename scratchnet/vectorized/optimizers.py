"""Optimizers: how parameters move given their gradients (spec/math.md, section 8).

The vectorized backend's ``params()`` returns the live arrays, so a step updates them in place.
"""

from __future__ import annotations

from typing import Any

from scratchnet.errors import ConfigError
from scratchnet.vectorized.network import Network


class SGD:
    """Plain stochastic gradient descent: p <- p - lr * g (eq. 8.1)."""

    def __init__(self, lr: float = 0.01) -> None:
        if not lr > 0.0:
            raise ConfigError(f"learning rate must be > 0, got {lr}")
        self.lr = lr

    def step(self, network: Network) -> None:
        params = network.params()
        for name, grad in network.grads().items():
            params[name] -= self.lr * grad  # eq. 8.1, in place

    def describe(self) -> dict[str, Any]:
        return {"type": "SGD", "lr": self.lr}
