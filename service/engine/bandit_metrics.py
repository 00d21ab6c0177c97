"""What /metrics says about the bandit, computed at scrape time: per-policy counts from
the store's /v1/stats counters and per-cluster counts, catalog and clustering from the
snapshot, so that whichever worker answers a scrape reports the whole service.

Label sets stay bounded: policy is one of three, cluster one of k (at most 256) or
"global"; no item or user id is ever a label. docs/metrics.md lists every metric.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import numpy as np
from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from bandits import effective_impressions
from service.engine.context import Context
from service.engine.policies import POLICIES
from service.engine.refresh import Snapshots
from service.engine.snapshot import Posteriors
from service.store import StoreUnavailable
from service.store.codecs import MICRO, stats_field

# Scrapes closer together than this share one read of the per-policy counters.
_STATS_TTL_S = 1.0
# The label of the global arms' row (every cluster's events together).
GLOBAL = "global"

_SERVICE_WIDE = "Service-wide (read from Redis)"
_FROM_SNAPSHOT = "Service-wide, as of this worker's snapshot"


class BanditMetrics(Collector):
    """Collects the bandit's gauges and counters; `update()` first, then a registry scrape."""

    def __init__(self, ctx: Context, snapshots: Snapshots) -> None:
        self.ctx = ctx
        self.snapshots = snapshots
        # A registry of its own: each engine has one, the app's Metrics outlive engines.
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)
        self._stats: dict[str, float] | None = None
        self._memory: tuple[int, int] | None = None
        self._stats_read_at = -np.inf
        self._totals_of: Posteriors | None = None
        self._totals = np.zeros((0, 0))

    async def update(self) -> None:
        """Read the per-policy counters and Redis's memory use, at most once per second."""
        now = time.monotonic()
        if now - self._stats_read_at < _STATS_TTL_S:
            return
        self._stats_read_at = now
        try:
            self._stats = await self.ctx.store.stats()
            # Memory is what runs out first (docs/memory.md): one INFO with the counters.
            self._memory = await self.ctx.store.memory()
        except StoreUnavailable:
            # The scrape still answers, without the series read from Redis.
            self._stats, self._memory = None, None

    def collect(self) -> Iterator[Metric]:
        """Return every family (called by the registry during a scrape)."""
        yield from self._policy_families()
        yield from self._memory_families()
        yield from self._snapshot_families()

    def _memory_families(self) -> Iterator[Metric]:
        if self._memory is None:
            return
        used, limit = self._memory
        yield GaugeMetricFamily(
            "banditrec_redis_used_memory_bytes",
            f"Redis used_memory (INFO memory). {_SERVICE_WIDE}.",
            value=used,
        )
        yield GaugeMetricFamily(
            "banditrec_redis_maxmemory_bytes",
            f"Redis maxmemory (0: no limit). {_SERVICE_WIDE}.",
            value=limit,
        )

    def _policy_families(self) -> Iterator[Metric]:
        stats = self._stats
        if stats is None:
            return
        kinds = {
            "lists": ("served_lists", "Lists served"),
            "imp": ("impressions", "Impressions reported on lists served"),
            "clk": ("clicks", "Clicks reported on lists served"),
            "cnv": ("conversions", "Conversions reported on lists served"),
        }
        for kind, (name, what) in kinds.items():
            family = CounterMetricFamily(
                f"banditrec_policy_{name}",
                f"{what} by each serving policy, since the last DELETE /v1/stats. {_SERVICE_WIDE}.",
                labels=["policy"],
            )
            for policy in POLICIES:
                family.add_metric([policy], stats.get(stats_field(kind, policy), 0.0))
            yield family
        ctr = GaugeMetricFamily(
            "banditrec_policy_ctr",
            f"Clicks per impression of each serving policy's lists, since the last DELETE "
            f"/v1/stats, a click counting as an impression (never above 1, as /v1/stats); "
            f"absent before its first impression or click. {_SERVICE_WIDE}.",
            labels=["policy"],
        )
        for policy in POLICIES:
            clicked = stats.get(stats_field("clk", policy), 0.0)
            shown = max(stats.get(stats_field("imp", policy), 0.0), clicked)
            if shown > 0:
                ctr.add_metric([policy], clicked / shown)
        yield ctr

    def _snapshot_families(self) -> Iterator[Metric]:
        snap = self.snapshots.current
        lag = GaugeMetricFamily(
            "banditrec_snapshot_version_lag",
            "Count versions (feedback batches) the store was ahead of this worker's snapshot "
            "when its last refresh began. This worker.",
        )
        lag.add_metric([], self.snapshots.version_lag)
        yield lag
        if not snap.loaded:
            return
        catalog, clusters = snap.catalog, snap.clusters
        active = int(np.count_nonzero(catalog.active))
        items = GaugeMetricFamily(
            "banditrec_catalog_items",
            f"Items in the catalog, by whether they are served. {_FROM_SNAPSHOT}.",
            labels=["state"],
        )
        items.add_metric(["active"], active)
        items.add_metric(["inactive"], len(catalog) - active)
        yield items
        yield GaugeMetricFamily(
            "banditrec_clusters",
            f"Clusters of the current clustering generation (1 before any fit). {_FROM_SNAPSHOT}.",
            value=clusters.k,
        )
        yield GaugeMetricFamily(
            "banditrec_cluster_generation",
            f"Clustering generation (0 before any fit). {_FROM_SNAPSHOT}.",
            value=clusters.gen,
        )
        users = GaugeMetricFamily(
            "banditrec_cluster_users",
            f"Users the last fit put in each cluster (absent before any fit). {_FROM_SNAPSHOT}.",
            labels=["cluster"],
        )
        for cluster, size in enumerate(clusters.sizes):
            users.add_metric([str(cluster)], size)
        yield users
        if snap.posteriors is not None:
            yield from self._cluster_families(snap.posteriors)

    def _cluster_families(self, posteriors: Posteriors) -> Iterator[Metric]:
        totals = self._cluster_totals(posteriors)
        labels = [*(str(c) for c in range(totals.shape[1] - 1)), GLOBAL]
        counted = (
            f"of the current generation's arms, summed over the catalog's items, as stored "
            f"(discounted when BANDITREC_HALF_LIFE_H is set); cluster=global is every "
            f"event. {_FROM_SNAPSHOT}."
        )
        impressions = GaugeMetricFamily(
            "banditrec_cluster_impressions", f"Impressions {counted}", labels=["cluster"]
        )
        clicks = GaugeMetricFamily(
            "banditrec_cluster_clicks", f"Clicks {counted}", labels=["cluster"]
        )
        ctr = GaugeMetricFamily(
            "banditrec_cluster_ctr",
            f"Clicks per impression {counted} Each arm counts max(impressions, clicks) "
            "impressions (a click implies one), so it never exceeds 1; absent for a cluster "
            "without impressions or clicks.",
            labels=["cluster"],
        )
        for row, label in enumerate(labels):
            shown, clicked = float(totals[0, row]), float(totals[1, row])
            impressions.add_metric([label], shown)
            clicks.add_metric([label], clicked)
            if totals[2, row] > 0:
                ctr.add_metric([label], clicked / float(totals[2, row]))
        yield impressions
        yield clicks
        yield ctr

    def _cluster_totals(self, posteriors: Posteriors) -> np.ndarray:
        """Return (impressions, clicks, effective impressions) per row in events, computed
        once per snapshot; effective impressions are bandits.effective_impressions."""
        if self._totals_of is not posteriors:
            imp, clk = posteriors.stored[:2]
            totals = np.stack([imp, clk, effective_impressions(imp, clk)]).sum(axis=2)
            totals[:, :-1] /= MICRO  # cluster rows are stored in millionths of an event
            self._totals, self._totals_of = totals, posteriors
        return self._totals
