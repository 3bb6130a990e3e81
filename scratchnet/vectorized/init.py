"""Seeded initial weights and biases as arrays (spec/math.md, section 10); see scratchnet/loops/init.py.

The same numbers: the uniforms come from the NumPy twin of the generator (exact integer arithmetic),
the normals from the shared Box-Muller transform, and the scaling uses the same floating-point
operations in the same order.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from scratchnet.core import rng
from scratchnet.core.init import (
    BIAS_STREAM,
    WEIGHT_STREAM,
    Distribution,
    bias_distribution,
    fans,
    weight_distribution,
)
from scratchnet.vectorized import rng as vector_rng
from scratchnet.vectorized.tensor import Array


def draw(distribution: Distribution, count: int, seed: int, stream: int) -> Array:
    """``count`` numbers from ``distribution``, from stream ``stream`` of ``seed``, float64 (eq. 10.2-10.3)."""
    kind, scale = distribution
    if kind == "zeros":
        return np.zeros(count)
    if kind == "classic":
        return vector_rng.uniforms(seed, stream, count) - 0.5
    if kind == "normal":
        pairs = vector_rng.uniforms(seed, stream, 2 * count).tolist()
        return scale * np.array(rng.box_muller(pairs))
    return scale * (2.0 * vector_rng.uniforms(seed, stream, count) - 1.0)


def initial_weight(
    name: str,
    shape: tuple[int, ...],
    seed: int,
    dtype: np.dtype[Any],
    stream: int = WEIGHT_STREAM,
    std: float | None = None,
) -> Array:
    """A weight of ``shape`` ``(out, in, *kernel)`` drawn by scheme ``name`` (eq. 10.5-10.9, 10.11, 10.12;
    ``std`` for ``normal``)."""
    values = draw(weight_distribution(name, *fans(shape), std), math.prod(shape), seed, stream)
    return values.reshape(shape).astype(dtype)


def initial_bias(name: str, size: int, seed: int, dtype: np.dtype[Any], stream: int = BIAS_STREAM) -> Array:
    """The bias vector, ``(size,)`` (eq. 10.10)."""
    return draw(bias_distribution(name), size, seed, stream).astype(dtype)
