"""Seeded initial weights and biases as arrays (spec/math.md, section 10).

The numbers are the loops backend's own (see scratchnet.loops.init): initialisation runs once, and
both backends starting from identical parameters matters more here than speed.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from scratchnet.loops import init as loops_init
from scratchnet.vectorized.tensor import Array

INITIALIZERS = loops_init.INITIALIZERS
check_initializer = loops_init.check_initializer


def initial_weights(name: str, in_features: int, out_features: int, seed: int, dtype: np.dtype[Any]) -> Array:
    """The weight matrix, ``(out_features, in_features)``: one row per neuron."""
    flat = loops_init.weight_values(name, in_features, out_features, seed)
    return np.array(flat, dtype=np.float64).reshape(out_features, in_features).astype(dtype)


def initial_bias(name: str, out_features: int, seed: int, dtype: np.dtype[Any]) -> Array:
    """The bias vector, ``(out_features,)``."""
    return np.array(loops_init.bias_values(name, out_features, seed), dtype=np.float64).astype(dtype)
