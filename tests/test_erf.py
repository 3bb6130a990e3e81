"""The vectorized backend's erf and erfc (W. J. Cody's rational approximations, spec/math.md,
eq. 19.5-19.9) against the standard library's, and GELU where (1 + erf) would cancel."""

from __future__ import annotations

import math

import numpy as np
import pytest

from scratchnet import loops, vectorized
from scratchnet.vectorized.erf import erf, erfc

POINTS = np.concatenate(
    [
        np.linspace(-30.0, 30.0, 120_001),
        np.random.default_rng(0).normal(0.0, 3.0, 20_000),
        [0.0, -0.0, 0.46875, -0.46875, 4.0, -4.0, 6.0, -6.0, 1e-300, -1e-10, 26.5, 27.5],
    ]
)


@pytest.mark.parametrize("ours,reference", [(erf, math.erf), (erfc, math.erfc)], ids=["erf", "erfc"])
def test_erf_and_erfc_are_within_a_few_roundings_of_the_standard_library(ours: object, reference: object) -> None:
    values = ours(POINTS)  # type: ignore[operator]
    expected = np.array([reference(x) for x in POINTS])  # type: ignore[operator]
    normal = np.abs(expected) > 1e-300  # relative error where the result is not 0 or subnormal
    relative = np.abs(values - expected)[normal] / np.abs(expected[normal])
    assert relative.max() <= 1.5e-15
    assert np.abs(values - expected).max() <= 5e-16
    assert ours(np.array([np.inf, -np.inf])).tolist() == [reference(math.inf), reference(-math.inf)]  # type: ignore[operator]
    assert np.isnan(ours(np.array([np.nan]))).all()  # type: ignore[operator]


@pytest.mark.parametrize("module", [loops, vectorized], ids=["loops", "vectorized"])
def test_gelu_keeps_its_digits_for_negative_inputs(module: object) -> None:
    """GELU(-10) = -10 Phi(-10), Phi(-10) = 7.619853024160526e-24 (the normal distribution's tail):
    computed as erfc(10 / sqrt 2) / 2, where (1 + erf(-10 / sqrt 2)) / 2 would give 0."""
    layer = module.GELU()  # type: ignore[attr-defined]
    out = np.asarray(layer.forward(np.array([[-10.0, -3.0]]) if module is vectorized else [[-10.0, -3.0]]))
    assert out[0, 0] == pytest.approx(-10.0 * 7.619853024160526e-24, rel=1e-14)
    assert out[0, 1] == pytest.approx(-3.0 * 0.0013498980316300946, rel=1e-14)
