"""Domain code between the routes and the store: no HTTP here, only engine errors."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from service.config import Settings
from service.engine.bandit_metrics import BanditMetrics
from service.engine.context import Context
from service.engine.feedback import Feedback
from service.engine.items import Items
from service.engine.pending_lists import PendingLists
from service.engine.recommend import Recommender
from service.engine.refits import Refits
from service.engine.refresh import Snapshots
from service.engine.snapshot import Snapshot
from service.engine.users import Users
from service.engine.views import Views
from service.metrics import Metrics
from service.store import Store


class Engine:
    """One worker's engine: the parts routes call, sharing one snapshot and one context."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        metrics: Metrics,
        seed: int | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.ctx = Context(settings, store, metrics, clock)
        self.snapshots = Snapshots(self.ctx)
        self.users = Users(self.ctx, self.snapshots)
        self.items = Items(self.ctx, self.snapshots)
        # Served lists written after the response: recommend adds, feedback reads them too.
        self.pending_lists = PendingLists(self.ctx)
        self.recommender = Recommender(
            self.ctx, self.snapshots, self.users, np.random.default_rng(seed), self.pending_lists
        )
        self.feedback = Feedback(self.ctx, self.snapshots, self.users, self.pending_lists)
        self.views = Views(self.ctx, self.snapshots, self.users, self.pending_lists)
        self.refits = Refits(self.ctx, self.snapshots)
        self.bandit_metrics = BanditMetrics(self.ctx, self.snapshots)

    @property
    def settings(self) -> Settings:
        """Return the settings every part reads."""
        return self.ctx.settings

    @property
    def store(self) -> Store:
        """Return the Redis store."""
        return self.ctx.store

    @property
    def metrics(self) -> Metrics:
        """Return this worker's metrics."""
        return self.ctx.metrics

    @property
    def clock(self) -> Callable[[], float]:
        """Return the wall clock of events and discounting."""
        return self.ctx.clock

    @clock.setter
    def clock(self, clock: Callable[[], float]) -> None:
        self.ctx.clock = clock

    @property
    def snapshot(self) -> Snapshot:
        """Return the current snapshot."""
        return self.snapshots.current

    async def refresh(self) -> Snapshot:
        """Bring the snapshot up to date now; return it."""
        return await self.snapshots.refresh()


__all__ = ["Engine"]
