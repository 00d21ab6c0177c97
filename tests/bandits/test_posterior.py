"""Beta posteriors: parameters from counts, means, and credible intervals checked against scipy."""

import math

import numpy as np
import pytest
from scipy import stats

from bandits import beta_interval, beta_mean, beta_params

# (alpha, beta) pairs from a fresh arm to ten million impressions, and each one mirrored.
GRID = [(1.0, 1.0), (0.5, 0.5), (1.0, 1000.0), (3.0, 7.0), (500.0, 9500.0), (1e5, 9e5), (2e6, 8e6)]
GRID_ALPHA = np.array([a for a, b in GRID] + [b for a, b in GRID])
GRID_BETA = np.array([b for a, b in GRID] + [a for a, b in GRID])


def reference_interval(
    alpha: np.ndarray, beta: np.ndarray, level: float
) -> tuple[np.ndarray, np.ndarray]:
    tail = (1.0 - level) / 2.0
    return stats.beta.ppf(tail, alpha, beta), stats.beta.isf(tail, alpha, beta)


# -- beta_params -------------------------------------------------------------------------


def test_beta_params_adds_clicks_and_misses_to_the_prior() -> None:
    alpha, beta = beta_params([10, 0, 7], [2, 0, 7], prior_a=0.5, prior_b=2.0)
    np.testing.assert_array_equal(alpha, [2.5, 0.5, 7.5])
    np.testing.assert_array_equal(beta, [10.0, 2.0, 2.0])
    assert alpha.dtype == np.float64
    assert beta.dtype == np.float64


def test_beta_params_clamps_misses_at_zero_when_clicks_exceed_impressions() -> None:
    alpha, beta = beta_params([3.0, 5.0], [5.0, 5.0])
    np.testing.assert_array_equal(alpha, [6.0, 6.0])
    np.testing.assert_array_equal(beta, [1.0, 1.0])


def test_beta_params_keeps_the_input_shape() -> None:
    alpha, beta = beta_params(np.full((2, 3), 4.0), np.ones((2, 3)))
    assert alpha.shape == beta.shape == (2, 3)
    alpha0, beta0 = beta_params(4, 1)
    assert alpha0.shape == beta0.shape == ()
    assert (float(alpha0), float(beta0)) == (2.0, 4.0)


@pytest.mark.parametrize(
    ("impressions", "clicks", "match"),
    [
        (
            [1.0, -1.0],
            [0.0, 0.0],
            r"impressions must be finite and >= 0; got impressions\[1\] = -1",
        ),
        ([1.0, 1.0], [0.0, math.nan], r"clicks must be finite and >= 0; got clicks\[1\] = nan"),
        ([math.inf], [0.0], r"impressions\[0\] = inf"),
        ([1.0, 2.0], [1.0], r"same shape; got \(2,\) and \(1,\)"),
        (["ten"], [1.0], "impressions must be an array of numbers, got \\['ten'\\]"),
    ],
)
def test_beta_params_rejects_bad_counts(impressions: object, clicks: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        beta_params(impressions, clicks)  # type: ignore[arg-type]


@pytest.mark.parametrize("prior", [0.0, -1.0, math.nan, math.inf, True, "1"])
def test_beta_params_rejects_bad_priors(prior: object) -> None:
    with pytest.raises(ValueError, match="prior_a"):
        beta_params([1.0], [0.0], prior_a=prior)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="prior_b"):
        beta_params([1.0], [0.0], prior_b=prior)  # type: ignore[arg-type]


# -- beta_mean ---------------------------------------------------------------------------


def test_beta_mean() -> None:
    np.testing.assert_allclose(beta_mean([1.0, 3.0, 2e6], [1.0, 1.0, 8e6]), [0.5, 0.75, 0.2])


@pytest.mark.parametrize(
    ("alpha", "beta", "match"),
    [
        ([1.0, 0.0], [1.0, 1.0], r"alpha must be finite and > 0; got alpha\[1\] = 0.0"),
        ([1.0], [-2.0], r"beta must be finite and > 0; got beta\[0\] = -2.0"),
        ([1.0], [math.nan], r"beta\[0\] = nan"),
        ([1.0, 1.0], [1.0], "same shape"),
    ],
)
def test_beta_mean_rejects_bad_shapes(alpha: object, beta: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        beta_mean(alpha, beta)  # type: ignore[arg-type]


# -- beta_interval -----------------------------------------------------------------------


@pytest.mark.parametrize("level", [0.5, 0.9, 0.95, 0.99, 0.999])
def test_beta_interval_matches_scipy_on_the_grid(level: float) -> None:
    """Both bounds within 1e-6 of scipy.stats.beta (observed: at most 1.3e-15)."""
    lower, upper = beta_interval(GRID_ALPHA, GRID_BETA, level)
    ref_lower, ref_upper = reference_interval(GRID_ALPHA, GRID_BETA, level)
    np.testing.assert_allclose(lower, ref_lower, rtol=0.0, atol=1e-6)
    np.testing.assert_allclose(upper, ref_upper, rtol=0.0, atol=1e-6)
    # The docstring promises ~1e-10; hold it to that with room to spare.
    np.testing.assert_allclose(lower, ref_lower, rtol=0.0, atol=1e-9)
    np.testing.assert_allclose(upper, ref_upper, rtol=0.0, atol=1e-9)


@pytest.mark.parametrize("level", [0.8, 0.95, 0.999999])
def test_beta_interval_matches_scipy_on_random_shapes(level: float) -> None:
    """3,000 shapes log-uniform on [0.5, 1e7] each: within 1e-6 of scipy (observed <= 2.2e-13)."""
    rng = np.random.default_rng(2024)
    alpha = 10.0 ** rng.uniform(math.log10(0.5), 7.0, 3000)
    beta = 10.0 ** rng.uniform(math.log10(0.5), 7.0, 3000)
    lower, upper = beta_interval(alpha, beta, level)
    ref_lower, ref_upper = reference_interval(alpha, beta, level)
    np.testing.assert_allclose(lower, ref_lower, rtol=0.0, atol=1e-6)
    np.testing.assert_allclose(upper, ref_upper, rtol=0.0, atol=1e-6)


def test_beta_interval_is_continuous_where_the_method_changes() -> None:
    """min(alpha, beta) = 100 switches continued fraction to quadrature: no jump there."""
    alpha = np.array([99.999, 100.0, 100.001, 99.999, 100.0])
    beta = np.array([1e6, 1e6, 1e6, 150.0, 150.0])
    lower, upper = beta_interval(alpha, beta)
    ref_lower, ref_upper = reference_interval(alpha, beta, 0.95)
    np.testing.assert_allclose(lower, ref_lower, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(upper, ref_upper, rtol=1e-9, atol=1e-12)


def test_beta_interval_has_closed_forms_for_uniform_and_arcsine() -> None:
    lower, upper = beta_interval([1.0, 0.5], [1.0, 0.5], level=0.9)
    # Beta(1, 1) is uniform; Beta(1/2, 1/2) has CDF (2 / pi) * asin(sqrt(x)).
    arcsine = math.sin(math.pi * 0.05 / 2.0) ** 2
    np.testing.assert_allclose(lower, [0.05, arcsine], rtol=0.0, atol=1e-12)
    np.testing.assert_allclose(upper, [0.95, 1.0 - arcsine], rtol=0.0, atol=1e-12)


def test_beta_interval_brackets_the_mean_and_narrows_with_data() -> None:
    alpha, beta = beta_params([10.0, 1e3, 1e5, 1e7], [1.0, 1e2, 1e4, 1e6])
    lower, upper = beta_interval(alpha, beta)
    mean = beta_mean(alpha, beta)
    assert np.all((lower < mean) & (mean < upper))
    assert np.all(np.diff(upper - lower) < 0.0)


def test_beta_interval_keeps_the_input_shape() -> None:
    lower, upper = beta_interval(np.full((2, 3), 2.0), np.full((2, 3), 5.0))
    assert lower.shape == upper.shape == (2, 3)
    lower0, upper0 = beta_interval(2.0, 5.0)
    assert lower0.shape == upper0.shape == ()
    empty_lower, empty_upper = beta_interval([], [])
    assert empty_lower.shape == empty_upper.shape == (0,)


def test_beta_interval_stays_finite_and_ordered_for_extreme_shapes() -> None:
    """Shapes 1e-8 to 1e300: finite and inside [0, 1]; ordered up to 1e15 (filterwarnings=error)."""
    shapes = np.array([1e-8, 1e-3, 0.05, 1.0, 99.99, 100.0, 1e4, 1e9, 1e12, 1e15, 1e100, 1e300])
    alpha, beta = np.meshgrid(shapes, shapes)
    for level in (0.5, 0.95, 0.999999):
        lower, upper = beta_interval(alpha, beta, level)
        assert np.all(np.isfinite(lower) & np.isfinite(upper))
        assert np.all((lower >= 0.0) & (upper <= 1.0))
        sane = (alpha <= 1e15) & (beta <= 1e15)
        assert np.all(lower[sane] <= upper[sane])


@pytest.mark.parametrize("level", [0.0, 1.0, -0.5, 1.5, math.nan, math.inf, True, "0.9"])
def test_beta_interval_rejects_bad_levels(level: object) -> None:
    with pytest.raises(ValueError, match="level"):
        beta_interval([1.0], [1.0], level=level)  # type: ignore[arg-type]


def test_beta_interval_rejects_bad_shapes() -> None:
    with pytest.raises(ValueError, match=r"alpha must be finite and > 0; got alpha\[0\] = 0.0"):
        beta_interval([0.0], [1.0])
    with pytest.raises(ValueError, match="same shape"):
        beta_interval([1.0, 2.0], [1.0])
