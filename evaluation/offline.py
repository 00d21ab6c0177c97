"""`banditrec evaluate`: a target policy's CTR from NDJSON served-list logs, by OPE.

The target is a Thompson policy frozen at one posterior state (counts per cluster and item):
from a JSON file, from a running service's ``GET /v1/arms`` pages, or, by default, the counts
in the logs themselves. Its seen decay uses unclicked counts rebuilt from the logs.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from bandits import decayed_counts, inclusion_shares, seen_decay
from evaluation.ope import Estimate, estimate_ctr
from evaluation.policies import Arms, PolicySpec

FloatArray = NDArray[np.float64]
# Pseudo-impressions shrinking each arm's CTR towards the overall CTR in the reward model.
SHRINK_IMPRESSIONS = 20.0
SERVICE_HALF_LIFE_S = 24 * 3600.0


@dataclass
class ArmState:
    """Counts per (cluster, item) and a global row (the last), in one item order."""

    item_ids: list[str]
    impressions: FloatArray  # (n_clusters + 1, n_items)
    clicks: FloatArray
    gen: int | None  # the clustering generation of the cluster rows; None: any
    half_life_s: float | None = None

    @property
    def n_clusters(self) -> int:
        """Return how many cluster rows the state has."""
        return int(self.impressions.shape[0]) - 1


def read_logs(path: Path) -> list[dict[str, Any]]:
    """Return the served lists of an NDJSON log, oldest first (by ts)."""
    with path.open() as source:
        lines = [json.loads(line) for line in source if line.strip()]
    return sorted(lines, key=lambda line: float(line["ts"]))


def state_from_json(path: Path, extra_items: Iterable[str] = ()) -> ArmState:
    """Return the state in a counts JSON (as `banditrec simulate` writes next to its logs)."""
    raw = json.loads(path.read_text())
    rows = [*raw.get("clusters", []), raw["global"]]
    ids = set(extra_items).union(*(row.keys() for row in rows))
    if "n_items" in raw:
        ids |= {f"i{i}" for i in range(int(raw["n_items"]))}
    return _state(sorted(ids), rows, raw.get("gen"), raw.get("seen_half_life_s"))


def state_from_logs(lines: list[dict[str, Any]]) -> ArmState:
    """Return counts of the last generation in the logs, per logged cluster and global."""
    gen = max(int(line["gen"]) for line in lines)
    n_clusters = 1 + max((int(line["cluster"]) for line in lines if line["gen"] == gen), default=0)
    rows: list[dict[str, list[int]]] = [{} for _ in range(n_clusters + 1)]
    for line in lines:
        targets = [rows[-1]]
        if int(line["gen"]) == gen:
            targets.append(rows[int(line["cluster"])])
        for item in line["items"]:
            if not item["impression"]:
                continue
            for row in targets:
                counts = row.setdefault(item["item_id"], [0, 0])
                counts[0] += 1
                counts[1] += int(item["click"])
    ids = sorted({item["item_id"] for line in lines for item in line["items"]})
    return _state(ids, rows, gen, None)


def state_from_service(base_url: str, extra_items: Iterable[str] = ()) -> ArmState:
    """Return the live counts of a running service, read page by page from GET /v1/arms."""
    import httpx

    rows: list[dict[str, list[int]]] = []
    gen = None
    with httpx.Client(base_url=base_url, timeout=30) as http:
        for cluster in [*range(256), None]:
            row: dict[str, list[int]] = {}
            offset = 0
            while True:
                params: dict[str, int] = {"limit": 1000, "offset": offset}
                if cluster is not None:
                    params["cluster"] = cluster
                response = http.get("/v1/arms", params=params)
                if response.status_code == 422 and cluster is not None:
                    break  # past the last cluster
                response.raise_for_status()
                page = response.json()
                gen = page["gen"]
                row.update({a["item_id"]: [a["impressions"], a["clicks"]] for a in page["arms"]})
                offset += len(page["arms"])
                if not page["arms"] or offset >= page["total"]:
                    break
            if response.status_code == 422:
                continue
            rows.append(row)
    ids = sorted(set(extra_items).union(*(row.keys() for row in rows)))
    return _state(ids, rows, gen, None)


def _state(
    ids: list[str], rows: list[dict[str, list[int]]], gen: int | None, half_life: float | None
) -> ArmState:
    index = {item: i for i, item in enumerate(ids)}
    impressions = np.zeros((len(rows), len(ids)))
    clicks = np.zeros_like(impressions)
    for r, row in enumerate(rows):
        for item, (imp, clk) in row.items():
            impressions[r, index[item]] = imp
            clicks[r, index[item]] = clk
    return ArmState(ids, impressions, clicks, gen, half_life)


def evaluate_logs(
    lines: list[dict[str, Any]],
    spec: PolicySpec,
    state: ArmState,
    rng: np.random.Generator,
    *,
    n_draws: int = 200,
    n_boot: int = 500,
    half_life_s: float = SERVICE_HALF_LIFE_S,
) -> dict[str, Any]:
    """Return the target's IPS/SNIPS/DR CTR estimates and what was used, from logged lists."""
    if not spec.thompson:
        raise ValueError(f"the target must be a Thompson policy (*-ts*), got {spec.name!r}")
    index = {item: i for i, item in enumerate(state.item_ids)}
    # The same posteriors the target policy itself would sample (flat or catalog prior).
    alpha, beta = Arms.params_for(spec, state.impressions, state.clicks)
    reward_model = _reward_model(state)
    columns: dict[str, list[float]] = {k: [] for k in ("list", "r", "logged", "target", "r_hat")}
    direct: list[float] = []
    shown_per_list: list[float] = []
    skipped = {"other_generation": 0, "no_impressions": 0, "unknown_items": 0}
    cache: dict[tuple[int, int], FloatArray] = {}
    for line, unclicked in _with_unclicked(lines, index, half_life_s):
        items = line["items"]
        if any(item["item_id"] not in index for item in items):
            skipped["unknown_items"] += 1
            continue
        row = state.n_clusters
        if spec.per_cluster:
            if state.gen is not None and int(line["gen"]) != state.gen:
                skipped["other_generation"] += 1
                continue
            row = min(int(line["cluster"]), state.n_clusters - 1) if state.n_clusters else row
        seen = [item for item in items if item["impression"]]
        if not seen:
            skipped["no_impressions"] += 1
            continue
        k = int(line["k"])
        if spec.gamma < 1.0 and unclicked.any():
            multipliers = seen_decay(unclicked, spec.gamma)
            probs = inclusion_shares(alpha[row], beta[row], k, rng, n_draws, multipliers)
        else:
            # Without seen decay the target's propensities depend on (row, k) only.
            key = (row, k)
            if key not in cache:
                cache[key] = inclusion_shares(alpha[row], beta[row], k, rng, n_draws * 10)
            probs = cache[key]
        number = len(direct)
        positions = np.array([index[item["item_id"]] for item in seen])
        columns["list"].extend([number] * len(seen))
        columns["r"].extend(float(item["click"]) for item in seen)
        columns["logged"].extend(float(item["propensity"]) for item in seen)
        columns["target"].extend(probs[positions].tolist())
        columns["r_hat"].extend(reward_model[row, positions].tolist())
        # The direct term counts only as many slots as this list had impressions.
        direct.append(float(probs @ reward_model[row]) * len(seen) / len(items))
        shown_per_list.append(float(len(seen)))
    if not direct:
        raise ValueError(f"no logged list could be evaluated for {spec.name!r}: {skipped}")
    estimates = estimate_ctr(
        np.array(columns["list"], dtype=np.intp), columns["r"], columns["logged"],
        columns["target"], columns["r_hat"], direct, shown_per_list, rng, n_boot,
    )  # fmt: skip
    weights = np.array(columns["target"]) / np.array(columns["logged"])
    return {
        "policy": spec.name,
        "lists": len(direct),
        "impressions": len(columns["r"]),
        "logged_ctr": float(np.mean(columns["r"])),
        "effective_sample_size": float(weights.sum() ** 2 / max(1e-300, (weights**2).sum())),
        "skipped": skipped,
        "estimates": {name: est._asdict() for name, est in estimates.items()},
    }


def _reward_model(state: ArmState) -> FloatArray:
    """Return CTR per (row, item), shrunk towards the overall CTR: DR's reward model."""
    overall = float(state.clicks[-1].sum()) / max(1.0, float(state.impressions[-1].sum()))
    model: FloatArray = (state.clicks + SHRINK_IMPRESSIONS * overall) / (
        state.impressions + SHRINK_IMPRESSIONS
    )
    return model


def _with_unclicked(
    lines: list[dict[str, Any]], index: dict[str, int], half_life_s: float
) -> Iterator[tuple[dict[str, Any], FloatArray]]:
    """Yield each line with its user's fading unclicked counts just before it was served."""
    counts: dict[str, FloatArray] = {}
    touched: dict[str, float] = {}
    n_items = len(index)
    for line in lines:
        user, ts = str(line["user_id"]), float(line["ts"])
        row = counts.setdefault(user, np.zeros(n_items))
        if user in touched:
            row[:] = decayed_counts(row, np.full(n_items, ts - touched[user]), half_life_s)
        touched[user] = ts
        yield line, row
        for item in line["items"]:
            position = index.get(item["item_id"])
            if position is None or not item["impression"]:
                continue
            row[position] = 0.0 if item["click"] else row[position] + 1.0


def format_result(result: dict[str, Any]) -> str:
    """Return a short human summary of an evaluate result."""
    lines = [
        f"policy {result['policy']}: {result['lists']} lists, {result['impressions']} "
        f"impressions, logged CTR {result['logged_ctr']:.4f}, "
        f"effective sample size {result['effective_sample_size']:.0f}",
    ]
    for name, est in result["estimates"].items():
        e = Estimate(**est)
        lines.append(f"  {name:5s} {e.value:.4f}  [{e.low:.4f}, {e.high:.4f}]")
    if any(result["skipped"].values()):
        lines.append(f"  skipped: {result['skipped']}")
    return "\n".join(lines)
