"""The seen decay as served: the fixed decay times a correction learned per fatigue bucket.

The fixed decay (seen_gamma per unclicked impression, faded by seen_half_life_h) reads each
item's exact faded count; the correction, learned per coarser bucket (plain unclicked count,
age of the last), only says where users tire or recover otherwise, and its prior is 1 ("the
fixed decay is right"). So where the fixed decay is right the service serves it, and where
users recover faster the evidence lifts it. Evidence (impressions, clicks, and clicks
expected under the fixed decay, per bucket) is counted at feedback by record_counts.lua,
under the same dedupe verdict as the arm counts; at each snapshot refresh that moved the
counts, `SeenDecay.learn` turns it into the correction's posterior (bandits.fatigue).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from bandits import correction_base, decayed_counts, seen_decay
from bandits.fatigue import (
    DecayPosterior,
    FatigueBuckets,
    decay_posterior,
    decay_prior,
    fit_decay_strength,
)
from service.config import Settings
from service.stats_schemas import DecayCell, DecayEvidence, SeenDecayMode, SeenDecayOut
from service.store import Seen
from service.store.codecs import ServedList, fatigue_field

# Unclicked counts 1..4+ x age of the last unclicked impression: < 1 h, 1-4 h, 4-16 h,
# 16-64 h, 64-256 h, > 256 h (log-spaced, so both fast and slow recovery show).
BUCKETS = FatigueBuckets()
# Monte-Carlo draws behind the 90% band /v1/stats shows.
_BAND_DRAWS = 2000
# Thompson draws of the correction made per relearn; a list is served with one of them, picked
# at random: 25 gamma draws per request cost ~40 us, an index into these ~1 us.
_CURVE_DRAWS = 256
# A fixed stream, so that the band /v1/stats shows moves only with the evidence.
_BAND_SEED = 13


@dataclass(frozen=True, slots=True)
class SeenDecay:
    """The learned correction of one snapshot: its evidence and posterior, and the fixed decay."""

    mode: SeenDecayMode
    # The correction prior's worth in impressions per bucket, as served; fitted or set.
    strength: float
    strength_fitted: bool
    # (3, BUCKETS.size): impressions, clicks and clicks expected under the fixed decay.
    evidence: np.ndarray
    # The fixed decay at each bucket's typical age: what the grid shows the correction of.
    prior: np.ndarray
    # The correction's posterior (prior 1 in every bucket).
    posterior: DecayPosterior
    # The correction's posterior mean per bucket.
    curve: np.ndarray
    # (_CURVE_DRAWS, BUCKETS.size) Thompson draws of the correction.
    curves: np.ndarray

    @classmethod
    def learn(cls, settings: Settings, evidence: np.ndarray | None = None) -> SeenDecay:
        """Return the correction the evidence gives, shrunk toward 1 (no evidence: 1)."""
        if evidence is None:
            evidence = np.zeros((3, BUCKETS.size))
        prior = decay_prior(BUCKETS, settings.seen_gamma, settings.seen_half_life_s)
        impressions, clicks, expected = evidence
        # A click implies an impression: clicks counted before theirs still had one.
        shown = np.maximum(impressions, clicks)
        no_correction = np.ones(BUCKETS.size)
        setting = settings.seen_decay_prior_strength
        fitted = setting == "auto"
        strength = (
            fit_decay_strength(shown, clicks, expected, no_correction)
            if setting == "auto"
            else setting
        )
        posterior = decay_posterior(shown, clicks, expected, no_correction, strength)
        # Seeded by the evidence: the same counts give the same draws on every worker and run.
        rng = np.random.default_rng(np.frombuffer(evidence.tobytes(), dtype=np.uint32))
        curves = posterior.draws(rng, _CURVE_DRAWS)
        mean = posterior.mean()
        return cls(settings.seen_decay, strength, fitted, evidence, prior, posterior, mean, curves)

    def band(self) -> tuple[np.ndarray, np.ndarray]:
        """Return the 5% and 95% quantiles of each bucket's correction."""
        return self.posterior.interval(_BAND_DRAWS, np.random.default_rng(_BAND_SEED))


class SeenArrays(NamedTuple):
    """A user's seen items as arrays: faded counts, when the last was, plain counts."""

    faded: np.ndarray
    updated: np.ndarray
    unclicked: np.ndarray

    @classmethod
    def of(cls, seen: Iterable[Seen]) -> SeenArrays:
        """Return the arrays of the given seen entries, in their order."""
        rows = list(seen)
        if not rows:
            return cls(np.zeros(0), np.zeros(0), np.zeros(0))
        faded, updated, unclicked = (np.array(col, dtype=float) for col in zip(*rows, strict=True))
        return cls(faded, updated, unclicked)


@dataclass(frozen=True, slots=True)
class SeenPenalty:
    """One user's seen items in a catalog: positions, fatigue buckets and score multipliers.

    `bases` is the fixed decay of each: the expectation the learned correction is measured
    against, whatever the mode serves.
    """

    positions: np.ndarray
    buckets: np.ndarray
    multipliers: np.ndarray
    bases: np.ndarray


def seen_penalty(
    decay: SeenDecay,
    settings: Settings,
    positions: np.ndarray,
    seen: SeenArrays,
    now: float,
    rng: np.random.Generator | None,
) -> SeenPenalty:
    """Return the bucket, multiplier and fixed decay of each seen item.

    The fixed decay reads the exact faded count; the learned modes serve it (the count
    capped at the last row's) times the correction of the item's bucket: the plain unclicked
    count since the last click (capped) and the age of the last, as the simulator buckets.
    `rng` picks this list's draw of the correction in "learned" mode; without one (a read
    view) the posterior mean is used. One curve of 25 corrections, then one index per seen
    item.
    """
    ages = now - seen.updated
    buckets = BUCKETS.index_trusted(seen.unclicked, ages)
    faded = decayed_counts(seen.faded, ages, settings.seen_half_life_s)
    # The correction's base counts at most the last row's n (bandits.correction_base).
    bases = correction_base(faded, settings.seen_gamma, BUCKETS)
    if decay.mode == "learned" and rng is not None:
        multipliers = bases * decay.curves[rng.integers(len(decay.curves))][buckets]
    elif decay.mode in ("learned", "learned-mean"):
        multipliers = bases * decay.curve[buckets]
    elif decay.mode == "fixed":
        multipliers = seen_decay(faded, settings.seen_gamma)
    else:
        multipliers = np.ones(len(positions))
    return SeenPenalty(positions, buckets, multipliers, bases)


def evidence_of(rec: ServedList, kind: str, item_id: str) -> tuple[tuple[str, float], ...]:
    """Return the fatigue-hash increments of one new event on an item of a logged list.

    An impression adds 1 impression and the clicks logged as expected of it under the fixed
    decay (arm mean x tilt x fixed decay) to the item's bucket; a click adds 1 click. Lists
    logged without them (earlier releases) add nothing: their expectation meant otherwise.
    """
    if kind not in ("imp", "clk") or rec.fatigue is None or rec.expected is None:
        return ()
    at = rec.items.index(item_id)
    bucket = rec.fatigue[at]
    if kind == "clk":
        return ((fatigue_field("cclk", bucket), 1.0),)
    return (
        (fatigue_field("cimp", bucket), 1.0),
        (fatigue_field("cexp", bucket), rec.expected[at]),
    )


def seen_decay_out(decay: SeenDecay) -> SeenDecayOut:
    """Return the decay as /v1/stats shows it: the (unclicked, age band) grid and evidence.

    A cell's multiplier is the fixed decay at the band's typical age (`prior`) times the
    correction's mean; its band is the prior times the correction's.
    """
    low, high = decay.band()
    impressions, clicks, expected = decay.evidence
    prior = decay.prior
    shown = (prior * decay.curve, prior * low, prior * high, prior, decay.curve)
    grids = [BUCKETS.grid(values) for values in shown]
    counts = [BUCKETS.grid(values) for values in (impressions, clicks, expected)]
    edges_h = [0.0, *(edge / 3600.0 for edge in BUCKETS.age_edges)]
    cells = [
        [
            DecayCell(
                multiplier=round(float(grids[0][n, a]), 4),
                ci90=(round(float(grids[1][n, a]), 4), round(float(grids[2][n, a]), 4)),
                prior=round(float(grids[3][n, a]), 4),
                correction=round(float(grids[4][n, a]), 4),
                impressions=float(counts[0][n, a]),
                clicks=float(counts[1][n, a]),
                expected=round(float(counts[2][n, a]), 4),
            )
            for a in range(BUCKETS.n_ages)
        ]
        for n in range(BUCKETS.max_unclicked)
    ]
    return SeenDecayOut(
        mode=decay.mode,
        prior_strength=round(decay.strength, 2),
        prior_strength_fitted=decay.strength_fitted,
        unclicked=list(range(1, BUCKETS.max_unclicked + 1)),
        age_bands_h=[(lo, hi) for lo, hi in zip(edges_h, [*edges_h[1:], None], strict=True)],
        fresh=DecayEvidence(
            impressions=float(impressions[0]),
            clicks=float(clicks[0]),
            expected=round(float(expected[0]), 4),
        ),
        cells=cells,
    )
