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


# -- skipping arms that cannot reach the top k ---------------------------------------------


def mature_arms(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Arms with 0-2,000 impressions and CTRs near 5% (as bench.ranker), 20 seen and decayed."""
    rng = np.random.default_rng(seed)
    impressions = rng.integers(0, 2_000, n).astype(np.float64)
    clicks = rng.binomial(impressions.astype(np.int64), rng.beta(2.0, 38.0, n))
    multipliers = np.ones(n)
    multipliers[rng.choice(n, 20, replace=False)] = 0.5 ** rng.uniform(0.5, 4.0, 20)
    return 1.0 + clicks, 1.0 + impressions - clicks, multipliers


def claims_tail_below(
    alpha: np.ndarray, beta: np.ndarray, x: np.ndarray, delta: float
) -> np.ndarray:
    """Whether _surely_below claims P(Beta(alpha_i, beta_i) > x_i) <= delta, arm by arm."""
    from bandits.propensity import _surely_below

    return np.array(
        [_surely_below(alpha[i : i + 1], beta[i : i + 1], None, float(x[i]), -np.log(delta))[0]
         for i in range(alpha.size)]
    )  # fmt: skip


@pytest.mark.parametrize("delta", [1e-2, 1e-4, 1e-7])
def test_the_tail_bound_never_claims_less_than_the_exact_tail(delta: float) -> None:
    """_surely_below(x) says P(X > x) <= delta; the exact (1 - delta)-quantile u has P = delta.

    So just below u (x = u - 1e-6 u, exact quantiles are good to ~1e-10) it must say no,
    for shapes from 0.3 to 50,000; and, to be of use, at the exact (1 - delta / 1000)
    quantile it must say yes once a + b >= 20 (Chernoff is loose by a factor ~ sqrt(a + b)).
    """
    from bandits import beta_interval

    grid = np.meshgrid([0.3, 1.0, 2.5, 30.0, 400.0, 5e4], [0.7, 5.0, 60.0, 5e4])
    alpha, beta = grid[0].ravel(), grid[1].ravel()
    upper = beta_interval(alpha, beta, level=1.0 - 2.0 * delta)[1]
    assert not claims_tail_below(alpha, beta, upper * (1.0 - 1e-6), delta).any()
    far = beta_interval(alpha, beta, level=1.0 - 2.0 * delta / 1000.0)[1]
    assert claims_tail_below(alpha, beta, far, delta)[alpha + beta >= 20.0].all()


def test_the_tail_bound_scales_the_bar_by_each_multiplier() -> None:
    """m * X > bar is X > bar / m: a zero multiplier never clears a positive bar."""
    from bandits.propensity import _surely_below

    alpha, beta = np.array([50.0, 50.0, 50.0]), np.array([950.0, 950.0, 950.0])
    got = _surely_below(alpha, beta, np.array([1.0, 4.0, 0.0]), 0.1, np.log(1e6))
    assert got.tolist() == [True, False, True]  # mean 0.05: 0.1 is far; 0.1 / 4 is not


def test_skipping_changes_a_draw_at_most_epsilon_of_the_time() -> None:
    """Coupled check of the bound, with an epsilon of 0.05 so that it skips a lot.

    The skipped arms are drawn afterwards from the same Generator: independent of the
    draws that decided what to skip, so together they are one full Thompson draw per row.
    A row can change only if a skipped arm would have entered the top 10; the bound says
    that happens in at most 5% of rows (Chernoff and the union bound make it far rarer:
    0 of 2,000 observed, also with an epsilon of 50). Tolerance: 5% + 4.5 binomial
    standard errors. test_the_tail_bound_* check the bound itself against exact quantiles.
    """
    from bandits.propensity import _in_top_k, _pruned_draws

    alpha, beta, multipliers = mature_arms(2_000, seed=21)
    served = np.sort(rank(alpha, beta, 10, np.random.default_rng(22), multipliers)[0])
    rng, rows = np.random.default_rng(23), 2_000
    draws, drawn, columns = _pruned_draws(alpha, beta, 10, rng, rows, multipliers, served, 0.05)
    skipped = np.setdiff1d(np.arange(alpha.size), drawn)
    assert skipped.size > 1_500
    later = (
        rng.beta(alpha[skipped], beta[skipped], size=(rows, skipped.size)) * multipliers[skipped]
    )
    full = np.concatenate([draws, later], axis=1)
    everyone = _in_top_k(full, 10, np.concatenate([drawn, skipped]), columns)
    kept_only = _in_top_k(draws, 10, drawn, columns)
    changed = np.mean((everyone != kept_only).any(axis=1))
    assert changed <= 0.05 + 4.5 * np.sqrt(0.05 * 0.95 / rows)


def test_skipping_leaves_the_estimate_as_drawing_every_arm_gives() -> None:
    """10,000 draws with PRUNE_EPSILON (1e-4) vs none skipped, different seeds.

    Each estimate has a standard error <= sqrt(0.25 / 10,001) = 0.005, their difference
    <= 0.0071; tolerance 0.035 (about 5 of those) plus the 1e-4 the bound allows. The run
    with skipping must actually skip (it draws under a third of the 600 arms).
    """
    from bandits.propensity import PRUNE_EPSILON, _pruned_draws, _served_hits

    alpha, beta, multipliers = mature_arms(600, seed=31)
    served = np.sort(rank(alpha, beta, 10, np.random.default_rng(32), multipliers)[0])
    served = np.concatenate([served, [0, 1, 2]])  # and three arms the policy rarely picks
    served = np.unique(served)
    args = (alpha, beta, 10)
    skipping = _served_hits(*args, np.random.default_rng(33), 10_000, multipliers, served)
    every = _served_hits(*args, np.random.default_rng(34), 10_000, multipliers, served, 0.0)
    np.testing.assert_allclose(skipping / 10_000, every / 10_000, atol=0.035 + PRUNE_EPSILON)
    _, drawn, _ = _pruned_draws(*args, np.random.default_rng(35), 8, multipliers, served, 1e-4)
    assert drawn.size < 200
    _, drawn, _ = _pruned_draws(*args, np.random.default_rng(35), 8, multipliers, served, 0.0)
    assert drawn.size == 600


def test_wide_posteriors_are_drawn_whole() -> None:
    """Every arm at a strength-10 prior: no arm can be ruled out, so all are drawn at once."""
    from bandits.propensity import _pruned_draws

    ctr = np.random.default_rng(41).beta(2.0, 11.0, 1_000)
    served = np.arange(10)
    _, drawn, columns = _pruned_draws(
        10.0 * ctr, 10.0 * (1.0 - ctr), 10, np.random.default_rng(42), 4, None, served, 1e-4
    )
    np.testing.assert_array_equal(drawn, np.arange(1_000))
    np.testing.assert_array_equal(columns, served)


def test_quota_estimate_with_skipping_matches_drawing_every_arm() -> None:
    """Pools keep their members; 4,000 quota-filled lists each way, tolerance 0.05 (~4.5 SE)."""
    from bandits.propensity import _quota_hits

    alpha, beta, multipliers = mature_arms(600, seed=51)
    pools, quotas = [np.arange(0, 600, 10)], [2]
    served = np.unique(rank(alpha, beta, 10, np.random.default_rng(52), multipliers)[0])
    served = np.union1d(served, [0, 10, 20])
    args = (alpha, beta, 10)
    skipping = _quota_hits(
        *args, np.random.default_rng(53), 4_000, multipliers, pools, quotas, served
    )
    every = _quota_hits(
        *args, np.random.default_rng(54), 4_000, multipliers, pools, quotas, served, 0.0
    )
    np.testing.assert_allclose(skipping / 4_000, every / 4_000, atol=0.05)


def test_ties_at_the_kth_score_go_to_the_lower_index_as_in_rank() -> None:
    """Zero multipliers tie many arms at score 0; rank serves the lowest-indexed of them.

    500 arms, 5 with multiplier 1 and 495 with 0, k = 8: every draw's list is arms 0-4 and
    then 5, 6, 7 (the lowest indices at score 0), so their estimate is 1 and arm 8's is
    1 / (n_samples + 1).
    """
    multipliers = np.zeros(500)
    multipliers[:5] = 1.0
    alpha, beta = np.full(500, 5.0), np.full(500, 5.0)
    top, _ = rank(alpha, beta, 8, np.random.default_rng(61), multipliers)
    assert sorted(top.tolist()) == [0, 1, 2, 3, 4, 5, 6, 7]
    p = inclusion_probabilities(
        alpha, beta, 8, np.random.default_rng(62), 99, [0, 5, 7, 8, 499], multipliers
    )
    np.testing.assert_allclose(p, [1.0, 1.0, 1.0, 0.01, 0.01])


def test_a_served_arm_listed_twice_gets_one_estimate() -> None:
    alpha, beta, multipliers = mature_arms(300, seed=71)
    p = inclusion_probabilities(
        alpha, beta, 5, np.random.default_rng(72), 200, [7, 3, 7], multipliers
    )
    assert p[0] == p[2]
    assert 0.0 < p.min() <= p.max() <= 1.0


def test_shares_put_exactly_k_arms_in_each_draw() -> None:
    from bandits import inclusion_shares

    alpha, beta, multipliers = mature_arms(300, seed=81)
    shares = inclusion_shares(alpha, beta, 7, np.random.default_rng(82), 500, multipliers)
    assert shares.sum() == pytest.approx(7.0)


def test_checks_name_a_bad_value_whether_given_arrays_or_lists() -> None:
    args: dict[str, object] = {"k": 1, "n_samples": 10, "served": [0]}
    for alpha in ([1.0, np.nan, 2.0], np.array([1.0, np.nan, 2.0])):
        with pytest.raises(ValueError, match=r"alpha\[1\] = nan"):
            inclusion_probabilities(alpha, [1.0] * 3, rng=np.random.default_rng(0), **args)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"multipliers\[2\] = inf"):
        inclusion_probabilities(
            np.ones(3),
            np.ones(3),
            rng=np.random.default_rng(0),
            multipliers=np.array([1.0, 0.0, np.inf]),
            **args,  # type: ignore[arg-type]
        )
    listed = inclusion_probabilities([1.0, 2.0], [2.0, 1.0], 1, np.random.default_rng(5), 50, [1])
    arrays = inclusion_probabilities(
        np.array([1.0, 2.0]), np.array([2.0, 1.0]), 1, np.random.default_rng(5), 50, np.array([1])
    )
    np.testing.assert_array_equal(listed, arrays)


def test_when_every_other_arm_is_ruled_out_only_the_first_round_is_drawn() -> None:
    """One arm near 0.5 among 199 near 1e-5: after the first round none of the rest is drawn."""
    from bandits.propensity import _pruned_draws

    alpha = np.concatenate([[1e5], np.ones(199)])
    beta = np.concatenate([[1e5], np.full(199, 1e5)])
    _, drawn, _ = _pruned_draws(
        alpha, beta, 1, np.random.default_rng(91), 32, None, np.array([0]), 1e-4
    )
    assert drawn.size == 1 + 8  # the served arm and the 8 (8 k) most hopeful others
    p = inclusion_probabilities(alpha, beta, 1, np.random.default_rng(92), 32, [0, 5])
    np.testing.assert_allclose(p, [1.0, 1 / 33])


def test_nothing_served_gives_nothing() -> None:
    p = inclusion_probabilities(
        np.ones(3), np.ones(3), 1, np.random.default_rng(0), 10, np.array([], dtype=np.intp)
    )
    assert p.shape == (0,)
