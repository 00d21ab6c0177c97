"""Shared fixtures: one real Redis server per test session, flushed before each test.

With BANDITREC_REDIS_URL set, tests use (and FLUSH) that server instead of an embedded one.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from service.embedded import EmbeddedRedis


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Return the URL of a real Redis server for the whole session."""
    external = os.environ.get("BANDITREC_REDIS_URL")
    if external:
        yield external
        return
    data_dir: Path = tmp_path_factory.mktemp("redis")
    with EmbeddedRedis(data_dir, appendfsync="everysec") as server:
        yield server.url
