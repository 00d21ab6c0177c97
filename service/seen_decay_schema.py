"""The `seen_decay` section of GET /v1/stats: the learned seen-decay curve and its evidence."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

SeenDecayMode = Literal["learned", "learned-mean", "fixed", "off"]


class DecayEvidence(BaseModel):
    """Feedback counted in one fatigue bucket (impressions on logged lists only)."""

    impressions: float
    clicks: float
    expected: float = Field(
        description="Expected clicks: the sum, over the bucket's impressions, of the served "
        "arm's posterior mean CTR before seen decay."
    )


class DecayCell(DecayEvidence):
    """One (unclicked count, age band) bucket: its learned multiplier and evidence."""

    multiplier: float = Field(description="Posterior mean of the click-chance multiplier.")
    ci90: tuple[float, float] = Field(description="5% and 95% quantiles of the multiplier.")
    prior: float = Field(
        description="The fixed decay at the band's typical age: "
        "seen_gamma ** (unclicked * 2 ** (-age / seen_half_life))."
    )


class SeenDecayOut(BaseModel):
    """The learned seen decay: a click-chance multiplier per (unclicked count, age band).

    A user's item is in row n when they saw it n times without clicking since their last
    click on it (the last row: n or more), and in the column of the age band its latest
    such impression falls in.
    """

    mode: SeenDecayMode = Field(
        description="How lists are served (BANDITREC_SEEN_DECAY): learned (one draw of the "
        "curve per list), learned-mean, fixed (seen_gamma and seen_half_life_h), off."
    )
    prior_strength: float = Field(
        description="Impressions the prior (the fixed decay) is worth per bucket."
    )
    unclicked: list[int] = Field(description="Row labels; the last row is that many or more.")
    age_bands_h: list[tuple[float, float | None]] = Field(
        description="Column labels: [from, to) hours since the latest unclicked impression; "
        "null: no upper bound."
    )
    fresh: DecayEvidence = Field(
        description="Items not seen unclicked since the last click: the yardstick (multiplier 1)."
    )
    cells: list[list[DecayCell]] = Field(description="cells[row][column], rows as `unclicked`.")
