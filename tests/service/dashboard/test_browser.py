"""The dashboard in headless chromium against a real `banditrec serve` with an API key.

Every view is loaded with seeded data (items with embeddings, users with clicks, a cluster
fit, feedback); the numbers it shows are read from the DOM (data-testid, data-value) and
compared with the API's, and the console must stay free of errors. Screenshots go to
tmp_path, and to docs/img/ (which the README shows) with UPDATE_SCREENSHOTS=1.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import scipy.stats

from evaluation.child import free_port, stop, wait_until_ready
from service.client import Client, served_events
from tests.service.dashboard.browser import Browser, chromium_binary

pytestmark = pytest.mark.slow

KEY = "dash-key"
GENRES = 3
USERS = [f"u{n:02d}" for n in range(24)]
IMG = Path(__file__).resolve().parents[3] / "docs" / "img"
MAX_PNG_BYTES = 200_000
# Every value the page shows, keyed by data-testid: [value from data-value, text shown].
DOM_NUMBERS = """Object.fromEntries([...document.querySelectorAll('[data-value]')].map(
  (e) => [e.dataset.testid, [JSON.parse(e.dataset.value), e.textContent]]))"""


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    """Return the base URL of a `banditrec serve` child with an API key and exploration."""
    port = free_port()
    log = tmp_path / "serve.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("BANDITREC_")}
    env |= {
        "BANDITREC_DATA_DIR": str(tmp_path / "data"),
        "BANDITREC_PORT": str(port),
        "BANDITREC_API_KEY": KEY,
        "BANDITREC_EXPLORATION": "0.1",
        "BANDITREC_SNAPSHOT_MS": "100",
    }
    with log.open("ab") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "cli", "serve"], env=env, stdout=sink, stderr=subprocess.STDOUT
        )
    try:
        wait_until_ready(f"http://127.0.0.1:{port}/readyz", process, log, timeout_s=30)
        yield f"http://127.0.0.1:{port}"
    finally:
        assert stop(process) == 0, log.read_text()


@pytest.fixture
def browser() -> Iterator[Browser]:
    """Return a headless chromium (skipped without one, except on CI)."""
    running = Browser(chromium_binary())
    try:
        yield running
    finally:
        running.close()


def _catalog(client: Client, rng: np.random.Generator) -> None:
    items = []
    for n in range(30):
        embedding = np.eye(GENRES + 1)[n % GENRES] + rng.normal(0, 0.15, GENRES + 1)
        items.append(
            {
                "item_id": f"i{n:02d}",
                "embedding": embedding.round(3).tolist(),
                "tags": [f"g{n % 3}"],
            }
        )
    client.put_items(items)


def _traffic(client: Client, rng: np.random.Generator) -> None:
    """One list per user; each clicks the items of their own genre half the time."""
    with client.batcher() as batcher:
        for user in USERS:
            rec = client.recommend(user, k=5)
            liked = [
                i.item_id for i in rec.items if int(i.item_id[1:]) % GENRES == int(user[1:]) % 3
            ]
            batcher.extend(served_events(rec, [i for i in liked if rng.random() < 0.5]))


def _texts(browser: Browser, selector: str) -> list[str]:
    found: list[str] = browser.evaluate(
        f"[...document.querySelectorAll({json.dumps(selector)})].map((e) => e.textContent)"
    )
    return found


def _numbers(browser: Browser) -> dict[str, list[Any]]:
    numbers: dict[str, list[Any]] = browser.evaluate(DOM_NUMBERS)
    return numbers


def _shown_agrees(value: Any, text: str) -> bool:
    """Whether the text shown is the value, up to the digits it shows."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return True
    text = text.removeprefix("#")  # cluster numbers
    scale, digits = (100.0, text[:-1]) if text.endswith("%") else (1.0, text.replace(",", ""))
    decimals = len(digits.split(".")[1]) if "." in digits else 0
    return abs(float(digits) - value * scale) <= 0.5 * 10**-decimals + 1e-9


def _assert_shown(browser: Browser, expected: dict[str, Any], rel: float = 0.0) -> None:
    numbers = _numbers(browser)
    missing = sorted(set(expected) - set(numbers))
    assert not missing, f"not on the page: {missing}"
    shown = {key: numbers[key][0] for key in expected}
    same = shown == (pytest.approx(expected, rel=rel) if rel else expected)
    assert same, f"page {shown} != API {expected}"
    wrong = {k: numbers[k] for k in expected if not _shown_agrees(*numbers[k])}
    assert not wrong, f"text does not match data-value: {wrong}"


def _overview_expected(api: httpx.Client) -> dict[str, Any]:
    overview, stats = api.get("/v1/overview").json(), api.get("/v1/stats").json()
    expected = {
        "catalog-items": overview["catalog"]["items"],
        "catalog-active": overview["catalog"]["active"],
        "clusters-k": overview["clusters"]["k"],
        "clusters-gen": overview["clusters"]["gen"],
        "mode": stats["mode"],
        "exploration": stats["exploration"],
    }
    expected |= {f"events-{kind}": overview["events"][kind] for kind in overview["events"]}
    expected |= {f"cluster-size-{c}": n for c, n in enumerate(overview["clusters"]["sizes"])}
    decay = stats["seen_decay"]
    expected |= {
        "seen-decay-mode": decay["mode"],
        "seen-decay-fresh-imp": decay["fresh"]["impressions"],
    }
    for row, cells in enumerate(decay["cells"]):
        for band, cell in enumerate(cells):
            expected[f"seen-decay-{row}-{band}"] = cell["multiplier"]
            expected[f"seen-decay-{row}-{band}-imp"] = cell["impressions"]
    for name, policy in stats["policies"].items():
        expected |= {f"policy-{name}-{f}": policy[f] for f in ("lists", "impressions", "clicks")}
        expected[f"policy-{name}-ctr"] = policy["ctr"]
        expected[f"policy-{name}-ctr-lo"], expected[f"policy-{name}-ctr-hi"] = policy["ctr_ci95"]
    for name, view in stats["replay"].items():
        expected |= {f"replay-{name}-{f}": view[f] for f in ("impressions", "clicks", "ctr")}
    lift = stats["cluster_lift"]
    rows = {str(c["cluster"]): c for c in lift["clusters"]}
    for row, values in (*rows.items(), ("all", lift)):
        expected |= {f"lift-{row}-{f.replace('_', '-')}": values[f]
                     for f in ("cluster_ctr", "global_ctr", "lift")}  # fmt: skip
    expected |= {f"lift-{c}-traffic": rows[c]["traffic"] for c in rows}
    expected["lift-gen"] = lift["gen"]
    prior = stats["affinity_prior"]
    expected |= {
        "affinity-slope": prior["slope"],
        "affinity-strength": prior["cluster_strength"],
        "affinity-tilt": prior["personal_tilt"],
    }
    return expected


def _settled_overview(browser: Browser, api: httpx.Client) -> dict[str, Any]:
    """Return the API's overview numbers once the page's poll has caught up with them."""
    deadline = time.monotonic() + 10
    while True:
        expected = _overview_expected(api)
        numbers = _numbers(browser)
        if all(numbers.get(key, [None])[0] == value for key, value in expected.items()):
            return expected
        if time.monotonic() > deadline:
            return expected  # _assert_shown reports the difference
        time.sleep(0.2)


def _show(browser: Browser, route: str, view: str) -> None:
    browser.evaluate(f"location.hash = {json.dumps(route)}")
    browser.wait_for(
        f"document.getElementById('view').dataset.view === {json.dumps(view)}"
        f" && !!document.querySelector('[data-testid=view-{view.rstrip('s')}]')"
    )


def _screenshot(browser: Browser, tmp_path: Path, name: str) -> None:
    size = browser.screenshot(tmp_path / name)
    assert size < MAX_PNG_BYTES, f"{name} is {size} bytes"
    if os.environ.get("UPDATE_SCREENSHOTS"):
        shutil.copy(tmp_path / name, IMG / name)


def _interval(prefix: str, arm: dict[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    """Return the testids and values of an arm's fields and its 95% interval."""
    shown = {f"{prefix}-{f}": arm[f] for f in fields}
    shown[f"{prefix}-lo"], shown[f"{prefix}-hi"] = arm["ci95"]
    return shown


def _check_access(served: str, browser: Browser) -> None:
    """With a key set the page loads, its data calls are refused until it sends the key."""
    with httpx.Client(base_url=served, timeout=10) as anonymous:
        assert anonymous.get("/dashboard").status_code == 200
        assert anonymous.get("/dashboard/static/app.js").status_code == 200
        for path in ("/v1/stats", "/v1/overview", "/v1/arms", "/v1/arms/i00", "/v1/users/u00"):
            assert anonymous.get(path).status_code == 401, path
    browser.goto(f"{served}/dashboard?poll=0.4")
    browser.wait_for("!!document.querySelector('[data-testid=auth-needed]')")
    assert browser.errors and all("401" in e for e in browser.errors), browser.errors
    browser.errors.clear()
    browser.evaluate(
        f"document.getElementById('api-key').value = {json.dumps(KEY)};"
        "document.getElementById('key-form').requestSubmit()"
    )
    browser.wait_for("!!document.querySelector('[data-testid=view-overview]')")
    assert browser.evaluate("sessionStorage.getItem('banditrec.apiKey')") == KEY


def _check_overview(browser: Browser, api: httpx.Client, tmp_path: Path) -> None:
    expected = _settled_overview(browser, api)
    _assert_shown(browser, expected)
    assert expected["clusters-gen"] == 1 and len(expected) > 20
    assert _numbers(browser)["series-points"][0] >= 10
    lines = "document.querySelectorAll('[data-testid=ctr-chart] path').length"
    assert browser.evaluate(lines) >= 4  # a band and a line per policy
    # The learned seen decay: a curve, and the grid whose numbers were compared above.
    assert browser.evaluate("!!document.querySelector('[data-testid=seen-decay-chart]')")
    assert expected["seen-decay-fresh-imp"] > 0
    _screenshot(browser, tmp_path, "dashboard-overview.png")


def _check_clusters(browser: Browser, api: httpx.Client) -> str:
    """Check every cluster's top arms; return the best item of the last one."""
    lists = {name: p["lists"] for name, p in api.get("/v1/stats").json()["policies"].items()}
    sizes = api.get("/v1/overview").json()["clusters"]["sizes"]
    for cluster in range(len(sizes)):
        _show(browser, f"#/clusters/{cluster}", "clusters")
        browser.wait_for(
            f"document.querySelector('[data-testid=cluster-id]').dataset.value === '{cluster}'"
        )
        page = api.get("/v1/arms", params={"cluster": cluster, "limit": 20}).json()
        expected = {
            "cluster-gen": page["gen"],
            "arms-total": page["total"],
            "cluster-size": sizes[cluster],
            "exploration-configured": 0.1,
            "exploration-observed": lists.get("explore", 0) / sum(lists.values()),
        }
        for i, arm in enumerate(page["arms"]):
            expected |= _interval(f"arm-{i}", arm, ("impressions", "clicks", "mean"))
        _assert_shown(browser, expected)
        assert _texts(browser, "[data-testid$=-item]") == [arm["item_id"] for arm in page["arms"]]
    return str(page["arms"][0]["item_id"])


def _check_item(browser: Browser, api: httpx.Client, item_id: str, tmp_path: Path) -> None:
    _show(browser, f"#/items/{item_id}", "items")
    arms = api.get(f"/v1/arms/{item_id}").json()
    fields = ("impressions", "clicks", "alpha", "beta", "mean")
    expected = _interval("arm-global", arms["global"], fields)
    for arm in arms["clusters"]:
        expected |= _interval(f"arm-c{arm['cluster']}", arm, fields)
    _assert_shown(browser, expected)
    curves = browser.evaluate(
        "[...document.querySelectorAll('[data-testid=density-chart] path[data-testid]')]"
        ".map((e) => [e.dataset.testid, e.getAttribute('d').length])"
    )
    assert sorted(name for name, _ in curves) == ["density-c0", "density-c1", "density-c2",
                                                 "density-global"]  # fmt: skip
    assert all(length > 100 for _, length in curves)
    _screenshot(browser, tmp_path, "dashboard-item.png")


def _check_densities_math(browser: Browser) -> None:
    """The page's Beta density (its own lgamma) agrees with scipy's."""
    cases = [(0.3, 2.5, 7.1), (0.02, 40.0, 2000.0), (0.5, 1.0, 1.0), (0.9, 0.7, 0.4),
             (0.031, 3000.5, 95000.2)]  # fmt: skip
    ours = browser.evaluate(
        "import('./dashboard/static/beta.js').then((m) => "
        f"{json.dumps(cases)}.map(([x, a, b]) => m.betaPdf(x, a, b)))"
    )
    expected = [float(scipy.stats.beta.pdf(x, a, b)) for x, a, b in cases]
    assert ours == pytest.approx(expected, rel=1e-6)


def _check_user(browser: Browser, api: httpx.Client) -> None:
    user_id = max(USERS, key=lambda u: len(api.get(f"/v1/users/{u}").json()["seen"]))
    _show(browser, f"#/users/{user_id}", "users")
    user = api.get(f"/v1/users/{user_id}").json()
    assert user["seen"] and user["recent_clicks"] and user["membership"]
    weights = {f"membership-{m['cluster']}": m["weight"] for m in user["membership"]}
    _assert_shown(browser, {"user-cluster": user["cluster"], "user-gen": user["gen"]} | weights)
    seen = {
        f"seen-{i}-{field}": s[field]
        for i, s in enumerate(user["seen"])
        for field in ("unclicked", "multiplier")
    }
    # Seen decay fades with the wall clock between the page's read and ours.
    _assert_shown(browser, seen, rel=1e-4)
    assert _texts(browser, "[data-testid^=recent-click-]") == user["recent_clicks"]
    assert _texts(browser, "[data-testid$=-item]") == [s["item_id"] for s in user["seen"]]

    # The preview is a real recommend: one more list served.
    def served_lists() -> int:
        return sum(p["lists"] for p in api.get("/v1/stats").json()["policies"].values())

    before = served_lists()
    browser.evaluate("document.querySelector('[data-testid=preview-button]').click()")
    rec_id = browser.wait_for("document.querySelector('[data-testid=preview-rec-id]')?.textContent")
    shown = _texts(browser, "[data-testid^=preview-item-]")
    assert len(rec_id) == 32 and len(shown) == 5
    assert set(shown) <= {f"i{n:02d}" for n in range(30)}
    assert served_lists() == before + 1


def test_every_view_shows_the_apis_numbers(served, browser, tmp_path):
    rng = np.random.default_rng(16)
    with (
        Client(served, api_key=KEY) as client,
        httpx.Client(base_url=served, headers={"X-API-Key": KEY}, timeout=10) as api,
    ):
        _catalog(client, rng)
        for _ in range(2):
            _traffic(client, rng)
        _check_access(served, browser)

        # Traffic while the page polls: a fit, then lists and feedback the series records.
        client.fit_clusters(k=3, seed=1)
        rates = []
        for _ in range(5):
            polls = int(browser.evaluate("document.body.dataset.polls"))
            _traffic(client, rng)
            browser.wait_for(f"Number(document.body.dataset.polls) >= {polls + 2}")
            rates.append(_numbers(browser)["events-rate"][0])
        assert max(r for r in rates if r is not None) > 0, rates

        _check_overview(browser, api, tmp_path)
        top_item = _check_clusters(browser, api)
        _check_item(browser, api, top_item, tmp_path)
        _check_densities_math(browser)
        _check_user(browser, api)

    browser.evaluate("1")  # collects the console events that arrived last
    assert browser.errors == []


def test_committed_screenshots_are_small_pngs():
    for name in ("dashboard-overview.png", "dashboard-item.png"):
        png = (IMG / name).read_bytes()
        assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) < MAX_PNG_BYTES, name
