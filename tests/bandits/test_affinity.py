"""Affinity-tilted priors: the slope fit, calibration to the item's global mean, edge cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bandits import Prior, affinity_params, empirical_params, fit_affinity_slope


def world_counts(
    rng: np.random.Generator, slope: float, shown_per_arm: float, k: int = 6, n: int = 200
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (impressions, clicks, affinity): per-cluster CTR logit -3.5 + q_i + slope * x."""
    x = rng.uniform(-1.0, 1.0, size=(k, n))
    quality = rng.normal(0.0, 0.5, size=n)
    p = 1.0 / (1.0 + np.exp(-(-3.5 + quality + slope * x)))
    shown = rng.poisson(shown_per_arm, size=(k, n)).astype(float)
    clicked = rng.binomial(shown.astype(np.int64), p).astype(float)
    return np.vstack([shown, shown.sum(0)]), np.vstack([clicked, clicked.sum(0)]), x


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_slope_is_recovered_from_per_cluster_counts(seed: int) -> None:
    impressions, clicks, x = world_counts(np.random.default_rng(seed), 2.2, 300.0)
    slope = fit_affinity_slope(impressions, clicks, x, strength=10.0)
    # Tolerance: 0.25 (about 3 standard errors with 1 200 arms of 300 impressions).
    assert slope == pytest.approx(2.2, abs=0.25)


def test_without_evidence_the_slope_stays_where_it_started() -> None:
    impressions, clicks, x = world_counts(np.random.default_rng(0), 2.2, 0.0)
    assert fit_affinity_slope(impressions, clicks, x, 10.0, start=1.5) == pytest.approx(1.5)


def test_cluster_means_average_to_the_items_global_mean() -> None:
    impressions, clicks, x = world_counts(np.random.default_rng(3), 2.0, 50.0)
    alpha, beta = affinity_params(impressions, clicks, x, strength=10.0, slope=2.0)
    a_cat, b_cat = empirical_params(impressions, clicks, 10.0)
    # The tilt moves an item's clicks between clusters: weighted by the item's cluster mix,
    # the prior means are the catalog prior's (its global posterior), to 1e-3 relative
    # (3 Newton steps; without calibration the tilt shifts them by tens of percent).
    prior_mean = (alpha[:-1] - clicks[:-1]) / 10.0
    catalog_mean = (a_cat[:-1] - clicks[:-1]) / 10.0
    share = impressions[:-1].sum(1) / impressions[:-1].sum()
    mix = (impressions[:-1] + 10.0 * share[:, None]) / (impressions[:-1].sum(0) + 10.0)
    np.testing.assert_allclose((mix * prior_mean).sum(0), catalog_mean[0], rtol=1e-3)
    # Within each item, the closer a cluster, the higher its arm starts.
    by_affinity = np.take_along_axis(prior_mean, np.argsort(x, axis=0), axis=0)
    assert np.all(np.diff(by_affinity, axis=0) > 0)
    np.testing.assert_array_equal(alpha[-1], a_cat[-1])
    np.testing.assert_array_equal(beta[-1], b_cat[-1])


def test_zero_slope_is_the_catalog_prior_and_unknown_affinity_is_untilted() -> None:
    impressions, clicks, x = world_counts(np.random.default_rng(4), 2.0, 20.0)
    alpha, beta = affinity_params(impressions, clicks, x, 10.0, slope=0.0)
    a_cat, b_cat = empirical_params(impressions, clicks, 10.0)
    np.testing.assert_allclose(alpha, a_cat, rtol=1e-9)
    np.testing.assert_allclose(beta, b_cat, rtol=1e-9)
    x[:, 7] = np.nan
    alpha, _ = affinity_params(impressions, clicks, x, 10.0, slope=3.0)
    np.testing.assert_allclose(alpha[:, 7], a_cat[:, 7], rtol=1e-9)


def test_prior_kind_affinity_dispatches_and_falls_back_without_affinity() -> None:
    impressions, clicks, x = world_counts(np.random.default_rng(5), 2.0, 20.0)
    prior = Prior("affinity", strength=10.0)
    tilted = prior.params(impressions, clicks, affinity=x, slope=2.0)
    np.testing.assert_array_equal(tilted[0], affinity_params(impressions, clicks, x, 10.0, 2.0)[0])
    plain = prior.params(impressions, clicks)
    np.testing.assert_array_equal(plain[0], empirical_params(impressions, clicks, 10.0)[0])


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"affinity": np.zeros((2, 3))}, "affinity must have one row per cluster"),
        ({"affinity": np.full((1, 3), math.inf)}, "affinity must be finite"),
        ({"impressions": np.zeros(3)}, "counts must be 2-D"),
        ({"strength": 0.0}, "strength"),
    ],
)
def test_bad_arguments_are_named(change: dict[str, object], match: str) -> None:
    arguments: dict[str, object] = {
        "impressions": np.ones((2, 3)),
        "clicks": np.zeros((2, 3)),
        "affinity": np.zeros((1, 3)),
        "strength": 10.0,
    }
    arguments.update(change)
    if np.ndim(arguments["impressions"]) == 1:
        arguments["clicks"] = np.zeros(3)
    with pytest.raises(ValueError, match=match):
        fit_affinity_slope(**arguments)  # type: ignore[arg-type]
