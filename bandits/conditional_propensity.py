"""Inclusion probabilities by conditional Monte-Carlo: few draws of all arms, many of a few.

A plain Monte-Carlo estimate draws every arm and counts whether the served arm made the
top k (a 0 or a 1 per draw of all arms). Here each draw of the *other* arms sets the bar
the served arm must clear (the k-th best of the others), and the served arm's chance to
clear it, P(m_i X_i > bar), is estimated from OWN_DRAWS draws of that arm alone. Draws
of all arms are what a request pays for; a few served arms are cheap to draw often, so
4 draws of all arms give an estimate steadier than 32 hit counts at a fifth of the cost.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from numpy.typing import NDArray

from bandits.propensity import PRUNE_EPSILON, _distinct, _in_top_k, _pruned_draws
from bandits.validation import beta_shapes, generator, nonnegative, positive_int, same_shape

FloatArray = NDArray[np.float64]
# Draws of each served arm per draw of all arms: each row's chance is a share of these.
OWN_DRAWS = 32


def conditional_inclusion(
    alpha: npt.ArrayLike,
    beta: npt.ArrayLike,
    k: int,
    rng: np.random.Generator,
    n_samples: int,
    served: npt.ArrayLike,
    multipliers: npt.ArrayLike | None = None,
    served_by_it: bool = True,
) -> FloatArray:
    """Return, for each served arm, the estimated chance that a TS draw puts it in the top k.

    Per draw of all arms, the share of OWN_DRAWS fresh draws of the served arm that beat
    the k-th best of the other arms' draws is averaged: an unbiased estimate of the same
    probability as counting hits. With ``served_by_it`` the draw that served the list
    counts as one more own draw that cleared its bar: (1 + own hits) / (n_samples *
    OWN_DRAWS + 1), never 0, as in :func:`bandits.inclusion_probabilities`, and biased up
    by at most 1 / (n_samples * OWN_DRAWS + 1) (1/129 at 4 draws, against 1/33 for 32
    plain draws); without it the plain mean of the shares.
    Arms that cannot reach the top k are skipped as there (per-draw error <= 1e-4). A
    draw with a tie at the bar (draws rounded to 1.0) counts its plain hit, ties going to
    the lower arm as in :func:`bandits.rank`; zero multipliers are refused (callers use
    :func:`bandits.inclusion_probabilities`).

    >>> rng = np.random.default_rng(0)
    >>> conditional_inclusion([5.0, 5.0, 5.0], [5.0, 5.0, 5.0], 3, rng, 8, [0, 2]).tolist()
    [1.0, 1.0]
    """
    alpha_, beta_ = beta_shapes(alpha, beta)
    if alpha_.ndim != 1:
        raise ValueError(f"alpha and beta must be 1-D, got shape {alpha_.shape}")
    k_ = positive_int("k", k)
    samples = positive_int("n_samples", n_samples)
    served_ = np.asarray(served)
    if served_.ndim != 1 or served_.dtype.kind not in "iu":
        raise ValueError(f"served must be a 1-D array of arm indices, got {served!r}")
    if served_.size and (served_.min() < 0 or served_.max() >= alpha_.size):
        raise ValueError(f"served indices must be in [0, {alpha_.size}), got {served!r}")
    factors = None
    if multipliers is not None:
        factors = nonnegative("multipliers", multipliers)
        same_shape(("alpha", "multipliers"), alpha_, factors)
        if not factors.all():
            raise ValueError("multipliers must be positive: zero makes ties this cannot count")
    rng_ = generator("rng", rng)
    arms, where = _distinct(served_.astype(np.intp), alpha_.size)
    if not arms.size:
        return np.zeros(0)
    if k_ >= alpha_.size:
        return np.ones(served_.size)
    chances = _chances(alpha_, beta_, k_, rng_, samples, factors, arms)
    own_hits = chances.sum(axis=0) * OWN_DRAWS
    if served_by_it:
        estimate: FloatArray = (1.0 + own_hits) / (samples * OWN_DRAWS + 1.0)
    else:
        estimate = own_hits / (samples * OWN_DRAWS)
    return estimate[where]


def _chances(
    alpha: FloatArray,
    beta: FloatArray,
    k: int,
    rng: np.random.Generator,
    n_samples: int,
    multipliers: FloatArray | None,
    served: NDArray[np.intp],
) -> FloatArray:
    """Return (n_samples, served): each served arm's estimated chance to beat each row's bar."""
    draws, drawn, columns = _pruned_draws(
        alpha, beta, k, rng, n_samples, multipliers, served, PRUNE_EPSILON
    )
    width = draws.shape[1]
    # The k-th and (k+1)-th best of each row: the bar is the k-th best of the *others*,
    # which is the (k+1)-th best when the arm's own draw is among the row's top k. One
    # partition point, then the least of the k above it: partitioning around two points
    # took 7x as long over 10k arms (0.30 vs 0.04 ms for 4 rows).
    ordered = np.partition(draws, width - k - 1, axis=1)
    next_best = ordered[:, width - k - 1]
    kth = ordered[:, width - k :].min(axis=1)
    own = draws[:, columns]
    bar = np.where(own >= kth[:, None], next_best[:, None], kth[:, None])
    fresh = rng.beta(alpha[served], beta[served], size=(n_samples, OWN_DRAWS, served.size))
    if multipliers is not None:
        fresh *= multipliers[served]
    chance: FloatArray = (fresh > bar[:, None, :]).mean(axis=1)
    # Draws that round to 1.0 (e.g. Beta(10, 0.02)) tie for real, and ties go to the lower
    # arm, which a share of own draws cannot see: where the others' bar is one an own draw
    # can at best equal, the row's plain 0/1 hit counts instead. The choice depends on the
    # other arms' draws only, so it does not bias the estimate.
    ceiling = 1.0 if multipliers is None else multipliers[served]
    tied = bar >= ceiling
    rows = tied.any(axis=1)
    if rows.any():
        hits = _in_top_k(draws[rows], k, drawn, columns)
        chance[rows] = np.where(tied[rows], hits, chance[rows])
    return chance
