"""Users' click histories and their clusters: k-means refits and online hard or soft assignment."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from clustering import KMeans, adjusted_rand_index, assign_hard, assign_soft, normalize_rows

FloatArray = NDArray[np.float64]
IndexArray = NDArray[np.intp]

# k-means++ starts per fit, as the service uses.
FIT_STARTS = 4

Membership = tuple[tuple[int, ...], tuple[float, ...]]


class Tastes:
    """Each user's last ``history_n`` clicked items, as the service keeps them, and clusters."""

    def __init__(
        self,
        embeddings: FloatArray,
        n_users: int,
        history_n: int,
        groups: IndexArray | None,
        soft: tuple[float, int] | None = None,
    ) -> None:
        self.embeddings = embeddings
        self.history = np.full((n_users, history_n), -1, dtype=np.intp)
        self.n_clicks = np.zeros(n_users, dtype=np.int64)
        # Sum of the embeddings in the history: its direction is the user's vector.
        self.sums = np.zeros((n_users, embeddings.shape[1]))
        self.groups = groups
        self.gen = 0
        self.unit_centers: FloatArray | None = None
        self.cluster_of = np.zeros(n_users, dtype=np.intp)
        self.stale = np.zeros(n_users, dtype=bool)
        # Soft membership (temperature, top m), as the service's; None: hard.
        self.soft = soft
        self._memberships: dict[int, Membership] = {}

    def read_before(self, history: IndexArray) -> None:
        """Start every user's history from items read before the run, (n_users, reads)."""
        recent = history[:, -self.history.shape[1] :]
        reads = recent.shape[1]
        self.history[:, :reads] = recent
        self.n_clicks[:] = reads
        self.sums = self.embeddings[recent].sum(axis=1)
        self.stale[:] = True

    @property
    def n_clusters(self) -> int:
        """Return how many clusters the current generation has."""
        return 1 if self.unit_centers is None else int(self.unit_centers.shape[0])

    def clicked(self, user: int, items: IndexArray) -> None:
        """Add clicked items to the user's history, dropping the oldest beyond history_n."""
        size = self.history.shape[1]
        for item in items.tolist():
            slot = int(self.n_clicks[user] % size)
            old = int(self.history[user, slot])
            if old >= 0:
                self.sums[user] -= self.embeddings[old]
            self.history[user, slot] = item
            self.sums[user] += self.embeddings[item]
            self.n_clicks[user] += 1
        self.stale[user] = True
        self._memberships.pop(user, None)

    def cluster(self, user: int) -> int:
        """Return the user's cluster: nearest centre to their vector, 0 with no history."""
        if self.unit_centers is None or self.n_clicks[user] == 0:
            return 0
        if self.stale[user]:
            self.cluster_of[user] = assign_hard(self.sums[user][None, :], self.unit_centers)[0]
            self.stale[user] = False
        return int(self.cluster_of[user])

    def membership(self, user: int) -> Membership:
        """Return the user's (clusters, weights), heaviest first: one cluster when hard."""
        if self.soft is None or self.unit_centers is None or self.n_clicks[user] == 0:
            return (self.cluster(user),), (1.0,)
        found = self._memberships.get(user)
        if found is None:
            temperature, top_m = self.soft
            weights = assign_soft(self.sums[user][None, :], self.unit_centers, temperature, top_m)[
                0
            ]
            order = np.argsort(-weights, kind="stable")[: min(top_m, weights.size)]
            kept = [int(c) for c in order if weights[c] > 0]
            found = tuple(kept), tuple(float(weights[c]) for c in kept)
            self._memberships[user] = found
        return found

    def with_history(self) -> int:
        """Return how many users have clicks (read before or in the run): what a fit clusters."""
        return int(np.count_nonzero(self.n_clicks))

    def refit(self, n_clusters: int, rng: np.random.Generator, step: int) -> dict[str, Any] | None:
        """Fit k-means on users with clicks and start a new generation; None if too few users."""
        users = np.flatnonzero(self.n_clicks > 0)
        if users.size < n_clusters:
            return None
        vectors = normalize_rows(self.sums[users])
        model = KMeans(n_clusters=n_clusters, n_init=FIT_STARTS).fit(vectors, rng)
        self.unit_centers = normalize_rows(model.centers_)
        labels = assign_hard(vectors, self.unit_centers)
        self.cluster_of[:] = 0
        self.cluster_of[users] = labels
        self.stale[:] = False
        self._memberships.clear()
        self.gen += 1
        info: dict[str, Any] = {
            "step": step,
            "gen": self.gen,
            "k": n_clusters,
            "n_users": int(users.size),
        }
        if self.groups is not None:
            info["ari"] = round(adjusted_rand_index(self.groups[users], labels), 4)
        return info
