"""Every stored encoding, each writer next to its parser.

The Lua scripts under scripts/ write some of these strings too; tests/service hold the
two sides to one format.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

# Cluster counts are stored in millionths of an event, so that soft credit is an integer
# and the shares of one event add up to exactly one. Global counts are whole events.
MICRO = 1_000_000

# The count hashes per arm, in this order everywhere: impressions, clicks, conversions.
KINDS = ("imp", "clk", "cnv")
# Feedback event types and the count each one increments.
EVENT_KINDS = {"impression": "imp", "click": "clk", "conversion": "cnv"}


@dataclass(frozen=True, slots=True)
class ServedList:
    """One served list as logged under its rec_id: what feedback, stats and export read."""

    user_id: str
    gen: int
    cluster: int | None
    # Membership.encode() of the clusters the list was ranked for.
    membership: str
    ts: float
    surface: str
    item_id: str | None
    pools: dict[str, int] | None
    k: int
    n_candidates: int
    items: list[str]
    scores: list[float]
    propensities: list[float | None]
    policy: str
    # The lists the policies that did not serve would have served.
    shadows: dict[str, list[str]]

    def encode(self) -> str:
        """Return the JSON stored under the rec key."""
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def decode(cls, raw: bytes | str) -> ServedList:
        """Return the list stored by encode()."""
        return cls(**json.loads(raw))
