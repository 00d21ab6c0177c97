"""Served lists are logged with propensities and exported joined with their feedback."""

from __future__ import annotations

import pytest

from tests.service.helpers import add_items, event, exported_lists, send

pytestmark = pytest.mark.anyio


async def _export(client, **params) -> list[dict]:
    response = await client.get("/v1/admin/logs/export", params=params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/x-ndjson")
    return exported_lists(response.text)


async def test_recommend_reports_propensities(svc):
    await add_items(svc.client, [f"i{n}" for n in range(10)])
    await svc.refresh()
    body = (await svc.client.post("/v1/recommend", json={"user_id": "u", "k": 3})).json()
    propensities = [i["propensity"] for i in body["items"]]
    # Ten untried arms, k=3: each is served with probability 0.3; 32 draws (+1) per estimate.
    assert all(1 / 33 <= p <= 1 for p in propensities)
    assert sum(propensities) / 3 == pytest.approx(0.3, abs=0.2)


async def test_propensity_is_one_when_every_candidate_is_served(svc):
    await add_items(svc.client, ["a", "b"])
    await svc.refresh()
    body = (await svc.client.post("/v1/recommend", json={"user_id": "u", "k": 5})).json()
    assert [i["propensity"] for i in body["items"]] == [1.0, 1.0]


async def test_propensities_can_be_disabled(start):
    running = await start(propensity_samples=0)
    await add_items(running.client, ["a", "b", "c"])
    body = (await running.client.post("/v1/recommend", json={"user_id": "u", "k": 2})).json()
    assert [i["propensity"] for i in body["items"]] == [None, None]


async def test_export_joins_served_lists_with_feedback(svc):
    await add_items(svc.client, [f"i{n}" for n in range(6)])
    await svc.refresh()
    first = (await svc.client.post("/v1/recommend", json={"user_id": "u1", "k": 3})).json()
    second = (await svc.client.post("/v1/recommend", json={"user_id": "u2", "k": 2})).json()
    shown = [i["item_id"] for i in first["items"]]
    events = [event("impression", "u1", item, first["rec_id"]) for item in shown[:2]]
    events.append(event("click", "u1", shown[1], first["rec_id"]))
    await send(svc.client, events)
    await send(svc.client, events)  # a replay changes nothing in the log either
    lines = {line["rec_id"]: line for line in await _export(svc.client)}
    assert set(lines) == {first["rec_id"], second["rec_id"]}
    line = lines[first["rec_id"]]
    assert (line["user_id"], line["cluster"], line["gen"], line["k"]) == ("u1", 0, 0, 3)
    assert line["n_candidates"] == 6
    assert [i["item_id"] for i in line["items"]] == shown
    assert [i["position"] for i in line["items"]] == [0, 1, 2]
    assert [i["impression"] for i in line["items"]] == [True, True, False]
    assert [i["click"] for i in line["items"]] == [False, True, False]
    assert [i["propensity"] for i in line["items"]] == [i["propensity"] for i in first["items"]]
    assert [i["score"] for i in line["items"]] == [i["score"] for i in first["items"]]
    untouched = lines[second["rec_id"]]
    assert not any(i["impression"] or i["click"] for i in untouched["items"])


async def test_export_filters_by_time_and_limit(svc):
    await add_items(svc.client, ["a", "b"])
    await svc.refresh()
    for n in range(5):
        await svc.client.post("/v1/recommend", json={"user_id": f"u{n}", "k": 1})
    lines = await _export(svc.client)
    assert len(lines) == 5
    times = sorted(line["ts"] for line in lines)
    assert len(await _export(svc.client, since=times[2])) == 3
    assert len(await _export(svc.client, until=times[2])) == 2
    assert len(await _export(svc.client, limit=4)) == 4
    assert await _export(svc.client, since=times[-1] + 1) == []


async def test_export_needs_the_api_key_when_one_is_set(start):
    running = await start(api_key="k")
    assert (await running.client.get("/v1/admin/logs/export")).status_code == 401
    ok = await running.client.get("/v1/admin/logs/export", headers={"X-API-Key": "k"})
    assert ok.status_code == 200 and exported_lists(ok.text) == []


async def test_banditrec_evaluate_reads_the_export_with_its_trailer(svc, tmp_path, capsys):
    from cli import main

    await add_items(svc.client, ["a", "b", "c"])
    await svc.refresh()
    for n in range(12):
        user = f"u{n % 3}"
        rec = (await svc.client.post("/v1/recommend", json={"user_id": user, "k": 2})).json()
        shown = [i["item_id"] for i in rec["items"]]
        events = [event("impression", user, i, rec["rec_id"]) for i in shown]
        await send(svc.client, [*events, event("click", user, shown[0], rec["rec_id"])])
    export = (await svc.client.get("/v1/admin/logs/export")).text
    assert export.splitlines()[-1] == '{"end":true,"lines":12}'
    logs = tmp_path / "logs.ndjson"
    logs.write_text(export)
    args = ["evaluate", "--logs", str(logs), "--policy", "global-ts", "--bootstrap", "20"]
    assert main(args) == 0
    assert "snips" in capsys.readouterr().out

    # An export that Redis cut short is refused, not evaluated as if it were whole.
    cut = [*export.splitlines()[:5], '{"error":{"code":"redis_unavailable","message":"x"}}']
    logs.write_text("\n".join(cut) + "\n")
    assert main(args) == 2
    assert "cut short" in capsys.readouterr().err
