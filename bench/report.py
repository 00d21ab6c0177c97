"""Markdown tables of a results JSON, for docs/performance.md and bench/results/<date>.md."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

START = "<!-- bench:tables:start -->"
END = "<!-- bench:tables:end -->"


def _table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join("" if v is None else str(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _met(flag: object) -> str:
    if flag is None:
        return "n/a"
    return "met" if flag else "**missed**"


def machine_line(facts: dict[str, Any]) -> str:
    """Return one line naming the machine, versions, date and load."""
    v = facts["versions"]
    git = facts.get("git", {})
    tree = facts.get("service_tree", "working tree")
    return (
        f"{facts['date']} · {facts['cores']} cores ({facts['cpu_model']}) · Python "
        f"{facts['python']} · numpy {v['numpy']} · redis-server {facts['redis_server']} · "
        f"fastapi {v['fastapi']} · uvicorn {v['uvicorn']} · locust {v.get('locust')} · "
        f"mabwiser {v.get('mabwiser')} · service code: {tree} (repository HEAD "
        f"{git.get('commit')}) · load avg at start {facts['load']}"
    )


def ranker(result: dict[str, Any]) -> str:
    """Benchmark 1 table."""
    rows = []
    for r in result["rows"]:
        us = r["us_per_call"]
        rows.append(
            [
                f"{r['n_arms']:,}",
                us["rank"],
                us.get("rank_kernel"),
                us["floor"],
                f"{r['rank_over_floor']}x",
                _met(r["rank_over_floor"] <= result["targets"]["rank_over_floor_max"]),
                us.get("mabwiser_predict"),
                us.get("mabwiser_expectations_top10"),
                f"{r.get('speedup_vs_mabwiser_predict')}x",
                us.get("rank_soft"),
                us.get("soft_floor"),
                f"{r.get('soft_over_floor')}x",
                _met(r.get("soft_over_floor", 99) <= result["targets"]["rank_over_floor_max"]),
            ]
        )
    header = [
        "arms", "rank µs", "kernel µs", "floor µs", "rank / floor", "≤ 1.5x",
        "MABWiser predict µs", "MABWiser expectations+top10 µs", "speedup vs predict",
        "soft (m=3) µs", "soft floor µs", "soft / floor", "≤ 1.5x",
    ]  # fmt: skip
    target = _met(result["met"]["speedup_vs_mabwiser_at_10k"])
    return _table(header, rows) + f"\n\n≥ 20x faster than MABWiser at 10k arms: {target}."


def related(result: dict[str, Any]) -> str:
    """Benchmark 2 table (the service's candidate kernel, no HTTP or Redis)."""
    rows = []
    for r in result["rows"]:
        one = r.get("one_blas_thread") or {"us_per_call": {}, "ratio_vs_floor": None}
        rows.append(
            [
                f"{r['n_items']:,}",
                r["us_per_call"]["cosine_top_k"],
                r["us_per_call"]["floor"],
                f"{r['ratio_vs_floor']}x",
                r["us_per_call"]["cosine_top_k_float32"],
                one["us_per_call"].get("cosine_top_k"),
                one["us_per_call"].get("floor"),
                f"{one['ratio_vs_floor']}x",
                one["us_per_call"].get("cosine_top_k_float32"),
            ]
        )
    header = ["items", "cosine top-100 µs", "matvec+argpartition µs", "ratio", "float32 µs",
              "1 BLAS thread: cosine µs", "floor µs", "ratio", "float32 µs"]  # fmt: skip
    return (
        "**The service's kernel, `clustering.most_similar`, as the related surface calls it "
        "(no HTTP or Redis).**\n\n" + _table(header, rows)
    )


def endpoint(result: dict[str, Any]) -> str:
    """Benchmark 3 table."""
    rows = []
    for name, r in result["runs"].items():
        ratio = result["ratio_vs_hello_world"].get(name)
        rows.append(
            [
                name,
                r["rps"],
                r["p50_ms"],
                r["p95_ms"],
                r["p99_ms"],
                r["failures"],
                r["server_cpu_ms_per_request"],
                r.get("redis_cpu_ms_per_request"),
                "" if ratio is None else f"{ratio:.1%}",
                "" if name not in result["met"] else _met(result["met"][name]),
            ]
        )
    header = ["run", "req/s", "p50 ms", "p95 ms", "p99 ms", "failures", "server CPU ms/req",
              "redis CPU ms/req", "of hello-world req/s", "≥ 50%"]  # fmt: skip
    table = _table(header, rows)
    figures = result.get("wrk")
    if figures is None:
        return table + "\n\nwrk: not installed (not root), skipped."
    cpu = figures.get("cpu_ms_per_request", {})
    wrk_rows = [
        ["hello-world", figures["hello_rps"], cpu.get("hello"), "", ""],
        ["recommend", figures["recommend_rps"], cpu.get("recommend"),
         f"{figures['recommend_ratio']:.1%}", _met(figures["recommend_ratio"] >= 0.5)],
        ["feedback x100 (events/s)", figures["feedback_events_s"], cpu.get("feedback_x100"),
         f"{figures['feedback_ratio']:.2f}x", _met(figures["feedback_ratio"] >= 5)],
    ]  # fmt: skip
    wrk_header = ["wrk -t1 -c16, median of rounds", "req/s", "server CPU ms/req",
                  "of hello-world", "goal"]  # fmt: skip
    wrk_table = _table(wrk_header, wrk_rows)
    return f"{table}\n\n{wrk_table}"


def ingest(result: dict[str, Any]) -> str:
    """Benchmark 4 table."""
    rows = [
        [
            r["appendfsync"],
            r["batch"],
            f"{r['events_per_s']:,}",
            r["requests_per_s"],
            r["p50_ms"],
            r["p99_ms"],
            r["failures"],
            f"{r['baseline_hincrby_per_s']:,.0f}",
            f"{r['ratio_vs_baseline']:.1%}",
            r["server_cpu_us_per_event"],
            r["redis_cpu_us_per_event"],
        ]
        for r in result["rows"]
    ]
    header = ["appendfsync", "batch", "events/s", "req/s", "p50 ms", "p99 ms", "failures",
              "HINCRBY pipeline/s", "ratio", "server CPU µs/event",
              "redis CPU µs/event"]  # fmt: skip
    met = ", ".join(f"{k}: {_met(v)}" for k, v in result["met"].items()) or "n/a (not run)"
    return _table(header, rows) + f"\n\n≥ 20k events/s at batch 100 — {met}."


def roundtrips(result: dict[str, Any]) -> str:
    """Benchmark 5 table."""
    rows = []
    for r in result["rows"]:
        rows.append(
            [
                f"{r['n_items']:,}",
                r["per_recommend_total"],
                ", ".join(f"{k} {v:g}" for k, v in r["per_recommend"].items()),
                r["per_feedback_batch_total"],
                ", ".join(f"{k} {v:g}" for k, v in r["per_feedback_batch"].items()),
            ]
        )
    header = ["items", "commands / recommend", "by command", "commands / feedback batch of 11",
              "by command"]  # fmt: skip
    return _table(header, rows) + f"\n\nDoes not grow with catalog size: {_met(result['met'])}."


def memory(result: dict[str, Any]) -> str:
    """Benchmark 6 table."""
    r, w = result["redis_bytes"], result["worker_rss_bytes"]
    mb = 1 << 20
    rows = [
        ["Redis: catalog (per item)", f"{r['items_total'] / mb:.1f} MiB ({r['per_item']:.0f} B)"],
        [
            "Redis: arm counts, 10k items x 8 clusters (+ global row)",
            f"{r['arms_per_10k_items_x_8_clusters'] / mb:.1f} MiB "
            f"({r['per_arm_counted']:.0f} B per arm)",
        ],
        [
            "Redis: per accepted feedback event (dedupe marker, user log)",
            f"{r['per_feedback_event']:.0f} B",
        ],
        *_served_rows(result),
        ["worker RSS: catalog delta", f"{w['items_delta'] / mb:.1f} MiB"],
        [
            "worker RSS: arms delta, 10k x 8 clusters",
            f"{w['arms_delta_per_10k_items_x_8_clusters'] / mb:.1f} MiB",
        ],
        ["worker RSS total / peak", f"{w['total'] / mb:.0f} / {w['peak'] / mb:.0f} MiB"],
    ]
    return _table(["what", "memory"], rows)


def _served_rows(result: dict[str, Any]) -> list[list[str]]:
    """Rows of the served-list and heavy-user figures (absent from older result files)."""
    r = result["redis_bytes"]
    if "per_served_list" not in r:
        return []
    heavy = result["heavy_user_bytes"]
    kib = 1 << 10
    names = {"events": "event ids", "seen": "seen", "lastclick": "last clicks"}
    parts = ", ".join(f"{name} {heavy[key] / kib:.1f}" for key, name in names.items())
    return [
        ["Redis: per served list of 10 (log key)", f"{r['per_served_list']:.0f} B"],
        ["Redis: per served list's outcome flags", f"{r['per_outcome_hash']:.0f} B"],
        [f"Redis: one user after {heavy['after_events']} events (KiB)", parts],
    ]


def propensity(result: dict[str, Any]) -> str:
    """Return the propensity table (bench.propensity renders it)."""
    from bench import propensity as bench_propensity

    return bench_propensity.table(result)


_SECTIONS = (
    ("ranker", "1. Core ranker (top-10, 20 seen items)", ranker),
    ("related_kernel", "2. Related-item candidates (clustering.most_similar)", related),
    ("propensity", "7. Propensities (bandits.inclusion_probabilities)", propensity),
    ("endpoint", "3. Recommend endpoint", endpoint),
    ("ingest", "4. Feedback ingest", ingest),
    ("round_trips", "5. Redis commands per call", roundtrips),
    ("memory", "6. Memory", memory),
)


def markdown(results: dict[str, Any]) -> str:
    """Return every table of a results dict, with the machine line on top."""
    parts = [f"Measured {machine_line(results['machine'])}."]
    for key, title, render in _SECTIONS:
        if key in results["benchmarks"]:
            body = results["benchmarks"][key]
            load = ""
            if "load_before" in body:
                load = f" (load {body['load_before']} → {body.get('load_after')})"
            parts.append(f"#### {title}{load}\n\n{render(body)}")
    return "\n\n".join(parts) + "\n"


def update_doc(doc: Path, tables: str) -> bool:
    """Replace the text between the bench markers of doc with tables; return whether done."""
    if not doc.exists():
        return False
    text = doc.read_text()
    pattern = re.compile(re.escape(START) + ".*?" + re.escape(END), re.S)
    if not pattern.search(text):
        return False
    doc.write_text(pattern.sub(lambda _: f"{START}\n{tables}{END}", text))
    return True
