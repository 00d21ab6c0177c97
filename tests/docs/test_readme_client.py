"""The README's Python client example works as pasted, against a live service."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest
import redis

from service.config import Settings
from tests.docs.test_readme_loop import README, README_ADDRESS, fenced_block_after
from tests.service.served import Served

pytestmark = pytest.mark.slow

MARKER = "<!-- tests/docs/test_readme_client.py runs the next block"


def test_readme_client_example_runs(redis_url: str, tmp_path: Path) -> None:
    redis.Redis.from_url(redis_url).flushdb()
    code = fenced_block_after(README.read_text(), MARKER)
    assert 10 <= len(code.splitlines()) <= 15, "the README's example stays short"
    printed = io.StringIO()
    settings = Settings(redis_url=redis_url, data_dir=tmp_path)
    with Served(settings) as served, contextlib.redirect_stdout(printed):
        exec(compile(code.replace(README_ADDRESS, served.address), "README.md", "exec"), {})
    lines = printed.getvalue().splitlines()
    assert lines[0] == "12 events counted"  # 3 users x (3 impressions + 1 click)
    assert "item_id=" in lines[1] and "ci95=" in lines[1]
    assert lines[2].startswith("['i")
