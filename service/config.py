"""Every runtime setting, read once from BANDITREC_* environment variables and the TOML
file BANDITREC_CONFIG names (the environment wins)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from bandits import Discount, Prior
from service.config_file import ConfigFileSource, config_path, explain
from service.store.keys import DEFAULT_COUNT_SHARDS


class Settings(BaseSettings):
    """Service settings; each field is the env var BANDITREC_<NAME>, or a key of the file."""

    model_config = SettingsConfigDict(env_prefix="BANDITREC_", frozen=True, extra="ignore")

    host: str = Field("127.0.0.1", description="Address the HTTP server binds.")
    port: int = Field(8000, ge=1, le=65535, description="Port the HTTP server binds.")
    workers: int = Field(1, ge=1, le=64, description="uvicorn worker processes.")
    log_level: Literal["critical", "error", "warning", "info", "debug"] = Field(
        "info", description="Level of the service's log lines and uvicorn's."
    )
    log_format: Literal["auto", "json", "text"] = Field(
        "auto",
        description="json: one JSON object per line; text: one readable line; auto: text "
        "when stderr is a terminal, json otherwise (a container, a file, a pipe).",
    )

    redis_url: str | None = Field(
        None, description="External Redis (redis:// or unix://). Unset: start an embedded one."
    )
    data_dir: Path = Field(Path("data"), description="Where the embedded Redis keeps its AOF.")
    redis_appendfsync: Literal["always", "everysec", "no"] = Field(
        "always",
        description="Embedded Redis fsync policy; 'always' means acknowledged feedback "
        "survives a power cut, 'everysec' trades up to 1 s of it for throughput.",
    )
    redis_timeout_s: float = Field(
        2.0,
        gt=0,
        le=60,
        description="Per-command Redis timeout; the Redis calls of one recommend share one.",
    )
    redis_cluster: bool = Field(
        False,
        description="BANDITREC_REDIS_URL names a node of a Redis Cluster: the store follows "
        "the cluster's topology and failovers, and keeps every script in one slot.",
    )
    count_shards: int = Field(
        DEFAULT_COUNT_SHARDS,
        ge=1,
        le=1024,
        description="Shards of the arm counts, by event_id: each with its own hash tag, "
        "dedupe markers, change stream and stats, so ingest spreads over a cluster's "
        "masters. A store keeps the value it was first written with: a worker with another "
        "refuses feedback (503 redis_shard_layout); from 1 (and from releases before "
        "sharding) it may grow. Export and import to change it otherwise.",
    )
    redis_wait_replicas: int = Field(
        0,
        ge=0,
        le=16,
        description="Answer feedback only once this many replicas hold its writes (WAIT, "
        "up to half of BANDITREC_REDIS_TIMEOUT_S; 503 if fewer): a failover then cannot "
        "lose acknowledged events. 0: no wait (docs/scaling.md has the cost).",
    )
    key_prefix: str = Field("br", pattern=r"^[a-z0-9_]{1,16}$", description="Redis key prefix.")

    api_key: SecretStr | None = Field(
        None,
        description="If set, writes and reads of arms, users, stats need X-API-Key; set but "
        "empty is refused at startup.",
    )
    max_body_bytes: int = Field(1 << 20, ge=1024, le=64 << 20, description="Larger bodies: 413.")

    snapshot_ms: int = Field(1000, ge=10, le=600_000, description="Snapshot refresh period.")
    stale_after_s: float = Field(
        10.0, gt=0, description="A snapshot older than this is reported as stale."
    )

    prior: Literal["affinity", "catalog", "flat"] = Field(
        "affinity",
        description="affinity: as catalog, each cluster arm's start tilted toward items "
        "whose embedding is close to the cluster's centre, with the tilt's slope and the "
        "cluster arms' prior strength fitted from the counts; catalog: empirical Bayes (new "
        "items start at the catalog CTR, new cluster arms at the item's global posterior); "
        "flat: Beta(prior_a, prior_b).",
    )
    prior_strength: float = Field(
        10.0,
        gt=0,
        le=1e6,
        description="Pseudo-impressions a catalog prior is worth; under affinity, the global "
        "arms' and the cluster arms' until their strength can be fitted.",
    )
    affinity_refit_s: float = Field(
        30.0,
        ge=0,
        le=86_400,
        description="Under prior=affinity, seconds between refits of the slope and the "
        "cluster arms' prior strength at snapshot refresh (0: every refresh); the priors "
        "themselves follow the counts at every refresh.",
    )
    personal_tilt: float = Field(
        0.5,
        ge=0,
        le=1,
        description="Under prior=affinity, share of the fitted slope applied per user: "
        "scores are multiplied by exp(share x slope x (cos(user, item) - cos(cluster "
        "centre, item))). 0 disables.",
    )
    prior_a: float = Field(1.0, gt=0, le=1e6, description="Flat prior added to clicks.")
    prior_b: float = Field(1.0, gt=0, le=1e6, description="Flat prior added to non-clicks.")
    history_n: int = Field(50, ge=1, le=1000, description="Clicked items kept per user.")
    membership: Literal["soft", "hard"] = Field(
        "hard",
        description="soft: a user belongs to its top-m clusters with softmax weights; "
        "hard: to its nearest cluster only.",
    )
    soft_temperature: float = Field(
        0.05, gt=0, le=10, description="Softmax temperature over cosine similarities."
    )
    soft_top_m: int = Field(2, ge=1, le=16, description="Clusters a soft membership keeps.")
    conversion_weight: float = Field(
        0.0,
        ge=0,
        le=1,
        description="Scores are sampled CTR x (conversions per click)^w; 0 optimises clicks.",
    )
    attribution_h: float = Field(
        168.0, gt=0, le=24 * 90, description="A conversion is attributed to a click this recent."
    )
    half_life_h: float = Field(
        0.0,
        ge=0,
        le=24 * 3650,
        description="Half-life of arm counts: evidence this old weighs half, so the bandit "
        "follows tastes that drift. 0 keeps every event at full weight.",
    )
    seen_gamma: float = Field(
        0.7,
        gt=0,
        le=1,
        description="Score multiplier per unclicked impression: the fixed seen decay, which "
        "the learned modes serve times their correction (1: no penalty).",
    )
    seen_half_life_h: float = Field(
        24.0,
        gt=0,
        le=24 * 365,
        description="Half-life of unclicked-impression counts: the fixed decay's recovery, "
        "which the learned modes serve times their correction.",
    )
    seen_decay: Literal["learned", "learned-mean", "fixed", "off"] = Field(
        "learned-mean",
        description="learned-mean: a seen item's score multiplier is the fixed decay "
        "(seen_gamma per unclicked impression, fading with seen_half_life_h) times a "
        "correction learned from feedback per unclicked count and age of the last, whose "
        "prior is 1 (the fixed decay is right); learned: times one Thompson draw of the "
        "correction per list; fixed: the fixed decay alone; off: none. Evidence is collected "
        "in every mode.",
    )
    # Fitted by default: a set 1000 kept too close to the fixed decay where users recover
    # fast (tests/service/test_seen_decay.py); the fit falls where the fixed decay is wrong
    # and holds at its cap where it is right.
    seen_decay_prior_strength: Annotated[float, Field(gt=0, le=1e9)] | Literal["auto"] = Field(
        "auto",
        description="Impressions the learned correction's prior (1: the fixed decay is right) "
        "is worth per bucket: buckets with less evidence stay near the fixed decay. auto: "
        "fitted to how far the buckets stray from the fixed decay (10-10000; the cap where "
        "it is right, tens where it is wrong).",
    )

    dedupe_retention_s: int = Field(
        7 * 86400, ge=60, le=90 * 86400, description="How long an event_id is remembered."
    )
    rec_log_ttl_s: int = Field(
        7 * 86400, ge=60, le=90 * 86400, description="How long a served list is kept."
    )
    user_ttl_s: int = Field(
        90 * 86400, ge=3600, le=3650 * 86400, description="Idle time before user state expires."
    )
    user_events_max: int = Field(
        1000,
        ge=1000,
        le=1_000_000,
        description="Event ids kept per user (within the dedupe retention) so that a resent "
        "batch does not touch that user's state twice; at least one batch.",
    )
    user_items_max: int = Field(
        500,
        ge=10,
        le=100_000,
        description="Items kept per user in seen decay and in last clicks; past it the "
        "least penalised seen items and the oldest clicks are dropped.",
    )
    related_n: int = Field(
        100, ge=1, le=10_000, description="Candidates of a related list: the N most similar."
    )
    mode: Literal["bandit", "baseline"] = Field(
        "bandit",
        description="bandit: the bandit serves; baseline: a fixed ranking serves while the "
        "bandit learns from the same feedback (compare the two in /v1/stats).",
    )
    baseline: Literal["popularity", "caller"] = Field(
        "popularity",
        description="The fixed ranking: most global clicks first, or the order of the "
        "request's candidates (popularity when it has none).",
    )
    exploration: float = Field(
        0.0,
        ge=0,
        le=1,
        description="Share of requests served uniformly at random from the candidates.",
    )
    propensity_samples: int = Field(
        4,
        ge=0,
        le=1000,
        description="Monte-Carlo draws per recommend to log each served item's propensity "
        "(0 disables; cost grows with samples x candidates). Each draw sets the bar an item "
        "must clear and 32 draws of the item alone count how often it does, so 4 are "
        "steadier than 32 plain hit counts; lists with pool quotas count hits over 8 times "
        "as many draws.",
    )
    fit_max_users: int = Field(
        200_000, ge=8, le=10_000_000, description="Users sampled for a k-means fit."
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Read arguments, then the environment, then the BANDITREC_CONFIG file: first wins."""
        path = config_path()
        sources = (init_settings, env_settings, dotenv_settings, file_secret_settings)
        return sources if path is None else (*sources, ConfigFileSource(settings_cls, path))

    @field_validator("api_key")
    @classmethod
    def _api_key_is_a_secret(cls, value: SecretStr | None) -> SecretStr | None:
        """An empty key would turn auth on with an empty secret: an empty header would pass."""
        if value is None:
            return None
        secret = value.get_secret_value()
        if not secret.strip():
            raise PydanticCustomError(
                "api_key_empty",
                "set but empty; unset it to leave every route open, or set it to a secret",
            )
        if secret != secret.strip():
            raise PydanticCustomError(
                "api_key_whitespace",
                "starts or ends with whitespace, which HTTP strips from header values, so "
                "no request could send it in X-API-Key",
            )
        return value

    @model_validator(mode="after")
    def _stale_after_covers_refresh(self) -> Settings:
        """`BANDITREC_STALE_AFTER_S` must cover one snapshot period (`BANDITREC_SNAPSHOT_MS`)."""
        if self.stale_after_s * 1000 < self.snapshot_ms:
            raise ValueError("stale_after_s must be at least one snapshot period (snapshot_ms)")
        return self

    @model_validator(mode="after")
    def _cluster_names_a_node(self) -> Settings:
        """A cluster cannot be embedded: `BANDITREC_REDIS_CLUSTER` needs a node's URL."""
        if self.redis_cluster and not self.redis_url:
            raise ValueError("redis_cluster needs redis_url naming a node of the cluster")
        return self

    @property
    def prior_model(self) -> Prior:
        """Return the arms' prior."""
        return Prior(self.prior, self.prior_a, self.prior_b, self.prior_strength)

    @property
    def discount(self) -> Discount:
        """Return how arm counts fade."""
        return Discount(self.half_life_h * 3600.0)

    @property
    def seen_half_life_s(self) -> float:
        """Seen-decay half-life in seconds."""
        return self.seen_half_life_h * 3600.0

    def store_options(self) -> dict[str, Any]:
        """Return the Store's keyword arguments beyond its URL (prefix, timeout, layout)."""
        return {
            "prefix": self.key_prefix,
            "timeout_s": self.redis_timeout_s,
            "shards": self.count_shards,
            "cluster": self.redis_cluster,
            "wait_replicas": self.redis_wait_replicas,
        }


def load_settings() -> Settings:
    """Return the settings; raise SettingsError naming the variable or file key at fault."""
    try:
        return Settings()
    except ValidationError as exc:
        raise explain(exc, Settings) from None
