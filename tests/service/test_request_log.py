"""Structured logs: a JSON line per request with its id (echoed in X-Request-ID), events for
fits, reloads and Redis outages (once per outage), and `banditrec serve` logging so."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx
import pytest

from evaluation.child import free_port, stop, wait_until_ready
from service.config import Settings
from service.embedded import EmbeddedRedis
from service.logs import JsonFormatter, TextFormatter, configure_logging, log_event
from service.main import create_app
from tests.service.clusters import two_taste_world
from tests.service.helpers import add_items, event, send

pytestmark = pytest.mark.anyio


class Lines(logging.Handler):
    """Keeps every record formatted as the service formats it, parsed back from JSON."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(JsonFormatter())
        self.lines: list[dict] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))

    def events(self, name: str) -> list[dict]:
        return [line for line in self.lines if line.get("event") == name]


@pytest.fixture
def logged() -> Iterator[Lines]:
    """Capture the banditrec loggers' records at every level during the test."""
    handler = Lines()
    logger = logging.getLogger("banditrec")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


async def test_a_request_is_logged_with_its_id_route_status_and_latency(svc, logged):
    await add_items(svc.client, ["a"])
    response = await svc.client.get("/v1/arms/a", headers={"X-Request-ID": "trace-42.a:b"})
    assert response.status_code == 200
    assert response.headers["X-Request-ID"] == "trace-42.a:b"
    (line,) = [r for r in logged.events("request") if r["request_id"] == "trace-42.a:b"]
    assert line["logger"] == "banditrec.http"
    assert line["level"] == "info"
    assert (line["method"], line["route"], line["status"]) == ("GET", "/v1/arms/{item_id}", 200)
    assert isinstance(line["latency_ms"], float) and line["latency_ms"] >= 0
    assert line["ts"].endswith("Z") and isinstance(line["pid"], int)


@pytest.mark.parametrize(
    "given", [None, "", "x" * 129, "has space", "new\nline", "ünïcode", "semi;colon"]
)
async def test_an_absent_or_unsafe_request_id_is_replaced_by_a_new_one(svc, logged, given):
    headers = {} if given is None else {"X-Request-ID": given.encode("utf-8")}
    response = await svc.client.get("/v1/items/none", headers=headers)
    assert response.status_code == 404
    echoed = response.headers["X-Request-ID"]
    assert echoed != given and len(echoed) == 32 and int(echoed, 16) >= 0
    (line,) = logged.events("request")
    assert (line["request_id"], line["status"], line["route"]) == (
        echoed,
        404,
        "/v1/items/{item_id}",
    )


async def test_every_response_carries_an_id_even_a_refused_body_and_an_unknown_path(svc, logged):
    too_big = await svc.client.post("/v1/feedback", content=b"x" * (2 << 20))
    unknown = await svc.client.get("/no/such/path", headers={"X-Request-ID": "r-1"})
    assert too_big.status_code == 413 and len(too_big.headers["X-Request-ID"]) == 32
    assert unknown.status_code == 404 and unknown.headers["X-Request-ID"] == "r-1"
    routes = {(line["route"], line["status"]) for line in logged.events("request")}
    assert routes == {("unmatched", 413), ("unmatched", 404)}


async def test_probes_are_logged_at_debug(svc, logged):
    await svc.client.get("/healthz")
    await svc.client.get("/metrics")
    assert {line["level"] for line in logged.events("request")} == {"debug"}


async def test_lines_logged_while_serving_a_request_carry_its_id(svc, logged):
    await svc.client.post(
        "/v1/admin/clusters/fit", json={"k": 2}, headers={"X-Request-ID": "fit-1"}
    )  # too few users: refused, but the engine logged nothing of its own
    await two_taste_world(svc)
    fit = await svc.client.post(
        "/v1/admin/clusters/fit", json={"k": 2, "seed": 3}, headers={"X-Request-ID": "fit-2"}
    )
    assert fit.status_code == 200
    (fitted,) = logged.events("clusters_fitted")
    assert fitted["request_id"] == "fit-2"
    assert (fitted["gen"], fitted["k"], fitted["n_users"], fitted["seed"]) == (1, 2, 40, 3)
    assert sorted(fitted["sizes"]) == [20, 20]
    reloads = [line for line in logged.events("snapshot_reloaded") if line["reason"] == "clusters"]
    assert reloads and reloads[-1]["gen"] == 1 and reloads[-1]["k"] == 2


async def test_a_reload_of_every_count_is_logged_with_its_reason(start, logged):
    svc = await start(snapshot_ms=600_000, stale_after_s=600)  # only our refreshes
    assert [line["reason"] for line in logged.events("snapshot_reloaded")] == ["start"]
    await add_items(svc.client, ["a", "b"])
    await svc.refresh()
    await send(svc.client, [event("impression", "u", "a")])
    await svc.refresh()  # follows the change stream: no full reload
    reasons = [line["reason"] for line in logged.events("snapshot_reloaded")]
    assert reasons == ["start", "catalog"]
    assert logged.events("snapshot_reloaded")[-1]["items"] == 2


async def test_a_redis_outage_is_logged_once_and_so_is_the_recovery(tmp_path, logged):
    server = EmbeddedRedis(tmp_path / "outage", appendfsync="everysec").start()
    settings = Settings(redis_url=server.url, snapshot_ms=20, redis_timeout_s=0.5)
    app = create_app(settings, seed=1)
    try:
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://t"
            ) as client,
        ):
            await add_items(client, ["a", "b"])
            snapshots = app.state.engine.snapshots
            registry = app.state.metrics.registry
            server.stop()
            for _ in range(3):
                assert (await send(client, [event("click", "u", "a")])).status_code == 503
                assert (await client.get("/metrics")).status_code == 200
            # Wait for a few failed refreshes of the background loop.
            while registry.get_sample_value("banditrec_snapshot_failures_total") < 3:
                await anyio.sleep(0.02)
            assert snapshots.outage.down
            server.start()
            while snapshots.outage.down:
                await anyio.sleep(0.02)
            assert (await send(client, [event("click", "u", "a")])).status_code == 200
    finally:
        server.stop()
    down, up = logged.events("redis_unavailable"), logged.events("redis_recovered")
    assert len(down) == 1 and down[0]["level"] == "warning" and down[0]["error"]
    assert len(up) == 1 and up[0]["down_s"] > 0
    assert not [line for line in logged.lines if line["level"] in ("warning", "error")][1:]


def test_log_event_lines_in_both_formats():
    record = logging.LogRecord("banditrec", logging.INFO, __file__, 1, "state_imported", (), None)
    record.event = "state_imported"
    record.fields = {"prefix": "br", "items": 2, "note": "two words", "sizes": [1, 2]}
    line = json.loads(JsonFormatter().format(record))
    assert line["event"] == "state_imported" and line["message"] == "state_imported"
    assert (line["prefix"], line["items"], line["sizes"]) == ("br", 2, [1, 2])
    text = TextFormatter().format(record)
    assert ' INFO    banditrec: state_imported prefix=br items=2 note="two words" sizes=[1,2] ' in (
        text
    )


def test_the_level_setting_governs_our_loggers_and_uvicorns(capsys):
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        configure_logging("warning", "json")
        logging.getLogger("uvicorn.error").info("hidden")
        log_event("hidden_too")
        logging.getLogger("uvicorn.error").warning("shown")
        logging.getLogger("uvicorn.access").warning("never: RequestLog logs requests")
        log_event("shown_too", level=logging.ERROR, n=1)
        lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    finally:
        root.handlers[:], _ = saved
        root.setLevel(saved[1])
    assert [(line["logger"], line["message"]) for line in lines] == [
        ("uvicorn.error", "shown"),
        ("banditrec", "shown_too"),
    ]


@pytest.mark.slow
def test_serve_writes_json_lines_from_every_worker_and_no_access_log(tmp_path: Path):
    port = free_port()
    config = tmp_path / "banditrec.toml"
    config.write_text(f'port = {port}\nworkers = 2\nlog_level = "info"\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("BANDITREC_")}
    env |= {"BANDITREC_CONFIG": str(config), "BANDITREC_DATA_DIR": str(tmp_path / "data")}
    log = tmp_path / "serve.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "cli", "serve"], env=env, stdout=sink, stderr=subprocess.STDOUT
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(f"{base}/readyz", process, log, timeout_s=60)
        with httpx.Client(base_url=base, timeout=10) as http:
            items = {"items": [{"item_id": f"i{n}"} for n in range(3)]}
            created = http.post("/v1/items/bulk", json=items, headers={"X-Request-ID": "seed-1"})
            assert created.headers["X-Request-ID"] == "seed-1"
            for n in range(6):
                rec = http.post("/v1/recommend", json={"user_id": f"u{n}", "k": 2})
                assert rec.status_code == 200
            scraped = http.get("/metrics").text
    finally:
        assert stop(process) == 0
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    requests = [line for line in lines if line.get("event") == "request"]
    (seeded,) = [line for line in requests if line["request_id"] == "seed-1"]
    assert (seeded["route"], seeded["status"], seeded["method"]) == ("/v1/items/bulk", 200, "POST")
    assert len([line for line in requests if line["route"] == "/v1/recommend"]) == 6
    # uvicorn's own lines come through the same formatter, from both workers and the parent.
    uvicorn = [line for line in lines if line["logger"].startswith("uvicorn")]
    assert {"Application startup complete."} <= {line["message"] for line in uvicorn}
    assert (
        len(
            {line["pid"] for line in lines if line["message"] == "Waiting for application startup."}
        )
        == 2
    )
    assert not [line for line in lines if line["logger"] == "uvicorn.access"]
    assert any(line.get("reason") == "start" for line in lines)
    assert 'banditrec_catalog_items{state="active"} 3.0' in scraped
