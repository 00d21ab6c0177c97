"""Cluster refits: k-means on users' vectors, stored as a new clustering generation."""

from __future__ import annotations

import asyncio
import time

import numpy as np

from bandits import CLUSTER_CHOICES, clusters_for_history
from clustering import KMeans, assign_hard, cluster_sizes, normalize_rows, user_vector
from service.engine.context import Context
from service.engine.errors import InvalidRequest
from service.engine.membership import embedded_rows
from service.engine.refresh import Snapshots
from service.engine.snapshot import Catalog, Snapshot
from service.logs import log_event
from service.schemas import FitRequest, FitResult

# k-means++ starts per fit; the best inertia wins (one start can merge two tastes).
_FIT_STARTS = 4


class Refits:
    """Fits clusters from the users' click histories, one fit at a time per worker."""

    def __init__(self, ctx: Context, snapshots: Snapshots) -> None:
        self.ctx = ctx
        self.snapshots = snapshots
        self._lock = asyncio.Lock()

    async def fit(self, request: FitRequest) -> FitResult:
        """Fit k-means on users' vectors, store the centres as a new generation."""
        settings, store = self.ctx.settings, self.ctx.store
        async with self._lock:
            started = time.perf_counter()
            snap = await self.snapshots.refresh()
            histories = await store.user_histories(settings.fit_max_users, settings.history_n)
            vectors = await asyncio.to_thread(_user_vectors, snap.catalog, histories)
            k = request.k if request.k is not None else _k_for(snap, len(vectors))
            if len(vectors) < k:
                raise InvalidRequest(
                    "not_enough_users",
                    f"k={k} needs at least {k} users who clicked items with "
                    f"embeddings; found {len(vectors)}",
                    "k",
                )
            rng = np.random.default_rng(request.seed)
            kmeans = KMeans(n_clusters=k, n_init=_FIT_STARTS)
            model = await asyncio.to_thread(kmeans.fit, vectors, rng)
            labels = assign_hard(vectors, normalize_rows(model.centers_))
            sizes = [int(s) for s in cluster_sizes(labels, k)]
            stored = await store.save_clusters(model.centers_, model.inertia_, sizes)
            log_event(
                "clusters_fitted",
                gen=stored.gen,
                k=stored.k,
                n_users=len(vectors),
                sizes=sizes,
                inertia=round(float(model.inertia_), 6),
                seed=request.seed,
                duration_ms=round((time.perf_counter() - started) * 1000, 3),
            )
            await self.snapshots.refresh()
            return FitResult(
                gen=stored.gen,
                k=stored.k,
                n_users=len(vectors),
                sizes=sizes,
                inertia=float(model.inertia_),
            )


def _k_for(snap: Snapshot, n_users: int) -> int:
    """Return the clusters the catalog's history and the ``n_users`` users with one cover
    (bandits.clusters_for_history): as the simulator and the HTTP runs measured, more
    clusters only pay once their arms can be taught."""
    if snap.posteriors is None:
        return min(CLUSTER_CHOICES)
    counts = snap.posteriors.global_counts
    return clusters_for_history(counts[0], counts[1], n_users)


def _user_vectors(catalog: Catalog, histories: dict[str, list[str]]) -> np.ndarray:
    """Return one unit vector per user whose history has at least one embedded item."""
    vectors = []
    for clicks in histories.values():
        rows = embedded_rows(catalog, clicks)
        if rows:
            vectors.append(user_vector(catalog.embeddings[rows]))
    dim = catalog.embeddings.shape[1]
    return np.array(vectors) if vectors else np.zeros((0, dim))
