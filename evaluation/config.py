"""Simulation settings: one frozen dataclass, loadable from TOML or JSON, overridable per field."""

from __future__ import annotations

import dataclasses
import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from bandits.validation import positive_int, real_scalar
from evaluation.policies import DEFAULT_POLICIES, parse_policy
from evaluation.world import WorldConfig

# n_clusters = AUTO: each fit's k is chosen from the history so far, as the service does
# for a fit without k (bandits.clusters_for_history).
AUTO = "auto"
DEFAULT_CLUSTERS = 8


@dataclass(frozen=True)
class SimConfig:
    """Everything one `banditrec simulate` run depends on, besides the output folder."""

    world: WorldConfig = field(default_factory=WorldConfig)
    policies: tuple[str, ...] = DEFAULT_POLICIES
    impressions: int = 200_000
    k: int = 5
    seed: int = 0
    epsilon: float = 0.1
    n_clusters: int | Literal["auto"] = DEFAULT_CLUSTERS
    # Cluster refits at first_refit, first_refit * growth, ... steps; each starts fresh arms.
    first_refit: int = 1000
    refit_growth: float = 4.0
    # Use the latent groups as clusters (a perfect clusterer) instead of k-means on histories.
    true_clusters: bool = False
    history_n: int = 50
    # Probability that the list item at position j is seen is position_decay ** j.
    position_decay: float = 1.0
    # Metrics rows in the CSV: one per `window` steps.
    window: int = 500
    mabwiser_batch: int = 100
    # Steps between recomputations of the priors (catalog, affinity), as the service
    # recomputes them at each snapshot refresh; counts themselves count at once.
    snapshot_every: int = 1
    # Write NDJSON logs (with Monte-Carlo propensities) for this Thompson policy.
    log_policy: str | None = None
    propensity_draws: int = 100

    def __post_init__(self) -> None:
        if not self.policies:
            raise ValueError("policies must name at least one policy, got ()")
        for name in self.policies:
            parse_policy(name)
        if self.log_policy is not None:
            if not parse_policy(self.log_policy).thompson:
                raise ValueError(
                    f"log_policy must be a Thompson policy (*-ts*), got {self.log_policy!r}"
                )
            if self.log_policy not in self.policies:
                raise ValueError(f"log_policy {self.log_policy!r} is not among the policies")
        for name in ("impressions", "k", "first_refit", "history_n", "window"):
            positive_int(name, getattr(self, name))
        if self.n_clusters != AUTO and (
            isinstance(self.n_clusters, bool)
            or not isinstance(self.n_clusters, int)
            or self.n_clusters < 1
        ):
            raise ValueError(
                f"n_clusters must be an integer >= 1 or {AUTO!r}, got {self.n_clusters!r}"
            )
        positive_int("mabwiser_batch", self.mabwiser_batch)
        positive_int("snapshot_every", self.snapshot_every)
        positive_int("propensity_draws", self.propensity_draws)
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be an integer >= 0, got {self.seed!r}")
        if self.k > self.world.n_items:
            raise ValueError(f"k must be <= n_items ({self.world.n_items}), got {self.k!r}")
        if self.impressions < self.k:
            raise ValueError(f"impressions must be >= k ({self.k}), got {self.impressions!r}")
        if not 0.0 <= real_scalar("epsilon", self.epsilon) <= 1.0:
            raise ValueError(f"epsilon must be in [0, 1], got {self.epsilon!r}")
        if real_scalar("refit_growth", self.refit_growth) < 1.0:
            raise ValueError(f"refit_growth must be >= 1, got {self.refit_growth!r}")
        if not 0.0 < real_scalar("position_decay", self.position_decay) <= 1.0:
            raise ValueError(f"position_decay must be in (0, 1], got {self.position_decay!r}")

    @property
    def n_steps(self) -> int:
        """Return the number of served lists: impressions // k."""
        return self.impressions // self.k

    def refit_steps(self) -> list[int]:
        """Return the steps at which clusters are refitted."""
        steps: list[int] = []
        at = float(self.first_refit)
        while at < self.n_steps:
            if not steps or int(at) > steps[-1]:
                steps.append(int(at))
            at = at * self.refit_growth if self.refit_growth > 1.0 else at + self.first_refit
        return steps


WORLD_FIELDS = {f.name for f in dataclasses.fields(WorldConfig)}
SIM_FIELDS = {f.name for f in dataclasses.fields(SimConfig)} - {"world"}


def load_config(path: Path | None, overrides: dict[str, Any]) -> SimConfig:
    """Return the config from a TOML/JSON file (optional), with ``overrides`` applied last.

    The file holds sim fields at the top level and world fields in a ``[world]`` table;
    ``overrides`` may mix both (None values are ignored).
    """
    values: dict[str, Any] = {}
    if path is not None:
        text = path.read_text()
        values = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    world_values = dict(values.pop("world", {}))
    for key, value in overrides.items():
        if value is None:
            continue
        (world_values if key in WORLD_FIELDS else values)[key] = value
    unknown = (set(values) - SIM_FIELDS) | (set(world_values) - WORLD_FIELDS)
    if unknown:
        raise ValueError(f"unknown config keys: {', '.join(sorted(unknown))}")
    if "policies" in values:
        values["policies"] = tuple(values["policies"])
    return SimConfig(world=WorldConfig(**world_values), **values)


def config_dict(config: SimConfig) -> dict[str, Any]:
    """Return ``config`` as plain JSON-ready values (the form load_config reads back)."""
    values = dataclasses.asdict(config)
    values["policies"] = list(config.policies)
    return values
