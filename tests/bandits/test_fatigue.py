"""Learned seen decay: buckets, the prior curve, and recovery of a known fatigue curve."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bandits.fatigue import (
    FatigueBuckets,
    FatigueLearner,
    decay_posterior,
    decay_prior,
    fit_decay_strength,
)

# The known world: click chance x TIRED[n] right after n unclicked impressions, and the
# tired part fades by half every HALF_LIFE (time units) since the last of them.
TIRED = np.array([1.0, 0.6, 0.4, 0.3, 0.25])
HALF_LIFE = 10.0


def true_multiplier(n: np.ndarray, age: np.ndarray) -> np.ndarray:
    return 1.0 - (1.0 - TIRED[np.minimum(n, 4)]) * np.exp2(-age / HALF_LIFE)


def simulated_impressions(
    rng: np.random.Generator, size: int, tired_items_better: bool
) -> tuple[np.ndarray, ...]:
    """Return (n, age, base CTR, clicked) of simulated impressions of the known world."""
    n = rng.choice(5, size=size, p=[0.4, 0.2, 0.15, 0.15, 0.1])
    age = np.exp(rng.uniform(np.log(0.5), np.log(500.0), size=size))
    base = rng.uniform(0.02, 0.2, size=size)
    if tired_items_better:
        # As under a bandit: an item shown again despite being ignored is usually a good one.
        base = np.where(n > 0, base * 1.5, base)
    clicked = rng.random(size) < base * true_multiplier(n, age)
    return n, age, base, clicked


def test_buckets_by_hand() -> None:
    buckets = FatigueBuckets(max_unclicked=2, age_edges=(1.0, 10.0))
    assert buckets.n_ages == 3 and buckets.size == 7
    # Fractional (time-decayed) counts round up; beyond the cap shares the last row;
    # an age on an edge belongs to the band above; negative ages are age 0.
    got = buckets.index([0.0, 0.2, 1.0, 1.5, 9.0, 1.0, 1.0], [5.0, 0.0, 1.0, 0.0, 99.0, -3.0, 10.0])
    assert got.tolist() == [0, 1, 2, 4, 6, 1, 3]
    assert buckets.unclicked_levels().tolist() == [0, 1, 1, 1, 2, 2, 2]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"max_unclicked": 0}, "max_unclicked"),
        ({"age_edges": (2.0, 1.0)}, "increasing"),
        ({"age_edges": (0.0, 1.0)}, "increasing"),
        ({"age_edges": (1.0, math.nan)}, "age_edges"),
    ],
)
def test_buckets_reject_bad_shapes(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        FatigueBuckets(**kwargs)  # type: ignore[arg-type]


def test_index_rejects_bad_counts_and_ages() -> None:
    buckets = FatigueBuckets()
    with pytest.raises(ValueError, match=r"unclicked\[1\] = -1.0"):
        buckets.index([0.0, -1.0], [0.0, 0.0])
    with pytest.raises(ValueError, match="ages"):
        buckets.index([0.0], [math.nan])
    with pytest.raises(ValueError, match="same shape"):
        buckets.index([0.0, 1.0], [0.0])


def test_prior_is_the_fixed_decay_and_gamma_one_is_no_penalty() -> None:
    buckets = FatigueBuckets(3, (1.0,))
    # An infinite half-life: the fixed decay gamma ** n at every age.
    prior = decay_prior(buckets, 0.7, math.inf)
    np.testing.assert_allclose(prior, 0.7 ** buckets.unclicked_levels(), rtol=1e-15)
    np.testing.assert_array_equal(decay_prior(buckets, 1.0, 5.0), np.ones(buckets.size))
    with pytest.raises(ValueError, match="gamma"):
        decay_prior(buckets, 0.0, 1.0)
    with pytest.raises(ValueError, match="half_life"):
        decay_prior(buckets, 0.5, 0.0)


def test_thin_evidence_stays_at_the_prior_and_plenty_overrules_it() -> None:
    prior = np.array([1.0, 0.5])
    thin = decay_posterior([10_000, 3], [1000, 1], None, prior, strength=200.0).mean()
    # 3 impressions at CTR 1/3 against a fresh 0.1 would say 3.3x; 200 prior impressions say 0.5.
    assert 0.5 < thin[1] < 0.6
    plenty = decay_posterior([10_000, 100_000], [1000, 3000], None, prior, 200.0).mean()
    assert plenty[1] == pytest.approx(0.3, abs=0.005)
    with pytest.raises(ValueError, match="strength"):
        decay_posterior([1, 1], [0, 0], None, prior, 0.0)
    with pytest.raises(ValueError, match="expected"):
        decay_posterior([1, 1], [0, 0], [1.0], prior, 1.0)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_learned_decay_recovers_a_known_fatigue_curve(seed: int) -> None:
    rng = np.random.default_rng(seed)
    buckets = FatigueBuckets.log_spaced(first=2.0, factor=3.0, count=4, max_unclicked=4)
    n, age, base, clicked = simulated_impressions(rng, 600_000, tired_items_better=True)
    where = buckets.index(n, age)
    # The bandit's expectations are 20% too low everywhere: the fresh bucket calibrates that.
    learner = FatigueLearner(buckets, prior_gamma=1.0, strength=50.0)
    learner.update(where, clicked, 0.8 * base)
    learned = learner.posterior().mean()
    # The truth per bucket: its multiplier averaged over the bucket's expected clicks.
    truth = np.bincount(where, base * true_multiplier(n, age), buckets.size) / np.bincount(
        where, base, buckets.size
    )
    # Tolerance: 0.05 absolute in every bucket (standard errors are 0.01-0.02).
    np.testing.assert_allclose(learned, truth, atol=0.05)
    # The curve falls with n and recovers with age, as the world's does.
    grid = buckets.grid(learned)
    assert np.all(grid[:, 0] < grid[:, -1])
    assert np.all(np.diff(grid[:, 0]) < 0)


def test_without_expected_clicks_better_tired_items_hide_the_fatigue() -> None:
    # Why the evidence carries expected clicks: the raw CTR ratio is fooled by selection.
    rng = np.random.default_rng(3)
    buckets = FatigueBuckets.log_spaced(first=2.0, factor=3.0, count=4, max_unclicked=4)
    n, age, base, clicked = simulated_impressions(rng, 300_000, tired_items_better=True)
    where = buckets.index(n, age)
    counts = np.bincount(where, minlength=buckets.size)
    clicks = np.bincount(where, clicked, buckets.size)
    prior = np.ones(buckets.size)
    raw = decay_posterior(counts, clicks, None, prior, 50.0).mean()
    fair = decay_posterior(counts, clicks, np.bincount(where, base, buckets.size), prior, 50.0)
    youngest_after_one = 1
    assert raw[youngest_after_one] > fair.mean()[youngest_after_one] + 0.1


def test_thompson_draws_spread_around_the_mean() -> None:
    post = decay_posterior([1000, 200, 20], [100, 10, 1], None, [1.0, 0.7, 0.7], 50.0)
    rng = np.random.default_rng(0)
    draws = np.array([post.draw(rng) for _ in range(4000)])
    assert np.all(draws[:, 0] == 1.0)
    np.testing.assert_allclose(draws.mean(axis=0), post.mean(), rtol=0.03)
    # Less evidence, wider draws.
    assert draws[:, 2].std() > draws[:, 1].std()
    low, high = post.interval(2000, np.random.default_rng(1))
    assert np.all(low[1:] < post.mean()[1:]) and np.all(post.mean()[1:] < high[1:])


def _buckets_with_spread(rng: np.random.Generator, shape: float) -> tuple[np.ndarray, ...]:
    """Return (impressions, clicks, expected) of 1 fresh + 400 tired buckets whose true
    multipliers are Gamma(shape, shape): mean 1, variance 1 / shape (inf: all exactly 1)."""
    shown = rng.uniform(500.0, 5000.0, size=401)
    # Most impressions are fresh, as under a bandit: the yardstick is sharp.
    shown[0] = shown[1:].sum()
    expected = 0.08 * shown
    spread = np.ones(400) if math.isinf(shape) else rng.gamma(shape, 1.0 / shape, size=400)
    truth = np.concatenate([[1.0], spread])
    clicks = rng.poisson(expected * truth).astype(float)
    return shown, clicks, expected


@pytest.mark.parametrize("shape", [2.0, 8.0, 32.0])
def test_fitted_strength_recovers_a_known_spread(shape: float) -> None:
    # The prior's worth in pseudo-clicks is the Gamma shape (mean 1, variance 1 / shape);
    # in impressions, shape over the pooled CTR (0.08). Observed over seeds 0-9: 1.78-3.05
    # for 2, 7.16-9.00 for 8, 28.9-38.8 for 32. Tolerance: the median within 15%, every
    # seed within 60%; a fit off by a factor of 4 (the shapes' spacing) fails both.
    fits = []
    for seed in range(10):
        shown, clicks, expected = _buckets_with_spread(np.random.default_rng(seed), shape)
        pooled = (clicks.sum() + 1.0) / (shown.sum() + 2.0)
        fits.append(fit_decay_strength(shown, clicks, expected, np.ones(401)) * pooled)
    assert np.median(fits) == pytest.approx(shape, rel=0.15), fits
    assert np.all(np.abs(np.array(fits) / shape - 1.0) <= 0.6), fits


def test_fitted_strength_is_the_cap_where_the_prior_is_right_and_low_where_it_is_wrong() -> None:
    # The prior (1 everywhere) is right: the fit reaches its cap in most seeds and never
    # falls below 10x the strength a true spread of variance 1/8 gives (8 / 0.08 = 100).
    worlds = [_buckets_with_spread(np.random.default_rng(s), math.inf) for s in range(10)]
    fits = [fit_decay_strength(*world, np.ones(401)) for world in worlds]
    assert sum(f == 10_000.0 for f in fits) >= 5 and min(fits) >= 1000.0, fits
    # The prior is wrong by x0.5 in every tired bucket, an error of variance 0.25 (4
    # pseudo-clicks, 50 impressions; observed 67): the prior's worth falls by 100x.
    rng = np.random.default_rng(0)
    shown, _, expected = _buckets_with_spread(rng, math.inf)
    clicks = rng.poisson(expected * np.concatenate([[1.0], np.full(400, 0.5)])).astype(float)
    assert fit_decay_strength(shown, clicks, expected, np.ones(401)) < 100.0


def test_a_learner_without_a_strength_fits_one_and_follows_evidence_far_from_its_prior() -> None:
    buckets = FatigueBuckets(max_unclicked=1, age_edges=(10.0,))
    rng = np.random.default_rng(4)
    fitted = FatigueLearner(buckets, prior_gamma=1.0, strength=None)
    fixed = FatigueLearner(buckets, prior_gamma=1.0, strength=10_000.0)
    # 3 000 impressions per bucket at an expected CTR of 0.1; tired ones click x0.4.
    where = np.repeat(np.arange(3), 3000)
    clicked = rng.random(where.size) < 0.1 * np.array([1.0, 0.4, 0.4])[where]
    for learner in (fitted, fixed):
        learner.update(where, clicked, np.full(where.size, 0.1))
    assert fitted.strength_() < 100.0
    # Binomial noise on 120 expected clicks: about +-0.06; the cap's prior holds it near 1.
    np.testing.assert_allclose(fitted.posterior().mean()[1:], 0.4, atol=0.1)
    assert np.all(fixed.posterior().mean()[1:] > 0.6)
    with pytest.raises(ValueError, match="low"):
        fit_decay_strength([1, 1], [0, 0], [1, 1], [1, 1], low=0.0)
