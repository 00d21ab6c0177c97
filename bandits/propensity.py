"""How likely Thompson sampling was to serve each item: Monte-Carlo inclusion probabilities."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from numpy.typing import NDArray

from bandits.quotas import _quota_taken, pool_indices, quota_counts
from bandits.validation import (
    beta_shapes,
    generator,
    nonnegative,
    positive_int,
    same_shape,
    trusted_arms,
)

FloatArray = NDArray[np.float64]
IndexArray = NDArray[np.intp]
BoolArray = NDArray[np.bool_]

# Per Monte-Carlo draw, skipping the arms that provably cannot reach the top k changes
# whether a served arm counts as a hit with probability at most this (see
# inclusion_probabilities); 1,000 times below the noise of a 32-draw estimate.
PRUNE_EPSILON = 1e-4
# The first batch of draws covers the protected arms and this many times k others, those
# with the best mean + 1 sd: their k-th best draw per row is the bar the rest must clear.
_FIRST_ARMS_PER_K = 8
# Skipping is tried only if at least a quarter of this many arms qualify at a guessed bar.
_SAMPLE_ARMS = 64


def inclusion_probabilities(
    alpha: npt.ArrayLike,
    beta: npt.ArrayLike,
    k: int,
    rng: np.random.Generator,
    n_samples: int,
    served: npt.ArrayLike,
    multipliers: npt.ArrayLike | None = None,
    pools: Sequence[npt.ArrayLike] = (),
    quotas: Sequence[int] = (),
) -> FloatArray:
    """Return, for each served arm, the estimated chance that a TS draw puts it in the top k.

    With ``pools`` and ``quotas`` the list is the one :func:`bandits.fill_quotas` builds
    from each draw (one small loop over the draws, since quotas are sequential). Ties at
    the k-th score go to the lower index, as in :func:`bandits.rank`.

    The estimate is (1 + hits) / (n_samples + 1): the draw that actually served the list
    is one more sample from the same policy, and it included every served arm, so the
    estimate is never 0 (inverse-propensity weights stay finite).

    Only the served arms' hits are counted, so arms that cannot plausibly reach the top k
    are not drawn at all. The served arms, the pools' members and 8k arms with the best
    mean + 1 sd are drawn first; an other arm i is then skipped if, with t the lowest
    k-th best score of those draws over the rows, the Chernoff bound for Beta(a, b),
    P(X > x) <= exp(-(a + b) KL(a / (a + b) || x)), puts P(m_i X_i > t) at most
    PRUNE_EPSILON / n (n arms). t is at most every row's k-th best score over all arms,
    and the skipped arms' draws are independent of t, so per draw the chance that any
    skipped arm would have entered the top k, the only way a hit can change, is at most
    PRUNE_EPSILON = 1e-4; the expected estimate of each served arm moves by less than
    that. Skipping pays off for arms with many impressions; it is tried only if a rough
    look at a sample of arms says so, and with wide posteriors every arm is drawn at once.

    >>> rng = np.random.default_rng(0)
    >>> p = inclusion_probabilities([5.0, 5.0, 5.0], [5.0, 5.0, 5.0], 3, rng, 99, [0, 2])
    >>> p.tolist()
    [1.0, 1.0]
    """
    # Float64 arrays of valid values pass one combined check; anything else gets the
    # checks below in their usual order, which name the bad value.
    arrays = trusted_arms(alpha, beta, multipliers)
    if arrays is None:
        alpha_, beta_ = beta_shapes(alpha, beta)
        if alpha_.ndim != 1:
            raise ValueError(f"alpha and beta must be 1-D, got shape {alpha_.shape}")
    else:
        alpha_, beta_, factors = arrays
    k_ = positive_int("k", k)
    samples = positive_int("n_samples", n_samples)
    served_ = np.asarray(served)
    if served_.ndim != 1 or served_.dtype.kind not in "iu":
        raise ValueError(f"served must be a 1-D array of arm indices, got {served!r}")
    if served_.size and (
        served_.item(served_.argmin()) < 0 or served_.item(served_.argmax()) >= alpha_.size
    ):
        raise ValueError(f"served indices must be in [0, {alpha_.size}), got {served!r}")
    if arrays is None:
        factors = None
        if multipliers is not None:
            factors = nonnegative("multipliers", multipliers)
            same_shape(("alpha", "multipliers"), alpha_, factors)
    if len(pools) != len(quotas):
        raise ValueError(f"pools and quotas must pair up; got {len(pools)} and {len(quotas)}")
    members = pool_indices(pools, alpha_.size)
    counts = quota_counts(quotas)
    rng_ = generator("rng", rng)
    arms, where = _distinct(served_.astype(np.intp), alpha_.size)
    if not arms.size:
        return np.zeros(0)
    if members:
        hits = _quota_hits(alpha_, beta_, k_, rng_, samples, factors, members, counts, arms)
    else:
        hits = _served_hits(alpha_, beta_, k_, rng_, samples, factors, arms)
    return (1.0 + hits[where]) / (samples + 1.0)


def inclusion_shares(
    alpha: npt.ArrayLike,
    beta: npt.ArrayLike,
    k: int,
    rng: np.random.Generator,
    n_samples: int,
    multipliers: npt.ArrayLike | None = None,
) -> FloatArray:
    """Return every arm's share of n_samples Thompson draws that put it in the top k.

    The plain Monte-Carlo estimate over all arms (none skipped), for a policy that did not
    serve the list (e.g. the target policy of an off-policy estimate); it can be 0.

    >>> rng = np.random.default_rng(0)
    >>> inclusion_shares([1.0, 900.0, 1.0], [900.0, 1.0, 900.0], 1, rng, 100).tolist()
    [0.0, 1.0, 0.0]
    """
    alpha_, beta_ = beta_shapes(alpha, beta)
    if alpha_.ndim != 1:
        raise ValueError(f"alpha and beta must be 1-D, got shape {alpha_.shape}")
    samples = positive_int("n_samples", n_samples)
    factors = None
    if multipliers is not None:
        factors = nonnegative("multipliers", multipliers)
        same_shape(("alpha", "multipliers"), alpha_, factors)
    hits = _hits(alpha_, beta_, positive_int("k", k), generator("rng", rng), samples, factors)
    return hits / samples


# -- kernels on trusted arrays -----------------------------------------------------------


def _hits(
    alpha: FloatArray,
    beta: FloatArray,
    k: int,
    rng: np.random.Generator,
    n_samples: int,
    multipliers: FloatArray | None,
) -> FloatArray:
    """Return how many of n_samples independent TS draws put each arm in the top k."""
    # Every arm served and nothing skipped (epsilon 0): the plain estimate.
    arms = np.arange(alpha.size)
    return _served_hits(alpha, beta, k, rng, n_samples, multipliers, arms, epsilon=0.0)


def _served_hits(
    alpha: FloatArray,
    beta: FloatArray,
    k: int,
    rng: np.random.Generator,
    n_samples: int,
    multipliers: FloatArray | None,
    served: IndexArray,
    epsilon: float = PRUNE_EPSILON,
) -> FloatArray:
    """Return how many of n_samples TS draws put each of the (distinct) served arms in the top k."""
    if k >= alpha.size:
        return np.full(served.size, float(n_samples))
    draws, drawn, columns = _pruned_draws(
        alpha, beta, k, rng, n_samples, multipliers, served, epsilon
    )
    hits: FloatArray = _in_top_k(draws, k, drawn, columns).sum(axis=0, dtype=np.float64)
    return hits


def _quota_hits(
    alpha: FloatArray,
    beta: FloatArray,
    k: int,
    rng: np.random.Generator,
    n_samples: int,
    multipliers: FloatArray | None,
    pools: list[IndexArray],
    quotas: list[int],
    served: IndexArray,
    epsilon: float = PRUNE_EPSILON,
) -> FloatArray:
    """Return how many of n_samples quota-filled TS lists include each (distinct) served arm.

    Only arms outside every pool may be skipped: such an arm is left out of a list whenever
    k arms beat it (at most k - room of them are taken by the pools, so room of them
    compete with it for the rest), and leaving it out changes no pool's pick.
    """
    protected = np.unique(np.concatenate([served, *pools]))
    draws, drawn, _ = _pruned_draws(alpha, beta, k, rng, n_samples, multipliers, protected, epsilon)
    # fill_quotas breaks ties towards the lower arm: put the columns in arm order.
    order = np.argsort(drawn)
    drawn = drawn[order]
    draws = draws[:, order]
    local_pools = [np.searchsorted(drawn, pool) for pool in pools]
    local_served = np.searchsorted(drawn, served)
    hits = np.zeros(served.size)
    for row in draws:
        hits += _quota_taken(row, local_pools, quotas, k)[local_served]
    return hits


def _distinct(served: IndexArray, n_arms: int) -> tuple[IndexArray, IndexArray]:
    """Return (distinct served arms, where each served entry is among them)."""
    marked = np.zeros(n_arms, dtype=bool)
    marked[served] = True
    if np.count_nonzero(marked) == served.size:  # the usual case, cheaper than np.unique
        return served, np.arange(served.size)
    arms, where = np.unique(served, return_inverse=True)
    return arms, where


def _pruned_draws(
    alpha: FloatArray,
    beta: FloatArray,
    k: int,
    rng: np.random.Generator,
    n_samples: int,
    multipliers: FloatArray | None,
    protected: IndexArray,
    epsilon: float,
) -> tuple[FloatArray, IndexArray, IndexArray]:
    """Return (n_samples, w) TS scores, the w arms they belong to, and the protected columns.

    ``protected`` holds distinct arm indices and is always drawn; an other arm is left out
    only as inclusion_probabilities describes, for a per-draw failure chance <= epsilon.
    """
    n = alpha.size
    likely_count = _FIRST_ARMS_PER_K * k
    log_odds = math.log(n / epsilon) if epsilon > 0.0 else math.inf
    if n - protected.size >= 2 * likely_count and _worth_trying(
        alpha, beta, multipliers, k, log_odds
    ):
        kept = np.zeros(n, dtype=bool)
        kept[protected] = True
        hope = _optimistic_scores(alpha, beta, multipliers)
        hope[protected] = -np.inf
        likely = np.argpartition(hope, n - likely_count)[n - likely_count :]
        kept[likely] = True
        first = np.concatenate([protected, likely])
        draws = _draws_at(alpha, beta, rng, n_samples, multipliers, first)
        # The k-th best of some arms' scores is at most the k-th best of all arms' scores.
        bar = float(np.partition(draws, first.size - k, axis=1)[:, first.size - k].min())
        rest = np.flatnonzero(~kept)
        if bar > 0.0:
            factors = None if multipliers is None else multipliers[rest]
            rest = rest[~_surely_below(alpha[rest], beta[rest], factors, bar, log_odds)]
        columns = np.arange(protected.size)
        if not rest.size:
            return draws, first, columns
        more = _draws_at(alpha, beta, rng, n_samples, multipliers, rest)
        return np.concatenate([draws, more], axis=1), np.concatenate([first, rest]), columns
    # Too few arms to skip, or too few that could be skipped, to repay two rounds of draws.
    return _draws(alpha, beta, rng, n_samples, multipliers), np.arange(n), protected


def _worth_trying(
    alpha: FloatArray,
    beta: FloatArray,
    multipliers: FloatArray | None,
    k: int,
    log_odds: float,
) -> bool:
    """Return whether a quarter of an even sample of arms looks skippable at a guessed bar.

    The guess is the k-th best posterior mean (times multiplier); the draws usually set a
    bar near it. With wide posteriors (few impressions per arm) almost no arm could be
    skipped: then one round of draws over all arms costs less than two rounds plus tests.
    This only decides whether to try, so it may be rough: it ignores the sample's
    multipliers and uses (x - p)^2 / (x (1 - x)), an upper bound on KL(p || x); what is
    skipped is decided on the drawn bar.
    """
    if math.isinf(log_odds):
        return False
    mean = alpha / (alpha + beta)
    expected = mean if multipliers is None else mean * multipliers
    guess = float(np.partition(expected, mean.size - k)[mean.size - k])
    if not 0.0 < guess < 1.0:
        return guess >= 1.0
    step = max(alpha.size // _SAMPLE_ARMS, 1)
    gap = np.maximum(guess - mean[::step], 0.0)
    exponent = (alpha[::step] + beta[::step]) * (gap * gap)
    skippable = np.count_nonzero(exponent >= log_odds * guess * (1.0 - guess))
    return bool(skippable * 4 >= gap.size)


def _optimistic_scores(
    alpha: FloatArray, beta: FloatArray, multipliers: FloatArray | None
) -> FloatArray:
    """Return each arm's posterior mean + 1 sd, times its multiplier (a ranking guess only)."""
    total = alpha + beta
    mean = alpha / total
    hope: FloatArray = mean + np.sqrt(mean * (beta / total) / (total + 1.0))
    if multipliers is not None:
        hope *= multipliers
    return hope


def _surely_below(
    alpha: FloatArray,
    beta: FloatArray,
    multipliers: FloatArray | None,
    bar: float,
    log_odds: float,
) -> BoolArray:
    """Return where P(multiplier * Beta(alpha, beta) > bar) <= exp(-log_odds), provably.

    Chernoff's bound on Ga - x (Ga + Gb) with Ga, Gb the Gamma draws behind the Beta gives
    P(X > x) <= exp(-(a + b) KL(a / (a + b) || x)) for x above the mean, with KL the
    Bernoulli relative entropy. Where rounding leaves a NaN the arm is kept.
    """
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        x = bar / multipliers if multipliers is not None else np.full(alpha.size, bar)
        total = alpha + beta
        mean = alpha / total
        miss = beta / total
        gap = x - mean
        # KL(mean || x) in log1p form, accurate when x is close to the mean.
        divergence = mean * np.log1p(-gap / x) + miss * np.log1p(gap / (1.0 - x))
        bounded = (gap > 0.0) & (total * divergence >= log_odds)
        result: BoolArray = (x >= 1.0) | bounded
    return result


def _in_top_k(draws: FloatArray, k: int, arms: IndexArray, columns: IndexArray) -> BoolArray:
    """Return (rows, len(columns)): whether those columns' arms are in their row's top k.

    ``arms`` labels the columns of ``draws``; a tie at the k-th score goes to the lower arm.
    """
    width = draws.shape[1]  # > k: callers with k >= the arms answer without drawing
    # One kth: partitioning around two (to see a tie directly) is several times slower.
    ordered = np.partition(draws, width - k, axis=1)
    threshold = ordered[:, width - k]
    scores = draws[:, columns]
    hit: BoolArray = scores >= threshold[:, None]
    tied_rows = ordered[:, : width - k].max(axis=1) == threshold
    for row in np.flatnonzero(tied_rows):
        # Ties have probability 0 for continuous draws; zero multipliers make them real.
        bar = threshold[row]
        tied = np.flatnonzero(draws[row] == bar)
        room = k - int(np.count_nonzero(draws[row] > bar))
        chosen = np.zeros(width, dtype=bool)
        chosen[tied[np.argsort(arms[tied], kind="stable")[:room]]] = True
        hit[row] = (scores[row] > bar) | chosen[columns]
    return hit


def _draws(
    alpha: FloatArray,
    beta: FloatArray,
    rng: np.random.Generator,
    n_samples: int,
    multipliers: FloatArray | None,
) -> FloatArray:
    """Return (n_samples, arms) Thompson scores: Beta draws times the arms' multipliers."""
    draws: FloatArray = rng.beta(alpha, beta, size=(n_samples, alpha.size))
    if multipliers is not None:
        draws *= multipliers
    return draws


def _draws_at(
    alpha: FloatArray,
    beta: FloatArray,
    rng: np.random.Generator,
    n_samples: int,
    multipliers: FloatArray | None,
    arms: IndexArray,
) -> FloatArray:
    """Return (n_samples, len(arms)) Thompson scores of the given arms."""
    factors = None if multipliers is None else multipliers[arms]
    return _draws(alpha[arms], beta[arms], rng, n_samples, factors)
