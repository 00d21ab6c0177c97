"""Request and response models; every field has a bound."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from pydantic.config import JsonDict

# Ids avoid braces and '|' so they can sit inside Redis hash tags and packed values.
ID_PATTERN = r"^[A-Za-z0-9_.:@-]{1,128}$"
NAME_PATTERN = r"^[A-Za-z0-9_.:@-]{1,64}$"
MAX_DIM = 4096
MAX_CANDIDATES = 10_000

Id = Annotated[str, StringConstraints(pattern=ID_PATTERN)]
Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]
FiniteFloat = Annotated[float, Field(allow_inf_nan=False, ge=-1e6, le=1e6)]


class Strict(BaseModel):
    """Rejects unknown fields, so a typo is an error rather than a silent default."""

    model_config = ConfigDict(extra="forbid", strict=True)


# One story runs through the examples: items i1..i9, user u42, the list _REC_EXAMPLE.
_REC_EXAMPLE = "3f2c9a0e5d7b4c1e8f6a2b9d0c4e7f15"
_ITEM_EXAMPLE: JsonDict = {
    "embedding": [0.12, -0.4, 0.88],
    "tags": ["drama"],
    "pools": ["new"],
    "active": True,
}


class ItemBody(Strict):
    """An item's content: embedding, tags, pools, and whether it may be served."""

    model_config = ConfigDict(json_schema_extra={"examples": [_ITEM_EXAMPLE]})

    embedding: list[FiniteFloat] | None = Field(
        None, min_length=1, max_length=MAX_DIM, examples=[[0.12, -0.4, 0.88]]
    )
    tags: list[Name] = Field(default_factory=list, max_length=64, examples=[["drama"]])
    pools: list[Name] = Field(default_factory=list, max_length=32, examples=[["new"]])
    active: bool = True


class ItemIn(ItemBody):
    """An item in a bulk upsert."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"item_id": "i1", **_ITEM_EXAMPLE}]})

    item_id: Id


class BulkItems(Strict):
    """Up to 1000 items written in one atomic call."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "items": [
                        {"item_id": "i1", **_ITEM_EXAMPLE},
                        {"item_id": "i2", "embedding": [0.3, 0.1, -0.5], "tags": ["action"]},
                    ]
                }
            ]
        }
    )

    items: list[ItemIn] = Field(min_length=1, max_length=1000)


class ItemOut(ItemBody):
    """An item as stored."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"item_id": "i1", **_ITEM_EXAMPLE, "updated": 1795459874.6}]
        }
    )

    item_id: str
    updated: float


class BulkResult(BaseModel):
    """How many items were written, and the catalog's embedding dimension."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"upserted": 2, "dim": 3}]})

    upserted: int
    dim: int | None = Field(
        description="The catalog's embedding dimension; null while no item has one."
    )


class RecommendRequest(Strict):
    """Ask for a ranked list for one user."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"user_id": "u42", "k": 10, "exclude": ["i7"]},
                {"user_id": "u42", "k": 5, "surface": "related", "item_id": "i7"},
                {"user_id": "u42", "k": 10, "pools": {"new": 2, "drama": 3}},
            ]
        },
    )

    user_id: Id
    k: int = Field(
        10, ge=1, le=100, description="Length of the list (shorter if fewer candidates)."
    )
    surface: Literal["home", "related"] = Field(
        "home",
        description="home: all active items (or candidates/pool); related: the items most "
        "similar to item_id by embedding.",
    )
    item_id: Id | None = Field(None, description="The item being viewed; surface=related only.")
    candidates: list[Id] | None = Field(
        None,
        min_length=1,
        max_length=MAX_CANDIDATES,
        description="Rank only these catalog items (surface=home); unknown ids are a 422.",
    )
    exclude: list[Id] = Field(
        default_factory=list,
        max_length=MAX_CANDIDATES,
        description="Never list these (e.g. already read); unknown ids are ignored.",
    )
    pool: Name | None = Field(None, description="Only items of this pool are candidates.")
    pools: dict[Name, Annotated[int, Field(ge=1, le=100)]] | None = Field(
        None,
        max_length=16,
        description="Places reserved per pool, filled in order by Thompson sampling within "
        "the pool; the rest of the list is filled from all candidates.",
    )


class ScoredItem(BaseModel):
    """One ranked item, the score it was ranked by, and its propensity."""

    item_id: str
    score: float = Field(
        description="What the list is ordered by: the sampled CTR x seen decay (bandit), a "
        "uniform draw (explore), global clicks or the place from the end of `candidates` "
        "(baseline); to 6 significant digits."
    )
    propensity: float | None = Field(
        None,
        description="Estimated chance that the service puts the item in this request's list: "
        "exploration share x uniform + the rest x the serving mode (Monte-Carlo for the "
        "bandit; null when BANDITREC_PROPENSITY_SAMPLES=0).",
    )


class ClusterWeight(BaseModel):
    """One cluster of a user's membership and its weight."""

    cluster: int
    weight: float


EmptyReason = Literal["catalog_empty", "no_candidates"]


class RecommendResponse(BaseModel):
    """A served list; name rec_id in feedback to credit the clusters it was served for."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "rec_id": _REC_EXAMPLE,
                    "user_id": "u42",
                    "cluster": 3,
                    "membership": [{"cluster": 3, "weight": 0.81}, {"cluster": 5, "weight": 0.19}],
                    "policy": "bandit",
                    "items": [
                        {"item_id": "i2", "score": 0.071, "propensity": 0.67},
                        {"item_id": "i9", "score": 0.044, "propensity": 0.42},
                    ],
                    "stale": False,
                },
                {
                    "rec_id": "9b1d4e7a2c5f8e3b6a0d9c2f5e8b1a47",
                    "user_id": "u42",
                    "cluster": 0,
                    "membership": [{"cluster": 0, "weight": 1.0}],
                    "policy": "bandit",
                    "items": [],
                    "stale": False,
                    "reason": "catalog_empty",
                },
            ]
        }
    )

    rec_id: str
    user_id: str
    cluster: int | None = Field(
        description="The heaviest cluster of the user's membership; null when the user has "
        "no history the clustering can place, and is served the global arms."
    )
    membership: list[ClusterWeight]
    policy: Literal["bandit", "explore", "baseline"] = Field(
        description="Who chose this list: the bandit, uniform exploration "
        "(BANDITREC_EXPLORATION), or the fixed baseline (BANDITREC_MODE=baseline)."
    )
    items: list[ScoredItem]
    stale: bool = Field(
        description="True when Redis could not be fully used: the snapshot is older than "
        "BANDITREC_STALE_AFTER_S (or was never loaded), the user could not be read, or "
        "served lists cannot be logged just now (they wait in the worker and are retried)."
    )
    reason: EmptyReason | None = Field(
        None,
        description="Why `items` is empty; null when it is not. catalog_empty: the service "
        "knows no item (none was put yet, or, with stale=true, the catalog could not be read); "
        "no_candidates: no active item is left after `candidates`, `pool`, `exclude` (and, for "
        "surface=related, after keeping the items with an embedding).",
    )


class FeedbackEvent(Strict):
    """One thing a user did: saw an item, clicked it, or converted (bought, paid to read)."""

    event_id: Id
    type: Literal["impression", "click", "conversion"]
    user_id: Id
    item_id: Id
    rec_id: Id | None = Field(
        None,
        description="The rec_id of the list that showed the item: the event is credited to "
        "the clusters that list was served for, and to its policy in /v1/stats.",
    )
    ts: float | None = Field(
        None,
        allow_inf_nan=False,
        description="Unix time of the event: no older than the dedupe retention "
        "(BANDITREC_DEDUPE_RETENTION_S), at most 300 s ahead of the service's clock.",
    )


class FeedbackBatch(Strict):
    """Up to 1000 events, validated as a whole before anything is written."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "events": [
                        {"event_id": "e1", "type": "impression", "user_id": "u42",
                         "item_id": "i2", "rec_id": _REC_EXAMPLE},
                        {"event_id": "e2", "type": "impression", "user_id": "u42",
                         "item_id": "i9", "rec_id": _REC_EXAMPLE},
                        {"event_id": "e3", "type": "click", "user_id": "u42",
                         "item_id": "i2", "rec_id": _REC_EXAMPLE},
                    ]
                }
            ]
        },
    )  # fmt: skip

    events: list[FeedbackEvent] = Field(min_length=1, max_length=1000)


class FeedbackResult(BaseModel):
    """New events counted, replays ignored, and rec_ids that named no logged list."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"accepted": 3, "duplicates": 0}]})

    accepted: int
    duplicates: int
    unknown_rec_ids: list[str] = Field(
        default_factory=list,
        description="rec_ids of this batch that name no logged list: never served, or "
        "expired after BANDITREC_REC_LOG_TTL_S. Their events are still counted once, "
        "credited to the user's current clusters, but cannot be joined to a served list "
        "for evaluation: check that the client sends the rec_id recommend returned.",
    )


_ARM_EXAMPLE: JsonDict = {
    "impressions": 1200,
    "clicks": 85,
    "conversions": 3,
    "conversion_rate": 0.037,
    "alpha": 86.0,
    "beta": 1116.0,
    "mean": 0.0715,
    "ci95": [0.0577, 0.0868],
}


class Arm(BaseModel):
    """Counts and Beta posterior of one arm (cluster counts are fractional when soft)."""

    impressions: int | float
    clicks: int | float
    conversions: int | float
    conversion_rate: float = Field(
        description="Posterior mean of conversions per click (shrunk to the catalog's rate)."
    )
    alpha: float
    beta: float
    mean: float
    ci95: tuple[float, float]


class ClusterArm(Arm):
    """An arm within one cluster."""

    cluster: int


class ItemArms(BaseModel):
    """An item's global arm and its arm in each cluster of the current clustering."""

    model_config = ConfigDict(
        populate_by_name=True,
        json_schema_extra={
            "examples": [
                {
                    "item_id": "i2",
                    "gen": 1,
                    "global": _ARM_EXAMPLE,
                    "clusters": [
                        {**_ARM_EXAMPLE, "cluster": 0},
                        {"cluster": 1, "impressions": 0, "clicks": 0, "conversions": 0,
                         "conversion_rate": 0.035, "alpha": 1.42, "beta": 18.58,
                         "mean": 0.071, "ci95": [0.0017, 0.2536]},
                    ],
                }
            ]
        },
    )  # fmt: skip

    item_id: str
    gen: int
    global_: Arm = Field(alias="global", serialization_alias="global")
    clusters: list[ClusterArm]


class RankedArm(Arm):
    """An arm in a cluster listing."""

    item_id: str


class ArmList(BaseModel):
    """One page of arms of a cluster (or the global arms), best mean first."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "cluster": 3,
                    "gen": 1,
                    "total": 9,
                    "arms": [{"item_id": "i2", **_ARM_EXAMPLE}],
                }
            ]
        }
    )

    cluster: int | None
    gen: int
    total: int
    arms: list[RankedArm]


class SeenItem(BaseModel):
    """An item the user saw without clicking, as seen decay currently weighs it."""

    item_id: str
    unclicked: float
    # The learned correction's row: impressions since the last click, not fading.
    ignored: int
    # As lists are served: in the learned modes the fixed decay x the correction's mean.
    multiplier: float
    updated: float


class UserOut(BaseModel):
    """What the service knows about a user."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "user_id": "u42",
                    "cluster": 3,
                    "membership": [{"cluster": 3, "weight": 0.81}, {"cluster": 5, "weight": 0.19}],
                    "gen": 1,
                    "recent_clicks": ["i2", "i5"],
                    "seen": [
                        {"item_id": "i9", "unclicked": 2.0, "ignored": 2, "multiplier": 0.64,
                         "updated": 1795459874.6},
                    ],
                }
            ]
        }
    )  # fmt: skip

    user_id: str
    cluster: int | None
    membership: list[ClusterWeight]
    gen: int
    recent_clicks: list[str]
    seen: list[SeenItem]


class FitRequest(Strict):
    """Fit k-means on the vectors of users with click history; every field has a default."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"k": 8, "seed": 7}, {}]})

    k: int | None = Field(
        None,
        ge=1,
        le=256,
        description="Number of clusters; omit to let the catalog's history choose 8, 16 or 32: "
        "the most whose cluster arms it covers with 3 impressions each (docs/semantics.md).",
    )
    seed: int | None = Field(
        None, ge=0, le=2**63 - 1, description="Seed of the k-means starts; omit for a fresh one."
    )


class FitResult(BaseModel):
    """The stored clustering."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"gen": 2, "k": 3, "n_users": 1200, "sizes": [480, 400, 320], "inertia": 312.5}
            ]
        }
    )

    gen: int
    k: int
    n_users: int
    sizes: list[int]
    inertia: float


class ErrorBody(BaseModel):
    """The one error shape."""

    code: str
    message: str
    field: str | None = None


class ErrorResponse(BaseModel):
    """Every 4xx/5xx body."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "error": {
                        "code": "unknown_item",
                        "message": "item 'i404' is not in the catalog",
                        "field": "events[0].item_id",
                    }
                }
            ]
        }
    )

    error: ErrorBody


class Liveness(BaseModel):
    """The process is up."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"status": "ok"}]})

    status: Literal["ok"]


class Readiness(BaseModel):
    """Redis answers; how old the in-process snapshot is."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"status": "ok", "snapshot_age_s": 0.42}]}
    )

    status: Literal["ok"]
    snapshot_age_s: float = Field(description="Seconds since the snapshot was last refreshed.")
