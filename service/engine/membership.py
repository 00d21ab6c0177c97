"""A user's membership in clusters: one cluster (hard) or a few with weights (soft)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from clustering import assign_hard, assign_soft
from service.engine.snapshot import Catalog, Snapshot
from service.store.codecs import MICRO

# The global arms' row: users the clustering cannot place are served the population's view.
POPULATION_ROW = -1


@dataclass(frozen=True, slots=True)
class Membership:
    """Clusters and weights (summing to 1), heaviest first; POPULATION_ROW = global arms."""

    clusters: tuple[int, ...] = (0,)
    weights: tuple[float, ...] = (1.0,)

    @property
    def top(self) -> int | None:
        """Return the heaviest cluster, or None for the population."""
        return None if self.clusters[0] == POPULATION_ROW else self.clusters[0]

    def encode(self) -> str:
        """Return the compact form stored in Redis: 'cluster:weight,...'."""
        return ",".join(f"{c}:{w:.6g}" for c, w in zip(self.clusters, self.weights, strict=True))

    @classmethod
    def decode(cls, text: str) -> Membership:
        """Return the membership stored by encode()."""
        pairs = [part.split(":") for part in text.split(",")]
        weights = [float(w) for _, w in pairs]
        total = sum(weights)  # 6 significant digits each: renormalise to an exact 1
        return cls(tuple(int(c) for c, _ in pairs), tuple(w / total for w in weights))

    def micro_weights(self) -> list[tuple[int, int]]:
        """Return (cluster, millionths) pairs that sum to exactly MICRO."""
        if self.clusters == (POPULATION_ROW,):
            return []  # every event is counted in the global arm anyway
        shares = [int(w * MICRO) for w in self.weights]
        shares[0] += MICRO - sum(shares)
        return [(c, s) for c, s in zip(self.clusters, shares, strict=True) if s > 0]

    def fits(self, k: int) -> bool:
        """Return whether every cluster exists in a clustering with k clusters."""
        return all(c < k for c in self.clusters)


POPULATION = Membership((POPULATION_ROW,), (1.0,))


def memberships_of(
    snap: Snapshot, histories: Sequence[list[str]], soft: bool, temperature: float, top_m: int
) -> list[Membership]:
    """Return the membership implied by each click history, computed for all at once."""
    if snap.unit_centers is None:
        return [Membership()] * len(histories)  # before the first fit everyone shares cluster 0
    if snap.catalog.embeddings.shape[1] != snap.unit_centers.shape[1]:
        return [POPULATION] * len(histories)
    rows = [embedded_rows(snap.catalog, clicks) for clicks in histories]
    placed = [n for n, r in enumerate(rows) if r]
    found = [POPULATION] * len(histories)
    if not placed:
        return found
    # Catalog rows are unit length, so a history's sum points where its mean does.
    lengths = np.array([len(rows[n]) for n in placed])
    flat = np.concatenate([rows[n] for n in placed])
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    vectors = np.add.reduceat(snap.catalog.embeddings[flat], starts, axis=0)
    if not soft:
        for n, cluster in zip(placed, assign_hard(vectors, snap.unit_centers), strict=True):
            found[n] = Membership((int(cluster),))
        return found
    weights = assign_soft(vectors, snap.unit_centers, temperature, top_m)
    order = np.argsort(-weights, axis=1, kind="stable")[:, : min(top_m, weights.shape[1])]
    kept = np.take_along_axis(weights, order, axis=1)
    for n, clusters, shares in zip(placed, order.tolist(), kept.tolist(), strict=True):
        pairs = [(c, w) for c, w in zip(clusters, shares, strict=True) if w > 0]
        found[n] = Membership(tuple(c for c, _ in pairs), tuple(w for _, w in pairs))
    return found


def embedded_rows(catalog: Catalog, item_ids: list[str]) -> list[int]:
    """Return catalog positions of the given items that have an embedding."""
    rows = (catalog.index.get(i) for i in item_ids)
    return [r for r in rows if r is not None and catalog.has_embedding[r]]
