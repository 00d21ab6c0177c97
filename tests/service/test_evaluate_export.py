"""`banditrec evaluate` on a live service's own export (issue 11, point 2)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evaluation.log_format import SCHEMA, problems
from tests.evaluation.commands import run
from tests.service.clusters import two_taste_world
from tests.service.helpers import add_items, event, exported_lists, send

pytestmark = pytest.mark.anyio


def evaluate(argv: list[str]) -> int:
    """Run `banditrec evaluate ARGV`."""
    return run(["evaluate", *argv])


async def _export(client, path: Path) -> list[dict]:
    response = await client.get("/v1/admin/logs/export")
    assert response.status_code == 200, response.text
    path.write_text(response.text)
    return exported_lists(response.text)


async def _serve_and_answer(client, users: list[str], rounds: int) -> None:
    """Serve lists to the users and report impressions of the first two items, a click on one."""
    events = []
    for n in range(rounds):
        for user in users:
            body = {"user_id": user, "k": 3}
            if n % 3 == 2:
                body.update(k=5, candidates=["x0", "y0"])  # fewer candidates than k
            rec = (await client.post("/v1/recommend", json=body)).json()
            shown = [item["item_id"] for item in rec["items"]]
            events += [event("impression", user, item, rec["rec_id"]) for item in shown[:2]]
            if user.startswith(shown[0][0]):  # a fan clicks their own side's item
                events.append(event("click", user, shown[0], rec["rec_id"]))
    response = await send(client, events)
    assert response.status_code == 200, response.text


async def test_evaluate_reads_an_export_with_unplaced_users(start, tmp_path, capsys):
    svc = await start(membership="hard")
    await two_taste_world(svc)
    # A user whose only click is on an item without an embedding stays unplaced by the fit.
    await add_items(svc.client, ["plain"])
    await send(svc.client, [event("click", "loner", "plain")])
    fit = await svc.client.post("/v1/admin/clusters/fit", json={"k": 2, "seed": 1})
    assert fit.status_code == 200, fit.text
    await svc.refresh()
    assert (await svc.client.get("/v1/users/loner")).json()["cluster"] is None
    await _serve_and_answer(svc.client, ["xfan0", "yfan0", "xfan1", "loner", "nobody"], 6)

    logs = tmp_path / "export.ndjson"
    lines = await _export(svc.client, logs)
    assert any(line["cluster"] is None for line in lines)
    assert any(len(line["items"]) < line["k"] for line in lines)
    assert [problems(line) for line in lines] == [[] for _ in lines]

    out = tmp_path / "ope.json"
    for policy in ("cluster-ts-decay", "global-ts", "random", "most-popular"):
        code = evaluate(["--logs", str(logs), "--policy", policy, "--bootstrap", "50",
                         "--out", str(out)])  # fmt: skip
        assert code == 0, capsys.readouterr().err
        result = json.loads(out.read_text())
        assert result["lists"] > 0
        for name in ("ips", "snips", "dr"):
            estimate = result["estimates"][name]
            assert 0.0 <= estimate["value"] <= 1.0, (policy, name, estimate)
            assert estimate["low"] <= estimate["high"]


async def test_every_kind_of_exported_line_follows_the_published_schema(start):
    svc = await start(exploration=0.5)
    items = [{"item_id": f"i{n}", "embedding": [1.0, n / 10], "pools": ["new"] if n < 3 else []}
             for n in range(8)]  # fmt: skip
    assert (await svc.client.post("/v1/items/bulk", json={"items": items})).status_code == 200
    await svc.refresh()
    requests = [
        {"user_id": "u", "k": 3},
        {"user_id": "u", "k": 4, "pools": {"new": 2}},
        {"user_id": "u", "k": 2, "surface": "related", "item_id": "i0"},
        {"user_id": "v", "k": 5, "candidates": ["i1", "i2"]},
    ]
    events = []
    for body in requests * 3:
        rec = (await svc.client.post("/v1/recommend", json=body)).json()
        first = rec["items"][0]["item_id"]
        events += [event(kind, body["user_id"], first, rec["rec_id"])
                   for kind in ("impression", "click", "conversion")]  # fmt: skip
    assert (await send(svc.client, events)).status_code == 200
    response = await svc.client.get("/v1/admin/logs/export")
    lines = exported_lists(response.text)
    assert len(lines) == 12
    assert {line["policy"] for line in lines} == {"bandit", "explore"}
    assert [problems(line) for line in lines] == [[] for _ in lines]
    # Every field the export writes is published, and every required one is written.
    published, required = set(SCHEMA["properties"]), set(SCHEMA["required"])
    item_schema = SCHEMA["properties"]["items"]["items"]
    for line in lines:
        assert required <= set(line) <= published
        for item in line["items"]:
            assert set(item_schema["required"]) <= set(item) <= set(item_schema["properties"])


async def test_evaluate_names_the_setting_when_propensities_were_not_logged(
    start, tmp_path, capsys
):
    svc = await start(propensity_samples=0)
    await add_items(svc.client, ["a", "b", "c"])
    await svc.refresh()
    rec = (await svc.client.post("/v1/recommend", json={"user_id": "u", "k": 2})).json()
    await send(svc.client, [event("impression", "u", rec["items"][0]["item_id"], rec["rec_id"])])
    logs = tmp_path / "export.ndjson"
    await _export(svc.client, logs)

    code = evaluate(["--logs", str(logs), "--policy", "global-ts", "--bootstrap", "20"])
    assert code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert "BANDITREC_PROPENSITY_SAMPLES" in err
    assert "line 1: items[0].propensity" in err
    assert "Traceback" not in err
