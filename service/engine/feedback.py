"""Feedback: validate a batch, credit each event to the clusters it was served for, count once."""

from __future__ import annotations

import asyncio
import math
from collections import Counter

from service.engine.context import Context
from service.engine.errors import InvalidRequest
from service.engine.fatigue import evidence_of
from service.engine.lift import prediction_of
from service.engine.membership import Membership
from service.engine.pending_lists import FEEDBACK_RETRY_S, PendingLists
from service.engine.policies import stats_fields
from service.engine.refresh import Snapshots
from service.engine.users import Users
from service.schemas import FeedbackBatch, FeedbackEvent, FeedbackResult
from service.store import ArmEvent, UserEvent, UserState, Verdict
from service.store.codecs import EVENT_KINDS, ServedList, outcome_field

# Events may arrive a little ahead of our clock; further ahead is a client bug.
MAX_CLOCK_SKEW_S = 300.0


class Feedback:
    """Turns feedback batches into exactly-once counts and user state in the store."""

    def __init__(
        self, ctx: Context, snapshots: Snapshots, users: Users, pending: PendingLists
    ) -> None:
        self.ctx = ctx
        self.snapshots = snapshots
        self.users = users
        self.pending = pending

    async def record(self, batch: FeedbackBatch, *, history: bool = False) -> FeedbackResult:
        """Validate the whole batch, then count each new event exactly once.

        With `history` (banditrec import-events) events may be older than the dedupe
        retention, and each takes effect on its user at its own ts.
        """
        now = self.ctx.clock()
        events = batch.events
        # An import is remembered for the retention from now, so old events are fine.
        oldest = -math.inf if history else now - self.ctx.settings.dedupe_retention_s
        for i, event in enumerate(events):
            if event.ts is not None and not oldest <= event.ts <= now + MAX_CLOCK_SKEW_S:
                raise InvalidRequest(
                    "invalid_ts",
                    f"ts {event.ts} is outside [now - retention, now + {MAX_CLOCK_SKEW_S:.0f} s]; "
                    "events older than the dedupe retention cannot be counted exactly once",
                    f"events[{i}].ts",
                )
        times = [e.ts if history and e.ts is not None else now for e in events]
        owners: dict[str, str] = {}
        for i, event in enumerate(events):
            if owners.setdefault(event.event_id, event.user_id) != event.user_id:
                raise _reused(event.event_id, i)
        item_ids = list(dict.fromkeys(e.item_id for e in events))
        rec_ids = list(dict.fromkeys(e.rec_id for e in events if e.rec_id is not None))
        known = await self.ctx.store.known_items(item_ids)
        recs = await self._served_lists(rec_ids, wait=True)
        for i, event in enumerate(events):
            # An item deleted after it was served keeps its arms, so its feedback counts:
            # it is known by its counts, or by the served list that named it.
            rec = recs.get(event.rec_id) if event.rec_id is not None else None
            if event.item_id not in known and (rec is None or event.item_id not in rec.items):
                raise InvalidRequest(
                    "unknown_item",
                    f"item {event.item_id!r} is not in the catalog and has no counts",
                    f"events[{i}].item_id",
                )
        # Only conversions without a rec_id are attributed through the user's last clicks.
        bare = {e.user_id for e in events if e.type == "conversion" and e.rec_id is None}
        # A user is read only to work out their clusters now: not for events whose list was
        # logged under the current clustering (most live feedback names its rec_id).
        gen = self.snapshots.current.clusters.gen
        unlogged = []
        for event in events:
            named = recs.get(event.rec_id) if event.rec_id is not None else None
            if named is None or named.gen != gen or event.user_id in bare:
                unlogged.append(event.user_id)
        users = await self.users.read_current(unlogged, for_feedback=True, last_clicks_of=bare)
        attributed = self._attribute_conversions(events, users, times)
        missing = sorted(set(attributed.values()) - set(recs))
        if missing:
            recs |= await self._served_lists(missing, wait=False)
        snap = self.snapshots.current
        arm_events: list[ArmEvent] = []
        user_events: dict[str, list[UserEvent]] = {}
        outcomes: list[tuple[str, str] | None] = []
        logged: list[Membership | None] = []
        stats_of: list[tuple[str, ...]] = []
        fatigue: list[tuple[tuple[str, float], ...]] = []
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
                    raise InvalidRequest(
                        "rec_user_mismatch",
                        f"rec {event.rec_id} was served to another user",
                        f"events[{i}].user_id",
                    )
                if event.item_id not in rec.items:
                    raise InvalidRequest(
                        "item_not_served",
                        f"item {event.item_id!r} was not in rec {event.rec_id}",
                        f"events[{i}].item_id",
                    )
                if rec.gen == gen:
                    membership = Membership.decode(rec.membership)
            stats: tuple[str, ...] = ()
            outcome = None
            evidence: tuple[tuple[str, float], ...] = ()
            if rec is not None:
                kind = EVENT_KINDS[event.type]
                outcome = (str(rec_id), outcome_field(kind, event.item_id))
                stats = stats_fields(rec, kind, event.item_id)
                evidence = evidence_of(rec, kind, event.item_id)
                evidence += prediction_of(rec, kind, event.item_id)
            outcomes.append(outcome)
            fatigue.append(evidence)
            fits = membership is not None and membership.fits(snap.clusters.k)
            logged.append(membership if fits else None)
            stats_of.append(stats)
        # No rec (or it was served under an older clustering): the user's clusters now,
        # computed once per user per batch, for all such users at once.
        needed = {e.user_id for e, m in zip(events, logged, strict=True) if m is None}
        unread = sorted(needed - set(users))
        if unread:
            # The clustering changed while we read (or a logged list fits it no more).
            more, _, _ = await self.ctx.store.read_users(
                unread, self.ctx.settings.history_n, with_seen=False
            )
            users |= more
        current = self.users.current(snap, {u: users[u] for u in needed})
        gen = snap.clusters.gen
        for event, membership, stats, outcome, evidence, at in zip(
            events, logged, stats_of, outcomes, fatigue, times, strict=True
        ):
            membership = membership or current[event.user_id]
            shares = tuple(membership.micro_weights())
            arm_events.append(
                ArmEvent(
                    event.event_id,
                    event.user_id,
                    event.type,
                    event.item_id,
                    gen,
                    shares,
                    stats=stats,
                    outcome=outcome,
                    fatigue=evidence,
                )
            )
            user_events.setdefault(event.user_id, []).append(
                UserEvent(event.event_id, event.type, event.item_id, event.rec_id, at)
            )
        # One decision per event_id for the counts and the user state (store/dedupe.py).
        verdicts = await self.ctx.store.record_feedback(
            arm_events,
            user_events,
            now=now,
            retention_s=self.ctx.settings.dedupe_retention_s,
            seen_half_life_s=self.ctx.settings.seen_half_life_s,
            history_n=self.ctx.settings.history_n,
            user_ttl_s=self.ctx.settings.user_ttl_s,
            user_events_max=self.ctx.settings.user_events_max,
            user_items_max=self.ctx.settings.user_items_max,
            outcome_ttl_s=self.ctx.settings.rec_log_ttl_s,
            count_half_life_s=self.ctx.settings.discount.half_life_s,
        )
        if Verdict.CLAIMED in verdicts:
            i = verdicts.index(Verdict.CLAIMED)
            raise _reused(events[i].event_id, i)
        # One labelled increment per (type, outcome) rather than per event: a labels()
        # lookup costs microseconds, a hundred times per batch.
        tally = Counter(
            (e.type, "accepted" if verdict is Verdict.NEW else "duplicate")
            for e, verdict in zip(events, verdicts, strict=True)
        )
        for (event_type, counted), count in tally.items():
            self.ctx.metrics.feedback_events.labels(type=event_type, outcome=counted).inc(count)
        accepted = verdicts.count(Verdict.NEW)
        unknown = [r for r in rec_ids if r not in recs]
        return FeedbackResult(
            accepted=accepted, duplicates=len(verdicts) - accepted, unknown_rec_ids=unknown
        )

    async def _served_lists(self, rec_ids: list[str], *, wait: bool) -> dict[str, ServedList]:
        """Return the served lists of rec_ids that are logged or still on their way to Redis.

        With `wait`, rec_ids found nowhere are read again after FEEDBACK_RETRY_S: another
        worker may have served them a moment ago and not written them yet.
        """
        found = self.pending.lists(rec_ids)
        found |= await self.ctx.store.read_rec_logs([r for r in rec_ids if r not in found])
        missing = [r for r in rec_ids if r not in found]
        if wait and missing:
            await asyncio.sleep(FEEDBACK_RETRY_S)
            found |= self.pending.lists(missing)
            found |= await self.ctx.store.read_rec_logs([r for r in missing if r not in found])
        return found

    def _attribute_conversions(
        self, events: list[FeedbackEvent], users: dict[str, UserState], times: list[float]
    ) -> dict[int, str]:
        """Return, by event position, the rec_id of the click each bare conversion follows."""
        window = self.ctx.settings.attribution_h * 3600
        found = {}
        for i, event in enumerate(events):
            if event.type != "conversion" or event.rec_id is not None:
                continue
            clicked_at, rec_id = users[event.user_id].last_clicks.get(event.item_id, (0.0, None))
            if rec_id is not None and times[i] - clicked_at <= window:
                found[i] = rec_id
        return found


def _reused(event_id: str, position: int) -> InvalidRequest:
    """Return the error for an event_id already used by another user's event."""
    return InvalidRequest(
        "event_id_conflict",
        f"event_id {event_id!r} is already used by another user's event; an event_id names "
        "one event (nothing in this batch was written)",
        f"events[{position}].event_id",
    )
