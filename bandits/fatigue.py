"""Seen decay learned from feedback: a click-chance multiplier per (unclicked count, age) bucket.

An impression is put in a bucket by what the user saw of the item before it: how many
impressions without a click since their last click on it (``n``, capped), and how long ago
the latest of those was (the age, in a few log-spaced bands). Bucket 0 is "fresh" (n = 0).
Per bucket the evidence is impressions, clicks and *expected* clicks (the sum over its
impressions of the arm's posterior mean CTR at serving time, before any decay), so that a
bucket holding better items than another does not look less tired than it is. The learned
multiplier of bucket b is its click rate over expectation relative to the fresh bucket's,
with a Gamma posterior whose prior is a fixed curve ``gamma ** (n * 2 ** (-age / half_life))``
(the fixed seen decay) worth ``strength`` impressions; it is served as the posterior mean or
as one Thompson draw of the whole curve.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import numpy.typing as npt
from numpy.typing import NDArray

from bandits.penalty import seen_decay
from bandits.validation import (
    float_array,
    generator,
    nonnegative,
    positive_int,
    positive_scalar,
    real_scalar,
    require,
    same_shape,
)

FloatArray = NDArray[np.float64]
IndexArray = NDArray[np.intp]

# Counts below this (a decayed count that has faded almost to nothing) are fresh.
_FRESH_BELOW = 1e-9
# The fresh bucket's rate over expectation starts at 1, worth this many expected clicks.
_FRESH_PSEUDO_CLICKS = 1.0
_HOUR = 3600.0
# Where a fitted prior strength stays (impressions per bucket): fit_decay_strength.
FITTED_STRENGTH_RANGE = (10.0, 10_000.0)


@dataclass(frozen=True, slots=True)
class FatigueBuckets:
    """How impressions are bucketed: earlier unclicked impressions (capped) x age of the last.

    Bucket 0 is fresh; bucket ``1 + (n - 1) * n_ages + a`` holds impressions after ``n``
    unclicked ones (``n >= max_unclicked`` share the last row) whose latest is in age band
    ``a``: ``[0, age_edges[0])``, ``[age_edges[0], age_edges[1])``, ..., ``[age_edges[-1], inf)``.
    Ages are in the caller's unit (seconds in the service, steps in the simulator).

    >>> buckets = FatigueBuckets(max_unclicked=2, age_edges=(1.0, 10.0))
    >>> buckets.size
    7
    >>> buckets.index([0, 1, 1, 2, 5], [0.0, 0.5, 3.0, 20.0, 0.0]).tolist()
    [0, 1, 2, 6, 4]
    """

    max_unclicked: int = 4
    # 1 h, 4 h, 16 h, 2.7 d, 10.7 d: log-spaced, so both fast and slow recovery show.
    age_edges: tuple[float, ...] = tuple(_HOUR * 4.0**j for j in range(5))

    def __post_init__(self) -> None:
        positive_int("max_unclicked", self.max_unclicked)
        edges = [real_scalar("age_edges", edge) for edge in self.age_edges]
        if any(edge <= 0.0 for edge in edges) or any(b <= a for a, b in itertools.pairwise(edges)):
            raise ValueError(f"age_edges must be increasing and > 0, got {self.age_edges!r}")

    @classmethod
    def log_spaced(
        cls, first: float, factor: float, count: int, max_unclicked: int = 4
    ) -> FatigueBuckets:
        """Return buckets whose ``count`` age edges are ``first * factor ** j``.

        >>> FatigueBuckets.log_spaced(10.0, 2.0, 3).age_edges
        (10.0, 20.0, 40.0)
        """
        if not real_scalar("factor", factor) > 1.0:
            raise ValueError(f"factor must be > 1, got {factor!r}")
        first_ = real_scalar("first", first)
        edges = tuple(first_ * float(factor) ** j for j in range(positive_int("count", count)))
        return cls(max_unclicked, edges)

    @property
    def n_ages(self) -> int:
        """Return the number of age bands."""
        return len(self.age_edges) + 1

    @property
    def size(self) -> int:
        """Return the number of buckets, the fresh one included."""
        return 1 + self.max_unclicked * self.n_ages

    def index(self, unclicked: npt.ArrayLike, ages: npt.ArrayLike) -> IndexArray:
        """Return the bucket of each impression, from the unclicked count and age before it.

        ``unclicked`` may be fractional (a time-decayed count): any count left counts as
        at least one, rounded up. Negative ages (clock skew) are age 0.
        """
        unclicked_ = nonnegative("unclicked", unclicked)
        ages_ = float_array("ages", ages)
        require("ages", ages_, ~np.isnan(ages_), "a number (not NaN)")
        same_shape(("unclicked", "ages"), unclicked_, ages_)
        return self.index_trusted(unclicked_, ages_)

    def index_trusted(self, unclicked: FloatArray, ages: FloatArray) -> IndexArray:
        """Return what ``index`` returns, without its checks: for arrays already validated."""
        n = np.minimum(np.ceil(unclicked - _FRESH_BELOW), self.max_unclicked).astype(np.intp)
        band = np.searchsorted(np.asarray(self.age_edges), ages, side="right")
        bucket: IndexArray = np.where(n > 0, 1 + (n - 1) * self.n_ages + band, 0).astype(np.intp)
        return bucket

    def unclicked_levels(self) -> IndexArray:
        """Return the unclicked count ``n`` of each bucket (0 for the fresh one)."""
        levels = np.repeat(np.arange(1, self.max_unclicked + 1), self.n_ages)
        return np.concatenate([[0], levels]).astype(np.intp)

    def typical_ages(self) -> FloatArray:
        """Return a representative age per bucket: the geometric middle of its band.

        The first band's is half its upper edge, the open last band's twice its lower edge;
        the fresh bucket's is 0.

        >>> FatigueBuckets(1, (1.0, 4.0)).typical_ages().tolist()
        [0.0, 0.5, 2.0, 8.0]
        """
        edges = np.asarray(self.age_edges)
        middles = np.sqrt(edges[:-1] * edges[1:])
        bands = np.concatenate([[edges[0] / 2.0], middles, [edges[-1] * 2.0]])
        return np.concatenate([[0.0], np.tile(bands, self.max_unclicked)])

    def grid(self, values: npt.ArrayLike) -> FloatArray:
        """Return per-bucket ``values`` (size,) as a (max_unclicked, n_ages) table, fresh left out.

        >>> FatigueBuckets(2, (1.0,)).grid([1.0, 0.9, 0.95, 0.8, 0.9]).tolist()
        [[0.9, 0.95], [0.8, 0.9]]
        """
        values_ = float_array("values", values)
        if values_.shape != (self.size,):
            raise ValueError(f"values must have shape ({self.size},), got {values_.shape}")
        return values_[1:].reshape(self.max_unclicked, self.n_ages)


def decay_prior(buckets: FatigueBuckets, gamma: float, half_life: float) -> FloatArray:
    """Return the fixed seen decay per bucket: ``gamma ** (n * 2 ** (-age / half_life))``.

    The age is the bucket's typical age, in the unit of ``half_life`` (``math.inf``: the
    count never fades). ``gamma = 1`` is "no penalty" everywhere.

    >>> decay_prior(FatigueBuckets(2, (2.0,)), 0.5, 1.0).round(3).tolist()
    [1.0, 0.707, 0.958, 0.5, 0.917]
    """
    if not isinstance(buckets, FatigueBuckets):
        raise ValueError(f"buckets must be FatigueBuckets, got {buckets!r}")
    gamma_ = real_scalar("gamma", gamma)
    if not 0.0 < gamma_ <= 1.0:
        raise ValueError(f"gamma must be in (0, 1], got {gamma!r}")
    if isinstance(half_life, bool) or not isinstance(half_life, (int, float)):
        raise ValueError(f"half_life must be a number > 0 or math.inf, got {half_life!r}")
    if not float(half_life) > 0.0:
        raise ValueError(f"half_life must be a number > 0 or math.inf, got {half_life!r}")
    counts = buckets.unclicked_levels() * np.exp2(-buckets.typical_ages() / float(half_life))
    return np.power(gamma_, counts)


class DecayPosterior(NamedTuple):
    """Gamma(shape, rate) of each bucket's multiplier; the fresh bucket's is exactly 1."""

    shape: FloatArray
    rate: FloatArray

    def mean(self) -> FloatArray:
        """Return the posterior mean multiplier per bucket (1 for the fresh bucket)."""
        curve = self.shape / self.rate
        curve[0] = 1.0
        return curve

    def draw(self, rng: np.random.Generator) -> FloatArray:
        """Return one Thompson draw of the whole curve (the fresh bucket stays 1)."""
        curve: FloatArray = generator("rng", rng).gamma(self.shape, 1.0 / self.rate)
        curve[0] = 1.0
        return curve

    def draws(self, rng: np.random.Generator, n: int) -> FloatArray:
        """Return ``n`` independent Thompson draws of the curve, shape (n, buckets)."""
        curves: FloatArray = generator("rng", rng).gamma(
            self.shape, 1.0 / self.rate, size=(positive_int("n", n), self.shape.size)
        )
        curves[:, 0] = 1.0
        return curves

    def interval(self, draws: int, rng: np.random.Generator) -> tuple[FloatArray, FloatArray]:
        """Return the 5% and 95% quantiles per bucket from ``draws`` Monte-Carlo draws."""
        samples = generator("rng", rng).gamma(
            self.shape, 1.0 / self.rate, size=(positive_int("draws", draws), self.shape.size)
        )
        samples[:, 0] = 1.0
        low, high = np.quantile(samples, [0.05, 0.95], axis=0)
        return low, high


def decay_posterior(
    impressions: npt.ArrayLike,
    clicks: npt.ArrayLike,
    expected: npt.ArrayLike | None,
    prior: npt.ArrayLike,
    strength: float,
) -> DecayPosterior:
    """Return the posterior of each bucket's click-chance multiplier relative to fresh.

    Per bucket b: ``impressions``, ``clicks`` and ``expected`` clicks (None: the CTR ratio,
    as if every impression expected the same). With ``r0`` the fresh bucket's clicks per
    expected click and ``q_b = r0 * expected_b`` (clicks had b not been tired), the
    multiplier has Gamma(``s * prior_b + clicks_b``, ``s + q_b``), where
    ``s = strength * pooled CTR``: the prior weighs as much as ``strength`` impressions.
    Thin evidence leaves ``prior_b``; plenty leaves ``clicks_b / q_b``.

    >>> post = decay_posterior([1000, 1000, 0], [100, 50, 0], None, [1.0, 0.9, 0.8], 100.0)
    >>> post.mean().round(3).tolist()
    [1.0, 0.524, 0.8]
    """
    impressions_ = nonnegative("impressions", impressions)
    clicks_ = nonnegative("clicks", clicks)
    same_shape(("impressions", "clicks"), impressions_, clicks_)
    if impressions_.ndim != 1 or impressions_.size < 1:
        raise ValueError(
            f"impressions must be 1-D with the fresh bucket first, got {impressions_.shape}"
        )
    expected_ = impressions_ if expected is None else nonnegative("expected", expected)
    same_shape(("impressions", "expected"), impressions_, expected_)
    prior_ = nonnegative("prior", prior)
    same_shape(("impressions", "prior"), impressions_, prior_)
    strength_ = positive_scalar("strength", strength)
    return _decay_posterior(impressions_, clicks_, expected_, prior_, strength_)


def _decay_posterior(
    impressions: FloatArray,
    clicks: FloatArray,
    expected: FloatArray,
    prior: FloatArray,
    strength: float,
) -> DecayPosterior:
    pseudo_clicks = strength * _pooled_ctr(impressions, clicks)
    shape = pseudo_clicks * prior + clicks
    rate = pseudo_clicks + _fresh_rate(clicks, expected) * expected
    # A zero prior with no clicks would be a degenerate Gamma: keep it a tiny positive one.
    shape = np.maximum(shape, 1e-12)
    return DecayPosterior(shape, rate)


def correction_base(faded: npt.ArrayLike, gamma: float, buckets: FatigueBuckets) -> FloatArray:
    """Return the fixed decay a learned correction multiplies: ``gamma ** faded``, the count
    capped at the last row's ``max_unclicked``.

    The last row holds n = max_unclicked, max_unclicked + 1, ... under one correction, which
    must be learned against, and serve, one fixed decay: uncapped, an item ignored 8 times
    would get its row's correction (learned mostly at n = 4) on top of 0.7 ** 8.

    >>> correction_base([0.0, 1.0, 6.0], 0.5, FatigueBuckets(max_unclicked=4)).tolist()
    [1.0, 0.5, 0.0625]
    """
    return seen_decay(np.minimum(nonnegative("faded", faded), buckets.max_unclicked), gamma)


def fit_decay_strength(
    impressions: npt.ArrayLike,
    clicks: npt.ArrayLike,
    expected: npt.ArrayLike,
    prior: npt.ArrayLike,
    low: float = FITTED_STRENGTH_RANGE[0],
    high: float = FITTED_STRENGTH_RANGE[1],
) -> float:
    """Return the impressions each bucket's prior is worth, from how far the buckets stray.

    Empirical Bayes by moments, as ``bandits.fit_prior_strength`` does for arms: a tired
    bucket's clicks are Poisson with mean ``q_b * m_b`` (``q_b`` its expected clicks had it
    not been tired, ``m_b`` its multiplier), and a Gamma prior of mean ``prior_b`` worth
    ``s`` pseudo-clicks spreads ``m_b`` by ``prior_b / s``. So ``1 / s`` is
    ``sum((c_b - q_b prior_b)^2 - q_b prior_b) / sum(q_b^2 prior_b)`` over the tired buckets:
    buckets that follow the prior get a strong one, buckets that stray from it a weak one,
    so the curve leaves a prior that is wrong as fast as the evidence shows it. Returned in
    impressions (``s`` over the pooled CTR, as ``decay_posterior`` takes it), clipped to
    [``low``, ``high``]; without evidence of any spread, ``high``.

    Buckets of 2 000 impressions expecting 200 clicks (a pooled CTR of 0.1), whose true
    multipliers spread around 1 with variance 0.25 (4 pseudo-clicks, 40 impressions):

    >>> rng = np.random.default_rng(0)
    >>> shown, q = np.full(400, 2000.0), np.full(400, 200.0)
    >>> m = np.concatenate([[1.0], rng.gamma(4.0, 1 / 4.0, 399)])
    >>> round(fit_decay_strength(shown, rng.poisson(q * m), q, np.ones(400)), -1)
    40.0
    >>> fit_decay_strength(shown, rng.poisson(q), q, np.ones(400)) > 1000
    True
    """
    impressions_ = nonnegative("impressions", impressions)
    clicks_ = nonnegative("clicks", clicks)
    expected_ = nonnegative("expected", expected)
    prior_ = nonnegative("prior", prior)
    for name, values in (("clicks", clicks_), ("expected", expected_), ("prior", prior_)):
        same_shape(("impressions", name), impressions_, values)
    low_, high_ = real_scalar("low", low), real_scalar("high", high)
    if not 0.0 < low_ <= high_:
        raise ValueError(f"need 0 < low <= high, got low={low!r}, high={high!r}")
    return _fit_decay_strength(impressions_, clicks_, expected_, prior_, low_, high_)


def _fit_decay_strength(
    impressions: FloatArray,
    clicks: FloatArray,
    expected: FloatArray,
    prior: FloatArray,
    low: float,
    high: float,
) -> float:
    q = _fresh_rate(clicks, expected) * expected[1:]
    predicted = q * prior[1:]
    spread = float(((clicks[1:] - predicted) ** 2 - predicted).sum())
    scale = float((q * predicted).sum())
    if spread <= 0.0 or scale <= 0.0:
        return high
    return float(np.clip(scale / spread / _pooled_ctr(impressions, clicks), low, high))


def _fresh_rate(clicks: FloatArray, expected: FloatArray) -> float:
    # The fresh bucket has most of the traffic; its rate over expectation is the yardstick.
    return float((clicks[0] + _FRESH_PSEUDO_CLICKS) / (expected[0] + _FRESH_PSEUDO_CLICKS))


def _pooled_ctr(impressions: FloatArray, clicks: FloatArray) -> float:
    # What turns a prior's worth in impressions into pseudo-clicks.
    return (float(clicks.sum()) + 1.0) / (float(impressions.sum()) + 2.0)


class FatigueLearner:
    """Impressions, clicks and expected clicks per bucket, and the curve they imply.

    >>> learner = FatigueLearner(FatigueBuckets(1, (10.0,)), prior_gamma=1.0, strength=10.0)
    >>> buckets = learner.buckets.index([0, 0, 1, 1], [0.0, 0.0, 1.0, 1.0])
    >>> learner.update(buckets, np.array([True, False, False, False]), np.full(4, 0.5))
    >>> learner.impressions_.tolist(), learner.clicks_.tolist()
    ([2.0, 2.0, 0.0], [1.0, 0.0, 0.0])
    >>> learner.posterior().mean().round(3).tolist()
    [1.0, 0.769, 1.0]
    """

    def __init__(
        self,
        buckets: FatigueBuckets,
        prior_gamma: float = 1.0,
        prior_half_life: float = math.inf,
        strength: float | None = 100.0,
    ) -> None:
        self.buckets = buckets
        self.prior_ = decay_prior(buckets, prior_gamma, prior_half_life)
        # None: fitted to the evidence at each posterior (fit_decay_strength).
        self.strength = None if strength is None else positive_scalar("strength", strength)
        self.impressions_ = np.zeros(buckets.size)
        self.clicks_ = np.zeros(buckets.size)
        self.expected_ = np.zeros(buckets.size)

    def update(
        self, buckets: npt.ArrayLike, clicks: npt.ArrayLike, expected: npt.ArrayLike
    ) -> None:
        """Count impressions (one per entry) with their click flags and expected clicks."""
        where = np.asarray(buckets, dtype=np.intp)
        size = self.buckets.size
        self.impressions_ += np.bincount(where, minlength=size)
        self.clicks_ += np.bincount(where, weights=np.asarray(clicks, dtype=float), minlength=size)
        self.expected_ += np.bincount(
            where, weights=np.asarray(expected, dtype=float), minlength=size
        )

    def posterior(self) -> DecayPosterior:
        """Return the posterior curve from the evidence so far."""
        return _decay_posterior(
            self.impressions_, self.clicks_, self.expected_, self.prior_, self.strength_()
        )

    def strength_(self) -> float:
        """Return the prior's worth in impressions per bucket: fixed, or fitted to the evidence."""
        if self.strength is not None:
            return self.strength
        return _fit_decay_strength(
            self.impressions_, self.clicks_, self.expected_, self.prior_, *FITTED_STRENGTH_RANGE
        )
