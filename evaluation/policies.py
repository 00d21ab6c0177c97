"""The policies the simulator compares: each ranks k of the items for a user and learns."""

from __future__ import annotations

import operator
from dataclasses import dataclass, replace
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

from bandits import Prior, rank, seen_decay, top_k
from bandits.validation import real_scalar

FloatArray = NDArray[np.float64]
IndexArray = NDArray[np.intp]
BoolArray = NDArray[np.bool_]

KINDS = ("random", "popular", "egreedy", "ts", "mabwiser", "oracle")

# Named policies; "name:key=value:key=value" overrides a field, e.g. "cluster-ts-decay:gamma=0.3".
BASE_POLICIES: dict[str, dict[str, Any]] = {
    "random": {"kind": "random"},
    "most-popular": {"kind": "popular"},
    "epsilon-greedy": {"kind": "egreedy", "per_cluster": True},
    # The Thompson policies mirror the service's defaults: catalog prior worth 10
    # impressions (BANDITREC_PRIOR=catalog), seen decay 0.7; ":prior=1/1" gives a flat prior.
    "global-ts": {"kind": "ts", "prior_strength": 10.0},
    "cluster-ts": {"kind": "ts", "per_cluster": True, "prior_strength": 10.0},
    "cluster-ts-decay": {"kind": "ts", "per_cluster": True, "gamma": 0.7, "prior_strength": 10.0},
    "mabwiser-ts": {"kind": "mabwiser"},
    "oracle": {"kind": "oracle"},
}
DEFAULT_POLICIES = tuple(BASE_POLICIES)
# Greedy scores are posterior means; this jitter only breaks exact ties at random.
_TIE_JITTER = 1e-12


@dataclass(frozen=True)
class PolicySpec:
    """What a policy is: its kind, context (per cluster or global) and parameters."""

    name: str
    kind: str
    per_cluster: bool = False
    gamma: float = 1.0
    epsilon: float = 0.1
    prior_a: float = 1.0
    prior_b: float = 1.0
    # None: flat Beta(prior_a, prior_b). A number: the service's catalog prior worth that
    # many impressions, with cluster arms starting from the item's global posterior.
    prior_strength: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")
        if not 0.0 < real_scalar("gamma", self.gamma) <= 1.0:
            raise ValueError(f"gamma must be in (0, 1], got {self.gamma!r}")
        if not 0.0 <= real_scalar("epsilon", self.epsilon) <= 1.0:
            raise ValueError(f"epsilon must be in [0, 1], got {self.epsilon!r}")
        for name in ("prior_a", "prior_b"):
            if real_scalar(name, getattr(self, name)) <= 0.0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)!r}")
        if (
            self.prior_strength is not None
            and real_scalar("prior_strength", self.prior_strength) <= 0.0
        ):
            raise ValueError(f"prior_strength must be > 0, got {self.prior_strength!r}")

    @property
    def prior(self) -> Prior:
        """Return the arms' prior, as the service would build it from these settings."""
        if self.prior_strength is None:
            return Prior("flat", self.prior_a, self.prior_b)
        return Prior("catalog", strength=self.prior_strength)

    @property
    def thompson(self) -> bool:
        """Return whether the policy samples Beta posteriors (so propensities can be estimated)."""
        return self.kind == "ts"


def parse_policy(text: str, epsilon: float = 0.1) -> PolicySpec:
    """Return the spec named by ``text``: a base name, then optional ``:key=value`` overrides.

    >>> parse_policy("cluster-ts-decay:gamma=0.3:prior=1/20")
    ... # doctest: +NORMALIZE_WHITESPACE
    PolicySpec(name='cluster-ts-decay:gamma=0.3:prior=1/20', kind='ts', per_cluster=True,
               gamma=0.3, epsilon=0.1, prior_a=1.0, prior_b=20.0, prior_strength=None)
    """
    base, *overrides = text.strip().split(":")
    if base not in BASE_POLICIES:
        raise ValueError(f"unknown policy {base!r}; choose from {', '.join(BASE_POLICIES)}")
    spec = PolicySpec(name=text.strip(), epsilon=epsilon, **BASE_POLICIES[base])
    for override in overrides:
        key, sep, value = override.partition("=")
        if not sep:
            raise ValueError(f"policy option must be key=value, got {override!r} in {text!r}")
        try:
            if key == "prior" and value.startswith("catalog"):
                # prior=catalog or prior=catalog/STRENGTH: the service's default prior.
                _, _, strength = value.partition("/")
                spec = replace(spec, prior_strength=float(strength or 10.0))
            elif key == "prior":
                a, b = value.split("/")
                spec = replace(spec, prior_a=float(a), prior_b=float(b), prior_strength=None)
            elif key in ("gamma", "epsilon", "prior_a", "prior_b"):
                fields: dict[str, Any] = {key: float(value)}
                spec = replace(spec, **fields)
            else:
                raise ValueError(f"unknown policy option {key!r} in {text!r}")
        except (TypeError, ValueError) as exc:
            raise ValueError(f"bad policy option {override!r} in {text!r}: {exc}") from exc
    return spec


class Request(NamedTuple):
    """One arrival: the user, their cluster, unclicked counts and (for the oracle) the truth."""

    user: int
    cluster: int
    unclicked: FloatArray  # (n_items,) fading count of impressions without a click, per item
    truth: FloatArray  # (n_items,) true click probability of each item for this user now


class Arms:
    """Beta posteriors per (cluster, item) and a global row (the last), as the service keeps."""

    def __init__(self, n_clusters: int, n_items: int, prior: Prior) -> None:
        self.prior = prior
        self.impressions = np.zeros((n_clusters + 1, n_items))
        self.clicks = np.zeros((n_clusters + 1, n_items))
        self.alpha, self.beta = prior.params(self.impressions, self.clicks)

    @staticmethod
    def params_for(
        spec: PolicySpec, impressions: FloatArray, clicks: FloatArray
    ) -> tuple[FloatArray, FloatArray]:
        """Return the (alpha, beta) a policy with this spec samples from these counts."""
        return spec.prior.params(impressions, clicks)

    def new_generation(self, n_clusters: int) -> None:
        """Start fresh per-cluster arms (a new clustering); the global row keeps its counts."""
        n_items = self.impressions.shape[1]
        impressions = np.zeros((n_clusters + 1, n_items))
        clicks = np.zeros((n_clusters + 1, n_items))
        impressions[-1], clicks[-1] = self.impressions[-1], self.clicks[-1]
        self.impressions, self.clicks = impressions, clicks
        self.alpha, self.beta = self.prior.params(impressions, clicks)

    def update(
        self, row: int, items: IndexArray, impressions: BoolArray, clicks: BoolArray
    ) -> None:
        """Count the impressions and clicks of one served list in ``row`` and the global row."""
        seen, clicked = items[impressions], items[clicks & impressions]
        unclicked = items[impressions & ~clicks]
        for r in {row % self.alpha.shape[0], self.alpha.shape[0] - 1}:
            self.impressions[r, seen] += 1.0
            self.clicks[r, clicked] += 1.0
            if self.prior.kind == "flat":
                self.alpha[r, clicked] += 1.0
                self.beta[r, unclicked] += 1.0
        if self.prior.kind != "flat":
            # Every arm's prior moves with the global counts: recompute, as the service does.
            self.alpha, self.beta = self.prior.params(self.impressions, self.clicks)


class Policy:
    """A policy's state and its rank/learn steps; one object per simulated run."""

    def __init__(
        self, spec: PolicySpec, n_items: int, k: int, rng: np.random.Generator, batch: int = 100
    ) -> None:
        self.spec = spec
        self.n_items = n_items
        self.k = k
        self.rng = rng
        self.arms = Arms(0, n_items, spec.prior)
        self.learning = True
        self._peer: _MabwiserPeer | None = None
        if spec.kind == "mabwiser":
            self._peer = _MabwiserPeer(n_items, k, int(rng.integers(2**31)), batch)

    def row(self, cluster: int) -> int:
        """Return the arms row read for ``cluster``: the global row (-1) unless per cluster."""
        return cluster if self.spec.per_cluster else -1

    def new_generation(self, n_clusters: int) -> None:
        """Start fresh per-cluster arms after a clustering refit."""
        if self.spec.per_cluster:
            self.arms.new_generation(n_clusters)

    def ts_inputs(self, request: Request) -> tuple[FloatArray, FloatArray, FloatArray | None]:
        """Return (alpha, beta, multipliers) this Thompson policy samples for ``request``."""
        row = self.row(request.cluster)
        multipliers = None
        if self.spec.gamma < 1.0:
            multipliers = seen_decay(request.unclicked, self.spec.gamma)
        return self.arms.alpha[row], self.arms.beta[row], multipliers

    def rank(self, request: Request) -> tuple[IndexArray, FloatArray]:
        """Return (items, scores) of the k items served for ``request``, best first."""
        kind = self.spec.kind
        if kind == "ts":
            alpha, beta, multipliers = self.ts_inputs(request)
            return rank(alpha, beta, self.k, self.rng, multipliers)
        if kind == "oracle":
            scores = request.truth
        elif kind == "random":
            scores = self.rng.random(self.n_items)
        elif kind == "mabwiser":
            assert self._peer is not None
            scores = self._peer.next_scores(self.rng)
        else:
            row = self.row(request.cluster)
            alpha, beta = self.arms.alpha[row], self.arms.beta[row]
            scores = alpha / (alpha + beta) + self.rng.random(self.n_items) * _TIE_JITTER
            if kind == "egreedy":
                return self._explore(scores)
        top = top_k(scores, self.k)
        return top, scores[top]

    def learn(
        self, cluster: int, items: IndexArray, impressions: BoolArray, clicks: BoolArray
    ) -> None:
        """Learn from one served list's impressions and clicks."""
        if not self.learning:
            return
        self.arms.update(self.row(cluster), items, impressions, clicks)
        if self._peer is not None:
            self._peer.remember(items[impressions], clicks[impressions])

    def _explore(self, scores: FloatArray) -> tuple[IndexArray, FloatArray]:
        greedy = top_k(scores, self.k)
        explore = self.rng.random(self.k) < self.spec.epsilon
        n_explore = int(explore.sum())
        if n_explore:
            others = self.rng.random(self.n_items)
            others[greedy] = -1.0
            greedy = greedy.copy()
            greedy[explore] = top_k(others, n_explore)
        return greedy, scores[greedy]


def mabwiser_missing() -> str | None:
    """Return why the MABWiser peer cannot run, or None if it can."""
    try:
        import mabwiser.mab  # type: ignore[import-untyped]  # noqa: F401
    except ImportError as exc:
        return f"mabwiser is not installed ({exc}); pip install 'banditrec[peers]'"
    return None


class _MabwiserPeer:
    """MABWiser's ThompsonSampling, predicting a batch of lists then learning from the batch.

    MABWiser samples its arms in a Python loop, so one call predicts ``batch`` steps (each row an
    independent posterior draw) and learning is applied once per batch.
    """

    def __init__(self, n_items: int, k: int, seed: int, batch: int) -> None:
        from mabwiser.mab import MAB, LearningPolicy

        self.model = MAB(
            arms=list(range(n_items)),
            learning_policy=LearningPolicy.ThompsonSampling(),
            seed=seed,
        )
        self.batch = batch
        self.n_items = n_items
        self.fitted = False
        self.pending: list[FloatArray] = []
        self.decisions: list[IndexArray] = []
        self.rewards: list[BoolArray] = []
        self._pick = operator.itemgetter(*range(n_items))

    def remember(self, items: IndexArray, clicks: BoolArray) -> None:
        self.decisions.append(items)
        self.rewards.append(clicks)

    def next_scores(self, rng: np.random.Generator) -> FloatArray:
        if not self.pending:
            self._learn()
            if self.fitted:
                rows = self.model.predict_expectations(np.zeros((self.batch, 1)))
                self.pending = [np.array(self._pick(r), dtype=np.float64) for r in rows]
            else:
                # Before any data every arm is Beta(1, 1): uniform draws.
                self.pending = list(rng.random((self.batch, self.n_items)))
            self.pending.reverse()
        return self.pending.pop()

    def _learn(self) -> None:
        if not self.decisions:
            return
        decisions = np.concatenate(self.decisions)
        rewards = np.concatenate(self.rewards).astype(np.int64)
        self.decisions, self.rewards = [], []
        if decisions.size == 0:
            return
        if self.fitted:
            self.model.partial_fit(decisions.tolist(), rewards.tolist())
        else:
            self.model.fit(decisions.tolist(), rewards.tolist())
            self.fitted = True
