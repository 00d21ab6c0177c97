"""Where dedupe markers were written before this process's shard layout, and until when.

A marker's key depends on the number of count shards (keys.shard_of), and releases before
sharding wrote every marker under the `{arms}` tag, which is the layout of one shard. After
an upgrade, or after BANDITREC_COUNT_SHARDS changes, markers of events counted under the
previous layout are elsewhere for one dedupe retention; a resend of such an event (what a
client does after the 503s of a rolling restart) must still be found, or it counts twice.

Counts of a one-shard layout are under `{arms}`, a tag every layout keeps, so they still
sum after the change; counts of other layouts would not, so a worker whose shard count
differs from a recorded one other than 1 refuses feedback (503 redis_shard_layout):
export and import to reshard.

The store records its layout once, under keys.layout: `shards|since|previous`, previous 0
when nothing was counted before (a new store). While `since` + the retention has not
passed, feedback also reads each event's marker in the previous layout (one pipelined
GET per event, with the pre-check); markers there are only read, never written, so the
read need not be atomic with the counts.
"""

from __future__ import annotations

from dataclasses import dataclass

from service.store.codecs import text
from service.store.connection import Client, StoreUnavailable
from service.store.keys import Keys


@dataclass(frozen=True, slots=True)
class Layout:
    """The shard count markers are written under now, since when, and the one before it."""

    shards: int
    since: float
    previous: int

    def encode(self) -> str:
        """Return the stored string."""
        return f"{self.shards}|{self.since!r}|{self.previous}"

    @classmethod
    def decode(cls, raw: bytes | str) -> Layout:
        """Parse `encode`'s string."""
        shards, since, previous = text(raw).split("|")
        return cls(int(shards), float(since), int(previous))

    def previous_keys(self, keys: Keys, now: float, retention_s: float) -> Keys | None:
        """Return the previous layout's keys while its markers may still be alive."""
        if self.previous == 0 or self.previous == keys.shards or now > self.since + retention_s:
            return None
        return Keys(keys.prefix, self.previous)


async def current_layout(client: Client, keys: Keys, now: float) -> Layout:
    """Return the recorded layout, recording this process's if none is or its count changed."""
    raw = await client.get(keys.layout)
    if raw is not None:
        recorded = Layout.decode(raw)
        if recorded.shards == keys.shards:
            return recorded
        if recorded.shards != 1:
            # Readers sum this worker's shards only: counts in the others would be lost.
            message = f"the store has {recorded.shards} count shards, this worker {keys.shards}"
            raise StoreUnavailable(message, "shard_layout")
        # From one shard (`{arms}`, which every layout keeps, so its counts still sum):
        # markers written so far are in the old layout.
        changed = Layout(keys.shards, now, recorded.shards)
        await client.set(keys.layout, changed.encode())
        return changed
    # No record: a new store, or one written by a release before sharding, whose version
    # counter is the one-shard layout's (`{arms}`). Whoever records first decides: its
    # check ran before it recorded, so before any feedback of this layout was written.
    counted_before = await client.exists(Keys(keys.prefix, 1).arms_version(0))
    fresh = Layout(keys.shards, now, 1 if counted_before else 0)
    await client.set(keys.layout, fresh.encode(), nx=True)
    return Layout.decode(await client.get(keys.layout) or fresh.encode())
