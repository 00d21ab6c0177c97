"""Where pure code meets I/O: snapshot refresh, recommend, feedback, clustering, arm views."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from typing import Any

import numpy as np

from bandits import beta_interval, beta_mean, decayed_counts, mix_posteriors, seen_decay
from clustering import (
    KMeans,
    assign_hard,
    cluster_sizes,
    most_similar,
    normalize_rows,
    user_vector,
)
from service.config import Settings
from service.errors import ApiError
from service.membership import (
    Membership,
    embedded_rows,
    memberships_of,
)
from service.metrics import Metrics
from service.schemas import (
    Arm,
    ArmList,
    ClickStats,
    ClusterArm,
    ClusterWeight,
    FeedbackBatch,
    FeedbackEvent,
    FeedbackResult,
    FitRequest,
    FitResult,
    ItemArms,
    PolicyStats,
    RankedArm,
    RecommendRequest,
    RecommendResponse,
    ScoredItem,
    SeenItem,
    StatsOut,
    UserOut,
)
from service.serving import POLICIES, Candidates, Served, Serving, stats_fields
from service.snapshot import Catalog, Posteriors, Snapshot, conversion_rate, posterior_params
from service.store import (
    ArmEvent,
    ClusterModel,
    LoggedList,
    Store,
    StoreUnavailable,
    UserEvent,
    UserState,
)
from service.store.codecs import EVENT_KINDS, MICRO, ServedList

log = logging.getLogger("banditrec")

# Events may arrive a little ahead of our clock; further ahead is a client bug.
_MAX_CLOCK_SKEW_S = 300.0
_USER_CACHE_SIZE = 100_000
# Change entries applied per refresh; a worker further behind reloads in full instead.
_MAX_CHANGES = 10_000
# k-means++ starts per fit; the best inertia wins (one start can merge two tastes).
_FIT_STARTS = 4


class Recommender:
    """Serves ranked lists from the snapshot and turns feedback into counts in the store."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        metrics: Metrics,
        seed: int | None = None,
        clock: Callable[[], float] = time.time,
    ):
        self.settings = settings
        self.store = store
        self.metrics = metrics
        # Wall-clock time of events and of discounting; tests pass a clock that jumps hours.
        self.clock = clock
        self.snapshot = Snapshot()
        self._rng = np.random.default_rng(seed)
        self._refresh_lock = asyncio.Lock()
        self._fit_lock = asyncio.Lock()
        # Last known membership per user, so recommend still personalises while Redis is down.
        self._memberships: OrderedDict[str, Membership] = OrderedDict()
        self.serving = Serving(settings.mode, settings.exploration, settings.propensity_samples)

    # -- snapshot ---------------------------------------------------------------------

    async def refresh(self) -> Snapshot:
        """Reload whatever changed in Redis since the last refresh; return the new snapshot."""
        async with self._refresh_lock:
            old = self.snapshot
            versions = await self.store.versions()
            catalog, clusters, centers = old.catalog, old.clusters, old.unit_centers
            if not old.loaded or versions.items != catalog.version:
                catalog = Catalog.build(*await self.store.load_items())
            if not old.loaded or versions.clusters != clusters.gen:
                clusters = await self.store.load_clusters()
                centers = None if clusters.centers is None else normalize_rows(clusters.centers)
            posteriors = old.posteriors
            prior, discount, now = self.settings.prior_model, self.settings.discount, self.clock()
            if posteriors is None or catalog is not old.catalog or clusters is not old.clusters:
                posteriors = await self._load_posteriors(catalog, clusters)
            elif versions.arms != posteriors.version:
                # Only counts moved: apply the feedback batches since our version.
                changes = await self.store.read_changes(posteriors.stream_id, _MAX_CHANGES)
                advanced = posteriors.apply(changes, catalog, prior, discount, now)
                if advanced is None or advanced.version < versions.arms:
                    self.metrics.snapshot_full_reloads.inc()
                    advanced = await self._load_posteriors(catalog, clusters)
                posteriors = advanced
            elif discount.on and now - posteriors.derived_at > discount.half_life_s / 1000:
                # No feedback, but discounted evidence has faded by more than 0.07%.
                posteriors = posteriors.rederive(prior, discount, now)
            self.snapshot = Snapshot(catalog, clusters, centers, posteriors, time.monotonic(), True)
            self.metrics.snapshot_refreshes.inc()
            return self.snapshot

    async def _load_posteriors(self, catalog: Catalog, clusters: ClusterModel) -> Posteriors:
        discount = self.settings.discount
        state = await self.store.load_counts(clusters.gen, clusters.k, with_times=discount.on)
        return Posteriors.build(
            state, clusters.gen, catalog, self.settings.prior_model, discount, self.clock()
        )

    async def refresh_after_write(self) -> None:
        """Make this worker read its own catalog writes; other workers follow within a period."""
        with contextlib.suppress(StoreUnavailable):
            await self.refresh()

    async def run_refresh_loop(self, stop: asyncio.Event) -> None:
        """Refresh the snapshot every snapshot_ms until `stop` is set; survive Redis outages."""
        period = self.settings.snapshot_ms / 1000
        # A stop event rather than task cancellation: redis-py can turn a cancellation that
        # lands mid-command into a connection error, which this loop must survive.
        while not stop.is_set():
            try:
                await self.refresh()
            except StoreUnavailable as exc:
                self.metrics.snapshot_failures.inc()
                log.warning("snapshot refresh failed: %s", exc)
            except Exception:
                self.metrics.snapshot_failures.inc()
                log.exception("snapshot refresh failed")
            self.metrics.snapshot_age.set(self.snapshot.age_s())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), period)

    # -- users ------------------------------------------------------------------------

    def _membership(self, snap: Snapshot, user: UserState) -> tuple[Membership, str, bool]:
        """Return (membership, cache key, whether the cached value was stale) for a user."""
        key = self._assigned_key(snap, user)
        cached = self._cached_membership(snap, user)
        if cached is not None:
            return cached, key, False
        return self._current_memberships(snap, {"": user})[""], key, True

    def _current_memberships(
        self, snap: Snapshot, users: dict[str, UserState]
    ) -> dict[str, Membership]:
        """Return users' memberships: cached where still valid, the rest computed at once."""
        found = {u: self._cached_membership(snap, state) for u, state in users.items()}
        stale = [u for u, m in found.items() if m is None]
        settings = self.settings
        computed = memberships_of(
            snap,
            [users[u].clicks for u in stale],
            settings.membership == "soft",
            settings.soft_temperature,
            settings.soft_top_m,
        )
        memberships = {u: m for u, m in found.items() if m is not None}
        memberships.update(zip(stale, computed, strict=True))
        return memberships

    def _assigned_key(self, snap: Snapshot, user: UserState) -> str:
        return f"{snap.clusters.gen}:{user.hist}:{self.settings.membership}"

    def _cached_membership(self, snap: Snapshot, user: UserState) -> Membership | None:
        """Return the user's stored membership if it was computed for their current state."""
        if user.membership is None or user.assigned != self._assigned_key(snap, user):
            return None
        cached = Membership.decode(user.membership)
        return cached if cached.fits(snap.clusters.k) else None

    def _remember(self, user_id: str, membership: Membership) -> None:
        self._memberships[user_id] = membership
        self._memberships.move_to_end(user_id)
        if len(self._memberships) > _USER_CACHE_SIZE:
            self._memberships.popitem(last=False)

    def _seen_multipliers(
        self, catalog: Catalog, seen: dict[str, tuple[float, float]], now: float
    ) -> tuple[np.ndarray, np.ndarray]:
        """Return (catalog positions, multipliers) for the user's unclicked impressions."""
        known = [(catalog.index[i], n, t) for i, (n, t) in seen.items() if i in catalog.index]
        if not known or self.settings.seen_gamma == 1.0:
            return np.zeros(0, dtype=np.intp), np.zeros(0)
        positions, counts, updated = (np.array(col) for col in zip(*known, strict=True))
        unclicked = decayed_counts(counts, now - updated, self.settings.seen_half_life_s)
        return positions.astype(np.intp), seen_decay(unclicked, self.settings.seen_gamma)

    async def _read_users_current(
        self,
        user_ids: list[str],
        *,
        for_feedback: bool = False,
        last_clicks_of: frozenset[str] | set[str] = frozenset(),
    ) -> dict[str, UserState]:
        """Return users' state, first catching up if another worker changed catalog or clusters."""
        users, items_version, gen = await self.store.read_users(
            user_ids,
            self.settings.history_n,
            with_seen=not for_feedback,
            last_clicks_of=last_clicks_of,
        )
        snap = self.snapshot
        if items_version != snap.catalog.version or gen != snap.clusters.gen:
            await self.refresh()
        return users

    # -- recommend --------------------------------------------------------------------

    async def _candidates(
        self, snap: Snapshot, request: RecommendRequest
    ) -> tuple[Snapshot, np.ndarray]:
        """Return the snapshot used and the positions, in its catalog, of servable items."""
        named = request.candidates or ([request.item_id] if request.item_id else [])
        if any(i not in snap.catalog.index for i in named):
            # The item may have been created since the last refresh.
            with contextlib.suppress(StoreUnavailable):
                snap = await self.refresh()
        catalog = snap.catalog
        unknown = [i for i in named if i not in catalog.index]
        if unknown:
            field = "candidates" if request.candidates else "item_id"
            shown = ", ".join(unknown[:5])
            raise ApiError(422, "unknown_item", f"not in the catalog: {shown}", field)
        for name in [request.pool, *(request.pools or {})]:
            if name is not None and name not in catalog.pools:
                field = "pool" if name == request.pool else f"pools.{name}"
                raise ApiError(422, "unknown_pool", f"no item is in pool {name!r}", field)
        if request.surface == "related":
            positions = self._related(catalog, catalog.index[str(request.item_id)], request.pool)
        elif request.candidates is not None:
            positions = np.unique([catalog.index[i] for i in request.candidates])
        elif request.pool is not None:
            positions = catalog.pools[request.pool]
        else:
            positions = np.arange(len(catalog))
        positions = positions[catalog.active[positions]]
        if request.exclude:
            excluded = [catalog.index[i] for i in request.exclude if i in catalog.index]
            positions = positions[~np.isin(positions, excluded)]
        return snap, positions

    def _related(self, catalog: Catalog, anchor: int, pool: str | None) -> np.ndarray:
        """Return positions of the active items most similar to the anchor, best first."""
        if not catalog.has_embedding[anchor]:
            raise ApiError(
                422,
                "no_embedding",
                f"item {catalog.item_ids[anchor]!r} has no embedding to find similar items by",
                "item_id",
            )
        allowed = catalog.active & catalog.has_embedding
        allowed[anchor] = False
        if pool is not None:
            in_pool = np.zeros(len(catalog), dtype=bool)
            in_pool[catalog.pools[pool]] = True
            allowed &= in_pool
        return most_similar(
            catalog.embeddings, catalog.embeddings[anchor], self.settings.related_n, allowed
        )

    async def recommend(self, request: RecommendRequest) -> RecommendResponse:
        """Rank candidates for the user with their cluster's bandit and seen decay."""
        _check_combination(request)
        snap = self.snapshot
        stale = not snap.loaded or snap.age_s() > self.settings.stale_after_s
        now = self.clock()
        user: UserState | None = None
        try:
            user = (await self._read_users_current([request.user_id]))[request.user_id]
        except StoreUnavailable:
            stale = True
        snap = self.snapshot  # we yielded; a refresh may have landed meanwhile
        if user is not None:
            membership, assigned, changed = self._membership(snap, user)
            self._remember(request.user_id, membership)
        else:
            membership, assigned, changed = self._memberships.get(request.user_id), "", False
        if membership is None or not membership.fits(snap.clusters.k):
            membership = Membership()
        # Positions index this snapshot's arrays only: never re-read self.snapshot below.
        snap, positions = await self._candidates(snap, request)
        items: list[ScoredItem] = []
        served: Served | None = None
        ids = snap.catalog.item_ids
        if len(positions) and snap.posteriors is not None:
            multipliers = np.ones(len(snap.catalog))
            if user is not None:
                seen_at, seen_mult = self._seen_multipliers(snap.catalog, user.seen, now)
                multipliers[seen_at] = seen_mult
            alpha, beta = _posteriors_for(snap, membership, positions)
            factors = multipliers[positions]
            if self.settings.conversion_weight > 0:
                rate = _conversion_rate_for(snap, membership, positions)
                factors = factors * rate**self.settings.conversion_weight
            candidates = Candidates(
                alpha,
                beta,
                factors,
                _baseline_scores(snap, request, positions, self.settings.baseline),
                request.k,
                [
                    np.flatnonzero(np.isin(positions, snap.catalog.pools[name]))
                    for name in request.pools or {}
                ],
                list((request.pools or {}).values()),
            )
            served = self.serving.serve(candidates, self._rng)
            propensities: list[float | None] = [None] * len(served.top)
            if served.propensities is not None:
                propensities = served.propensities.tolist()
            items = [
                ScoredItem(item_id=ids[p], score=float(s), propensity=q)
                for p, s, q in zip(positions[served.top], served.scores, propensities, strict=True)
            ]
        policy = served.policy if served is not None else self.serving.mode
        shadows = {
            name: [ids[p] for p in positions[top]]
            for name, top in (served.shadows if served is not None else {}).items()
        }
        rec_id = uuid.uuid4().hex
        served_list = ServedList(
            user_id=request.user_id,
            gen=snap.clusters.gen,
            cluster=membership.top,
            membership=membership.encode(),
            ts=now,
            surface=request.surface,
            item_id=request.item_id,
            pools=request.pools,
            k=request.k,
            n_candidates=len(positions),
            items=[i.item_id for i in items],
            scores=[i.score for i in items],
            propensities=[i.propensity for i in items],
            policy=policy,
            shadows=shadows,
        )
        try:
            await self.store.log_recommendation(
                rec_id,
                served_list,
                self.settings.rec_log_ttl_s,
                # Users without clicks are always cluster 0: nothing worth caching.
                (membership.encode(), assigned)
                if changed and user is not None and user.hist
                else None,
                self.settings.user_ttl_s,
            )
        except StoreUnavailable:
            stale = True
        self.metrics.recommendations.labels(stale=str(stale).lower()).inc()
        return RecommendResponse(
            rec_id=rec_id,
            user_id=request.user_id,
            cluster=membership.top,
            membership=_weights_out(membership),
            policy=policy,
            items=items,
            stale=stale,
        )

    # -- feedback ---------------------------------------------------------------------

    async def feedback(self, batch: FeedbackBatch) -> FeedbackResult:
        """Validate the whole batch, then count each new event exactly once."""
        now = self.clock()
        events = batch.events
        oldest = now - self.settings.dedupe_retention_s
        for i, event in enumerate(events):
            if event.ts is not None and not oldest <= event.ts <= now + _MAX_CLOCK_SKEW_S:
                raise ApiError(
                    422,
                    "invalid_ts",
                    f"ts {event.ts} is outside [now - retention, now + {_MAX_CLOCK_SKEW_S:.0f} s]; "
                    "events older than the dedupe retention cannot be counted exactly once",
                    f"events[{i}].ts",
                )
        item_ids = list(dict.fromkeys(e.item_id for e in events))
        rec_ids = list(dict.fromkeys(e.rec_id for e in events if e.rec_id is not None))
        existing = await self.store.existing_items(item_ids)
        for i, event in enumerate(events):
            if event.item_id not in existing:
                raise ApiError(
                    422,
                    "unknown_item",
                    f"item {event.item_id!r} is not in the catalog",
                    f"events[{i}].item_id",
                )
        recs = await self.store.read_rec_logs(rec_ids)
        # Only conversions without a rec_id are attributed through the user's last clicks.
        bare = {e.user_id for e in events if e.type == "conversion" and e.rec_id is None}
        users = await self._read_users_current(
            [e.user_id for e in events], for_feedback=True, last_clicks_of=bare
        )
        attributed = self._attribute_conversions(events, users, now)
        missing = sorted(set(attributed.values()) - set(recs))
        if missing:
            recs |= await self.store.read_rec_logs(missing)
        snap = self.snapshot
        arm_events: list[ArmEvent] = []
        user_events: dict[str, list[UserEvent]] = {}
        outcomes: dict[str, set[str]] = {}
        logged: list[Membership | None] = []
        stats_of: list[tuple[str, ...]] = []
        for i, event in enumerate(events):
            gen, membership = snap.clusters.gen, None
            rec_id = event.rec_id or attributed.get(i)
            rec = recs.get(rec_id) if rec_id is not None else None
            if rec is not None and event.rec_id is None:
                # A conversion credited through the user's last click on the item.
                if rec.gen == gen:
                    membership = Membership.decode(rec.membership)
            elif rec is not None:
                if rec.user_id != event.user_id:
                    raise ApiError(
                        422,
                        "rec_user_mismatch",
                        f"rec {event.rec_id} was served to another user",
                        f"events[{i}].user_id",
                    )
                if event.item_id not in rec.items:
                    raise ApiError(
                        422,
                        "item_not_served",
                        f"item {event.item_id!r} was not in rec {event.rec_id}",
                        f"events[{i}].item_id",
                    )
                if rec.gen == gen:
                    membership = Membership.decode(rec.membership)
            stats: tuple[str, ...] = ()
            if rec is not None:
                kind = EVENT_KINDS[event.type]
                outcomes.setdefault(str(rec_id), set()).add(f"{kind}:{event.item_id}")
                stats = stats_fields(rec, kind, event.item_id)
            fits = membership is not None and membership.fits(snap.clusters.k)
            logged.append(membership if fits else None)
            stats_of.append(stats)
        # No rec (or it was served under an older clustering): the user's clusters now,
        # computed once per user per batch, for all such users at once.
        needed = {e.user_id for e, m in zip(events, logged, strict=True) if m is None}
        current = self._current_memberships(snap, {u: users[u] for u in needed})
        gen = snap.clusters.gen
        for event, membership, stats in zip(events, logged, stats_of, strict=True):
            membership = membership or current[event.user_id]
            shares = tuple(membership.micro_weights())
            arm_events.append(
                ArmEvent(event.event_id, event.type, event.item_id, gen, shares, stats)
            )
            user_events.setdefault(event.user_id, []).append(
                UserEvent(event.event_id, event.type, event.item_id, event.rec_id)
            )
        flags = await self.store.record_feedback(
            arm_events,
            user_events,
            now=now,
            retention_s=self.settings.dedupe_retention_s,
            seen_half_life_s=self.settings.seen_half_life_s,
            history_n=self.settings.history_n,
            user_ttl_s=self.settings.user_ttl_s,
            outcomes=outcomes,
            outcome_ttl_s=self.settings.rec_log_ttl_s,
            count_half_life_s=self.settings.discount.half_life_s,
        )
        for event, new in zip(events, flags, strict=True):
            outcome = "accepted" if new else "duplicate"
            self.metrics.feedback_events.labels(type=event.type, outcome=outcome).inc()
        accepted = sum(flags)
        return FeedbackResult(accepted=accepted, duplicates=len(flags) - accepted)

    def _attribute_conversions(
        self, events: list[FeedbackEvent], users: dict[str, UserState], now: float
    ) -> dict[int, str]:
        """Return, by event position, the rec_id of the click each bare conversion follows."""
        window = self.settings.attribution_h * 3600
        found = {}
        for i, event in enumerate(events):
            if event.type != "conversion" or event.rec_id is not None:
                continue
            clicked_at, rec_id = users[event.user_id].last_clicks.get(event.item_id, (0.0, None))
            if rec_id is not None and now - clicked_at <= window:
                found[i] = rec_id
        return found

    # -- logs -------------------------------------------------------------------------

    async def export_logs(
        self, since: float | None, until: float | None, limit: int
    ) -> AsyncIterator[str]:
        """Yield served lists joined with their feedback, one NDJSON line each."""
        await self.store.ping()  # fail with 503 before the stream starts, not inside it
        sent = 0
        async for batch in self.store.served_lists():
            for logged in batch:
                ts = logged.served.ts
                if (since is not None and ts < since) or (until is not None and ts >= until):
                    continue
                yield json.dumps(_served_line(logged), separators=(",", ":")) + "\n"
                sent += 1
                if sent >= limit:
                    return

    # -- inspection -------------------------------------------------------------------

    def _params(self, impressions: np.ndarray, clicks: np.ndarray) -> tuple[np.ndarray, ...]:
        """Return (alpha, beta) for rows of counts in events (last row global), as served."""
        prior = self.settings.prior_model
        posteriors = self.snapshot.posteriors
        catalog = (
            posteriors.catalog_prior if posteriors else prior.catalog(np.zeros(1), np.zeros(1))
        )
        return posterior_params(impressions, clicks, prior, catalog)

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

    async def item_arms(self, item_id: str) -> ItemArms:
        """Return the item's global arm and its arm in each current cluster, read from Redis."""
        clusters = await self.store.load_clusters()
        values, times, since = await self.store.arm_counts(item_id, clusters.gen, clusters.k)
        updated = np.array(times, dtype=float)  # None -> NaN: never discounted
        counts = self.settings.discount.apply(np.array(values), updated, since, self.clock())
        counts[:-1] /= MICRO
        if not counts.any() and await self.store.get_item(item_id) is None:
            raise ApiError(404, "not_found", f"item {item_id!r} has no arm", "item_id")
        impressions, clicks, conversions = counts[:, :1], counts[:, 1:2], counts[:, 2:]
        alpha, beta = self._params(impressions, clicks)
        rate = conversion_rate(clicks, conversions, self.settings.prior_strength)
        *per_cluster, global_arm = self._arm(counts.T, alpha[:, 0], beta[:, 0], rate[:, 0])
        return ItemArms(
            item_id=item_id,
            gen=clusters.gen,
            global_=Arm(**global_arm),
            clusters=[ClusterArm(cluster=c, **arm) for c, arm in enumerate(per_cluster)],
        )

    async def list_arms(self, cluster: int | None, limit: int, offset: int) -> ArmList:
        """Return one page of a cluster's arms (global if cluster is None), best mean first."""
        clusters = await self.store.load_clusters()
        if cluster is not None and cluster >= clusters.k:
            raise ApiError(
                422,
                "unknown_cluster",
                f"cluster {cluster} does not exist; the current clustering has k={clusters.k}",
                "cluster",
            )
        discount = self.settings.discount
        state = await self.store.load_counts(clusters.gen, clusters.k, with_times=discount.on)
        at = -1 if cluster is None else cluster
        listed = state.counts[at]
        ids = sorted(set(listed[0]) | set(listed[1]) | set(self.snapshot.catalog.item_ids))
        # (kind, row, item): the listed counts, then the global ones (cluster priors use them).
        stored = np.array(
            [[_row(c[kind], ids) for c in (listed, state.counts[-1])] for kind in range(3)]
        )
        updated = None
        if state.updated is not None:
            times = (state.updated[at], state.updated[-1])
            updated = np.array([[_row(t[kind], ids, np.nan) for t in times] for kind in range(3)])
        imp, clk, cnv = discount.apply(stored, updated, state.decay_since, self.clock())
        if cluster is not None:
            imp[0], clk[0], cnv[0] = imp[0] / MICRO, clk[0] / MICRO, cnv[0] / MICRO
        row = 0 if cluster is not None else 1
        alpha, beta = (rows[row] for rows in self._params(imp, clk))
        rate = conversion_rate(clk, cnv, self.settings.prior_strength)[row]
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
        user = (await self._read_users_current([user_id]))[user_id]
        snap = self.snapshot
        membership, _, _ = self._membership(snap, user)
        now = self.clock()
        seen = []
        if user.seen:
            ids = list(user.seen)
            counts = np.array([user.seen[i][0] for i in ids])
            updated = np.array([user.seen[i][1] for i in ids])
            unclicked = decayed_counts(counts, now - updated, self.settings.seen_half_life_s)
            multipliers = seen_decay(unclicked, self.settings.seen_gamma)
            seen = [
                SeenItem(item_id=i, unclicked=float(u), multiplier=float(m), updated=float(t))
                for i, u, m, t in zip(ids, unclicked, multipliers, updated, strict=True)
            ]
            seen.sort(key=lambda s: s.multiplier)
        return UserOut(
            user_id=user_id,
            cluster=membership.top,
            membership=_weights_out(membership),
            gen=snap.clusters.gen,
            recent_clicks=user.clicks,
            seen=seen,
        )

    async def stats(self) -> StatsOut:
        """Return the per-policy counters with CTRs and their intervals."""
        counters = await self.store.stats()

        def clicks(prefix: str, policy: str) -> ClickStats:
            shown = int(counters.get(f"{prefix}imp:{policy}", 0))
            clicked = int(counters.get(f"{prefix}clk:{policy}", 0))
            return ClickStats(impressions=shown, clicks=clicked, **_ctr(shown, clicked))

        # A policy (or view) is listed once it has a counter of its own.
        def seen(policy: str, *kinds: str) -> bool:
            return any(counters.get(f"{kind}:{policy}") for kind in kinds)

        policies = {
            policy: PolicyStats(
                lists=int(counters.get(f"lists:{policy}", 0)),
                conversions=int(counters.get(f"cnv:{policy}", 0)),
                **clicks("", policy).model_dump(),
            )
            for policy in POLICIES
            if seen(policy, "lists", "imp", "clk", "cnv")
        }
        views = {
            name: {
                p: clicks(f"{name}_", p) for p in POLICIES if seen(p, f"{name}_imp", f"{name}_clk")
            }
            for name in ("agree", "replay")
        }
        return StatsOut(
            mode=self.settings.mode,
            baseline=self.settings.baseline,
            exploration=self.settings.exploration,
            since=counters.get("since"),
            policies=policies,
            agreement=views["agree"],
            replay=views["replay"],
        )

    # -- clustering -------------------------------------------------------------------

    async def fit_clusters(self, request: FitRequest) -> FitResult:
        """Fit k-means on users' vectors, store the centres as a new generation."""
        async with self._fit_lock:
            snap = await self.refresh()
            histories = await self.store.user_histories(
                self.settings.fit_max_users, self.settings.history_n
            )
            vectors = await asyncio.to_thread(_user_vectors, snap.catalog, histories)
            if len(vectors) < request.k:
                raise ApiError(
                    422,
                    "not_enough_users",
                    f"k={request.k} needs at least {request.k} users who clicked items with "
                    f"embeddings; found {len(vectors)}",
                    "k",
                )
            rng = np.random.default_rng(request.seed)
            kmeans = KMeans(n_clusters=request.k, n_init=_FIT_STARTS)
            model = await asyncio.to_thread(kmeans.fit, vectors, rng)
            labels = assign_hard(vectors, normalize_rows(model.centers_))
            sizes = [int(s) for s in cluster_sizes(labels, request.k)]
            stored = await self.store.save_clusters(model.centers_, model.inertia_, sizes)
            await self.refresh()
            return FitResult(
                gen=stored.gen,
                k=stored.k,
                n_users=len(vectors),
                sizes=sizes,
                inertia=float(model.inertia_),
            )


def _user_vectors(catalog: Catalog, histories: dict[str, list[str]]) -> np.ndarray:
    """Return one unit vector per user whose history has at least one embedded item."""
    vectors = []
    for clicks in histories.values():
        rows = embedded_rows(catalog, clicks)
        if rows:
            vectors.append(user_vector(catalog.embeddings[rows]))
    dim = catalog.embeddings.shape[1]
    return np.array(vectors) if vectors else np.zeros((0, dim))


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
                "impression": f"imp:{item}" in outcomes,
                "click": f"clk:{item}" in outcomes,
                "conversion": f"cnv:{item}" in outcomes,
            }
            for position, (item, score, propensity) in enumerate(
                zip(served.items, served.scores, served.propensities, strict=True)
            )
        ],
    }


def _baseline_scores(
    snap: Snapshot, request: RecommendRequest, positions: np.ndarray, baseline: str
) -> np.ndarray:
    """Return each candidate's place in the fixed ranking: higher comes first.

    "popularity" orders by global clicks (discounted, if counts are); "caller" keeps the
    order of the request's `candidates` and falls back to popularity without them.
    """
    if baseline == "caller" and request.candidates is not None:
        first: dict[int, int] = {}
        for place, item_id in enumerate(request.candidates):
            first.setdefault(snap.catalog.index[item_id], place)
        places = np.array([first[p] for p in positions], dtype=float)
        return len(request.candidates) - places
    assert snap.posteriors is not None
    clicks: np.ndarray = snap.posteriors.global_counts[1][positions]
    return clicks


def _check_combination(request: RecommendRequest) -> None:
    """Refuse field combinations that have no meaning, naming the field at fault."""
    if request.surface == "related" and request.item_id is None:
        raise ApiError(422, "invalid_request", "surface=related needs item_id", "item_id")
    if request.surface == "home" and request.item_id is not None:
        raise ApiError(
            422, "invalid_request", "item_id is only used with surface=related", "item_id"
        )
    if request.surface == "related" and request.candidates is not None:
        raise ApiError(
            422,
            "invalid_request",
            "candidates cannot be combined with surface=related (it chooses its own)",
            "candidates",
        )
    reserved = sum((request.pools or {}).values())
    if reserved > request.k:
        raise ApiError(
            422, "invalid_request", f"pools reserve {reserved} places but k={request.k}", "pools"
        )


def _posteriors_for(
    snap: Snapshot, membership: Membership, positions: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Return (alpha, beta) at the candidate positions for a (possibly mixed) membership."""
    assert snap.posteriors is not None
    rows = list(membership.clusters)
    alpha = snap.posteriors.alpha[rows][:, positions]
    beta = snap.posteriors.beta[rows][:, positions]
    if len(rows) == 1:
        return alpha[0], beta[0]
    # One Beta per arm whose counts are the weight-mixed cluster counts (bandits.mixing).
    return mix_posteriors(alpha, beta, np.array(membership.weights))


def _weights_out(membership: Membership) -> list[ClusterWeight]:
    if membership.top is None:
        return []
    return [
        ClusterWeight(cluster=c, weight=w)
        for c, w in zip(membership.clusters, membership.weights, strict=True)
    ]


def _ctr(impressions: int, clicks: int) -> dict[str, Any]:
    """Return the CTR and its 95% interval under a flat Beta(1, 1) prior."""
    if impressions == 0:
        return {"ctr": None, "ctr_ci95": None}
    misses = max(impressions - clicks, 0)
    lo, hi = beta_interval(np.array([1.0 + clicks]), np.array([1.0 + misses]))
    return {"ctr": clicks / impressions, "ctr_ci95": (float(lo[0]), float(hi[0]))}


def _count_out(value: float) -> int | float:
    # Global counts are whole events; a cluster's can be fractional under soft membership.
    return int(value) if float(value).is_integer() else round(float(value), 6)


def _row(values: dict[str, float], ids: list[str], missing: float = 0.0) -> list[float]:
    return [values.get(i, missing) for i in ids]


def _conversion_rate_for(
    snap: Snapshot, membership: Membership, positions: np.ndarray
) -> np.ndarray:
    """Return conversions per click at the candidate positions, mixed like the posteriors."""
    assert snap.posteriors is not None
    rates = snap.posteriors.conversion_rate[list(membership.clusters)][:, positions]
    mixed: np.ndarray = np.array(membership.weights) @ rates
    return mixed
