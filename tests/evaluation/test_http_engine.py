"""The HTTP engine against a real `banditrec serve` process: the service learns."""

from __future__ import annotations

import numpy as np
import pytest

from bandits import clusters_for_history
from evaluation.config import SimConfig
from evaluation.engine import make_traffic
from evaluation.http_engine import fit_request, launched_service, run_http
from evaluation.simulate import simulate_http, world_of
from evaluation.world import WorldConfig

pytestmark = pytest.mark.slow


def test_service_learns_over_http(tmp_path):
    world = WorldConfig(n_users=100, n_groups=2, n_items=20, taste=3.0, prior_reads=0)
    config = SimConfig(world=world, impressions=2_000, k=5, n_clusters=2, first_refit=150,
                       window=50, seed=3)  # fmt: skip
    summary = simulate_http(config, tmp_path / "run", progress=False, say=lambda m: None)
    served = summary["policies"]["service (http)"]
    random = summary["policies"]["random"]
    assert served["impressions"] == 2_000
    assert served["refits"], "the cluster refit did not run"
    assert {refit["k"] for refit in served["refits"]} == {2}
    # Learned: above random on the second half, in expected CTR (less noisy than clicks).
    assert served["expected_ctr_last20"] > 1.3 * random["expected_ctr_last20"], (served, random)


def test_auto_lets_the_service_choose_k_at_each_refit(tmp_path):
    # Refits at lists 150, 300 and 600 of 800: 37, 75 and 150 impressions per item so far,
    # which the service's bar (3 impressions per cluster arm) alone would turn into 8, 16
    # and 32; but 100 users fill 8 clusters with 50 each at most: the users bar keeps 8.
    world = WorldConfig(n_users=100, n_groups=2, n_items=20, taste=3.0, prior_reads=0)
    config = SimConfig(world=world, impressions=4_000, k=5, n_clusters="auto", first_refit=150,
                       refit_growth=2.0, window=50, seed=3)  # fmt: skip
    assert fit_request(config) == {"seed": 3}
    world_ = world_of(config)
    with launched_service(tmp_path / "data", tmp_path / "service.log") as base:
        trace = run_http(world_, config, make_traffic(world_, config), base)
    assert [refit["step"] for refit in trace.refits] == [150, 300, 600]
    chosen = []
    for refit in trace.refits:
        # The service's global arms at the fit hold every impression and click sent so far.
        before = slice(0, refit["step"])
        shown = trace.items[before][trace.impressions[before]]
        clicked = trace.items[before][trace.clicks[before]]
        impressions = np.bincount(shown, minlength=world.n_items)
        clicks = np.bincount(clicked, minlength=world.n_items)
        chosen.append(clusters_for_history(impressions, clicks, refit["n_users"]))
        assert (
            clusters_for_history(impressions, clicks) == {150: 8, 300: 16, 600: 32}[refit["step"]]
        )
    assert [refit["k"] for refit in trace.refits] == chosen == [8, 8, 8]


def test_an_explicit_k_is_sent_as_it_is():
    assert fit_request(SimConfig(n_clusters=16, seed=4)) == {"k": 16, "seed": 4}
