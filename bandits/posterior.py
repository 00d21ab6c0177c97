"""Beta(alpha, beta) posteriors per arm: parameters from counts, means, exact credible intervals."""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial
from statistics import NormalDist

import numpy as np
import numpy.typing as npt
from numpy.typing import NDArray

from bandits.validation import beta_shapes, nonnegative, positive_scalar, real_scalar, same_shape

FloatArray = NDArray[np.float64]
# (a, b, u) -> (log I_x(a, b), log dI/du) at x = expit(u).
_LogCdf = Callable[[FloatArray, FloatArray, FloatArray], tuple[FloatArray, FloatArray]]

# From this min(alpha, beta) on, the continued fraction needs O(sqrt(min)) terms (~700 at 2e6)
# while the density is smooth and nearly normal in logit space, so it is integrated instead.
_QUADRATURE_MIN_SHAPE = 100.0
_GAUSS_NODES = 64
# Integration window, in posterior sds of logit(x); the density is log-concave there and for
# shapes >= 100 the mass beyond 30 sds is far below double precision (checked against scipy).
_WINDOW_SDS = 30.0
# Bracket for logit(quantile): beyond it expit() rounds to 0 or 1 anyway.
_LOGIT_BOUND = 800.0
# Last Newton step in logit space; convergence is quadratic, so the error left is far smaller.
_LOGIT_TOL = 1e-9
_NEWTON_MAX_ITER = 100
_CF_MAX_ITER = 2000
_TINY = 1e-300
_LOG_MAX = 700.0
_BELOW_ONE = 1.0 - 2.0**-53


def beta_params(
    impressions: npt.ArrayLike,
    clicks: npt.ArrayLike,
    prior_a: float = 1.0,
    prior_b: float = 1.0,
) -> tuple[FloatArray, FloatArray]:
    """Return the Beta posterior ``(alpha, beta)`` of each arm's click-through rate.

    ``alpha = prior_a + clicks`` and ``beta = prior_b + max(impressions - clicks, 0)``; the
    clamp keeps a click counted before its impression from making ``beta`` fall below the prior.

    >>> alpha, beta = beta_params([10, 3], [2, 5])
    >>> alpha, beta
    (array([3., 6.]), array([9., 1.]))
    """
    impressions_ = nonnegative("impressions", impressions)
    clicks_ = nonnegative("clicks", clicks)
    same_shape(("impressions", "clicks"), impressions_, clicks_)
    a = positive_scalar("prior_a", prior_a)
    b = positive_scalar("prior_b", prior_b)
    return _beta_params(impressions_, clicks_, a, b)


def beta_mean(alpha: npt.ArrayLike, beta: npt.ArrayLike) -> FloatArray:
    """Return the mean ``alpha / (alpha + beta)`` of each Beta posterior.

    >>> beta_mean([1.0, 3.0], [1.0, 1.0])
    array([0.5 , 0.75])
    """
    alpha_, beta_ = beta_shapes(alpha, beta)
    return alpha_ / (alpha_ + beta_)


def beta_interval(
    alpha: npt.ArrayLike, beta: npt.ArrayLike, level: float = 0.95
) -> tuple[FloatArray, FloatArray]:
    """Return the equal-tailed credible interval ``(lower, upper)`` of each Beta posterior.

    The bounds are the ``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles of
    Beta(alpha, beta), exact to about 1e-10 for shapes from 0.01 to 1e7.

    >>> lower, upper = beta_interval([1.0, 2.0], [1.0, 2.0], level=0.9)
    >>> lower.round(6), upper.round(6)
    (array([0.05   , 0.13535]), array([0.95   , 0.86465]))
    """
    alpha_, beta_ = beta_shapes(alpha, beta)
    level_ = real_scalar("level", level)
    if not 0.0 < level_ < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    return _beta_interval(alpha_, beta_, level_)


# -- validation --------------------------------------------------------------------------


# -- kernels on trusted arrays -----------------------------------------------------------


def _beta_params(
    impressions: FloatArray, clicks: FloatArray, prior_a: float, prior_b: float
) -> tuple[FloatArray, FloatArray]:
    return prior_a + clicks, prior_b + np.maximum(impressions - clicks, 0.0)


def _beta_interval(
    alpha: FloatArray, beta: FloatArray, level: float
) -> tuple[FloatArray, FloatArray]:
    tail = 0.5 * (1.0 - level)
    a = alpha.ravel()
    b = beta.ravel()
    # The upper bound of Beta(a, b) is 1 - the lower bound of Beta(b, a): one solve for both.
    logit = _lower_quantile_logit(np.concatenate([a, b]), np.concatenate([b, a]), tail)
    lower = _expit(logit[: a.size])
    upper = _expit(-logit[a.size :])
    return lower.reshape(alpha.shape), upper.reshape(alpha.shape)


def _lower_quantile_logit(a: FloatArray, b: FloatArray, p: float) -> FloatArray:
    """logit of the p-quantile of Beta(a, b), for p in (0, 1/2]."""
    logit = np.empty_like(a)
    by_quadrature = np.minimum(a, b) >= _QUADRATURE_MIN_SHAPE
    by_fraction = ~by_quadrature
    if np.any(by_fraction):
        logit[by_fraction] = _solve_in_logit(
            a[by_fraction], b[by_fraction], p, _log_cdf_by_fraction
        )
    if np.any(by_quadrature):
        nodes, weights = np.polynomial.legendre.leggauss(_GAUSS_NODES)
        log_cdf = partial(_log_cdf_by_quadrature, nodes=nodes, weights=weights)
        logit[by_quadrature] = _solve_in_logit(a[by_quadrature], b[by_quadrature], p, log_cdf)
    return logit


def _solve_in_logit(a: FloatArray, b: FloatArray, p: float, log_cdf: _LogCdf) -> FloatArray:
    """Solve log I(u) = log p for u = logit(x) by Newton steps kept inside a bisection bracket.

    In logit space the Beta density is log-concave, so log I is concave in u: Newton steps
    never overshoot the root after the first, and power-law tails (I ~ x^a) become straight
    lines that one step solves. An error in u moves x by at most a quarter of it and keeps
    relative precision for quantiles near 0 or 1.
    """
    log_p = math.log(p)
    lower = np.full_like(a, -_LOGIT_BOUND)
    upper = np.full_like(a, _LOGIT_BOUND)
    u = np.clip(_initial_logit(a, b, p), lower, upper)
    for _ in range(_NEWTON_MAX_ITER):
        log_value, log_density = log_cdf(a, b, u)
        excess = log_value - log_p
        below = excess < 0.0
        lower = np.where(below, u, lower)
        upper = np.where(below, upper, u)
        slope = np.exp(np.minimum(log_density - log_value, _LOG_MAX))
        newton = u - excess / np.maximum(slope, _TINY)
        inside = (newton >= lower) & (newton <= upper)
        step = np.where(inside, newton, 0.5 * (lower + upper)) - u
        u = u + step
        if np.max(np.abs(step), initial=0.0) <= _LOGIT_TOL:
            break
    return u


def _initial_logit(a: FloatArray, b: FloatArray, p: float) -> FloatArray:
    """A first guess at logit of the p-quantile of Beta(a, b) (Numerical Recipes, invbetai)."""
    # a, b >= 1: a normal quantile corrected for skew (Abramowitz & Stegun 26.5.22).
    z = -NormalDist().inv_cdf(p)
    a1 = np.maximum(a, 1.0)
    b1 = np.maximum(b, 1.0)
    skew = (z * z - 3.0) / 6.0
    h = 2.0 / (1.0 / (2.0 * a1 - 1.0) + 1.0 / (2.0 * b1 - 1.0))
    w = z * np.sqrt(skew + h) / h - (1.0 / (2.0 * b1 - 1.0) - 1.0 / (2.0 * a1 - 1.0)) * (
        skew + 5.0 / 6.0 - 2.0 / (3.0 * h)
    )
    moderate = np.log(a1 / b1) - 2.0 * w
    # Otherwise: the tail of whichever power law, x^a near 0 or (1 - x)^b near 1, holds p.
    log_near_zero = a * np.log(a / (a + b)) - np.log(a)
    log_near_one = b * np.log(b / (a + b)) - np.log(b)
    log_both = np.logaddexp(log_near_zero, log_near_one)
    log_x = np.minimum((np.log(a) + log_both + math.log(p)) / a, -1e-16)
    log_y = np.minimum((np.log(b) + log_both + math.log1p(-p)) / b, -1e-16)
    from_zero = log_x - np.log(-np.expm1(log_x))
    from_one = np.log(-np.expm1(log_y)) - log_y
    small = np.where(math.log(p) < log_near_zero - log_both, from_zero, from_one)
    return np.where((a >= 1.0) & (b >= 1.0), moderate, small)


def _log_cdf_by_fraction(
    a: FloatArray, b: FloatArray, u: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """log I_x(a, b) at x = expit(u) by the continued fraction, and log of dI/du."""
    x = _expit(u)
    y = _expit(-u)
    # log(x^a y^b / B(a, b)); x^a y^b / B(a, b) is also dI/du.
    log_density = a * _log_expit(u) + b * _log_expit(-u) - _log_beta(a, b)
    # The fraction converges fast only below the mean; above it use I_x(a, b) = 1 - I_y(b, a).
    # Compared on the side where x is not rounded: x = 1 - 1e-20 is stored as 1.0.
    total = a + b + 2.0
    swap = np.where(x <= 0.5, x > (a + 1.0) / total, y < (b + 1.0) / total)
    first = np.where(swap, b, a)
    second = np.where(swap, a, b)
    fraction = _beta_fraction(first, second, np.where(swap, y, x))
    # Only shapes past ~1e16, where x itself rounds to 1, can drive the fraction to <= 0.
    log_tail = log_density + np.log(np.maximum(fraction, _TINY)) - np.log(first)
    complement = np.log1p(-np.minimum(np.exp(log_tail), _BELOW_ONE))
    return np.where(swap, complement, log_tail), log_density


def _beta_fraction(a: FloatArray, b: FloatArray, x: FloatArray) -> FloatArray:
    """The continued fraction of I_x(a, b), evaluated by the modified Lentz method."""
    total = a + b
    c = np.ones_like(x)
    d = 1.0 / _away_from_zero(1.0 - total * x / (a + 1.0))
    fraction = d
    # x carries one rounding error, which the recurrences amplify about a-fold: below that
    # floor delta never settles (a = 1e7 leaves |delta - 1| near 1e-11 for good).
    tolerance = 4.0 * np.finfo(np.float64).eps * (1.0 + a / 64.0)
    for m in range(1, _CF_MAX_ITER + 1):
        m2 = 2.0 * m
        # Ratios of similar sizes first, so shapes near 1e300 do not overflow.
        even = (m / (a - 1.0 + m2)) * ((b - m) / (a + m2)) * x
        d = 1.0 / _away_from_zero(1.0 + even * d)
        c = _away_from_zero(1.0 + even / c)
        fraction = fraction * d * c
        odd = -((a + m) / (a + m2)) * ((total + m) / (a + 1.0 + m2)) * x
        d = 1.0 / _away_from_zero(1.0 + odd * d)
        c = _away_from_zero(1.0 + odd / c)
        delta = d * c
        fraction = fraction * delta
        if np.all(np.abs(delta - 1.0) <= tolerance):
            break
    return fraction


def _away_from_zero(values: FloatArray) -> FloatArray:
    return np.where(np.abs(values) < _TINY, _TINY, values)


def _log_cdf_by_quadrature(
    a: FloatArray, b: FloatArray, u: FloatArray, *, nodes: FloatArray, weights: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """log I_x(a, b) at x = expit(u) by Gauss-Legendre over the nearer tail, and log dI/du."""
    # Integrate the tail on the same side of the mode as u, so the mass sits near the limit.
    left = u <= np.log(a / b)
    first = np.where(left, a, b)
    second = np.where(left, b, a)
    limit = np.where(left, u, -u)
    width = _WINDOW_SDS * np.sqrt(1.0 / first + 1.0 / second)
    points = (limit - width)[:, None] + (0.5 * width)[:, None] * (nodes + 1.0)
    log_integrand = _log_density_in_logit(first[:, None], second[:, None], points)
    peak = np.max(log_integrand, axis=1)
    scaled = np.exp(log_integrand - peak[:, None]) @ weights
    log_tail = peak + np.log(0.5 * width * scaled)
    complement = np.log1p(-np.minimum(np.exp(log_tail), _BELOW_ONE))
    return np.where(left, log_tail, complement), _log_density_in_logit(a, b, u)


def _log_density_in_logit(a: FloatArray, b: FloatArray, u: FloatArray) -> FloatArray:
    """log(x^a y^b / B(a, b)) at x = expit(u), y = 1 - x, accurate for large a and b.

    Written around the mode x0 = a / (a + b) with Stirling's series for B(a, b), so no
    terms of size a * log(x) cancel: for a = 1e7 the naive form loses ~1e-8 absolutely.
    """
    total = a + b
    x0 = a / total
    y0 = b / total
    # x - x0 = y0 - y: take it from the side nearer 0, where neither term has rounded to 1.
    shift = np.where(x0 <= 0.5, _expit(u) - x0, y0 - _expit(-u))
    from_x = _log1p_deficit(shift / x0, _log_expit(u) - np.log(x0))
    from_y = _log1p_deficit(-shift / y0, _log_expit(-u) - np.log(y0))
    stirling = _stirling_tail(a) + _stirling_tail(b) - _stirling_tail(total)
    scale = 0.5 * (np.log(a) + np.log(b) - np.log(total) - math.log(2.0 * math.pi))
    return scale - a * from_x - b * from_y - stirling


def _log1p_deficit(e: FloatArray, log1p_e: FloatArray) -> FloatArray:
    """e - log(1 + e), given log(1 + e) computed separately for use far from e = 0."""
    near = np.abs(e) < 0.5
    return np.where(near, e - np.log1p(np.clip(e, -0.5, 0.5)), e - log1p_e)


def _log_beta(a: FloatArray, b: FloatArray) -> FloatArray:
    """log B(a, b) without the cancellation of log-gammas of size 1e8 when a or b is large."""
    small = np.minimum(a, b)
    large = np.maximum(a, b)
    total = small + large
    both_large = (
        small * np.log(small / total)
        + large * np.log(large / total)
        + 0.5 * (np.log(total) - np.log(small) - np.log(large))
        + 0.5 * math.log(2.0 * math.pi)
        + _stirling_tail(small)
        + _stirling_tail(large)
        - _stirling_tail(total)
    )
    safe_large = np.maximum(large, 10.0)
    safe_total = small + safe_large
    # log Gamma(large) - log Gamma(small + large) by Stirling, free of cancellation.
    ratio = (
        -(safe_large - 0.5) * np.log1p(small / safe_large)
        - small * np.log(safe_total)
        + small
        + _stirling_tail(safe_large)
        - _stirling_tail(safe_total)
    )
    # Clipped arguments only keep the branches that np.where discards finite.
    log_gamma_small = _log_gamma(np.minimum(small, 20.0))
    one_large = log_gamma_small + ratio
    neither = (
        log_gamma_small + _log_gamma(np.minimum(large, 20.0)) - _log_gamma(np.minimum(total, 20.0))
    )
    return np.where(small >= 10.0, both_large, np.where(large >= 10.0, one_large, neither))


def _log_gamma(z: FloatArray) -> FloatArray:
    """log Gamma(z) for 0 < z <= 20: Stirling's series at z + 10, recurred down."""
    shift = 10
    rising = np.ones_like(z)
    for j in range(shift):
        rising = rising * (z + j)
    w = z + shift
    stirling = (w - 0.5) * np.log(w) - w + 0.5 * math.log(2.0 * math.pi) + _stirling_tail(w)
    return stirling - np.log(rising)


def _stirling_tail(z: FloatArray) -> FloatArray:
    """log Gamma(z) - Stirling's leading terms, to ~1e-16 for z >= 10 (Bernoulli series)."""
    inverse = 1.0 / z
    r = inverse * inverse
    series = 1.0 / 1188.0 + r * (-691.0 / 360360.0 + r / 156.0)
    series = 1.0 / 12.0 + r * (-1.0 / 360.0 + r * (1.0 / 1260.0 + r * (-1.0 / 1680.0 + r * series)))
    return series * inverse


def _expit(u: FloatArray) -> FloatArray:
    e = np.exp(-np.abs(u))
    return np.where(u >= 0.0, 1.0 / (1.0 + e), e / (1.0 + e))


def _log_expit(u: FloatArray) -> FloatArray:
    return np.minimum(u, 0.0) - np.log1p(np.exp(-np.abs(u)))
