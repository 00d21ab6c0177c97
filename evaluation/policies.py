"""The policies the simulator compares: each ranks k of the items for a user and learns."""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass, replace
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

from bandits import (
    FatigueBuckets,
    FatigueLearner,
    Prior,
    correction_base,
    personal_tilt,
    rank,
    seen_decay,
    top_k,
)
from bandits.validation import real_scalar
from evaluation.arms import ADAPTIVE_STRENGTH_RANGE, Arms

FloatArray = NDArray[np.float64]
IndexArray = NDArray[np.intp]
BoolArray = NDArray[np.bool_]

KINDS = ("random", "popular", "egreedy", "ts", "mabwiser", "oracle")
# fixed: gamma ** (unclicked count fading with half_life). learned: the fixed decay times a
# correction per bucket learned from the policy's own impressions (bandits.fatigue, prior 1:
# "the fixed decay is right"). curve: the learned curve alone, in place of the fixed decay
# (its prior: the fixed decay at each bucket's typical age). Each served as its posterior
# mean, or as one Thompson draw per list (-draw).
DECAYS = ("fixed", "learned", "learned-draw", "curve", "curve-draw")
MEMBERSHIPS = ("hard", "soft")
PRIOR_KINDS = ("catalog", "affinity")
STRENGTH_STARTS = ("cap", "prior", "history")
# The fixed decay's half-life in steps: the service's is one fixed number (24 h) whatever
# its users do; this is the default world's, so there the fixed decay is exactly right.
SERVICE_HALF_LIFE_STEPS = 4000.0
# The learned decay's age bands, in mean steps between two visits of one user (n_users):
# a quarter visit to 8 visits, doubling.
AGE_BANDS_FIRST, AGE_BANDS_FACTOR, AGE_BANDS_COUNT = 0.25, 2.0, 6
MAX_UNCLICKED = 4

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
    # What issue 13's evidence chose (docs/evaluation.md, "Defaults across worlds").
    "cluster-ts-learned": {
        "kind": "ts",
        "per_cluster": True,
        "gamma": 0.7,
        "decay": "learned",
        "decay_strength": None,
        "prior_kind": "affinity",
        "prior_strength": 10.0,
        "adaptive_strength": True,
        "personal": 0.5,
        "n_clusters": 16,
        "auto_k": True,
    },
    "mabwiser-ts": {"kind": "mabwiser"},
    "oracle": {"kind": "oracle"},
}
DEFAULT_POLICIES = tuple(name for name in BASE_POLICIES if name != "cluster-ts-learned")
# Greedy scores are posterior means; this jitter only breaks exact ties at random.
_TIE_JITTER = 1e-12


@dataclass(frozen=True)
class PolicySpec:
    """What a policy is: its kind, context (per cluster or global) and parameters."""

    name: str
    kind: str
    per_cluster: bool = False
    # Seen decay: gamma 1 with the fixed decay is no decay. A learned correction's prior is
    # "no correction", a learned curve's the fixed decay (gamma, half_life): either prior is
    # worth decay_strength impressions per bucket.
    gamma: float = 1.0
    decay: str = "fixed"
    half_life: float = SERVICE_HALF_LIFE_STEPS
    # None: fitted to the evidence (bandits.fit_decay_strength).
    decay_strength: float | None = 100.0
    epsilon: float = 0.1
    prior_a: float = 1.0
    prior_b: float = 1.0
    # None: flat Beta(prior_a, prior_b). A number: the service's catalog prior worth that
    # many impressions, with cluster arms starting from the item's global posterior
    # (prior_kind "affinity": tilted by the item's closeness to the cluster centre).
    prior_strength: float | None = None
    prior_kind: str = "catalog"
    # Affinity prior: cluster arms' strength fitted to how far the arms stray from their
    # priors (bandits.fit_prior_strength), strength_start until there is evidence.
    adaptive_strength: bool = False
    # Where a fitted strength starts until its fit has evidence: "cap", the top of the fitted
    # range (a prior that predicts the arms well, as the fit finds wherever it can tell);
    # "prior": prior_strength; "history": per clustering, prior_strength if the catalog had
    # shown enough impressions per cluster arm, else the cap, as the service does
    # (bandits.unfitted_strength; docs/evaluation.md, "strength before evidence").
    strength_start: str = "history"
    membership: str = "hard"
    temperature: float = 0.1
    top_m: int = 3
    # Clusters of k-means (None: the run's n_clusters).
    n_clusters: int | None = None
    # k chosen at each refit from the history so far (bandits.clusters_for_history).
    auto_k: bool = False
    # Share of the affinity prior's slope applied to the user's own taste: scores x
    # exp(personal * slope * (cos(user, item) - cos(cluster centre, item))).
    personal: float = 0.0
    # Only the random stream differs between two policies that differ only here: the same
    # policy run twice, to see how far chance alone moves a result.
    stream: int = 0

    @property
    def stream_key(self) -> str:
        """Return what seeds the policy's random streams: its base name and stream, not options.

        Variants of one policy share their random numbers (common random numbers), so that
        two that behave alike score alike and a comparison shows the setting, not chance;
        ``stream=N`` gives another stream.

        >>> parse_policy("cluster-ts:k=8").stream_key
        'cluster-ts'
        >>> parse_policy("cluster-ts:k=8:stream=1").stream_key
        'cluster-ts:stream=1'
        """
        base = self.name.partition(":")[0]
        return base if self.stream == 0 else f"{base}:stream={self.stream}"

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")
        if not 0.0 < real_scalar("gamma", self.gamma) <= 1.0:
            raise ValueError(f"gamma must be in (0, 1], got {self.gamma!r}")
        if self.decay not in DECAYS:
            raise ValueError(f"decay must be one of {DECAYS}, got {self.decay!r}")
        if not (isinstance(self.half_life, float) and self.half_life > 0.0):
            raise ValueError(f"half_life must be > 0 or inf, got {self.half_life!r}")
        if (
            self.decay_strength is not None
            and not real_scalar("decay_strength", self.decay_strength) > 0.0
        ):
            raise ValueError(f"decay_strength must be > 0, got {self.decay_strength!r}")
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
        if self.prior_kind not in PRIOR_KINDS:
            raise ValueError(f"prior kind must be one of {PRIOR_KINDS}, got {self.prior_kind!r}")
        if self.strength_start not in STRENGTH_STARTS:
            raise ValueError(
                f"strength_start must be one of {STRENGTH_STARTS}, got {self.strength_start!r}"
            )
        if self.membership not in MEMBERSHIPS:
            raise ValueError(f"membership must be one of {MEMBERSHIPS}, got {self.membership!r}")
        if not real_scalar("temperature", self.temperature) > 0.0:
            raise ValueError(f"temperature must be > 0, got {self.temperature!r}")
        if isinstance(self.top_m, bool) or not isinstance(self.top_m, int) or self.top_m < 1:
            raise ValueError(f"top_m must be an integer >= 1, got {self.top_m!r}")
        if self.n_clusters is not None and (
            isinstance(self.n_clusters, bool)
            or not isinstance(self.n_clusters, int)
            or self.n_clusters < 1
        ):
            raise ValueError(f"n_clusters must be an integer >= 1, got {self.n_clusters!r}")

    @property
    def prior(self) -> Prior:
        """Return the arms' prior, as the service would build it from these settings."""
        if self.prior_strength is None:
            return Prior("flat", self.prior_a, self.prior_b)
        return Prior(self.prior_kind, strength=self.prior_strength)

    @property
    def prior_label(self) -> str:
        """Return the prior as the ``prior=`` option spells it."""
        if self.prior_strength is None:
            return f"{self.prior_a:g}/{self.prior_b:g}"
        auto = " (auto)" if self.adaptive_strength else ""
        return f"{self.prior_kind}/{self.prior_strength:g}{auto}"

    @property
    def thompson(self) -> bool:
        """Return whether the policy samples Beta posteriors (so propensities can be estimated)."""
        return self.kind == "ts"

    @property
    def corrects(self) -> bool:
        """Return whether the seen decay is the fixed one times a learned correction."""
        return self.decay in ("learned", "learned-draw")

    @property
    def draws_decay(self) -> bool:
        """Return whether each list is served with a Thompson draw of the learned curve."""
        return self.decay.endswith("-draw")

    @property
    def decays(self) -> bool:
        """Return whether the policy applies any seen decay."""
        return self.kind == "ts" and (self.decay != "fixed" or self.gamma < 1.0)


# Options of "name:key=value" that set one float field of the spec.
_FLOAT_OPTIONS = (
    "gamma", "epsilon", "prior_a", "prior_b", "temperature", "decay_strength",
    "personal",
)  # fmt: skip


def parse_policy(text: str, epsilon: float = 0.1) -> PolicySpec:
    """Return the spec named by ``text``: a base name, then optional ``:key=value`` overrides.

    Options: gamma, epsilon, prior (a/b, catalog/S or affinity/S), decay (none, fixed,
    learned, learned-draw, curve, curve-draw), half_life (steps, or inf), decay_strength (or auto),
    membership (hard, soft), temperature, top_m, k (clusters, or auto:
    bandits.clusters_for_history), personal, strength_start (cap, prior, history), stream
    (another random stream).

    >>> parse_policy("cluster-ts-decay:gamma=0.3:prior=1/20:membership=soft:k=4")
    ... # doctest: +NORMALIZE_WHITESPACE
    PolicySpec(name='cluster-ts-decay:gamma=0.3:prior=1/20:membership=soft:k=4', kind='ts',
               per_cluster=True, gamma=0.3, decay='fixed', half_life=4000.0,
               decay_strength=100.0, epsilon=0.1, prior_a=1.0, prior_b=20.0,
               prior_strength=None, prior_kind='catalog', adaptive_strength=False,
               strength_start='history', membership='soft', temperature=0.1, top_m=3,
               n_clusters=4, auto_k=False, personal=0.0, stream=0)
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
            spec = _with_option(spec, key, value, text)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"bad policy option {override!r} in {text!r}: {exc}") from exc
    return spec


def _with_option(spec: PolicySpec, key: str, value: str, text: str) -> PolicySpec:
    """Return ``spec`` with one ``key=value`` option applied."""
    if key == "prior" and value.partition("/")[0] in PRIOR_KINDS:
        # prior=catalog, prior=affinity/STRENGTH: the service's empirical-Bayes priors.
        kind, _, strength = value.partition("/")
        if strength == "auto":
            return replace(spec, prior_kind=kind, prior_strength=spec.prior_strength or 10.0,
                           adaptive_strength=True)  # fmt: skip
        return replace(spec, prior_kind=kind, prior_strength=float(strength or 10.0),
                       adaptive_strength=False)  # fmt: skip
    if key == "prior_strength" and value == "auto":
        return replace(spec, adaptive_strength=True)
    if key == "prior_strength":
        return replace(spec, prior_strength=float(value), adaptive_strength=False)
    if key == "prior":
        a, b = value.split("/")
        return replace(spec, prior_a=float(a), prior_b=float(b), prior_strength=None)
    if key == "decay_strength" and value == "auto":
        return replace(spec, decay_strength=None)
    if key in _FLOAT_OPTIONS:
        fields: dict[str, Any] = {key: float(value)}
        return replace(spec, **fields)
    if key == "decay":
        # "none" is the fixed decay with gamma 1.
        return (
            replace(spec, gamma=1.0, decay="fixed")
            if value == "none"
            else replace(spec, decay=value)
        )
    if key == "half_life":
        return replace(spec, half_life=math.inf if value == "inf" else float(value))
    if key == "membership":
        return replace(spec, membership=value)
    if key == "strength_start":
        return replace(spec, strength_start=value)
    if key == "top_m":
        return replace(spec, top_m=int(value))
    if key == "k":
        if value == "auto":
            return replace(spec, auto_k=True)
        return replace(spec, n_clusters=int(value), auto_k=False)
    if key == "stream":
        return replace(spec, stream=int(value))
    raise ValueError(f"unknown policy option {key!r} in {text!r}")


class Request(NamedTuple):
    """One arrival: the user, their clusters, seen state and (for the oracle) the truth."""

    user: int
    clusters: tuple[int, ...]  # the user's clusters, heaviest first (one when hard)
    weights: tuple[float, ...]  # their membership weights, summing to 1
    unclicked: FloatArray  # (n_items,) impressions without a click, fading with the half-life
    raw_unclicked: FloatArray  # (n_items,) the same, not fading
    ages: FloatArray  # (n_items,) steps since the last unclicked impression (inf: none)
    truth: FloatArray  # (n_items,) true click probability of each item for this user now
    # (n_items,) cosine of the user's taste vector and each item (None: not needed, or unknown)
    user_affinity: FloatArray | None = None

    @property
    def cluster(self) -> int:
        """Return the user's heaviest cluster."""
        return self.clusters[0]


class Policy:
    """A policy's state and its rank/learn steps; one object per simulated run."""

    def __init__(
        self,
        spec: PolicySpec,
        n_items: int,
        k: int,
        rng: np.random.Generator,
        batch: int = 100,
        visit_gap: float = 1.0,
        refresh_every: int = 1,
    ) -> None:
        self.spec = spec
        self.n_items = n_items
        self.k = k
        self.rng = rng
        start = ADAPTIVE_STRENGTH_RANGE[1] if spec.strength_start == "cap" else None
        self.arms = Arms(
            0,
            n_items,
            spec.prior,
            refresh_every,
            spec.adaptive_strength,
            start,
            start_from_history=spec.strength_start == "history",
        )
        self.learning = True
        # What the last ranked list was served with (the log and the learned decay read it).
        self.last_inputs: tuple[FloatArray, FloatArray, FloatArray | None] | None = None
        self._last_buckets: IndexArray | None = None
        self._last_tilt: FloatArray | None = None
        self._last_base: FloatArray | None = None
        self.fatigue: FatigueLearner | None = None
        if spec.kind == "ts" and spec.decay != "fixed":
            buckets = FatigueBuckets.log_spaced(
                AGE_BANDS_FIRST * visit_gap, AGE_BANDS_FACTOR, AGE_BANDS_COUNT, MAX_UNCLICKED
            )
            # A correction's prior is 1 everywhere (gamma 1); the curve's is the fixed decay.
            gamma, half_life = (1.0, math.inf) if spec.corrects else (spec.gamma, spec.half_life)
            self.fatigue = FatigueLearner(buckets, gamma, half_life, spec.decay_strength)
        self._peer: _MabwiserPeer | None = None
        if spec.kind == "mabwiser":
            self._peer = _MabwiserPeer(n_items, k, int(rng.integers(2**31)), batch)

    def rows(self, request: Request) -> tuple[tuple[int, ...], tuple[float, ...]]:
        """Return the arms rows read for ``request`` and their weights (global row: -1)."""
        if self.spec.per_cluster:
            return request.clusters, request.weights
        return (-1,), (1.0,)

    def new_generation(self, n_clusters: int, affinity: FloatArray | None = None) -> None:
        """Start fresh per-cluster arms after a clustering refit."""
        if self.spec.per_cluster:
            self.arms.new_generation(n_clusters, affinity)

    def posterior(self, request: Request) -> tuple[FloatArray, FloatArray]:
        """Return the (alpha, beta) the user's membership reads: one row, or a weighted mix."""
        rows, weights = self.rows(request)
        if len(rows) == 1:
            return self.arms.alpha[rows[0]], self.arms.beta[rows[0]]
        # The service mixes counts the same way (bandits.mix_posteriors), without its checks.
        mix = np.asarray(weights)
        return mix @ self.arms.alpha[list(rows)], mix @ self.arms.beta[list(rows)]

    def ts_inputs(self, request: Request) -> tuple[FloatArray, FloatArray, FloatArray | None]:
        """Return (alpha, beta, multipliers) this Thompson policy samples for ``request``."""
        alpha, beta = self.posterior(request)
        multipliers = None
        self._last_tilt = self._tilt(request)
        if self.fatigue is not None:
            # Most items are fresh for any one user: bucket only the others.
            tired = np.flatnonzero(request.raw_unclicked)
            buckets = np.zeros(self.n_items, dtype=np.intp)
            buckets[tired] = self.fatigue.buckets.index_trusted(
                request.raw_unclicked[tired], request.ages[tired]
            )
            posterior = self.fatigue.posterior()
            curve = posterior.draw(self.rng) if self.spec.draws_decay else posterior.mean()
            multipliers = curve[buckets]
            self._last_buckets = buckets
            self._last_base = None
            if self.spec.corrects:
                self._last_base = correction_base(
                    request.unclicked, self.spec.gamma, self.fatigue.buckets
                )
                multipliers = multipliers * self._last_base
        elif self.spec.gamma < 1.0:
            multipliers = seen_decay(request.unclicked, self.spec.gamma)
        if self._last_tilt is not None:
            multipliers = self._last_tilt if multipliers is None else multipliers * self._last_tilt
        return alpha, beta, multipliers

    def _tilt(self, request: Request) -> FloatArray | None:
        """Return the personal tilt of the user's scores, or None without one."""
        affinity = self.arms.affinity
        if self.spec.personal <= 0.0 or request.user_affinity is None or affinity is None:
            return None
        rows, weights = self.rows(request)
        cluster_affinity = np.asarray(weights) @ affinity[list(rows)]
        return personal_tilt(request.user_affinity, cluster_affinity, self.arms.slope,
                             self.spec.personal)  # fmt: skip

    def rank(self, request: Request) -> tuple[IndexArray, FloatArray]:
        """Return (items, scores) of the k items served for ``request``, best first."""
        kind = self.spec.kind
        if kind == "ts":
            self.last_inputs = self.ts_inputs(request)
            alpha, beta, multipliers = self.last_inputs
            return rank(alpha, beta, self.k, self.rng, multipliers)
        if kind == "oracle":
            scores = request.truth
        elif kind == "random":
            scores = self.rng.random(self.n_items)
        elif kind == "mabwiser":
            assert self._peer is not None
            scores = self._peer.next_scores(self.rng)
        else:
            alpha, beta = self.posterior(request)
            scores = alpha / (alpha + beta) + self.rng.random(self.n_items) * _TIE_JITTER
            if kind == "egreedy":
                return self._explore(scores)
        top = top_k(scores, self.k)
        return top, scores[top]

    def learn(
        self, request: Request, items: IndexArray, impressions: BoolArray, clicks: BoolArray
    ) -> None:
        """Learn from one served list's impressions and clicks."""
        if not self.learning:
            return
        if self.fatigue is not None and self.last_inputs is not None:
            assert self._last_buckets is not None
            alpha, beta, _ = self.last_inputs
            at = items[impressions]
            # Expected clicks: the arm's posterior mean when served, before any decay.
            expected = alpha[at] / (alpha[at] + beta[at])
            if self._last_tilt is not None:
                expected = expected * self._last_tilt[at]
            if self._last_base is not None:
                # A correction's evidence: what the fixed decay predicted, clicks against that.
                expected = expected * self._last_base[at]
            self.fatigue.update(self._last_buckets[at], clicks[impressions], expected)
        rows, weights = self.rows(request)
        self.arms.update(rows, weights, items, impressions, clicks)
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
