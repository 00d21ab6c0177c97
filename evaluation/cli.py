"""The `banditrec simulate` and `banditrec evaluate` subcommands (parsers and runners)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from evaluation.config import WORLD_FIELDS, SimConfig
from evaluation.experiments import Plan
from evaluation.offline import MAX_DRAWS, SERVICE_HALF_LIFE_S
from evaluation.policies import BASE_POLICIES
from evaluation.targets import TARGET_NAMES, evaluable


def _cluster_count(text: str) -> int | str:
    """Return ``text`` as an int when it is one, else unchanged (SimConfig says what is wrong)."""
    try:
        return int(text)
    except ValueError:
        return text


# Command-line flags that override config fields: field -> (type, help); the help shows the
# field's default from SimConfig / WorldConfig.
_SIM_FLAGS: dict[str, tuple[Callable[[str], Any], str]] = {
    "impressions": (int, "total impressions per policy"),
    "k": (int, "list length"),
    "seed": (int, "seed of the world, traffic and policies"),
    "epsilon": (float, "epsilon of epsilon-greedy"),
    "n_clusters": (_cluster_count, "k-means clusters, or auto: chosen per fit from the history"),
    "first_refit": (int, "step of the first cluster refit"),
    "refit_growth": (float, "each next refit this many times later (1 = periodic)"),
    "window": (int, "steps per CSV row"),
    "position_decay": (float, "P(seen) of list position j is this ** j"),
    "log_policy": (str, "write logs.ndjson + arms.json for this Thompson policy"),
    "propensity_draws": (int, "posterior draws per logged list for propensities"),
    "n_users": (int, "world: users"),
    "n_groups": (int, "world: latent taste groups"),
    "n_items": (int, "world: items"),
    "dim": (int, "world: embedding dimension"),
    "fatigue": (float, "world: click chance multiplier per ignored impression"),
    "fatigue_half_life": (float, "world: steps for ignored impressions to fade by half"),
    "prior_reads": (int, "world: items each user read before the run"),
    "drift_at": (float, "world: fraction of the run at which item qualities change"),
}


def _sim_default(name: str) -> str:
    """Return the default of a sim or world field as the help shows it."""
    config = SimConfig()
    value = getattr(config.world if name in WORLD_FIELDS else config, name)
    if value is None:
        return "none"
    return f"{value:g}" if isinstance(value, float) else str(value)


def add_commands(commands: Any) -> None:
    """Add the simulate and evaluate subparsers to ``commands`` (an argparse subparsers)."""
    sim = commands.add_parser(
        "simulate", help="compare policies on a synthetic world; write CSV, JSON and plots"
    )
    sim.add_argument("--out", type=Path, required=True, help="run folder to write")
    sim.add_argument("--config", type=Path, help="TOML or JSON config file (flags override it)")
    sim.add_argument(
        "--policies", nargs="+", metavar="POLICY",
        help=f"policies: {', '.join(BASE_POLICIES)}, each with optional :key=value options "
        "(gamma=, epsilon=, prior=a/b or prior=catalog/S), e.g. "
        "cluster-ts-decay:gamma=0.3:prior=1/20 (default: all of them)",
    )  # fmt: skip
    for name, (kind, text) in _SIM_FLAGS.items():
        sim.add_argument(f"--{name.replace('_', '-')}", dest=name, type=kind,
                         help=f"{text} (default {_sim_default(name)})")  # fmt: skip
    sim.add_argument("--true-clusters", action="store_true", default=None,
                     help="use the latent groups as clusters instead of k-means")  # fmt: skip
    sim.add_argument("--engine", choices=("inproc", "http"), default="inproc",
                     help="inproc drives the packages; http a real service "
                     "(default %(default)s)")  # fmt: skip
    sim.add_argument("--url", help="http engine: a running service (default: start one)")
    sim.add_argument("--jobs", type=int, default=1,
                     help="inproc: policies run in parallel (default %(default)s)")  # fmt: skip
    sim.add_argument("--no-progress", action="store_true",
                     help="no progress bar (it shows only when stderr is a terminal)")  # fmt: skip
    sim.set_defaults(run=run_simulate)

    exp = commands.add_parser(
        "experiments",
        help="each default against its alternatives over world families x seeds; "
        "write tables, CSV and plots",
        description="Run the service's defaults (as the simulator models them), each setting's "
        "alternatives and the references on every world family and seed; write results.csv, "
        "results.json, tables.md (targets, tables per setting, the learned decay) and plots. "
        "Each finished run is kept in runs.jsonl in the folder; run the same command again "
        "after an interruption and it resumes.",
    )
    exp.add_argument("--out", type=Path, required=True, help="folder to write")
    exp.add_argument("--families", nargs="+", default=["all"], metavar="FAMILY",
                     help="world families (evaluation/families.py) or all "
                     "(default all)")  # fmt: skip
    exp.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2], metavar="SEED",
                     help="seeds per family (default 0 1 2)")  # fmt: skip
    exp.add_argument("--steps", type=int, default=Plan.steps,
                     help="lists per run (default %(default)s)")  # fmt: skip
    exp.add_argument("--batch", type=int, default=Plan.batch,
                     help="lists served from one posterior state "
                     "(default %(default)s)")  # fmt: skip
    exp.add_argument("--policy", default=Plan.default_policy,
                     help="the defaults under test (default %(default)s)")  # fmt: skip
    exp.add_argument("--users", type=int,
                     help="fewer users in every family, for a quick look (default: the "
                     "family's)")  # fmt: skip
    exp.add_argument("--jobs", type=int, default=1,
                     help="runs in parallel (default %(default)s)")  # fmt: skip
    exp.set_defaults(run=run_experiments)

    ev = commands.add_parser(
        "evaluate",
        help="estimate a target policy's CTR from served-list logs (IPS/SNIPS/DR)",
        description="Estimate a target policy's CTR from NDJSON served-list logs "
        "(GET /v1/admin/logs/export, or simulate --log-policy; format: "
        "docs/log-format.md) by IPS, SNIPS and doubly robust, with bootstrap intervals.",
    )
    ev.add_argument("--logs", type=Path, required=True, help="NDJSON served-list log")
    ev.add_argument(
        "--policy", required=True, metavar="POLICY",
        help=f"target: one of {', '.join(TARGET_NAMES)}, with optional :key=value options "
        "(gamma=0.5, prior=1/20 or prior=catalog/10), e.g. cluster-ts-decay:gamma=0.3",
    )  # fmt: skip
    source = ev.add_mutually_exclusive_group()
    source.add_argument("--arms", type=Path,
                        help="the frozen posterior state: counts JSON (simulate) or a state "
                        "file (banditrec export); default: the counts in the logs, last "
                        "clustering generation")  # fmt: skip
    source.add_argument("--arms-url", metavar="URL",
                        help="read the state from a running service's GET /v1/arms (its base "
                        "URL, e.g. http://127.0.0.1:8000, or the /v1/arms URL)")  # fmt: skip
    ev.add_argument("--api-key", default=os.environ.get("BANDITREC_API_KEY") or None,
                    help="X-API-Key for --arms-url when the service sets BANDITREC_API_KEY "
                    "(default: $BANDITREC_API_KEY)")  # fmt: skip
    ev.add_argument("--draws", type=int, default=200,
                    help="Thompson targets: posterior draws per list to start from; more are "
                    "drawn until their Monte-Carlo error is at most half the bootstrap's "
                    "(default %(default)s)")  # fmt: skip
    ev.add_argument("--max-draws", type=int, default=MAX_DRAWS,
                    help="cap on the draws per list; at the cap the interval is widened by "
                    "the Monte-Carlo error (default %(default)s)")  # fmt: skip
    ev.add_argument("--bootstrap", type=int, default=500,
                    help="bootstrap resamples of lists (default %(default)s)")  # fmt: skip
    ev.add_argument("--half-life-s", type=float,
                    help="seen-decay half-life of the logs' ts (default: from --arms, else "
                    f"the service's {SERVICE_HALF_LIFE_S:.0f} s)")  # fmt: skip
    ev.add_argument("--seed", type=int, default=0, help="seed (default %(default)s)")
    ev.add_argument("--out", type=Path, help="also write the result as JSON here")
    ev.add_argument("--no-progress", action="store_true",
                    help="no progress bar (it shows only when stderr is a terminal)")  # fmt: skip
    ev.set_defaults(run=run_evaluate)


def run_simulate(args: argparse.Namespace) -> int:
    """Run `banditrec simulate`; return the exit code."""
    from evaluation.config import load_config
    from evaluation.simulate import simulate, simulate_http

    overrides: dict[str, Any] = {name: getattr(args, name) for name in _SIM_FLAGS}
    overrides["true_clusters"] = args.true_clusters
    if args.policies:
        overrides["policies"] = tuple(args.policies)
    try:
        config = load_config(args.config, overrides)
    except (ValueError, OSError) as exc:
        print(f"banditrec simulate: {exc}", file=sys.stderr)
        return 2
    progress = False if args.no_progress else None

    def say(message: str) -> None:
        print(message, file=sys.stderr)

    if args.engine == "http":
        summary = simulate_http(config, args.out, url=args.url, progress=progress, say=say)
    else:
        summary = simulate(config, args.out, jobs=args.jobs, progress=progress, say=say)
    print((args.out / "table.md").read_text(), end="")
    print(f"wrote {args.out} in {summary['wall_seconds']:.1f} s")
    return 0


def run_experiments(args: argparse.Namespace) -> int:
    """Run `banditrec experiments`; return the exit code."""
    from evaluation.evidence import write_evidence
    from evaluation.experiments import run_plan, write_results
    from evaluation.families import families
    from evaluation.policies import parse_policy

    try:
        families(args.families)
        parse_policy(args.policy)
        plan = Plan(families=tuple(args.families), seeds=tuple(args.seeds), steps=args.steps,
                    batch=args.batch, default_policy=args.policy,
                    n_users=args.users)  # fmt: skip
    except ValueError as exc:
        print(f"banditrec experiments: {exc}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    rows = run_plan(plan, jobs=args.jobs, say=lambda m: print(m, file=sys.stderr),
                    journal=args.out / "runs.jsonl")  # fmt: skip
    write_results(rows, args.out)
    (args.out / "results.json").write_text(json.dumps(rows) + "\n")
    command = "banditrec experiments " + " ".join(sys.argv[2:]) if len(sys.argv) > 2 else ""
    text = write_evidence(rows, plan, args.out, command or "banditrec experiments")
    print(text, end="")
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    """Run `banditrec evaluate`; return the exit code."""
    import numpy as np

    from evaluation.log_format import read_logs
    from evaluation.offline import (
        evaluate_logs,
        format_result,
        state_from_json,
        state_from_logs,
        state_from_service,
    )
    from evaluation.policies import parse_policy
    from evaluation.progress import progress_bar

    progress = False if args.no_progress else None
    try:
        spec = parse_policy(args.policy)
        if not evaluable(spec):
            raise ValueError(
                f"evaluate cannot take {spec.name!r} as a target; "
                f"choose from {', '.join(TARGET_NAMES)}"
            )
        advance = progress_bar(args.logs.stat().st_size, progress, "read", unit="B")
        try:
            lines = read_logs(args.logs, advance)
        finally:
            advance(-1)
        if not lines:
            raise ValueError(f"{args.logs} holds no served lists")
        logged_items = {item.item_id for line in lines for item in line.items}
        if args.arms is not None:
            state = state_from_json(args.arms, logged_items)
        elif args.arms_url is not None:
            state = state_from_service(args.arms_url, logged_items, args.api_key)
        else:
            state = state_from_logs(lines)
        half_life = args.half_life_s or state.half_life_s or SERVICE_HALF_LIFE_S
        result = evaluate_logs(
            lines, spec, state, np.random.default_rng(args.seed), n_draws=args.draws,
            n_boot=args.bootstrap, half_life_s=half_life, max_draws=args.max_draws,
            progress=progress,
        )  # fmt: skip
    except (ValueError, OSError, KeyError) as exc:
        print(f"banditrec evaluate: {exc}", file=sys.stderr)
        return 2
    print(format_result(result))
    if args.out is not None:
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0
