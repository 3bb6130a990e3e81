"""Counter-based random numbers that both backends draw identically (spec/math.md, eq. 10.1-10.3).

Every random number scratchnet uses (initial weights, dropout masks, shuffles) is a pure function of a
seed, a stream and an index: ``uniform(seed, stream, i)``. Nothing depends on call order or on a
library's generator, so the loops and the vectorized backend get the very same numbers, and the same
seed gives the same model on every machine. The mixing function is SplitMix64 (Steele, Lea and
Flood, 2014), which needs only 64-bit integer arithmetic and is therefore exact in Python and NumPy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

MASK64 = (1 << 64) - 1
GOLDEN_GAMMA = 0x9E3779B97F4A7C15
MIX1 = 0xBF58476D1CE4E5B9
MIX2 = 0x94D049BB133111EB
TWO_POW_MINUS_53 = 2.0**-53


def splitmix64(x: int) -> int:
    """One SplitMix64 output for state ``x`` (eq. 10.1)."""
    z = (x + GOLDEN_GAMMA) & MASK64
    z = ((z ^ (z >> 30)) * MIX1) & MASK64
    z = ((z ^ (z >> 27)) * MIX2) & MASK64
    return z ^ (z >> 31)


def stream_key(seed: int, stream: int) -> int:
    """The 64-bit key of one stream of a seed: different streams never share numbers (eq. 10.1)."""
    return splitmix64(splitmix64(seed & MASK64) ^ (stream & MASK64))


def derive_seed(seed: int, *labels: int) -> int:
    """A child seed for a part of the model (a layer index, an epoch), as a 64-bit integer."""
    for label in labels:
        seed = stream_key(seed, label)
    return seed


def uniforms(seed: int, stream: int, count: int, start: int = 0) -> list[float]:
    """``count`` numbers uniform in [0, 1): the top 53 bits of splitmix64(key + i) (eq. 10.2)."""
    key = stream_key(seed, stream)
    return [(splitmix64((key + i) & MASK64) >> 11) * TWO_POW_MINUS_53 for i in range(start, start + count)]


def normals(seed: int, stream: int, count: int) -> list[float]:
    """``count`` standard normal numbers by the Box-Muller transform of pairs of uniforms (eq. 10.3)."""
    return box_muller(uniforms(seed, stream, 2 * count))


def box_muller(pairs: Sequence[float]) -> list[float]:
    """n_k = sqrt(-2 log(1 - u[2k])) cos(2 pi u[2k+1]) for each pair of uniforms (eq. 10.3).

    Always computed with the math module (never NumPy's vectorized log and cos, which need not
    round the same way), so every backend gets the same bits.
    """
    log, sqrt, cos, two_pi = math.log, math.sqrt, math.cos, 2.0 * math.pi
    return [sqrt(-2.0 * log(1.0 - u1)) * cos(two_pi * u2) for u1, u2 in zip(pairs[0::2], pairs[1::2])]


def permutation(seed: int, stream: int, n: int) -> list[int]:
    """A permutation of range(n) by Fisher-Yates with the stream's uniforms (eq. 10.4)."""
    order = list(range(n))
    draws = uniforms(seed, stream, n)
    for i in range(n - 1, 0, -1):
        j = int(draws[i] * (i + 1))  # uniform in 0..i
        order[i], order[j] = order[j], order[i]
    return order
