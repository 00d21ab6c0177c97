"""/metrics reports the bandit: per policy from Redis, per cluster from the snapshot, the
same on every worker; docs/metrics.md and the Grafana dashboard name exactly these metrics."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.service.clusters import two_taste_world
from tests.service.helpers import event, send

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[2]
# Redis INFO memory, read with the per-policy counters.
REDIS_MEMORY = {"banditrec_redis_used_memory_bytes", "banditrec_redis_maxmemory_bytes"}


async def _scrape(client) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """Return {sample name: {sorted labels: value}} of one /metrics scrape."""
    response = await client.get("/metrics")
    assert response.status_code == 200, response.text
    samples: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            labels = tuple(sorted(sample.labels.items()))
            samples.setdefault(sample.name, {})[labels] = sample.value
    return samples


async def _served_world(svc) -> dict:
    """Fit two clusters, serve lists and report feedback on them (one batch twice)."""
    await two_taste_world(svc)
    fit = await svc.client.post("/v1/admin/clusters/fit", json={"k": 2, "seed": 1})
    assert fit.status_code == 200, fit.text
    await svc.refresh()
    events = []
    for user in ("xfan0", "yfan0", "newcomer"):
        rec = (await svc.client.post("/v1/recommend", json={"user_id": user, "k": 3})).json()
        shown = [i["item_id"] for i in rec["items"]]
        events += [event("impression", user, item, rec["rec_id"]) for item in shown]
        events.append(event("click", user, shown[0], rec["rec_id"]))
    assert (await send(svc.client, events)).json()["accepted"] == 12
    assert (await send(svc.client, events[:2])).json()["duplicates"] == 2
    await svc.refresh()
    stats: dict = (await svc.client.get("/v1/stats")).json()
    return stats


async def test_policy_counts_equal_the_stats_and_clusters_sum_to_global(start):
    svc = await start(exploration=0.5)
    stats = await _served_world(svc)
    scraped = await _scrape(svc.client)
    for policy in ("bandit", "explore", "baseline"):
        counts = stats["policies"].get(policy, {"lists": 0, "impressions": 0, "clicks": 0})
        labels = (("policy", policy),)
        assert scraped["banditrec_policy_served_lists_total"][labels] == counts["lists"]
        assert scraped["banditrec_policy_impressions_total"][labels] == counts["impressions"]
        assert scraped["banditrec_policy_clicks_total"][labels] == counts["clicks"]
        if counts["impressions"]:
            assert scraped["banditrec_policy_ctr"][labels] == pytest.approx(counts["ctr"])
        else:
            assert labels not in scraped["banditrec_policy_ctr"]
    assert sum(scraped["banditrec_policy_served_lists_total"].values()) == 3

    impressions = scraped["banditrec_cluster_impressions"]
    clicks = scraped["banditrec_cluster_clicks"]
    assert set(impressions) == {(("cluster", c),) for c in ("0", "1", "global")}
    # Every event counts globally; the fans' are also split (soft) across the clusters,
    # the newcomer's (no clicks: the population's arms) are not.
    assert impressions[(("cluster", "global"),)] == 9
    assert clicks[(("cluster", "global"),)] == 200 + 3  # the world's clicks (before the fit)
    assert impressions[(("cluster", "0"),)] + impressions[(("cluster", "1"),)] == pytest.approx(6)
    assert clicks[(("cluster", "0"),)] + clicks[(("cluster", "1"),)] == pytest.approx(2)
    for cluster in ("0", "1"):
        labels = (("cluster", cluster),)
        if impressions[labels]:
            expected = clicks[labels] / impressions[labels]
            assert scraped["banditrec_cluster_ctr"][labels] == pytest.approx(expected)

    assert scraped["banditrec_catalog_items"] == {
        (("state", "active"),): 20,
        (("state", "inactive"),): 0,
    }
    assert scraped["banditrec_clusters"][()] == 2
    assert scraped["banditrec_cluster_generation"][()] == 1
    assert sum(scraped["banditrec_cluster_users"].values()) == 40
    served = scraped["banditrec_served_lists_total"]
    assert sum(served.values()) == 3
    clusters_served = {dict(labels)["cluster"] for labels in served}
    assert "global" in clusters_served and clusters_served <= {"0", "1", "global"}
    duplicates = scraped["banditrec_feedback_events_total"]
    assert duplicates[(("outcome", "duplicate"), ("type", "impression"))] == 2


async def test_any_worker_reports_the_whole_service(start):
    serving, other = await start(), await start()
    stats = await _served_world(serving)
    await other.refresh()
    scraped = await _scrape(other.client)
    bandit = (("policy", "bandit"),)
    assert (
        scraped["banditrec_policy_served_lists_total"][bandit]
        == stats["policies"]["bandit"]["lists"]
    )
    assert scraped["banditrec_policy_clicks_total"][bandit] == 3
    assert scraped["banditrec_cluster_impressions"][(("cluster", "global"),)] == 9
    # Per-worker counters stay with the worker that served.
    assert "banditrec_served_lists_total" not in scraped


async def test_version_lag_counts_the_batches_a_refresh_found(start):
    svc = await start(snapshot_ms=600_000, stale_after_s=600)  # only our refreshes
    await two_taste_world(svc)
    await svc.refresh()
    for n in range(3):
        await send(svc.client, [event("impression", f"u{n}", "x1")])
    await svc.refresh()
    scraped = await _scrape(svc.client)
    assert scraped["banditrec_snapshot_version_lag"][()] == 3
    await svc.refresh()
    assert (await _scrape(svc.client))["banditrec_snapshot_version_lag"][()] == 0


def _documented() -> dict[str, str]:
    """Return {metric name: its row} from the tables of docs/metrics.md."""
    page = (ROOT / "docs" / "metrics.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| `(banditrec_[a-z_]+)` \|(.*)$", page, flags=re.MULTILINE)
    assert rows, "docs/metrics.md has no metric rows"
    return dict(rows)


async def test_every_exposed_metric_is_documented_and_every_documented_one_exposed(start):
    svc = await start(exploration=0.5)
    await _served_world(svc)
    response = await svc.client.get("/metrics")
    exposed = {}
    for family in text_string_to_metric_families(response.text):
        if family.name.endswith("_created"):
            continue  # the Prometheus client's companion of every counter and histogram
        name = family.name + ("_total" if family.type == "counter" else "")
        exposed[name] = family.type
    documented = _documented()
    assert sorted(set(exposed) - set(documented)) == [], "exposed but not in docs/metrics.md"
    assert sorted(set(documented) - set(exposed)) == [], "documented, not exposed"
    for name, kind in exposed.items():
        assert documented[name].startswith(f" {kind} |"), f"{name} is a {kind}"


def _expressions(node: object) -> list[str]:
    if isinstance(node, dict):
        found = [node["expr"]] if isinstance(node.get("expr"), str) else []
        return found + [e for value in node.values() for e in _expressions(value)]
    if isinstance(node, list):
        return [e for value in node for e in _expressions(value)]
    return []


def test_grafana_dashboard_charts_only_documented_metrics():
    dashboard = json.loads((ROOT / "docs" / "grafana-dashboard.json").read_text())
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    assert len(panels) >= 10
    documented = set(_documented())
    charted = set()
    for panel in panels:
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        expressions = _expressions(panel["targets"])
        assert expressions, panel["title"]
        for expression in expressions:
            for name in re.findall(r"banditrec_[a-z_]+", expression):
                base = re.sub(r"_(bucket|sum|count)$", "", name)
                assert base in documented, f"{panel['title']}: {name} is not a metric"
                charted.add(base)
    assert charted >= REDIS_MEMORY
    assert {"banditrec_policy_ctr", "banditrec_cluster_ctr", "banditrec_catalog_items"} <= charted
