"""Profile the recommend and feedback hot paths of a real server under locust load.

The server runs under pyinstrument (a sampling profiler, 1 ms interval, main thread:
uvicorn with one worker serves from it); the profile is summarised per function so the
findings can quote seconds and shares instead of a picture.
"""

from __future__ import annotations

import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

from bench import loadgen, machine, seed, server
from evaluation.child import free_port, stop, wait_until_ready

# Functions whose inclusive time we report by name (substring of "function  file").
_WATCH = (
    "Recommender.recommend",
    "Feedback.record",
    "Store.read_users",
    "Store.log_recommendation",
    "Store.record_feedback",
    "Store.known_items",
    "Store.read_rec_logs",
    "Users.current",
    "Users.seen_multipliers",
    "Recommender._candidates",
    "inclusion_probabilities",
    "rank  bandits",
    "rank_trusted  bandits",
    "serialize_response",
    "request_body_to_args",
    "_validate",
    "Request.json",
    "Request.body",
    "BodySizeLimit.__call__",
    "RequestMetrics.__call__",
    "Pipeline.execute",
    "Snapshots.refresh",
    "run_sync_in_worker_thread",
    "solve_dependencies",
)


def _key(frame: Any) -> str:
    path = (frame.file_path_short or frame.file_path or "").replace("\\", "/")
    name = f"{frame.class_name}.{frame.function}" if frame.class_name else frame.function
    return f"{name}  {path}"


def summarise(session_path: Path, top: int = 25) -> dict[str, Any]:
    """Return self and inclusive seconds per function of a pyinstrument session file."""
    from pyinstrument.session import Session

    session = Session.load(str(session_path))
    root = session.root_frame()
    self_s: dict[str, float] = defaultdict(float)
    inclusive_s: dict[str, float] = defaultdict(float)

    def walk(frame: Any, open_keys: frozenset[str]) -> None:
        key = _key(frame)
        real = [c for c in frame.children if not c.is_synthetic]
        # Synthetic children ([self], [await]) are this frame's own samples.
        self_s[key] += frame.time - sum(c.time for c in real)
        if key not in open_keys:
            inclusive_s[key] += frame.time
        for child in real:
            walk(child, open_keys | {key})

    if root is not None:
        walk(root, frozenset())
    duration = session.duration
    ranked_self = sorted(self_s.items(), key=lambda kv: -kv[1])[:top]
    watched = {
        name: round(sum(v for k, v in inclusive_s.items() if name in k), 3) for name in _WATCH
    }
    return {
        "duration_s": round(duration, 2),
        "cpu_s": round(session.cpu_time, 2),
        "top_self_s": [[k, round(v, 3)] for k, v in ranked_self],
        "inclusive_s": watched,
    }


def _profiled(data: Path, label: str) -> tuple[subprocess.Popen[bytes], str, Path]:
    port = free_port()
    env = server._clean_env(
        {
            "BANDITREC_DATA_DIR": str(data),
            "BANDITREC_PORT": str(port),
            "BANDITREC_LOG_LEVEL": "warning",
        }
    )
    session = data.parent / f"profile-{label}.pyisession"
    log = data.parent / f"profile-{label}.log"
    with log.open("ab") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "pyinstrument", "-o", str(session), "-r", "pyisession",
             *server.serve_command(server.service_root())],
            env=env, cwd=server.service_root(), stdout=sink, stderr=subprocess.STDOUT,
        )  # fmt: skip
    base = f"http://{server.HOST}:{port}"
    wait_until_ready(f"{base}/readyz", process, log)
    return process, base, session


def run(
    work: Path,
    template: Path,
    out: Path,
    *,
    n_items: int,
    n_users: int,
    users: int = 16,
    duration_s: float = 15.0,
    batches: tuple[int, ...] = (100, 1000),
    out_prefix: str = "",
) -> dict[str, Any]:
    """Profile recommend, then feedback batches, each under its own locust run.

    Writes the rendered call trees to ``out`` (profile-<label>.txt); returns summaries.
    """
    data = seed.copy_data(template, work / "profile-data")
    results: dict[str, Any] = {}
    plans = [("recommend", {"BENCH_MODE": "recommend"})] + [
        (f"feedback-x{b}", {"BENCH_MODE": "feedback", "BENCH_BATCH": str(b)}) for b in batches
    ]
    for label, env in plans:
        process, base, session = _profiled(data, label)
        try:
            load = loadgen.run_locust(
                base,
                users=users,
                duration_s=duration_s,
                csv_prefix=work / f"profile-{label}",
                env={"BENCH_USERS": str(n_users), "BENCH_ITEMS": str(n_items), **env},
            )
        finally:
            stop(process, grace_s=60)  # pyinstrument writes its session on the way out
        summary = summarise(session) if session.exists() else {}
        text = out / f"{out_prefix}profile-{label}.txt"
        if session.exists():
            rendered = subprocess.run(
                [sys.executable, "-m", "pyinstrument", "--load", str(session), "-r", "text",
                 "--no-color", "-p", "processor_options.filter_threshold=0.005"],
                capture_output=True, text=True, timeout=120,
            ).stdout  # fmt: skip
            text.write_text(rendered)
            session.unlink()
        results[label] = {"load": load, "profile": summary, "tree": text.name}
    return {
        "what": (
            f"banditrec serve (1 worker, appendfsync always) under pyinstrument while locust "
            f"({users} users, no think time, {duration_s:.0f} s) sends recommend, then feedback "
            f"batches of {batches}; seconds are wall-clock samples of the server's main thread "
            "(awaits on Redis count to the awaiting frame), whole session incl. startup."
        ),
        "runs": results,
        "load_after": machine.load(),
    }
