"""World families: the kinds of world a default must hold in, not only the one it was tuned on."""

from __future__ import annotations

from dataclasses import replace

from evaluation.world import WorldConfig

# Each family changes the default world where issue 13 found a default failing. Users
# arrive uniformly, so one user's visits are n_users steps apart on average.
FAMILIES: dict[str, WorldConfig] = {
    # The world every earlier table was measured on.
    "default": WorldConfig(),
    # Users tire harder of an ignored item (x0.4 each) but recover within a visit or two
    # (half-life 1 000 steps = half a visit); the fixed decay assumes 4 000 steps.
    "fast-recovery": WorldConfig(fatigue=0.4, fatigue_half_life=1000.0),
    # Few clicks per user: CTRs about a third, 3 items read before instead of 10, noisier
    # embeddings, and 800 items where a user sees ~40-100 in a run.
    "sparse": WorldConfig(n_items=800, base_logit=-5.5, prior_reads=3, embedding_noise=0.9),
    # 32 small taste groups (about 60 users each) against 8 clusters by default.
    "many-groups": WorldConfig(n_groups=32, n_items=300),
    # Half the items change quality halfway through the run.
    "drift": WorldConfig(drift_at=0.5, drift_share=0.5, quality_sd=0.7),
}


def family(name: str) -> WorldConfig:
    """Return the world config of the family ``name``."""
    try:
        return FAMILIES[name]
    except KeyError:
        raise ValueError(f"unknown family {name!r}; choose from {', '.join(FAMILIES)}") from None


def families(names: list[str] | tuple[str, ...]) -> dict[str, WorldConfig]:
    """Return the named families in order ("all": every one)."""
    if list(names) == ["all"]:
        return dict(FAMILIES)
    return {name: family(name) for name in names}


def shrunk(config: WorldConfig, n_users: int) -> WorldConfig:
    """Return ``config`` with fewer users, every other field as it is (for quick tests)."""
    return replace(config, n_users=n_users, n_groups=min(config.n_groups, n_users))
