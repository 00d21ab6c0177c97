"""One `banditrec simulate` run: every policy on equal traffic, then the run folder."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from evaluation.arms import Arms
from evaluation.config import SimConfig, config_dict
from evaluation.engine import Trace, make_traffic, run_named, run_policy
from evaluation.policies import mabwiser_missing, parse_policy
from evaluation.progress import progress_bar
from evaluation.report import write_run
from evaluation.world import World, build_world


def world_of(config: SimConfig) -> World:
    """Return the seeded world of ``config``."""
    return build_world(config.world, np.random.default_rng([config.seed, 0]))


def runnable_policies(config: SimConfig, say: Callable[[str], None]) -> list[str]:
    """Return the policies that can run here, saying why any is skipped."""
    names = []
    for name in config.policies:
        if parse_policy(name).kind == "mabwiser":
            why = mabwiser_missing()
            if why is not None:
                say(f"skipping {name}: {why}")
                continue
        names.append(name)
    return names


def simulate(
    config: SimConfig,
    out_dir: Path,
    *,
    jobs: int = 1,
    progress: bool | None = None,
    say: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run every policy of ``config`` in-process, write the run folder, return the summary."""
    out_dir.mkdir(parents=True, exist_ok=True)
    world = world_of(config)
    traffic = make_traffic(world, config)
    names = runnable_policies(config, say)
    log_path = str(out_dir / "logs.ndjson") if config.log_policy is not None else None
    bar = progress_bar(len(names) * config.n_steps, progress, "simulate")
    started = time.perf_counter()
    traces: list[Trace] = []
    if jobs > 1 and len(names) > 1:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            logs = [log_path if name == config.log_policy else None for name in names]
            futures = [
                pool.submit(run_named, world, config, name, traffic, log)
                for name, log in zip(names, logs, strict=True)
            ]
            for future in futures:
                traces.append(future.result())
                bar(config.n_steps)
    else:
        for name in names:
            spec = parse_policy(name, config.epsilon)
            if name == config.log_policy and log_path is not None:
                with open(log_path, "w") as sink:
                    traces.append(
                        run_policy(world, config, spec, traffic, on_steps=bar, log_sink=sink)
                    )
            else:
                traces.append(run_policy(world, config, spec, traffic, on_steps=bar))
    bar(-1)
    wall = time.perf_counter() - started
    if config.log_policy is not None:
        logged = next(t for t in traces if t.name == config.log_policy)
        if logged.arms is not None:
            write_arms(
                out_dir / "arms.json", logged.arms, logged.gen, world.config.fatigue_half_life
            )
    extra = {
        "engine": "inproc",
        "config": config_dict(config),
        "wall_seconds": round(wall, 3),
        "jobs": jobs,
        "total_impressions": int(sum(t.impressions.sum() for t in traces)),
        "world": world_facts(world),
    }
    return write_run(out_dir, traces, world.embeddings, world.n_items, config.window, extra)


def world_facts(world: World) -> dict[str, Any]:
    """Return a few numbers that say what the world looks like."""
    probs = world.probs
    quantiles = np.percentile(probs, [10, 50, 90, 99]).round(4).tolist()
    return {
        "ctr_quantiles_10_50_90_99": quantiles,
        "share_ctr_0.5_to_10pct": round(float(np.mean((probs >= 0.005) & (probs <= 0.1))), 3),
        "group_sizes": np.bincount(world.group_of_user).tolist(),
    }


def write_arms(path: Path, arms: Arms, gen: int, half_life_s: float) -> None:
    """Write a posterior state as JSON counts: {"global": {...}, "clusters": [{...}], ...}."""

    def counts(row: int) -> dict[str, list[int]]:
        imp, clk = arms.impressions[row], arms.clicks[row]
        return {f"i{i}": [int(imp[i]), int(clk[i])] for i in np.flatnonzero(imp > 0).tolist()}

    n_rows = arms.impressions.shape[0]
    state = {
        "gen": gen,
        "n_items": int(arms.impressions.shape[1]),
        "prior_a": arms.prior.a,
        "prior_b": arms.prior.b,
        # Logged ts are steps; the world's fatigue half-life is in steps too.
        "seen_half_life_s": half_life_s,
        "global": counts(n_rows - 1),
        "clusters": [counts(r) for r in range(n_rows - 1)],
    }
    path.write_text(json.dumps(state) + "\n")


def simulate_http(
    config: SimConfig,
    out_dir: Path,
    *,
    url: str | None = None,
    progress: bool | None = None,
    say: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run the world through a service over HTTP (launched here unless ``url`` is given).

    The oracle and random policies run in-process on the same traffic as reference points.
    """
    import tempfile

    from evaluation.http_engine import launched_service, run_http

    out_dir.mkdir(parents=True, exist_ok=True)
    world = world_of(config)
    traffic = make_traffic(world, config)
    bar = progress_bar(config.n_steps, progress, "simulate")
    started = time.perf_counter()
    if url is None:
        with tempfile.TemporaryDirectory(prefix="banditrec-sim-") as data_dir:
            log_path = out_dir / "service.log"
            with launched_service(Path(data_dir), log_path) as base:
                say(f"started banditrec serve at {base} (log: {log_path})")
                served = run_http(world, config, traffic, base, on_steps=bar)
    else:
        served = run_http(world, config, traffic, url, on_steps=bar)
    bar(-1)
    references = [
        run_policy(world, config, parse_policy(name, config.epsilon), traffic)
        for name in ("oracle", "random")
    ]
    extra = {
        "engine": "http",
        "url": url or "launched",
        "config": config_dict(config),
        "wall_seconds": round(time.perf_counter() - started, 3),
        "world": world_facts(world),
    }
    traces = [served, *references]
    return write_run(out_dir, traces, world.embeddings, world.n_items, config.window, extra)
