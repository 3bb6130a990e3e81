"""Seeded initial weights and biases (spec/math.md, section 10).

The numbers come from :mod:`scratchnet.core.rng` and the rules from :mod:`scratchnet.core.init`, so
the vectorized backend, which calls the same generator, starts from exactly the same parameters.
"""

from __future__ import annotations

import math

from scratchnet.core import rng
from scratchnet.core.init import (
    BIAS_STREAM,
    WEIGHT_STREAM,
    Distribution,
    bias_distribution,
    fans,
    weight_distribution,
)
from scratchnet.loops.tensor import Param, Shape, Vector, reshape


def draw(distribution: Distribution, count: int, seed: int, stream: int) -> list[float]:
    """``count`` numbers from ``distribution``, from stream ``stream`` of ``seed`` (eq. 10.2-10.3)."""
    kind, scale = distribution
    if kind == "zeros":
        return [0.0] * count
    if kind == "classic":
        return [u - 0.5 for u in rng.uniforms(seed, stream, count)]
    if kind == "normal":
        return [scale * n for n in rng.normals(seed, stream, count)]
    return [scale * (2.0 * u - 1.0) for u in rng.uniforms(seed, stream, count)]


def initial_weight(name: str, shape: Shape, seed: int, stream: int = WEIGHT_STREAM, std: float | None = None) -> Param:
    """A weight of ``shape`` ``(out, in, *kernel)`` drawn by scheme ``name`` (eq. 10.5-10.9, 10.11, 10.12;
    ``std`` for ``normal``)."""
    values = draw(weight_distribution(name, *fans(shape), std), math.prod(shape), seed, stream)
    weight: Param = reshape(values, shape)
    return weight


def initial_bias(name: str, size: int, seed: int, stream: int = BIAS_STREAM) -> Vector:
    """The bias vector, ``(size,)`` (eq. 10.10)."""
    return draw(bias_distribution(name), size, seed, stream)
