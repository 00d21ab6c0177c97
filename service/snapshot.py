"""The in-process copy of catalog, clusters and posteriors that recommend reads."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from bandits import beta_params, catalog_prior, empirical_params
from clustering import normalize_rows
from service.store import ClusterModel, CountChange, CountsState, ItemRecord

# Cluster counts are stored in millionths of an event (see service.membership).
MICRO = 1_000_000


@dataclass(frozen=True, slots=True)
class Catalog:
    """Items as aligned arrays: position i of every array is item_ids[i]."""

    version: int = 0
    item_ids: tuple[str, ...] = ()
    index: dict[str, int] = field(default_factory=dict)
    active: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    pools: dict[str, np.ndarray] = field(default_factory=dict)
    # Unit-length rows; zero rows for items without an embedding.
    embeddings: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    has_embedding: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))

    @classmethod
    def build(cls, version: int, items: list[ItemRecord]) -> Catalog:
        """Return the catalog arrays for these items (sorted by id for stable positions)."""
        items = sorted(items, key=lambda it: it.item_id)
        dims = {len(it.embedding) for it in items if it.embedding is not None}
        dim = dims.pop() if len(dims) == 1 else 0
        embeddings = np.zeros((len(items), dim))
        has_embedding = np.zeros(len(items), dtype=bool)
        pool_members: dict[str, list[int]] = {}
        for i, item in enumerate(items):
            if item.embedding is not None and len(item.embedding) == dim:
                embeddings[i] = item.embedding
                has_embedding[i] = True
            for pool in item.pools:
                pool_members.setdefault(pool, []).append(i)
        return cls(
            version=version,
            item_ids=tuple(it.item_id for it in items),
            index={it.item_id: i for i, it in enumerate(items)},
            active=np.array([it.active for it in items], dtype=bool),
            pools={p: np.array(m, dtype=np.intp) for p, m in pool_members.items()},
            embeddings=normalize_rows(embeddings) if dim else embeddings,
            has_embedding=has_embedding,
        )

    def __len__(self) -> int:
        return len(self.item_ids)


@dataclass(frozen=True, slots=True)
class Posteriors:
    """Counts and Beta parameters per (cluster, item) plus the global row, aligned with a catalog.

    Rows 0..k-1 are the clusters of generation `gen`; the last row is the global arm.
    """

    version: int
    stream_id: str
    gen: int
    # (k + 1, n_items) in stored units: millionths of an event in cluster rows, events in
    # the global row. Whole numbers, so deltas and full reads agree to the bit.
    impressions: np.ndarray
    clicks: np.ndarray
    conversions: np.ndarray
    alpha: np.ndarray
    beta: np.ndarray
    catalog_prior: tuple[float, float]
    # Posterior mean of conversions per click, (k + 1, n_items), in events.
    conversion_rate: np.ndarray

    @classmethod
    def build(cls, state: CountsState, gen: int, catalog: Catalog, prior: Prior) -> Posteriors:
        """Return posteriors for every catalog item from a full read of the counts."""
        impressions = np.zeros((len(state.counts), len(catalog)))
        clicks = np.zeros_like(impressions)
        conversions = np.zeros_like(impressions)
        index = catalog.index
        for row, (imp, clk, cnv) in enumerate(state.counts):
            _fill(impressions[row], imp, index)
            _fill(clicks[row], clk, index)
            _fill(conversions[row], cnv, index)
        return cls._derive(
            state.version, state.stream_id, gen, impressions, clicks, conversions, prior
        )

    @classmethod
    def _derive(
        cls,
        version: int,
        stream_id: str,
        gen: int,
        impressions: np.ndarray,
        clicks: np.ndarray,
        conversions: np.ndarray,
        prior: Prior,
    ) -> Posteriors:
        scale = np.full((impressions.shape[0], 1), 1.0 / MICRO)
        scale[-1] = 1.0
        imp, clk, cnv = impressions * scale, clicks * scale, conversions * scale
        catalog = prior.catalog(imp[-1], clk[-1])
        alpha, beta = posterior_params(imp, clk, prior, catalog)
        rate = conversion_rate(clk, cnv, prior.strength)
        return cls(
            version, stream_id, gen, impressions, clicks, conversions, alpha, beta, catalog, rate
        )

    def apply(
        self, changes: list[CountChange], catalog: Catalog, prior: Prior
    ) -> Posteriors | None:
        """Return these posteriors advanced by consecutive changes, or None if one is missing."""
        expected = self.version
        rows: list[int] = []
        columns: list[int] = []
        amounts: list[float] = []
        kinds: list[str] = []
        k = self.impressions.shape[0] - 1
        for change in changes:
            expected += 1
            if change.version != expected:
                return None  # trimmed or out of order: the caller reloads in full
            for gen, shares, kind, item in change.deltas:
                column = catalog.index.get(item)
                if column is None:
                    continue  # not (or no longer) in the catalog
                rows.append(k)
                columns.append(column)
                amounts.append(1.0)
                kinds.append(kind)
                if int(gen) != self.gen:
                    continue
                for share in filter(None, shares.split(",")):  # "" = population only
                    cluster, millionths = share.split(":")
                    if int(cluster) < k:
                        rows.append(int(cluster))
                        columns.append(column)
                        amounts.append(float(millionths))
                        kinds.append(kind)
        arrays = {"imp": self.impressions.copy(), "clk": self.clicks.copy()}
        arrays["cnv"] = self.conversions.copy()
        if rows:
            at_row, at_column = np.array(rows), np.array(columns)
            amount, kind_of = np.array(amounts), np.array(kinds)
            for kind, target in arrays.items():
                mask = kind_of == kind
                np.add.at(target, (at_row[mask], at_column[mask]), amount[mask])
        return Posteriors._derive(
            changes[-1].version if changes else self.version,
            changes[-1].stream_id if changes else self.stream_id,
            self.gen,
            arrays["imp"],
            arrays["clk"],
            arrays["cnv"],
            prior,
        )


@dataclass(frozen=True, slots=True)
class Prior:
    """What an arm believes before its own evidence: flat Beta(a, b), or from the catalog."""

    kind: str = "catalog"  # "catalog": empirical Bayes; "flat": Beta(a, b) everywhere
    a: float = 1.0
    b: float = 1.0
    strength: float = 10.0

    def catalog(
        self, global_impressions: np.ndarray, global_clicks: np.ndarray
    ) -> tuple[float, float]:
        """Return the prior of a brand-new item's global arm."""
        if self.kind == "flat":
            return self.a, self.b
        return catalog_prior(global_impressions, global_clicks, self.strength)


def posterior_params(
    impressions: np.ndarray, clicks: np.ndarray, prior: Prior, catalog: tuple[float, float]
) -> tuple[np.ndarray, np.ndarray]:
    """Return (alpha, beta) for counts in events, rows = clusters then the global arm last.

    Flat: Beta(a + clicks, b + misses) everywhere. Catalog: the global row starts from the
    catalog prior; each cluster row starts from the item's global posterior scaled down to
    `strength` pseudo-impressions, so new clusters and new items are tried, not flooded.
    """
    if prior.kind == "flat":
        return beta_params(impressions, clicks, prior.a, prior.b)
    return empirical_params(impressions, clicks, prior.strength, catalog)


def conversion_rate(clicks: np.ndarray, conversions: np.ndarray, strength: float) -> np.ndarray:
    """Return the posterior mean of conversions per click, shrunk to the catalog's rate.

    Conversions are rare and late, so an item's own rate is noisy: like CTR under the
    catalog prior, it starts at the pooled rate, worth `strength` clicks.
    """
    pooled_a, pooled_b = catalog_prior(
        clicks[-1], np.minimum(conversions[-1], clicks[-1]), strength
    )
    misses = np.maximum(clicks - conversions, 0.0)
    rate: np.ndarray = (pooled_a + conversions) / (pooled_a + pooled_b + conversions + misses)
    return rate


def _fill(row: np.ndarray, counts: dict[str, int], index: dict[str, int]) -> None:
    known = [(index[item], n) for item, n in counts.items() if item in index]
    if known:
        positions, values = zip(*known, strict=True)
        row[list(positions)] = values


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One consistent view: catalog, cluster model and posteriors, and when it was read."""

    catalog: Catalog = field(default_factory=Catalog)
    clusters: ClusterModel = field(default_factory=ClusterModel)
    # Unit-length centres, or None before the first fit.
    unit_centers: np.ndarray | None = None
    posteriors: Posteriors | None = None
    refreshed_at: float = field(default_factory=time.monotonic)
    loaded: bool = False

    def age_s(self) -> float:
        """Return seconds since the snapshot was last confirmed current."""
        return time.monotonic() - self.refreshed_at
