"""Off-policy estimators of a target policy's per-impression CTR: IPS, SNIPS, doubly robust.

Inputs are flat over the logged *impressions* (served items the user saw), plus per-list terms.
Each estimator is a ratio of per-list sums, so the bootstrap resamples whole lists.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import numpy.typing as npt
from numpy.typing import NDArray

from bandits.validation import float_array, generator, positive_int, require

FloatArray = NDArray[np.float64]
ESTIMATORS = ("ips", "snips", "dr")
# Bootstrap indices drawn at once (8 bytes each): 32 MB however many lists the log has.
BOOT_CHUNK = 4_000_000


class Estimate(NamedTuple):
    """A point estimate, its 95% interval, and the errors that went into the interval."""

    value: float
    low: float
    high: float
    # Standard deviation of the estimate over the bootstrap resamples of lists.
    se: float = math.nan
    # Standard error of the point from Monte-Carlo target propensities (0: exact ones).
    mc_error: float = 0.0


def estimate_ctr(
    list_index: npt.ArrayLike,
    reward: npt.ArrayLike,
    logged_propensity: npt.ArrayLike,
    target_propensity: npt.ArrayLike,
    reward_hat: npt.ArrayLike,
    direct: npt.ArrayLike,
    n_impressions: npt.ArrayLike,
    rng: np.random.Generator,
    n_boot: int = 500,
    level: float = 0.95,
) -> dict[str, Estimate]:
    """Return IPS, SNIPS and DR estimates of the target's CTR with bootstrap intervals.

    Per impression j (of list ``list_index[j]``): ``w = target / logged`` propensity of the
    item being in the list. IPS = sum(w r) / impressions, SNIPS = sum(w r) / sum(w),
    DR = (sum over lists of ``direct`` + sum(w (r - reward_hat))) / impressions, where
    ``direct[l]`` is the target's expected clicks for list l under the reward model.

    >>> est = estimate_ctr([0, 0, 1], [1, 0, 0], [0.5, 0.5, 0.25], [0.5, 0.25, 0.5],
    ...                    [0.2, 0.2, 0.2], [0.4, 0.4], [2, 1], np.random.default_rng(0))
    >>> round(est["ips"].value, 4), round(est["snips"].value, 4), round(est["dr"].value, 4)
    (0.3333, 0.2857, 0.3667)
    """
    lists = np.asarray(list_index)
    if lists.ndim != 1 or lists.dtype.kind not in "iu" or lists.size == 0:
        raise ValueError(f"list_index must be a non-empty 1-D integer array, got {lists!r}")
    r = float_array("reward", reward)
    logged = float_array("logged_propensity", logged_propensity)
    target = float_array("target_propensity", target_propensity)
    r_hat = float_array("reward_hat", reward_hat)
    direct_ = float_array("direct", direct)
    shown = float_array("n_impressions", n_impressions)
    named = {"reward": r, "logged_propensity": logged, "target_propensity": target,
             "reward_hat": r_hat}  # fmt: skip
    for name, values in named.items():
        if values.shape != lists.shape:
            raise ValueError(f"{name} must have shape {lists.shape}, got {values.shape}")
    require("logged_propensity", logged, (logged > 0.0) & (logged <= 1.0), "in (0, 1]")
    require("target_propensity", target, (target >= 0.0) & (target <= 1.0), "in [0, 1]")
    n_lists = direct_.size
    if shown.shape != direct_.shape or int(lists.max()) >= n_lists or int(lists.min()) < 0:
        raise ValueError(
            f"direct and n_impressions must have one entry per list ({int(lists.max()) + 1}+), "
            f"got {direct_.shape} and {shown.shape}"
        )
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    per_list = _per_list(lists, r, target / logged, r_hat, direct_, shown)
    point = _ratios(per_list.sum(axis=1)[:, None])[:, 0]
    boot_rng = generator("rng", rng)
    resamples = positive_int("n_boot", n_boot)
    sums = np.empty((4, resamples))  # per resample: the four per-list sums
    # Resample in chunks of about BOOT_CHUNK indices: memory stays bounded on large logs, and
    # the indices drawn are the same as in one call.
    chunk = max(1, BOOT_CHUNK // n_lists)
    for start in range(0, resamples, chunk):
        stop = min(resamples, start + chunk)
        draws = boot_rng.integers(n_lists, size=(stop - start, n_lists))
        sums[:, start:stop] = [part[draws].sum(axis=1) for part in per_list]
    resampled = _ratios(sums)
    tail = 50.0 * (1.0 - level)
    bounds = np.nanpercentile(resampled, [tail, 100.0 - tail], axis=1)
    spread = np.nanstd(resampled, axis=1, ddof=1) if n_boot > 1 else np.full(3, math.nan)
    return {
        name: Estimate(float(point[i]), float(bounds[0, i]), float(bounds[1, i]), float(spread[i]))
        for i, name in enumerate(ESTIMATORS)
    }


def monte_carlo_error(
    list_index: npt.ArrayLike,
    reward: npt.ArrayLike,
    logged_propensity: npt.ArrayLike,
    target_batches: npt.ArrayLike,
    reward_hat: npt.ArrayLike,
    direct_batches: npt.ArrayLike,
    n_impressions: npt.ArrayLike,
) -> dict[str, float]:
    """Return each estimator's Monte-Carlo standard error (batch means) of its point estimate.

    Row b of ``target_batches`` and ``direct_batches`` comes from the b-th of B independent,
    equal batches of the target's draws, so the point estimate (from their mean) varies by
    ``std over b / sqrt(B)``: exactly for IPS and DR, which are linear in the target's
    propensities, and to first order for SNIPS.

    >>> err = monte_carlo_error([0, 1], [1, 0], [0.5, 0.5], [[0.4, 0.5], [0.6, 0.5]],
    ...                         [0.1, 0.1], [[0.2, 0.2], [0.2, 0.2]], [1, 1])
    >>> round(err["ips"], 4), round(err["dr"], 4)
    (0.1, 0.09)
    """
    lists = np.asarray(list_index, dtype=np.intp)
    r = float_array("reward", reward)
    logged = float_array("logged_propensity", logged_propensity)
    targets = float_array("target_batches", target_batches)
    r_hat = float_array("reward_hat", reward_hat)
    directs = float_array("direct_batches", direct_batches)
    shown = float_array("n_impressions", n_impressions)
    wanted = (targets.shape[0], shown.size)
    if targets.ndim != 2 or targets.shape[1] != lists.size or directs.shape != wanted:
        raise ValueError(
            f"target_batches must be (B, {lists.size}) and direct_batches (B, {shown.size}); "
            f"got {targets.shape} and {directs.shape}"
        )
    n_batches = targets.shape[0]
    if n_batches < 2:
        return dict.fromkeys(ESTIMATORS, 0.0)
    points = np.stack(
        [
            _ratios(_per_list(lists, r, t / logged, r_hat, d, shown).sum(axis=1)[:, None])[:, 0]
            for t, d in zip(targets, directs, strict=True)
        ]
    )  # (B, 3)
    error = np.std(points, axis=0, ddof=1) / math.sqrt(n_batches)
    return {name: float(error[i]) for i, name in enumerate(ESTIMATORS)}


def _per_list(
    lists: NDArray[np.intp],
    r: FloatArray,
    w: FloatArray,
    r_hat: FloatArray,
    direct: FloatArray,
    shown: FloatArray,
) -> FloatArray:
    """(4, n_lists): weighted clicks, weights, impressions, DR clicks of each list."""
    n_lists = direct.size
    return np.stack(
        [
            np.bincount(lists, weights=w * r, minlength=n_lists),
            np.bincount(lists, weights=w, minlength=n_lists),
            shown,
            direct + np.bincount(lists, weights=w * (r - r_hat), minlength=n_lists),
        ]
    )


def _ratios(sums: FloatArray) -> FloatArray:
    """(ips, snips, dr) rows from (weighted clicks, weights, impressions, DR clicks) rows."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.stack([sums[0] / sums[2], sums[0] / sums[1], sums[3] / sums[2]])
