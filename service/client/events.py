"""Feedback events for a served list, with ids derived from its rec_id so a resend counts once."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from service.schemas import FeedbackEvent, RecommendResponse

_KIND = {"impression": "imp", "click": "clk", "conversion": "cnv"}
_MAX_ID = 128


def event_id(rec_id: str, kind: str, item_id: str) -> str:
    """Return the event id of `kind` on `item_id` in the list `rec_id`: the same on every call."""
    derived = f"{rec_id}:{_KIND[kind]}:{item_id}"
    if len(derived) <= _MAX_ID:
        return derived
    # Long item ids would overflow the id bound: a digest keeps the id unique and stable.
    return f"{rec_id}:{_KIND[kind]}:{hashlib.sha256(item_id.encode()).hexdigest()[:40]}"


def served_events(
    rec: RecommendResponse,
    clicked: Iterable[str] = (),
    converted: Iterable[str] = (),
    ts: float | None = None,
) -> list[FeedbackEvent]:
    """Return an impression of every item of the list, then its clicks and conversions."""
    outcomes = [("impression", item.item_id) for item in rec.items]
    outcomes += [("click", i) for i in clicked] + [("conversion", i) for i in converted]
    return [
        FeedbackEvent(
            event_id=event_id(rec.rec_id, kind, item_id),
            type=kind,  # type: ignore[arg-type]
            user_id=rec.user_id,
            item_id=item_id,
            rec_id=rec.rec_id,
            ts=ts,
        )
        for kind, item_id in outcomes
    ]
