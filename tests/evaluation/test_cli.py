"""`banditrec simulate` and `banditrec evaluate` end to end, in-process, on a tiny world."""

from __future__ import annotations

import csv
import json

from cli import main

TINY = [
    "--impressions", "3000", "--n-users", "60", "--n-items", "20", "--n-groups", "2",
    "--n-clusters", "2", "--first-refit", "100", "--window", "100", "--no-progress",
]  # fmt: skip


def test_simulate_writes_csv_json_and_plots(tmp_path, capsys):
    out = tmp_path / "run"
    policies = ["random", "cluster-ts-decay", "epsilon-greedy:epsilon=0.2", "oracle"]
    code = main(["simulate", "--out", str(out), *TINY, "--policies", *policies,
                 "--log-policy", "cluster-ts-decay"])  # fmt: skip
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    assert list(summary["policies"]) == policies
    assert summary["policies"]["oracle"]["pct_oracle_last20"] == 100.0
    rows = list(csv.DictReader((out / "steps.csv").read_text().splitlines()))
    assert len(rows) == 4 * 6  # 600 steps in windows of 100, per policy
    for png in ("regret.png", "ctr.png", "below_median.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"
    assert "| cluster-ts-decay |" in capsys.readouterr().out
    first = json.loads((out / "logs.ndjson").read_text().splitlines()[0])
    assert set(first) == {"rec_id", "user_id", "gen", "cluster", "ts", "k", "n_candidates",
                          "items"}  # fmt: skip
    assert all(0 < item["propensity"] <= 1 for item in first["items"])

    result = tmp_path / "ope.json"
    code = main(["evaluate", "--logs", str(out / "logs.ndjson"), "--arms", str(out / "arms.json"),
                 "--policy", "global-ts", "--bootstrap", "50", "--out", str(result)])  # fmt: skip
    assert code == 0
    estimates = json.loads(result.read_text())["estimates"]
    assert set(estimates) == {"ips", "snips", "dr"}


def test_simulate_reads_a_config_file_and_rejects_bad_values(tmp_path, capsys):
    config = tmp_path / "world.toml"
    config.write_text('impressions = 500\npolicies = ["random"]\n[world]\nn_items = 10\n')
    assert main(["simulate", "--out", str(tmp_path / "r"), "--config", str(config),
                 "--n-users", "20", "--n-groups", "2", "--no-progress"]) == 0  # fmt: skip
    assert (
        json.loads((tmp_path / "r" / "summary.json").read_text())["config"]["world"]["n_items"]
        == 10
    )
    assert main(["simulate", "--out", str(tmp_path / "bad"), "--config", str(config),
                 "--fatigue", "1.5", "--no-progress"]) == 2  # fmt: skip
    assert "fatigue must be in (0, 1], got 1.5" in capsys.readouterr().err
