"""Seeded initial weights and biases as arrays (spec/math.md, section 10).

The same numbers as scratchnet/loops/init.py: the uniforms come from the NumPy twin of the
generator (exact integer arithmetic), the normals from the shared Box-Muller transform, and the
scaling uses the same floating-point operations in the same order.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from scratchnet import rng
from scratchnet.loops.init import BIAS_STREAM, INITIALIZERS, WEIGHT_STREAM, check_initializer
from scratchnet.vectorized import rng as vector_rng
from scratchnet.vectorized.tensor import Array

__all__ = ["INITIALIZERS", "check_initializer", "initial_bias", "initial_weights"]


def weight_values(name: str, in_features: int, out_features: int, seed: int) -> Array:
    """The ``out_features * in_features`` initial weights in row-major order, float64 (eq. 10.5-10.9)."""
    check_initializer(name)
    count = in_features * out_features
    fan_in, fan_out = in_features, out_features
    if name == "zeros":
        return np.zeros(count)
    if name == "uniform":  # the classic tutorial's U(-0.5, 0.5)
        return vector_rng.uniforms(seed, WEIGHT_STREAM, count) - 0.5
    if name in ("he_normal", "glorot_normal"):
        variance = 2.0 / fan_in if name == "he_normal" else 2.0 / (fan_in + fan_out)
        std = math.sqrt(variance)
        pairs = vector_rng.uniforms(seed, WEIGHT_STREAM, 2 * count).tolist()
        return std * np.array(rng.box_muller(pairs))
    limit = math.sqrt(6.0 / fan_in if name == "he_uniform" else 6.0 / (fan_in + fan_out))
    return limit * (2.0 * vector_rng.uniforms(seed, WEIGHT_STREAM, count) - 1.0)


def bias_values(name: str, out_features: int, seed: int) -> Array:
    """Initial biases: U(-0.5, 0.5) for the classic ``uniform`` scheme, zeros otherwise (eq. 10.10)."""
    check_initializer(name)
    if name == "uniform":
        return vector_rng.uniforms(seed, BIAS_STREAM, out_features) - 0.5
    return np.zeros(out_features)


def initial_weights(name: str, in_features: int, out_features: int, seed: int, dtype: np.dtype[Any]) -> Array:
    """The weight matrix, ``(out_features, in_features)``: one row per neuron."""
    return weight_values(name, in_features, out_features, seed).reshape(out_features, in_features).astype(dtype)


def initial_bias(name: str, out_features: int, seed: int, dtype: np.dtype[Any]) -> Array:
    """The bias vector, ``(out_features,)``."""
    return bias_values(name, out_features, seed).astype(dtype)
