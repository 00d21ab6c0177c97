"""A synthetic population whose click chance after ignored impressions follows a known curve.

Driven through the engine (recommend, feedback, snapshot refresh) on a clock the world moves:
users visit at random (some often, some rarely), each visit serves a list, and the user
clicks an item with its base CTR times the true multiplier of the item's fatigue bucket
(the world's own count of the user's unclicked impressions of it since their last click on
it, and the age of the last, as the service buckets them). The service never sees the curve,
only feedback.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from service.engine.fatigue import BUCKETS
from service.schemas import FeedbackBatch, FeedbackEvent, RecommendRequest

HOUR = 3600.0
# Base CTRs: the best items are worth showing again, so tired buckets fill up.
CTRS = (0.35, 0.3, 0.3, 0.25, 0.25, 0.2, 0.15, 0.1)
ITEMS = tuple(f"i{n}" for n in range(len(CTRS)))
_ids = itertools.count()


def recovering_curve(tired: tuple[float, ...], recovered: tuple[float, ...]) -> np.ndarray:
    """Return the true multiplier per bucket: 1 - (1 - tired[n]) * (1 - recovered[band])."""
    levels = BUCKETS.unclicked_levels()
    bands = np.concatenate([[0], np.tile(np.arange(BUCKETS.n_ages), BUCKETS.max_unclicked)])
    tiredness = 1.0 - np.array([1.0, *tired])[levels]
    return 1.0 - tiredness * (1.0 - np.array(recovered)[bands])


# After 1-4+ ignored impressions x0.45/0.3/0.2/0.15, recovering within hours of the last.
FAST_RECOVERY = recovering_curve((0.45, 0.3, 0.2, 0.15), (0.0, 0.25, 0.6, 0.9, 1.0, 1.0))

# (faded count as of the last unclicked impression, plain count since the last click, age
# of the last) -> click-chance multiplier.
Truth = Callable[[float, int, float], float]


def by_bucket(curve: np.ndarray) -> Truth:
    """Return a world whose multiplier is `curve` at the (plain count, age) bucket."""
    return lambda faded, count, age: float(curve[BUCKETS.index([count], [age])[0]])


def fixed_decay(gamma: float, half_life_h: float) -> Truth:
    """Return a world that tires and recovers exactly as the fixed seen decay assumes."""
    return lambda faded, count, age: gamma ** (faded * 2.0 ** (-age / (half_life_h * HOUR)))


class Clock:
    """A wall clock the world moves forward."""

    def __init__(self) -> None:
        self.t = time.time()

    def __call__(self) -> float:
        return self.t


@dataclass
class FatigueWorld:
    """Users, their fatigue per item, and what the run earned.

    A user's faded count of an item fades as the service's does (half-life `half_life_h`,
    BANDITREC_SEEN_HALF_LIFE_H); the plain count does not, so both put an impression in
    the same bucket whatever the half-life.
    """

    truth: Truth
    rng: np.random.Generator
    half_life_h: float
    users: int = 120
    # Visit chance per round of the frequent half and of the rare half of users.
    visit_chance: tuple[float, float] = (0.25, 0.03)
    round_h: float = 0.5
    k: int = 2
    # (user, item) -> (unclicked impressions since the last click, faded to `at`; at;
    # the same not fading)
    seen: dict[tuple[int, int], tuple[float, float, int]] = field(default_factory=dict)
    # Per impression: the true click chance of what was served.
    chances: list[float] = field(default_factory=list)

    def _ignored(self, user: int, item: int, now: float) -> tuple[float, float, int]:
        """Return the (faded, at, plain) counts after one more unclicked impression now."""
        faded, at, count = self.seen.get((user, item), (0.0, now, 0))
        return faded * 2.0 ** (-(now - at) / (self.half_life_h * HOUR)) + 1.0, now, count + 1

    def chance(self, user: int, item: int, now: float) -> float:
        """Return the user's click chance on the item now."""
        faded, at, count = self.seen.get((user, item), (0.0, now, 0))
        return CTRS[item] * (self.truth(faded, count, now - at) if count > 0 else 1.0)

    async def run(self, engine: Any, clock: Clock, rounds: int) -> None:
        """Serve and answer `rounds` rounds of visits through the engine."""
        chance = np.where(np.arange(self.users) < self.users // 2, *self.visit_chance)
        for _ in range(rounds):
            events: list[FeedbackEvent] = []
            visitors = np.flatnonzero(self.rng.random(self.users) < chance)
            for user in visitors:
                request = RecommendRequest(user_id=f"u{user}", k=self.k)
                response = await engine.recommender.recommend(request)
                for scored in response.items:
                    item = ITEMS.index(scored.item_id)
                    p = self.chance(user, item, clock.t)
                    clicked = bool(self.rng.random() < p)
                    self.chances.append(p)
                    if clicked:
                        self.seen.pop((user, item), None)
                    else:
                        self.seen[user, item] = self._ignored(user, item, clock.t)
                    kinds = ["impression", "click"] if clicked else ["impression"]
                    events += [
                        FeedbackEvent(
                            event_id=f"w{next(_ids)}",
                            type=kind,
                            user_id=f"u{user}",
                            item_id=scored.item_id,
                            rec_id=response.rec_id,
                        )
                        for kind in kinds
                    ]
            if events:
                await engine.feedback.record(FeedbackBatch(events=events))
            clock.t += self.round_h * HOUR
            await engine.refresh()
