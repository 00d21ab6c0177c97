"""`banditrec evaluate`: a target policy's CTR from NDJSON served-list logs, by OPE.

The target (uniform, most-popular or Thompson) is frozen at one posterior state (counts per
cluster and item): from a JSON file, from a running service's ``GET /v1/arms`` pages, or, by
default, the counts in the logs themselves. Seen decay uses unclicked counts rebuilt from the
logs. Lists of unplaced users (``cluster`` null) are evaluated with the global arms.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from bandits import decayed_counts
from evaluation.log_format import LoggedList, LogLineError, parse_record
from evaluation.ope import Estimate, estimate_ctr, monte_carlo_error
from evaluation.policies import PolicySpec
from evaluation.progress import progress_bar
from evaluation.targets import Slate, Target, make_target

FloatArray = NDArray[np.float64]
IndexArray = NDArray[np.intp]
# Pseudo-impressions shrinking each arm's CTR towards the overall CTR in the reward model.
SHRINK_IMPRESSIONS = 20.0
SERVICE_HALF_LIFE_S = 24 * 3600.0
# A Monte-Carlo target's draws grow until its error is at most this share of the bootstrap's
# standard error (the interval is then at most sqrt(1 + 0.5**2) - 1 = 12% too narrow) ...
MC_SHARE = 0.5
# ... or until this many draws per list; then the interval is widened by the MC error.
MAX_DRAWS = 5000


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


def state_from_json(path: Path, extra_items: Iterable[str] = ()) -> ArmState:
    """Return the state in a counts JSON (as `banditrec simulate` writes next to its logs)
    or in a service's state file (`banditrec export`, docs/state-format.md)."""
    try:
        raw = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not JSON: {exc}") from None
    if isinstance(raw, dict) and raw.get("format") == "banditrec-state":
        return _state_from_export(raw, extra_items)
    if not isinstance(raw, dict) or not isinstance(raw.get("global"), dict):
        raise ValueError(
            f"{path}: expected a counts JSON with a 'global' object (banditrec simulate) "
            "or a state file (banditrec export)"
        )
    rows = [*(raw.get("clusters") or []), raw["global"]]
    ids = set(extra_items).union(*(row.keys() for row in rows))
    if "n_items" in raw:
        ids |= {f"i{i}" for i in range(int(raw["n_items"]))}
    return _state(sorted(ids), rows, raw.get("gen"), raw.get("seen_half_life_s"))


def _state_from_export(raw: dict[str, Any], extra_items: Iterable[str]) -> ArmState:
    """Return the arms of a state file: one row per cluster of its fit, then the global row."""
    fit = raw.get("clusters")
    k = int(fit["k"]) if fit else 1
    rows: list[dict[str, list[float]]] = [{} for _ in range(k + 1)]
    for arm in raw.get("arms", []):
        row = rows[-1] if arm["cluster"] is None else rows[int(arm["cluster"])]
        row[arm["item_id"]] = [float(arm["impressions"]), float(arm["clicks"])]
    ids = set(extra_items).union(*(row.keys() for row in rows))
    return _state(sorted(ids), rows, int(fit["gen"]) if fit else 0, None)


def state_from_logs(lines: Sequence[LoggedList]) -> ArmState:
    """Return counts of the last generation in the logs, per logged cluster and global.

    Lists of unplaced users (cluster null) count in the global row only, as in the service.
    """
    gen = max(line.gen for line in lines)
    placed = [line.cluster for line in lines if line.gen == gen and line.cluster is not None]
    rows: list[dict[str, list[int]]] = [{} for _ in range(max(placed, default=-1) + 2)]
    for line in lines:
        targets = [rows[-1]]
        if line.gen == gen and line.cluster is not None:
            targets.append(rows[line.cluster])
        for item in line.items:
            if not item.impression:
                continue
            for row in targets:
                counts = row.setdefault(item.item_id, [0, 0])
                counts[0] += 1
                counts[1] += int(item.click)
    ids = sorted({item.item_id for line in lines for item in line.items})
    return _state(ids, rows, gen, None)


def state_from_service(
    url: str, extra_items: Iterable[str] = (), api_key: str | None = None
) -> ArmState:
    """Return the live counts of a running service, read page by page from GET /v1/arms.

    `url` is the service's base URL or its /v1/arms URL. An answer other than 200 or a
    service out of reach raises ValueError naming the URL and the service's own error.
    """
    import httpx

    base = url.rstrip("/").removesuffix("/v1/arms")
    headers = {"X-API-Key": api_key} if api_key else {}
    try:
        with httpx.Client(base_url=base, timeout=30, headers=headers) as http:
            return _read_arms(http, extra_items)
    except httpx.HTTPStatusError as exc:
        answer = f"{exc.response.status_code}: {exc.response.text[:300]}"
        raise ValueError(f"GET {exc.request.url} answered {answer}") from None
    except (httpx.RequestError, httpx.InvalidURL) as exc:
        raise ValueError(f"cannot read the arms at {base}/v1/arms: {exc}") from None


def _read_arms(http: Any, extra_items: Iterable[str]) -> ArmState:
    rows: list[dict[str, list[int]]] = []
    gen = None
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
    ids: list[str],
    rows: Sequence[Mapping[str, Sequence[float]]],
    gen: int | None,
    half_life: float | None,
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
    lines: Sequence[LoggedList | Mapping[str, Any]],
    spec: PolicySpec,
    state: ArmState,
    rng: np.random.Generator,
    *,
    n_draws: int = 200,
    n_boot: int = 500,
    half_life_s: float = SERVICE_HALF_LIFE_S,
    max_draws: int = MAX_DRAWS,
    progress: bool | None = False,
) -> dict[str, Any]:
    """Return the target's IPS/SNIPS/DR CTR estimates and what was used, from logged lists.

    A Thompson target's propensities are Monte-Carlo estimates: the draws per list grow from
    ``n_draws`` until their error is at most MC_SHARE of the bootstrap's for every estimator,
    or ``max_draws`` is reached; then the interval is widened by the Monte-Carlo error.
    """
    logged = _typed(lines)
    _require_propensities(logged)
    target = make_target(spec, state.impressions, state.clicks)
    if not 1 <= n_draws <= max_draws:
        raise ValueError(f"draws must be in [1, max_draws = {max_draws}], got {n_draws}")
    draws = n_draws
    while True:
        advance = progress_bar(len(logged), progress, f"evaluate ({draws} draws)"
                               if target.batches > 1 else "evaluate")  # fmt: skip
        try:
            columns = _columns(logged, spec, state, target, rng, draws, half_life_s, advance)
        finally:
            advance(-1)
        estimates = estimate_ctr(
            columns.lists, columns.reward, columns.logged, columns.target.mean(axis=0),
            columns.reward_hat, columns.direct.mean(axis=0), columns.shown, rng, n_boot,
        )  # fmt: skip
        errors = monte_carlo_error(
            columns.lists, columns.reward, columns.logged, columns.target,
            columns.reward_hat, columns.direct, columns.shown,
        )  # fmt: skip
        excess = _mc_excess(estimates, errors)
        if excess <= 1.0 or draws >= max_draws:
            break
        # The MC variance falls as 1 / draws: aim a quarter below the bar.
        draws = min(max_draws, math.ceil(draws * excess**2 * 1.25))
    met = excess <= 1.0
    final = {
        name: _widened(est._replace(mc_error=errors[name]), met) for name, est in estimates.items()
    }
    weights = columns.target.mean(axis=0) / columns.logged
    return {
        "policy": spec.name,
        "lists": int(columns.shown.size),
        "impressions": int(columns.reward.size),
        "logged_ctr": float(np.mean(columns.reward)),
        "effective_sample_size": float(weights.sum() ** 2 / max(1e-300, (weights**2).sum())),
        "skipped": columns.skipped,
        "candidates": columns.candidates,
        "target_propensities": {
            "kind": "monte-carlo" if target.batches > 1 else "exact",
            "draws_per_list": draws if target.batches > 1 else 0,
            "batches": target.batches,
            "mc_within_bar": met,
        },
        "estimates": {name: est._asdict() for name, est in final.items()},
    }


@dataclass
class _Columns:
    """What the estimators take: per impression, per list, target terms per MC batch."""

    lists: IndexArray
    reward: FloatArray
    logged: FloatArray
    target: FloatArray  # (batches, impressions)
    reward_hat: FloatArray
    direct: FloatArray  # (batches, lists)
    shown: FloatArray
    skipped: dict[str, int]
    candidates: dict[str, int]


def _columns(
    lines: list[LoggedList],
    spec: PolicySpec,
    state: ArmState,
    target: Target,
    rng: np.random.Generator,
    n_draws: int,
    half_life_s: float,
    advance: Callable[[int], None],
) -> _Columns:
    """Return the estimators' inputs for the lists the target can be evaluated on."""
    index = {item: i for i, item in enumerate(state.item_ids)}
    catalog = np.arange(len(index))
    reward_model = _reward_model(state)
    list_of: list[int] = []
    reward: list[float] = []
    logged: list[float] = []
    target_parts: list[FloatArray] = []
    r_hat: list[float] = []
    direct: list[FloatArray] = []
    shown: list[float] = []
    skipped = {"other_generation": 0, "no_impressions": 0, "unknown_items": 0}
    candidates = {"served_all": 0, "catalog": 0}
    for number, (line, unclicked) in enumerate(_with_unclicked(lines, index, half_life_s)):
        if number % 1000 == 999:
            advance(1000)
        if any(item.item_id not in index for item in line.items):
            skipped["unknown_items"] += 1
            continue
        row = state.n_clusters
        if spec.per_cluster and line.cluster is not None and state.n_clusters:
            if state.gen is not None and line.gen != state.gen:
                skipped["other_generation"] += 1
                continue
            row = min(line.cluster, state.n_clusters - 1)
        seen = [item for item in line.items if item.impression]
        if not seen:
            skipped["no_impressions"] += 1
            continue
        positions = np.array([index[item.item_id] for item in seen])
        if len(line.items) == line.n_candidates:
            # Every candidate was served, so the candidates are known: any target that fills
            # min(k, n) slots serves all of them.
            at = np.array([index[item.item_id] for item in line.items])
            probs = np.ones((target.batches, at.size))
            seen_at = np.flatnonzero([item.impression for item in line.items])
            candidates["served_all"] += 1
        else:
            # The log does not list the candidates: the items known to the state stand in.
            at, seen_at = catalog, positions
            slate = Slate(row, at, line.k, line.n_candidates, unclicked)
            probs = np.broadcast_to(
                target.inclusion(slate, rng, n_draws), (target.batches, at.size)
            )
            candidates["catalog"] += 1
        list_of.extend([len(shown)] * len(seen))
        reward.extend(float(item.click) for item in seen)
        logged.extend(float(item.propensity or 0.0) for item in seen)
        target_parts.append(probs[:, seen_at])
        r_hat.extend(reward_model[row, positions].tolist())
        # The target's expected clicks per slot, times the slots this list had impressions in:
        # its inclusion chances add up to the slots it fills, so divide by their sum.
        direct.append(len(seen) * (probs @ reward_model[row, at]) / probs.sum(axis=1))
        shown.append(float(len(seen)))
    advance(len(lines) % 1000)
    if not shown:
        raise ValueError(f"no logged list could be evaluated for {spec.name!r}: {skipped}")
    return _Columns(
        np.array(list_of, dtype=np.intp),
        np.array(reward),
        np.array(logged),
        np.concatenate(target_parts, axis=1),
        np.array(r_hat),
        np.stack(direct, axis=1),
        np.array(shown),
        skipped,
        candidates,
    )


def _typed(lines: Sequence[LoggedList | Mapping[str, Any]]) -> list[LoggedList]:
    """Return the lists typed, oldest first; a record is validated, numbered by its position."""
    typed = [
        line if isinstance(line, LoggedList) else parse_record(dict(line), number)
        for number, line in enumerate(lines, 1)
    ]
    return sorted(typed, key=lambda line: line.ts)


def _require_propensities(lines: Sequence[LoggedList]) -> None:
    """Refuse logs whose seen items carry no propensity: nothing can weight them."""
    for line in lines:
        for position, item in enumerate(line.items):
            if item.impression and item.propensity is None:
                raise LogLineError(
                    f"line {line.number}: items[{position}].propensity: null, so the list "
                    "cannot be weighted (the service writes null when it runs with "
                    "BANDITREC_PROPENSITY_SAMPLES=0; serve with it above 0 to evaluate its logs)"
                )


def _mc_excess(estimates: dict[str, Estimate], errors: dict[str, float]) -> float:
    """Return the largest Monte-Carlo error in units of MC_SHARE of the bootstrap's (<= 1: ok)."""
    worst = 0.0
    for name, est in estimates.items():
        if errors[name] == 0.0 or math.isnan(est.se):
            continue
        bar = MC_SHARE * est.se
        worst = max(worst, errors[name] / bar if bar > 0 else math.inf)
    return worst


def _widened(est: Estimate, met: bool) -> Estimate:
    """Return the estimate, its interval widened by the MC error unless that is within the bar."""
    if met or est.mc_error == 0.0:
        return est
    z = 1.959963984540054  # the 95% interval's normal quantile
    low = est.value - math.hypot(est.value - est.low, z * est.mc_error)
    high = est.value + math.hypot(est.high - est.value, z * est.mc_error)
    return est._replace(low=low, high=high)


def _reward_model(state: ArmState) -> FloatArray:
    """Return CTR per (row, item), shrunk towards the overall CTR: DR's reward model."""
    overall = float(state.clicks[-1].sum()) / max(1.0, float(state.impressions[-1].sum()))
    model: FloatArray = (state.clicks + SHRINK_IMPRESSIONS * overall) / (
        state.impressions + SHRINK_IMPRESSIONS
    )
    return model


def _with_unclicked(
    lines: list[LoggedList], index: dict[str, int], half_life_s: float
) -> Iterator[tuple[LoggedList, FloatArray]]:
    """Yield each line with its user's fading unclicked counts just before it was served."""
    counts: dict[str, FloatArray] = {}
    touched: dict[str, float] = {}
    n_items = len(index)
    for line in lines:
        user, ts = line.user_id, line.ts
        row = counts.setdefault(user, np.zeros(n_items))
        if user in touched:
            row[:] = decayed_counts(row, np.full(n_items, ts - touched[user]), half_life_s)
        touched[user] = ts
        yield line, row
        for item in line.items:
            position = index.get(item.item_id)
            if position is None or not item.impression:
                continue
            row[position] = 0.0 if item.click else row[position] + 1.0


def format_result(result: dict[str, Any]) -> str:
    """Return a short human summary of an evaluate result."""
    lines = [
        f"policy {result['policy']}: {result['lists']} lists, {result['impressions']} "
        f"impressions, logged CTR {result['logged_ctr']:.4f}, "
        f"effective sample size {result['effective_sample_size']:.0f}",
    ]
    for name, est in result["estimates"].items():
        e = Estimate(**est)
        mc = f"  (MC error {e.mc_error:.4f})" if e.mc_error else ""
        lines.append(f"  {name:5s} {e.value:.4f}  [{e.low:.4f}, {e.high:.4f}]{mc}")
    propensities = result.get("target_propensities", {})
    if propensities.get("kind") == "monte-carlo":
        within = (
            f"Monte-Carlo error <= {MC_SHARE:g} x the bootstrap's"
            if propensities["mc_within_bar"]
            else "Monte-Carlo error above the bar at the cap: intervals widened by it"
        )
        lines.append(
            f"  target propensities: {propensities['draws_per_list']} draws per list; {within}"
        )
    candidates = result.get("candidates", {})
    if candidates.get("catalog"):
        lines.append(
            f"  candidates: {candidates['served_all']} lists served all of theirs; for the "
            f"other {candidates['catalog']} the state's items stood in (not logged)"
        )
    if any(result["skipped"].values()):
        lines.append(f"  skipped: {result['skipped']}")
    return "\n".join(lines)
