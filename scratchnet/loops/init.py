"""Seeded initial weights and biases (spec/math.md, section 10).

The numbers come from :mod:`scratchnet.rng`, so the vectorized backend, which calls the same
generator, starts from exactly the same parameters for the same seed.
"""

from __future__ import annotations

import math

from scratchnet import rng
from scratchnet.errors import ConfigError
from scratchnet.loops.tensor import Matrix, Vector, reshape

INITIALIZERS = ("he_normal", "he_uniform", "glorot_normal", "glorot_uniform", "uniform", "zeros")
WEIGHT_STREAM = 0
BIAS_STREAM = 1


def check_initializer(name: str) -> str:
    """``name`` when it is a known initializer, else a ConfigError listing the known ones."""
    if name not in INITIALIZERS:
        raise ConfigError(f"unknown initializer {name!r}; choose one of {', '.join(INITIALIZERS)}")
    return name


def weight_values(name: str, in_features: int, out_features: int, seed: int) -> list[float]:
    """The ``out_features * in_features`` initial weights in row-major order (eq. 10.5-10.9)."""
    check_initializer(name)
    count = in_features * out_features
    fan_in, fan_out = in_features, out_features
    if name == "zeros":
        return [0.0] * count
    if name == "uniform":  # the classic tutorial's U(-0.5, 0.5)
        return [u - 0.5 for u in rng.uniforms(seed, WEIGHT_STREAM, count)]
    if name in ("he_normal", "glorot_normal"):
        variance = 2.0 / fan_in if name == "he_normal" else 2.0 / (fan_in + fan_out)
        std = math.sqrt(variance)
        return [std * n for n in rng.normals(seed, WEIGHT_STREAM, count)]
    limit = math.sqrt(6.0 / fan_in if name == "he_uniform" else 6.0 / (fan_in + fan_out))
    return [limit * (2.0 * u - 1.0) for u in rng.uniforms(seed, WEIGHT_STREAM, count)]


def bias_values(name: str, out_features: int, seed: int) -> list[float]:
    """Initial biases: U(-0.5, 0.5) for the classic ``uniform`` scheme, zeros otherwise (eq. 10.10)."""
    check_initializer(name)
    if name == "uniform":
        return [u - 0.5 for u in rng.uniforms(seed, BIAS_STREAM, out_features)]
    return [0.0] * out_features


def initial_weights(name: str, in_features: int, out_features: int, seed: int) -> Matrix:
    """The weight matrix, ``(out_features, in_features)``: one row per neuron."""
    flat = weight_values(name, in_features, out_features, seed)
    matrix = reshape(flat, (out_features, in_features))
    return matrix  # type: ignore[return-value]


def initial_bias(name: str, out_features: int, seed: int) -> Vector:
    """The bias vector, ``(out_features,)``."""
    return bias_values(name, out_features, seed)
