"""How likely Thompson sampling was to serve each item: Monte-Carlo inclusion probabilities."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from numpy.typing import NDArray

from bandits._validation import beta_shapes, generator, nonnegative, positive_int, same_shape
from bandits.quotas import fill_quotas

FloatArray = NDArray[np.float64]
IndexArray = NDArray[np.intp]


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
    from each draw (one small loop over the draws, since quotas are sequential).

    The estimate is (1 + hits) / (n_samples + 1): the draw that actually served the list
    is one more sample from the same policy, and it included every served arm, so the
    estimate is never 0 (inverse-propensity weights stay finite).

    >>> rng = np.random.default_rng(0)
    >>> p = inclusion_probabilities([5.0, 5.0, 5.0], [5.0, 5.0, 5.0], 3, rng, 99, [0, 2])
    >>> p.tolist()
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
    if len(pools) != len(quotas):
        raise ValueError(f"pools and quotas must pair up; got {len(pools)} and {len(quotas)}")
    rng_ = generator("rng", rng)
    if pools:
        hits = _quota_hits(alpha_, beta_, k_, rng_, samples, factors, pools, quotas)
    else:
        hits = _hits(alpha_, beta_, k_, rng_, samples, factors)
    return (1.0 + hits[served_.astype(np.intp)]) / (samples + 1.0)


def inclusion_shares(
    alpha: npt.ArrayLike,
    beta: npt.ArrayLike,
    k: int,
    rng: np.random.Generator,
    n_samples: int,
    multipliers: npt.ArrayLike | None = None,
) -> FloatArray:
    """Return every arm's share of n_samples Thompson draws that put it in the top k.

    The plain Monte-Carlo estimate, for a policy that did not serve the list (e.g. the
    target policy of an off-policy estimate); it can be 0.

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


def _hits(
    alpha: FloatArray,
    beta: FloatArray,
    k: int,
    rng: np.random.Generator,
    n_samples: int,
    multipliers: FloatArray | None,
) -> FloatArray:
    """Return how many of n_samples independent TS draws put each arm in the top k."""
    n = alpha.size
    if k >= n:
        return np.full(n, float(n_samples))
    draws = _draws(alpha, beta, rng, n_samples, multipliers)
    # Ties at the k-th score are measure-zero for continuous draws; argpartition is enough.
    chosen = np.argpartition(-draws, k - 1, axis=1)[:, :k]
    return np.bincount(chosen.ravel(), minlength=n).astype(np.float64)


def _quota_hits(
    alpha: FloatArray,
    beta: FloatArray,
    k: int,
    rng: np.random.Generator,
    n_samples: int,
    multipliers: FloatArray | None,
    pools: Sequence[npt.ArrayLike],
    quotas: Sequence[int],
) -> FloatArray:
    """Return how many of n_samples quota-filled TS lists include each arm."""
    draws = _draws(alpha, beta, rng, n_samples, multipliers)
    hits = np.zeros(alpha.size)
    for row in draws:
        hits[fill_quotas(row, pools, quotas, k)] += 1.0
    return hits


def _draws(
    alpha: FloatArray,
    beta: FloatArray,
    rng: np.random.Generator,
    n_samples: int,
    multipliers: FloatArray | None,
) -> FloatArray:
    """Return (n_samples, arms) Thompson scores: Beta draws times the arms' multipliers."""
    draws = np.asarray(rng.beta(alpha, beta, size=(n_samples, alpha.size)), dtype=np.float64)
    if multipliers is not None:
        draws *= multipliers
    return draws
