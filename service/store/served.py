"""Reading back the logged served lists and the outcomes flagged on them (logs export)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from service.store.codecs import ServedList, text
from service.store.connection import Client, redis_errors_as_unavailable
from service.store.keys import Keys, tagged_id


@dataclass(frozen=True, slots=True)
class LoggedList:
    """A served list read back with its rec_id and the outcomes flagged on it (imp:ITEM...)."""

    rec_id: str
    served: ServedList
    outcomes: frozenset[str]


async def served_lists(
    client: Client, keys: Keys, batch: int = 500
) -> AsyncIterator[list[LoggedList]]:
    """Yield batches of logged served lists (SCAN order), each with its outcome flags."""
    rec_ids: list[str] = []
    with redis_errors_as_unavailable():
        async for raw_key in client.scan_iter(match=keys.every_rec, count=1000):
            rec_ids.append(tagged_id(text(raw_key)))
            if len(rec_ids) >= batch:
                yield await _served_batch(client, keys, rec_ids)
                rec_ids = []
        if rec_ids:
            yield await _served_batch(client, keys, rec_ids)


async def _served_batch(client: Client, keys: Keys, rec_ids: list[str]) -> list[LoggedList]:
    async with client.pipeline(transaction=False) as pipe:
        for rec_id in rec_ids:
            pipe.get(keys.rec(rec_id))
            pipe.hgetall(keys.outcomes(rec_id))
        raw = await pipe.execute()
    lists = []
    for n, rec_id in enumerate(rec_ids):
        record, outcomes = raw[2 * n], raw[2 * n + 1]
        if record is None:  # expired between SCAN and GET
            continue
        flags = frozenset(text(f) for f in outcomes)
        lists.append(LoggedList(rec_id, ServedList.decode(record), flags))
    return lists
