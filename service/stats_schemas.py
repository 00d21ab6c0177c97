"""Response models of GET /v1/stats and GET /v1/overview: served-list counters, the learned
seen decay, the cluster arms' lift and prior, and the dashboard's overview."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

SeenDecayMode = Literal["learned", "learned-mean", "fixed", "off"]


class DecayEvidence(BaseModel):
    """Feedback counted in one fatigue bucket (impressions on logged lists only)."""

    impressions: float
    clicks: float
    expected: float = Field(
        description="Clicks expected under the fixed decay: the sum, over the bucket's "
        "impressions, of the served arm's posterior mean CTR x the personal tilt x the "
        "fixed seen decay of the item."
    )


class DecayCell(DecayEvidence):
    """One (unclicked count, age band) bucket: the fixed decay, its learned correction, and
    the evidence."""

    multiplier: float = Field(
        description="The click-chance multiplier at the band's typical age: prior x correction."
    )
    ci90: tuple[float, float] = Field(
        description="5% and 95% quantiles of the multiplier (prior x the correction's)."
    )
    prior: float = Field(
        description="The fixed decay at the band's typical age: "
        "seen_gamma ** (unclicked * 2 ** (-age / seen_half_life))."
    )
    correction: float = Field(
        description="Posterior mean of the learned correction to the fixed decay (prior 1: "
        "the fixed decay is right); above 1 where users recover faster than it assumes."
    )


class SeenDecayOut(BaseModel):
    """The learned seen decay: the fixed decay times a correction per (unclicked count, age
    band), learned from the service's feedback.

    A user's item is in row n when they saw it n times without clicking since their last
    click on it (the last row: n or more), and in the column of the age band its latest
    such impression falls in.
    """

    mode: SeenDecayMode = Field(
        description="How lists are served (BANDITREC_SEEN_DECAY): learned-mean (the fixed "
        "decay x the correction's mean), learned (x one draw of the correction per list), "
        "fixed (seen_gamma and seen_half_life_h), off."
    )
    prior_strength: float = Field(
        description="Impressions the correction's prior (1: the fixed decay is right) is worth "
        "per bucket, as served."
    )
    prior_strength_fitted: bool = Field(
        description="Whether prior_strength was fitted to the evidence "
        "(BANDITREC_SEEN_DECAY_PRIOR_STRENGTH=auto) rather than set."
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


class ClusterLift(BaseModel):
    """One cluster's top-m by its own arms against the global arms' top-m."""

    cluster: int
    traffic: float = Field(description="Impressions counted in this cluster's arms (events).")
    cluster_ctr: float = Field(
        description="Mean posterior CTR, in this cluster, of the m items its own arms rank first."
    )
    global_ctr: float = Field(
        description="Mean posterior CTR, in this cluster, of the m items the global arms rank "
        "first."
    )
    lift: float | None = Field(description="cluster_ctr / global_ctr; null if global_ctr is 0.")


class MeasuredLift(BaseModel):
    """How much better the cluster arms predicted the service's own clicks than the global
    arms, on lists ranked by cluster arms: the mean log loss per impression of each arm
    set's posterior mean at serving time (before seen decay), counted exactly once per
    event like the arm counts."""

    impressions: float = Field(description="Impressions counted on such lists.")
    clicks: float = Field(description="Clicks counted on them.")
    log_loss_cluster: float = Field(
        description="Mean log loss (nats per impression) of the cluster arms' means."
    )
    log_loss_global: float = Field(
        description="Mean log loss (nats per impression) of the global arms' means."
    )
    gain: float = Field(
        description="log_loss_global - log_loss_cluster: > 0 when the cluster arms predicted "
        "the clicks better."
    )
    relative_gain: float | None = Field(
        description="gain / log_loss_global: the share of the global arms' log loss the "
        "cluster arms removed."
    )


class LiftOut(BaseModel):
    """What per-cluster arms add over one global ranking, judged by each cluster's posteriors."""

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "gen": 3,
                    "top_m": 10,
                    "cluster_ctr": 0.061,
                    "global_ctr": 0.043,
                    "lift": 1.42,
                    "clusters": [
                        {"cluster": 0, "traffic": 5200.0, "cluster_ctr": 0.07,
                         "global_ctr": 0.05, "lift": 1.4},
                        {"cluster": 1, "traffic": 3100.5, "cluster_ctr": 0.046,
                         "global_ctr": 0.031, "lift": 1.48},
                    ],
                }
            ]
        }
    }  # fmt: skip

    gen: int = Field(description="The clustering generation whose arms are compared.")
    top_m: int = Field(description="Items compared per ranking (fewer if fewer are active).")
    cluster_ctr: float | None = Field(
        description="Traffic-weighted mean of the clusters' cluster_ctr; null without traffic."
    )
    global_ctr: float | None = Field(
        description="Traffic-weighted mean of the clusters' global_ctr; null without traffic."
    )
    lift: float | None = Field(description="cluster_ctr / global_ctr, traffic-weighted.")
    measured: MeasuredLift | None = Field(
        None, description="Measured on the clicks themselves; null before any such impression."
    )
    clusters: list[ClusterLift]


class AffinityPriorOut(BaseModel):
    """The affinity prior's fitted values (BANDITREC_PRIOR=affinity)."""

    slope: float = Field(
        description="Logit slope of a cluster arm's prior CTR on the cosine of item and "
        "cluster centre; 0 before the first fit (the catalog prior)."
    )
    cluster_strength: float = Field(
        description="Pseudo-impressions a cluster arm's prior is worth: fitted (3-300) once "
        "the cluster arms hold 5 impressions each on average; before, per clustering, "
        "BANDITREC_PRIOR_STRENGTH if the catalog had shown 3 impressions per cluster arm, "
        "else 300."
    )
    strength_fitted: bool = Field(description="Whether cluster_strength was fitted yet.")
    fitted_at: float | None = Field(description="When slope and strength were last fitted.")
    personal_tilt: float = Field(description="BANDITREC_PERSONAL_TILT: the per-user share.")


class ClickStats(BaseModel):
    """Impressions and clicks of some served items, and their CTR."""

    impressions: int
    clicks: int
    ctr: float | None = Field(
        description="clicks / max(impressions, clicks): a click implies an impression, so "
        "never above 1; null before any impression or click."
    )
    ctr_ci95: tuple[float, float] | None = Field(
        description="95% interval of the CTR: Beta(1 + clicks, 1 + non-clicks)."
    )


class PolicyStats(ClickStats):
    """Feedback on the lists one policy served."""

    lists: int
    conversions: int


class StatsOut(BaseModel):
    """The serving policies compared online, since `since` (or the last reset)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "mode": "baseline",
                    "baseline": "popularity",
                    "exploration": 0.1,
                    "since": 1795459874.6,
                    "policies": {
                        "baseline": {"lists": 9000, "impressions": 81000, "clicks": 2430,
                                     "conversions": 12, "ctr": 0.03, "ctr_ci95": [0.0289, 0.0312]},
                        "explore": {"lists": 1000, "impressions": 9000, "clicks": 180,
                                    "conversions": 1, "ctr": 0.02, "ctr_ci95": [0.0172, 0.0231]},
                    },
                    "agreement": {
                        "bandit": {"impressions": 40500, "clicks": 1620, "ctr": 0.04,
                                   "ctr_ci95": [0.0381, 0.042]}
                    },
                    "replay": {
                        "bandit": {"impressions": 2000, "clicks": 90, "ctr": 0.045,
                                   "ctr_ci95": [0.0367, 0.0549]},
                        "baseline": {"impressions": 2100, "clicks": 63, "ctr": 0.03,
                                     "ctr_ci95": [0.0235, 0.0383]},
                    },
                }
            ]
        }
    )  # fmt: skip

    mode: str
    baseline: str
    exploration: float
    since: float | None = Field(
        description="When the counters started: the last reset, or else the first feedback "
        "on a logged list."
    )
    policies: dict[str, PolicyStats] = Field(
        description="Per policy that served lists: bandit, explore, baseline."
    )
    agreement: dict[str, ClickStats] = Field(
        description="On lists that another policy served (not exploration), the served "
        "items this policy's list also had. Biased towards what both like; the "
        "Personalizer-apprentice view."
    )
    replay: dict[str, ClickStats] = Field(
        description="On exploration lists (served uniformly at random), the items this "
        "policy's list also had: their CTR estimates the policy's own CTR per item, free "
        "of the bias of who chose what was shown. Needs BANDITREC_EXPLORATION > 0."
    )
    cluster_lift: LiftOut | None = Field(
        None,
        description="Per cluster and traffic-weighted: the mean posterior CTR, in the "
        "cluster, of the top-m items its own arms rank first against the top-m of the global "
        "arms, from this worker's snapshot; null before the first snapshot.",
    )
    affinity_prior: AffinityPriorOut | None = Field(
        None,
        description="The affinity prior's fitted slope and strength; null unless "
        "BANDITREC_PRIOR=affinity.",
    )
    seen_decay: SeenDecayOut | None = Field(
        None,
        description="The learned seen-decay curve with its evidence, from this service's own "
        "feedback (not reset with the counters above); null from servers before it.",
    )


class CatalogOverview(BaseModel):
    """The catalog as the serving snapshot holds it."""

    items: int = Field(description="Items in the catalog (deleted ones are not).")
    active: int = Field(description="Items that may be served (not stored with active=false).")
    with_embedding: int
    version: int = Field(description="Bumped by every catalog write.")


class ClustersOverview(BaseModel):
    """The current clustering: generation 0 means no fit yet (one cluster, everyone in it)."""

    gen: int
    k: int
    sizes: list[int] = Field(description="Users per cluster at the fit; empty before one.")
    fitted_at: float | None = Field(description="Unix time of the fit.")
    inertia: float | None


class EventTotals(BaseModel):
    """Feedback events counted so far on the catalog's items (their global arms)."""

    impressions: int | float
    clicks: int | float
    conversions: int | float


class Overview(BaseModel):
    """What one worker serves from: catalog, clustering, counted events, snapshot age."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "catalog": {"items": 9, "active": 9, "with_embedding": 9, "version": 3},
                    "clusters": {
                        "gen": 1,
                        "k": 8,
                        "sizes": [41, 37, 52, 30, 45, 39, 28, 48],
                        "fitted_at": 1795459000.0,
                        "inertia": 112.4,
                    },
                    "events": {"impressions": 1840, "clicks": 97, "conversions": 4},
                    "arms_version": 212,
                    "snapshot_age_s": 0.41,
                }
            ]
        }
    )

    catalog: CatalogOverview
    clusters: ClustersOverview
    events: EventTotals = Field(
        description="Sums of the catalog items' global arm counts: accepted events per type "
        "(a deleted item's leave with it). With a count half-life (BANDITREC_HALF_LIFE_H) "
        "these are the discounted totals."
    )
    arms_version: int = Field(
        description="Count changes so far: each feedback batch adds one per count shard "
        "(BANDITREC_COUNT_SHARDS) in which it changed a count."
    )
    snapshot_age_s: float = Field(
        description="Seconds since this worker's snapshot was last confirmed current."
    )
