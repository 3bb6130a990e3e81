"""The counter-based generator: reference values of SplitMix64, and the NumPy twin's equality."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from scratchnet.core import rng
from scratchnet.vectorized import rng as vector_rng


def test_splitmix64_reference_values() -> None:
    # The first outputs of the SplitMix64 generator started from state 0 (Vigna's reference
    # implementation, splitmix64.c): the k-th output mixes state k * 0x9E3779B97F4A7C15.
    assert rng.splitmix64(0) == 0xE220A8397B1DCDAF
    assert rng.splitmix64(0x9E3779B97F4A7C15) == 0x6E789E6AA1B965F4
    assert rng.splitmix64((2 * 0x9E3779B97F4A7C15) % 2**64) == 0x06C45D188009454F


@settings(max_examples=50, deadline=None)
@given(
    seed=st.integers(0, 2**64 - 1), stream=st.integers(0, 2**40), count=st.integers(0, 300), start=st.integers(0, 2**63)
)
def test_numpy_twin_gives_the_same_uniforms(seed: int, stream: int, count: int, start: int) -> None:
    expected = rng.uniforms(seed, stream, count, start)
    actual = vector_rng.uniforms(seed, stream, count, start)
    assert actual.tolist() == expected
    assert all(0.0 <= u < 1.0 for u in expected)


def test_streams_and_seeds_differ() -> None:
    assert rng.uniforms(1, 0, 5) != rng.uniforms(1, 1, 5)
    assert rng.uniforms(1, 0, 5) != rng.uniforms(2, 0, 5)
    assert rng.uniforms(1, 0, 5) == rng.uniforms(1, 0, 5)


def test_normals_have_mean_zero_and_unit_variance() -> None:
    values = np.array(rng.normals(3, 4, 40_000))
    assert abs(values.mean()) < 0.02 and abs(values.std() - 1.0) < 0.02


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32), n=st.integers(0, 500))
def test_permutation_is_a_permutation(seed: int, n: int) -> None:
    assert sorted(rng.permutation(seed, 0, n)) == list(range(n))
