"""Reading the counts back: every shard's part, summed, in round trips that do not grow.

Each count shard (keys.py) holds a partial count of every item; a reader sums the shards.
Without discounting a sum is exact (whole events, whole millionths). With discounting
each part fades from its own time: parts are discounted to the latest of their times
and summed there, which is the same total at any later moment (fading is linear).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from redis.commands.core import AsyncScript

from service.store.codecs import KINDS, decode_change, decode_counts, text
from service.store.connection import Client, ScriptCall, run_scripts
from service.store.keys import Keys
from service.store.records import CountChange, Counts, CountsState, ShardPosition

# (value, time it was last discounted or None) of a count.
_Part = tuple[float, float | None]
# One shard's part of a count: (value, its time or None, the shard's decay-since or None).
Part = tuple[float, float | None, float | None]


async def load_counts(
    client: Client, keys: Keys, script: AsyncScript, gen: int, k: int, half_life_s: float
) -> CountsState:
    """Return every count of clusters 0..k-1 then global, summed over shards, in one trip.

    Each shard is read atomically by read_counts.lua, with its version and change stream
    position; with `half_life_s` > 0 also the times, and parts are summed discounted.
    """
    rows = [(gen, c) for c in range(k)] + [(None, None)]
    with_times = half_life_s > 0
    calls: list[ScriptCall] = []
    for shard in range(keys.shards):
        shard_keys = [keys.arms_version(shard), keys.changes(shard), keys.decay_since(shard)]
        for g, cluster in rows:
            for kind in KINDS:
                shard_keys.append(keys.arms(kind, g, cluster, shard=shard))
                if with_times:
                    shard_keys.append(keys.arm_times(kind, g, cluster, shard=shard))
        calls.append((script, shard_keys, []))
    replies = await run_scripts(client, calls)
    positions = []
    # (row, kind) -> item -> parts over shards
    parts: list[list[dict[str, list[Part]]]] = [[{} for _ in KINDS] for _ in rows]
    sinces = []
    step = 1 + with_times
    for reply in replies:
        version, last, since, _time, *hashes = reply
        positions.append(ShardPosition(int(version or 0), text(last) if last else "0-0"))
        shard_since = None if not since else float(since)
        if shard_since is not None:
            sinces.append(shard_since)
        cells = [(r, n_kind) for r in range(len(rows)) for n_kind in range(len(KINDS))]
        for n, (row, n_kind) in enumerate(cells):
            values = _pairs(hashes[n * step])
            times = _pairs(hashes[n * step + 1]) if with_times else {}
            for item, value in values.items():
                at = times.get(item)
                part = (float(value), None if at is None else float(at), shard_since)
                parts[row][n_kind].setdefault(item, []).append(part)
    counts: list[Counts] = []
    updated: list[Counts] | None = [] if with_times else None
    for row_parts in parts:
        summed = [sum_parts(kind_parts, half_life_s) for kind_parts in row_parts]
        counts.append(_triple([{i: v for i, (v, _) in s.items()} for s in summed]))
        if updated is not None:
            updated.append(
                _triple([{i: t for i, (_, t) in s.items() if t is not None} for s in summed])
            )
    decay_since = min(sinces) if sinces else None
    return CountsState(tuple(positions), counts, updated, decay_since)


def sum_parts(parts: Mapping[str, Sequence[Part]], half_life_s: float) -> dict[str, _Part]:
    """Return each item's parts summed: discounted to the latest of their times, if any.

    A part without a time of its own fades from its shard's decay-since (as the shard's
    next write would discount it); one part alone is returned as stored.
    """
    summed: dict[str, _Part] = {}
    for item, item_parts in parts.items():
        if len(item_parts) == 1:
            value, at, _ = item_parts[0]
            summed[item] = (value, at)
            continue
        timed = [(v, at if at is not None else since) for v, at, since in item_parts]
        times = [at for _, at in timed if at is not None]
        if half_life_s <= 0 or not times:
            summed[item] = (sum(v for v, _ in timed), max(times) if times else None)
            continue
        latest = max(times)
        total = sum(
            v if at is None else v * 0.5 ** ((latest - at) / half_life_s) for v, at in timed
        )
        summed[item] = (total, latest)
    return summed


async def read_changes(
    client: Client, keys: Keys, positions: Sequence[ShardPosition], limit: int
) -> list[CountChange]:
    """Return up to `limit` change entries per shard newer than `positions`, in one trip.

    Entries are in order within a shard; shards follow one another.
    """
    async with client.pipeline(transaction=False) as pipe:
        for shard, position in enumerate(positions):
            pipe.xrange(keys.changes(shard), min=f"({position.stream_id}", count=limit)
        replies = await pipe.execute()
    return [
        decode_change(shard, entry_id, fields)
        for shard, entries in enumerate(replies)
        for entry_id, fields in entries
    ]


async def item_counts(
    client: Client, keys: Keys, item_id: str, gen: int, k: int, half_life_s: float
) -> tuple[list[tuple[float, ...]], list[tuple[float | None, ...]], float | None]:
    """Return one item's counts summed over shards and their times (Store.arm_counts)."""
    rows = [(None if c is None else gen, c) for c in [*range(k), None]]
    async with client.pipeline(transaction=False) as pipe:
        for shard in range(keys.shards):
            for g, cluster in rows:
                for kind in KINDS:
                    pipe.hget(keys.arms(kind, g, cluster, shard=shard), item_id)
                    pipe.hget(keys.arm_times(kind, g, cluster, shard=shard), item_id)
            pipe.get(keys.decay_since(shard))
        raw = await pipe.execute()
    per_shard = 2 * len(KINDS) * len(rows) + 1
    parts: list[dict[str, list[tuple[float, float | None, float | None]]]] = [
        {} for _ in range(len(KINDS) * len(rows))
    ]
    sinces = []
    for shard in range(keys.shards):
        *pairs, since = raw[shard * per_shard : (shard + 1) * per_shard]
        shard_since = None if since is None else float(since)
        if shard_since is not None:
            sinces.append(shard_since)
        for n in range(len(parts)):
            value, at = pairs[2 * n], pairs[2 * n + 1]
            if value is not None:
                part = (float(value), None if at is None else float(at), shard_since)
                parts[n].setdefault(item_id, []).append(part)
    summed = [sum_parts(p, half_life_s).get(item_id, (0.0, None)) for p in parts]
    values = [v for v, _ in summed]
    times = [t for _, t in summed]
    n = len(KINDS)
    return (
        [tuple(values[i : i + n]) for i in range(0, len(values), n)],
        [tuple(times[i : i + n]) for i in range(0, len(times), n)],
        min(sinces) if sinces else None,
    )


async def stats(client: Client, keys: Keys) -> dict[str, float]:
    """Return the stats counters summed over shards; `since` is the earliest shard's."""
    async with client.pipeline(transaction=False) as pipe:
        for shard in range(keys.shards):
            pipe.hgetall(keys.stats(shard))
        parts = [decode_counts(raw) for raw in await pipe.execute()]
    total: dict[str, float] = {}
    for part in parts:
        for name, value in part.items():
            total[name] = total.get(name, 0.0) + value
    sinces = [part["since"] for part in parts if "since" in part]
    if sinces:
        total["since"] = min(sinces)
    return total


def flat_text(flat: Any) -> dict[str, str]:
    """Return a hash a script returned as a flat field, value list, as text."""
    return {text(flat[i]): text(flat[i + 1]) for i in range(0, len(flat or ()), 2)}


def number_text(value: float) -> str:
    """Return a summed count as Redis writes one: whole numbers without a fraction."""
    return str(int(value)) if value.is_integer() else repr(value)


def _pairs(flat: Any) -> dict[str, bytes]:
    """Return a hash a script returned as a flat field, value list."""
    if not flat:
        return {}
    return {text(flat[i]): flat[i + 1] for i in range(0, len(flat), 2)}


def _triple(hashes: list[dict[str, float]]) -> Counts:
    imp, clk, cnv = hashes
    return imp, clk, cnv
