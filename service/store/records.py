"""The values the store takes and returns: catalog items, clusters, users, counts, events."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

if TYPE_CHECKING:
    from service.store.codecs import ServedList


@dataclass(frozen=True, slots=True)
class ItemRecord:
    """One catalog item as stored."""

    item_id: str
    tags: list[str]
    pools: list[str]
    active: bool
    updated: float
    embedding: np.ndarray | None


@dataclass(frozen=True, slots=True)
class ClusterModel:
    """The fitted k-means centres; generation 0 means no fit yet (one cluster)."""

    gen: int = 0
    k: int = 1
    centers: np.ndarray | None = None
    inertia: float | None = None
    sizes: list[int] = field(default_factory=list)
    fitted_at: float | None = None


class Seen(NamedTuple):
    """One item a user saw without clicking it since their last click on it."""

    # Unclicked impressions fading with the seen half-life, as of `updated` (the fixed decay).
    faded: float
    # When the latest of them was.
    updated: float
    # How many since the last click, not fading (the learned decay's row, as the simulator's).
    unclicked: int


@dataclass(frozen=True, slots=True)
class UserState:
    """What the service keeps about one user."""

    hist: int = 0
    membership: str | None = None
    assigned: str | None = None
    clicks: list[str] = field(default_factory=list)
    seen: dict[str, Seen] = field(default_factory=dict)
    # item_id -> (clicked_at, rec_id of the list it was clicked in, or None)
    last_clicks: dict[str, tuple[float, str | None]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Versions:
    """Change counters that tell the snapshot what to reload."""

    items: int
    arms: int
    clusters: int


Counts = tuple[dict[str, float], dict[str, float], dict[str, float]]  # imp, clk, cnv


class ShardPosition(NamedTuple):
    """How far a reader is in one count shard: its version and its change stream's last id."""

    version: int
    stream_id: str


@dataclass(frozen=True, slots=True)
class CountsState:
    """All counts, summed over the count shards, and each shard's position they were read at.

    `counts` has one (imp, clk, cnv) triple per row: clusters 0..k-1, then global.
    `updated` holds, in the same layout, when each count was last discounted (only read
    when discounting; the shards' parts are discounted to the latest of their times and
    summed); `decay_since` is when discounting was first used, if ever.
    """

    positions: tuple[ShardPosition, ...]
    counts: list[Counts]
    updated: list[Counts] | None = None
    decay_since: float | None = None

    @property
    def version(self) -> int:
        """Return the feedback batches counted, over every shard."""
        return sum(p.version for p in self.positions)


@dataclass(frozen=True, slots=True)
class CountDelta:
    """What one batch added to an item's counts: global, and per credited cluster of gen."""

    gen: int
    kind: str  # imp | clk | cnv
    item_id: str
    added: float
    clusters: tuple[tuple[int, float], ...]
    at: float | None  # when it was added, with discounting; None without


@dataclass(frozen=True, slots=True)
class CountChange:
    """One feedback batch's increments in one count shard, summed per item."""

    shard: int
    stream_id: str
    version: int
    deltas: list[CountDelta]


@dataclass(frozen=True, slots=True)
class ArmEvent:
    """One deduplicated counter update: event_id credits item in generation gen's clusters.

    `user_id` owns the event_id once it is counted (its dedupe marker records it);
    `shares` are (cluster, millionths of the event) pairs summing to one million; `stats`
    are fields of the stats hash to count once if the event is new; `outcome` is a
    (rec_id, field) to flag on a served list when the event is applied; `fatigue` are
    (field, amount) pairs of the fatigue hash (codecs.fatigue_field) to add if it is new.
    """

    event_id: str
    user_id: str
    kind: str
    item_id: str
    gen: int
    shares: tuple[tuple[int, int], ...]
    stats: tuple[str, ...] = ()
    outcome: tuple[str, str] | None = None
    fatigue: tuple[tuple[str, float], ...] = ()


class Verdict(IntEnum):
    """What the dedupe marker of an event's id says about the event (record_counts.lua)."""

    REPLAY = 0  # counted before for the same user: a duplicate; the user side may still need it
    NEW = 1  # counted now
    UNOWNED = 2  # counted before, owner unknown (a marker of an earlier release): a duplicate
    CLAIMED = 3  # counted before for another user: the batch is refused, nothing written


@dataclass(frozen=True, slots=True)
class UserEvent:
    """One event's effect on a user's seen decay, history and last clicks.

    `at` is when it happened: None for live feedback (the batch's now), an imported
    event's own time, so that seen counts decay from then.
    """

    event_id: str
    kind: str
    item_id: str
    rec_id: str | None = None
    at: float | None = None


class LoggedWrite(NamedTuple):
    """A served list to store under its rec_id, with the user's (membership, key) to cache."""

    rec_id: str
    served: ServedList
    assignment: tuple[str, str] | None
