"""Cluster arms that start from what the catalog knows: priors tilted by item-to-cluster affinity.

The catalog prior starts every cluster's arm of an item at the item's global posterior: a
new cluster learns its tastes from nothing. Here the start is tilted by how close the item
is to the cluster's centre: ``logit m[c, i] = u[i] + slope * x[c, i]``, with ``x`` the
cosine of the item's embedding and the cluster centre, and ``u[i]`` set so that the item's
cluster means, averaged over the clusters that make up its traffic, are its global
posterior mean (the tilt moves the item's clicks between clusters, it adds none). One
slope for the whole catalog is fitted by maximum likelihood on the per-cluster counts, so
a click on one item teaches about every item that lies as close to that cluster.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from numpy.typing import NDArray

from bandits.prior import catalog_prior, shrunk_priors
from bandits.validation import nonnegative, positive_scalar, real_scalar, same_shape

FloatArray = NDArray[np.float64]

# Alternating steps of the one-parameter fit; warm-started from the last slope, a few suffice.
_NEWTON_STEPS = 8
# The slope's own prior: N(start, 1 / _SLOPE_PRECISION), so thin evidence keeps the start.
_SLOPE_PRECISION = 0.5
# Newton steps that keep each item's mean over its clusters at its global mean.
_CALIBRATION_STEPS = 3
# A logit tilt beyond this is no longer a prior but a verdict.
_MAX_SLOPE = 20.0
# Pseudo-impressions of each cluster's traffic share in an item's cluster mix.
_MIX_PSEUDO = 10.0
_EDGE = 1e-6


def fit_affinity_slope(
    impressions: npt.ArrayLike,
    clicks: npt.ArrayLike,
    affinity: npt.ArrayLike,
    strength: float,
    start: float = 0.0,
) -> float:
    """Return the logit slope of per-cluster CTR on item-to-cluster affinity (MAP estimate).

    ``impressions`` and ``clicks`` are (k + 1, n), global row last; ``affinity`` (k, n)
    cosines of item and cluster centre (NaN: unknown). ``start`` is both where Newton's
    method starts and the slope's prior mean, so a fit without evidence returns it.

    >>> rng = np.random.default_rng(0)
    >>> x = rng.uniform(-1, 1, size=(4, 300))
    >>> p = 1 / (1 + np.exp(-(-3.0 + 2.0 * x)))
    >>> shown = np.full((4, 300), 400.0)
    >>> clicked = rng.binomial(400, p).astype(float)
    >>> imp = np.vstack([shown, shown.sum(0)])
    >>> clk = np.vstack([clicked, clicked.sum(0)])
    >>> round(fit_affinity_slope(imp, clk, x, strength=10.0), 1)
    2.0
    """
    impressions_, clicks_, affinity_ = _checked(impressions, clicks, affinity)
    strength_ = positive_scalar("strength", strength)
    start_ = real_scalar("start", start)
    return _fit_slope(impressions_, clicks_, affinity_, strength_, start_)


def affinity_params(
    impressions: npt.ArrayLike,
    clicks: npt.ArrayLike,
    affinity: npt.ArrayLike,
    strength: float,
    slope: float,
    catalog: tuple[float, float] | None = None,
    cluster_strength: float | None = None,
) -> tuple[FloatArray, FloatArray]:
    """Return (alpha, beta) for (k + 1, n) counts, each cluster arm tilted by its affinity.

    The global row is as under the catalog prior (worth ``strength``); a cluster row starts
    at mean ``m[c, i] = expit(u[i] + slope * x[c, i])`` worth ``cluster_strength``
    impressions (default ``strength``; see :func:`bandits.prior.fit_prior_strength`), ``u[i]``
    calibrated to the item's global posterior mean. ``slope = 0`` is the catalog prior.

    >>> imp = np.array([[0.0, 0.0], [0.0, 0.0], [100.0, 100.0]])
    >>> clk = np.array([[0.0, 0.0], [0.0, 0.0], [10.0, 10.0]])
    >>> alpha, beta = affinity_params(imp, clk, [[1.0, -1.0], [-1.0, 1.0]], 10.0, 2.0)
    >>> (alpha / (alpha + beta)).round(3).tolist()
    [[0.196, 0.004], [0.004, 0.196], [0.1, 0.1]]
    """
    impressions_, clicks_, affinity_ = _checked(impressions, clicks, affinity)
    strength_ = positive_scalar("strength", strength)
    slope_ = real_scalar("slope", slope)
    arm_strength = (
        strength_
        if cluster_strength is None
        else positive_scalar("cluster_strength", cluster_strength)
    )
    return _affinity_params(
        impressions_, clicks_, affinity_, strength_, slope_, catalog, arm_strength
    )


def _checked(
    impressions: npt.ArrayLike, clicks: npt.ArrayLike, affinity: npt.ArrayLike
) -> tuple[FloatArray, FloatArray, FloatArray]:
    impressions_ = nonnegative("impressions", impressions)
    clicks_ = nonnegative("clicks", clicks)
    same_shape(("impressions", "clicks"), impressions_, clicks_)
    if impressions_.ndim != 2 or impressions_.shape[0] < 2:
        raise ValueError(
            f"counts must be 2-D (clusters + global row, arms), got shape {impressions_.shape}"
        )
    affinity_ = np.asarray(affinity, dtype=np.float64)
    if affinity_.shape != (impressions_.shape[0] - 1, impressions_.shape[1]):
        raise ValueError(
            f"affinity must have one row per cluster, shape "
            f"{(impressions_.shape[0] - 1, impressions_.shape[1])}, got {affinity_.shape}"
        )
    if np.any(np.isinf(affinity_)):
        raise ValueError("affinity must be finite (NaN for unknown), got inf")
    return impressions_, clicks_, affinity_


def _global_means(
    impressions: FloatArray, clicks: FloatArray, strength: float, catalog: tuple[float, float]
) -> FloatArray:
    a, b = shrunk_priors(impressions[-1], clicks[-1], catalog[0], catalog[1], strength)
    means: FloatArray = np.clip(a / (a + b), _EDGE, 1.0 - _EDGE)
    return means


def _affinity_offsets(
    impressions: FloatArray, affinity: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Return (``x - xbar``, mix): affinities minus their item's traffic-weighted mean.

    An item's cluster mix (k, n) is its per-cluster impressions, smoothed toward the
    clusters' traffic shares (all a new item has); items without an affinity (NaN) get
    offset 0.
    """
    clusters = impressions[:-1]
    traffic = clusters.sum(axis=1)
    total = float(traffic.sum())
    share = traffic / total if total > 0 else np.full(traffic.size, 1.0 / traffic.size)
    mix = (clusters + _MIX_PSEUDO * share[:, None]) / (clusters.sum(axis=0) + _MIX_PSEUDO)
    known = np.isfinite(affinity)
    x = np.where(known, affinity, 0.0)
    offsets: FloatArray = np.where(known, x - (mix * x).sum(axis=0), 0.0)
    return offsets, mix


def _expit(x: FloatArray) -> FloatArray:
    # The logistic function without exp's overflow at large negative logits.
    result: FloatArray = 0.5 * (1.0 + np.tanh(0.5 * x))
    return result


def _calibrated_logits(
    global_mean: FloatArray, offsets: FloatArray, mix: FloatArray, slope: float
) -> FloatArray:
    """Return per-(cluster, item) logits ``u[i] + slope * offset`` whose mix-weighted mean
    CTR is the item's global mean: the tilt moves clicks between clusters, never adds them."""
    u = np.log(global_mean) - np.log1p(-global_mean)
    tilt = slope * offsets
    for _ in range(_CALIBRATION_STEPS):
        p = _expit(u + tilt)
        gap = (mix * p).sum(axis=0) - global_mean
        u = u - gap / np.maximum((mix * p * (1.0 - p)).sum(axis=0), _EDGE)
    logits: FloatArray = u + tilt
    return logits


def _fit_slope(
    impressions: FloatArray, clicks: FloatArray, affinity: FloatArray, strength: float, start: float
) -> float:
    catalog = catalog_prior(impressions[-1], clicks[-1], strength)
    g = _global_means(impressions, clicks, strength, catalog)
    offsets, mix = _affinity_offsets(impressions, affinity)
    shown, clicked = impressions[:-1], np.minimum(clicks[:-1], impressions[:-1])
    slope = start
    for _ in range(_NEWTON_STEPS):
        # Alternating: the items' intercepts for this slope, then one Newton step on it.
        p = _expit(_calibrated_logits(g, offsets, mix, slope))
        gradient = float((offsets * (clicked - shown * p)).sum()) - _SLOPE_PRECISION * (
            slope - start
        )
        curvature = float((shown * p * (1.0 - p) * offsets**2).sum()) + _SLOPE_PRECISION
        slope = float(np.clip(slope + gradient / curvature, -_MAX_SLOPE, _MAX_SLOPE))
    return slope


def _affinity_params(
    impressions: FloatArray,
    clicks: FloatArray,
    affinity: FloatArray,
    strength: float,
    slope: float,
    catalog: tuple[float, float] | None,
    arm_strength: float,
) -> tuple[FloatArray, FloatArray]:
    a0, b0 = catalog or catalog_prior(impressions[-1], clicks[-1], strength)
    g = _global_means(impressions, clicks, strength, (a0, b0))
    offsets, mix = _affinity_offsets(impressions, affinity)
    mean = _expit(_calibrated_logits(g, offsets, mix, slope))
    mean = np.clip(mean, _EDGE, 1.0 - _EDGE)
    misses = np.maximum(impressions - clicks, 0.0)
    alpha = np.empty_like(impressions)
    beta = np.empty_like(impressions)
    alpha[:-1] = mean * arm_strength + clicks[:-1]
    beta[:-1] = (1.0 - mean) * arm_strength + misses[:-1]
    alpha[-1] = a0 + clicks[-1]
    beta[-1] = b0 + misses[-1]
    return alpha, beta


def personal_tilt(
    user_affinity: npt.ArrayLike, cluster_affinity: npt.ArrayLike, slope: float, share: float
) -> FloatArray:
    """Return score multipliers ``exp(share * slope * (user_affinity - cluster_affinity))``.

    A cluster's arms speak for its centre; a user sits elsewhere in taste space. With the
    logit slope the affinity prior fitted on the cluster centres, an item closer to this
    user than to their cluster's centre is worth proportionally more to them (for small
    CTRs the logit shift is a factor on the click chance). ``user_affinity`` is the cosine
    of the user's vector and each candidate, ``cluster_affinity`` its membership-weighted
    cosine with the user's clusters' centres; ``share`` (0 to 1) damps the shift, as one
    user's vector is noisier than a centre. NaN affinities (no embedding) give 1.

    >>> personal_tilt([0.9, 0.1, np.nan], [0.5, 0.5, 0.5], slope=2.0, share=0.5).round(3).tolist()
    [1.492, 0.67, 1.0]
    """
    user = np.asarray(user_affinity, dtype=np.float64)
    cluster = np.asarray(cluster_affinity, dtype=np.float64)
    if user.shape != cluster.shape:
        raise ValueError(
            f"user_affinity and cluster_affinity must have the same shape; "
            f"got {user.shape} and {cluster.shape}"
        )
    factor = real_scalar("share", share) * real_scalar("slope", slope)
    gap = np.nan_to_num(user - cluster, nan=0.0, posinf=0.0, neginf=0.0)
    tilt: FloatArray = np.exp(factor * gap)
    return tilt
