"""World families, the batched engine, soft membership in the simulator, and the experiments."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from bandits import Prior
from cli import main
from evaluation.arms import Arms
from evaluation.batched import batch_ends, run_batched
from evaluation.config import SimConfig
from evaluation.engine import make_traffic, run_policy
from evaluation.experiments import SETTINGS, Plan, policy_names, run_plan
from evaluation.families import FAMILIES, family
from evaluation.policies import parse_policy
from evaluation.tastes import Tastes
from evaluation.world import WorldConfig, build_world


def test_batches_hold_each_user_once_and_stop_at_cuts() -> None:
    users = np.random.default_rng(0).integers(30, size=2000)
    ends = batch_ends(users, 20, {500, 1234})
    starts = [0, *ends[:-1]]
    assert ends[-1] == 2000
    for start, end in zip(starts, ends, strict=True):
        assert 1 <= end - start <= 20
        assert len(set(users[start:end].tolist())) == end - start
    assert {500, 1234} <= set(starts)


def test_the_batched_world_is_the_sequential_world() -> None:
    # The oracle does not learn: in both engines it must serve the same lists and face the
    # same fatigue, drift and clicks, to the last bit.
    world = WorldConfig(n_users=40, n_groups=3, n_items=25, fatigue=0.5,
                        fatigue_half_life=300.0, drift_at=0.5)  # fmt: skip
    config = SimConfig(world=world, impressions=3000, k=3, seed=4)
    built = build_world(world, np.random.default_rng([config.seed, 0]))
    traffic = make_traffic(built, config)
    sequential = run_policy(built, config, parse_policy("oracle"), traffic)
    batched = run_batched(built, config, parse_policy("oracle"), traffic, batch=16)
    np.testing.assert_array_equal(batched.items, sequential.items)
    np.testing.assert_array_equal(batched.clicks, sequential.clicks)
    np.testing.assert_allclose(batched.expected, sequential.expected, rtol=1e-12)
    np.testing.assert_allclose(batched.best, sequential.best, rtol=1e-12)


@pytest.mark.parametrize("engine", ["sequential", "batched"])
def test_k_auto_picks_each_fits_k_from_the_history_so_far(engine: str) -> None:
    # 25 items, lists of 3, refits at lists 100 and 400: 12 then 48 impressions per item
    # (about: clicks count too). 12 covers no choice at 3 per cluster arm (the fewest, 8);
    # 48 covers 16 clusters (3 each) but not 32. 800 users, all with a history, fill 16
    # clusters with the 50 each a fit needs (bandits.MIN_USERS_PER_CLUSTER), not 32.
    world = WorldConfig(n_users=800, n_groups=3, n_items=25)
    config = SimConfig(world=world, impressions=3000, k=3, seed=4, first_refit=100)
    built = build_world(world, np.random.default_rng([config.seed, 0]))
    traffic = make_traffic(built, config)
    spec = parse_policy("cluster-ts-learned:k=auto")
    assert spec.auto_k and not parse_policy("cluster-ts-learned:k=16").auto_k
    if engine == "batched":
        trace = run_batched(built, config, spec, traffic, batch=1)
    else:
        trace = run_policy(built, config, spec, traffic)
    assert [(info["step"], info["k"]) for info in trace.refits] == [(100, 8), (400, 16)]


def test_batched_engine_refuses_policies_it_cannot_batch() -> None:
    world = WorldConfig(n_users=20, n_groups=2, n_items=10)
    config = SimConfig(world=world, impressions=100, k=2)
    built = build_world(world, np.random.default_rng(0))
    with pytest.raises(ValueError, match="batched engine"):
        run_batched(built, config, parse_policy("epsilon-greedy"), make_traffic(built, config))


def test_soft_membership_splits_a_list_between_clusters_as_the_service_does() -> None:
    arms = Arms(2, 4, Prior("flat", 1.0, 1.0))
    items = np.array([0, 3])
    arms.update((1, 0), (0.75, 0.25), items, np.array([True, True]), np.array([True, False]))
    assert arms.impressions.tolist() == [[0.25, 0, 0, 0.25], [0.75, 0, 0, 0.75], [1, 0, 0, 1]]
    assert arms.clicks.tolist() == [[0.25, 0, 0, 0], [0.75, 0, 0, 0], [1, 0, 0, 0]]
    assert arms.alpha[1].tolist() == [1.75, 1, 1, 1]


def test_a_fitted_strength_starts_at_the_given_value_and_waits_for_cluster_rows() -> None:
    prior = Prior("affinity", strength=10.0)
    arms = Arms(0, 5, prior, adaptive_strength=True, unfitted_strength=300.0)
    # Only the global row: nothing to fit, the start stays (it was fitted on no rows).
    arms.add(np.zeros((1, 5)), np.zeros((1, 5)), 400)
    assert arms.prior.cluster_strength == 300.0
    arms.new_generation(2, np.zeros((2, 5)))
    alpha, beta = arms.alpha[:-1], arms.beta[:-1]
    np.testing.assert_allclose(alpha + beta, 300.0)
    assert Arms(0, 5, prior, adaptive_strength=True).prior.cluster_strength is None


def test_a_history_start_follows_the_catalog_at_every_clustering() -> None:
    prior = Prior("affinity", strength=10.0)
    arms = Arms(0, 5, prior, adaptive_strength=True, start_from_history=True)
    # 2 clusters x 5 items: 10 cluster arms; 25 impressions before are 2.5 each (< 3).
    arms.add(np.full((1, 5), 5.0), np.ones((1, 5)), 5)
    arms.new_generation(2, np.zeros((2, 5)))
    assert arms.prior.cluster_strength == 300.0
    # 30 before the next clustering: 3 each, the prior's own strength.
    arms.add(np.r_[np.zeros((2, 5)), np.ones((1, 5))], np.zeros((3, 5)), 1)
    arms.new_generation(2, np.zeros((2, 5)))
    assert arms.prior.cluster_strength == 10.0
    # A fitted strength does not outlive its clustering, as in the service: the next one
    # starts by the rule again (30 impressions over 4 x 5 cluster arms: 1.5 each, the cap).
    arms.add(np.r_[np.full((2, 5), 6.0), np.zeros((1, 5))], np.zeros((3, 5)), 400)
    assert arms.fitted
    assert arms.prior.cluster_strength != 300.0
    arms.new_generation(4, np.zeros((4, 5)))
    assert not arms.fitted and arms.prior.cluster_strength == 300.0


def test_tastes_give_soft_memberships_heaviest_first() -> None:
    rng = np.random.default_rng(1)
    embeddings = rng.standard_normal((30, 4))
    embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)
    tastes = Tastes(embeddings, 50, 10, None, soft=(0.1, 2))
    tastes.read_before(rng.integers(30, size=(50, 5)))
    tastes.refit(4, rng, 0)
    clusters, weights = tastes.membership(7)
    assert 1 <= len(clusters) <= 2
    assert sum(weights) == pytest.approx(1.0)
    assert list(weights) == sorted(weights, reverse=True)
    assert clusters[0] == tastes.cluster(7)


def test_families_differ_from_the_default_where_issue_13_says() -> None:
    default = FAMILIES["default"]
    assert default == WorldConfig()
    assert family("fast-recovery").fatigue_half_life < default.fatigue_half_life
    assert family("sparse").n_items > default.n_items
    assert family("many-groups").n_groups > default.n_groups
    assert family("drift").drift_at is not None
    with pytest.raises(ValueError, match="unknown family"):
        family("moon")


def test_every_setting_has_the_defaults_value_among_its_values() -> None:
    names = policy_names("cluster-ts-learned")
    # The default's own value is run once, as "default"; the others as setting=value.
    for setting, values in SETTINGS.items():
        if setting.startswith("soft_"):
            continue  # the default is hard: soft settings are all alternatives
        labels = [f"{setting}={value}" for value, _ in values]
        assert sum(label not in names for label in labels) == 1, setting


@pytest.mark.slow  # ~10 s: 48 tiny runs and three figures
def test_experiments_write_tables_results_and_plots(tmp_path, capsys) -> None:
    out = tmp_path / "exp"
    code = main(["experiments", "--out", str(out), "--families", "default", "fast-recovery",
                 "--seeds", "0", "--steps", "40", "--users", "30"])  # fmt: skip
    assert code == 0
    tables = (out / "tables.md").read_text()
    for heading in ("### Targets", "### Each default against its alternatives", "**membership**"):
        assert heading in tables
    with open(out / "results.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert {row["family"] for row in rows} == {"default", "fast-recovery"}
    assert {"default", "random", "oracle", "fixed decay"} <= {row["label"] for row in rows}
    for name in ("families.png", "settings.png", "decay.png"):
        assert (out / name).stat().st_size > 0
    assert "### Targets" in capsys.readouterr().out


def test_experiments_refuse_an_unknown_family_in_one_line(capsys) -> None:
    assert main(["experiments", "--out", "/tmp/never", "--families", "moon"]) == 2
    assert capsys.readouterr().err == (
        "banditrec experiments: unknown family 'moon'; choose from "
        "default, fast-recovery, sparse, many-groups, drift\n"
    )


def test_plan_rejects_bad_sizes() -> None:
    with pytest.raises(ValueError, match="steps"):
        Plan(steps=0)
    with pytest.raises(ValueError, match="seeds"):
        Plan(seeds=())


def test_a_journaled_plan_resumes_without_running_again(tmp_path) -> None:
    plan = Plan(families=("default",), seeds=(0,), steps=20, n_users=30)
    journal = tmp_path / "runs.jsonl"
    said: list[str] = []
    first = run_plan(plan, journal=journal, say=said.append)
    assert len(journal.read_text().splitlines()) == len(first)
    # A killed run left half of its runs behind: the rest run, the first half are read back.
    lines = journal.read_text().splitlines()
    journal.write_text("\n".join(lines[: len(lines) // 2]) + "\n")
    said.clear()
    again = run_plan(plan, journal=journal, say=said.append)
    assert f"; {len(lines) // 2} found in {journal}" in said[0]
    assert sorted(row["label"] for row in again) == sorted(row["label"] for row in first)
    by_label = {row["label"]: row["pct_oracle"] for row in first}
    assert all(row["pct_oracle"] == by_label[row["label"]] for row in again)
    # Another plan's runs are not taken for this one's.
    said.clear()
    run_plan(Plan(families=("default",), seeds=(0,), steps=21, n_users=30), journal=journal,
             say=said.append)  # fmt: skip
    assert "found in" not in said[0]
