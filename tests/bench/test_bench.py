"""Smoke tests: each benchmark runs at a tiny size and emits well-formed results.

Speed itself is never asserted here (STYLE.md): only shapes, keys and sanity of values.
"""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
import redis

from bench import loadgen, machine, related, report


def _positive(values: dict) -> bool:
    return all(isinstance(v, float | int) and v > 0 for v in values.values())


def test_ranker_reports_ratios_against_floor_and_mabwiser():
    from bench import ranker

    result = ranker.run(sizes=(50,), max_s=0.3)
    (row,) = result["rows"]
    assert row["n_arms"] == 50
    assert {"floor", "rank", "rank_kernel", "mabwiser_predict"} <= set(row["us_per_call"])
    assert _positive(row["us_per_call"])
    assert row["rank_over_floor"] > 0
    assert row["speedup_vs_mabwiser_predict"] > 0
    assert result["met"]["speedup_vs_mabwiser_at_10k"] is None  # 10k arms were not run
    assert len(result["load_before"]) == 3
    json.dumps(result)


def test_cosine_top_k_matches_a_full_sort():
    rng = np.random.default_rng(0)
    items = related.unit_rows(rng.standard_normal((200, 8)))
    top, scores = related.cosine_top_k(items, items[3], 10, exclude=3)
    expected = np.argsort(-(items @ items[3]))
    assert expected[0] == 3
    assert top.tolist() == expected[1:11].tolist()
    assert np.all(np.diff(scores) <= 0)


def test_related_times_the_services_kernel():
    result = related.run(sizes=(300,), max_s=0.3)
    assert "clustering.most_similar" in result["what"]
    (row,) = result["rows"]
    assert _positive(row["us_per_call"])
    assert row["ratio_vs_floor"] > 0


def test_propensity_times_the_estimate_against_plain_monte_carlo():
    from bench import propensity

    result = propensity.run(sizes=(100, 1000), max_s=0.2)
    kinds = {(r["posteriors"], r["n_arms"], r["quotas"]) for r in result["rows"]}
    assert kinds == {
        ("mature", 100, False), ("prior", 100, False),
        ("mature", 1000, False), ("prior", 1000, False), ("mature", 1000, True),
    }  # fmt: skip
    for row in result["rows"]:
        assert _positive(row["us_per_call"])
        assert row["speedup_vs_plain"] > 0
    assert "| mature | 1,000 | yes |" in report.markdown(
        {"machine": machine.facts(), "benchmarks": {"propensity": result}}
    )
    json.dumps(result)


def test_percentiles_and_machine_facts():
    assert loadgen.percentiles([]) == {"p50_ms": None, "p95_ms": None, "p99_ms": None}
    assert loadgen.percentiles([1.0] * 99 + [100.0])["p50_ms"] == 1.0
    facts = machine.facts()
    assert facts["cores"] >= 1
    assert facts["redis_server"][0].isdigit()
    assert facts["versions"]["numpy"] == np.__version__


def test_report_renders_tables_and_replaces_only_the_marked_section(tmp_path):
    from bench import ranker

    results = {
        "machine": machine.facts(),
        "benchmarks": {
            "ranker": ranker.run(sizes=(30,), max_s=0.1),
            "related_kernel": related.run(sizes=(200,), max_s=0.1),
        },
    }
    tables = report.markdown(results)
    assert "| 30 |" in tables
    assert "clustering.most_similar" in tables
    doc = tmp_path / "performance.md"
    doc.write_text(f"# Title\n\n{report.START}\nold\n{report.END}\n\nFindings stay.\n")
    assert report.update_doc(doc, tables)
    text = doc.read_text()
    assert "old" not in text
    assert text.startswith("# Title") and text.endswith("Findings stay.\n")


@pytest.mark.slow
def test_round_trips_and_memory_run_on_a_real_server(tmp_path):
    from bench import memory, roundtrips

    trips = roundtrips.run(tmp_path, sizes=(10, 30), calls=2)
    assert [r["n_items"] for r in trips["rows"]] == [10, 30]
    for row in trips["rows"]:
        assert row["per_recommend_total"] > 0
        assert row["per_feedback_batch_total"] > 0
    assert isinstance(trips["met"], bool)

    mem = memory.run(tmp_path, n_items=50, k=2, dim=4, events=50, settle_s=0.3)
    # At this size the deltas are within allocator noise: check the shape, not the sign.
    assert set(mem["stages"]) == {"empty", "items", "arms", "events"}
    assert all(isinstance(v, int) for v in mem["redis_bytes"].values() if not isinstance(v, float))
    assert all(stage["redis"] > 0 and stage["VmRSS"] > 0 for stage in mem["stages"].values())
    json.dumps(mem)


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("locust") is None, reason="bench extra not installed")
def test_locust_runs_headless_against_a_real_server(tmp_path):
    from bench import server

    with server.hello_world(tmp_path) as hello:
        result = loadgen.run_locust(
            hello.base_url,
            users=2,
            duration_s=1,
            csv_prefix=tmp_path / "smoke",
            env={"BENCH_MODE": "recommend"},
        )
    assert result["requests"] > 0
    assert result["failures"] == 0
    assert result["p50_ms"] is not None and result["p50_ms"] <= result["p99_ms"]
    assert (tmp_path / "smoke_stats.csv").exists()


@pytest.mark.slow
def test_import_events_bench_reports_rate_and_peak_rss_of_the_command(tmp_path):
    from bench import import_events

    result = import_events.run(300, tmp_path)
    assert result["events"] == 300
    assert "300 events: 300 counted, 0 duplicates" in result["import"]["summary"]
    assert "300 events: 0 counted, 300 duplicates" in result["rerun"]["summary"]
    for run in (result["import"], result["rerun"]):
        assert run["events_per_s"] > 0 and 10 < run["peak_rss_mb"] < 10_000
    json.dumps(result)


def test_wrk_output_is_read_into_rate_and_percentiles(tmp_path):
    from bench import wrk

    output = """Running 10s test @ http://127.0.0.1:8000/v1/recommend
  1 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     5.31ms    1.02ms  20.10ms   90.00%
  Latency Distribution
     50%    5.12ms
     75%    5.80ms
     90%    6.50ms
     99%  812.00us
  30110 requests in 10.00s, 9.10MB read
  Non-2xx or 3xx responses: 3
Requests/sec:   3011.00
"""
    figures = wrk.parse(output)
    assert figures == {
        "requests": 30110,
        "rps": 3011.0,
        "non_2xx": 3,
        "socket_errors": 0,
        "p50_ms": 5.12,
        "p99_ms": 0.812,
    }
    lua = wrk.script(tmp_path, "feedback", users=5, items=7, batch=3)
    assert "for i = 1, 3 do" in lua.read_text()


def test_hotpath_reports_commands_per_event_and_medians_against_hello_world():
    from bench import hotpath

    before = {"cmdstat_expire": {"calls": 10, "usec": 50}, "cmdstat_get": {"calls": 3, "usec": 3}}
    after = {
        "cmdstat_expire": {"calls": 210, "usec": 450},
        "cmdstat_get": {"calls": 3, "usec": 3},
        "cmdstat_zadd": {"calls": 100, "usec": 300},
    }
    assert hotpath._command_delta(before, after, 100) == {
        "expire": {"calls_per_event": 2.0, "usec_per_event": 4.0},
        "zadd": {"calls_per_event": 1.0, "usec_per_event": 3.0},
    }
    run = {"server_cpu_ms_per_request": 1.0, "p50_ms": 2.0, "p99_ms": 4.0, "load": [1.0]}
    runs = {
        "hello": [run | {"rps": 1000.0}, run | {"rps": 3000.0}],
        "x recommend": [run | {"rps": 100.0}, run | {"rps": 300.0}],
        "x feedback x100": [run | {"rps": 10.0}, run | {"rps": 30.0}],
    }
    rows = hotpath._summary(runs)["rows"]
    assert rows["x recommend"]["of_hello_rps"] == 0.1
    assert rows["x feedback x100"]["units_per_s"] == 2000.0
    assert rows["x feedback x100"]["of_hello_rps"] == 1.0


@pytest.mark.slow
def test_cluster_benchmark_runs_small_and_reports_the_spread(tmp_path):
    from bench import cluster

    result = cluster.run(tmp_path, duration_s=0.5, rounds=1, senders=2, batch=10, n_items=20)
    assert set(result["events_per_s_median"]) == {"single", "cluster", "cluster_wait_1"}
    assert all(row["events"] > 0 and row["failures"] == 0 for row in result["runs"])
    spread = [r for r in result["runs"] if r["contender"] == "cluster"]
    assert len(spread[0]["calls_per_master"]) == 3
    assert result["max_over_mean_commands_per_master"] >= 1.0


@pytest.mark.anyio
async def test_floor_reads_the_user_and_refuses_bad_bodies_as_recommend_does(
    redis_url, monkeypatch
):
    import httpx

    from bench import floor

    monkeypatch.setenv("BANDITREC_REDIS_URL", redis_url)
    client = redis.Redis.from_url(redis_url)
    lranges = client.info("commandstats").get("cmdstat_lrange", {}).get("calls", 0)
    app = floor.create_app()
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            ok = await http.post("/v1/recommend", json={"user_id": "u1", "k": 10})
            bad = await http.post("/v1/recommend", json={"user_id": "u1", "surfce": "home"})
    assert ok.status_code == 200 and len(ok.json()["items"]) == 10
    assert bad.status_code == 422 and "surfce" in bad.text  # as recommend answers
    # One read of the user's clicks: the floor reads the user as recommend does.
    assert client.info("commandstats")["cmdstat_lrange"]["calls"] == lranges + 1
    monkeypatch.setenv("BENCH_FLOOR_READ", "0")  # the app shape alone: no read
    bare = floor.create_app()
    async with bare.router.lifespan_context(bare):
        transport = httpx.ASGITransport(app=bare)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            assert (await http.post("/v1/recommend", json={"user_id": "u1"})).status_code == 200
    assert client.info("commandstats")["cmdstat_lrange"]["calls"] == lranges + 1
