"""Building networks and optimizers of either backend from plain data: the only modules that import
both backends. ``build_network(architecture, backend=...)`` and ``build_optimizer(spec, backend)``."""

from scratchnet.builders.network import BACKENDS, backend_module, build_network
from scratchnet.builders.optimizer import build_optimizer

__all__ = ["BACKENDS", "backend_module", "build_network", "build_optimizer"]
