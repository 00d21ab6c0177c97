"""Soft-membership mixing, pool quotas and the catalog prior."""

import numpy as np
import pytest

from bandits import catalog_prior, fill_quotas, mix_posteriors, sample_scores


def test_mixing_is_the_weighted_sum_of_counts_plus_the_prior() -> None:
    prior = 1.0
    clicks = np.array([[10.0, 0.0, 3.0], [2.0, 4.0, 0.0], [0.0, 0.0, 9.0]])
    misses = np.array([[90.0, 5.0, 7.0], [8.0, 6.0, 1.0], [1.0, 1.0, 1.0]])
    weights = np.array([0.5, 0.3, 0.2])
    alpha, beta = mix_posteriors(clicks + prior, misses + prior, weights)
    np.testing.assert_allclose(alpha, prior + weights @ clicks)
    np.testing.assert_allclose(beta, prior + weights @ misses)


def test_a_one_hot_weight_is_hard_membership() -> None:
    rng = np.random.default_rng(0)
    alpha, beta = rng.uniform(1, 9, (4, 6)), rng.uniform(1, 9, (4, 6))
    mixed = mix_posteriors(alpha, beta, [0.0, 0.0, 1.0, 0.0])
    np.testing.assert_array_equal(mixed[0], alpha[2])
    np.testing.assert_array_equal(mixed[1], beta[2])


def test_mixed_samples_have_the_mixed_mean() -> None:
    """20,000 draws: the sample mean is within 0.005 (about 5 standard errors) of a/(a+b)."""
    alpha, beta = mix_posteriors([[30.0], [5.0]], [[70.0], [95.0]], [0.6, 0.4])
    draws = sample_scores(
        np.repeat(alpha, 20_000), np.repeat(beta, 20_000), np.random.default_rng(1)
    )
    assert draws.mean() == pytest.approx(alpha[0] / (alpha[0] + beta[0]), abs=0.005)


@pytest.mark.parametrize(
    ("weights", "match"),
    [([0.5, 0.6], "sum to 1"), ([1.0], "one entry per cluster"), ([1.5, -0.5], "weights")],
)
def test_mixing_rejects_bad_weights(weights, match) -> None:
    with pytest.raises(ValueError, match=match):
        mix_posteriors(np.ones((2, 3)), np.ones((2, 3)), weights)


def test_quotas_reserve_places_and_keep_score_order() -> None:
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.05, 0.04, 0.03])
    new, drama = np.array([4, 5]), np.array([6, 0])
    got = fill_quotas(scores, [new, drama], [2, 1], 5)
    # new gives 4 and 5; drama's best (0) is taken by score anyway, so it still gets one: 0;
    # the remaining two places go to the best of the rest: 1 and 2.
    np.testing.assert_array_equal(got, [0, 1, 2, 4, 5])


def test_quotas_do_not_take_an_arm_twice_and_never_exceed_k() -> None:
    scores = np.array([0.1, 0.2, 0.3, 0.4])
    got = fill_quotas(scores, [[0, 1], [1, 0]], [2, 2], 3)
    np.testing.assert_array_equal(got, [3, 1, 0])
    assert fill_quotas(scores, [[0, 1, 2, 3]], [9], 2).tolist() == [3, 2]


def test_quotas_larger_than_the_pool_give_what_it_has() -> None:
    got = fill_quotas([0.5, 0.1, 0.9], [[1]], [3], 3)
    np.testing.assert_array_equal(got, [2, 0, 1])


@pytest.mark.parametrize(
    ("pools", "quotas", "match"),
    [
        ([[0]], [1, 2], "pair up"),
        ([[5]], [1], "outside"),
        ([[0]], [-1], "quotas"),
        ([[0.5]], [1], "pools"),
    ],
)
def test_quotas_reject_bad_arguments(pools, quotas, match) -> None:
    with pytest.raises(ValueError, match=match):
        fill_quotas([0.1, 0.2], pools, quotas, 2)


def test_catalog_prior_centres_a_new_arm_on_the_pooled_ctr() -> None:
    a0, b0 = catalog_prior([1000, 3000, 0], [30, 90, 0], strength=50)
    assert a0 / (a0 + b0) == pytest.approx(0.03)
    assert a0 + b0 == pytest.approx(50)
    assert catalog_prior([0], [0], 10) == (5.0, 5.0)
    a0, b0 = catalog_prior([10], [10], 10)  # an all-click catalog still gives b0 > 0
    assert a0 > 0 and b0 > 0


def test_catalog_prior_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="strength"):
        catalog_prior([1], [0], 0)
    with pytest.raises(ValueError, match="same shape"):
        catalog_prior([1, 2], [0], 1)


def test_shrunk_priors_move_from_the_catalog_mean_toward_the_item_ctr() -> None:
    from bandits import shrunk_priors

    a, b = 0.5, 9.5  # catalog CTR 5%, worth 10 impressions
    a0, b0 = shrunk_priors([0, 100, 10_000], [0, 20, 2_000], a, b, 10.0)
    means = a0 / (a0 + b0)
    assert means[0] == pytest.approx(0.05)  # brand new: the catalog mean
    assert means[1] == pytest.approx(20.5 / 110)  # 100 impressions: mostly the item's 20%
    assert means[2] == pytest.approx(0.2, abs=1e-3)  # lots of data: the item's own CTR
    np.testing.assert_allclose(a0 + b0, 10.0)  # always worth `strength` impressions


def test_shrunk_priors_reject_bad_arguments() -> None:
    from bandits import shrunk_priors

    with pytest.raises(ValueError, match="must be > 0"):
        shrunk_priors([1], [0], 0.0, 1.0, 1.0)
    with pytest.raises(ValueError, match="same shape"):
        shrunk_priors([1, 2], [0], 1.0, 1.0, 1.0)
