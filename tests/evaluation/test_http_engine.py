"""The HTTP engine against a real `banditrec serve` process: the service learns."""

from __future__ import annotations

import pytest

from evaluation.config import SimConfig
from evaluation.simulate import simulate_http
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
    # Learned: above random on the second half, in expected CTR (less noisy than clicks).
    assert served["expected_ctr_last20"] > 1.3 * random["expected_ctr_last20"], (served, random)
