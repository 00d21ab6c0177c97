"""Targets of `banditrec evaluate`: exact uniform and most-popular, Monte-Carlo Thompson."""

from __future__ import annotations

import numpy as np
import pytest

from evaluation.log_format import parse_record
from evaluation.offline import MC_SHARE, ArmState, evaluate_logs, state_from_logs
from evaluation.policies import parse_policy
from evaluation.targets import Slate, Uniform, make_target, top_k_shares

N_ITEMS, K = 30, 3
# True CTR per item; the logger's fixed list (items 0-2) holds poor items.
CTR = 0.02 + 0.25 * (np.arange(N_ITEMS) % 7) / 6
CTR[:3] = 0.02
FIXED = np.arange(3)
TOLERANCE = 0.10  # relative error allowed between an IPS estimate and the target's true CTR


def exploring_logs(n_lists: int, seed: int) -> list[dict]:
    """Lists of a logger that serves FIXED half the time and k uniform items otherwise.

    Its inclusion probabilities are exact: 0.5 + 0.5 k / n for FIXED, 0.5 k / n for the rest.
    """
    rng = np.random.default_rng(seed)
    uniform = 0.5 * K / N_ITEMS
    lines = []
    for n in range(n_lists):
        items = FIXED if rng.random() < 0.5 else rng.choice(N_ITEMS, K, replace=False)
        clicks = rng.random(K) < CTR[items]
        lines.append({
            "rec_id": f"r{n}", "user_id": f"u{n % 50}", "gen": 0, "cluster": 0, "ts": float(n),
            "k": K, "n_candidates": N_ITEMS,
            "items": [{"item_id": f"i{i:02d}", "impression": True, "click": bool(c),
                       "propensity": uniform + (0.5 if i in FIXED else 0.0)}
                      for i, c in zip(items.tolist(), clicks, strict=True)],
        })  # fmt: skip
    return lines


@pytest.fixture(scope="module")
def logs():
    lines = exploring_logs(6000, seed=4)
    # Every item must be in the state, as the candidates stand for the whole catalog.
    assert len({i["item_id"] for line in lines for i in line["items"]}) == N_ITEMS
    return lines, state_from_logs([parse_record(line, n) for n, line in enumerate(lines, 1)])


def test_uniform_inclusion_is_k_over_the_logged_candidates():
    slate = Slate(0, np.arange(4), 3, 12, np.zeros(4))
    assert Uniform().inclusion(slate, np.random.default_rng(0), 1).tolist() == [[0.25] * 4]


def test_top_k_shares_split_the_last_slots_among_ties():
    assert top_k_shares(np.array([0.5, 0.5, 0.5, 0.1]), 2).tolist() == [2 / 3, 2 / 3, 2 / 3, 0]
    assert top_k_shares(np.array([0.9, 0.1]), 5).tolist() == [1.0, 1.0]
    assert top_k_shares(np.array([0.2, 0.9, 0.4]), 1).tolist() == [0.0, 1.0, 0.0]


def test_exact_targets_recover_their_true_ctr(logs):
    lines, state = logs
    rng = np.random.default_rng(0)
    random_ips = evaluate_logs(lines, parse_policy("random"), state, rng, n_boot=50)
    assert random_ips["estimates"]["ips"]["value"] == pytest.approx(CTR.mean(), rel=TOLERANCE)
    popular = make_target(parse_policy("most-popular"), state.impressions, state.clicks)
    chosen = popular.inclusion(Slate(1, np.arange(N_ITEMS), K, N_ITEMS, np.zeros(N_ITEMS)),
                               rng, 1)[0]  # fmt: skip
    assert sorted(chosen.tolist()) == [0.0] * (N_ITEMS - K) + [1.0] * K
    true_ctr = float(CTR @ chosen / K)
    # The target serves items the logger's fixed list never holds: a real test of the weights.
    assert true_ctr > 2 * CTR.mean() and not chosen[FIXED].any()
    result = evaluate_logs(lines, parse_policy("most-popular"), state, rng, n_boot=50)
    for name in ("ips", "dr"):
        assert result["estimates"][name]["value"] == pytest.approx(true_ctr, rel=TOLERANCE)
    assert result["target_propensities"] == {
        "kind": "exact", "draws_per_list": 0, "batches": 1, "mc_within_bar": True,
    }  # fmt: skip


# Thompson sampling from flat posteriors serves uniformly at random: its exact propensities
# are those of the random target, so the Monte-Carlo ones can be checked against them.
FLAT_TS = parse_policy("global-ts:prior=1/1")


@pytest.fixture(scope="module")
def flat_state(logs):
    _, state = logs
    return ArmState(state.item_ids, np.zeros((1, N_ITEMS)), np.zeros((1, N_ITEMS)), gen=None)


def test_thompson_draws_grow_until_their_error_is_below_the_bootstraps(logs, flat_state):
    lines, _ = logs
    capped = evaluate_logs(lines, FLAT_TS, flat_state, np.random.default_rng(1), n_draws=10,
                           max_draws=10, n_boot=200)  # fmt: skip
    # 10 draws per list are too few here ...
    assert not capped["target_propensities"]["mc_within_bar"]
    grown = evaluate_logs(lines, FLAT_TS, flat_state, np.random.default_rng(1), n_draws=10,
                          n_boot=200)  # fmt: skip
    # ... so evaluate draws more, until every estimator's MC error is within the bar,
    assert grown["target_propensities"]["draws_per_list"] > 10
    assert grown["target_propensities"]["mc_within_bar"]
    exact = evaluate_logs(lines, parse_policy("random"), flat_state, np.random.default_rng(1),
                          n_boot=200)["estimates"]  # fmt: skip
    for name, est in grown["estimates"].items():
        assert 0 < est["mc_error"] <= MC_SHARE * est["se"], name
        # ... and the estimate lands within its MC error of the exact one.
        assert abs(est["value"] - exact[name]["value"]) <= 3 * est["mc_error"], name


def test_at_the_cap_the_interval_is_widened_by_the_monte_carlo_error(logs, flat_state):
    lines, _ = logs
    result = evaluate_logs(lines, FLAT_TS, flat_state, np.random.default_rng(1), n_draws=10,
                           max_draws=10, n_boot=200)  # fmt: skip
    for name, est in result["estimates"].items():
        assert est["mc_error"] > MC_SHARE * est["se"], name
        half_width = min(est["value"] - est["low"], est["high"] - est["value"])
        assert half_width >= 1.959 * est["mc_error"], name


def test_the_reported_monte_carlo_error_matches_the_spread_over_seeds(logs, flat_state):
    lines, _ = logs
    values, errors = [], []
    for seed in range(20):
        rng = np.random.default_rng(100 + seed)
        result = evaluate_logs(lines[:2000], FLAT_TS, flat_state, rng,
                               n_draws=10, max_draws=10, n_boot=2)  # fmt: skip
        values.append([est["value"] for est in result["estimates"].values()])
        errors.append([est["mc_error"] for est in result["estimates"].values()])
    spread = np.std(values, axis=0, ddof=1)
    reported = np.mean(errors, axis=0)
    # 20 seeds and 10 batches: each side is good to ~20%; allow a factor of 1.6.
    ratio = spread / reported
    assert np.all(ratio > 1 / 1.6) and np.all(ratio < 1.6), ratio
