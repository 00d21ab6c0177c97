"""The in-process engine: drives one policy through the world step by step, recording a trace."""

from __future__ import annotations

import json
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

from bandits import FatigueLearner, clusters_for_history, inclusion_probabilities
from clustering import cluster_affinity, normalize_rows
from evaluation.arms import Arms
from evaluation.config import DEFAULT_CLUSTERS, SimConfig
from evaluation.policies import Policy, PolicySpec, Request, parse_policy
from evaluation.seen import SeenState
from evaluation.tastes import Tastes
from evaluation.world import World

FloatArray = NDArray[np.float64]
IndexArray = NDArray[np.intp]
BoolArray = NDArray[np.bool_]

_PROGRESS_EVERY = 1000


class Traffic(NamedTuple):
    """The arrivals and random draws every policy faces, so all see equal traffic."""

    users: IndexArray  # (n_steps,)
    click_draws: FloatArray  # (n_steps, k) uniform: clicked iff draw < true probability
    seen_draws: FloatArray  # (n_steps, k) uniform: seen iff draw < position_decay ** j


@dataclass
class Trace:
    """What one policy served and what happened, one row per step."""

    name: str
    groups: IndexArray  # (n_steps,) latent group of each arriving user
    items: IndexArray  # (n_steps, k)
    impressions: BoolArray  # (n_steps, k)
    clicks: BoolArray  # (n_steps, k)
    expected: FloatArray  # (n_steps,) expected clicks of the served list
    best: FloatArray  # (n_steps,) expected clicks of the best list in the same state
    below_median: NDArray[np.int64]  # (n_steps,) impressions of below-median items
    seconds: float = 0.0
    refits: list[dict[str, Any]] = field(default_factory=list)
    # The policy's posterior counts at the end, and the clustering generation they belong to.
    arms: Arms | None = None
    gen: int = 0
    # A learned seen decay's evidence at the end.
    fatigue: FatigueLearner | None = None

    @classmethod
    def blank(cls, name: str, groups: IndexArray, n: int, k: int) -> Trace:
        """Return a trace of n steps of k slots, all zero, to be filled step by step."""
        return cls(
            name=name,
            groups=groups,
            items=np.zeros((n, k), dtype=np.intp),
            impressions=np.zeros((n, k), dtype=bool),
            clicks=np.zeros((n, k), dtype=bool),
            expected=np.zeros(n),
            best=np.zeros(n),
            below_median=np.zeros(n, dtype=np.int64),
        )


class Reactions:
    """The world's side of each step: fading fatigue, drift, and what the user sees and clicks.

    Both engines use it, so a policy served in-process and the real service over HTTP face
    exactly the same users.
    """

    def __init__(self, world: World, config: SimConfig, traffic: Traffic) -> None:
        n, k = traffic.click_draws.shape
        self.world = world
        self.traffic = traffic
        self.unclicked = np.zeros((world.n_users, world.n_items))
        self.last_visit = np.zeros(world.n_users)
        self.log_fatigue = np.log(world.config.fatigue)
        self.half_life = world.config.fatigue_half_life
        self.examine = config.position_decay ** np.arange(k, dtype=np.float64)
        self.k = k
        self.drift_step = n if world.config.drift_at is None else int(world.config.drift_at * n)
        self.probs, self.below = world.probs, below_median_mask(world.probs)

    def arrive(self, t: int) -> tuple[int, int, FloatArray, FloatArray]:
        """Return (user, group, unclicked counts, true click probabilities) of step t."""
        if t == self.drift_step:
            self.probs = self.world.probs_after_drift
            self.below = below_median_mask(self.probs)
        user = int(self.traffic.users[t])
        group = int(self.world.group_of_user[user])
        seen_counts = self.unclicked[user]
        # Lazy fading, as the service does: only the arriving user's counts are brought up to now.
        seen_counts *= 2.0 ** (-(t - self.last_visit[user]) / self.half_life)
        self.last_visit[user] = t
        truth = self.probs[group] * np.exp(self.log_fatigue * seen_counts)
        return user, group, seen_counts, truth

    def react(self, t: int, truth: FloatArray, items: IndexArray) -> tuple[BoolArray, BoolArray]:
        """Return which served items the user saw and which they clicked."""
        seen = self.traffic.seen_draws[t] < self.examine
        return seen, seen & (self.traffic.click_draws[t] < truth[items])

    def record(
        self,
        trace: Trace,
        t: int,
        group: int,
        truth: FloatArray,
        items: IndexArray,
        seen: BoolArray,
        click: BoolArray,
    ) -> None:
        """Write step t into the trace and update the user's fatigue counts."""
        trace.items[t] = items
        trace.impressions[t] = seen
        trace.clicks[t] = click
        trace.expected[t] = truth[items] @ self.examine
        k = self.k
        trace.best[t] = -np.sort(-np.partition(truth, truth.size - k)[-k:]) @ self.examine
        trace.below_median[t] = int(np.count_nonzero(self.below[group, items] & seen))
        seen_counts = self.unclicked[int(self.traffic.users[t])]
        seen_counts[items[seen & ~click]] += 1
        seen_counts[items[click]] = 0


def make_traffic(world: World, config: SimConfig) -> Traffic:
    """Return the seeded arrivals and draws for ``config``."""
    rng = np.random.default_rng([config.seed, 1])
    n, k = config.n_steps, config.k
    users = rng.integers(world.n_users, size=n).astype(np.intp)
    return Traffic(users, rng.random((n, k)), rng.random((n, k)))


def policy_rng(config: SimConfig, name: str, stream: int) -> np.random.Generator:
    """Return the generator for one policy's ``stream``, independent of the other policies."""
    return np.random.default_rng([config.seed, stream, zlib.crc32(name.encode())])


def below_median_mask(probs: FloatArray) -> BoolArray:
    """Return, per (group, item), whether the item's true CTR is below the group's median."""
    mask: BoolArray = probs < np.median(probs, axis=1, keepdims=True)
    return mask


def first_k(spec: PolicySpec, config: SimConfig) -> tuple[int, bool]:
    """Return the policy's k before any fit and whether each fit chooses its own."""
    if spec.n_clusters is not None:
        return spec.n_clusters, spec.auto_k
    if isinstance(config.n_clusters, int):
        return config.n_clusters, spec.auto_k
    return DEFAULT_CLUSTERS, True  # "auto"


def refit_k(auto_k: bool, policy: Policy, n_clusters: int, n_users: int) -> int:
    """Return the k of the next fit: the policy's own, or chosen from the history so far
    and the ``n_users`` users with one."""
    if not auto_k:
        return n_clusters
    return clusters_for_history(policy.arms.impressions[-1], policy.arms.clicks[-1], n_users)


def run_policy(
    world: World,
    config: SimConfig,
    spec: PolicySpec,
    traffic: Traffic,
    *,
    on_steps: Callable[[int], None] | None = None,
    log_sink: IO[str] | None = None,
    arms: Arms | None = None,
    learn: bool = True,
) -> Trace:
    """Return the trace of ``spec`` run on ``world`` for the traffic's steps.

    ``arms`` starts the policy from a given posterior state (and fixes the clusters to the
    latent groups if ``config.true_clusters``); ``learn=False`` freezes it.
    """
    start = time.perf_counter()
    n, k = traffic.click_draws.shape
    policy = Policy(
        spec, world.n_items, k, policy_rng(config, spec.stream_key, 7), config.mabwiser_batch,
        visit_gap=float(world.n_users), refresh_every=config.snapshot_every,
    )  # fmt: skip
    cluster_rng = policy_rng(config, spec.stream_key, 2)
    propensity_rng = policy_rng(config, spec.stream_key, 3)
    groups_known = world.group_of_user if config.true_clusters else None
    soft = (spec.temperature, spec.top_m) if spec.membership == "soft" else None
    tastes = Tastes(world.embeddings, world.n_users, config.history_n, world.group_of_user, soft)
    tastes.read_before(world.prior_history)
    n_clusters, auto_k = first_k(spec, config)
    if spec.per_cluster and config.true_clusters:
        policy.new_generation(world.config.n_groups, affinity_for(spec, world, tastes, True))
    if arms is not None:
        policy.arms = arms
    policy.learning = learn
    refits = set(config.refit_steps()) if spec.per_cluster and groups_known is None else set()
    trace = Trace.blank(spec.name, world.group_of_user[traffic.users], n, k)
    reactions = Reactions(world, config, traffic)
    seen_state = SeenState(world.n_users, world.n_items, spec.half_life) if spec.decays else None
    # Policies without seen decay read nothing of it.
    unseen, never = np.zeros(world.n_items), np.full(world.n_items, np.inf)
    for t in range(n):
        if t in refits:
            n_clusters = refit_k(auto_k, policy, n_clusters, tastes.with_history())
            info = tastes.refit(n_clusters, cluster_rng, t)
            if info is not None:
                trace.refits.append(info)
                policy.new_generation(n_clusters, affinity_for(spec, world, tastes, False))
        user, group, _, truth = reactions.arrive(t)
        clusters: tuple[int, ...]
        weights: tuple[float, ...]
        if groups_known is not None:
            clusters, weights = (group,), (1.0,)
        elif spec.per_cluster:
            clusters, weights = tastes.membership(user)
        else:
            clusters, weights = (0,), (1.0,)
        user_affinity = None
        if spec.personal > 0.0 and tastes.unit_centers is not None:
            user_affinity = world.embeddings @ normalize_rows(tastes.sums[user][None, :])[0]
        if seen_state is not None:
            view = seen_state.view(user, t)
            request = Request(user, clusters, weights, *view, truth, user_affinity)
        else:
            request = Request(user, clusters, weights, unseen, unseen, never, truth, user_affinity)
        items, scores = policy.rank(request)
        seen, click = reactions.react(t, truth, items)
        # The log reads the seen counts as the policy saw them, so write it first.
        if log_sink is not None:
            _write_log(log_sink, policy, request, items, scores, seen, click, t, tastes.gen,
                       config.propensity_draws, propensity_rng)  # fmt: skip
        reactions.record(trace, t, group, truth, items, seen, click)
        if seen_state is not None:
            seen_state.record(user, t, items, seen, click)
        policy.learn(request, items, seen, click)
        if click.any() and spec.per_cluster and groups_known is None:
            tastes.clicked(user, items[click])
        if on_steps is not None and (t + 1) % _PROGRESS_EVERY == 0:
            on_steps(_PROGRESS_EVERY)
    if on_steps is not None and n % _PROGRESS_EVERY:
        on_steps(n % _PROGRESS_EVERY)
    trace.seconds = time.perf_counter() - start
    trace.arms, trace.gen, trace.fatigue = policy.arms, tastes.gen, policy.fatigue
    return trace


def affinity_for(
    spec: PolicySpec, world: World, tastes: Tastes, true_groups: bool
) -> FloatArray | None:
    """Return the (clusters, items) affinity the policy's prior reads, or None if it reads none."""
    if spec.prior_kind != "affinity" or spec.prior_strength is None:
        return None
    if true_groups:
        # The latent groups as clusters: each one's centre is its users' mean taste vector.
        groups = world.group_of_user
        centres = np.stack(
            [tastes.sums[groups == g].sum(axis=0) for g in range(world.config.n_groups)]
        )
        return cluster_affinity(normalize_rows(centres), world.embeddings)
    assert tastes.unit_centers is not None
    return cluster_affinity(tastes.unit_centers, world.embeddings)


def run_named(
    world: World,
    config: SimConfig,
    name: str,
    traffic: Traffic,
    log_path: str | None = None,
) -> Trace:
    """Return the trace of the policy named ``name``; for process pools (no callbacks)."""
    spec = parse_policy(name, config.epsilon)
    if log_path is None:
        return run_policy(world, config, spec, traffic)
    with open(log_path, "w") as sink:
        return run_policy(world, config, spec, traffic, log_sink=sink)


def _write_log(
    sink: IO[str],
    policy: Policy,
    request: Request,
    items: IndexArray,
    scores: FloatArray,
    seen: BoolArray,
    click: BoolArray,
    step: int,
    gen: int,
    n_draws: int,
    rng: np.random.Generator,
) -> None:
    assert policy.last_inputs is not None
    alpha, beta, multipliers = policy.last_inputs
    propensity = inclusion_probabilities(alpha, beta, items.size, rng, n_draws, items, multipliers)
    record = {
        "rec_id": f"sim-{step:09d}",
        "user_id": f"u{request.user}",
        "gen": gen,
        "cluster": request.cluster,
        "ts": float(step),
        "k": int(items.size),
        "n_candidates": int(alpha.size),
        "items": [
            {
                "item_id": f"i{item}",
                "position": position,
                "score": float(score),
                "propensity": float(p),
                "impression": bool(s),
                "click": bool(c),
            }
            for position, (item, score, p, s, c) in enumerate(
                zip(items.tolist(), scores.tolist(), propensity.tolist(), seen, click, strict=True)
            )
        ],
    }
    sink.write(json.dumps(record) + "\n")
