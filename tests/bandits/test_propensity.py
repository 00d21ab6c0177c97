"""Inclusion probabilities of Thompson sampling, checked against exact values."""

import numpy as np
import pytest

from bandits import inclusion_probabilities, rank

SAMPLES = 20_000


def test_two_arms_k1_matches_the_exact_probability() -> None:
    """X ~ Beta(2, 1) beats Y ~ Beta(1, 1) with P = integral of 2x * x dx = 2/3.

    With 20,000 draws the standard error is sqrt(2/9 / 20,000) = 0.0033; tolerance 0.015
    is 4.5 standard errors, so a correct estimator fails about once in 150,000 seeds.
    """
    p = inclusion_probabilities(
        [2.0, 1.0], [1.0, 1.0], 1, np.random.default_rng(0), SAMPLES, [0, 1]
    )
    assert p[0] == pytest.approx(2 / 3, abs=0.015)
    assert p[1] == pytest.approx(1 / 3, abs=0.015)


def test_probabilities_over_all_arms_sum_to_k() -> None:
    rng = np.random.default_rng(1)
    alpha, beta = rng.uniform(1, 30, 50), rng.uniform(1, 300, 50)
    p = inclusion_probabilities(alpha, beta, 7, rng, 2_000, np.arange(50))
    # Each of the 2,001 counted draws includes exactly 7 arms; the +1 adds 1/2001 per arm.
    assert p.sum() == pytest.approx((7 * 2_000 + 50) / 2_001)


def test_multipliers_lower_a_penalised_arms_probability() -> None:
    alpha, beta = np.full(10, 20.0), np.full(10, 80.0)
    plain = inclusion_probabilities(alpha, beta, 3, np.random.default_rng(2), 5_000, [0])
    factors = np.ones(10)
    factors[0] = 0.5**3
    penalised = inclusion_probabilities(
        alpha, beta, 3, np.random.default_rng(2), 5_000, [0], factors
    )
    assert plain[0] == pytest.approx(0.3, abs=0.03)
    assert penalised[0] < 0.01


def test_the_estimate_matches_how_often_rank_serves_an_arm() -> None:
    """Empirical serving frequency from 4,000 rank calls vs the estimate, within 0.03."""
    alpha = np.array([3.0, 5.0, 2.0, 8.0, 4.0])
    beta = np.array([30.0, 40.0, 10.0, 90.0, 20.0])
    rng = np.random.default_rng(3)
    served = np.zeros(5)
    for _ in range(4_000):
        top, _ = rank(alpha, beta, 2, rng)
        served[top] += 1
    estimate = inclusion_probabilities(alpha, beta, 2, rng, SAMPLES, np.arange(5))
    np.testing.assert_allclose(estimate, served / 4_000, atol=0.03)


def test_never_zero_even_for_an_arm_that_cannot_win() -> None:
    p = inclusion_probabilities([1.0, 1e6], [1e6, 1.0], 1, np.random.default_rng(4), 99, [0])
    assert p[0] == pytest.approx(1 / 100)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"k": 0}, "k must be"),
        ({"n_samples": 0}, "n_samples"),
        ({"served": [0, 5]}, "served indices"),
        ({"served": [0.5]}, "served must be"),
        ({"multipliers": [1.0, -1.0, 1.0]}, "multipliers"),
    ],
)
def test_rejects_bad_arguments(kwargs: dict[str, object], match: str) -> None:
    args: dict[str, object] = {
        "alpha": [1.0, 2.0, 3.0],
        "beta": [1.0, 1.0, 1.0],
        "k": 1,
        "rng": np.random.default_rng(0),
        "n_samples": 10,
        "served": [0],
    }
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        inclusion_probabilities(**args)  # type: ignore[arg-type]


def test_quota_propensities_match_how_often_the_quota_ranker_serves_an_arm() -> None:
    """A weak arm in a reserved pool is served whenever the pool's quota needs it.

    Arms 3 and 4 form the pool (quota 1, k 2); arm 4 is much weaker than arm 3, so it is
    served only when its draw beats arm 3's. 4,000 lists vs 20,000-draw estimate, 0.03.
    """
    from bandits import rank_with_quotas

    alpha = np.array([40.0, 35.0, 30.0, 4.0, 2.0])
    beta = np.array([60.0, 65.0, 70.0, 96.0, 98.0])
    pools, quotas = [np.array([3, 4])], [1]
    rng = np.random.default_rng(5)
    served = np.zeros(5)
    for _ in range(4_000):
        top, _ = rank_with_quotas(alpha, beta, 2, rng, pools, quotas)
        served[top] += 1
    estimate = inclusion_probabilities(
        alpha, beta, 2, rng, 20_000, np.arange(5), None, pools, quotas
    )
    np.testing.assert_allclose(estimate, served / 4_000, atol=0.03)
    assert estimate[3] + estimate[4] == pytest.approx(1.0, abs=0.01)  # the pool always has one
