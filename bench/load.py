"""`python -m bench.load` (= make load): locustfile.py headless for a bounded time.

Against --host if a banditrec answers there; otherwise a local `banditrec serve` is
started per worker count (temp data folder, seeded with items, users with history and 8
fitted clusters), loaded, and stopped. Locust's CSV stats go to bench/results/.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from bench import loadgen, machine, report, seed, server

ROOT = Path(__file__).resolve().parent.parent
LOCUSTFILE = ROOT / "locustfile.py"
RESULTS = Path(__file__).resolve().parent / "results"
DOC = ROOT / "docs" / "performance.md"
START = "<!-- load:tables:start -->"
END = "<!-- load:tables:end -->"


def _running(host: str) -> bool:
    try:
        return httpx.get(f"{host}/readyz", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def _locust(host: str, args: argparse.Namespace, prefix: Path, env: dict[str, str]) -> dict:
    load_before = machine.load()
    result = loadgen.run_locust(
        host,
        locustfile=LOCUSTFILE,
        users=args.users,
        spawn_rate=args.spawn_rate,
        duration_s=args.run_time,
        csv_prefix=prefix,
        env=env,
    )
    rows = []
    import csv

    with prefix.with_name(prefix.name + "_stats.csv").open() as source:
        for row in csv.DictReader(source):
            rows.append(
                {
                    "name": row["Name"],
                    "requests": int(row["Request Count"]),
                    "failures": int(row["Failure Count"]),
                    "rps": round(float(row["Requests/s"]), 1),
                    "p50_ms": row["50%"],
                    "p95_ms": row["95%"],
                    "p99_ms": row["99%"],
                    "max_ms": round(float(row["Max Response Time"]), 1),
                }
            )
    return {
        "rows": rows,
        "locust_exit": result["locust_exit"],
        "locust_cpu_s": result["locust_cpu_s"],
        "load_before": load_before,
        "load_after": machine.load(),
    }


def table(runs: dict[str, Any], args: argparse.Namespace, facts: dict[str, Any]) -> str:
    """Return the Markdown table of every run."""
    lines = [
        f"Measured {report.machine_line(facts)}. locustfile.py, {args.users} users "
        f"(spawn {args.spawn_rate}/s), {args.run_time:.0f} s per run, locust on the same "
        "machine; percentiles as locust reports them (whole ms).",
        "",
        "| workers | request | requests | failures | req/s | p50 ms | p95 ms | p99 ms | max ms |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for label, run in runs.items():
        for r in run["rows"]:
            lines.append(
                f"| {label} | {r['name']} | {r['requests']:,} | {r['failures']} | {r['rps']} | "
                f"{r['p50_ms']} | {r['p95_ms']} | {r['p99_ms']} | {r['max_ms']} |"
            )
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the load test for each worker count; return 1 if any request failed."""
    parser = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__)
    parser.add_argument("--host", default="http://127.0.0.1:8000")
    parser.add_argument("--workers", default="1,2", help="comma list of BANDITREC_WORKERS")
    parser.add_argument("--run-time", type=float, default=60.0, help="seconds per run")
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--spawn-rate", type=float, default=10.0)
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--known-users", type=int, default=10_000)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--update-doc", action="store_true", help="rewrite the docs table")
    parser.add_argument(
        "--service-tree",
        default=None,
        metavar="REV",
        help="serve a git revision exported with git archive instead of the working tree",
    )
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = dt.date.today().isoformat()
    facts = machine.facts()
    facts["service_tree"] = os.environ.get("BENCH_SERVICE_TREE", "working tree")
    runs: dict[str, Any] = {}
    if _running(args.host):
        print(f"using the service already running at {args.host}")
        runs["external"] = _locust(args.host, args, args.out / f"load-{stamp}-external", {})
    else:
        work = Path(tempfile.mkdtemp(prefix="banditrec-load-"))
        try:
            if args.service_tree:
                os.environ["BENCH_SERVICE_ROOT"] = str(server.export_tree(args.service_tree, work))
                facts["service_tree"] = f"git archive {server.resolve_rev(args.service_tree)}"
            template = work / "seeded"
            print(f"seeding {args.items} items, {args.known_users} users, 8 clusters ...")
            seed.template(template, args.items, args.known_users)
            env = {
                "LOAD_ITEM_PREFIX": "i",
                "LOAD_ITEMS": str(args.items),
                "LOAD_USER_PREFIX": "u",
                "LOAD_KNOWN_USERS": str(args.known_users),
                "LOAD_DIM": str(seed.DIM),
            }
            for workers in (int(w) for w in args.workers.split(",") if w):
                data = seed.copy_data(template, work / f"w{workers}")
                with server.banditrec(data, workers=workers) as srv:
                    print(f"{workers} worker(s): locust for {args.run_time:.0f} s ...")
                    prefix = args.out / f"load-{stamp}-w{workers}"
                    runs[str(workers)] = _locust(srv.base_url, args, prefix, env)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    text = table(runs, args, facts)
    (args.out / f"load-{stamp}.md").write_text(text)
    print(text)
    if args.update_doc and DOC.exists():
        doc = DOC.read_text()
        if START in doc and END in doc:
            head, rest = doc.split(START, 1)
            DOC.write_text(f"{head}{START}\n{text}{END}{rest.split(END, 1)[1]}")
            print(f"table updated in {DOC}")
    failures = sum(r["failures"] for run in runs.values() for r in run["rows"])
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
