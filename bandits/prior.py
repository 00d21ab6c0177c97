"""Empirical-Bayes priors: what a new arm should believe before its first impression."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from numpy.typing import NDArray

from bandits.posterior import beta_params
from bandits.validation import nonnegative, positive_scalar, real_scalar, same_shape

FloatArray = NDArray[np.float64]
PRIOR_KINDS = ("catalog", "affinity", "flat")


def catalog_prior(
    impressions: npt.ArrayLike, clicks: npt.ArrayLike, strength: float
) -> tuple[float, float]:
    """Return (a0, b0): a Beta prior at the catalog's pooled CTR worth ``strength`` impressions.

    A brand-new item starting here is tried (its draws spread around the catalog mean) but
    not flooded the way Beta(1, 1), with mean 0.5, floods a catalog whose CTRs are ~5%.

    A click implies an impression: each arm counts ``max(impressions, clicks)`` impressions
    (:func:`effective_impressions`), so the pooled CTR never exceeds 1. And the mean rests
    on the evidence it has: with ``n`` pooled impressions it stays within
    ``[1 / (n + 2), (n + 1) / (n + 2)]``, no more extreme than Laplace's rule of succession
    after ``n`` misses or ``n`` hits. So three clicks (and one impression) cannot make every
    new item a certain winner, nor ten unclicked impressions a certain loser; with no
    impressions anywhere the mean is 0.5.

    >>> catalog_prior([100, 300], [10, 10], strength=20)
    (1.0, 19.0)
    >>> a0, b0 = catalog_prior([1, 0], [3, 0], strength=10)  # 3 clicks, 1 impression
    >>> round(a0, 6), round(b0, 6)
    (8.0, 2.0)
    """
    impressions_ = nonnegative("impressions", impressions)
    clicks_ = nonnegative("clicks", clicks)
    same_shape(("impressions", "clicks"), impressions_, clicks_)
    strength_ = positive_scalar("strength", strength)
    shown = float(_effective_impressions(impressions_, clicks_).sum())
    mean = float(clicks_.sum()) / shown if shown > 0 else 0.5
    mean = min(max(mean, 1.0 / (shown + 2.0)), (shown + 1.0) / (shown + 2.0))
    return mean * strength_, (1.0 - mean) * strength_


def effective_impressions(impressions: npt.ArrayLike, clicks: npt.ArrayLike) -> FloatArray:
    """Return each arm's impressions as every rate counts them: at least its clicks.

    A click implies an impression, even when the impression was not (or not yet) counted,
    so no rate derived from these counts exceeds 1.

    >>> effective_impressions([1, 10, 0], [3, 2, 0]).tolist()
    [3.0, 10.0, 0.0]
    """
    impressions_ = nonnegative("impressions", impressions)
    clicks_ = nonnegative("clicks", clicks)
    same_shape(("impressions", "clicks"), impressions_, clicks_)
    return _effective_impressions(impressions_, clicks_)


def _effective_impressions(impressions: FloatArray, clicks: FloatArray) -> FloatArray:
    shown: FloatArray = np.maximum(impressions, clicks)
    return shown


def shrunk_priors(
    impressions: npt.ArrayLike,
    clicks: npt.ArrayLike,
    catalog_a: float,
    catalog_b: float,
    strength: float,
) -> tuple[FloatArray, FloatArray]:
    """Return per-item priors (a0, b0): each item's global posterior scaled to ``strength``.

    The item's global counts are shrunk toward the catalog prior Beta(catalog_a, catalog_b),
    and the resulting mean is given the weight of ``strength`` pseudo-impressions. A new
    cluster's arm starts here: informed by what everyone did, but easily overruled by what
    the cluster does. A brand-new item gets the catalog mean.

    >>> a0, b0 = shrunk_priors([0, 90], [0, 9], 1.0, 19.0, 10.0)
    >>> a0.round(3).tolist(), b0.round(3).tolist()
    ([0.5, 0.909], [9.5, 9.091])
    """
    impressions_ = nonnegative("impressions", impressions)
    clicks_ = nonnegative("clicks", clicks)
    same_shape(("impressions", "clicks"), impressions_, clicks_)
    a = real_scalar("catalog_a", catalog_a)
    b = real_scalar("catalog_b", catalog_b)
    strength_ = real_scalar("strength", strength)
    if a <= 0 or b <= 0 or strength_ <= 0:
        raise ValueError(
            f"catalog_a, catalog_b and strength must be > 0, got {catalog_a}, {catalog_b}, "
            f"{strength}"
        )
    misses = np.maximum(impressions_ - clicks_, 0.0)
    mean = (a + clicks_) / (a + b + clicks_ + misses)
    return mean * strength_, (1.0 - mean) * strength_


def empirical_params(
    impressions: npt.ArrayLike,
    clicks: npt.ArrayLike,
    strength: float,
    catalog: tuple[float, float] | None = None,
    cluster_strength: float | None = None,
) -> tuple[FloatArray, FloatArray]:
    """Return (alpha, beta) for (rows, n) counts whose last row is the global arm.

    The global row starts from the catalog prior (``catalog``, or the pooled CTR of the
    global row worth ``strength`` impressions); each other row starts from the item's
    global posterior scaled down to ``cluster_strength`` (default ``strength``;
    :func:`shrunk_priors`).

    >>> alpha, beta = empirical_params([[0, 10], [100, 10]], [[0, 5], [10, 5]], 10.0)
    >>> alpha.round(2).tolist(), beta.round(2).tolist()
    ([[1.03, 8.18], [11.36, 6.36]], [[8.97, 11.82], [98.64, 13.64]])
    """
    impressions_ = nonnegative("impressions", impressions)
    clicks_ = nonnegative("clicks", clicks)
    same_shape(("impressions", "clicks"), impressions_, clicks_)
    if impressions_.ndim != 2 or impressions_.shape[0] < 1:
        raise ValueError(f"counts must be 2-D (rows, arms), got shape {impressions_.shape}")
    a0, b0 = catalog or catalog_prior(impressions_[-1], clicks_[-1], strength)
    arm_strength = strength if cluster_strength is None else cluster_strength
    item_a, item_b = shrunk_priors(impressions_[-1], clicks_[-1], a0, b0, arm_strength)
    misses = np.maximum(impressions_ - clicks_, 0.0)
    alpha = np.empty_like(impressions_)
    beta = np.empty_like(impressions_)
    alpha[:-1] = item_a + clicks_[:-1]
    beta[:-1] = item_b + misses[:-1]
    alpha[-1] = a0 + clicks_[-1]
    beta[-1] = b0 + misses[-1]
    return alpha, beta


@dataclass(frozen=True, slots=True)
class Prior:
    """What an arm believes before its own evidence: flat Beta(a, b), or from the catalog.

    >>> Prior("flat", 1.0, 1.0).params(np.array([[0.0], [10.0]]), np.array([[0.0], [5.0]]))
    (array([[1.],
           [6.]]), array([[1.],
           [6.]]))
    """

    # "catalog": empirical Bayes; "affinity": the same, cluster arms tilted by the item's
    # affinity to the cluster (bandits.affinity); "flat": Beta(a, b) everywhere.
    kind: str = "catalog"
    a: float = 1.0
    b: float = 1.0
    strength: float = 10.0
    # What a cluster arm's prior is worth, if not ``strength`` (e.g. fitted by
    # fit_prior_strength); the catalog prior of the global arms keeps ``strength``.
    cluster_strength: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in PRIOR_KINDS:
            raise ValueError(f"kind must be one of {PRIOR_KINDS}, got {self.kind!r}")
        for name in ("a", "b", "strength"):
            positive_scalar(name, getattr(self, name))
        if self.cluster_strength is not None:
            positive_scalar("cluster_strength", self.cluster_strength)

    def catalog(
        self, global_impressions: npt.ArrayLike, global_clicks: npt.ArrayLike
    ) -> tuple[float, float]:
        """Return the prior of a brand-new item's global arm."""
        if self.kind == "flat":
            return self.a, self.b
        return catalog_prior(global_impressions, global_clicks, self.strength)

    def params(
        self,
        impressions: npt.ArrayLike,
        clicks: npt.ArrayLike,
        catalog: tuple[float, float] | None = None,
        affinity: npt.ArrayLike | None = None,
        slope: float = 0.0,
    ) -> tuple[FloatArray, FloatArray]:
        """Return (alpha, beta) for (rows, n) counts in events, the global arm last.

        Flat: Beta(a + clicks, b + misses) everywhere. Catalog: the global row starts from
        the catalog prior (``catalog``, or the pooled CTR of the global row); each cluster
        row from the item's global posterior scaled down to ``strength`` pseudo-impressions,
        so new clusters and new items are tried, not flooded. Affinity: as catalog, with
        each cluster row's start tilted by ``slope`` times the (clusters, n) ``affinity``
        (:func:`bandits.affinity.affinity_params`); without ``affinity``, as catalog.
        """
        if self.kind == "flat":
            return beta_params(impressions, clicks, self.a, self.b)
        if self.kind == "affinity" and affinity is not None:
            # Imported here: bandits.affinity builds on this module's catalog prior.
            from bandits.affinity import affinity_params

            return affinity_params(
                impressions, clicks, affinity, self.strength, slope, catalog, self.cluster_strength
            )
        return empirical_params(impressions, clicks, self.strength, catalog, self.cluster_strength)


def fit_prior_strength(
    impressions: npt.ArrayLike,
    clicks: npt.ArrayLike,
    prior_mean: npt.ArrayLike,
    low: float = 1.0,
    high: float = 1000.0,
) -> float:
    """Return the strength S at which Beta(m S, (1 - m) S) priors spread as the arms do.

    Empirical Bayes by moments: per arm the observed CTR ``y = clicks / impressions`` varies
    around its prior mean ``m`` by the prior's spread ``tau2`` plus binomial noise, so
    ``tau2 = (sum n (y - m)^2 - sum m (1 - m)) / sum n`` over arms with impressions, and a
    Beta prior of mean m spreads by ``m (1 - m) / (S + 1)``. Arms that stray far from their
    priors get a weak one; arms the prior predicts well, a strong one. Clipped to
    [``low``, ``high``]; without evidence of any spread, ``high``.

    >>> rng = np.random.default_rng(0)
    >>> m = np.full(4000, 0.05)
    >>> p = rng.beta(m * 50, (1 - m) * 50)
    >>> n = np.full(4000, 400.0)
    >>> round(fit_prior_strength(n, rng.binomial(400, p), m), -1)
    50.0
    """
    impressions_ = nonnegative("impressions", impressions)
    clicks_ = nonnegative("clicks", clicks)
    same_shape(("impressions", "clicks"), impressions_, clicks_)
    mean = nonnegative("prior_mean", prior_mean)
    same_shape(("impressions", "prior_mean"), impressions_, mean)
    low_, high_ = real_scalar("low", low), real_scalar("high", high)
    if not 0.0 < low_ <= high_:
        raise ValueError(f"need 0 < low <= high, got low={low!r}, high={high!r}")
    shown = impressions_ > 0
    n = impressions_[shown]
    if n.size == 0:
        return high_
    y = np.minimum(clicks_[shown], n) / n
    m = np.clip(mean[shown], 1e-9, 1.0 - 1e-9)
    binomial = m * (1.0 - m)
    spread = (float((n * (y - m) ** 2).sum()) - float(binomial.sum())) / float(n.sum())
    if spread <= 0.0:
        return high_
    typical = float((n * binomial).sum()) / float(n.sum())
    return float(np.clip(typical / spread - 1.0, low_, high_))


# Impressions per cluster arm the catalog's history must cover before a clustering's arms
# start weak, and before a fit may use that many clusters (simulator and service share it).
MIN_HISTORY_PER_ARM = 3.0
# The numbers of clusters a fit without a k of its own chooses from.
CLUSTER_CHOICES = (8, 16, 32)
# Users with a history a fit needs per cluster before it may use that many clusters. Between
# the simulator's families (2 000 users, all with history: 62 per cluster at 32 won) and a
# service starting cold over HTTP (557 users with clicks at its second fit: 32 clusters of
# ~17 lost 16-23 points of oracle to 16): picked from those two, not derived.
MIN_USERS_PER_CLUSTER = 50


def unfitted_strength(
    global_impressions: npt.ArrayLike,
    global_clicks: npt.ArrayLike,
    n_clusters: int,
    weak: float,
    strong: float,
    min_history: float = MIN_HISTORY_PER_ARM,
) -> float:
    """Return a new clustering's cluster-arm strength before it can be fitted.

    ``weak`` (explore within each cluster) when the catalog had already shown at least
    ``min_history`` impressions per cluster arm of this clustering, ``strong`` (lean on the
    item's global posterior) otherwise: traffic that thin would leave each cluster arm a
    click or none, and a weak prior's wide draws would rank items by that noise.

    >>> unfitted_strength([6, 6], [1, 1], n_clusters=2, weak=10, strong=300)
    10.0
    >>> unfitted_strength([5, 5], [1, 1], n_clusters=2, weak=10, strong=300)
    300.0
    """
    shown = effective_impressions(global_impressions, global_clicks)
    clusters = int(n_clusters)
    if clusters < 1:
        raise ValueError(f"n_clusters must be >= 1, got {n_clusters!r}")
    weak_, strong_ = positive_scalar("weak", weak), positive_scalar("strong", strong)
    per_arm = float(shown.sum()) / (clusters * max(1, shown.size))
    return weak_ if per_arm >= real_scalar("min_history", min_history) else strong_


def clusters_for_history(
    global_impressions: npt.ArrayLike,
    global_clicks: npt.ArrayLike,
    n_users: int | None = None,
    choices: tuple[int, ...] = CLUSTER_CHOICES,
    min_history: float = MIN_HISTORY_PER_ARM,
    min_users: int = MIN_USERS_PER_CLUSTER,
) -> int:
    """Return the most clusters of ``choices`` whose cluster arms the catalog's history so
    far covers with at least ``min_history`` impressions each, and that the ``n_users``
    users with a history (None: not counted) fill with at least ``min_users`` each; else
    the fewest.

    The same bar as :func:`unfitted_strength`: more clusters fit tastes more finely but split
    the traffic that teaches each cluster's arms. Users count too: where most traffic comes
    from users without a history (a service starting cold), the catalog's impressions
    overstate what the cluster arms will see.

    >>> clusters_for_history([100, 100], [5, 5])
    32
    >>> clusters_for_history([100, 100], [5, 5], n_users=900)
    16
    >>> clusters_for_history([30, 30], [1, 1])
    8
    """
    shown = effective_impressions(global_impressions, global_clicks)
    if not choices or any(isinstance(c, bool) or not isinstance(c, int) or c < 1 for c in choices):
        raise ValueError(f"choices must be integers >= 1, got {choices!r}")
    per_item = float(shown.sum()) / max(1, shown.size)
    bar = real_scalar("min_history", min_history)
    users = math.inf if n_users is None else float(n_users)
    covered = [c for c in choices if per_item / c >= bar and users / c >= min_users]
    return max(covered) if covered else min(choices)


def conversion_rate(
    clicks: npt.ArrayLike, conversions: npt.ArrayLike, strength: float
) -> FloatArray:
    """Return the posterior mean of conversions per click, shrunk to the catalog's rate.

    Rows are clusters with the global arm last. Conversions are rare and late, so an
    item's own rate is noisy: like CTR under the catalog prior, it starts at the pooled
    rate, worth ``strength`` clicks.

    >>> conversion_rate(np.array([[10.0], [10.0]]), np.array([[5.0], [5.0]]), 10.0).tolist()
    [[0.5], [0.5]]
    """
    clicks_ = nonnegative("clicks", clicks)
    conversions_ = nonnegative("conversions", conversions)
    same_shape(("clicks", "conversions"), clicks_, conversions_)
    # A conversion implies a click, as a click implies an impression (catalog_prior).
    pooled_a, pooled_b = catalog_prior(clicks_[-1], conversions_[-1], strength)
    misses = np.maximum(clicks_ - conversions_, 0.0)
    rate: FloatArray = (pooled_a + conversions_) / (pooled_a + pooled_b + conversions_ + misses)
    return rate
