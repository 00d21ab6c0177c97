"""The real `banditrec serve` process with its embedded Redis, over HTTP, across a restart."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from evaluation.child import free_port, stop, wait_until_ready

pytestmark = pytest.mark.slow


def _serve(data_dir: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BANDITREC_")}
    env |= {"BANDITREC_DATA_DIR": str(data_dir), "BANDITREC_PORT": str(port)}
    with log.open("ab") as sink:
        return subprocess.Popen(
            [sys.executable, "-m", "cli", "serve"],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )


def _stop(process: subprocess.Popen[bytes]) -> None:
    # Exit 0 means uvicorn drained and the embedded Redis was stopped by us, not orphaned.
    assert stop(process) == 0


def test_serve_learns_and_keeps_counts_across_restart(tmp_path):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    data_dir = tmp_path / "data"
    log = tmp_path / "serve.log"
    process = _serve(data_dir, port, log)
    try:
        wait_until_ready(f"{base}/readyz", process, log, timeout_s=30)
        with httpx.Client(base_url=base, timeout=10) as http:
            items = {"items": [{"item_id": f"i{n}", "embedding": [1.0, n]} for n in range(5)]}
            assert http.post("/v1/items/bulk", json=items).status_code == 200
            rec = http.post("/v1/recommend", json={"user_id": "u1", "k": 3}).json()
            shown = [i["item_id"] for i in rec["items"]]
            assert len(shown) == 3
            events = [
                {"event_id": f"imp-{i}", "type": "impression", "user_id": "u1", "item_id": i,
                 "rec_id": rec["rec_id"]}
                for i in shown
            ] + [{"event_id": "clk-0", "type": "click", "user_id": "u1", "item_id": shown[0],
                  "rec_id": rec["rec_id"]}]  # fmt: skip
            assert http.post("/v1/feedback", json={"events": events}).json() == {
                "accepted": 4,
                "duplicates": 0,
                "unknown_rec_ids": [],
            }
    finally:
        _stop(process)
    assert (data_dir / "banditrec.aof").exists()

    process = _serve(data_dir, port, log)
    try:
        wait_until_ready(f"{base}/readyz", process, log, timeout_s=30)
        with httpx.Client(base_url=base, timeout=10) as http:
            arm = http.get(f"/v1/arms/{shown[0]}").json()
            assert (arm["global"]["impressions"], arm["global"]["clicks"]) == (1, 1)
            assert http.get("/v1/users/u1").json()["recent_clicks"] == [shown[0]]
            # The event ids are remembered across the restart too.
            replay = http.post("/v1/feedback", json={"events": events}).json()
            assert replay == {"accepted": 0, "duplicates": 4, "unknown_rec_ids": []}
            assert http.get("/v1/items/i4").json()["embedding"] == [1.0, 4.0]
    finally:
        _stop(process)
