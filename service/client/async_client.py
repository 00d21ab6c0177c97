"""The asyncio client: one httpx.AsyncClient, retries with backoff, typed results."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from types import TracebackType
from typing import Literal, TypeVar

import httpx

from service.client import calls
from service.client.batch import AsyncFeedbackBatcher
from service.client.calls import MAX_EVENTS, Call, EventLike, ItemLike
from service.client.errors import connection_failed, error_from
from service.client.retry import Retry
from service.client.session import DEFAULT_URL, http_options
from service.schemas import (
    ArmList,
    BulkResult,
    FeedbackResult,
    FitResult,
    ItemArms,
    ItemOut,
    RecommendResponse,
    UserOut,
)
from service.stats_schemas import Overview, StatsOut

T = TypeVar("T")


class AsyncClient:
    """banditrec over HTTP for asyncio; safe to share between tasks of one event loop."""

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        *,
        api_key: str | None = None,
        timeout_s: float = 10.0,
        retry: Retry | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.retry = retry or Retry()
        options = http_options(base_url, api_key, timeout_s)
        self._http = httpx.AsyncClient(transport=transport, **options)

    async def send(self, call: Call[T]) -> T:
        """Send one call, resending it as `retry` allows; return its result or raise."""
        tries = 0
        while True:
            tries += 1
            try:
                response = await self._http.request(
                    call.method, call.path, json=call.json, params=call.params
                )
            except httpx.TransportError as exc:
                wait = self.retry.delay_after_failure(call.resend, tries, exc)
                if wait is None:
                    raise connection_failed(exc) from exc
            else:
                if response.is_success:
                    return call.parse(response)
                wait = self.retry.delay_after_answer(call.resend, tries, response)
                if wait is None:
                    raise error_from(response)
            await asyncio.sleep(wait)

    async def put_item(
        self,
        item_id: str,
        embedding: Sequence[float] | None = None,
        tags: Sequence[str] = (),
        pools: Sequence[str] = (),
        active: bool = True,
    ) -> ItemOut:
        """Create or replace one item."""
        return await self.send(calls.put_item(item_id, embedding, tags, pools, active))

    async def put_items(self, items: Iterable[ItemLike]) -> BulkResult:
        """Create or replace up to 1000 items, all or nothing."""
        return await self.send(calls.put_items(items))

    async def get_item(self, item_id: str) -> ItemOut:
        """Return one stored item."""
        return await self.send(calls.get_item(item_id))

    async def delete_item(self, item_id: str) -> None:
        """Stop serving an item; its counts are kept."""
        await self.send(calls.delete_item(item_id))

    async def recommend(
        self,
        user_id: str,
        k: int = 10,
        *,
        surface: Literal["home", "related"] = "home",
        item_id: str | None = None,
        candidates: Sequence[str] | None = None,
        exclude: Sequence[str] = (),
        pool: str | None = None,
        pools: Mapping[str, int] | None = None,
    ) -> RecommendResponse:
        """Return a ranked list for the user, logged under its rec_id."""
        return await self.send(
            calls.recommend(
                user_id, k, surface=surface, item_id=item_id, candidates=candidates,
                exclude=exclude, pool=pool, pools=pools,
            )
        )  # fmt: skip

    async def feedback(self, events: Sequence[EventLike]) -> FeedbackResult:
        """Send events (1000 per request); return the service's answers added up."""
        return calls.merge([await self.send(call) for call in calls.feedback(events)])

    def batcher(
        self, max_events: int = MAX_EVENTS, interval_s: float = 1.0
    ) -> AsyncFeedbackBatcher:
        """Return a batcher that sends events through this client on size, timer and close."""
        return AsyncFeedbackBatcher(self.feedback, max_events, interval_s)

    async def item_arms(self, item_id: str) -> ItemArms:
        """Return an item's global arm and its arm in every cluster."""
        return await self.send(calls.item_arms(item_id))

    async def arms(self, cluster: int | None = None, limit: int = 100, offset: int = 0) -> ArmList:
        """Return one page of a cluster's (or the global) arms, best posterior mean first."""
        return await self.send(calls.arms(cluster, limit, offset))

    async def user(self, user_id: str) -> UserOut:
        """Return a user's clusters, recent clicks and seen-decay penalties."""
        return await self.send(calls.user(user_id))

    async def stats(self) -> StatsOut:
        """Return the serving policies' lists, impressions, clicks and CTRs."""
        return await self.send(calls.stats())

    async def reset_stats(self) -> None:
        """Start the policies' counters afresh."""
        await self.send(calls.reset_stats())

    async def overview(self) -> Overview:
        """Return catalog size, the clustering, counted events and the snapshot's age."""
        return await self.send(calls.overview())

    async def fit_clusters(self, k: int | None = None, seed: int | None = None) -> FitResult:
        """Fit k-means on users' vectors: a new clustering generation."""
        return await self.send(calls.fit_clusters(k, seed))

    async def aclose(self) -> None:
        """Close the connections."""
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
