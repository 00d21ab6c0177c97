"""Target policies of an off-policy estimate: each candidate's chance to be in the target's list.

Uniform and most-popular targets have closed forms; a Thompson target's chances come from
posterior draws, split into independent batches so that their Monte-Carlo error can be measured.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from bandits import inclusion_shares, seen_decay
from evaluation.policies import BASE_POLICIES, PolicySpec

FloatArray = NDArray[np.float64]
IndexArray = NDArray[np.intp]

# The policy kinds evaluate can take as a target, and their names (with :key=value options).
TARGET_KINDS = ("random", "popular", "ts")
TARGET_NAMES = tuple(
    name
    for name, fields in BASE_POLICIES.items()
    if fields["kind"] in TARGET_KINDS
    and fields.get("decay", "fixed") == "fixed"
    and fields.get("prior_kind", "catalog") == "catalog"
)
# Independent batches a Thompson target's draws are split into (batch means of the MC error).
MC_BATCHES = 10
# Without seen decay a target's chances depend on (row, k) only: drawn once, this many times more.
CACHED_DRAWS_FACTOR = 10


@dataclass(frozen=True, slots=True)
class Slate:
    """What a target knows of one logged list: whose arms, which candidates, how many slots."""

    row: int  # the arms row the target reads (the last is global)
    candidates: IndexArray  # positions in the state's item order
    k: int
    n_candidates: int  # as logged; more than len(candidates) when they stand in for unknown ones
    unclicked: FloatArray  # the user's fading unclicked count per item (all items)


class Target(Protocol):
    """A policy whose inclusion chances can be computed for a logged list."""

    @property
    def batches(self) -> int:
        """Return how many independent estimates ``inclusion`` returns (1: exact)."""
        ...

    def inclusion(self, slate: Slate, rng: np.random.Generator, n_draws: int) -> FloatArray:
        """Return (batches, len(candidates)): each candidate's chance to be in the list."""
        ...


class Uniform:
    """k of the n candidates uniformly at random: every candidate's chance is min(k, n) / n."""

    batches = 1

    def inclusion(self, slate: Slate, rng: np.random.Generator, n_draws: int) -> FloatArray:
        """Return min(k, n) / n for every candidate, n the logged candidate count."""
        n = max(slate.n_candidates, slate.candidates.size)
        return np.full((1, slate.candidates.size), min(slate.k, n) / n)


@dataclass(frozen=True)
class MostPopular:
    """The k candidates with the best score (global posterior mean); ties share the last slots."""

    scores: FloatArray  # (rows, items)
    batches = 1

    def inclusion(self, slate: Slate, rng: np.random.Generator, n_draws: int) -> FloatArray:
        """Return 1 for the top k, a share for candidates tied at the k-th score, 0 below."""
        return top_k_shares(self.scores[slate.row, slate.candidates], slate.k)[None, :]


@dataclass
class Thompson:
    """Thompson sampling from frozen Beta posteriors, with seen decay ``gamma ** unclicked``."""

    alpha: FloatArray  # (rows, items)
    beta: FloatArray
    gamma: float
    batches: int = MC_BATCHES
    _cache: dict[tuple[int, int, int], FloatArray] = field(default_factory=dict)

    def inclusion(self, slate: Slate, rng: np.random.Generator, n_draws: int) -> FloatArray:
        """Return each candidate's share of the top k in ``batches`` batches of draws."""
        at = slate.candidates
        alpha, beta = self.alpha[slate.row, at], self.beta[slate.row, at]
        unclicked = slate.unclicked[at]
        per_batch = math.ceil(n_draws / self.batches)
        if self.gamma < 1.0 and unclicked.any():
            multipliers = seen_decay(unclicked, self.gamma)
            return np.stack(
                [
                    inclusion_shares(alpha, beta, slate.k, rng, per_batch, multipliers)
                    for _ in range(self.batches)
                ]
            )
        key = (slate.row, slate.k, n_draws)
        whole_catalog = at.size == self.alpha.shape[1]
        if whole_catalog and key in self._cache:
            return self._cache[key]
        per_batch *= CACHED_DRAWS_FACTOR if whole_catalog else 1
        shares = np.stack(
            [inclusion_shares(alpha, beta, slate.k, rng, per_batch) for _ in range(self.batches)]
        )
        if whole_catalog:
            self._cache[key] = shares
        return shares


def evaluable(spec: PolicySpec) -> bool:
    """Return whether ``spec`` can be frozen as a target: a learned decay or an affinity
    prior needs state the logs do not carry (the decay evidence, the cluster centres)."""
    return spec.kind in TARGET_KINDS and spec.decay == "fixed" and spec.prior_kind == "catalog"


def make_target(spec: PolicySpec, impressions: FloatArray, clicks: FloatArray) -> Target:
    """Return the target ``spec`` names, frozen at these counts (cluster rows, then global)."""
    if not evaluable(spec):
        raise ValueError(
            f"evaluate cannot take {spec.name!r} as a target; choose from {', '.join(TARGET_NAMES)}"
        )
    if spec.kind == "random":
        return Uniform()
    # The same posteriors the policy itself would use (flat or catalog prior).
    alpha, beta = spec.prior.params(impressions, clicks)
    if spec.kind == "popular":
        return MostPopular(alpha / (alpha + beta))
    if spec.kind == "ts":
        return Thompson(alpha, beta, spec.gamma)
    raise ValueError(
        f"evaluate cannot take {spec.name!r} as a target; choose from {', '.join(TARGET_NAMES)}"
    )


def top_k_shares(scores: FloatArray, k: int) -> FloatArray:
    """Return each item's chance to be in the top k when ties are broken uniformly at random.

    >>> top_k_shares(np.array([0.3, 0.1, 0.2, 0.2]), 2).tolist()
    [1.0, 0.0, 0.5, 0.5]
    """
    n = scores.size
    if n <= k:
        return np.ones(n)
    kth = np.partition(scores, n - k)[n - k]  # the k-th best score
    above = scores > kth
    tied = scores == kth
    share = (k - int(above.sum())) / int(tied.sum())
    shares: FloatArray = above + tied * share
    return shares
