"""The affinity prior in the service: cluster arms that start where the catalog's embeddings
point, its slope and strength refitted from the counts at refresh, and the personal tilt."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from bandits import (
    Prior,
    fit_affinity_slope,
    fit_prior_strength,
    personal_tilt,
    unfitted_strength,
)
from clustering import cluster_affinity
from service.config import Settings
from service.engine.membership import Membership, embedded_rows
from service.engine.snapshot import Catalog
from service.stats_schemas import AffinityPriorOut
from service.store import ClusterModel

# A fitted cluster prior strength stays in this range (pseudo-impressions per arm) ...
STRENGTH_RANGE = (3.0, 300.0)
# ... and is fitted once the cluster rows hold this many impressions per arm on average:
# the spread of fewer is mostly binomial noise.
MIN_IMPRESSIONS_PER_ARM = 5.0


@dataclass(frozen=True, slots=True)
class AffinityFit:
    """What a snapshot serves with: the generation's (k, n) affinity, the slope, the strength."""

    # Cosine of each cluster centre and item embedding; NaN for items without one.
    affinity: np.ndarray
    slope: float = 0.0
    # Pseudo-impressions of a cluster arm's prior as served (fitted, or the clustering's
    # start before the fit); None: prior_strength.
    cluster_strength: float | None = None
    # Clock time of the last fit of slope and strength; None before the first.
    fitted_at: float | None = None
    # (k, n) prior mean of each cluster arm as last derived; None before a derivation.
    prior_mean: np.ndarray | None = None


class AffinityPrior:
    """The arms' prior under prior="affinity", refitting its slope and strength at refresh.

    Quacks like bandits.Prior where the snapshot derives posteriors (``strength``,
    ``catalog``, ``params``), so refresh swaps it in without the snapshot knowing. The slope
    outlives a clustering generation; the strength restarts at each (bandits.unfitted_strength).
    """

    def __init__(self, prior: Prior, refit_s: float) -> None:
        self.base = prior
        self.refit_s = refit_s
        self.slope = 0.0
        # The fitted strength; None until the cluster arms have the evidence.
        self.cluster_strength: float | None = None
        # Before that, the strength a clustering generation starts at (and which generation).
        self.start: float | None = None
        self._start_gen: int | None = None
        self._gen: int | None = None
        self.fitted_at: float | None = None
        self.affinity: np.ndarray | None = None
        self.prior_mean: np.ndarray | None = None
        self._of: tuple[int, int] | None = None
        self._now = 0.0

    @property
    def strength(self) -> float:
        """Return what the catalog prior of the global arms is worth."""
        return self.base.strength

    def follow(
        self, catalog: Catalog, clusters: ClusterModel, unit_centers: np.ndarray | None, now: float
    ) -> AffinityPrior:
        """Recompute the affinity when catalog or clustering changed; return self."""
        self._now = now
        if self._of == (catalog.version, clusters.gen):
            return self
        self._of = (catalog.version, clusters.gen)
        self._gen = clusters.gen
        self.affinity = _affinity(catalog, unit_centers)
        self.prior_mean = None
        return self

    def state(self) -> AffinityFit | None:
        """Return the affinity, slope and strength the posteriors were just derived with."""
        if self.affinity is None:
            return None
        return AffinityFit(
            self.affinity, self.slope, self.served_strength(), self.fitted_at, self.prior_mean
        )

    def served_strength(self) -> float | None:
        """Return the cluster arms' strength: fitted, else the generation's start (None: base)."""
        return self.cluster_strength if self.cluster_strength is not None else self.start

    def catalog(
        self, global_impressions: np.ndarray, global_clicks: np.ndarray
    ) -> tuple[float, float]:
        """Return the prior of a brand-new item's global arm."""
        return self.base.catalog(global_impressions, global_clicks)

    def params(
        self,
        impressions: np.ndarray,
        clicks: np.ndarray,
        catalog: tuple[float, float] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Return (alpha, beta) for (k + 1, n) counts in events, refitting slope and strength
        when due."""
        affinity = self.affinity
        if affinity is None or affinity.shape != (impressions.shape[0] - 1, impressions.shape[1]):
            # Before the first fit (or mid-change): the catalog prior, as a slope of 0 gives.
            return replace(self.base, cluster_strength=self.served_strength()).params(
                impressions, clicks, catalog
            )
        if self._start_gen != self._gen:
            # Once per clustering, from the catalog's impressions before it (the global row).
            # A strength fitted on the last clustering's arms is dropped: carried into a
            # finer one it was worth far more than the new arms' evidence (docs/evaluation.md).
            self._start_gen = self._gen
            self.cluster_strength = None
            self.start = unfitted_strength(
                impressions[-1],
                clicks[-1],
                impressions.shape[0] - 1,
                self.strength,
                STRENGTH_RANGE[1],
            )
        if self.fitted_at is None or self._now - self.fitted_at >= self.refit_s:
            self._fit(impressions, clicks, affinity, catalog)
        served = self.served_strength()
        prior = replace(self.base, cluster_strength=served)
        alpha, beta = prior.params(impressions, clicks, catalog, affinity, self.slope)
        # Kept so that views show cluster arms as served (see cluster_params).
        self.prior_mean = (alpha[:-1] - clicks[:-1]) / (served or self.strength)
        return alpha, beta

    def _fit(
        self,
        impressions: np.ndarray,
        clicks: np.ndarray,
        affinity: np.ndarray,
        catalog: tuple[float, float] | None,
    ) -> None:
        """Refit the slope (warm from the last), then the cluster arms' strength if evidence."""
        self.fitted_at = self._now
        self.slope = fit_affinity_slope(impressions, clicks, affinity, self.strength, self.slope)
        if float(impressions[:-1].sum()) < MIN_IMPRESSIONS_PER_ARM * impressions[:-1].size:
            return
        current = self.served_strength() or self.strength
        prior = replace(self.base, cluster_strength=current)
        alpha, _ = prior.params(impressions, clicks, catalog, affinity, self.slope)
        mean = (alpha[:-1] - clicks[:-1]) / current
        self.cluster_strength = fit_prior_strength(
            impressions[:-1], clicks[:-1], mean, *STRENGTH_RANGE
        )


def cluster_params(
    fit: AffinityFit | None,
    base_strength: float,
    params: tuple[np.ndarray, np.ndarray],
    impressions: np.ndarray,
    clicks: np.ndarray,
    rows: dict[int, int],
    columns: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Return (alpha, beta) with the given cluster rows' priors as the snapshot serves them.

    ``params`` are the catalog prior's for (rows, items) counts in events; ``rows`` maps a
    matrix row to its cluster, ``columns`` gives each item's catalog position (-1: not in
    the snapshot, which keeps the catalog prior until the next refresh).
    """
    alpha, beta = params[0].copy(), params[1].copy()
    if fit is None or fit.prior_mean is None:
        return alpha, beta
    strength = fit.cluster_strength or base_strength
    misses = np.maximum(impressions - clicks, 0.0)
    known = (columns >= 0) & (columns < fit.prior_mean.shape[1])
    for row, cluster in rows.items():  # one per cluster: views only, never per arm
        if cluster >= fit.prior_mean.shape[0]:
            continue
        mean = fit.prior_mean[cluster, columns[known]]
        alpha[row, known] = mean * strength + clicks[row, known]
        beta[row, known] = (1.0 - mean) * strength + misses[row, known]
    return alpha, beta


def _affinity(catalog: Catalog, unit_centers: np.ndarray | None) -> np.ndarray | None:
    """Return the (k, n) cluster-item cosines, or None without centres or matching embeddings."""
    if unit_centers is None or catalog.embeddings.shape[1] != unit_centers.shape[1]:
        return None
    affinity: np.ndarray = cluster_affinity(unit_centers, catalog.embeddings)
    return affinity


def tilt_for(
    catalog: Catalog,
    fit: AffinityFit | None,
    membership: Membership,
    clicked: list[str],
    positions: np.ndarray,
    share: float,
) -> np.ndarray | None:
    """Return the personal tilt of the candidates' scores, or None where there is none.

    The user's vector is the normalised sum of their clicked items' embeddings, as their
    membership is computed; one matrix-vector product over the candidates.
    """
    if share <= 0.0 or fit is None or membership.top is None or fit.slope == 0.0:
        return None
    if not membership.fits(fit.affinity.shape[0]):
        return None
    rows = embedded_rows(catalog, clicked)
    if not rows:
        return None
    user = catalog.embeddings[rows].sum(axis=0)
    norm = float(np.linalg.norm(user))
    if norm == 0.0:
        return None
    user_affinity = np.where(
        catalog.has_embedding[positions], catalog.embeddings[positions] @ (user / norm), np.nan
    )
    weights = np.array(membership.weights)
    centre_affinity = weights @ fit.affinity[list(membership.clusters)][:, positions]
    tilt: np.ndarray = personal_tilt(user_affinity, centre_affinity, fit.slope, share)
    return tilt


def prior_out(prior: AffinityPrior | None, settings: Settings) -> AffinityPriorOut | None:
    """Return the affinity prior's fitted values as /v1/stats shows them."""
    if prior is None:
        return None
    return AffinityPriorOut(
        slope=prior.slope,
        cluster_strength=prior.served_strength() or prior.strength,
        strength_fitted=prior.cluster_strength is not None,
        fitted_at=prior.fitted_at,
        personal_tilt=settings.personal_tilt,
    )
