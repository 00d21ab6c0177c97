"""Feedback batchers: collect events, send them in batches on size, on a timer, and on close.

A failed send puts its events back in front of the queue, so the next flush resends them;
that is safe because the service counts each event_id once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Awaitable, Callable, Sequence
from types import TracebackType

from service.client.calls import MAX_EVENTS, EventLike, merge
from service.schemas import FeedbackResult

log = logging.getLogger("banditrec.client")


class _Tally:
    """What the service answered to every batch sent so far."""

    def __init__(self, max_events: int, interval_s: float) -> None:
        if not 1 <= max_events <= MAX_EVENTS:
            raise ValueError(f"max_events must be in [1, {MAX_EVENTS}], got {max_events}")
        if not interval_s > 0:
            raise ValueError(f"interval_s must be > 0, got {interval_s}")
        self.max_events = max_events
        self.interval_s = interval_s
        self.accepted = 0
        self.duplicates = 0
        self.unknown_rec_ids: list[str] = []
        self.batches = 0
        # The last failure of a timed flush (a flush you call raises instead).
        self.last_error: Exception | None = None

    def _count(self, result: FeedbackResult) -> None:
        self.batches += 1
        self.accepted += result.accepted
        self.duplicates += result.duplicates
        self.unknown_rec_ids += [r for r in result.unknown_rec_ids if r not in self.unknown_rec_ids]

    def _chunks(self, events: list[EventLike]) -> list[list[EventLike]]:
        return [events[i : i + self.max_events] for i in range(0, len(events), self.max_events)]


class FeedbackBatcher(_Tally):
    """Thread-safe batcher of the blocking Client; a background thread flushes every interval_s."""

    def __init__(
        self,
        send: Callable[[Sequence[EventLike]], FeedbackResult],
        max_events: int = MAX_EVENTS,
        interval_s: float = 1.0,
    ) -> None:
        super().__init__(max_events, interval_s)
        self._send = send
        self._pending: list[EventLike] = []
        self._lock = threading.Lock()  # guards _pending and the tally
        self._sending = threading.Lock()  # one flush at a time, so batches go out in order
        self._closed = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="banditrec-batcher", daemon=True)
        self._thread.start()

    @property
    def pending(self) -> int:
        """Return how many events wait to be sent."""
        with self._lock:
            return len(self._pending)

    def add(self, event: EventLike) -> None:
        """Queue one event; send the queue now if it holds max_events (raising if that fails)."""
        self.extend([event])

    def extend(self, events: Sequence[EventLike]) -> None:
        """Queue events; send the queue now if it holds max_events (raising if that fails)."""
        with self._lock:
            if self._closed:
                raise RuntimeError("the batcher is closed")
            self._pending += events
            full = len(self._pending) >= self.max_events
        if full:
            self.flush()

    def flush(self) -> FeedbackResult:
        """Send every queued event now; return what the service answered for them."""
        with self._sending:
            with self._lock:
                queued, self._pending = self._pending, []
            results = []
            for n, chunk in enumerate(self._chunks(queued)):
                try:
                    result = self._send(chunk)
                except BaseException:
                    with self._lock:
                        self._pending[:0] = queued[n * self.max_events :]
                    raise
                with self._lock:
                    self._count(result)
                results.append(result)
            return merge(results)

    def close(self) -> None:
        """Stop the timer and send what is queued; raises if that last send fails."""
        with self._lock:
            self._closed = True
        self._stop.set()
        self._thread.join()
        self.flush()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.flush()
            except Exception as exc:
                self.last_error = exc
                log.warning("feedback flush failed, the events stay queued: %s", exc)

    def __enter__(self) -> FeedbackBatcher:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class AsyncFeedbackBatcher(_Tally):
    """Task-safe batcher of the AsyncClient; a background task flushes every interval_s."""

    def __init__(
        self,
        send: Callable[[Sequence[EventLike]], Awaitable[FeedbackResult]],
        max_events: int = MAX_EVENTS,
        interval_s: float = 1.0,
    ) -> None:
        super().__init__(max_events, interval_s)
        self._send = send
        self._pending: list[EventLike] = []
        self._sending = asyncio.Lock()
        self._closed = False
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def pending(self) -> int:
        """Return how many events wait to be sent."""
        return len(self._pending)

    async def add(self, event: EventLike) -> None:
        """Queue one event; send the queue now if it holds max_events (raising if that fails)."""
        await self.extend([event])

    async def extend(self, events: Sequence[EventLike]) -> None:
        """Queue events; send the queue now if it holds max_events (raising if that fails)."""
        if self._closed:
            raise RuntimeError("the batcher is closed")
        if self._task is None:
            # Started on first use: a task needs the running loop.
            self._task = asyncio.create_task(self._run(), name="banditrec-batcher")
        self._pending += events
        if len(self._pending) >= self.max_events:
            await self.flush()

    async def flush(self) -> FeedbackResult:
        """Send every queued event now; return what the service answered for them."""
        async with self._sending:
            queued, self._pending = self._pending, []
            results = []
            for n, chunk in enumerate(self._chunks(queued)):
                try:
                    result = await self._send(chunk)
                except BaseException:
                    self._pending[:0] = queued[n * self.max_events :]
                    raise
                self._count(result)
                results.append(result)
            return merge(results)

    async def aclose(self) -> None:
        """Stop the timer and send what is queued; raises if that last send fails."""
        self._closed = True
        self._stop.set()
        if self._task is not None:
            await self._task
        await self.flush()

    async def _run(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.interval_s)
                return
            try:
                await self.flush()
            except Exception as exc:
                self.last_error = exc
                log.warning("feedback flush failed, the events stay queued: %s", exc)

    async def __aenter__(self) -> AsyncFeedbackBatcher:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
