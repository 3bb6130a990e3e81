"""The NumPy twin of :func:`scratchnet.core.rng.uniforms`: the same numbers, a whole array at a time.

SplitMix64 uses only 64-bit integer arithmetic, which NumPy's uint64 arrays do exactly (wrapping
modulo 2**64), so these arrays equal the pure-Python lists bit for bit (eq. 10.1-10.2).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from scratchnet.core import rng


def splitmix64(x: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    """SplitMix64 of every element (eq. 10.1); uint64 arithmetic wraps like the & MASK64 in rng.py."""
    z = x + np.uint64(rng.GOLDEN_GAMMA)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(rng.MIX1)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(rng.MIX2)
    return z ^ (z >> np.uint64(31))


def uniforms(seed: int, stream: int, count: int, start: int = 0) -> npt.NDArray[np.float64]:
    """``count`` numbers uniform in [0, 1), equal to ``scratchnet.core.rng.uniforms(seed, stream, count, start)``."""
    key = np.uint64(rng.stream_key(seed, stream))
    counters = np.arange(start, start + count, dtype=np.uint64) + key
    bits: npt.NDArray[Any] = splitmix64(counters) >> np.uint64(11)
    return bits.astype(np.float64) * rng.TWO_POW_MINUS_53
