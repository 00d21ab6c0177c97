"""`banditrec simulate` and `banditrec evaluate` end to end, in-process, on a tiny world."""

from __future__ import annotations

import csv
import json
import sys

import pytest

from cli import main
from tests.evaluation.commands import run

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


def _served_list(number: int, **changes) -> str:
    line = {
        "rec_id": f"r{number}",
        "user_id": "u",
        "gen": 0,
        "cluster": 0,
        "ts": number,
        "k": 2,
        "n_candidates": 3,
        "items": [
            {"item_id": "a", "propensity": 0.5, "impression": True, "click": True},
            {"item_id": "b", "propensity": 0.5, "impression": True, "click": False},
        ],
    }
    line.update(changes)
    return json.dumps(line) + "\n"  # fmt: skip


def test_n_clusters_auto_chooses_k_per_fit_and_bad_values_fail_in_one_line(tmp_path, capsys):
    tiny = [*TINY[: TINY.index("--n-clusters")], *TINY[TINY.index("--n-clusters") + 2 :]]
    # 1 600 users, all with a history: enough to fill 32 clusters with 50 each.
    tiny[tiny.index("--n-users") + 1] = "1600"
    out = tmp_path / "auto"
    assert main(["simulate", "--out", str(out), *tiny, "--n-clusters", "auto",
                 "--refit-growth", "2", "--policies", "cluster-ts"]) == 0  # fmt: skip
    summary = json.loads((out / "summary.json").read_text())
    assert summary["config"]["n_clusters"] == "auto"
    # 20 items: 25, 50 and 100 impressions per item at lists 100, 200 and 400 -> 8, 16, 32.
    refits = summary["policies"]["cluster-ts"]["refits"]
    assert [refit["k"] for refit in refits] == [8, 16, 32]
    capsys.readouterr()
    for bad, shown in (("0", "0"), ("abc", "'abc'"), ("2.5", "'2.5'")):
        assert main(["simulate", "--out", str(tmp_path / "bad"), *tiny, "--n-clusters", bad,
                     "--policies", "random"]) == 2  # fmt: skip
        err = capsys.readouterr().err
        assert err == (
            f"banditrec simulate: n_clusters must be an integer >= 1 or 'auto', got {shown}\n"
        )


def test_help_shows_defaults_and_the_policy_names(capsys):
    for command in ("evaluate", "simulate"):
        with pytest.raises(SystemExit) as done:
            run([command, "--help"])
        assert done.value.code == 0
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    evaluate_help, simulate_help = text.split("usage: banditrec simulate")
    for name in ("random", "most-popular", "global-ts", "cluster-ts", "cluster-ts-decay"):
        assert name in evaluate_help
    assert "oracle" not in evaluate_help  # not a target evaluate can take
    for flag_default in ("(default 200)", "(default 500)", "(default 5000)", "(default 0)"):
        assert flag_default in evaluate_help
    for name in ("epsilon-greedy", "mabwiser-ts", "oracle"):
        assert name in simulate_help
    for flag_default in (
        "(default 200000)",
        "(default 4000)",
        "(default none)",
        "(default inproc)",
    ):
        assert flag_default in simulate_help


def test_evaluate_refuses_a_target_it_cannot_weigh_in_one_line(tmp_path, capsys):
    logs = tmp_path / "logs.ndjson"
    logs.write_text(_served_list(1))
    assert run(["evaluate", "--logs", str(logs), "--policy", "oracle"]) == 2
    err = capsys.readouterr().err
    assert err == (
        "banditrec evaluate: evaluate cannot take 'oracle' as a target; choose from random, "
        "most-popular, global-ts, cluster-ts, cluster-ts-decay\n"
    )


def test_evaluate_names_the_line_and_field_of_a_bad_line(tmp_path, capsys):
    logs = tmp_path / "logs.ndjson"
    logs.write_text(_served_list(1) + _served_list(2, items=[{"item_id": "a", "click": True}]))
    assert run(["evaluate", "--logs", str(logs), "--policy", "random"]) == 2
    assert capsys.readouterr().err == (
        "banditrec evaluate: line 2: items[0].propensity: required (and 1 more)\n"
    )


def test_evaluate_shows_progress_on_a_terminal_only(tmp_path, capsys, monkeypatch):
    logs = tmp_path / "logs.ndjson"
    logs.write_text("".join(_served_list(n) for n in range(1, 2500)))
    argv = ["evaluate", "--logs", str(logs), "--policy", "global-ts", "--bootstrap", "20"]
    assert run(argv) == 0
    quiet = capsys.readouterr()
    assert quiet.err == "" and "ips" in quiet.out
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    assert run(argv) == 0
    shown = capsys.readouterr().err
    assert "read: 100%" in shown and "evaluate (200 draws): 100%" in shown and "2499/2499" in shown
    assert run([*argv, "--no-progress"]) == 0
    assert capsys.readouterr().err == ""
