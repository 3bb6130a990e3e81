"""Building an optimizer of either backend from plain data.

``build_optimizer({"type": "Adam", "lr": 0.001, "schedule": {"type": "Cosine", "total_steps": 100}},
backend="loops")`` gives ``scratchnet.loops.Adam(lr=0.001, schedule=Cosine(100))``. The spec is what
an optimizer's ``describe()`` returns; the training command and the model loader call this.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from scratchnet.builders.network import backend_module
from scratchnet.core.errors import ConfigError, quoted_list
from scratchnet.core.schedules import build_schedule, finite
from scratchnet.core.settings import OPTIONS, betas, flag, optimizer_type


def build_optimizer(spec: Mapping[str, Any], backend: str) -> Any:
    """An optimizer of ``backend`` ("loops" or "vectorized") from a ``describe()``-style dict.

    Options left out take PyTorch's defaults. An unknown type or option, a value of the wrong kind
    or an invalid value (checked by the constructor) is a ConfigError.
    """
    if not isinstance(spec, Mapping) or "type" not in spec:
        raise ConfigError(f"an optimizer is an object with a 'type', got {spec!r:.80}")
    kind = optimizer_type(spec["type"])
    options = OPTIONS[kind]
    unknown = sorted(set(spec) - {"type", "schedule", "max_grad_norm", "decay_matrices_only", *options})
    if unknown:
        takes = sorted([*options, "decay_matrices_only", "max_grad_norm", "schedule"])
        raise ConfigError(f"{kind} has unknown options {quoted_list(unknown)}; it takes {takes}")
    kwargs: dict[str, Any] = {}
    for key, value in spec.items():
        if key in options:
            expected = options[key]
            if expected == "bool":
                kwargs[key] = flag(f"{kind} {key}", value)
            elif expected == "pair":
                kwargs[key] = betas(value)
            else:
                kwargs[key] = finite(f"{kind} {key}", value)
    schedule = build_schedule(spec.get("schedule"))
    module = backend_module(backend)
    optimizer = module.OPTIMIZERS[kind](**kwargs, schedule=schedule)
    clip = spec.get("max_grad_norm")
    if clip is not None:
        clip = finite(f"{kind} max_grad_norm", clip)
        if clip <= 0.0:
            raise ConfigError(f"{kind} max_grad_norm must be > 0, got {clip!r}")
        optimizer.max_grad_norm = clip
    if "decay_matrices_only" in spec:
        optimizer.decay_matrices_only = flag(f"{kind} decay_matrices_only", spec["decay_matrices_only"])
    return optimizer
