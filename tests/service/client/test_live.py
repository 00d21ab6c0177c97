"""The blocking Client against a real `banditrec serve` process with an API key."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from evaluation.child import free_port, stop, wait_until_ready
from service.client import Client, NotFound, Unauthorized, served_events

pytestmark = pytest.mark.slow


def test_the_loop_through_the_client(tmp_path: Path) -> None:
    port, log = free_port(), tmp_path / "serve.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("BANDITREC_")}
    env |= {"BANDITREC_DATA_DIR": str(tmp_path / "data"), "BANDITREC_PORT": str(port),
            "BANDITREC_API_KEY": "s3cret"}  # fmt: skip
    with log.open("ab") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "cli", "serve"], env=env, stdout=sink, stderr=subprocess.STDOUT
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(f"{base}/readyz", process, log, timeout_s=30)
        with Client(base, api_key="s3cret", timeout_s=5) as client:
            items = [{"item_id": f"i{n}", "embedding": [1.0, n / 10]} for n in range(6)]
            assert client.put_items(items).upserted == 6
            with client.batcher(interval_s=0.1) as batcher:
                for user in ("u1", "u2", "u3"):
                    rec = client.recommend(user, k=3)
                    batcher.extend(served_events(rec, clicked=[rec.items[0].item_id]))
            assert (batcher.accepted, batcher.duplicates) == (12, 0)
            assert sum(p.clicks for p in client.stats().policies.values()) == 3
            assert len(client.user("u1").recent_clicks) == 1
            assert client.fit_clusters(k=2, seed=0).gen == 1
            with pytest.raises(NotFound):
                client.item_arms("missing")
        with Client(base, api_key="wrong") as stranger, pytest.raises(Unauthorized) as refused:
            stranger.recommend("u1")
        assert refused.value.code == "unauthorized" and refused.value.field == "X-API-Key"
    finally:
        assert stop(process) == 0, log.read_text()
