"""Fit the float32 GELU's formula for Phi (spec/math.md, eq. 19.10) and print its coefficients.

    python tools/fit_normal_cdf.py [--degree 6] [--p 0.3275911]

The formula is erfc(x) = t P(t) e^(-x^2) with t = 1 / (1 + p x), x >= 0, the form of Hastings'
approximation (Abramowitz and Stegun 7.1.26, whose P has degree 4 and an absolute error of 1.5e-7).
Here P has degree 6 and is fitted for the absolute error of erfc on 0 <= x <= 9 / sqrt 2 (GELU's
inputs up to |z| = 9; beyond, Phi is within 1e-19 of 0 or 1): a least-squares fit of
g(t) = erfc(x) e^(x^2) / t weighted by t e^(-x^2), reweighted toward equal ripple (Lawson's
iteration), the best of 60 rounds kept. It prints the coefficients halved (Phi(-|z|) =
erfc(|z| / sqrt 2) / 2), lowest degree first, as scratchnet/vectorized/erf.py holds them, and the
largest absolute error of erfc.
"""

from __future__ import annotations

import argparse
import math

import numpy as np
from numpy.polynomial import polynomial


def fit(degree: int, p: float, points: int = 20_001, rounds: int = 60) -> tuple[list[float], float]:
    """The coefficients of P (lowest degree first) and the largest absolute error of erfc."""
    x = np.linspace(0.0, 9.0 / math.sqrt(2.0), points)
    t = 1.0 / (1.0 + p * x)
    erfc = np.array([math.erfc(value) for value in x])
    g = erfc * np.exp(x * x) / t
    weight = t * np.exp(-x * x)  # an error of P times this is the error of erfc
    best: tuple[float, list[float]] | None = None
    reweight = weight.copy()
    for _ in range(rounds):
        coefficients = polynomial.polyfit(t, g, degree, w=reweight)
        error = np.abs((polynomial.polyval(t, coefficients) - g) * weight)
        if best is None or error.max() < best[0]:
            best = (float(error.max()), [float(c) for c in coefficients])
        reweight = reweight * np.sqrt(error / error.max() + 1e-3)  # weigh up where the error is large
    assert best is not None
    return best[1], best[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--degree", type=int, default=6)
    parser.add_argument("--p", type=float, default=0.3275911)
    args = parser.parse_args()
    coefficients, error = fit(args.degree, args.p)
    print("HALF_P = (" + ", ".join(f"{c / 2:.12g}" for c in coefficients) + ")")
    print(f"largest absolute error of erfc on [0, 9 / sqrt 2]: {error:.2e}")


if __name__ == "__main__":
    main()
