"""Drift: arm counts that fade with age, so the bandit follows tastes that change."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from bandits.penalty import decayed_counts

FloatArray = NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Discount:
    """How counts fade: halved per `half_life_s` since each was last updated (0: never).

    >>> Discount(3600.0).apply(np.array([4.0]), np.array([np.nan]), 0.0, 7200.0)
    array([1.])
    """

    half_life_s: float = 0.0

    def __post_init__(self) -> None:
        if not self.half_life_s >= 0:
            raise ValueError(f"half_life_s must be >= 0, got {self.half_life_s!r}")

    @property
    def on(self) -> bool:
        """Return whether counts are discounted at all."""
        return self.half_life_s > 0

    def apply(
        self, stored: FloatArray, updated: FloatArray | None, since: float | None, now: float
    ) -> FloatArray:
        """Return stored counts discounted to `now`; a NaN time means "since `since`"."""
        if not self.on or updated is None:
            return stored
        # A count that was never discounted has faded since discounting began (or not yet).
        at = np.where(np.isnan(updated), now if since is None else since, updated)
        return decayed_counts(stored, now - at, self.half_life_s)
