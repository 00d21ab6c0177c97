"""banditrec under realistic traffic: visitors arrive, view the home list, see it, click some.

    locust -f locustfile.py --host http://127.0.0.1:8000          # web UI
    python -m bench.load                                         # make load: headless, bounded

A visitor is a returning user (one of LOAD_KNOWN_USERS) or, with LOAD_NEW_USER_SHARE, a
first-time one; a visit is a few home-page views with think time between them. Every view
asks POST /v1/recommend for 10 items, then reports one impression per item shown and a
click with the item's hidden click-through rate for the visitor's taste (about 5% over
the catalog), naming the rec_id. An editor adds a new item every few seconds.

One view in four is the "viewer end": after a click, the visitor asks for items related to
the one they clicked (`surface: related`) and reports on that list the same way.

Environment: LOAD_ITEMS (1000), LOAD_ITEM_PREFIX (load-i), LOAD_KNOWN_USERS (10000),
LOAD_USER_PREFIX (load-u), LOAD_NEW_USER_SHARE (0.3), LOAD_CTR (0.05), LOAD_THINK_S
("0.2,1.0"), LOAD_DIM (16). Items missing from the catalog are created at test start.
"""

from __future__ import annotations

import itertools
import os
import random
import uuid
import zlib

import numpy as np
from locust import between, events, task
from locust.contrib.fasthttp import FastHttpUser

N_ITEMS = int(os.environ.get("LOAD_ITEMS", "1000"))
ITEM_PREFIX = os.environ.get("LOAD_ITEM_PREFIX", "load-i")
KNOWN_USERS = int(os.environ.get("LOAD_KNOWN_USERS", "10000"))
USER_PREFIX = os.environ.get("LOAD_USER_PREFIX", "load-u")
NEW_USER_SHARE = float(os.environ.get("LOAD_NEW_USER_SHARE", "0.3"))
MEAN_CTR = float(os.environ.get("LOAD_CTR", "0.05"))
THINK_MIN, THINK_MAX = (float(x) for x in os.environ.get("LOAD_THINK_S", "0.2,1.0").split(","))
DIM = int(os.environ.get("LOAD_DIM", "16"))
TASTES = 8
# A visitor clicks items of their own taste this much more often than others.
TASTE_LIFT = 3.0

_rng = np.random.default_rng(int(os.environ.get("LOAD_SEED", "1")))
_centres = _rng.standard_normal((TASTES, DIM))
_run = uuid.uuid4().hex[:8]
_new_items = itertools.count()


class Catalog:
    """The items this test knows, with a hidden taste and click-through rate per item."""

    def __init__(self) -> None:
        self.taste: dict[str, int] = {}
        self.quality: dict[str, float] = {}

    def add(self, item_id: str, taste: int) -> list[float]:
        """Remember an item; return an embedding for it."""
        self.taste[item_id] = taste
        # Beta(2, 38) has mean 5%: most items are dull, a few are good.
        self.quality[item_id] = float(_rng.beta(2.0, 38.0))
        vector = _centres[taste] + 0.35 * _rng.standard_normal(DIM)
        return [round(float(x), 4) for x in vector]

    def ctr(self, item_id: str, visitor_taste: int) -> float:
        """Return the chance that a visitor of this taste clicks the item when shown."""
        quality = self.quality.get(item_id, MEAN_CTR)
        own = self.taste.get(item_id) == visitor_taste
        # Scaled so that the mean over tastes stays near the item's quality.
        lift = TASTE_LIFT if own else 1.0
        return min(1.0, quality * lift * TASTES / (TASTE_LIFT + TASTES - 1))


catalog = Catalog()


@events.test_start.add_listener
def _ensure_catalog(environment, **_: object) -> None:
    """Create the items this test uses unless the first one already exists."""
    bodies = [
        {"item_id": f"{ITEM_PREFIX}{n}", "embedding": catalog.add(f"{ITEM_PREFIX}{n}", n % TASTES)}
        for n in range(N_ITEMS)
    ]
    import httpx  # only at test start; the hot path uses locust's FastHttpUser client

    with httpx.Client(base_url=environment.host, timeout=60) as http:
        if http.get(f"/v1/items/{ITEM_PREFIX}0").status_code == 200:
            return
        for start in range(0, len(bodies), 1000):
            chunk = bodies[start : start + 1000]
            response = http.post("/v1/items/bulk", json={"items": chunk})
            if response.status_code == 422 and "dimension" in response.text:
                # The catalog already uses another embedding size: add ours without.
                chunk = [{"item_id": b["item_id"]} for b in chunk]
                response = http.post("/v1/items/bulk", json={"items": chunk})
            response.raise_for_status()


class Visitor(FastHttpUser):
    """One person at a time: a few home-page views per visit, then someone else arrives."""

    weight = 50
    wait_time = between(THINK_MIN, THINK_MAX)

    def on_start(self) -> None:
        self._arrive()

    def _arrive(self) -> None:
        if random.random() < NEW_USER_SHARE:
            self.user_id = f"new-{_run}-{uuid.uuid4().hex[:12]}"
            self.taste = zlib.crc32(self.user_id.encode()) % TASTES
        else:
            n = random.randrange(KNOWN_USERS)
            self.user_id = f"{USER_PREFIX}{n}"
            # The same taste bench.seed gave user n, so seeded history and clicks agree.
            self.taste = n % TASTES
        self.views_left = random.randint(2, 8)
        self.last_clicked: str | None = None

    @task(3)
    def home(self) -> None:
        self._recommend({"user_id": self.user_id, "k": 10}, "home")

    @task(1)
    def related(self) -> None:
        # The "viewer end": more like the item this visitor last clicked.
        if self.last_clicked is None:
            self.home()
            return
        body = {
            "user_id": self.user_id,
            "k": 10,
            "surface": "related",
            "item_id": self.last_clicked,
        }
        self._recommend(body, "related")

    def _recommend(self, body: dict[str, object], surface: str) -> None:
        """Ask for a list, then report impressions and clicks (CTR from the taste model)."""
        with self.client.post(
            "/v1/recommend",
            json=body,
            name=f"POST /v1/recommend [{surface}]",
            catch_response=True,
        ) as response:
            if response.status_code != 200:
                response.failure(f"{response.status_code}: {response.text[:200]}")
                return
            served = response.json()
        rec_id = served["rec_id"]
        shown = [item["item_id"] for item in served["items"]]
        clicked = [item for item in shown if random.random() < catalog.ctr(item, self.taste)]
        events_ = [
            {"event_id": f"{rec_id}-{n}-imp", "type": "impression", "user_id": self.user_id,
             "item_id": item, "rec_id": rec_id}
            for n, item in enumerate(shown)
        ]  # fmt: skip
        events_ += [
            {"event_id": f"{rec_id}-{item}-clk", "type": "click", "user_id": self.user_id,
             "item_id": item, "rec_id": rec_id}
            for item in clicked
        ]  # fmt: skip
        if events_:
            self.client.post("/v1/feedback", json={"events": events_}, name="POST /v1/feedback")
        if clicked:
            self.last_clicked = clicked[0]
        self.views_left -= 1
        if self.views_left <= 0:
            self._arrive()


class Editor(FastHttpUser):
    """Adds a new item to the catalog every few seconds."""

    fixed_count = 1
    wait_time = between(5.0, 10.0)

    @task
    def add_item(self) -> None:
        item_id = f"{ITEM_PREFIX}new-{_run}-{next(_new_items)}"
        embedding = catalog.add(item_id, random.randrange(TASTES))
        self.client.put(
            f"/v1/items/{item_id}", json={"embedding": embedding}, name="PUT /v1/items/[new]"
        )
