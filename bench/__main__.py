"""`python -m bench` (= make bench): every benchmark, results to bench/results/<date>.json.

Each benchmark reports a ratio against a baseline measured in the same run, plus absolute
figures with the machine's facts and load. Nothing here asserts a wall time.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bench import machine, report, server

RESULTS = Path(__file__).resolve().parent / "results"
DOC = Path(__file__).resolve().parent.parent / "docs" / "performance.md"
ALL = (
    "ranker",
    "related_kernel",
    "propensity",
    "endpoint",
    "ingest",
    "round_trips",
    "memory",
    "profile",
)
_NEEDS_WORLD = {"endpoint", "ingest", "profile"}


def _sizes(quick: bool) -> dict[str, Any]:
    if quick:
        return {
            "ranker": {"sizes": (100, 1000), "max_s": 0.3},
            "related_kernel": {"sizes": (1000,), "max_s": 0.3},
            "propensity": {"sizes": (100, 1000), "max_s": 0.3},
            "world": {"n_items": 40, "n_users": 40, "k": 2},
            "endpoint": {"users": 4, "duration_s": 1},
            "ingest": {
                "batches": (1, 10),
                "users": 4,
                "duration_s": 1,
                "baseline_s": 0.3,
                "policies": ("everysec",),
            },
            "round_trips": {"sizes": (20, 200), "calls": 3},
            "memory": {"n_items": 200, "k": 2, "dim": 8, "events": 200},
            "profile": {"users": 4, "duration_s": 1, "batches": (10,)},
        }
    return {
        "ranker": {},
        "related_kernel": {},
        "propensity": {},
        "world": {"n_items": 1000, "n_users": 10_000, "k": 8},
        "endpoint": {},
        "ingest": {},
        "round_trips": {},
        "memory": {},
        "profile": {},
    }


def run(
    only: Sequence[str],
    *,
    quick: bool,
    work: Path,
    out: Path,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run the chosen benchmarks; return the results dict (also written by main)."""
    from bench import (
        endpoint,
        ingest,
        memory,
        profiling,
        propensity,
        ranker,
        related,
        roundtrips,
        seed,
    )

    sizes = _sizes(quick)
    results: dict[str, Any] = {"machine": machine.facts(), "quick": quick, "benchmarks": {}}
    results["machine"]["service_tree"] = os.environ.get("BENCH_SERVICE_TREE", "working tree")
    world = sizes["world"]
    template = work / "seeded"
    if _NEEDS_WORLD & set(only):
        log(f"seeding {world} ...")
        start = time.monotonic()
        results["world"] = seed.template(template, **world)
        results["world"]["seconds"] = round(time.monotonic() - start, 1)
    stamp = dt.date.today().isoformat()
    jobs: dict[str, Callable[[], dict[str, Any]]] = {
        "ranker": lambda: ranker.run(**sizes["ranker"]),
        "related_kernel": lambda: related.run(**sizes["related_kernel"]),
        "propensity": lambda: propensity.run(**sizes["propensity"]),
        "endpoint": lambda: endpoint.run(work, template, **world, **sizes["endpoint"]),
        "ingest": lambda: ingest.run(
            work, template, n_items=world["n_items"], n_users=world["n_users"], **sizes["ingest"]
        ),
        "round_trips": lambda: roundtrips.run(work, **sizes["round_trips"]),
        "memory": lambda: memory.run(work, **sizes["memory"]),
        "profile": lambda: profiling.run(
            work,
            template,
            out,
            n_items=world["n_items"],
            n_users=world["n_users"],
            out_prefix=f"{stamp}-{'quick-' if quick else ''}",
            **sizes["profile"],
        ),
    }
    for name in only:
        log(f"{name} ... (load {machine.load()})")
        start = time.monotonic()
        results["benchmarks"][name] = jobs[name]()
        results["benchmarks"][name]["seconds"] = round(time.monotonic() - start, 1)
    results["machine"]["load_at_end"] = machine.load()
    return results


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments, run, write JSON (and Markdown tables); return the exit code."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--only", default=",".join(ALL), help=f"comma list of {', '.join(ALL)}")
    parser.add_argument("--quick", action="store_true", help="tiny sizes (smoke test)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="results folder")
    parser.add_argument(
        "--service-tree",
        default=None,
        metavar="REV",
        help="serve a git revision exported with git archive instead of the working tree",
    )
    parser.add_argument(
        "--no-doc", action="store_true", help="do not rewrite the tables in docs/performance.md"
    )
    args = parser.parse_args(argv)
    only = [name for name in args.only.split(",") if name]
    unknown = sorted(set(only) - set(ALL))
    if unknown:
        parser.error(f"unknown benchmarks: {', '.join(unknown)}")
    args.out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="banditrec-bench-"))
    try:
        if args.service_tree:
            os.environ["BENCH_SERVICE_ROOT"] = str(server.export_tree(args.service_tree, work))
            os.environ["BENCH_SERVICE_TREE"] = (
                f"git archive {server.resolve_rev(args.service_tree)}"
            )
        results = run(only, quick=args.quick, work=work, out=args.out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    stamp = dt.date.today().isoformat() + ("-quick" if args.quick else "")
    path = args.out / f"{stamp}.json"
    path.write_text(json.dumps(results, indent=1, default=str) + "\n")
    tables = report.markdown(results)
    (args.out / f"{stamp}.md").write_text(tables)
    print(tables)
    print(f"results: {path}")
    full = not args.quick and not args.no_doc and set(only) == set(ALL)
    if full and report.update_doc(DOC, tables):
        print(f"tables updated in {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
