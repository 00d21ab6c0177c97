"""Per-call timings of several contenders, measured interleaved so load hits all alike."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping

# One sample is a batch of calls lasting about this long, so the timer's cost vanishes.
_SAMPLE_S = 0.02


def _calls_per_sample(fn: Callable[[], object], budget_s: float) -> int:
    start = time.perf_counter()
    fn()
    once = max(time.perf_counter() - start, 1e-7)
    return max(1, min(int(budget_s / once), 100_000))


def compare(
    contenders: Mapping[str, Callable[[], object]],
    rounds: int = 7,
    max_s: float = 10.0,
) -> dict[str, dict[str, float]]:
    """Return per-call seconds (median and min over rounds) and calls made, per contender.

    Each round times every contender once, in turn, so a burst of load from another
    process lands on all of them; the whole comparison stops after ``max_s`` seconds
    (at least one round is always completed).
    """
    sample_s = min(_SAMPLE_S, max_s / (3 * rounds * max(len(contenders), 1)))
    sizes = {name: _calls_per_sample(fn, sample_s) for name, fn in contenders.items()}
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    deadline = time.perf_counter() + max_s
    for _ in range(rounds):
        for name, fn in contenders.items():
            n = sizes[name]
            start = time.perf_counter()
            for _ in range(n):
                fn()
            samples[name].append((time.perf_counter() - start) / n)
        if time.perf_counter() > deadline:
            break
    return {
        name: {
            "median_s": statistics.median(values),
            "min_s": min(values),
            "rounds": len(values),
            "calls": len(values) * sizes[name],
        }
        for name, values in samples.items()
    }
