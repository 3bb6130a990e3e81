"""The error function and its complement on arrays, for GELU (spec/math.md, eq. 19.5-19.10).

NumPy has no erf, and ``math.erf`` one element at a time is far too slow, so these are W. J. Cody's
rational Chebyshev approximation ("Rational Chebyshev approximations for the error function",
Math. Comp. 23 (1969) 631-637), with the coefficients of his later Fortran routine CALERF
(Netlib SPECFUN, 1990). In float64 it is accurate to about one rounding (relative 1e-16), so
that GELU agrees with the loops backend's ``math.erf`` far within the cross-check's 1e-12.

|x| is split into three ranges, each evaluated only on its own elements (one gather, one
polynomial pair, one scatter); beyond |x| = 6, erf(x) rounds to +-1 in float64. ``erfc`` computes
the complement directly where it is small, which GELU needs for negative inputs.

float32 needs far fewer digits: ``normal_cdf_single`` gives GELU's Phi(z) by one formula for every z
(eq. 19.10), to PyTorch's float32 GELU's absolute error, with the e^(-z^2/2) that GELU's backward reuses.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt

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
WHOLE_SHARE = 0.125  # see evaluate
Mask = npt.NDArray[np.bool_]


def rational(y: Array, top: Sequence[float], bottom: Sequence[float]) -> Array:
    """Cody's form of a ratio of polynomials in y: numerator and denominator in Horner's scheme,
    the numerator's leading coefficient last in ``top``, the denominator monic. In place on two
    arrays: the same operations as written out, without a temporary per step."""
    steps = len(bottom) - 1
    numerator = np.multiply(y, top[-1])
    denominator = y.copy()
    for i in range(steps):
        numerator += top[i]
        numerator *= y
        denominator += bottom[i]
        denominator *= y
    numerator += top[steps]
    denominator += bottom[steps]
    numerator /= denominator
    return numerator


def exp_minus_square(y: Array) -> Array:
    """e^(-y^2) as e^(-s^2) e^(-(y - s)(y + s)), s = y rounded down to a multiple of 1/16: s^2 is
    exact, so no rounding of y^2 is magnified by the exponential (Cody's device)."""
    s = np.trunc(y * 16.0) / 16.0
    result: Array = np.exp(-s * s) * np.exp(-(y - s) * (y + s))
    return result


def middle_tail(y: Array) -> Array:
    """erfc(y) for 0.46875 < y <= 4 (eq. 19.6)."""
    result: Array = exp_minus_square(y) * rational(y, C, D)
    return result


def large_tail(y: Array) -> Array:
    """erfc(y) for y > 4 (eq. 19.7). Far out it underflows to 0, as erfc does."""
    y = np.minimum(y, 40.0)  # erfc(40) = 0 in float64, and so is that of any larger y, infinity too
    inverse_square = 1.0 / (y * y)
    result: Array = exp_minus_square(y) * (INV_SQRT_PI - inverse_square * rational(inverse_square, P, Q)) / y
    return result


def tail(y: Array) -> Array:
    """erfc(y) for y > 0.46875 (eq. 19.6, 19.7), computed directly, not as 1 - erf(y): a small erfc
    keeps all its digits."""
    result = np.empty_like(y)
    middle = y <= MIDDLE
    if middle.any():
        result[middle] = middle_tail(y[middle])  # (19.6)
    large = ~middle
    if large.any():
        result[large] = large_tail(y[large])  # (19.7)
    return result


def evaluate(formula: Callable[[Array], Array], x: Array, where: Mask, result: Array) -> None:
    """result[where] = formula(x[where]). A range that holds more than WHOLE_SHARE of the elements is
    evaluated on the whole array and its elements copied out: every element goes through the same
    operations either way, so the values are the same, but a boolean gather and scatter cost more
    than the formula's passes over the elements of the other ranges (whose values, even infinite
    or NaN, are discarded, so their warnings are silenced)."""
    count = np.count_nonzero(where)
    if count == 0:
        return
    if count <= WHOLE_SHARE * where.size:
        result[where] = formula(x[where])
        return
    with np.errstate(all="ignore"):
        np.copyto(result, formula(x), where=where)


def erfc_small(x: Array) -> Array:
    """1 - (19.5) for |x| <= 0.46875: between 1/2 and 3/2; (1/2 - x R1) + 1/2 in place."""
    result = rational(x * x, A, B)
    result *= x
    np.subtract(0.5, result, out=result)
    result += 0.5
    return result


def erfc_middle(x: Array) -> Array:
    """(19.6) for 0.46875 < |x| <= 4, with erfc(-y) = 2 - erfc(y)."""
    erfc_y = middle_tail(np.abs(x))
    result: Array = np.where(x > 0.0, erfc_y, 2.0 - erfc_y)
    return result


def erfc_large(x: Array) -> Array:
    """(19.7) for |x| > 4 (and NaN), with erfc(-y) = 2 - erfc(y)."""
    erfc_y = large_tail(np.abs(x))
    result: Array = np.where(x > 0.0, erfc_y, 2.0 - erfc_y)
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
    (large x): GELU's Phi(z) = erfc(-z / sqrt 2) / 2 for negative z. Each range of |x| by
    :func:`evaluate`: on its own elements, or on the whole array when it holds most of them."""
    y = np.abs(x)
    result = np.empty_like(x)
    small = y <= SMALL
    evaluate(erfc_small, x, small, result)
    middle = y <= MIDDLE
    middle &= ~small
    evaluate(erfc_middle, x, middle, result)
    middle |= small
    evaluate(erfc_large, x, ~middle, result)  # |x| > 4, and NaN
    return result


# (19.10) float32: Phi(z) = 1/2 erfc(|z| / sqrt 2) for z <= 0 (and 1 minus it for z > 0), with
# erfc(x) = t P(t) e^(-x^2), t = 1 / (1 + p x): the form of Hastings' approximation (Abramowitz and
# Stegun 7.1.26, p = 0.3275911), with P of degree 6 fitted by tools/fit_normal_cdf.py for an absolute
# error of erfc below 3.6e-9 (Hastings' degree 4 gives 1.5e-7). The coefficients halved (the 1/2 of
# Phi), lowest degree first, and p / sqrt 2 (t of |z| rather than of |z| / sqrt 2).
HALF_P = (
    0.0785204026582,
    0.215550016059,
    -0.374527797978,
    1.02004259737,
    -1.04276603111,
    0.752405252448,
    -0.149224437694,
)
P_OVER_SQRT_2 = 0.3275911 / 1.4142135623730951


def normal_cdf_single(z: Array, out: Array, gaussian: Array) -> Array:
    """Phi(z), the standard normal distribution function, into ``out`` by eq. 19.10, for float32
    arrays, and e^(-z^2 / 2) into ``gaussian`` (GELU's backward needs it: eq. 19.2). Absolute error
    below 1.8e-9 in exact arithmetic; like PyTorch's own float32 GELU it is held to an absolute error,
    not to relative digits in the far negative tail (tests/test_erf.py measures both)."""
    t = np.abs(z)
    t *= P_OVER_SQRT_2
    t += 1.0
    np.reciprocal(t, out=t)
    np.multiply(t, HALF_P[-1], out=out)
    for coefficient in HALF_P[-2::-1]:  # Horner's scheme: t (c0 + t (c1 + t (...))) / 2
        out += coefficient
        out *= t
    np.multiply(z, z, out=gaussian)
    gaussian *= -0.5
    np.exp(gaussian, out=gaussian)
    out *= gaussian  # the tail, Phi(-|z|)
    # Phi(z) = tail for z <= 0 and 1 - tail for z > 0, as m + (1 - 2m) tail with m = [z > 0]: one rounding,
    # none for z <= 0 (a masked ``where=`` branches on each element's sign, and copysign is as slow)
    positive = np.greater(z, 0.0, out=t)  # m, as 0.0 or 1.0
    positive *= -2.0
    positive += 1.0
    out *= positive  # (1 - 2m) tail, exactly
    positive -= 1.0
    positive *= -0.5  # m again
    out += positive
    return out
