"""Served lists on their way to Redis: written after the response, in batches, never dropped.

Recommend answers without awaiting its served-list write: the list waits here and one
background task per worker writes everything waiting in one round trip, over and over
while lists keep coming. What that guarantees (docs/performance.md, "Served-list log"):

- In this worker, feedback and reads of the log see a waiting list as if it were stored
  (`lists`, `flush`): nothing here is ever missing for them.
- In another worker, a list is missing only until the write lands: the next turn of this
  worker's event loop sends it, and feedback that names a rec_id it cannot find reads
  again after FEEDBACK_RETRY_S (engine/feedback.py).
- While Redis fails, lists wait and the write is retried every RETRY_S, and recommend
  answers `stale: true` (as it did when its own write failed); at most CAPACITY wait,
  after which recommend writes its own list, as every list was written before. On
  shutdown the waiting lists are written.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from service.engine.context import Context
from service.store import LoggedWrite, StoreUnavailable
from service.store.codecs import ServedList

log = logging.getLogger("banditrec.pending_lists")

CAPACITY = 10_000
RETRY_S = 0.1
# How long feedback waits before reading again a rec_id another worker may still hold.
FEEDBACK_RETRY_S = 0.1


class PendingLists:
    """Served lists not yet in Redis, written by one background task in batches."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self._waiting: dict[str, LoggedWrite] = {}
        self._writer: asyncio.Task[None] | None = None
        self._closing = False
        # Whether the last write failed: lists served meanwhile are answered stale.
        self.failing = False
        self._lock = asyncio.Lock()

    def add(self, write: LoggedWrite) -> bool:
        """Queue a list for the background writer; False when full (the caller writes it)."""
        if len(self._waiting) >= CAPACITY:
            return False
        self._waiting[write.rec_id] = write
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_all(), name="served-list-writer")
        return True

    def lists(self, rec_ids: Iterable[str]) -> dict[str, ServedList]:
        """Return the waiting lists among rec_ids."""
        return {r: self._waiting[r].served for r in rec_ids if r in self._waiting}

    def __len__(self) -> int:
        return len(self._waiting)

    async def flush(self) -> None:
        """Write every waiting list now (StoreUnavailable if Redis cannot take them)."""
        while self._waiting:
            await self._write_batch()

    async def close(self) -> None:
        """Write what is waiting before the worker stops; say how many were lost if not."""
        self._closing = True
        if self._writer is not None:
            # Not cancelled: a write cut off mid-reply would leave its connection unusable.
            await asyncio.wait([self._writer])
        try:
            await self.flush()
        except StoreUnavailable as exc:
            log.warning("%d served lists not logged at shutdown: %s", len(self._waiting), exc)

    async def _write_all(self) -> None:
        while self._waiting:
            try:
                await self._write_batch()
            except StoreUnavailable:
                if self._closing:
                    return
                await asyncio.sleep(RETRY_S)

    async def _write_batch(self) -> None:
        # One batch at a time (the writer, flush, close): the per-policy counts are
        # increments, and a list in two batches would be counted twice.
        async with self._lock:
            batch = list(self._waiting.values())
            if not batch:
                return
            settings = self.ctx.settings
            try:
                await self.ctx.store.log_recommendations(
                    batch, settings.rec_log_ttl_s, settings.user_ttl_s
                )
            except StoreUnavailable:
                self.failing = True
                raise
            self.failing = False
            # Visible to lists() until Redis has them.
            for write in batch:
                del self._waiting[write.rec_id]
