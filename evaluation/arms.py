"""A policy's Beta posteriors per (cluster, item) and a global row, as the service keeps them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np
from numpy.typing import NDArray

from bandits import Prior, fit_affinity_slope, fit_prior_strength, unfitted_strength

FloatArray = NDArray[np.float64]
IndexArray = NDArray[np.intp]
BoolArray = NDArray[np.bool_]

# Updates (lists) between refits of the affinity prior's
# slope (one number for the whole catalog, slow to move); the priors themselves follow the
# counts every ``refresh_every`` updates.
SLOPE_REFIT_EVERY = 200
# A fitted prior strength stays in this range (pseudo-impressions per cluster arm) ...
ADAPTIVE_STRENGTH_RANGE = (3.0, 300.0)
# ... and is fitted once the cluster arms hold this many impressions each on average.
ADAPTIVE_MIN_IMPRESSIONS_PER_ARM = 5.0


class Arms:
    """Counts and Beta posteriors per (cluster, item), the global row last.

    ``alpha`` and ``beta`` follow every update's counts at once; a prior that depends on
    the counts (catalog, affinity) is recomputed every ``refresh_every`` updates, as the
    service recomputes it at each snapshot refresh (1: every update, exact).
    """

    def __init__(
        self,
        n_clusters: int,
        n_items: int,
        prior: Prior,
        refresh_every: int = 1,
        adaptive_strength: bool = False,
        unfitted_strength: float | None = None,
        start_from_history: bool = False,
    ) -> None:
        # A fitted strength's cluster arms start at ``unfitted_strength`` until the fit has
        # evidence (None: at the prior's strength); with ``start_from_history``, each new
        # clustering's start follows the catalog's impressions so far instead.
        if adaptive_strength and unfitted_strength is not None:
            prior = replace(prior, cluster_strength=unfitted_strength)
        self.prior = prior
        self.start_from_history = start_from_history
        self.fitted = False
        self.adaptive_strength = adaptive_strength
        self.refresh_every = refresh_every
        self.impressions = np.zeros((n_clusters + 1, n_items))
        self.clicks = np.zeros((n_clusters + 1, n_items))
        # (clusters, items) cosine of item and cluster centre, for the affinity prior.
        self.affinity: FloatArray | None = None
        self.slope = 0.0
        self._updates = 0
        self.alpha, self.beta = prior.params(self.impressions, self.clicks)

    def new_generation(self, n_clusters: int, affinity: FloatArray | None = None) -> None:
        """Start fresh per-cluster arms (a new clustering); the global row keeps its counts."""
        n_items = self.impressions.shape[1]
        impressions = np.zeros((n_clusters + 1, n_items))
        clicks = np.zeros((n_clusters + 1, n_items))
        impressions[-1], clicks[-1] = self.impressions[-1], self.clicks[-1]
        if self.adaptive_strength and self.start_from_history:
            # A strength fitted on the last clustering's arms is dropped, as in the service:
            # carried into a finer clustering it outweighed the new arms' evidence.
            self.fitted = False
            start = unfitted_strength(
                impressions[-1],
                clicks[-1],
                n_clusters,
                self.prior.strength,
                ADAPTIVE_STRENGTH_RANGE[1],
            )
            self.prior = replace(self.prior, cluster_strength=start)
        self.impressions, self.clicks = impressions, clicks
        self.affinity = affinity
        self.refresh()

    def update(
        self,
        rows: Sequence[int],
        weights: Sequence[float],
        items: IndexArray,
        impressions: BoolArray,
        clicks: BoolArray,
    ) -> None:
        """Count one served list in ``rows`` (by membership weight) and in the global row."""
        seen, clicked = items[impressions], items[clicks & impressions]
        unclicked = items[impressions & ~clicks]
        n_rows = self.alpha.shape[0]
        shares = {n_rows - 1: 1.0}
        for row, weight in zip(rows, weights, strict=True):
            if row % n_rows != n_rows - 1:
                shares[row % n_rows] = shares.get(row % n_rows, 0.0) + weight
        for r, weight in shares.items():
            self.impressions[r, seen] += weight
            self.clicks[r, clicked] += weight
            self.alpha[r, clicked] += weight
            self.beta[r, unclicked] += weight
        if self.prior.kind != "flat":
            self._updates += 1
            if self._updates % self.refresh_every == 0:
                # Every arm's prior moves with the global counts: recompute, as the service does.
                self.refresh(refit_slope=self._updates % SLOPE_REFIT_EVERY == 0)

    def add(self, impressions: FloatArray, clicks: FloatArray, lists: int) -> None:
        """Add (rows, items) counts of a batch of ``lists`` lists, then recompute the prior."""
        self.impressions += impressions
        self.clicks += clicks
        self.alpha += clicks
        self.beta += impressions - clicks
        if self.prior.kind != "flat":
            before = self._updates
            self._updates += lists
            self.refresh(
                refit_slope=before // SLOPE_REFIT_EVERY != self._updates // SLOPE_REFIT_EVERY
            )

    def refresh(self, refit_slope: bool = True) -> None:
        """Recompute (alpha, beta) from the counts and the prior (and refit its slope)."""
        if self.prior.kind == "flat":
            self.alpha, self.beta = self.prior.params(self.impressions, self.clicks)
            return
        if self.prior.kind == "affinity" and self.affinity is not None and refit_slope:
            self.slope = fit_affinity_slope(
                self.impressions, self.clicks, self.affinity, self.prior.strength, self.slope
            )
        self.alpha, self.beta = self.prior.params(
            self.impressions, self.clicks, affinity=self.affinity, slope=self.slope
        )
        if self.adaptive_strength and refit_slope and self._enough_evidence():
            arm_strength = self.prior.cluster_strength or self.prior.strength
            mean = (self.alpha[:-1] - self.clicks[:-1]) / arm_strength
            fitted = fit_prior_strength(
                self.impressions[:-1], self.clicks[:-1], mean, *ADAPTIVE_STRENGTH_RANGE
            )
            self.prior = replace(self.prior, cluster_strength=fitted)
            self.fitted = True
            self.alpha, self.beta = self.prior.params(
                self.impressions, self.clicks, affinity=self.affinity, slope=self.slope
            )

    def _enough_evidence(self) -> bool:
        """Return whether the cluster rows hold enough impressions to measure their spread."""
        # No cluster rows (before the first clustering): nothing to measure.
        size = float(self.impressions[:-1].size)
        return size > 0 and float(self.impressions[:-1].sum()) >= (
            ADAPTIVE_MIN_IMPRESSIONS_PER_ARM * size
        )
