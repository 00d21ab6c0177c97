"""The batched in-process engine: lists served in batches from one posterior state, as a service
serves many requests from one snapshot; for the experiments across world families.

A batch is up to ``batch`` consecutive steps in which no user arrives twice (so the world's
fatigue is exact), cut at refits and at the drift. Within a batch every list is ranked
from the state at the batch's start (one vectorised draw for all of them); the batch's
impressions and clicks are learned at its end, and count-dependent priors are recomputed
then, as at a snapshot refresh. Thompson, random and oracle policies run here; the
sequential engine (engine.run_policy) runs every policy and writes logs.
"""

from __future__ import annotations

import time

import numpy as np
from numpy.typing import NDArray

from bandits import correction_base, personal_tilt
from clustering import normalize_rows
from evaluation.config import SimConfig
from evaluation.engine import (
    Trace,
    Traffic,
    affinity_for,
    below_median_mask,
    first_k,
    policy_rng,
    refit_k,
)
from evaluation.policies import Policy, PolicySpec
from evaluation.seen import SeenState
from evaluation.tastes import Tastes
from evaluation.world import World

FloatArray = NDArray[np.float64]
IndexArray = NDArray[np.intp]
BoolArray = NDArray[np.bool_]

BATCH_KINDS = ("ts", "random", "oracle")


def batch_ends(users: IndexArray, batch: int, cuts: set[int]) -> list[int]:
    """Return the end step of each batch: at most ``batch`` steps, no user twice, cut at ``cuts``.

    >>> batch_ends(np.array([0, 1, 2, 1, 3, 4, 5]), 3, {5})
    [3, 5, 7]
    """
    ends: list[int] = []
    start, n = 0, users.size
    while start < n:
        end, inside = start, set()
        while end < n and end - start < batch and int(users[end]) not in inside:
            if end > start and end in cuts:
                break
            inside.add(int(users[end]))
            end += 1
        ends.append(end)
        start = end
    return ends


def run_batched(
    world: World, config: SimConfig, spec: PolicySpec, traffic: Traffic, batch: int = 20
) -> Trace:
    """Return the trace of ``spec`` on ``world``, its lists served in batches of up to ``batch``."""
    if spec.kind not in BATCH_KINDS:
        raise ValueError(f"the batched engine runs {BATCH_KINDS} policies, got {spec.kind!r}")
    start_time = time.perf_counter()
    n, k = traffic.click_draws.shape
    rng = policy_rng(config, spec.stream_key, 7)
    policy = Policy(spec, world.n_items, k, rng, visit_gap=float(world.n_users),
                    refresh_every=1)  # fmt: skip
    cluster_rng = policy_rng(config, spec.stream_key, 2)
    soft = (spec.temperature, spec.top_m) if spec.membership == "soft" else None
    tastes = Tastes(world.embeddings, world.n_users, config.history_n, world.group_of_user, soft)
    tastes.read_before(world.prior_history)
    n_clusters, auto_k = first_k(spec, config)
    true_groups = config.true_clusters and spec.per_cluster
    if true_groups:
        policy.new_generation(world.config.n_groups, affinity_for(spec, world, tastes, True))
    refits = set(config.refit_steps()) if spec.per_cluster and not true_groups else set()
    drift = n if world.config.drift_at is None else int(world.config.drift_at * n)
    trace = Trace.blank(spec.name, world.group_of_user[traffic.users], n, k)
    fatigue = np.zeros((world.n_users, world.n_items))
    last_visit = np.zeros(world.n_users)
    log_fatigue = np.log(world.config.fatigue)
    examine = config.position_decay ** np.arange(k, dtype=np.float64)
    seen_state = SeenState(world.n_users, world.n_items, spec.half_life) if spec.decays else None
    probs, below = world.probs, below_median_mask(world.probs)
    start = 0
    for end in batch_ends(traffic.users, batch, refits | {drift}):
        if start in refits:
            n_clusters = refit_k(auto_k, policy, n_clusters, tastes.with_history())
            info = tastes.refit(n_clusters, cluster_rng, start)
            if info is not None:
                trace.refits.append(info)
                policy.new_generation(n_clusters, affinity_for(spec, world, tastes, False))
        if start == drift:
            probs, below = world.probs_after_drift, below_median_mask(world.probs_after_drift)
        steps = np.arange(start, end)
        users = traffic.users[start:end]
        groups = world.group_of_user[users]
        # The world: each arriving user's fatigue fades up to now (lazily, as in engine.py).
        fatigue[users] *= np.exp2(
            -(steps - last_visit[users])[:, None] / world.config.fatigue_half_life
        )
        last_visit[users] = steps
        truth = probs[groups] * np.exp(log_fatigue * fatigue[users])
        top, mixed = _rank(policy, spec, tastes, seen_state, users, steps, truth, true_groups)
        rows = np.arange(end - start)[:, None]
        seen = traffic.seen_draws[start:end] < examine
        click = seen & (traffic.click_draws[start:end] < truth[rows, top])
        trace.items[start:end] = top
        trace.impressions[start:end] = seen
        trace.clicks[start:end] = click
        trace.expected[start:end] = truth[rows, top] @ examine
        best = -np.sort(-np.partition(truth, world.n_items - k, axis=1)[:, -k:], axis=1)
        trace.best[start:end] = best @ examine
        trace.below_median[start:end] = (below[groups[:, None], top] & seen).sum(axis=1)
        # Users are distinct within a batch and items within a list: the pairs are unique.
        user_at = np.broadcast_to(users[:, None], top.shape)
        ignored = seen & ~click
        fatigue[user_at[ignored], top[ignored]] += 1.0
        fatigue[user_at[click], top[click]] = 0.0
        if seen_state is not None:
            seen_state.record_many(users, steps, top, seen, click)
        _learn(policy, mixed, top, seen, click)
        if spec.per_cluster and not true_groups:
            for row in np.flatnonzero(click.any(axis=1)).tolist():
                tastes.clicked(int(users[row]), top[row][click[row]])
        start = end
    trace.seconds = time.perf_counter() - start_time
    trace.arms, trace.gen, trace.fatigue = policy.arms, tastes.gen, policy.fatigue
    return trace


class _Served:
    """What the batch was ranked with: membership weights per arms row, posteriors, buckets."""

    def __init__(self, weights: FloatArray, alpha: FloatArray, beta: FloatArray) -> None:
        self.weights = weights  # (batch, rows) membership weights over the cluster rows
        self.alpha = alpha  # (batch, items)
        self.beta = beta
        self.buckets: IndexArray | None = None
        self.tilt: FloatArray | None = None
        # The fixed decay a learned correction multiplies (None: the curve alone, or none).
        self.base: FloatArray | None = None


def _rank(
    policy: Policy,
    spec: PolicySpec,
    tastes: Tastes,
    seen_state: SeenState | None,
    users: IndexArray,
    steps: IndexArray,
    truth: FloatArray,
    true_groups: bool,
) -> tuple[IndexArray, _Served | None]:
    """Return the (batch, k) items served to each user, and what Thompson ranked them with."""
    size, n_items = truth.shape
    k = policy.k
    if spec.kind == "oracle":
        return _top_k_rows(truth, k), None
    if spec.kind == "random":
        return _top_k_rows(policy.rng.random((size, n_items)), k), None
    arms = policy.arms
    n_rows = arms.alpha.shape[0]
    weights = np.zeros((size, n_rows))
    for row, user in enumerate(users.tolist()):
        if not spec.per_cluster:
            weights[row, -1] = 1.0
        elif true_groups:
            weights[row, int(tastes.groups[user]) if tastes.groups is not None else 0] = 1.0
        else:
            clusters, shares = tastes.membership(user)
            weights[row, list(clusters)] = shares
    alpha, beta = weights @ arms.alpha, weights @ arms.beta
    served = _Served(weights, alpha, beta)
    scores = policy.rng.beta(alpha, beta)
    if spec.personal > 0.0 and tastes.unit_centers is not None and arms.affinity is not None:
        user_affinity = normalize_rows(tastes.sums[users]) @ tastes.embeddings.T
        cluster_affinity = weights[:, :-1] @ arms.affinity
        served.tilt = personal_tilt(user_affinity, cluster_affinity, arms.slope, spec.personal)
        scores *= served.tilt
    if seen_state is not None:
        view = seen_state.view_many(users, steps)
        if policy.fatigue is None:
            scores *= spec.gamma**view.faded
        else:
            # Most items are fresh for any one user: bucket only the others.
            tired = np.nonzero(view.unclicked)
            served.buckets = np.zeros((size, n_items), dtype=np.intp)
            served.buckets[tired] = policy.fatigue.buckets.index_trusted(
                view.unclicked[tired], view.ages[tired]
            )
            posterior = policy.fatigue.posterior()
            if spec.corrects:
                served.base = correction_base(view.faded, spec.gamma, policy.fatigue.buckets)
                scores *= served.base
            if spec.draws_decay:
                curves = posterior.draws(policy.rng, size)
                scores *= np.take_along_axis(curves, served.buckets, axis=1)
            else:
                scores *= posterior.mean()[served.buckets]
    return _top_k_rows(scores, k), served


def _top_k_rows(scores: FloatArray, k: int) -> IndexArray:
    """Return, per row, the indices of the k largest scores, best first."""
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(scores, part, axis=1), axis=1, kind="stable")
    top: IndexArray = np.take_along_axis(part, order, axis=1)
    return top


def _learn(
    policy: Policy, served: _Served | None, top: IndexArray, seen: BoolArray, click: BoolArray
) -> None:
    """Count the batch's impressions and clicks in the arms (and the learned decay)."""
    if served is None:
        return
    size, n_items = served.alpha.shape
    rows = np.arange(size)[:, None]
    shown = np.zeros((size, n_items))
    clicked = np.zeros((size, n_items))
    shown[rows, top] = seen
    clicked[rows, top] = click & seen
    if policy.fatigue is not None:
        at = top[seen]
        row_at = np.broadcast_to(rows, top.shape)[seen]
        buckets = np.zeros(at.size, dtype=np.intp)
        if served.buckets is not None:
            buckets = served.buckets[row_at, at]
        mean = served.alpha[row_at, at] / (served.alpha[row_at, at] + served.beta[row_at, at])
        if served.tilt is not None:
            mean = mean * served.tilt[row_at, at]
        if served.base is not None:
            # A correction's evidence: what the fixed decay predicted, clicks against that.
            mean = mean * served.base[row_at, at]
        policy.fatigue.update(buckets, click[seen], mean)
    weights = served.weights.copy()
    # Every impression counts once in the global row, whatever the membership.
    weights[:, -1] = 1.0
    policy.arms.add(weights.T @ shown, weights.T @ clicked, size)
