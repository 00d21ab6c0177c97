"""Pool quotas: reserve places in a list for items from given pools, then fill by score."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from numpy.typing import NDArray

from bandits.thompson import _top_k
from bandits.validation import (
    any_nan,
    beta_shapes,
    float_array,
    generator,
    nonnegative,
    positive_int,
    same_shape,
)

FloatArray = NDArray[np.float64]
IndexArray = NDArray[np.intp]


def fill_quotas(
    scores: npt.ArrayLike,
    pools: Sequence[npt.ArrayLike],
    quotas: Sequence[int],
    k: int,
) -> IndexArray:
    """Return up to k arm indices: each pool's best ``quota`` arms first, the rest by score.

    Pools are index arrays into ``scores``; they are served in the order given and an arm
    already taken by an earlier pool is not taken twice. A pool with fewer arms than its
    quota gives what it has. The result is ordered by score, best first, so reserved arms
    are interleaved where their scores put them.

    >>> fill_quotas([0.9, 0.8, 0.1, 0.2, 0.7], [[2, 3]], [1], 3)
    array([0, 1, 3])
    """
    scores_ = float_array("scores", scores)
    if scores_.ndim != 1 or any_nan(scores_):
        raise ValueError(f"scores must be a 1-D array of numbers, got shape {scores_.shape}")
    if len(pools) != len(quotas):
        raise ValueError(f"pools and quotas must pair up; got {len(pools)} and {len(quotas)}")
    members = pool_indices(pools, scores_.size)
    return _fill_quotas(scores_, members, quota_counts(quotas), positive_int("k", k))


def pool_indices(pools: Sequence[npt.ArrayLike], n_arms: int) -> list[IndexArray]:
    """Return the pools as index arrays, or raise ValueError unless each is 1-D in [0, n_arms)."""
    members = []
    for n, pool in enumerate(pools):
        indices = np.asarray(pool)
        if indices.ndim != 1 or (indices.size and indices.dtype.kind not in "iu"):
            raise ValueError(f"pools[{n}] must be a 1-D array of arm indices")
        if indices.size and (indices.min() < 0 or indices.max() >= n_arms):
            raise ValueError(f"pools[{n}] has indices outside [0, {n_arms})")
        members.append(indices.astype(np.intp))
    return members


def quota_counts(quotas: Sequence[int]) -> list[int]:
    """Return the quotas as ints, or raise ValueError unless each is an integer >= 0."""
    for n, quota in enumerate(quotas):
        if isinstance(quota, bool) or not isinstance(quota, (int, np.integer)) or quota < 0:
            raise ValueError(f"quotas[{n}] must be an integer >= 0, got {quota!r}")
    return [int(q) for q in quotas]


def _fill_quotas(
    scores: FloatArray, pools: list[IndexArray], quotas: list[int], k: int
) -> IndexArray:
    chosen = np.flatnonzero(_quota_taken(scores, pools, quotas, k))
    return chosen[np.lexsort((chosen, -scores[chosen]))]


def _quota_taken(
    scores: FloatArray, pools: list[IndexArray], quotas: list[int], k: int
) -> NDArray[np.bool_]:
    """Return a mask of the arms :func:`fill_quotas` picks: all that propensities need."""
    taken = np.zeros(scores.size, dtype=bool)
    room = k
    for pool, quota in zip(pools, quotas, strict=True):
        free = pool[~taken[pool]]
        want = min(quota, room, free.size)
        if want:
            best = free[np.lexsort((free, -scores[free]))[:want]]
            taken[best] = True
            room -= want
    if room:
        rest = np.flatnonzero(~taken)
        if rest.size:
            # rest is ascending, so _top_k's ties to the lower position are ties to the lower arm.
            taken[rest[_top_k(scores[rest], room)]] = True
    return taken


def rank_with_quotas(
    alpha: npt.ArrayLike,
    beta: npt.ArrayLike,
    k: int,
    rng: np.random.Generator,
    pools: Sequence[npt.ArrayLike],
    quotas: Sequence[int],
    multipliers: npt.ArrayLike | None = None,
) -> tuple[IndexArray, FloatArray]:
    """Return (indices, scores) of a Thompson-sampled list that honours pool quotas.

    One Beta draw per arm (times its multiplier), then :func:`fill_quotas`: each pool's
    best-sampled arms take their reserved places, the rest go to the best of all.

    >>> rng = np.random.default_rng(0)
    >>> top, scores = rank_with_quotas([90.0, 80.0, 1.0], [10.0, 20.0, 99.0], 2, rng, [[2]], [1])
    >>> sorted(top.tolist())
    [0, 2]
    """
    alpha_, beta_ = beta_shapes(alpha, beta)
    if alpha_.ndim != 1:
        raise ValueError(f"alpha and beta must be 1-D, got shape {alpha_.shape}")
    rng_ = generator("rng", rng)
    scores = np.asarray(rng_.beta(alpha_, beta_), dtype=np.float64)
    if multipliers is not None:
        factors = nonnegative("multipliers", multipliers)
        same_shape(("alpha", "multipliers"), alpha_, factors)
        scores = scores * factors
    top = fill_quotas(scores, pools, quotas, k)
    return top, scores[top]
