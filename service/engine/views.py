"""Read views: arms with their posteriors, a user's clusters and seen decay, stats, logs."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import numpy as np

from bandits import beta_interval, beta_mean, conversion_rate, decayed_counts
from service.engine.affinity import cluster_params, prior_out
from service.engine.context import Context
from service.engine.errors import InvalidRequest, NotFound
from service.engine.fatigue import SeenArrays, SeenDecay, seen_decay_out, seen_penalty
from service.engine.lift import cluster_lift
from service.engine.pending_lists import PendingLists
from service.engine.policies import POLICIES
from service.engine.recommend import cluster_weights
from service.engine.refresh import Snapshots
from service.engine.users import Users
from service.schemas import Arm, ArmList, ClusterArm, ItemArms, RankedArm, SeenItem, UserOut
from service.stats_schemas import (
    CatalogOverview,
    ClickStats,
    ClustersOverview,
    EventTotals,
    Overview,
    PolicyStats,
    StatsOut,
)
from service.store import LoggedList
from service.store.codecs import MICRO, outcome_field, stats_field


class Views:
    """What operators and dashboards read: computed from the store and the snapshot."""

    def __init__(
        self, ctx: Context, snapshots: Snapshots, users: Users, pending_lists: PendingLists
    ) -> None:
        self.ctx = ctx
        self.snapshots = snapshots
        self.users = users
        # This worker's lists not yet in Redis: written before a view reads the logs.
        self.pending_lists = pending_lists

    def _params(
        self,
        impressions: np.ndarray,
        clicks: np.ndarray,
        rows: dict[int, int] | None = None,
        item_ids: list[str] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Return (alpha, beta) for rows of counts in events (last row global), as served.

        Under the affinity prior, ``rows`` (matrix row -> cluster) and ``item_ids`` place
        the counts so that cluster arms get the priors the snapshot serves them with.
        """
        prior = self.ctx.settings.prior_model
        snap = self.snapshots.current
        posteriors = snap.posteriors
        catalog = (
            posteriors.catalog_prior if posteriors else prior.catalog(np.zeros(1), np.zeros(1))
        )
        fit = snap.affinity
        if fit is not None:
            prior = replace(prior, cluster_strength=fit.cluster_strength)
        params = prior.params(impressions, clicks, catalog)
        if fit is None or rows is None or item_ids is None or fit.prior_mean is None:
            return params
        columns = np.array([snap.catalog.index.get(i, -1) for i in item_ids], dtype=np.intp)
        return cluster_params(fit, prior.strength, params, impressions, clicks, rows, columns)

    def _arm(
        self, counts: np.ndarray, alpha: np.ndarray, beta: np.ndarray, rate: np.ndarray
    ) -> list[dict[str, Any]]:
        """Return arm views from counts (3, n: impressions, clicks, conversions) and params."""
        impressions, clicks, conversions = counts
        lo, hi = beta_interval(alpha, beta)
        mean = beta_mean(alpha, beta)
        return [
            {
                "impressions": _count_out(impressions[i]),
                "clicks": _count_out(clicks[i]),
                "conversions": _count_out(conversions[i]),
                "conversion_rate": float(rate[i]),
                "alpha": float(alpha[i]),
                "beta": float(beta[i]),
                "mean": float(mean[i]),
                "ci95": (float(lo[i]), float(hi[i])),
            }
            for i in range(len(alpha))
        ]

    def _gen(self) -> int | None:
        """Return the generation the snapshot's cluster priors were derived for."""
        posteriors = self.snapshots.current.posteriors
        return None if posteriors is None else posteriors.gen

    async def item_arms(self, item_id: str) -> ItemArms:
        """Return the item's global arm and its arm in each current cluster, read from Redis."""
        clusters = await self.ctx.store.load_clusters()
        values, times, since = await self.ctx.store.arm_counts(
            item_id, clusters.gen, clusters.k, half_life_s=self.ctx.settings.discount.half_life_s
        )
        updated = np.array(times, dtype=float)  # None -> NaN: never discounted
        counts = self.ctx.settings.discount.apply(
            np.array(values), updated, since, self.ctx.clock()
        )
        counts[:-1] /= MICRO
        if not counts.any() and await self.ctx.store.get_item(item_id) is None:
            raise NotFound("not_found", f"item {item_id!r} has no arm", "item_id")
        impressions, clicks, conversions = counts[:, :1], counts[:, 1:2], counts[:, 2:]
        clustered = {c: c for c in range(clusters.k)} if clusters.gen == self._gen() else None
        alpha, beta = self._params(impressions, clicks, clustered, [item_id])
        rate = conversion_rate(clicks, conversions, self.ctx.settings.prior_strength)
        *per_cluster, global_arm = self._arm(counts.T, alpha[:, 0], beta[:, 0], rate[:, 0])
        return ItemArms(
            item_id=item_id,
            gen=clusters.gen,
            global_=Arm(**global_arm),
            clusters=[ClusterArm(cluster=c, **arm) for c, arm in enumerate(per_cluster)],
        )

    async def list_arms(self, cluster: int | None, limit: int, offset: int) -> ArmList:
        """Return one page of a cluster's arms (global if cluster is None), best mean first."""
        clusters = await self.ctx.store.load_clusters()
        if cluster is not None and cluster >= clusters.k:
            raise InvalidRequest(
                "unknown_cluster",
                f"cluster {cluster} does not exist; the current clustering has k={clusters.k}",
                "cluster",
            )
        discount = self.ctx.settings.discount
        state = await self.ctx.store.load_counts(
            clusters.gen, clusters.k, half_life_s=discount.half_life_s
        )
        at = -1 if cluster is None else cluster
        listed = state.counts[at]
        ids = sorted(set(listed[0]) | set(listed[1]) | set(self.snapshots.current.catalog.item_ids))
        # (kind, row, item): the listed counts, then the global ones (cluster priors use them).
        stored = np.array(
            [[_row(c[kind], ids) for c in (listed, state.counts[-1])] for kind in range(3)]
        )
        updated = None
        if state.updated is not None:
            times = (state.updated[at], state.updated[-1])
            updated = np.array([[_row(t[kind], ids, np.nan) for t in times] for kind in range(3)])
        imp, clk, cnv = discount.apply(stored, updated, state.decay_since, self.ctx.clock())
        if cluster is not None:
            imp[0], clk[0], cnv[0] = imp[0] / MICRO, clk[0] / MICRO, cnv[0] / MICRO
        row = 0 if cluster is not None else 1
        clustered = {0: cluster} if cluster is not None and clusters.gen == self._gen() else None
        alpha, beta = (rows[row] for rows in self._params(imp, clk, clustered, ids))
        rate = conversion_rate(clk, cnv, self.ctx.settings.prior_strength)[row]
        listed_counts = np.array([imp[0], clk[0], cnv[0]])
        # Best mean first; ties by id so pages are stable.
        order = np.lexsort((np.arange(len(ids)), -beta_mean(alpha, beta)))
        page = order[offset : offset + limit]
        arms = self._arm(listed_counts[:, page], alpha[page], beta[page], rate[page])
        return ArmList(
            cluster=cluster,
            gen=clusters.gen,
            total=len(ids),
            arms=[RankedArm(item_id=ids[p], **a) for p, a in zip(page, arms, strict=True)],
        )

    async def user(self, user_id: str) -> UserOut:
        """Return the user's cluster, recent clicks and seen-decay state."""
        user = (await self.users.read_current([user_id]))[user_id]
        snap = self.snapshots.current
        membership, _, _ = self.users.membership(snap, user)
        now = self.ctx.clock()
        seen = []
        if user.seen:
            ids = list(user.seen)
            arrays = SeenArrays.of(user.seen.values())
            faded = decayed_counts(
                arrays.faded, now - arrays.updated, self.ctx.settings.seen_half_life_s
            )
            # As lists are served now: the fixed decay times the learned correction's mean, the
            # fixed decay alone, or none.
            decay = snap.seen_decay or SeenDecay.learn(self.ctx.settings)
            positions = np.arange(len(ids))
            multipliers = seen_penalty(
                decay, self.ctx.settings, positions, arrays, now, None
            ).multipliers
            seen = [
                SeenItem(
                    item_id=i, unclicked=float(u), ignored=int(n), multiplier=float(m),
                    updated=float(t),
                )
                for i, u, n, m, t in zip(
                    ids, faded, arrays.unclicked, multipliers, arrays.updated, strict=True
                )
            ]  # fmt: skip
            seen.sort(key=lambda s: s.multiplier)
        return UserOut(
            user_id=user_id,
            cluster=membership.top,
            membership=cluster_weights(membership),
            gen=snap.clusters.gen,
            recent_clicks=user.clicks,
            seen=seen,
        )

    def overview(self) -> Overview:
        """Return catalog, clustering and event totals as this worker's snapshot holds them."""
        snap = self.snapshots.current
        catalog, clusters, posteriors = snap.catalog, snap.clusters, snap.posteriors
        # The global row as stored (not discounted to now), so the totals only grow
        # between feedback batches when counts are not discounted.
        totals = posteriors.stored[:, -1, :].sum(axis=1) if posteriors else np.zeros(3)
        return Overview(
            catalog=CatalogOverview(
                items=len(catalog),
                active=int(catalog.active.sum()),
                with_embedding=int(catalog.has_embedding.sum()),
                version=catalog.version,
            ),
            clusters=ClustersOverview(
                gen=clusters.gen,
                k=clusters.k,
                sizes=clusters.sizes,
                fitted_at=clusters.fitted_at,
                inertia=clusters.inertia,
            ),
            events=EventTotals(
                impressions=_count_out(totals[0]),
                clicks=_count_out(totals[1]),
                conversions=_count_out(totals[2]),
            ),
            arms_version=posteriors.version if posteriors else 0,
            snapshot_age_s=round(snap.age_s(), 3),
        )

    async def stats(self) -> StatsOut:
        """Return the per-policy counters with CTRs and their intervals."""
        await self.pending_lists.flush()  # this worker's served lists count at once
        counters = await self.ctx.store.stats()
        lift_counters = await self.ctx.store.lift_evidence()

        def count(kind: str, policy: str, view: str | None = None) -> int:
            return int(counters.get(stats_field(kind, policy, view), 0))

        def clicks(policy: str, view: str | None = None) -> ClickStats:
            shown, clicked = count("imp", policy, view), count("clk", policy, view)
            return ClickStats(impressions=shown, clicks=clicked, **_ctr(shown, clicked))

        # A policy (or view) is listed once it has a counter of its own.
        def seen(policy: str, kinds: tuple[str, ...], view: str | None = None) -> bool:
            return any(count(kind, policy, view) for kind in kinds)

        policies: dict[str, PolicyStats] = {
            policy: PolicyStats(
                lists=count("lists", policy),
                conversions=count("cnv", policy),
                **clicks(policy).model_dump(),
            )
            for policy in POLICIES
            if seen(policy, ("lists", "imp", "clk", "cnv"))
        }
        views: dict[str, dict[str, ClickStats]] = {
            view: {p: clicks(p, view) for p in POLICIES if seen(p, ("imp", "clk"), view)}
            for view in ("agree", "replay")
        }
        return StatsOut(
            mode=self.ctx.settings.mode,
            baseline=self.ctx.settings.baseline,
            exploration=self.ctx.settings.exploration,
            since=counters.get("since"),
            policies=policies,
            agreement=views["agree"],
            replay=views["replay"],
            cluster_lift=cluster_lift(self.snapshots.current, lift_counters),
            affinity_prior=prior_out(self.snapshots.affinity, self.ctx.settings),
            seen_decay=seen_decay_out(
                self.snapshots.current.seen_decay or SeenDecay.learn(self.ctx.settings)
            ),
        )

    async def export_logs(
        self, since: float | None, until: float | None, limit: int
    ) -> AsyncIterator[str]:
        """Yield served lists joined with their feedback, one NDJSON line each."""
        # Fails with 503 before the stream starts, not inside it; and this worker's lists
        # waiting to be written are in the export (its own recommends read back).
        await self.pending_lists.flush()
        await self.ctx.store.ping()
        sent = 0
        async for batch in self.ctx.store.served_lists():
            for logged in batch:
                ts = logged.served.ts
                if (since is not None and ts < since) or (until is not None and ts >= until):
                    continue
                yield json.dumps(_served_line(logged), separators=(",", ":")) + "\n"
                sent += 1
                if sent >= limit:
                    return


def _served_line(logged: LoggedList) -> dict[str, Any]:
    """Return one export line: the served list, each item with its propensity and outcome."""
    served, outcomes = logged.served, logged.outcomes
    return {
        "rec_id": logged.rec_id,
        "user_id": served.user_id,
        "gen": served.gen,
        "cluster": served.cluster,
        "ts": served.ts,
        "surface": served.surface,
        "item_id": served.item_id,
        "pools": served.pools,
        "k": served.k,
        "n_candidates": served.n_candidates,
        "policy": served.policy,
        "shadows": served.shadows,
        "items": [
            {
                "item_id": item,
                "position": position,
                "score": score,
                "propensity": propensity,
                "impression": outcome_field("imp", item) in outcomes,
                "click": outcome_field("clk", item) in outcomes,
                "conversion": outcome_field("cnv", item) in outcomes,
            }
            for position, (item, score, propensity) in enumerate(
                zip(served.items, served.scores, served.propensities, strict=True)
            )
        ],
    }


def _ctr(impressions: int, clicks: int) -> dict[str, Any]:
    """Return the CTR and its 95% interval under a flat Beta(1, 1) prior.

    A click implies an impression (bandits.effective_impressions): clicks counted before
    their impressions never make the rate exceed 1.
    """
    shown = max(impressions, clicks)
    if shown == 0:
        return {"ctr": None, "ctr_ci95": None}
    lo, hi = beta_interval(np.array([1.0 + clicks]), np.array([1.0 + shown - clicks]))
    return {"ctr": clicks / shown, "ctr_ci95": (float(lo[0]), float(hi[0]))}


def _count_out(value: float) -> int | float:
    # Global counts are whole events; a cluster's can be fractional under soft membership.
    return int(value) if float(value).is_integer() else round(float(value), 6)


def _row(values: dict[str, float], ids: list[str], missing: float = 0.0) -> list[float]:
    return [values.get(i, missing) for i in ids]
