"""Statistical claims of the talk, on small seeded worlds: clusters and seen decay pay off."""

from __future__ import annotations

import numpy as np
import pytest

from evaluation.batched import run_batched
from evaluation.config import SimConfig
from evaluation.engine import Trace, make_traffic, run_policy
from evaluation.policies import Policy, Request, parse_policy
from evaluation.world import WorldConfig, build_world


def _late_ctr(config: SimConfig, name: str) -> float:
    """Expected CTR of a policy over the second half of the run."""
    world = build_world(config.world, np.random.default_rng([config.seed, 0]))
    trace: Trace = run_policy(world, config, parse_policy(name), make_traffic(world, config))
    half = trace.items.shape[0] // 2
    return float(trace.expected[half:].sum() / trace.impressions[half:].sum())


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_per_cluster_ts_beats_global_ts_when_tastes_are_opposed(seed):
    # Two groups with strong, different tastes: one global ranking must serve both badly.
    world = WorldConfig(
        n_users=300, n_groups=2, n_items=40, taste=4.0, base_logit=-5.0, quality_sd=0.3,
        fatigue=1.0,
    )  # fmt: skip
    config = SimConfig(world=world, impressions=20_000, n_clusters=2, first_refit=300, seed=seed)
    clustered = _late_ctr(config, "cluster-ts")
    pooled = _late_ctr(config, "global-ts")
    # Tolerance: per-cluster must win by >= 20% relative in every seed (it wins by 35-60%).
    assert clustered > 1.2 * pooled, (clustered, pooled)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_seen_decay_beats_no_decay_when_users_tire(seed):
    # Strong fatigue that never fades: showing an ignored item again is mostly wasted.
    world = WorldConfig(
        n_users=500, n_groups=2, n_items=40, fatigue=0.2, fatigue_half_life=1e9,
        base_logit=-3.5, taste=2.5,
    )  # fmt: skip
    config = SimConfig(world=world, impressions=20_000, true_clusters=True, seed=seed)
    decayed = _late_ctr(config, "cluster-ts-decay:gamma=0.3")
    plain = _late_ctr(config, "cluster-ts")
    # Tolerance: decay must win by >= 15% relative in every seed (it wins by 25-45%).
    assert decayed > 1.15 * plain, (decayed, plain)


def test_runs_are_reproducible():
    world = WorldConfig(n_users=100, n_groups=2, n_items=20)
    config = SimConfig(world=world, impressions=2_000, first_refit=100, seed=5)
    assert _late_ctr(config, "cluster-ts-decay") == _late_ctr(config, "cluster-ts-decay")


def _late_ctr_batched(world: WorldConfig, seed: int, name: str) -> float:
    """Expected CTR over the second half of a 6 000-list run on the true clusters."""
    config = SimConfig(world=world, impressions=30_000, true_clusters=True, seed=seed)
    built = build_world(world, np.random.default_rng([seed, 0]))
    trace = run_batched(built, config, parse_policy(name), make_traffic(built, config))
    half = trace.items.shape[0] // 2
    return float(trace.expected[half:].sum() / trace.impressions[half:].sum())


# Both decays start from the service's assumption, gamma 0.7 and no recovery within the run
# (half_life=inf); the learned one learns from its own impressions what the world does.
LEARNED = "cluster-ts-learned:prior=catalog/10:half_life=inf"
FIXED = "cluster-ts-decay:half_life=inf"


@pytest.mark.slow  # ~8 s: 12 runs of 6 000 lists
def test_learned_decay_beats_fixed_where_users_recover_fast_and_ties_where_they_do_not():
    # Fast: x0.3 per ignored impression, gone within a quarter of a visit (300 users).
    fast = WorldConfig(n_users=300, n_groups=3, n_items=60, fatigue=0.3, fatigue_half_life=75.0)
    # Slow: x0.7 per ignored impression for good, as the fixed decay assumes.
    slow = WorldConfig(n_users=300, n_groups=3, n_items=60, fatigue=0.7, fatigue_half_life=1e9)
    fast_ratios = [_late_ctr_batched(fast, s, LEARNED) / _late_ctr_batched(fast, s, FIXED)
                   for s in (1, 2, 3)]  # fmt: skip
    slow_ratios = [_late_ctr_batched(slow, s, LEARNED) / _late_ctr_batched(slow, s, FIXED)
                   for s in (1, 2, 3)]  # fmt: skip
    # Tolerances: fast, learned wins by >= 10% in every seed (observed 12-32% as the fixed
    # decay times a correction with a fitted strength; 20-43% as the curve alone); slow, a
    # tie: the seeds' mean within 4% and no seed more than 6% behind (observed 0.968-0.999;
    # the curve alone 0.977-1.037).
    assert min(fast_ratios) >= 1.10, fast_ratios
    assert abs(np.mean(slow_ratios) - 1.0) <= 0.04, slow_ratios
    assert min(slow_ratios) >= 0.94, slow_ratios


def test_a_fitted_strength_starts_at_its_cap_where_arms_are_too_thin_to_fit():
    # 4 clusters x 800 items, CTRs ~1-3%, 2 000 lists: the cluster arms end with ~4
    # impressions each, under the 5 the strength's fit waits for. The default start (the
    # catalog showed no impressions before the true clusters: the cap, 300) must beat
    # starting at prior_strength (10) by >= 25% in every seed (observed 1.48-1.71x); had
    # the start been prior_strength, both would serve the same priors and the ratio would be 1.
    thin = WorldConfig(n_users=400, n_groups=4, n_items=800, base_logit=-5.5, prior_reads=3,
                       embedding_noise=0.9)  # fmt: skip
    ratios = []
    for seed in (1, 2, 3):
        config = SimConfig(world=thin, impressions=10_000, true_clusters=True, seed=seed)
        built = build_world(thin, np.random.default_rng([seed, 0]))
        traffic = make_traffic(built, config)
        late = []
        for name in ("cluster-ts-learned", "cluster-ts-learned:strength_start=prior"):
            trace = run_batched(built, config, parse_policy(name), traffic)
            assert trace.arms.impressions[:-1].mean() < 5.0
            half = trace.items.shape[0] // 2
            late.append(trace.expected[half:].sum() / trace.impressions[half:].sum())
        ratios.append(float(late[0] / late[1]))
    assert min(ratios) >= 1.25, ratios


def test_the_learned_decay_corrects_the_fixed_decays_exact_faded_count() -> None:
    # Items 1 and 2 were both ignored twice, the last time just now, so they share a bucket;
    # item 2's first ignore was long ago, so its faded count is lower. Without evidence the
    # correction is exactly 1: "learned" serves the fixed decay's own multipliers, which tell
    # the two apart; the curve alone serves one value per bucket.
    faded, plain, ages = np.array([0.0, 2.0, 1.2]), np.array([0.0, 2.0, 2.0]), np.zeros(3)
    request = Request(0, (0,), (1.0,), faded, plain, ages, np.zeros(3), None)
    policies, first = {}, {}
    for decay in ("learned", "curve"):
        spec = parse_policy(f"cluster-ts-learned:prior=catalog/10:personal=0:decay={decay}")
        policies[decay] = Policy(spec, 3, 2, np.random.default_rng(0), visit_gap=100.0)
        first[decay] = policies[decay].ts_inputs(request)[2]
    np.testing.assert_allclose(first["learned"], 0.7**faded)
    curve = first["curve"]
    assert curve is not None and curve[0] == 1.0 and curve[1] == curve[2] < 1.0
    # Evidence: both tired items shown 300 times without a click. A correction counts what
    # the fixed decay predicted, the arm's mean x 0.7 ** faded (the arms learn alike in
    # both policies: no clicks), and falls below 1.
    items, shown, clicked = np.array([1, 2]), np.ones(2, bool), np.zeros(2, bool)
    for policy in policies.values():
        for _ in range(300):
            policy.rank(request)
            policy.learn(request, items, shown, clicked)
    learned, alone = (policies[d].fatigue for d in ("learned", "curve"))
    assert learned is not None and alone is not None
    tired = int(learned.buckets.index([2.0], [0.0])[0])
    ratio = learned.expected_[tired] / alone.expected_[tired]
    assert ratio == pytest.approx(np.mean(0.7 ** faded[1:]), rel=1e-9)
    after = policies["learned"].ts_inputs(request)[2]
    # Observed: x0.56 of the fixed decay (the prior, a correction of 1, still counts).
    assert after is not None and np.all(after[1:] < 0.8 * first["learned"][1:])
