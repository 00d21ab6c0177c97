"""The real processes chaos tests break: a redis-server of the test's own, `banditrec serve`,
and what /proc says about a process that is not our child (Linux)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import redis

from evaluation.child import HOST, free_port, stop, wait_until_ready
from service.embedded import redis_server_binary

READY_TIMEOUT_S = 60.0


def settle(
    condition: Callable[[], object], what: str | Callable[[], str], timeout_s: float = 30.0
) -> None:
    """Return once condition() is true; fail the test saying `what` (or what() says) did
    not happen in time."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            said = what if isinstance(what, str) else what()
            raise AssertionError(f"not within {timeout_s:.0f} s: {said}")
        time.sleep(0.05)


# -- processes that are not our children ------------------------------------------------


def _stat(pid: int) -> tuple[str, int, int] | None:
    """Return (state, ppid, start time) of a process, or None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name is in parentheses and may hold spaces: split after the last one.
    fields = text.rpartition(")")[2].split()
    return fields[0], int(fields[1]), int(fields[19])


def descendants(pid: int) -> dict[int, int]:
    """Return {pid: start time} of every live descendant of a process."""
    parents: dict[int, list[tuple[int, int]]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (stat := _stat(int(entry))) is not None and stat[0] != "Z":
            parents.setdefault(stat[1], []).append((int(entry), stat[2]))
    found: dict[int, int] = {}
    frontier = [pid]
    while frontier:
        for child, started in parents.get(frontier.pop(), []):
            found[child] = started
            frontier.append(child)
    return found


def start_time(pid: int) -> int | None:
    """Return when a process started (in clock ticks after boot), or None if it is gone."""
    stat = _stat(pid)
    return None if stat is None else stat[2]


def alive(pid: int, started: int | None) -> bool:
    """Return whether that process still runs (a zombie has exited; a reused pid is another)."""
    stat = _stat(pid)
    return started is not None and stat is not None and stat[0] != "Z" and stat[2] == started


def command_line(pid: int) -> str:
    """Return a process's command line, or '' once it is gone."""
    try:
        text = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except (FileNotFoundError, ProcessLookupError):
        return ""
    # redis-server rewrites its title in place and pads it with spaces.
    return text.strip()


def port_is_free(port: int) -> bool:
    """Return whether a server could bind the port now (as uvicorn does, SO_REUSEADDR)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


# -- a redis-server of the test's own ----------------------------------------------------


class RedisServer:
    """redis-server on 127.0.0.1:port with AOF (appendfsync always) in data_dir."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.paused = False

    @property
    def url(self) -> str:
        """Return the URL the service is pointed at with BANDITREC_REDIS_URL."""
        return f"redis://{HOST}:{self.port}/0"

    def client(self) -> redis.Redis:
        """Return a redis-py client of this server, to read raw keys."""
        return redis.Redis(host=HOST, port=self.port, decode_responses=True, socket_timeout=5)

    def start(self) -> RedisServer:
        """Start (or restart, replaying the AOF) and return once it answers PING."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        args = [
            str(redis_server_binary()),
            "--port", str(self.port),
            "--bind", HOST,
            "--dir", str(self.data_dir),
            "--appendonly", "yes",
            "--appendfsync", "always",
            "--save", "",
            "--daemonize", "no",
            "--logfile", str(self.data_dir / "redis.log"),
        ]  # fmt: skip
        self.process = subprocess.Popen(args, stdin=subprocess.DEVNULL)
        with self.client() as client:
            settle(lambda: self._answers(client), f"redis-server on port {self.port} answers")
        return self

    def _answers(self, client: redis.Redis) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"redis-server exited:\n{self.log()}")
        try:
            return bool(client.ping())
        except (redis.ConnectionError, redis.BusyLoadingError):
            return False

    def kill(self) -> None:
        """SIGKILL the server (nothing is flushed but what appendfsync always wrote)."""
        assert self.process is not None
        self.process.kill()
        self.process.wait()

    def pause(self) -> None:
        """SIGSTOP the server: connections stay open, nothing answers."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)
        self.paused = True

    def resume(self) -> None:
        """SIGCONT the server."""
        if self.process is not None and self.paused:
            self.process.send_signal(signal.SIGCONT)
        self.paused = False

    def stop(self) -> None:
        """Stop the server if it runs (resuming it first, or SIGTERM would wait)."""
        self.resume()
        if self.process is not None:
            stop(self.process)

    def log(self) -> str:
        """Return the server's log."""
        path = self.data_dir / "redis.log"
        return path.read_text() if path.exists() else ""


# -- banditrec serve -------------------------------------------------------------------


class Serve:
    """A `banditrec serve` child process (python -m cli serve) on 127.0.0.1:port."""

    def __init__(self, settings: dict[str, Any], port: int, log: Path) -> None:
        self.port = port
        self.log = log
        self.base_url = f"http://{HOST}:{port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("BANDITREC_")}
        env |= {f"BANDITREC_{name.upper()}": str(value) for name, value in settings.items()}
        env["BANDITREC_PORT"] = str(port)
        with log.open("ab") as sink:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "cli", "serve"],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        # Every process this serve started, with its start time: on a failed test the
        # fixture ends those that outlived it (and only those).
        self.seen: dict[int, int] = {}

    def wait_ready(self) -> Serve:
        """Return self once /readyz answers 200, noting the processes it started."""
        wait_until_ready(f"{self.base_url}/readyz", self.process, self.log, READY_TIMEOUT_S)
        self.tree()
        return self

    def tree(self) -> dict[int, int]:
        """Return {pid: start time} of the processes under serve now (and remember them)."""
        found = descendants(self.process.pid)
        self.seen |= found
        return found

    def client(self, **kwargs: Any) -> httpx.Client:
        """Return an HTTP client of this serve."""
        return httpx.Client(base_url=self.base_url, timeout=30, **kwargs)

    def kill(self) -> None:
        """SIGKILL the serve process alone, as an OOM kill does."""
        self.tree()
        self.process.kill()
        self.process.wait()

    def stop(self) -> int:
        """Stop serve (SIGTERM); return its exit code."""
        self.tree()
        return stop(self.process)

    def end_survivors(self) -> list[str]:
        """SIGKILL what this serve started and is still running; return their command lines."""
        survivors = [pid for pid, started in self.seen.items() if alive(pid, started)]
        lines = [command_line(pid) for pid in survivors]
        for pid in survivors:
            os.kill(pid, signal.SIGKILL)
        return lines
