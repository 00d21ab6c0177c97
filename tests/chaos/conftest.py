"""Fixtures of the chaos layer: a redis-server the test may kill, and `serve` processes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from evaluation.child import free_port
from tests.chaos.processes import RedisServer, Serve


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """Return a started redis-server of this test's own (AOF always), stopped afterwards."""
    server = RedisServer(tmp_path / "redis").start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def start_serve(tmp_path: Path) -> Iterator[Callable[..., Serve]]:
    """Return a factory that starts `banditrec serve` with BANDITREC_* settings and waits
    until it is ready; whatever it started is ended after the test, orphans included."""
    started: list[Serve] = []

    def start(port: int | None = None, **settings: Any) -> Serve:
        settings.setdefault("data_dir", tmp_path / "data")
        serve = Serve(settings, port or free_port(), tmp_path / f"serve-{len(started)}.log")
        started.append(serve)
        return serve.wait_ready()

    yield start
    for serve in started:
        serve.stop()
        serve.end_survivors()
