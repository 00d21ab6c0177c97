"""Seed a running banditrec through its HTTP API: items in taste groups, users with history."""

from __future__ import annotations

import itertools
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from bench import server

DIM = 64
TASTES = 8


@dataclass(frozen=True)
class World:
    """What was seeded: item ids with their taste group, and user ids with theirs."""

    item_ids: list[str]
    item_taste: np.ndarray
    user_ids: list[str]


def _ok(response: httpx.Response) -> dict[str, Any]:
    if response.status_code != 200:
        raise RuntimeError(f"{response.request.url}: {response.status_code} {response.text[:300]}")
    body: dict[str, Any] = response.json()
    return body


def items(n: int, rng: np.random.Generator, prefix: str = "i") -> tuple[list[dict], np.ndarray]:
    """Return n item bodies whose embeddings cluster around TASTES centres, and their tastes."""
    centres = rng.standard_normal((TASTES, DIM))
    taste = np.arange(n) % TASTES
    vectors = centres[taste] + 0.35 * rng.standard_normal((n, DIM))
    bodies = [
        {"item_id": f"{prefix}{i}", "embedding": [round(float(x), 5) for x in vectors[i]]}
        for i in range(n)
    ]
    return bodies, taste


def add_items(http: httpx.Client, bodies: list[dict]) -> None:
    """Create items in bulk calls of 1000."""
    for start in range(0, len(bodies), 1000):
        _ok(http.post("/v1/items/bulk", json={"items": bodies[start : start + 1000]}))


def history_events(
    world_items: list[str],
    taste: np.ndarray,
    users: list[str],
    rng: np.random.Generator,
    seen: int = 17,
    clicks: int = 3,
) -> list[dict]:
    """Return impressions of seen + clicks items per user and clicks on `clicks` of its taste."""
    events: list[dict] = []
    ids = itertools.count()
    by_taste = [np.flatnonzero(taste == t) for t in range(TASTES)]
    for n, user in enumerate(users):
        liked = rng.choice(by_taste[n % TASTES], size=clicks, replace=False)
        shown = rng.choice(len(world_items), size=seen, replace=False)
        for i in itertools.chain(shown, liked):
            events.append(
                {"event_id": f"s{next(ids)}", "type": "impression", "user_id": user,
                 "item_id": world_items[i]}
            )  # fmt: skip
        for i in liked:
            events.append(
                {"event_id": f"s{next(ids)}", "type": "click", "user_id": user,
                 "item_id": world_items[i]}
            )  # fmt: skip
    return events


def send_events(http: httpx.Client, events: list[dict], batch: int = 1000) -> None:
    """Post events in batches, asserting every one is accepted."""
    for start in range(0, len(events), batch):
        chunk = events[start : start + batch]
        result = _ok(http.post("/v1/feedback", json={"events": chunk}))
        if result["accepted"] + result["duplicates"] != len(chunk):
            raise RuntimeError(f"feedback answered {result} for {len(chunk)} events")


def world(
    base_url: str, n_items: int, n_users: int, k: int = TASTES, seed: int = 1
) -> tuple[World, dict[str, Any]]:
    """Seed items and users with history, fit k clusters; return the world and the fit result."""
    rng = np.random.default_rng(seed)
    bodies, taste = items(n_items, rng)
    item_ids = [b["item_id"] for b in bodies]
    users = [f"u{n}" for n in range(n_users)]
    with httpx.Client(base_url=base_url, timeout=120) as http:
        add_items(http, bodies)
        send_events(http, history_events(item_ids, taste, users, rng))
        fit = _ok(http.post("/v1/admin/clusters/fit", json={"k": k, "seed": seed}))
    return World(item_ids, taste, users), fit


def template(
    data: Path, n_items: int, n_users: int, k: int = TASTES, seed: int = 1
) -> dict[str, Any]:
    """Seed a fresh data folder through a server of its own (then stopped); return the fit."""
    with server.banditrec(data, appendfsync="everysec") as srv:
        _, fit = world(srv.base_url, n_items, n_users, k=k, seed=seed)
    return {"n_items": n_items, "n_users": n_users, "k": k, "fit": fit}


def copy_data(template: Path, target: Path) -> Path:
    """Copy a stopped server's data folder (AOF only: no socket, lock or log); return target."""
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(template, target, ignore=shutil.ignore_patterns("*.sock", "*.lock", "*.log"))
    return target
