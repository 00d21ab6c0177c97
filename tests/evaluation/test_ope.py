"""Off-policy evaluation in the simulator: SNIPS from one policy's logs predicts another's CTR."""

from __future__ import annotations

import dataclasses
import io
import json
import math

import numpy as np
import pytest

from bandits import Prior
from evaluation.arms import Arms
from evaluation.config import SimConfig
from evaluation.engine import make_traffic, run_policy
from evaluation.offline import ArmState, evaluate_logs
from evaluation.ope import estimate_ctr
from evaluation.policies import parse_policy
from evaluation.world import WorldConfig, build_world

# No fatigue: a click then depends on (user, item) only, as OPE assumes.
WORLD = WorldConfig(n_users=300, n_groups=3, n_items=30, fatigue=1.0, prior_reads=0)
CONFIG = SimConfig(world=WORLD, impressions=15_000, k=3, true_clusters=True, seed=0)
# One seed's SNIPS error ranged -33%..+26% over seeds 0-11 (15 000 impressions, a logger far
# from the target), so the claims are about ten seeds: the mean absolute error, the bias,
# the interval's coverage, and the gap to the same logs with wrong propensities, whose mean
# absolute error was 0.39 against 0.11.
SEEDS = range(10)
MEAN_ABS_TOLERANCE = 0.15  # mean |SNIPS / on-policy CTR - 1| over the seeds
BIAS_TOLERANCE = 0.08  # |mean (SNIPS / on-policy CTR - 1)| over the seeds
MIN_COVERED = 8  # seeds whose bootstrap interval holds the on-policy CTR


def _experiment(seed: int):
    """A trained per-cluster state; its frozen CTR on-policy; logs of an exploratory logger."""
    config = dataclasses.replace(CONFIG, seed=seed)
    world = build_world(WORLD, np.random.default_rng([seed, 0]))
    traffic = make_traffic(world, config)
    target = parse_policy("cluster-ts")
    trained = run_policy(world, config, target, traffic).arms
    assert trained is not None
    on_policy = run_policy(world, config, target, traffic, arms=trained, learn=False)
    true_ctr = float(on_policy.expected.sum() / on_policy.impressions.sum())
    # The logger: global TS on the same data seen through a 10x wider posterior (it explores).
    logger = Arms(0, world.n_items, Prior("flat", 1.0, 1.0))
    logger.impressions, logger.clicks = trained.impressions[-1:] / 10, trained.clicks[-1:] / 10
    logger.alpha, logger.beta = 1.0 + logger.clicks, 1.0 + logger.impressions - logger.clicks
    sink = io.StringIO()
    run_policy(world, config, parse_policy("global-ts"), traffic, arms=logger, learn=False,
               log_sink=sink)  # fmt: skip
    lines = [json.loads(line) for line in sink.getvalue().splitlines()]
    state = ArmState([f"i{i}" for i in range(world.n_items)], trained.impressions, trained.clicks,
                     gen=0)  # fmt: skip
    return lines, state, true_ctr


@pytest.fixture(scope="module")
def experiments():
    """One experiment per seed."""
    return [_experiment(seed) for seed in SEEDS]


def _snips(lines, state):
    result = evaluate_logs(lines, parse_policy("cluster-ts"), state, np.random.default_rng(0),
                           n_draws=100, n_boot=200)  # fmt: skip
    return result["estimates"]["snips"]


def _uniform(lines):
    """The same logs, pretending the logger chose uniformly: k / n_items for every item."""
    return [
        {**line, "items": [{**i, "propensity": line["k"] / line["n_candidates"]}
                           for i in line["items"]]}
        for line in lines
    ]  # fmt: skip


def test_snips_of_a_target_lands_within_tolerance_of_its_on_policy_ctr(experiments):
    errors, covered = [], 0
    for lines, state, true_ctr in experiments:
        logged_ctr = np.mean([i["click"] for line in lines for i in line["items"]])
        # The target is clearly better than the logger, so agreeing is not a coincidence.
        assert true_ctr > 1.3 * logged_ctr
        snips = _snips(lines, state)
        assert snips["low"] <= snips["value"] <= snips["high"]
        errors.append(snips["value"] / true_ctr - 1)
        covered += snips["low"] <= true_ctr <= snips["high"]
    assert np.mean(np.abs(errors)) <= MEAN_ABS_TOLERANCE, errors
    assert abs(np.mean(errors)) <= BIAS_TOLERANCE, errors
    assert covered >= MIN_COVERED, (covered, errors)


def test_mis_specified_propensities_break_the_estimate(experiments):
    right, wrong = [], []
    for lines, state, true_ctr in experiments:
        right.append(abs(_snips(lines, state)["value"] / true_ctr - 1))
        wrong.append(abs(_snips(_uniform(lines), state)["value"] / true_ctr - 1))
    assert np.mean(wrong) > MEAN_ABS_TOLERANCE, wrong
    assert np.mean(wrong) > 2 * np.mean(right), (wrong, right)


def test_estimators_on_a_hand_computed_log():
    # Two lists; weights target/logged = 1, 0.5 | 2; rewards 1, 0 | 0; reward model 0.2.
    est = estimate_ctr([0, 0, 1], [1, 0, 0], [0.5, 0.5, 0.25], [0.5, 0.25, 0.5],
                       [0.2, 0.2, 0.2], [0.4, 0.4], [2, 1], np.random.default_rng(0),
                       n_boot=50)  # fmt: skip
    assert est["ips"].value == pytest.approx(1 / 3)
    assert est["snips"].value == pytest.approx(1 / 3.5)
    assert est["dr"].value == pytest.approx((0.8 + 0.8 - 0.1 - 0.4) / 3)
    assert math.isfinite(est["snips"].low) and est["snips"].low <= est["snips"].high


def test_zero_logged_propensity_is_refused():
    with pytest.raises(ValueError, match="logged_propensity"):
        estimate_ctr([0], [1], [0.0], [0.5], [0.1], [0.1], [1], np.random.default_rng(0))


# Four items whose shrunk CTRs (clicks + 20 * 0.15) / (20 + 20) are a 0.175, b 0.075,
# c 0.125, d 0.225: the reward model of the hand-computed DR values below.
HAND_STATE = ArmState(["a", "b", "c", "d"], np.array([[20.0, 20, 20, 20]]),
                      np.array([[4.0, 0, 2, 6]]), gen=None)  # fmt: skip


def _line(number, k, n_candidates, items):
    return {"rec_id": f"r{number}", "user_id": f"u{number}", "gen": 0, "cluster": None,
            "ts": float(number), "k": k, "n_candidates": n_candidates,
            "items": [{"item_id": item, "propensity": p, "impression": True, "click": click}
                      for item, p, click in items]}  # fmt: skip


def test_estimators_on_full_and_partial_lists_by_hand():
    lines = [
        # Full: 2 of 4 candidates; the uniform target includes each with 2/4.
        _line(0, 2, 4, [("a", 0.5, True), ("b", 0.8, False)]),
        # Partial, every candidate served: any target serves both.
        _line(1, 5, 2, [("c", 1.0, False), ("d", 1.0, True)]),
        # Partial, 2 of 6 candidates served (e.g. quotas): uniform 5/6 over unlogged candidates.
        _line(2, 5, 6, [("a", 0.9, False), ("c", 0.9, False)]),
    ]
    result = evaluate_logs(lines, parse_policy("random"), HAND_STATE, np.random.default_rng(0),
                           n_boot=20)  # fmt: skip
    w = (5 / 6) / 0.9
    # The target's expected clicks per slot times the impressions: the catalog's mean reward
    # (0.15) for lists 0 and 2, the mean of c and d for list 1.
    direct = 2 * 0.15 + 2 * (0.125 + 0.225) / 2 + 2 * 0.15
    residual = (1 - 0.175) + 0.625 * (0 - 0.075) + (0 - 0.125) + (1 - 0.225) - w * 0.3
    estimates = result["estimates"]
    assert estimates["ips"]["value"] == pytest.approx(2 / 6, abs=1e-15)
    assert estimates["snips"]["value"] == pytest.approx(2 / (1 + 0.625 + 2 + 2 * w), abs=1e-15)
    assert estimates["dr"]["value"] == pytest.approx((direct + residual) / 6, abs=1e-15)
    assert result["candidates"] == {"served_all": 1, "catalog": 2}
    assert result["target_propensities"]["kind"] == "exact"


@pytest.mark.parametrize("policy", ["global-ts", "random", "most-popular"])
def test_dr_counts_only_the_slots_a_short_list_has(policy):
    # Issue 11: k = 5, 2 items served, reward model 0.1 everywhere, logged CTR 0.1.
    state = ArmState(["a", "b", "c", "d"], np.full((1, 4), 20.0), np.full((1, 4), 2.0), gen=None)
    lines = [_line(n, 5, 2, [("a", 1.0, n == 0), ("b", 1.0, n == 1)]) for n in range(10)]
    result = evaluate_logs(lines, parse_policy(policy), state, np.random.default_rng(0),
                           n_boot=20)  # fmt: skip
    for name in ("ips", "snips", "dr"):
        assert result["estimates"][name]["value"] == pytest.approx(0.1, abs=1e-15), name


def test_the_bootstrap_in_chunks_draws_the_same_resamples(monkeypatch):
    rng = np.random.default_rng(7)
    n = 500
    args = (np.arange(n), rng.random(n) < 0.2, np.full(n, 0.5), rng.random(n), np.full(n, 0.1),
            np.full(n, 0.1), np.ones(n))  # fmt: skip
    whole = estimate_ctr(*args, np.random.default_rng(0), n_boot=40)
    monkeypatch.setattr("evaluation.ope.BOOT_CHUNK", 3 * n)  # 3 resamples per chunk
    assert estimate_ctr(*args, np.random.default_rng(0), n_boot=40) == whole
