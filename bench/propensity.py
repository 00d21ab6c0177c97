"""Benchmark 7: Monte-Carlo propensities (bandits.inclusion_probabilities) vs plain Monte-Carlo.

`inclusion_probabilities` (32 Thompson draws, top-10, for the 10 arms one `rank` call
served) against two baselines timed in the same run on the same arrays: `plain`, the
estimate as computed before arms could be skipped (every arm drawn 32 times, an
argpartition per draw, a bincount; kept here in plain numpy, no argument checks), and one
`bandits.rank` call. Two kinds of posteriors:

* `mature`: bench.ranker's arms (0-2,000 impressions per arm, CTRs near 5%, 20 seen items
  decayed): most arms provably cannot reach the top 10 and are not drawn;
* `prior`: every arm at a strength-10 prior around its item's CTR, which is what benchmark
  3's freshly seeded world serves (clusters fitted after the history was sent, so no arm
  has counts of its own): no arm can be skipped, only the cheaper bookkeeping helps.

`python -m bench.propensity` prints the table; `python -m bench --only propensity` stores
the results with the others.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

from bandits import fill_quotas, inclusion_probabilities, rank, seen_decay
from bench import machine, ranker
from bench.timing import compare

K = 10
SAMPLES = 32
SIZES = (100, 1_000, 10_000)
PRIOR_STRENGTH = 10.0
QUOTA_SIZE = 1_000  # the pools-and-quotas variant runs at this size only
QUOTA = 2  # places reserved for every 10th arm


def prior_arms(n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Return n arms at a strength-10 prior around item CTRs near 15%, 20 seen items decayed."""
    ctr = rng.beta(2.0, 11.0, n)
    multipliers = np.ones(n)
    seen = rng.choice(n, size=min(ranker.SEEN, n), replace=False)
    multipliers[seen] = seen_decay(rng.uniform(0.5, 4.0, seen.size), ranker.GAMMA)
    return {
        "alpha": PRIOR_STRENGTH * ctr,
        "beta": PRIOR_STRENGTH * (1.0 - ctr),
        "multipliers": multipliers,
    }


def plain(
    alpha: np.ndarray,
    beta: np.ndarray,
    k: int,
    rng: np.random.Generator,
    n_samples: int,
    served: np.ndarray,
    multipliers: np.ndarray,
) -> np.ndarray:
    """Return (1 + hits) / (n_samples + 1) for the served arms, drawing every arm."""
    draws = rng.beta(alpha, beta, size=(n_samples, alpha.size)) * multipliers
    chosen = np.argpartition(-draws, k - 1, axis=1)[:, :k]
    hits = np.bincount(chosen.ravel(), minlength=alpha.size)
    result: np.ndarray = (1.0 + hits[served]) / (n_samples + 1.0)
    return result


def plain_quotas(
    alpha: np.ndarray,
    beta: np.ndarray,
    k: int,
    rng: np.random.Generator,
    n_samples: int,
    served: np.ndarray,
    multipliers: np.ndarray,
    pools: Sequence[np.ndarray],
    quotas: Sequence[int],
) -> np.ndarray:
    """Return the same estimate for quota-filled lists: every arm drawn, fill_quotas per draw."""
    draws = rng.beta(alpha, beta, size=(n_samples, alpha.size)) * multipliers
    hits = np.zeros(alpha.size)
    for row in draws:
        hits[fill_quotas(row, pools, quotas, k)] += 1.0
    result: np.ndarray = (1.0 + hits[served]) / (n_samples + 1.0)
    return result


def _case(
    kind: str, n: int, arms: dict[str, np.ndarray], max_s: float, seed: int, quotas: bool
) -> dict[str, Any]:
    alpha, beta, multipliers = arms["alpha"], arms["beta"], arms["multipliers"]
    rng = np.random.default_rng(seed + 1)
    pools = [np.arange(0, n, 10)] if quotas else []
    counts = [QUOTA] if quotas else []
    served, _ = rank(alpha, beta, K, np.random.default_rng(seed + 2), multipliers)

    def ours() -> object:
        return inclusion_probabilities(
            alpha, beta, K, rng, SAMPLES, served, multipliers, pools, counts
        )

    def baseline() -> object:
        if quotas:
            return plain_quotas(alpha, beta, K, rng, SAMPLES, served, multipliers, pools, counts)
        return plain(alpha, beta, K, rng, SAMPLES, served, multipliers)

    def one_rank() -> object:
        return rank(alpha, beta, K, rng, multipliers)

    times = compare({"plain": baseline, "propensity": ours, "rank": one_rank}, max_s=max_s)
    us = {name: round(t["median_s"] * 1e6, 1) for name, t in times.items()}
    return {
        "posteriors": kind,
        "n_arms": n,
        "quotas": quotas,
        "us_per_call": us,
        "calls": {name: t["calls"] for name, t in times.items()},
        "speedup_vs_plain": round(us["plain"] / us["propensity"], 2),
        "propensity_over_rank": round(us["propensity"] / us["rank"], 1),
        "plain_over_rank": round(us["plain"] / us["rank"], 1),
    }


def run(sizes: tuple[int, ...] = SIZES, max_s: float = 6.0, seed: int = 7) -> dict[str, Any]:
    """Return per-call times of inclusion_probabilities, plain Monte-Carlo and one rank."""
    load_before = machine.load()
    rows = []
    for n in sizes:
        mature = ranker.arms(n, np.random.default_rng(seed))
        rows.append(_case("mature", n, mature, max_s, seed, False))
        wide = prior_arms(n, np.random.default_rng(seed))
        rows.append(_case("prior", n, wide, max_s, seed, False))
    if QUOTA_SIZE in sizes:
        arms = ranker.arms(QUOTA_SIZE, np.random.default_rng(seed))
        rows.append(_case("mature", QUOTA_SIZE, arms, max_s, seed, True))
    return {
        "what": (
            f"per call, median over interleaved rounds. propensity = bandits."
            f"inclusion_probabilities({SAMPLES} draws, k={K}, the {K} arms one rank call "
            "served, seen-decay multipliers), arguments checked; plain = every arm drawn "
            f"{SAMPLES} times, argpartition per draw, bincount (the estimate before arms "
            "could be skipped, bare numpy); rank = one bandits.rank call on the same arrays. "
            "mature = bench.ranker.arms; prior = every arm at a strength-10 prior (benchmark "
            f"3's seeded world). quotas: every 10th arm in one pool with {QUOTA} places, "
            "plain = every arm drawn and bandits.fill_quotas per draw."
        ),
        "samples": SAMPLES,
        "k": K,
        "rows": rows,
        "load_before": load_before,
        "load_after": machine.load(),
    }


def table(result: dict[str, Any]) -> str:
    """Return the rows as a Markdown table."""
    lines = [
        "| posteriors | arms | quotas | propensity µs | plain µs | speedup | rank µs "
        "| propensity / rank | plain / rank |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        us = r["us_per_call"]
        lines.append(
            f"| {r['posteriors']} | {r['n_arms']:,} | {'yes' if r['quotas'] else 'no'} "
            f"| {us['propensity']} | {us['plain']} | {r['speedup_vs_plain']}x | {us['rank']} "
            f"| {r['propensity_over_rank']}x | {r['plain_over_rank']}x |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sizes = tuple(int(x) for x in sys.argv[1:]) or SIZES
    result = run(sizes)
    print(f"load {result['load_before']} -> {result['load_after']}")
    print(table(result))
