"""Response models of the cluster arms' evidence in /v1/stats: their lift and their prior."""

from __future__ import annotations

from pydantic import BaseModel, Field


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
    clusters: list[ClusterLift]


class AffinityPriorOut(BaseModel):
    """The affinity prior's fitted values (BANDITREC_PRIOR=affinity)."""

    slope: float = Field(
        description="Logit slope of a cluster arm's prior CTR on the cosine of item and "
        "cluster centre; 0 before the first fit (the catalog prior)."
    )
    cluster_strength: float = Field(
        description="Pseudo-impressions a cluster arm's prior is worth: fitted (3-300) once "
        "the cluster arms hold 5 impressions each on average, BANDITREC_PRIOR_STRENGTH before."
    )
    strength_fitted: bool = Field(description="Whether cluster_strength was fitted yet.")
    fitted_at: float | None = Field(description="When slope and strength were last fitted.")
    personal_tilt: float = Field(description="BANDITREC_PERSONAL_TILT: the per-user share.")
