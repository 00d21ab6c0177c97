"""Import: what to write into a store for a validated state file."""

from __future__ import annotations

from decimal import Decimal

import numpy as np

from service.state.document import (
    COUNT_NAMES,
    ArmEntry,
    ClustersEntry,
    ItemEntry,
    StateDocument,
    UserEntry,
    json_number,
)
from service.store import ClusterModel, ItemRecord, StateWrite, StoredUser, Versions
from service.store.codecs import (
    KINDS,
    MICRO,
    assigned_key,
    encode_last_click,
    encode_seen,
    legacy_unclicked,
    parse_assigned_key,
)

# A cluster count this close to a whole number of millionths is that number: files edited
# by float-based tools turn 0.123457 into 0.12345699999999999.
_WHOLE_MILLIONTHS = Decimal("1e-6")


def plan_import(document: StateDocument, current: Versions) -> StateWrite:
    """Return what to write for a validated document into a store at `current` versions.

    Counters end above both the store's and the file's, and a clustering gets a generation
    above the store's, so running workers see the change and reload in full.
    """
    file_gen = document.clusters.gen if document.clusters is not None else 0
    gen = max(current.clusters, file_gen) + 1 if document.clusters is not None else 0
    counts, times = _stored_arms(document.arms)
    embedded = (item.embedding for item in document.items if item.embedding is not None)
    return StateWrite(
        items_version=max(current.items, document.versions.items) + 1,
        arms_version=max(current.arms, document.versions.arms) + 1,
        gen=gen,
        dim=len(next(embedded, [])),
        items=[_item_record(item) for item in document.items],
        clusters=_cluster_model(document.clusters, gen),
        counts=counts,
        times=times,
        decay_since=None if document.decay_since is None else repr(document.decay_since),
        stats={name: json_number(value) for name, value in document.stats.items()},
        fatigue={name: json_number(value) for name, value in document.seen_decay.items()},
        dedupe=[(event_id, round(at * 1000), owner) for event_id, at, owner in document.dedupe],
        users=[_stored_user(user, file_gen, gen) for user in document.users or []],
    )


def _item_record(item: ItemEntry) -> ItemRecord:
    embedding = None if item.embedding is None else np.asarray(item.embedding)
    return ItemRecord(item.item_id, item.tags, item.pools, item.active, item.updated, embedding)


def _cluster_model(clusters: ClustersEntry | None, gen: int) -> ClusterModel | None:
    if clusters is None:
        return None
    return ClusterModel(
        gen=gen,
        k=clusters.k,
        centers=np.asarray(clusters.centers),
        inertia=clusters.inertia,
        sizes=clusters.sizes,
        fitted_at=clusters.fitted_at,
    )


def _stored_arms(
    arms: list[ArmEntry],
) -> tuple[
    dict[tuple[str, int | None], dict[str, str]], dict[tuple[str, int | None], dict[str, str]]
]:
    """Return the count and time hashes' fields, by (kind, cluster); zero counts are not stored."""
    counts: dict[tuple[str, int | None], dict[str, str]] = {}
    times: dict[tuple[str, int | None], dict[str, str]] = {}
    for arm in arms:
        for kind, name in zip(KINDS, COUNT_NAMES, strict=True):
            value: Decimal = getattr(arm, name)
            if value:
                stored = _stored_count(value, in_cluster=arm.cluster is not None)
                counts.setdefault((kind, arm.cluster), {})[arm.item_id] = stored
            at: float | None = getattr(arm.updated, name)
            if at is not None:
                times.setdefault((kind, arm.cluster), {})[arm.item_id] = repr(at)
    return counts, times


def _stored_count(events: Decimal, *, in_cluster: bool) -> str:
    """Return a count's stored text: global arms in events, cluster arms in millionths."""
    if not in_cluster:
        return json_number(events)
    millionths = events * MICRO
    whole = millionths.to_integral_value()
    return json_number(whole if abs(millionths - whole) <= _WHOLE_MILLIONTHS else millionths)


def _renumbered(assigned: str | None, file_gen: int, gen: int) -> str | None:
    """Return a cached membership's key under generation `gen`; None unless of `file_gen`.

    The cache is keyed by generation: it stays valid under the renumbered generation, and
    any other one is recomputed on the user's next request.
    """
    if assigned is None:
        return None
    try:
        cache_gen, hist, mode = parse_assigned_key(assigned)
    except ValueError:
        return None
    return assigned_key(gen, hist, mode) if cache_gen == file_gen else None


def _seen_value(entry: tuple[float, float, int | None]) -> str:
    """Return a seen entry's stored value; one of an earlier release counts as it did."""
    faded, at, unclicked = entry
    return encode_seen(faded, at, legacy_unclicked(faded) if unclicked is None else unclicked)


def _stored_user(user: UserEntry, file_gen: int, gen: int) -> StoredUser:
    state = {"hist": str(user.hist)} if user.hist else {}
    assigned = _renumbered(user.assigned, file_gen, gen)
    if user.membership is not None and assigned is not None:
        state |= {"membership": user.membership, "assigned": assigned}
    return StoredUser(
        user_id=user.user_id,
        state=state,
        clicks=user.clicks,
        seen={item: _seen_value(entry) for item, entry in user.seen.items()},
        events=list(user.events),
        last_clicks={
            item: encode_last_click(at, rec_id) for item, (at, rec_id) in user.last_clicks.items()
        },
        expires_ms=None if user.expires_at is None else round(user.expires_at * 1000),
    )
