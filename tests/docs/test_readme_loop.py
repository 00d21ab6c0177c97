"""The README's quick-start loop works as pasted, against a live `banditrec serve`."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis

from evaluation.child import free_port, stop, wait_until_ready
from tests.service.helpers import exported_lists

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
# The README marks its tested block with this comment, invisible when rendered.
MARKER = "<!-- tests/docs/test_readme_loop.py runs the next block"
README_ADDRESS = "127.0.0.1:8000"


def fenced_block_after(text: str, marker: str) -> str:
    """Return the body of the first fenced code block after the marker."""
    start = text.index(marker)
    opening = re.compile(r"^```[a-z]*\n", re.MULTILINE).search(text, start)
    assert opening is not None, f"no code block after {marker!r}"
    end = text.index("\n```", opening.end())
    return text[opening.end() : end + 1]


def json_values(output: str) -> list[Any]:
    """Return the JSON values printed one after another (curl adds no separator of its own)."""
    decoder, values, at = json.JSONDecoder(), [], 0
    while True:
        while at < len(output) and output[at].isspace():
            at += 1
        if at == len(output):
            return values
        value, at = decoder.raw_decode(output, at)
        values.append(value)


@dataclass
class Service:
    """A live `banditrec serve` on a free port."""

    base: str
    address: str

    def get(self, path: str) -> str:
        with urllib.request.urlopen(self.base + path, timeout=10) as response:
            return str(response.read().decode())


@pytest.fixture
def service(redis_url: str, tmp_path: Path) -> Iterator[Service]:
    """Start `banditrec serve` (the pyproject entry point) against the test Redis, flushed."""
    redis.Redis.from_url(redis_url).flushdb()
    module, _, function = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "scripts"
    ]["banditrec"].partition(":")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("BANDITREC_")}
    env |= {"BANDITREC_REDIS_URL": redis_url, "BANDITREC_DATA_DIR": str(tmp_path / "data")}
    log = tmp_path / "serve.log"
    command = f"import sys; from {module} import {function}; sys.exit({function}())"
    with log.open("ab") as sink:
        process = subprocess.Popen(
            [sys.executable, "-c", command, "serve", "--port", str(port)],
            env=env,
            cwd=tmp_path,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    address = f"127.0.0.1:{port}"
    try:
        wait_until_ready(f"http://{address}/readyz", process, log, timeout_s=60)
        yield Service(f"http://{address}", address)
    finally:
        assert stop(process) == 0, log.read_text()


def run_block(block: str, service: Service) -> list[Any]:
    """Run a README block against the service as a user's shell would; return what it printed."""
    script = block.replace(README_ADDRESS, service.address)
    # As with an activated .venv: `python3` is this interpreter (3.11 or later).
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return json_values(done.stdout)


def check_round(outputs: list[Any], service: Service, rounds: int) -> None:
    """Assert that one run of the loop taught the service what its feedback said."""
    upserted, rec, first, again, arms, user = outputs
    assert upserted == {"upserted": 3, "dim": 3}
    shown = [item["item_id"] for item in rec["items"]]
    assert len(shown) == 2 and set(shown) <= {"i1", "i2", "i3"}, rec
    sent = len(shown) + 1  # an impression of each served item, a click on the first
    assert first == {"accepted": sent, "duplicates": 0, "unknown_rec_ids": []}, first
    assert again == {"accepted": 0, "duplicates": sent, "unknown_rec_ids": []}, again
    # The feedback named the list it belongs to: its outcomes are on the logged list.
    logged = exported_lists(service.get("/v1/admin/logs/export"))
    (line,) = [entry for entry in logged if entry["rec_id"] == rec["rec_id"]]
    assert [(i["item_id"], i["impression"], i["click"]) for i in line["items"]] == [
        (shown[0], True, True),
        (shown[1], True, False),
    ]
    global_arms = arms["arms"]
    assert sum(a["impressions"] for a in global_arms) == 2 * rounds
    assert sum(a["clicks"] for a in global_arms) == rounds
    assert user["recent_clicks"][0] == shown[0]
    assert len(user["recent_clicks"]) == rounds


def test_quick_start_is_the_two_make_commands():
    text = README.read_text()
    block = fenced_block_after(text, "## Quick start")
    commands = [line.split("#")[0].strip() for line in block.splitlines()]
    assert commands == ["make run", "make test"]
    assert "BANDITREC_PORT" in text and "--port" in text


def test_readme_loop_works_as_pasted(service):
    block = fenced_block_after(README.read_text(), MARKER)
    assert README_ADDRESS in block
    check_round(run_block(block, service), service, rounds=1)
    # Pasted again: a new list and new events, counted as such.
    check_round(run_block(block, service), service, rounds=2)


def test_the_check_fails_on_a_loop_that_does_not_carry_the_list(service):
    """The README's old loop: items and a literal REC_ID written into the feedback."""
    block = fenced_block_after(README.read_text(), MARKER)
    hard_coded = json.dumps(
        {
            "events": [
                {"event_id": f"ev-{n}", "type": kind, "user_id": "u42", "item_id": item,
                 "rec_id": "REC_ID"}
                for n, (kind, item) in enumerate(
                    [("impression", "i2"), ("impression", "i1"), ("click", "i2")]
                )
            ]
        }
    )  # fmt: skip
    broken, replaced = re.subn(
        r"^EVENTS=\$\(.*?'\)$", f"EVENTS='{hard_coded}'", block, flags=re.MULTILINE | re.DOTALL
    )
    assert replaced == 1, "the README's loop no longer builds EVENTS as this test expects"
    with pytest.raises(AssertionError):
        check_round(run_block(broken, service), service, rounds=1)
