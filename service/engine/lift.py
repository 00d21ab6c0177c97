"""The lift of cluster arms over the global arms: judged by the snapshot's posteriors, and
measured on the service's own clicks."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from service.engine.snapshot import Snapshot
from service.stats_schemas import ClusterLift, LiftOut, MeasuredLift
from service.store.codecs import LIFT_FIELDS, MICRO, ServedList

# Means are logged to 6 digits and may round to 0 or 1: keep the log-likelihood finite.
_EPS = 1e-6

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


def prediction_of(rec: ServedList, kind: str, item_id: str) -> tuple[tuple[str, float], ...]:
    """Return the lift counters' increments of one new event on an item of a logged list.

    The log-likelihood of a list's outcomes is summed without knowing them at once: an
    impression adds log(1 - p) for each arm set, as if not clicked; its click adds
    log(p) - log(1 - p), turning that into log(p). So each click must come with an
    impression of the same item, as the API asks. Lists ranked by the global arms (users
    without clusters) and lists of earlier releases add nothing.
    """
    if kind not in ("imp", "clk") or rec.means is None or rec.global_means is None:
        return ()
    at = rec.items.index(item_id)
    cluster = min(max(rec.means[at], _EPS), 1 - _EPS)
    common = min(max(rec.global_means[at], _EPS), 1 - _EPS)
    if kind == "imp":
        return (
            ("lift:imp", 1.0),
            ("lift:cll", math.log1p(-cluster)),
            ("lift:gll", math.log1p(-common)),
        )
    return (
        ("lift:clk", 1.0),
        ("lift:cll", math.log(cluster) - math.log1p(-cluster)),
        ("lift:gll", math.log(common) - math.log1p(-common)),
    )


def measured_lift(sums: Mapping[str, float]) -> MeasuredLift | None:
    """Return the measured lift from the summed counters, or None before any impression."""
    impressions, clicks, cluster_ll, global_ll = (sums.get(f, 0.0) for f in LIFT_FIELDS)
    if impressions <= 0:
        return None
    cluster_loss, global_loss = -cluster_ll / impressions, -global_ll / impressions
    return MeasuredLift(
        impressions=impressions,
        clicks=clicks,
        log_loss_cluster=cluster_loss,
        log_loss_global=global_loss,
        gain=global_loss - cluster_loss,
        relative_gain=(global_loss - cluster_loss) / global_loss if global_loss > 0 else None,
    )


def cluster_lift(
    snap: Snapshot, measured: Mapping[str, float] | None = None, top_m: int = TOP_M
) -> LiftOut | None:
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
        measured=measured_lift(measured or {}),
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
