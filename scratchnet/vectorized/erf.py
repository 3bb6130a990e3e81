"""The error function and its complement on arrays, for GELU (spec/math.md, eq. 19.5-19.9).

NumPy has no erf, and ``math.erf`` one element at a time is far too slow, so these are W. J. Cody's
rational Chebyshev approximation ("Rational Chebyshev approximations for the error function",
Math. Comp. 23 (1969) 631-637), with the coefficients of his later Fortran routine CALERF
(Netlib SPECFUN, 1990). In float64 it is accurate to about one rounding (relative 1e-16), so
that GELU agrees with the loops backend's ``math.erf`` far within the cross-check's 1e-12.

|x| is split into three ranges, each evaluated only on its own elements (one gather, one
polynomial pair, one scatter); beyond |x| = 6, erf(x) rounds to +-1 in float64. ``erfc`` computes
the complement directly where it is small, which GELU needs for negative inputs.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from scratchnet.vectorized.tensor import Array

# (19.5) |x| <= 0.46875: erf(x) = x R1(x^2), R1 = A(x^2) / B(x^2)
A = (
    3.16112374387056560e00,
    1.13864154151050156e02,
    3.77485237685302021e02,
    3.20937758913846947e03,
    1.85777706184603153e-1,
)
B = (2.36012909523441209e01, 2.44024637934444173e02, 1.28261652607737228e03, 2.84423683343917062e03)
# (19.6) 0.46875 < |x| <= 4: erfc(|x|) = e^(-x^2) R2(|x|)
C = (
    5.64188496988670089e-1,
    8.88314979438837594e00,
    6.61191906371416295e01,
    2.98635138197400131e02,
    8.81952221241769090e02,
    1.71204761263407058e03,
    2.05107837782607147e03,
    1.23033935479799725e03,
    2.15311535474403846e-8,
)
D = (
    1.57449261107098347e01,
    1.17693950891312499e02,
    5.37181101862009858e02,
    1.62138957456669019e03,
    3.29079923573345963e03,
    4.36261909014324716e03,
    3.43936767414372164e03,
    1.23033935480374942e03,
)
# (19.7) 4 < |x| < 6: erfc(|x|) = (e^(-x^2) / |x|) (1/sqrt(pi) - R3(1/x^2) / x^2)
P = (
    3.05326634961232344e-1,
    3.60344899949804439e-1,
    1.25781726111229246e-1,
    1.60837851487422766e-2,
    6.58749161529837803e-4,
    1.63153871373020978e-2,
)
Q = (
    2.56852019228982242e00,
    1.87295284992346047e00,
    5.27905102951428412e-1,
    6.05183413124413191e-2,
    2.33520497626869185e-3,
)
INV_SQRT_PI = 5.6418958354775628695e-1
SMALL, MIDDLE, LARGE = 0.46875, 4.0, 6.0


def rational(y: Array, top: Sequence[float], bottom: Sequence[float]) -> Array:
    """Cody's form of a ratio of polynomials in y: numerator and denominator in Horner's scheme,
    the numerator's leading coefficient last in ``top``, the denominator monic."""
    steps = len(bottom) - 1
    numerator = top[-1] * y
    denominator = y.copy()
    for i in range(steps):
        numerator = (numerator + top[i]) * y
        denominator = (denominator + bottom[i]) * y
    result: Array = (numerator + top[steps]) / (denominator + bottom[steps])
    return result


def exp_minus_square(y: Array) -> Array:
    """e^(-y^2) as e^(-s^2) e^(-(y - s)(y + s)), s = y rounded down to a multiple of 1/16: s^2 is
    exact, so no rounding of y^2 is magnified by the exponential (Cody's device)."""
    s = np.trunc(y * 16.0) / 16.0
    result: Array = np.exp(-s * s) * np.exp(-(y - s) * (y + s))
    return result


def tail(y: Array) -> Array:
    """erfc(y) for y > 0.46875 (eq. 19.6, 19.7), computed directly, not as 1 - erf(y): a small erfc
    keeps all its digits. Far out it underflows to 0, as erfc does."""
    result = np.empty_like(y)
    middle = y <= MIDDLE
    if middle.any():
        ym = y[middle]
        result[middle] = exp_minus_square(ym) * rational(ym, C, D)  # (19.6)
    large = ~middle
    if large.any():
        yl = np.minimum(y[large], 40.0)  # erfc(40) = 0 in float64, and so is that of any larger y, infinity too
        inverse_square = 1.0 / (yl * yl)
        result[large] = exp_minus_square(yl) * (INV_SQRT_PI - inverse_square * rational(inverse_square, P, Q)) / yl
    return result


def erf(x: Array) -> Array:
    """erf(x) elementwise for a float array (eq. 19.5-19.8)."""
    y = np.abs(x)
    result = np.sign(x)  # (19.8): |x| >= 6 (and NaN, which stays NaN)
    small = y <= SMALL
    if small.any():
        xs = x[small]
        result[small] = xs * rational(xs * xs, A, B)  # (19.5)
    rest = (y > SMALL) & (y < LARGE)
    if rest.any():  # erf = sign(x) (1 - erfc(|x|)), as (1/2 - erfc) + 1/2 (19.6, 19.7)
        result[rest] = np.copysign((0.5 - tail(y[rest])) + 0.5, x[rest])
    return result


def erfc(x: Array) -> Array:
    """erfc(x) = 1 - erf(x) elementwise (eq. 19.9), accurate in every digit also where it is small
    (large x): GELU's Phi(z) = erfc(-z / sqrt 2) / 2 for negative z."""
    y = np.abs(x)
    result = np.empty_like(x)
    small = y <= SMALL
    if small.any():
        xs = x[small]
        result[small] = (0.5 - xs * rational(xs * xs, A, B)) + 0.5  # 1 - (19.5), between 1/2 and 3/2
    rest = ~small  # (and NaN)
    if rest.any():
        erfc_y = tail(y[rest])
        result[rest] = np.where(x[rest] > 0.0, erfc_y, 2.0 - erfc_y)  # erfc(-y) = 2 - erfc(y)
    return result
