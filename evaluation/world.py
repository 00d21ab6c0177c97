"""A synthetic world: users in latent taste groups, item embeddings, true click probabilities."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from bandits.validation import generator, positive_int, real_scalar
from clustering import normalize_rows

FloatArray = NDArray[np.float64]
IndexArray = NDArray[np.intp]


@dataclass(frozen=True)
class WorldConfig:
    """Shape of a synthetic world; every field is validated once, here."""

    n_users: int = 2000
    n_groups: int = 8
    n_items: int = 200
    dim: int = 16
    # Logit of the click probability: base + quality_i + taste * cos(group centre, item).
    base_logit: float = -4.4
    quality_sd: float = 0.5
    taste: float = 2.2
    # How far item embeddings stray from their home group's centre (noise norm ~ this).
    embedding_noise: float = 0.6
    # Click chance multiplier per earlier unclicked impression of the same item to the user.
    fatigue: float = 0.7
    # Ignored impressions fade by half every this many steps (math.inf: never), for the
    # world's fatigue and for the policies' seen decay alike (the service's half-life).
    fatigue_half_life: float = 4000.0
    # Items each user read before the run (drawn from their taste): the history clustering
    # starts from, as a deployed recommender finds on its platform.
    prior_reads: int = 10
    # Fraction of the run after which item qualities are re-drawn (None: no drift).
    drift_at: float | None = None
    # Share of items whose quality is re-drawn at the drift.
    drift_share: float = 0.5

    def __post_init__(self) -> None:
        for name in ("n_users", "n_groups", "n_items", "dim"):
            positive_int(name, getattr(self, name))
        if self.n_users < self.n_groups:
            raise ValueError(f"n_users must be >= n_groups, got n_users={self.n_users!r}")
        for name in ("base_logit", "quality_sd", "taste", "embedding_noise"):
            real_scalar(name, getattr(self, name))
        if self.quality_sd < 0 or self.embedding_noise < 0:
            raise ValueError(
                f"quality_sd and embedding_noise must be >= 0, got {self.quality_sd!r}, "
                f"{self.embedding_noise!r}"
            )
        if not 0.0 < real_scalar("fatigue", self.fatigue) <= 1.0:
            raise ValueError(f"fatigue must be in (0, 1], got {self.fatigue!r}")
        if not real_scalar("fatigue_half_life", self.fatigue_half_life) > 0.0:
            raise ValueError(f"fatigue_half_life must be > 0, got {self.fatigue_half_life!r}")
        if isinstance(self.prior_reads, bool) or not isinstance(self.prior_reads, int):
            raise ValueError(f"prior_reads must be an integer >= 0, got {self.prior_reads!r}")
        if self.prior_reads < 0:
            raise ValueError(f"prior_reads must be an integer >= 0, got {self.prior_reads!r}")
        if self.drift_at is not None and not 0.0 < real_scalar("drift_at", self.drift_at) < 1.0:
            raise ValueError(f"drift_at must be in (0, 1) or None, got {self.drift_at!r}")
        if not 0.0 <= real_scalar("drift_share", self.drift_share) <= 1.0:
            raise ValueError(f"drift_share must be in [0, 1], got {self.drift_share!r}")


@dataclass(frozen=True)
class World:
    """The ground truth of one seeded world; arrays are never modified after build."""

    config: WorldConfig
    group_of_user: IndexArray  # (n_users,)
    embeddings: FloatArray  # (n_items, dim), unit rows
    home_group: IndexArray  # (n_items,)
    probs: FloatArray  # (n_groups, n_items) true click probability before drift
    probs_after_drift: FloatArray  # equal to probs when there is no drift
    prior_history: IndexArray  # (n_users, prior_reads) items read before the run, oldest first

    @property
    def n_users(self) -> int:
        """Return the number of users."""
        return int(self.group_of_user.size)

    @property
    def n_items(self) -> int:
        """Return the number of items."""
        return int(self.embeddings.shape[0])

    def probs_at(self, step: int, n_steps: int) -> FloatArray:
        """Return the (n_groups, n_items) true click probabilities in force at ``step``."""
        drift_at = self.config.drift_at
        if drift_at is not None and step >= math.floor(drift_at * n_steps):
            return self.probs_after_drift
        return self.probs


def build_world(config: WorldConfig, rng: np.random.Generator) -> World:
    """Return a world drawn from ``config`` with ``rng``."""
    rng_ = generator("rng", rng)
    g, n_items, dim = config.n_groups, config.n_items, config.dim
    centres = normalize_rows(rng_.standard_normal((g, dim)))
    # Unequal group sizes, as real taste segments are.
    shares = rng_.dirichlet(np.full(g, 4.0))
    group_of_user = rng_.choice(g, size=config.n_users, p=shares).astype(np.intp)
    home_group = rng_.integers(g, size=n_items).astype(np.intp)
    noise = rng_.standard_normal((n_items, dim)) * (config.embedding_noise / math.sqrt(dim))
    embeddings = normalize_rows(centres[home_group] + noise)
    affinity = centres @ embeddings.T  # (g, n_items) cosine of group taste and item
    quality = rng_.normal(0.0, config.quality_sd, size=n_items)
    probs = _probs(config, affinity, quality)
    redraw = rng_.random(n_items) < config.drift_share
    drifted = np.where(redraw, rng_.normal(0.0, config.quality_sd, size=n_items), quality)
    after = _probs(config, affinity, drifted) if config.drift_at is not None else probs
    # Inverse-CDF draws per user from their group's click probabilities: one vectorised call.
    cdf = np.cumsum(probs, axis=1)
    cdf /= cdf[:, -1:]
    draws = rng_.random((config.n_users, config.prior_reads))
    history = np.empty((config.n_users, config.prior_reads), dtype=np.intp)
    for group in range(g):
        rows = group_of_user == group
        history[rows] = np.searchsorted(cdf[group], draws[rows], side="right")
    history = np.minimum(history, n_items - 1)
    return World(config, group_of_user, embeddings, home_group, probs, after, history)


def _probs(config: WorldConfig, affinity: FloatArray, quality: FloatArray) -> FloatArray:
    logit = config.base_logit + quality[None, :] + config.taste * affinity
    return 1.0 / (1.0 + np.exp(-logit))
