"""Keeps the in-process snapshot current: reloads what changed, follows count deltas."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import numpy as np

from clustering import normalize_rows
from service.engine.affinity import AffinityPrior
from service.engine.context import Context
from service.engine.fatigue import BUCKETS, SeenDecay
from service.engine.outage import OutageLog
from service.engine.snapshot import Catalog, Posteriors, Prior, Snapshot
from service.logs import log_event
from service.store import ClusterModel, StoreUnavailable

log = logging.getLogger("banditrec")

# Change entries applied per refresh; a worker further behind reloads in full instead.
_MAX_CHANGES = 10_000


class Snapshots:
    """Owns the current Snapshot and refreshes it from the store."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.current = Snapshot()
        # Count versions the store was ahead of the snapshot when the last refresh began.
        self.version_lag = 0
        self.outage = OutageLog()
        self._lock = asyncio.Lock()
        settings = ctx.settings
        self.affinity = (
            AffinityPrior(settings.prior_model, settings.affinity_refit_s)
            if settings.prior == "affinity"
            else None
        )

    def _prior(
        self, catalog: Catalog, clusters: ClusterModel, centers: np.ndarray | None, now: float
    ) -> Prior:
        """Return the prior to derive posteriors with, following catalog and clustering."""
        if self.affinity is None:
            return self.ctx.settings.prior_model
        return self.affinity.follow(catalog, clusters, centers, now)

    async def refresh(self) -> Snapshot:
        """Reload whatever changed in Redis since the last refresh; return the new snapshot."""
        ctx = self.ctx
        async with self._lock:
            old = self.current
            versions = await ctx.store.versions()
            catalog, clusters, centers = old.catalog, old.clusters, old.unit_centers
            if not old.loaded or versions.items != catalog.version:
                catalog = Catalog.build(*await ctx.store.load_items())
            if not old.loaded or versions.clusters != clusters.gen:
                clusters = await ctx.store.load_clusters()
                centers = None if clusters.centers is None else normalize_rows(clusters.centers)
            posteriors = old.posteriors
            discount, now = ctx.settings.discount, ctx.clock()
            prior = self._prior(catalog, clusters, centers, now)
            self.version_lag = 0 if posteriors is None else versions.arms - posteriors.version
            started = time.perf_counter()
            reason = None
            if posteriors is None or catalog is not old.catalog or clusters is not old.clusters:
                reason = _reload_reason(old, catalog, clusters)
                posteriors = await self.load_posteriors(catalog, clusters, prior)
            elif versions.arms != posteriors.version:
                # Only counts moved: apply the feedback batches since our version.
                changes = await ctx.store.read_changes(posteriors.positions, _MAX_CHANGES)
                advanced = posteriors.apply(changes, catalog, prior, discount, now)
                if advanced is None or advanced.version < versions.arms:
                    ctx.metrics.snapshot_full_reloads.inc()
                    reason = "behind"
                    advanced = await self.load_posteriors(catalog, clusters, prior)
                posteriors = advanced
            elif discount.on and now - posteriors.derived_at > discount.half_life_s / 1000:
                # No feedback, but discounted evidence has faded by more than 0.07%.
                posteriors = posteriors.rederive(prior, discount, now)
            seen_decay = old.seen_decay
            if (
                seen_decay is None
                or old.posteriors is None
                or posteriors.version != old.posteriors.version
            ):
                # Every event that adds evidence also moves the count version.
                evidence = await ctx.store.fatigue_evidence(BUCKETS.size)
                seen_decay = SeenDecay.learn(ctx.settings, evidence)
            self.current = Snapshot(
                catalog, clusters, centers, posteriors, time.monotonic(), True,
                affinity=None if self.affinity is None else self.affinity.state(),
                seen_decay=seen_decay,
            )  # fmt: skip
            ctx.metrics.snapshot_refreshes.inc()
            if reason is not None:
                log_event(
                    "snapshot_reloaded",
                    reason=reason,
                    items=len(catalog),
                    gen=clusters.gen,
                    k=clusters.k,
                    counts_version=posteriors.version,
                    version_lag=self.version_lag,
                    duration_ms=round((time.perf_counter() - started) * 1000, 3),
                )
            return self.current

    async def load_posteriors(
        self, catalog: Catalog, clusters: ClusterModel, prior: Prior | None = None
    ) -> Posteriors:
        """Return posteriors built from a full read of the counts of this clustering."""
        settings = self.ctx.settings
        discount = settings.discount
        state = await self.ctx.store.load_counts(
            clusters.gen, clusters.k, half_life_s=discount.half_life_s
        )
        # Without one given: the prior the snapshot was last derived with.
        prior = prior or self.affinity or settings.prior_model
        return Posteriors.build(state, clusters.gen, catalog, prior, discount, self.ctx.clock())

    async def refresh_after_write(self) -> None:
        """Make this worker read its own catalog writes; other workers follow within a period."""
        with contextlib.suppress(StoreUnavailable):
            await self.refresh()

    async def run(self, stop: asyncio.Event) -> None:
        """Refresh every snapshot_ms until `stop` is set; survive Redis outages."""
        metrics = self.ctx.metrics
        period = self.ctx.settings.snapshot_ms / 1000
        # A stop event rather than task cancellation: redis-py can turn a cancellation that
        # lands mid-command into a connection error, which this loop must survive.
        while not stop.is_set():
            try:
                await self.refresh()
                self.outage.succeeded()
            except StoreUnavailable as exc:
                metrics.snapshot_failures.inc()
                # Logged once per outage by OutageLog, not once per period.
                self.outage.failed(exc)
                log.debug("snapshot refresh failed: %s", exc)
            except Exception:
                metrics.snapshot_failures.inc()
                log.exception("snapshot refresh failed")
            metrics.snapshot_age.set(self.current.age_s())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), period)


def _reload_reason(old: Snapshot, catalog: Catalog, clusters: ClusterModel) -> str:
    """Return why every count is read again: start, catalog or clusters."""
    if old.posteriors is None:
        return "start"
    return "clusters" if clusters is not old.clusters else "catalog"
