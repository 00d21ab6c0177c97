"""Recommend: candidates, the user's clusters, sampled scores with seen decay, the logged list."""

from __future__ import annotations

import contextlib
import uuid

import numpy as np

from bandits import beta_mean, mix_posteriors
from clustering import most_similar
from service.engine.affinity import tilt_for
from service.engine.context import Context
from service.engine.deadline import Deadline
from service.engine.errors import InvalidRequest
from service.engine.fatigue import SeenDecay
from service.engine.membership import Membership
from service.engine.pending_lists import PendingLists
from service.engine.policies import Candidates, Served, Serving
from service.engine.refresh import Snapshots
from service.engine.snapshot import Catalog, Snapshot
from service.engine.users import Users
from service.schemas import (
    ClusterWeight,
    EmptyReason,
    RecommendRequest,
    RecommendResponse,
    ScoredItem,
)
from service.store import LoggedWrite, StoreUnavailable, UserState
from service.store.codecs import ServedList


class Recommender:
    """Serves ranked lists from the snapshot and logs each under a rec_id."""

    def __init__(
        self,
        ctx: Context,
        snapshots: Snapshots,
        users: Users,
        rng: np.random.Generator,
        pending: PendingLists,
    ) -> None:
        self.ctx = ctx
        self.snapshots = snapshots
        self.users = users
        self._rng = rng
        self.pending = pending
        settings = ctx.settings
        self.serving = Serving(settings.mode, settings.exploration, settings.propensity_samples)

    async def _candidates(
        self, snap: Snapshot, request: RecommendRequest, deadline: Deadline
    ) -> tuple[Snapshot, np.ndarray]:
        """Return the snapshot used and the positions, in its catalog, of servable items."""
        named = request.candidates or ([request.item_id] if request.item_id else [])
        if any(i not in snap.catalog.index for i in named):
            # The item may have been created since the last refresh.
            with contextlib.suppress(StoreUnavailable):
                async with deadline.within():
                    snap = await self.snapshots.refresh()
        catalog = snap.catalog
        unknown = [i for i in named if i not in catalog.index]
        if unknown:
            field = "candidates" if request.candidates else "item_id"
            shown = ", ".join(unknown[:5])
            raise InvalidRequest("unknown_item", f"not in the catalog: {shown}", field)
        for name in [request.pool, *(request.pools or {})]:
            if name is not None and name not in catalog.pools:
                field = "pool" if name == request.pool else f"pools.{name}"
                raise InvalidRequest("unknown_pool", f"no item is in pool {name!r}", field)
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
            raise InvalidRequest(
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
            catalog.embeddings, catalog.embeddings[anchor], self.ctx.settings.related_n, allowed
        )

    async def recommend(self, request: RecommendRequest) -> RecommendResponse:
        """Rank candidates for the user with their cluster's bandit and seen decay."""
        _check_combination(request)
        # All of this request's Redis work shares one timeout; past it, serve stale.
        deadline = Deadline(self.ctx.settings.redis_timeout_s)
        snap = self.snapshots.current
        stale = not snap.loaded or snap.age_s() > self.ctx.settings.stale_after_s
        now = self.ctx.clock()
        user: UserState | None = None
        try:
            async with deadline.within():
                user = (await self.users.read_current([request.user_id]))[request.user_id]
        except StoreUnavailable:
            stale = True
        snap = self.snapshots.current  # we yielded; a refresh may have landed meanwhile
        known: Membership | None
        if user is not None:
            known, assigned, changed = self.users.membership(snap, user)
            self.users.remember(request.user_id, known)
        else:
            known, assigned, changed = self.users.last_known(request.user_id), "", False
        membership = known if known is not None and known.fits(snap.clusters.k) else Membership()
        # Positions index this snapshot's arrays only: never re-read self.snapshots.current below.
        snap, positions = await self._candidates(snap, request, deadline)
        items: list[ScoredItem] = []
        served: Served | None = None
        served_fatigue: list[int] | None = None
        means: list[float] | None = None
        expected: list[float] | None = None
        global_means: list[float] | None = None
        ids = snap.catalog.item_ids
        if len(positions) and snap.posteriors is not None:
            multipliers = np.ones(len(snap.catalog))
            bases = np.ones(len(snap.catalog))
            fatigue = np.zeros(len(snap.catalog), dtype=np.intp)
            if user is not None:
                decay = snap.seen_decay or SeenDecay.learn(self.ctx.settings)
                seen = self.users.seen_multipliers(snap.catalog, decay, user.seen, now, self._rng)
                multipliers[seen.positions] = seen.multipliers
                bases[seen.positions] = seen.bases
                fatigue[seen.positions] = seen.buckets
            alpha, beta = _posteriors_for(snap, membership, positions)
            factors = multipliers[positions]
            tilt: np.ndarray | None = None
            if user is not None:
                tilt = tilt_for(
                    snap.catalog, snap.affinity, membership, user.clicks, positions,
                    self.ctx.settings.personal_tilt,
                )  # fmt: skip
                if tilt is not None:
                    factors = factors * tilt
            if self.ctx.settings.conversion_weight > 0:
                rate = _conversion_rate_for(snap, membership, positions)
                factors = factors * rate**self.ctx.settings.conversion_weight
            candidates = Candidates(
                alpha,
                beta,
                factors,
                _baseline_scores(snap, request, positions, self.ctx.settings.baseline),
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
                ScoredItem(item_id=ids[p], score=_shown_score(s), propensity=q)
                for p, s, q in zip(positions[served.top], served.scores, propensities, strict=True)
            ]
            if user is not None:
                # The learned seen decay's evidence: feedback on an item adds to its bucket
                # 1 impression and the clicks expected had the fixed decay been right.
                shown = positions[served.top]
                served_fatigue = fatigue[shown].tolist()
                arm_means = beta_mean(alpha[served.top], beta[served.top])
                means = [_shown_score(m) for m in arm_means]
                expectation = arm_means * bases[shown]
                if tilt is not None:
                    expectation = expectation * tilt[served.top]
                expected = [_shown_score(e) for e in expectation]
                if membership.top is not None:
                    # What the global arms predicted for the same items: the measured lift.
                    glob = beta_mean(
                        snap.posteriors.alpha[-1, shown], snap.posteriors.beta[-1, shown]
                    )
                    global_means = [_shown_score(m) for m in glob]
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
            fatigue=served_fatigue,
            means=means,
            global_means=global_means,
            expected=expected,
        )
        write = LoggedWrite(
            rec_id,
            served_list,
            # Users without clicks are always cluster 0: nothing worth caching.
            (membership.encode(), assigned) if changed and user is not None and user.hist else None,
        )
        # Written after the response (engine/pending_lists.py), unless too many wait.
        stale = stale or self.pending.failing
        if not self.pending.add(write):
            try:
                async with deadline.within():
                    await self.ctx.store.log_recommendations(
                        [write], self.ctx.settings.rec_log_ttl_s, self.ctx.settings.user_ttl_s
                    )
            except StoreUnavailable:
                stale = True
        self.ctx.metrics.recommendations.labels(stale=str(stale).lower()).inc()
        cluster = "global" if membership.top is None else str(membership.top)
        self.ctx.metrics.served_lists.labels(policy=policy, cluster=cluster).inc()
        return RecommendResponse(
            rec_id=rec_id,
            user_id=request.user_id,
            cluster=membership.top,
            membership=cluster_weights(membership),
            policy=policy,
            items=items,
            stale=stale,
            reason=_empty_reason(snap, items),
        )


def _shown_score(score: float) -> float:
    """Return a score as served and logged: to 6 significant digits.

    A sampled score means no more, and the served-list log stores each list's scores
    (codecs.ServedList): 17 digits made them a fifth of every logged list.
    """
    return float(f"{score:.6g}")


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


def _empty_reason(snap: Snapshot, items: list[ScoredItem]) -> EmptyReason | None:
    """Return why the list is empty, so an empty answer is not mistaken for a working one."""
    if items:
        return None
    return "catalog_empty" if len(snap.catalog) == 0 else "no_candidates"


def _check_combination(request: RecommendRequest) -> None:
    """Refuse field combinations that have no meaning, naming the field at fault."""
    if request.surface == "related" and request.item_id is None:
        raise InvalidRequest("invalid_request", "surface=related needs item_id", "item_id")
    if request.surface == "home" and request.item_id is not None:
        raise InvalidRequest(
            "invalid_request", "item_id is only used with surface=related", "item_id"
        )
    if request.surface == "related" and request.candidates is not None:
        raise InvalidRequest(
            "invalid_request",
            "candidates cannot be combined with surface=related (it chooses its own)",
            "candidates",
        )
    reserved = sum((request.pools or {}).values())
    if reserved > request.k:
        raise InvalidRequest(
            "invalid_request", f"pools reserve {reserved} places but k={request.k}", "pools"
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


def cluster_weights(membership: Membership) -> list[ClusterWeight]:
    if membership.top is None:
        return []
    return [
        ClusterWeight(cluster=c, weight=w)
        for c, w in zip(membership.clusters, membership.weights, strict=True)
    ]


def _conversion_rate_for(
    snap: Snapshot, membership: Membership, positions: np.ndarray
) -> np.ndarray:
    """Return conversions per click at the candidate positions, mixed like the posteriors."""
    assert snap.posteriors is not None
    rates = snap.posteriors.conversion_rate[list(membership.clusters)][:, positions]
    mixed: np.ndarray = np.array(membership.weights) @ rates
    return mixed
