"""The vectorized backend's erf and erfc (W. J. Cody's rational approximations, spec/math.md,
eq. 19.5-19.9) against the standard library's, and GELU where (1 + erf) would cancel."""

from __future__ import annotations

import math

import numpy as np
import pytest

from scratchnet import loops, vectorized
from scratchnet.vectorized.erf import HALF_P, erf, erfc, normal_cdf_single

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


def test_the_float32_formula_is_within_its_fitted_error_bound() -> None:
    """Eq. 19.10 (erfc(x) = t P(t) e^(-x^2), P of degree 6 fitted by tools/fit_normal_cdf.py to an absolute
    error of erfc below 3.6e-9) gives Phi within 1.8e-9 and e^(-z^2/2) to a rounding, measured in float64
    arithmetic so that only the formula's own error shows (a wrong coefficient would show at once); the
    negative tail keeps two digits where 1 - Phi would keep none."""
    points = np.linspace(-9.0, 9.0, 90_001)
    gaussian = np.empty_like(points)
    values = normal_cdf_single(points, np.empty_like(points), gaussian)
    expected = np.array([math.erfc(-x / math.sqrt(2.0)) / 2.0 for x in points])
    assert np.abs(values - expected).max() < 1.8e-9
    far = points < -5.0  # Phi below 3e-7
    assert (np.abs(values - expected)[far] / expected[far]).max() < 0.01
    assert np.abs(gaussian - np.array([math.exp(-x * x / 2.0) for x in points])).max() < 1e-15


def test_the_fit_gives_the_coefficients_the_formula_holds() -> None:
    """tools/fit_normal_cdf.py, run again, prints the coefficients of eq. 19.10 and its error bound."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "tools" / "fit_normal_cdf.py"
    spec = importlib.util.spec_from_file_location("fit_normal_cdf", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    coefficients, error = module.fit(6, 0.3275911)
    assert [c / 2 for c in coefficients] == pytest.approx(HALF_P, rel=1e-9)
    assert error < 3.6e-9


def test_float32_gelu_is_as_close_to_the_exact_one_as_pytorchs() -> None:
    """On the same float32 inputs, scratchnet's float32 GELU is as close to z Phi(z) (math.erfc) as
    PyTorch's own float32 nn.functional.gelu: the largest errors (3.8e-7 and 3.75e-7, the rounding of
    outputs near 9) within 5%, and ten times fewer units in the last place on average."""
    torch = pytest.importorskip("torch")
    z = np.linspace(-9.0, 9.0, 180_001).astype(np.float32)
    exact = np.array([x * math.erfc(-x / math.sqrt(2.0)) / 2.0 for x in z.astype(float)])
    ours = np.abs(vectorized.GELU().forward(z).astype(float) - exact)
    theirs = np.abs(torch.nn.functional.gelu(torch.from_numpy(z)).double().numpy() - exact)
    assert ours.max() <= 1.05 * theirs.max(), (ours.max(), theirs.max())
    units = np.spacing(np.abs(exact).astype(np.float32)).astype(float)  # one float32 ulp of each value
    counted = np.abs(exact) > 1e-3
    assert (ours / units)[counted].mean() * 10 <= (theirs / units)[counted].mean()  # measured 1.8 and 55.6


def test_float32_gelu_is_as_close_to_the_exact_one_as_float32_holds() -> None:
    """float32 GELU (eq. 19.1 with 19.10, in blocks on threads) against z Phi(z) from math.erfc
    on the same float32 inputs: within a few float32 roundings of the value, and its derivative
    (eq. 19.2) too; the blocks cover every element of an array larger than one block."""
    z = (np.random.default_rng(1).standard_normal((3, 50, 700)) * 2.0).astype(np.float32)
    layer = vectorized.GELU()
    a = layer.forward(z)
    grad = layer.backward(np.ones_like(z))
    exact = np.array([x * math.erfc(-x / math.sqrt(2.0)) / 2.0 for x in z.reshape(-1).astype(float)])
    slope = np.array(
        [
            math.erfc(-x / math.sqrt(2.0)) / 2.0 + x * math.exp(-x * x / 2.0) / math.sqrt(2.0 * math.pi)
            for x in z.reshape(-1).astype(float)
        ]
    )
    assert a.dtype == np.float32 and a.shape == z.shape
    # float32 keeps about 7 digits: measured 3.7e-7 and 2.2e-7 (inputs up to |z| = 9)
    assert np.abs(a.reshape(-1) - exact).max() <= 1e-6
    assert np.abs(grad.reshape(-1) - slope).max() <= 1e-6
