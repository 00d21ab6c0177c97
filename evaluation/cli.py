"""The `banditrec simulate` and `banditrec evaluate` subcommands (parsers and runners)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

# Command-line flags that override config fields: flag name -> (field, type, help).
_SIM_FLAGS: dict[str, tuple[type, str]] = {
    "impressions": (int, "total impressions per policy (default 200000)"),
    "k": (int, "list length (default 5)"),
    "seed": (int, "seed of the world, traffic and policies (default 0)"),
    "epsilon": (float, "epsilon of epsilon-greedy (default 0.1)"),
    "n_clusters": (int, "k-means clusters (default 8)"),
    "first_refit": (int, "step of the first cluster refit (default 1000)"),
    "refit_growth": (float, "each next refit this many times later (default 4; 1 = periodic)"),
    "window": (int, "steps per CSV row (default 500)"),
    "position_decay": (float, "P(seen) of list position j is this ** j (default 1)"),
    "log_policy": (str, "write logs.ndjson + arms.json for this Thompson policy"),
    "propensity_draws": (int, "posterior draws per logged list for propensities (default 100)"),
    "n_users": (int, "world: users (default 2000)"),
    "n_groups": (int, "world: latent taste groups (default 8)"),
    "n_items": (int, "world: items (default 200)"),
    "dim": (int, "world: embedding dimension (default 16)"),
    "fatigue": (float, "world: click chance multiplier per ignored impression (default 0.7)"),
    "fatigue_half_life": (float, "world: steps for ignored impressions to fade by half (4000)"),
    "prior_reads": (int, "world: items each user read before the run (default 10)"),
    "drift_at": (float, "world: fraction of the run at which item qualities change"),
}


def add_commands(commands: Any) -> None:
    """Add the simulate and evaluate subparsers to ``commands`` (an argparse subparsers)."""
    sim = commands.add_parser(
        "simulate", help="compare policies on a synthetic world; write CSV, JSON and plots"
    )
    sim.add_argument("--out", type=Path, required=True, help="run folder to write")
    sim.add_argument("--config", type=Path, help="TOML or JSON config file (flags override it)")
    sim.add_argument(
        "--policies", nargs="+", metavar="POLICY",
        help="policies, e.g. random cluster-ts-decay:gamma=0.3:prior=1/20 (default: all)",
    )  # fmt: skip
    for name, (kind, text) in _SIM_FLAGS.items():
        sim.add_argument(f"--{name.replace('_', '-')}", dest=name, type=kind, help=text)
    sim.add_argument("--true-clusters", action="store_true", default=None,
                     help="use the latent groups as clusters instead of k-means")  # fmt: skip
    sim.add_argument("--engine", choices=("inproc", "http"), default="inproc")
    sim.add_argument("--url", help="http engine: a running service (default: start one)")
    sim.add_argument("--jobs", type=int, default=1, help="inproc: policies run in parallel")
    sim.add_argument("--no-progress", action="store_true", help="no progress bar")
    sim.set_defaults(run=run_simulate)

    ev = commands.add_parser(
        "evaluate", help="estimate a target policy's CTR from served-list logs (IPS/SNIPS/DR)"
    )
    ev.add_argument("--logs", type=Path, required=True, help="NDJSON served-list log")
    ev.add_argument("--policy", required=True, help="target, e.g. cluster-ts-decay:gamma=0.3")
    source = ev.add_mutually_exclusive_group()
    source.add_argument("--arms", type=Path, help="counts JSON of the frozen posterior state")
    source.add_argument("--arms-url", help="read the state from a service's GET /v1/arms")
    ev.add_argument("--draws", type=int, default=200, help="posterior draws per list")
    ev.add_argument("--bootstrap", type=int, default=500, help="bootstrap resamples")
    ev.add_argument("--half-life-s", type=float, help="seen-decay half-life of the logs' ts")
    ev.add_argument("--seed", type=int, default=0)
    ev.add_argument("--out", type=Path, help="also write the result as JSON here")
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


def run_evaluate(args: argparse.Namespace) -> int:
    """Run `banditrec evaluate`; return the exit code."""
    import numpy as np

    from evaluation.offline import (
        SERVICE_HALF_LIFE_S,
        evaluate_logs,
        format_result,
        read_logs,
        state_from_json,
        state_from_logs,
        state_from_service,
    )
    from evaluation.policies import parse_policy

    try:
        spec = parse_policy(args.policy)
        lines = read_logs(args.logs)
        if not lines:
            raise ValueError(f"{args.logs} holds no served lists")
        logged_items = {item["item_id"] for line in lines for item in line["items"]}
        if args.arms is not None:
            state = state_from_json(args.arms, logged_items)
        elif args.arms_url is not None:
            state = state_from_service(args.arms_url, logged_items)
        else:
            state = state_from_logs(lines)
        half_life = args.half_life_s or state.half_life_s or SERVICE_HALF_LIFE_S
        result = evaluate_logs(
            lines, spec, state, np.random.default_rng(args.seed),
            n_draws=args.draws, n_boot=args.bootstrap, half_life_s=half_life,
        )  # fmt: skip
    except (ValueError, OSError, KeyError) as exc:
        print(f"banditrec evaluate: {exc}", file=sys.stderr)
        return 2
    print(format_result(result))
    if args.out is not None:
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0
