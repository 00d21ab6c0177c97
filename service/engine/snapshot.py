"""The in-process copy of catalog, clusters and posteriors that recommend reads."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import numpy as np

from bandits import Discount, conversion_rate
from clustering import normalize_rows
from service.engine.fatigue import SeenDecay
from service.store import ClusterModel, CountChange, CountsState, ItemRecord, ShardPosition
from service.store.codecs import KINDS, MICRO

if TYPE_CHECKING:
    from service.engine.affinity import AffinityFit


class Prior(Protocol):
    """What posteriors are derived with: bandits.Prior, or the service's AffinityPrior."""

    @property
    def strength(self) -> float: ...

    def catalog(
        self, global_impressions: np.ndarray, global_clicks: np.ndarray
    ) -> tuple[float, float]: ...

    def params(
        self, impressions: np.ndarray, clicks: np.ndarray, catalog: tuple[float, float] | None
    ) -> tuple[np.ndarray, np.ndarray]: ...


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

    # How far each count shard's changes are applied.
    positions: tuple[ShardPosition, ...]
    gen: int
    # (3, k + 1, n_items): impressions, clicks, conversions as stored, summed over the
    # count shards: millionths of an event in cluster rows, events in the global row.
    # Without discounting they are whole numbers, so changes applied here and a full read
    # agree to the bit.
    stored: np.ndarray
    # When each count was last discounted (NaN: never), same shape; None without discounting.
    updated: np.ndarray | None
    decay_since: float | None
    # The global row's impressions, clicks and conversions (3, n_items), in events,
    # discounted to `derived_at` (the baseline ranks by these clicks). Cluster rows are
    # not kept in events: alpha and beta hold what serving needs of them.
    global_counts: np.ndarray
    alpha: np.ndarray
    beta: np.ndarray
    catalog_prior: tuple[float, float]
    # Posterior mean of conversions per click, (k + 1, n_items), in events.
    conversion_rate: np.ndarray
    derived_at: float

    @classmethod
    def build(
        cls,
        state: CountsState,
        gen: int,
        catalog: Catalog,
        prior: Prior,
        discount: Discount,
        now: float,
    ) -> Posteriors:
        """Return posteriors for every catalog item from a full read of the counts."""
        stored = np.zeros((len(KINDS), len(state.counts), len(catalog)))
        updated = None
        index = catalog.index
        for row, triple in enumerate(state.counts):
            for kind, counts in enumerate(triple):
                _fill(stored[kind, row], counts, index)
        if discount.on and state.updated is not None:
            updated = np.full_like(stored, np.nan)
            for row, triple in enumerate(state.updated):
                for kind, times in enumerate(triple):
                    _fill(updated[kind, row], times, index)
        return cls._derive(
            state.positions, gen, stored, updated, state.decay_since, prior, discount, now
        )

    @classmethod
    def _derive(
        cls,
        positions: tuple[ShardPosition, ...],
        gen: int,
        stored: np.ndarray,
        updated: np.ndarray | None,
        decay_since: float | None,
        prior: Prior,
        discount: Discount,
        now: float,
    ) -> Posteriors:
        scale = np.full((stored.shape[1], 1), 1.0 / MICRO)
        scale[-1] = 1.0
        imp, clk, cnv = discount.apply(stored, updated, decay_since, now) * scale
        catalog = prior.catalog(imp[-1], clk[-1])
        alpha, beta = prior.params(imp, clk, catalog)
        rate = conversion_rate(clk, cnv, prior.strength)
        global_counts = np.stack([imp[-1], clk[-1], cnv[-1]])
        return cls(
            positions, gen, stored, updated, decay_since, global_counts, alpha, beta,
            catalog, rate, now,
        )  # fmt: skip

    @property
    def version(self) -> int:
        """Return the feedback batches these counts include, over every shard."""
        return sum(p.version for p in self.positions)

    def rederive(self, prior: Prior, discount: Discount, now: float) -> Posteriors:
        """Return the same counts discounted to `now` (time alone moves discounted posteriors)."""
        return Posteriors._derive(
            self.positions, self.gen, self.stored, self.updated, self.decay_since, prior,
            discount, now,
        )  # fmt: skip

    def apply(
        self,
        changes: list[CountChange],
        catalog: Catalog,
        prior: Prior,
        discount: Discount,
        now: float,
    ) -> Posteriors | None:
        """Return these posteriors advanced by consecutive changes, or None if one is missing.

        Each change adds to the counts it names; with discounting, the count is first
        discounted to the change's time (or the change to the count's, if it is older:
        shards are applied one after another, not in time order), as Redis does.
        """
        positions = list(self.positions)
        k = self.stored.shape[1] - 1
        kind_of = {kind: i for i, kind in enumerate(KINDS)}
        # (kind, row, column, at) -> summed increments, in first-seen order.
        added: dict[tuple[int, int, int, float], float] = {}
        since = self.decay_since
        for change in changes:
            expected = positions[change.shard].version + 1
            if change.version != expected:
                return None  # trimmed or out of order: the caller reloads in full
            positions[change.shard] = ShardPosition(change.version, change.stream_id)
            for delta in change.deltas:
                column = catalog.index.get(delta.item_id)
                if column is None:
                    continue  # not (or no longer) in the catalog
                at = np.nan if delta.at is None else delta.at
                if since is None and delta.at is not None:
                    since = delta.at  # the batch that began discounting set decay_since
                kind = kind_of[delta.kind]
                cells = [(k, delta.added)]
                if delta.gen == self.gen:
                    cells += [(c, v) for c, v in delta.clusters if c < k]
                for row, value in cells:
                    cell = (kind, row, column, at)
                    added[cell] = added.get(cell, 0.0) + value
        stored = self.stored.copy()
        updated = None if self.updated is None else self.updated.copy()
        if added:
            kinds, rows, columns, times = (np.array(x) for x in zip(*added, strict=True))
            values = np.array(list(added.values()))
            if updated is None or not discount.on:
                np.add.at(stored, (kinds, rows, columns), values)
            else:
                _add_discounted(
                    stored, updated, (kinds, rows, columns), values, times, since, discount
                )
        return Posteriors._derive(
            tuple(positions), self.gen, stored, updated, since, prior, discount, now
        )


def _add_discounted(
    stored: np.ndarray,
    updated: np.ndarray,
    where: tuple[np.ndarray, np.ndarray, np.ndarray],
    values: np.ndarray,
    times: np.ndarray,
    since: float | None,
    discount: Discount,
) -> None:
    """Add increments made at `times` to discounted counts, in place (one cell at a time:
    a cell's time moves with each, so repeated cells must go in order)."""
    half_life = discount.half_life_s
    for kind, row, column, value, at in zip(*where, values, times, strict=True):
        cell = (kind, row, column)
        current = updated[cell]
        if np.isnan(current):
            current = at if since is None else since
        if np.isnan(at):
            stored[cell] += value
            continue
        later = max(current, at)
        stored[cell] = stored[cell] * 0.5 ** ((later - current) / half_life) + value * 0.5 ** (
            (later - at) / half_life
        )
        updated[cell] = later


def _fill(row: np.ndarray, counts: dict[str, float], index: dict[str, int]) -> None:
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
    # Under prior="affinity": the affinity, slope and strength the posteriors were derived with.
    affinity: AffinityFit | None = None
    # The learned seen decay; None before the first refresh (serve its prior then).
    seen_decay: SeenDecay | None = None

    def age_s(self) -> float:
        """Return seconds since the snapshot was last confirmed current."""
        return time.monotonic() - self.refreshed_at
