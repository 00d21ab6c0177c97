"""What a policy remembers of each user's impressions of each item, for its seen decay.

The world keeps its own fatigue (engine.Reactions); a policy keeps this, as the service
keeps its per-user seen counts: the fixed decay reads the unclicked count fading with the
policy's half-life, the learned decay the plain count since the last click and its age.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]
IndexArray = NDArray[np.intp]
BoolArray = NDArray[np.bool_]


class SeenView(NamedTuple):
    """One user's seen state at one step, per item."""

    faded: FloatArray  # unclicked impressions since the last click, fading with the half-life
    unclicked: FloatArray  # the same, not fading
    ages: FloatArray  # steps since the last unclicked impression (inf: none)


class SeenState:
    """Per (user, item): fading and plain unclicked counts and the step of the last one."""

    def __init__(self, n_users: int, n_items: int, half_life: float) -> None:
        self.half_life = half_life
        self.faded = np.zeros((n_users, n_items))
        self.unclicked = np.zeros((n_users, n_items))
        self.last = np.full((n_users, n_items), -np.inf)
        self.visited = np.zeros(n_users)

    def view(self, user: int, step: int) -> SeenView:
        """Return the user's state at ``step``, fading their counts up to it first."""
        faded = self.faded[user]
        # Lazy fading, as the service does: only the arriving user's counts are brought up to now.
        faded *= 2.0 ** (-(step - self.visited[user]) / self.half_life)
        self.visited[user] = step
        return SeenView(faded, self.unclicked[user], step - self.last[user])

    def record(
        self, user: int, step: int, items: IndexArray, seen: BoolArray, clicked: BoolArray
    ) -> None:
        """Count the list's impressions without a click; a click resets the item."""
        ignored, taken = items[seen & ~clicked], items[clicked]
        self.faded[user, ignored] += 1.0
        self.unclicked[user, ignored] += 1.0
        self.last[user, ignored] = step
        self.faded[user, taken] = 0.0
        self.unclicked[user, taken] = 0.0
        self.last[user, taken] = -np.inf

    def view_many(self, users: IndexArray, steps: IndexArray) -> SeenView:
        """Return (users, items) states of distinct ``users`` at their ``steps``, fading first."""
        fade = np.exp2(-(steps - self.visited[users]) / self.half_life)
        self.faded[users] *= fade[:, None]
        self.visited[users] = steps
        return SeenView(self.faded[users], self.unclicked[users], steps[:, None] - self.last[users])

    def record_many(
        self,
        users: IndexArray,
        steps: IndexArray,
        items: IndexArray,
        seen: BoolArray,
        clicked: BoolArray,
    ) -> None:
        """Record (users, k) lists of distinct users at once, as ``record`` does one by one."""
        user_at = np.broadcast_to(users[:, None], items.shape)
        step_at = np.broadcast_to(steps[:, None], items.shape)
        ignored = seen & ~clicked
        # Distinct users, distinct items per list: every (user, item) pair is unique.
        pairs = user_at[ignored], items[ignored]
        self.faded[pairs] += 1.0
        self.unclicked[pairs] += 1.0
        self.last[pairs] = step_at[ignored]
        taken = user_at[clicked], items[clicked]
        self.faded[taken] = 0.0
        self.unclicked[taken] = 0.0
        self.last[taken] = -np.inf
