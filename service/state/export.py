"""Export: the state file's text, written section by section from what the store read."""

from __future__ import annotations

import json
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

import numpy as np

from service.state.document import COUNT_NAMES, FORMAT, FORMAT_VERSION, json_number
from service.store import ClusterModel, StateSnapshot, StoredUser
from service.store.codecs import KINDS, MICRO, decode_last_click, decode_seen


def open_document(snapshot: StateSnapshot, settings: dict[str, Any], version: str) -> str:
    """Return the document's text up to its first array: format, counters and clustering."""
    since = snapshot.decay_since
    head = {
        "format": json.dumps(FORMAT),
        "format_version": json.dumps(FORMAT_VERSION),
        "exported_at": json.dumps(snapshot.at_ms / 1000),
        "banditrec_version": json.dumps(version),
        "settings": json.dumps(settings),
        "versions": json.dumps({"items": snapshot.items_version, "arms": snapshot.arms_version}),
        "decay_since": "null" if since is None else json_number(Decimal(since)),
        "stats": _numbers(snapshot.stats),
        "seen_decay": _numbers(snapshot.fatigue),
        "clusters": json.dumps(_clusters_entry(snapshot.clusters)),
    }
    return "{\n" + "".join(f'"{name}": {text},\n' for name, text in head.items())


def _numbers(fields: dict[str, str]) -> str:
    """Return a hash of stored numbers as a JSON object, fields sorted, digits as stored."""
    numbers = {name: json_number(Decimal(value)) for name, value in sorted(fields.items())}
    return "{" + ", ".join(f"{json.dumps(k)}: {v}" for k, v in numbers.items()) + "}"


def holds_state(snapshot: StateSnapshot) -> bool:
    """Return whether the snapshot has items, counts or a clustering (an export has content)."""
    counted = any(snapshot.counts.values()) or any(snapshot.times.values())
    return bool(snapshot.items) or counted or snapshot.clusters.gen > 0


def _clusters_entry(clusters: ClusterModel) -> dict[str, Any] | None:
    if clusters.gen == 0 or clusters.centers is None:
        return None
    return {
        "gen": clusters.gen,
        "k": clusters.k,
        "centers": [_float32_list(row) for row in clusters.centers],
        "inertia": clusters.inertia,
        "sizes": clusters.sizes,
        "fitted_at": clusters.fitted_at,
    }


def _float32_list(values: np.ndarray) -> list[float]:
    # Stored as float32: the shortest decimal that reads back as the same float32, as GET
    # /v1/items shows it (0.9, not 0.8999999761581421).
    return [float(str(x)) for x in np.asarray(values, dtype=np.float32)]


def item_entries(snapshot: StateSnapshot) -> list[str]:
    """Return the items' JSON texts, by item_id."""
    return [
        json.dumps(
            {
                "item_id": item.item_id,
                "tags": item.tags,
                "pools": item.pools,
                "active": item.active,
                "updated": item.updated,
                "embedding": None if item.embedding is None else _float32_list(item.embedding),
            }
        )
        for item in sorted(snapshot.items, key=lambda it: it.item_id)
    ]


def retired_entries(snapshot: StateSnapshot) -> list[str]:
    """Return the JSON texts of the ids of items with counts that left the catalog."""
    catalog = {item.item_id for item in snapshot.items}
    return [json.dumps(item_id) for item_id in sorted(_armed_items(snapshot) - catalog)]


def _armed_items(snapshot: StateSnapshot) -> set[str]:
    armed: set[str] = set()
    for rows in (snapshot.counts, snapshot.times):
        for values in rows.values():
            armed.update(values)
    return armed


def arm_entries(snapshot: StateSnapshot) -> list[str]:
    """Return the arms' JSON texts, by item_id, global arm first, counts in events."""
    clusters: list[int | None] = [None, *range(snapshot.clusters.k)]
    lines = []
    for item_id in sorted(_armed_items(snapshot)):
        for cluster in clusters:
            counts = [snapshot.counts.get((kind, cluster), {}).get(item_id) for kind in KINDS]
            times = [snapshot.times.get((kind, cluster), {}).get(item_id) for kind in KINDS]
            if counts == [None] * 3 and times == [None] * 3:
                continue
            lines.append(_arm_line(item_id, cluster, counts, times))
    return lines


def _arm_line(
    item_id: str, cluster: int | None, counts: list[str | None], times: list[str | None]
) -> str:
    # Written by hand: json.dumps has no exact form for a Decimal.
    scale = Decimal(1) if cluster is None else Decimal(MICRO)
    fields = [f'"item_id": {json.dumps(item_id)}', f'"cluster": {json.dumps(cluster)}']
    for name, text in zip(COUNT_NAMES, counts, strict=True):
        fields.append(f'"{name}": {json_number(Decimal(text or 0) / scale)}')
    updated = {n: float(t) for n, t in zip(COUNT_NAMES, times, strict=True) if t is not None}
    if updated:
        fields.append(f'"updated": {json.dumps(updated)}')
    return "{" + ", ".join(fields) + "}"


def dedupe_entries(markers: Iterable[tuple[str, int, str | None]]) -> list[str]:
    """Return the dedupe markers' JSON texts: [event_id, expiry in unix seconds, owner]."""
    return [json.dumps([event_id, ms / 1000, owner]) for event_id, ms, owner in markers]


def user_entries(users: Iterable[StoredUser]) -> list[str]:
    """Return the users' JSON texts."""
    return [json.dumps(_user_entry(user)) for user in users]


def _user_entry(user: StoredUser) -> dict[str, Any]:
    seen = {item_id: list(decode_seen(value)) for item_id, value in user.seen.items()}
    last_clicks = {
        item_id: list(decode_last_click(value)) for item_id, value in user.last_clicks.items()
    }
    return {
        "user_id": user.user_id,
        "hist": int(user.state.get("hist", 0)),
        "membership": user.state.get("membership"),
        "assigned": user.state.get("assigned"),
        "clicks": user.clicks,
        "seen": seen,
        "last_clicks": last_clicks,
        "events": [[event_id, at] for event_id, at in user.events],
        "expires_at": None if user.expires_ms is None else user.expires_ms / 1000,
    }
