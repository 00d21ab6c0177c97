"""Defaults chosen by evidence: each default against its alternatives, over world families x seeds.

One run is (family, seed, policy) on equal traffic within a (family, seed). The policy under
test is ``DEFAULT_POLICY`` (the service's defaults as the simulator models them); each
*setting* varies one of its options at a time; references are random, the oracle, and
per-cluster TS with the fixed decay. `banditrec experiments` runs them all and writes
``results.csv``, ``tables.md`` and plots.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
from numpy.typing import NDArray

from bandits import decay_prior
from bandits.validation import positive_int
from evaluation.batched import run_batched
from evaluation.config import DEFAULT_CLUSTERS, SimConfig
from evaluation.engine import Trace, make_traffic
from evaluation.families import families, shrunk
from evaluation.policies import PolicySpec, parse_policy
from evaluation.report import LAST_SHARE
from evaluation.world import WorldConfig, build_world

FloatArray = NDArray[np.float64]

DEFAULT_POLICY = "cluster-ts-learned"
REFERENCES = {
    "random": "random",
    "oracle": "oracle",
    # Per-cluster TS with the fixed seen decay: the simulator's policy before issue 13.
    "fixed decay": "cluster-ts-decay",
    # The service's defaults before issue 13: that, with soft membership.
    "service before": "cluster-ts-decay:membership=soft",
}
# The default again on another random stream: how far chance alone moves a result.
REPLICA = "default, other stream"
# Per setting of the service (service/config.py names), its values as policy options
# added to DEFAULT_POLICY; the value whose policy equals the default is the default.
SETTINGS: dict[str, list[tuple[str, str]]] = {
    "membership": [("hard", "membership=hard"), ("soft", "membership=soft")],
    "soft_temperature": [
        ("0.05", "membership=soft:temperature=0.05"),
        ("0.1", "membership=soft:temperature=0.1"),
        ("0.3", "membership=soft:temperature=0.3"),
    ],
    "soft_top_m": [
        ("2", "membership=soft:top_m=2"),
        ("3", "membership=soft:top_m=3"),
        ("5", "membership=soft:top_m=5"),
    ],
    "k (clusters of a fit)": [("8", "k=8"), ("16", "k=16"), ("32", "k=32"),
                              ("8/16/32 by >= 3 impressions per cluster arm", "k=auto")],
    "prior": [("catalog", "prior=catalog/auto"), ("affinity", "prior=affinity/auto")],
    "prior_strength": [("10", "prior_strength=10"), ("30", "prior_strength=30"),
                       ("100", "prior_strength=100"), ("fitted", "prior_strength=auto")],
    # What the fitted strength is before its fit has evidence (the service: the same).
    "strength before evidence": [("300 (the cap)", "strength_start=cap"),
                                 ("10 (prior_strength)", "strength_start=prior"),
                                 ("10 after >= 3 impressions per cluster arm, else 300",
                                  "strength_start=history")],
    "personal tilt": [("0", "personal=0"), ("0.5", "personal=0.5"), ("1", "personal=1")],
    # The fixed decay times a learned correction per bucket, or a learned curve in its place.
    "seen decay": [("none", "decay=none"), ("fixed gamma 0.7", "decay=fixed:gamma=0.7"),
                   ("learned curve alone", "decay=curve:decay_strength=100"),
                   ("fixed x learned correction, drawn", "decay=learned-draw"),
                   ("fixed x learned correction", "decay=learned")],
    "learned decay's prior strength": [("100", "decay_strength=100"),
                                       ("1000", "decay_strength=1000"),
                                       ("fitted", "decay_strength=auto")],
    "learned decay prior (gamma)": [("0.7", "gamma=0.7"), ("1 (no penalty)", "gamma=1")],
}  # fmt: skip
# A default that loses more than this share to an alternative in some family must change.
LOSS_BAR = 0.02
TARGETS = {"oracle_default_world": 0.90, "vs_random": 1.7, "vs_fixed_decay": 1.15, "vs_best": 0.95}


@dataclass(frozen=True)
class Plan:
    """What one `banditrec experiments` run covers."""

    families: tuple[str, ...] = ("all",)
    seeds: tuple[int, ...] = (0, 1, 2)
    steps: int = 16_000
    k: int = 5
    # Lists served from one posterior state (the service: from one snapshot), learned
    # together at the batch's end (evaluation.batched).
    batch: int = 20
    default_policy: str = DEFAULT_POLICY
    # Fewer users in every family (None: as the family has it), for quick checks.
    n_users: int | None = None

    def __post_init__(self) -> None:
        for name in ("steps", "k", "batch"):
            positive_int(name, getattr(self, name))
        if not self.seeds or not self.families:
            raise ValueError(f"seeds and families must not be empty, got {self.seeds!r}, "
                             f"{self.families!r}")  # fmt: skip
        if self.n_users is not None and positive_int("n_users", self.n_users) < 2:
            raise ValueError(f"n_users must be >= 2, got {self.n_users!r}")
        if self.steps < 10:
            raise ValueError(f"steps must be >= 10, got {self.steps!r}")

    def worlds(self) -> dict[str, WorldConfig]:
        """Return the plan's families by name."""
        found = families(list(self.families))
        if self.n_users is None:
            return found
        return {name: shrunk(world, self.n_users) for name, world in found.items()}

    def config(self, world: WorldConfig, seed: int) -> SimConfig:
        """Return the simulation config of one (family, seed)."""
        return SimConfig(
            world=world,
            policies=("random",),
            impressions=self.steps * self.k,
            k=self.k,
            seed=seed,
        )


def with_options(policy: str, options: str) -> str:
    """Return ``policy`` with ``:options`` appended (none when empty)."""
    return f"{policy}:{options}" if options else policy


def same_policy(first: PolicySpec, second: PolicySpec) -> bool:
    """Return whether two specs describe the same policy under different names."""
    return _unnamed(first) == _unnamed(second)


def _unnamed(spec: PolicySpec) -> PolicySpec:
    # No k of its own means the run's.
    return dataclasses.replace(spec, name="", n_clusters=spec.n_clusters or DEFAULT_CLUSTERS)


def policy_names(default_policy: str) -> dict[str, str]:
    """Return {label: policy} of every policy a plan runs, each distinct policy once.

    Labels are "default", the reference names, and "setting=value" for the variants.
    """
    names = {"default": default_policy, REPLICA: with_options(default_policy, "stream=1"),
             **REFERENCES}  # fmt: skip
    specs = {label: parse_policy(name) for label, name in names.items()}
    for setting, values in SETTINGS.items():
        for value, options in values:
            spec = parse_policy(with_options(default_policy, options))
            if not any(same_policy(spec, known) for known in specs.values()):
                label = f"{setting}={value}"
                names[label], specs[label] = spec.name, spec
    return names


def label_of(default_policy: str, setting: str, options: str, names: dict[str, str]) -> str:
    """Return the label under which the variant ``options`` of ``setting`` was run."""
    spec = parse_policy(with_options(default_policy, options))
    for label, name in names.items():
        if same_policy(spec, parse_policy(name)):
            return label
    raise KeyError(f"{setting}: {options} was not run")


def run_one(
    family: str, world: WorldConfig, seed: int, label: str, policy: str, plan: Plan
) -> dict[str, Any]:
    """Run one policy on one (family, seed); return its metrics (and learned decay, if any)."""
    config = plan.config(world, seed)
    built = build_world(world, np.random.default_rng([seed, 0]))
    traffic = make_traffic(built, config)
    trace = run_batched(built, config, parse_policy(policy), traffic, plan.batch)
    row = {"family": family, "seed": seed, "label": label, "policy": policy}
    row.update(trace_metrics(trace))
    if trace.fatigue is not None and label == "default":
        spec = parse_policy(policy)
        curve = trace.fatigue.posterior().mean()
        if spec.corrects:
            # As served: the fixed decay (at each bucket's typical age) times the correction.
            curve = curve * decay_prior(trace.fatigue.buckets, spec.gamma, spec.half_life)
        row["decay_curve"] = curve.tolist()
        row["decay_impressions"] = trace.fatigue.impressions_.tolist()
    return row


def trace_metrics(trace: Trace) -> dict[str, float]:
    """Return expected CTR over the whole run and its last 20%, with CTR and run time."""
    n = trace.items.shape[0]
    last = slice(n - max(1, int(LAST_SHARE * n)), n)
    shown_last = max(1, int(trace.impressions[last].sum()))
    return {
        "expected_ctr": float(trace.expected.sum()) / max(1, int(trace.impressions.sum())),
        "expected_ctr_last20": float(trace.expected[last].sum()) / shown_last,
        "ctr_last20": float((trace.clicks & trace.impressions)[last].sum()) / shown_last,
        "seconds": round(trace.seconds, 2),
    }


def run_plan(
    plan: Plan,
    jobs: int = 1,
    say: Callable[[str], None] = print,
    journal: Path | None = None,
) -> list[dict[str, Any]]:
    """Run every (family, seed, policy) of ``plan``; return one row per run.

    With a ``journal`` (JSON lines), each finished run is appended to it at once, and runs
    of this plan already there are not run again: a killed run resumes where it stopped.
    """
    worlds = plan.worlds()
    names = policy_names(plan.default_policy)
    tasks = [
        (family, world, seed, label, policy)
        for family, world in worlds.items()
        for seed in plan.seeds
        for label, policy in names.items()
    ]
    done_before = _journaled(journal, plan)
    rows = [done_before[key] for key in _task_keys(tasks) if key in done_before]
    tasks = [task for task, key in zip(tasks, _task_keys(tasks), strict=True)
             if key not in done_before]  # fmt: skip
    # The slow policies first, so that two workers finish together.
    tasks.sort(key=lambda task: task[3] in ("random", "oracle"))
    say(f"{len(tasks) + len(rows)} runs: {len(worlds)} families x {len(plan.seeds)} seeds x "
        f"{len(names)} policies, {plan.steps} lists of {plan.k} each"
        + (f"; {len(rows)} found in {journal}" if rows else ""))  # fmt: skip
    started = time.perf_counter()
    sink = open(journal, "a") if journal is not None else None  # noqa: SIM115
    try:
        if jobs > 1:
            with ProcessPoolExecutor(max_workers=jobs) as pool:
                futures = [pool.submit(run_one, *task, plan) for task in tasks]
                for done, future in enumerate(futures, 1):
                    rows.append(_journal(sink, future.result(), plan))
                    _progress(say, done, len(tasks), started)
        else:
            for done, task in enumerate(tasks, 1):
                rows.append(_journal(sink, run_one(*task, plan), plan))
                _progress(say, done, len(tasks), started)
    finally:
        if sink is not None:
            sink.close()
    return with_ratios(rows)


def _plan_key(plan: Plan) -> list[Any]:
    """Return what a journaled run must share with this plan to count for it."""
    return [plan.steps, plan.k, plan.batch, plan.n_users]


def _task_keys(
    tasks: list[tuple[str, WorldConfig, int, str, str]],
) -> list[tuple[str, int, str, str]]:
    return [(family, seed, label, policy) for family, _, seed, label, policy in tasks]


def _journaled(journal: Path | None, plan: Plan) -> dict[tuple[str, int, str, str], dict[str, Any]]:
    """Return the runs of this plan already in the journal, by (family, seed, label, policy)."""
    if journal is None or not journal.exists():
        return {}
    found = {}
    for line in journal.read_text().splitlines():
        row = json.loads(line)
        if row.pop("plan", None) == _plan_key(plan):
            found[(row["family"], row["seed"], row["label"], row["policy"])] = row
    return found


def _journal(sink: IO[str] | None, row: dict[str, Any], plan: Plan) -> dict[str, Any]:
    """Append one finished run to the journal (flushed: a kill loses at most the runs going)."""
    if sink is not None:
        sink.write(json.dumps({**row, "plan": _plan_key(plan)}) + "\n")
        sink.flush()
    return row


def _progress(say: Callable[[str], None], done: int, total: int, started: float) -> None:
    if done % 20 == 0 or done == total:
        say(f"{done}/{total} runs, {time.perf_counter() - started:.0f} s")


def with_ratios(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Add each run's share of the oracle's, random's and the fixed decay's expected CTR."""
    base = {(r["family"], r["seed"], r["label"]): r["expected_ctr_last20"] for r in rows}
    for row in rows:
        key = (row["family"], row["seed"])
        for column, label in (("pct_oracle", "oracle"), ("x_random", "random"),
                              ("x_fixed_decay", "fixed decay")):  # fmt: skip
            reference = base.get((*key, label), math.nan)
            row[column] = row["expected_ctr_last20"] / reference if reference > 0 else math.nan
        row["pct_oracle"] *= 100.0
    return rows


def mean_by(rows: Iterable[dict[str, Any]], column: str) -> dict[tuple[str, str], float]:
    """Return the mean of ``column`` over seeds per (family, label)."""
    grouped: dict[tuple[str, str], list[float]] = {}
    for row in rows:
        grouped.setdefault((row["family"], row["label"]), []).append(float(row[column]))
    return {key: float(np.mean(values)) for key, values in grouped.items()}


def spread_by(rows: Iterable[dict[str, Any]], column: str) -> dict[tuple[str, str], float]:
    """Return the half range (max - min) / 2 of ``column`` over seeds per (family, label)."""
    grouped: dict[tuple[str, str], list[float]] = {}
    for row in rows:
        grouped.setdefault((row["family"], row["label"]), []).append(float(row[column]))
    return {key: (max(v) - min(v)) / 2.0 for key, v in grouped.items()}


def write_results(rows: list[dict[str, Any]], out_dir: Path) -> None:
    """Write one CSV row per run (without the decay curves)."""
    columns = ["family", "seed", "label", "policy", "expected_ctr", "expected_ctr_last20",
               "ctr_last20", "pct_oracle", "x_random", "x_fixed_decay", "seconds"]  # fmt: skip
    with open(out_dir / "results.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, columns, extrasaction="ignore")
        writer.writeheader()
        for row in sorted(rows, key=lambda r: (r["family"], r["label"], r["seed"])):
            writer.writerow({k: round(v, 5) if isinstance(v, float) else v for k, v in row.items()})
