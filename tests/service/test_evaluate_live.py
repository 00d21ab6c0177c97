"""`banditrec evaluate --arms-url` against a live `banditrec serve` that needs an API key."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest

from evaluation.child import free_port, stop, wait_until_ready
from tests.evaluation.commands import run

pytestmark = pytest.mark.slow

KEY = "evaluate-test-key"


def _env(store: dict[str, str]) -> dict[str, str]:
    """Return this process's environment without BANDITREC_ settings, plus the store's."""
    return {k: v for k, v in os.environ.items() if not k.startswith("BANDITREC_")} | store


def _serve(store: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    env = _env(store) | {"BANDITREC_PORT": str(port), "BANDITREC_API_KEY": KEY}
    with log.open("ab") as sink:
        return subprocess.Popen(
            [sys.executable, "-m", "cli", "serve"], env=env, stdout=sink, stderr=subprocess.STDOUT
        )


def _traffic(http: httpx.Client) -> None:
    """Serve 40 lists to 8 users; users click the first item they are shown every other time."""
    items = [{"item_id": f"i{n}", "embedding": [1.0, n / 10]} for n in range(12)]
    assert http.post("/v1/items/bulk", json={"items": items}).status_code == 200
    events = []
    for n in range(40):
        user = f"u{n % 8}"
        rec = http.post("/v1/recommend", json={"user_id": user, "k": 3}).json()
        for item in rec["items"]:
            events.append({"event_id": f"{rec['rec_id']}:i:{item['item_id']}",
                           "type": "impression", "user_id": user,
                           "item_id": item["item_id"], "rec_id": rec["rec_id"]})  # fmt: skip
        if n % 2:
            first = rec["items"][0]["item_id"]
            events.append({"event_id": f"{rec['rec_id']}:c", "type": "click", "user_id": user,
                           "item_id": first, "rec_id": rec["rec_id"]})  # fmt: skip
    answer = http.post("/v1/feedback", json={"events": events})
    assert answer.status_code == 200, answer.text


def test_evaluate_reads_a_live_services_arms_with_its_key(redis_url, tmp_path, capsys):
    # A prefix of its own: the session's Redis is shared with other tests.
    store = {"BANDITREC_REDIS_URL": redis_url, "BANDITREC_KEY_PREFIX": f"ev{uuid.uuid4().hex[:8]}"}
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    process = _serve(store, port, log)
    try:
        wait_until_ready(f"{base}/readyz", process, log, timeout_s=60)
        with httpx.Client(base_url=base, timeout=10, headers={"X-API-Key": KEY}) as http:
            _traffic(http)
            export = http.get("/v1/admin/logs/export")
            assert export.status_code == 200, export.text
        logs = tmp_path / "export.ndjson"
        logs.write_text(export.text)
        out = tmp_path / "ope.json"
        common = ["evaluate", "--logs", str(logs), "--policy", "cluster-ts", "--bootstrap", "30"]

        # The base URL and the /v1/arms URL both name the service.
        results = []
        for url in (base, f"{base}/v1/arms", f"{base}/"):
            code = run([*common, "--arms-url", url, "--api-key", KEY, "--out", str(out)])
            assert code == 0, capsys.readouterr().err
            results.append(json.loads(out.read_text()))
            assert results[-1]["lists"] == 40
            assert 0.0 <= results[-1]["estimates"]["snips"]["value"] <= 1.0

        # The service's own state file (banditrec export) is a state evaluate reads: the
        # same counts as the live arms, so the same estimate from the same seed.
        state = tmp_path / "state.json"
        done = subprocess.run(
            [sys.executable, "-m", "cli", "export", "-o", str(state)],
            env=_env(store), capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert run([*common, "--arms", str(state), "--out", str(out)]) == 0
        assert json.loads(out.read_text())["estimates"] == results[0]["estimates"]

        # Without the key: a one-line error naming the answer, exit 2, no traceback.
        capsys.readouterr()
        assert run([*common, "--arms-url", base]) == 2
        err = capsys.readouterr().err
        assert "answered 401" in err and "Traceback" not in err, err
    finally:
        assert stop(process) == 0, log.read_text()

    # A service out of reach (it has stopped) is named, not a traceback.
    assert run([*common, "--arms-url", base, "--api-key", KEY]) == 2
    err = capsys.readouterr().err
    assert "cannot read the arms at" in err and "Traceback" not in err, err
