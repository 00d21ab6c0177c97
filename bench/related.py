"""Benchmark 2: the related surface's candidate step (cosine top-100) vs a bare matvec.

`cosine_top_k` times the service's own kernel, `clustering.most_similar`, with the
allowed-items mask the service builds per request; the float32 variant is a plain numpy
reference kept in this module.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

from bench import machine
from bench.timing import compare
from clustering import most_similar

K = 100
DIM = 64
SIZES = (10_000, 100_000)


def unit_rows(matrix: np.ndarray) -> np.ndarray:
    """Return the rows scaled to unit length (zero rows stay zero)."""
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.where(norms > 0.0, norms, 1.0)


def cosine_top_k(
    unit_items: np.ndarray, query: np.ndarray, k: int, exclude: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Return (positions, cosines) of the k items most similar to ``query``, best first."""
    norm = np.linalg.norm(query)
    scores = unit_items @ (query / norm if norm > 0.0 else query)
    if exclude is not None:
        scores[exclude] = -np.inf
    k = min(k, scores.size)
    top = np.argpartition(-scores, k - 1)[:k]
    top = top[np.argsort(-scores[top], kind="stable")]
    return top, scores[top]


def measure(n: int, max_s: float, seed: int) -> dict[str, Any]:
    """Return one size's per-call times (µs), calls and ratios, in this process."""
    rng = np.random.default_rng(seed)
    items64 = unit_rows(rng.standard_normal((n, DIM)))
    items32 = items64.astype(np.float32)
    queries = rng.integers(0, n, 64)
    state = {"q": 0}

    def next_query() -> int:
        state["q"] = (state["q"] + 1) % queries.size
        return int(queries[state["q"]])

    def floor() -> object:
        scores = items64 @ items64[next_query()]
        return np.argpartition(-scores, K - 1)[:K]

    def related() -> object:
        # As Recommender._related does: a fresh mask per request, the anchor excluded.
        i = next_query()
        allowed = np.ones(n, dtype=bool)
        allowed[i] = False
        return most_similar(items64, items64[i], K, allowed)

    def related32() -> object:
        i = next_query()
        return cosine_top_k(items32, items32[i], K, exclude=i)

    times = compare(
        {"floor": floor, "cosine_top_k": related, "cosine_top_k_float32": related32},
        rounds=7,
        max_s=max_s,
    )
    return {
        "us_per_call": {k: round(v["median_s"] * 1e6, 1) for k, v in times.items()},
        "calls": {k: v["calls"] for k, v in times.items()},
        "ratio_vs_floor": round(times["cosine_top_k"]["median_s"] / times["floor"]["median_s"], 3),
        "float32_ratio_vs_floor": round(
            times["cosine_top_k_float32"]["median_s"] / times["floor"]["median_s"], 3
        ),
    }


def _measure_single_threaded(n: int, max_s: float, seed: int) -> dict[str, Any] | None:
    """Return measure() from a child process whose BLAS may use one thread only."""
    env = os.environ | {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    code = (
        "import json; from bench import related; "
        f"print(json.dumps(related.measure({n}, {max_s}, {seed})))"
    )
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=root, capture_output=True, text=True,
        timeout=max_s * 10 + 60,
    )  # fmt: skip
    if done.returncode != 0:
        return None
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def run(sizes: tuple[int, ...] = SIZES, max_s: float = 6.0, seed: int = 3) -> dict[str, Any]:
    """Return per-call times of cosine_top_k and of the bare matvec + argpartition floor.

    Each size is measured twice: in this process (BLAS with its default thread count)
    and in a child with one BLAS thread, since on a busy small machine a threaded
    matvec can wait for a descheduled helper thread far longer than it computes.
    """
    rows = []
    load_before = machine.load()
    for n in sizes:
        row: dict[str, Any] = {"n_items": n, **measure(n, max_s, seed)}
        row["one_blas_thread"] = _measure_single_threaded(n, max_s, seed)
        rows.append(row)
    return {
        "what": (
            "The service's kernel: cosine_top_k = clustering.most_similar over unit float64 "
            f"rows, dim {DIM}, top {K}, anchor excluded by a fresh mask, result sorted, as "
            "the related surface calls it (HTTP and Redis not included); floor = items @ v + "
            f"np.argpartition(-scores, {K - 1})[:{K}] (unsorted), same arrays, same run. "
            "float32 variant for reference; one_blas_thread = the same in a child process "
            "with OPENBLAS_NUM_THREADS=1."
        ),
        "k": K,
        "dim": DIM,
        "blas": _blas_name(),
        "rows": rows,
        "target": None,
        "load_before": load_before,
        "load_after": machine.load(),
    }


def _blas_name() -> str:
    config = np.show_config(mode="dicts") or {}
    blas = config.get("Build Dependencies", {}).get("blas", {})
    return f"{blas.get('name')} {blas.get('version')}"
