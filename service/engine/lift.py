"""The lift of cluster arms over the global arms, from the snapshot's posteriors."""

from __future__ import annotations

import numpy as np

from service.engine.snapshot import Snapshot
from service.stats_schemas import ClusterLift, LiftOut
from service.store.codecs import MICRO

# Items per compared ranking: about one home screen.
TOP_M = 10


def top_m_ctrs(
    means: np.ndarray, active: np.ndarray, top_m: int
) -> tuple[np.ndarray, np.ndarray, int]:
    """Return per cluster the mean CTR of its own top-m and of the global row's top-m, and m.

    ``means`` is (k + 1, n) posterior means, global row last; both rankings are judged by
    the cluster's means, so the first is never below the second. Ties in the global ranking
    go to the lower position.
    """
    shown = means[:, active]
    k = shown.shape[0] - 1
    m = min(top_m, shown.shape[1])
    if m == 0:
        return np.zeros(k), np.zeros(k), 0
    clusters = shown[:-1]
    own = -np.sort(-clusters, axis=1)[:, :m].mean(axis=1)
    best = np.argsort(-shown[-1], kind="stable")[:m]
    return own, clusters[:, best].mean(axis=1), m


def cluster_lift(snap: Snapshot, top_m: int = TOP_M) -> LiftOut | None:
    """Return the cluster arms' lift over the global arms, or None before there are clusters."""
    posteriors = snap.posteriors
    if posteriors is None or posteriors.alpha.shape[0] < 2:
        return None
    means = posteriors.alpha / (posteriors.alpha + posteriors.beta)
    own, common, m = top_m_ctrs(means, snap.catalog.active, top_m)
    # Cluster rows are stored in millionths of an event.
    traffic = posteriors.stored[0, :-1].sum(axis=1) / MICRO
    total = float(traffic.sum())
    overall_own = float(traffic @ own) / total if total > 0 else None
    overall_common = float(traffic @ common) / total if total > 0 else None
    return LiftOut(
        gen=posteriors.gen,
        top_m=m,
        cluster_ctr=overall_own,
        global_ctr=overall_common,
        lift=_ratio(overall_own, overall_common),
        clusters=[
            ClusterLift(
                cluster=c,
                traffic=round(float(traffic[c]), 6),
                cluster_ctr=float(own[c]),
                global_ctr=float(common[c]),
                lift=_ratio(float(own[c]), float(common[c])),
            )
            for c in range(len(own))
        ],
    )


def _ratio(top: float | None, bottom: float | None) -> float | None:
    if top is None or bottom is None or bottom <= 0.0:
        return None
    return top / bottom
