"""Users as the engine sees them: their state from the store, memberships, seen decay."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

from service.engine.context import Context
from service.engine.fatigue import SeenArrays, SeenDecay, SeenPenalty, seen_penalty
from service.engine.membership import Membership, memberships_of
from service.engine.refresh import Snapshots
from service.engine.snapshot import Catalog, Snapshot
from service.store import Seen, UserState
from service.store.codecs import assigned_key

_USER_CACHE_SIZE = 100_000


class Users:
    """Reads users' state and works out their cluster memberships, cached where still valid."""

    def __init__(self, ctx: Context, snapshots: Snapshots) -> None:
        self.ctx = ctx
        self.snapshots = snapshots
        # Last known membership per user, so recommend still personalises while Redis is down.
        self._last_known: OrderedDict[str, Membership] = OrderedDict()
        # (assigned_key, membership) this worker computed last, per user.
        self._computed: OrderedDict[str, tuple[str, Membership]] = OrderedDict()

    async def read_current(
        self,
        user_ids: list[str],
        *,
        for_feedback: bool = False,
        last_clicks_of: frozenset[str] | set[str] = frozenset(),
    ) -> dict[str, UserState]:
        """Return users' state, first catching up if another worker changed catalog or clusters."""
        users, items_version, gen = await self.ctx.store.read_users(
            user_ids,
            self.ctx.settings.history_n,
            with_seen=not for_feedback,
            last_clicks_of=last_clicks_of,
        )
        snap = self.snapshots.current
        if items_version != snap.catalog.version or gen != snap.clusters.gen:
            await self.snapshots.refresh()
        return users

    def membership(self, snap: Snapshot, user: UserState) -> tuple[Membership, str, bool]:
        """Return (membership, cache key, whether the cached value was stale) for a user."""
        key = self._assigned_key(snap, user)
        cached = self._cached(snap, user)
        if cached is not None:
            return cached, key, False
        return self._memberships_of(snap, [user.clicks])[0], key, True

    def current(self, snap: Snapshot, users: dict[str, UserState]) -> dict[str, Membership]:
        """Return users' memberships: cached where still valid, the rest computed at once."""
        found = {u: self._cached(snap, state) for u, state in users.items()}
        # Users that only send feedback have no membership stored: this worker keeps the
        # one it last computed, valid while their clicks and the clustering are the same.
        keys = {u: self._assigned_key(snap, users[u]) for u, m in found.items() if m is None}
        for u, key in keys.items():
            kept = self._computed.get(u)
            if kept is not None and kept[0] == key:
                found[u] = kept[1]
        stale = [u for u, m in found.items() if m is None]
        computed = self._memberships_of(snap, [users[u].clicks for u in stale])
        memberships = {u: m for u, m in found.items() if m is not None}
        memberships.update(zip(stale, computed, strict=True))
        for u, membership in zip(stale, computed, strict=True):
            self._computed[u] = (keys[u], membership)
            self._computed.move_to_end(u)
        while len(self._computed) > _USER_CACHE_SIZE:
            self._computed.popitem(last=False)
        return memberships

    def _memberships_of(self, snap: Snapshot, histories: list[list[str]]) -> list[Membership]:
        settings = self.ctx.settings
        return memberships_of(
            snap,
            histories,
            settings.membership == "soft",
            settings.soft_temperature,
            settings.soft_top_m,
        )

    def remember(self, user_id: str, membership: Membership) -> None:
        """Keep the user's membership for serving while Redis cannot be read."""
        self._last_known[user_id] = membership
        self._last_known.move_to_end(user_id)
        if len(self._last_known) > _USER_CACHE_SIZE:
            self._last_known.popitem(last=False)

    def last_known(self, user_id: str) -> Membership | None:
        """Return the membership this worker last saw for the user, if any."""
        return self._last_known.get(user_id)

    def seen_multipliers(
        self,
        catalog: Catalog,
        decay: SeenDecay,
        seen: dict[str, Seen],
        now: float,
        rng: np.random.Generator | None = None,
    ) -> SeenPenalty:
        """Return the fatigue bucket and multiplier of each of the user's seen catalog items."""
        known = [i for i in seen if i in catalog.index]
        if not known:
            empty = np.zeros(0)
            return SeenPenalty(empty.astype(np.intp), empty.astype(np.intp), empty, empty)
        positions = np.array([catalog.index[i] for i in known], dtype=np.intp)
        arrays = SeenArrays.of(seen[i] for i in known)
        return seen_penalty(decay, self.ctx.settings, positions, arrays, now, rng)

    def _assigned_key(self, snap: Snapshot, user: UserState) -> str:
        return assigned_key(snap.clusters.gen, user.hist, self.ctx.settings.membership)

    def _cached(self, snap: Snapshot, user: UserState) -> Membership | None:
        """Return the user's stored membership if it was computed for their current state."""
        if user.membership is None or user.assigned != self._assigned_key(snap, user):
            return None
        cached = Membership.decode(user.membership)
        return cached if cached.fits(snap.clusters.k) else None
