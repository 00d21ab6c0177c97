"""The catalog prior on tiny or extreme evidence: no point mass, no rate above 1."""

from __future__ import annotations

import numpy as np
import pytest

from bandits import Prior, catalog_prior, conversion_rate, effective_impressions, rank


def test_clicks_without_impressions_do_not_collapse_the_catalog_prior() -> None:
    # Issue 12, D4: 1 impression and 3 clicks gave Beta(~10, ~1e-5), a point mass at 1.
    a0, b0 = catalog_prior([1, 0, 0], [3, 0, 0], strength=10)
    assert (a0, b0) == pytest.approx((8.0, 2.0))  # 3 hits in 3 trials: Laplace's 4/5
    assert min(a0, b0) >= 1.0


def test_unclicked_impressions_do_not_collapse_it_either() -> None:
    a0, b0 = catalog_prior([10, 0], [0, 0], strength=10)
    assert a0 / (a0 + b0) == pytest.approx(1 / 12)  # 10 misses: Laplace's 1/12, not 1e-6
    # Plenty of misses do pull it close to 0, as the evidence says.
    a0, b0 = catalog_prior([1_000_000], [0], strength=10)
    assert a0 / (a0 + b0) == pytest.approx(1 / 1_000_002)


def test_the_bound_leaves_sane_catalogs_alone() -> None:
    rng = np.random.default_rng(7)
    for _ in range(100):
        impressions = rng.integers(0, 5000, 20).astype(float)
        clicks = rng.binomial(impressions.astype(int), rng.uniform(0.01, 0.5)).astype(float)
        a0, b0 = catalog_prior(impressions, clicks, strength=10)
        assert a0 / (a0 + b0) == pytest.approx(clicks.sum() / impressions.sum(), rel=1e-12)


def test_with_more_clicks_than_impressions_the_ranking_still_explores() -> None:
    # Ten items; one has 1 impression and 3 clicks, the rest nothing: cluster row, then global.
    impressions = np.zeros((2, 10))
    clicks = np.zeros((2, 10))
    impressions[:, 0], clicks[:, 0] = 1.0, 3.0
    alpha, beta = Prior("catalog", strength=10.0).params(impressions, clicks)
    rng = np.random.default_rng(12)
    winners = np.array([rank(alpha[0], beta[0], 1, rng)[0][0] for _ in range(1000)])
    shares = np.bincount(winners, minlength=10) / 1000
    # Beta(11, 2) against nine Beta(8, 2): the clicked item leads but far from always, and
    # every other item wins some draws (each ~7%; sd of a share over 1000 draws <= 0.016).
    assert 0.15 < shares[0] < 0.5
    assert (shares[1:] > 0.02).all()


def test_no_derived_rate_exceeds_one() -> None:
    rng = np.random.default_rng(3)
    impressions = rng.integers(0, 5, (3, 50)).astype(float)
    clicks = rng.integers(0, 10, (3, 50)).astype(float)  # often more clicks than impressions
    conversions = rng.integers(0, 10, (3, 50)).astype(float)
    assert (effective_impressions(impressions, clicks) >= clicks).all()
    a0, b0 = catalog_prior(impressions[-1], clicks[-1], 10.0)
    assert 0 < a0 / (a0 + b0) < 1
    alpha, beta = Prior("catalog").params(impressions, clicks)
    assert ((alpha / (alpha + beta)) < 1).all()
    rate = conversion_rate(clicks, conversions, 10.0)
    assert ((rate > 0) & (rate < 1)).all()
