"""Real server processes for the HTTP benchmarks: `banditrec serve` and a hello-world app.

Everything binds to 127.0.0.1; every wait is bounded; a process we start is stopped by us.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from evaluation.child import HOST, free_port, stop, wait_until_ready

# The settings `banditrec serve` passes to uvicorn; the hello-world app gets the same.
UVICORN_FLAGS = ("--loop", "uvloop", "--http", "httptools")
_TICKS = os.sysconf("SC_CLK_TCK")
REPO = Path(__file__).resolve().parent.parent


def service_root() -> Path:
    """Return the source tree servers run from: BENCH_SERVICE_ROOT, else this repository.

    `python -m bench --service-tree REV` exports a commit there, so that a run measures
    one known version even while the working tree is being edited.
    """
    return Path(os.environ.get("BENCH_SERVICE_ROOT") or REPO)


def resolve_rev(rev: str) -> str:
    """Return the short commit hash a revision (HEAD, a branch, a hash) names."""
    return subprocess.run(
        ["git", "rev-parse", "--short", rev], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.strip()


def serve_command(root: Path) -> list[str]:
    """Return the arguments after `python` that start `banditrec serve` from a source tree."""
    # Revisions before the cli package ran the command from service.cli.
    return ["-m", "cli" if (root / "cli").is_dir() else "service.cli", "serve"]


def export_tree(rev: str, work: Path) -> Path:
    """Export the runtime packages (cli/ where the revision has it) of a revision; return it."""
    target = work / f"tree-{resolve_rev(rev)}"
    target.mkdir(parents=True)
    has_cli = subprocess.run(["git", "cat-file", "-e", f"{rev}:cli"], cwd=REPO).returncode == 0
    archive = subprocess.run(
        ["git", "archive", rev, "service", "bandits", "clustering", *(["cli"] if has_cli else [])],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return target


@dataclass
class Server:
    """A started server process and where it answers."""

    process: subprocess.Popen[bytes]
    base_url: str
    log: Path
    data_dir: Path | None = None

    @property
    def redis_url(self) -> str:
        """Return the embedded Redis URL (unix socket in the data folder)."""
        assert self.data_dir is not None
        from service.embedded import EmbeddedRedis

        return EmbeddedRedis(self.data_dir).url

    def tree(self) -> list[int]:
        """Return the pids of the server and all its descendants (workers, redis-server)."""
        return _descendants(self.process.pid)

    def redis_pid(self) -> int | None:
        """Return the pid of the embedded redis-server child, if any."""
        for pid in self.tree():
            with contextlib.suppress(OSError):
                if "redis-server" in Path(f"/proc/{pid}/cmdline").read_bytes().decode():
                    return pid
        return None

    def python_pids(self) -> list[int]:
        """Return the pids of the server's Python processes (supervisor and workers)."""
        redis = self.redis_pid()
        return [p for p in self.tree() if p != redis]


def _descendants(pid: int) -> list[int]:
    found = [pid]
    for current in found:
        for task in Path(f"/proc/{current}/task").glob("*"):
            with contextlib.suppress(OSError):
                found += [int(c) for c in (task / "children").read_text().split()]
    return list(dict.fromkeys(found))


def cpu_seconds(pids: list[int]) -> float:
    """Return user + system CPU seconds used so far by these processes (gone ones count 0)."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total / _TICKS


def rss_bytes(pid: int) -> dict[str, int]:
    """Return VmRSS and VmHWM (peak) of a process, in bytes."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0]) * 1024
    return out


def _clean_env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BANDITREC_")}
    env["PYTHONUNBUFFERED"] = "1"
    # The service tree first (`-m cli` resolves from the working directory too).
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys([str(service_root()), str(REPO)]))
    return env | extra


@contextlib.contextmanager
def banditrec(
    data_dir: Path,
    *,
    workers: int = 1,
    appendfsync: str = "always",
    log_level: str = "warning",
    snapshot_ms: int = 1000,
    extra_env: dict[str, str] | None = None,
    port: int | None = None,
) -> Iterator[Server]:
    """Run `banditrec serve` with an embedded Redis in data_dir until the block exits."""
    port = port or free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    log = data_dir.parent / f"{data_dir.name}-serve.log"
    env = _clean_env(
        {
            "BANDITREC_DATA_DIR": str(data_dir),
            "BANDITREC_HOST": HOST,
            "BANDITREC_PORT": str(port),
            "BANDITREC_WORKERS": str(workers),
            "BANDITREC_REDIS_APPENDFSYNC": appendfsync,
            "BANDITREC_LOG_LEVEL": log_level,
            "BANDITREC_SNAPSHOT_MS": str(snapshot_ms),
            **(extra_env or {}),
        }
    )
    with log.open("ab") as sink:
        process = subprocess.Popen(
            [sys.executable, *serve_command(service_root())],
            env=env,
            cwd=service_root(),
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    server = Server(process, f"http://{HOST}:{port}", log, data_dir)
    try:
        wait_until_ready(f"{server.base_url}/readyz", process, log)
        yield server
    finally:
        stop(process)


@contextlib.contextmanager
def hello_world(log_dir: Path, *, log_level: str = "warning") -> Iterator[Server]:
    """Run bench.hello under uvicorn with the same loop/http/worker settings as banditrec."""
    with _uvicorn_app("bench.hello:create_app", log_dir / "hello-serve.log", {}, log_level) as app:
        yield app


@contextlib.contextmanager
def floor(
    log_dir: Path, redis_url: str, *, read: bool = True, log_level: str = "warning"
) -> Iterator[Server]:
    """Run bench.floor (read a user, answer a constant list) against a seeded Redis."""
    env = {"BANDITREC_REDIS_URL": redis_url, "BENCH_FLOOR_READ": "1" if read else "0"}
    with _uvicorn_app("bench.floor:create_app", log_dir / "floor-serve.log", env, log_level) as app:
        yield app


@contextlib.contextmanager
def _uvicorn_app(factory: str, log: Path, env: dict[str, str], log_level: str) -> Iterator[Server]:
    port = free_port()
    args = [
        sys.executable, "-m", "uvicorn", factory, "--factory",
        "--host", HOST, "--port", str(port), "--workers", "1",
        "--log-level", log_level, *UVICORN_FLAGS,
    ]  # fmt: skip
    with log.open("ab") as sink:
        process = subprocess.Popen(
            args, env=_clean_env(env), cwd=REPO, stdout=sink, stderr=subprocess.STDOUT
        )
    server = Server(process, f"http://{HOST}:{port}", log)
    try:
        wait_until_ready(f"{server.base_url}/healthz", process, log)
        yield server
    finally:
        stop(process)
