"""Which policy serves a list (the bandit, uniform exploration or a fixed baseline), the
propensity of each served item under their mixture, and what feedback on it counts for."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np

from bandits import (
    conditional_inclusion,
    fill_quotas,
    inclusion_probabilities,
    rank,
    rank_with_quotas,
    top_k,
)
from service.store.codecs import ServedList, stats_field

Policy = Literal["bandit", "explore", "baseline"]
POLICIES: tuple[Policy, ...] = get_args(Policy)
# Counting hits (0 or 1 per draw) needs about this many times the draws of the conditional
# estimate for as steady a propensity (tests/bandits/test_conditional_propensity.py).
QUOTA_DRAWS_PER_SAMPLE = 8


@dataclass(frozen=True, slots=True)
class Candidates:
    """What the policies know about one request's candidates; index i is candidate i."""

    alpha: np.ndarray
    beta: np.ndarray
    # Seen decay (and conversion weighting) of each candidate's sampled score.
    factors: np.ndarray
    # Higher comes first in the fixed baseline ranking (clicks, or the caller's order).
    baseline_scores: np.ndarray
    k: int
    pools: Sequence[np.ndarray] = ()
    quotas: Sequence[int] = ()


@dataclass(frozen=True, slots=True)
class Served:
    """The served list (indices into the candidates, best first) and its provenance."""

    policy: Policy
    top: np.ndarray
    scores: np.ndarray
    propensities: np.ndarray | None
    # The lists the policies that did not serve would have served, for /v1/stats.
    shadows: dict[str, np.ndarray]


@dataclass(frozen=True, slots=True)
class Serving:
    """How requests are served: `mode` answers all but an `exploration` share, served at random.

    In "baseline" mode the fixed ranking is served while the bandit keeps learning from
    the same feedback (an apprentice), and its would-be lists are logged for comparison.
    """

    mode: Literal["bandit", "baseline"] = "bandit"
    exploration: float = 0.0
    propensity_samples: int = 4

    def serve(self, candidates: Candidates, rng: np.random.Generator) -> Served:
        """Return the list for one request, with mixture propensities when sampling is on."""
        c = candidates
        explore = self.exploration > 0 and rng.random() < self.exploration
        policy: Policy = "explore" if explore else self.mode
        lists = {
            "bandit": _ranked(c.alpha, c.beta, c.k, rng, c.factors, c.pools, c.quotas),
            "baseline": _baseline(c),
        }
        if explore:
            ones = np.ones_like(c.alpha)
            lists["explore"] = _ranked(ones, ones, c.k, rng, None, c.pools, c.quotas)
        top, scores = lists[policy]
        propensities = None
        if self.propensity_samples:
            propensities = self._propensities(c, policy, top, lists["baseline"][0], rng)
        shadows = {name: ranked[0] for name, ranked in lists.items() if name != policy}
        return Served(policy, top, scores, propensities, shadows)

    def _propensities(
        self,
        c: Candidates,
        policy: str,
        top: np.ndarray,
        baseline: np.ndarray,
        rng: np.random.Generator,
    ) -> np.ndarray:
        """Return P(served item is in the list) under ε·explore + (1 - ε)·mode."""
        eps = self.exploration
        if self.mode == "bandit":
            main = self._inclusion(c.alpha, c.beta, c, top, rng, c.factors, policy == "bandit")
        else:
            main = np.isin(top, baseline).astype(float)  # the fixed ranking is certain
        if eps == 0:
            return main
        n = c.alpha.size
        if c.pools:
            ones = np.ones_like(c.alpha)
            uniform = self._inclusion(ones, ones, c, top, rng, None, policy == "explore")
        else:
            uniform = np.full(top.size, min(c.k, n) / n)
        return eps * uniform + (1 - eps) * main

    def _inclusion(
        self,
        alpha: np.ndarray,
        beta: np.ndarray,
        c: Candidates,
        top: np.ndarray,
        rng: np.random.Generator,
        factors: np.ndarray | None,
        served_by_it: bool,
    ) -> np.ndarray:
        """Return a Thompson policy's inclusion probabilities for the served items.

        If this policy drew the served list, that draw counts as one more sample that
        included every served item (never 0); if another policy served, only the extra
        draws count. Plain lists get the conditional estimate (each draw of all items
        sets the bar an item must clear, and draws of that item alone count how often it
        does, so few draws of all items suffice); quota lists, and zero multipliers
        (ties), count hits over QUOTA_DRAWS_PER_SAMPLE times as many draws.
        """
        m = self.propensity_samples
        if not c.pools and (factors is None or factors.all()):
            return conditional_inclusion(alpha, beta, c.k, rng, m, top, factors, served_by_it)
        m *= QUOTA_DRAWS_PER_SAMPLE
        p = inclusion_probabilities(alpha, beta, c.k, rng, m, top, factors, c.pools, c.quotas)
        if served_by_it:
            return p
        hits = np.rint(p * (m + 1) - 1)
        return np.asarray(hits / m)


def _baseline(c: Candidates) -> tuple[np.ndarray, np.ndarray]:
    """Return the fixed ranking's list (ties to the earlier candidate) and its scores."""
    if c.pools:
        top = fill_quotas(c.baseline_scores, c.pools, c.quotas, c.k)
    else:
        top = top_k(c.baseline_scores, c.k)
    return top, c.baseline_scores[top]


def _ranked(
    alpha: np.ndarray,
    beta: np.ndarray,
    k: int,
    rng: np.random.Generator,
    factors: np.ndarray | None,
    pools: Sequence[np.ndarray],
    quotas: Sequence[int],
) -> tuple[np.ndarray, np.ndarray]:
    """Return a Thompson-sampled list (Beta(1, 1) everywhere: a uniformly random one)."""
    if pools:
        return rank_with_quotas(alpha, beta, k, rng, pools, list(quotas), factors)
    return rank(alpha, beta, k, rng, factors)


def stats_fields(rec: ServedList, kind: str, item_id: str) -> tuple[str, ...]:
    """Return the /v1/stats counters one new event on a logged list adds 1 to.

    `kind:policy` counts feedback on the policy's own lists. On a list served by one
    policy, `agree_kind:other` counts items the other policy's list also had; on an
    exploration list, `replay_kind:policy` counts items the policy would have served.
    """
    policy = rec.policy
    fields = [stats_field(kind, policy)]
    if kind in ("imp", "clk"):
        view = "replay" if policy == "explore" else "agree"
        for other, items in rec.shadows.items():
            if item_id in items:
                fields.append(stats_field(kind, other, view))
    return tuple(fields)
