"""k-means: k-means++ seeding then Lloyd iterations, vectorised over points, randomness injected."""

from __future__ import annotations

import math
import numbers

import numpy as np
import numpy.typing as npt
from numpy.typing import NDArray

from clustering._validation import finite_matrix, generator, positive_int

FloatArray = NDArray[np.float64]
IndexArray = NDArray[np.intp]


class KMeans:
    """Euclidean k-means; ``fit(X, rng)`` sets ``centers_``, ``labels_``, ``inertia_``, ``n_iter_``.

    ``n_init`` runs k-means++ and Lloyd that many times and keeps the lowest inertia.

    Stops when no centre moves more than ``tol`` (Euclidean, in the units of X) in an
    iteration, or after ``max_iter`` iterations. A cluster left empty is re-seeded at the
    point farthest from its own centre.

    >>> X = np.array([[0.0, 0.0], [0.0, 1.0], [9.0, 9.0], [9.0, 10.0]])
    >>> model = KMeans(n_clusters=2).fit(X, np.random.default_rng(0))
    >>> bool(model.labels_[0] == model.labels_[1] != model.labels_[2] == model.labels_[3])
    True
    >>> sorted(model.centers_.tolist()), model.inertia_
    ([[0.0, 0.5], [9.0, 9.5]], 1.0)
    """

    centers_: FloatArray
    labels_: IndexArray
    inertia_: float
    n_iter_: int

    def __init__(
        self, n_clusters: int = 8, max_iter: int = 300, tol: float = 1e-6, n_init: int = 1
    ) -> None:
        self.n_clusters = positive_int("n_clusters", n_clusters)
        self.max_iter = positive_int("max_iter", max_iter)
        self.tol = _tolerance(tol)
        self.n_init = positive_int("n_init", n_init)

    def __repr__(self) -> str:
        return (
            f"KMeans(n_clusters={self.n_clusters}, max_iter={self.max_iter}, tol={self.tol}, "
            f"n_init={self.n_init})"
        )

    def fit(self, X: npt.ArrayLike, rng: np.random.Generator) -> KMeans:
        """Return this model, fitted to the rows of ``X`` (n_samples, n_features)."""
        points = finite_matrix("X", X)
        n_samples, n_features = points.shape
        if n_features < 1:
            raise ValueError(f"X must have at least one feature, got shape {points.shape}")
        if n_samples < self.n_clusters:
            raise ValueError(
                f"X has {n_samples} samples but n_clusters={self.n_clusters} needs at least "
                f"{self.n_clusters}"
            )
        rng_ = generator("rng", rng)
        # Centring keeps ||x||^2 - 2 x.c + ||c||^2 from cancelling for data far from the origin.
        offset = points.mean(axis=0)
        centred = points - offset
        # Several k-means++ starts, keeping the lowest inertia: one start occasionally
        # settles in a local optimum that merges two groups.
        runs = (
            _lloyd(
                centred, _kmeans_plus_plus(centred, self.n_clusters, rng_), self.max_iter, self.tol
            )
            for _ in range(self.n_init)
        )
        centers, labels, inertia, n_iter = min(runs, key=lambda run: run[2])
        self.centers_ = centers + offset
        self.labels_ = labels
        self.inertia_ = inertia
        self.n_iter_ = n_iter
        return self

    def predict(self, X: npt.ArrayLike) -> IndexArray:
        """Return the index of the nearest centre (Euclidean) for each row of ``X``."""
        if not hasattr(self, "centers_"):
            raise ValueError("this KMeans is not fitted yet: call fit(X, rng) first")
        points = finite_matrix("X", X)
        if points.shape[1] != self.centers_.shape[1]:
            raise ValueError(
                f"X has {points.shape[1]} features but the model was fitted on "
                f"{self.centers_.shape[1]}"
            )
        # A common shift leaves distances alone and, as in fit, avoids cancellation.
        offset = self.centers_.mean(axis=0)
        centred = points - offset
        labels, _ = _nearest(centred, _row_sq_norms(centred), self.centers_ - offset)
        return labels


def _tolerance(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"tol must be a finite number >= 0, got {value!r}")
    tol = float(value)
    if not (math.isfinite(tol) and tol >= 0.0):
        raise ValueError(f"tol must be a finite number >= 0, got {value!r}")
    return tol


# -- kernels on trusted arrays -----------------------------------------------------------


def _kmeans_plus_plus(points: FloatArray, k: int, rng: np.random.Generator) -> FloatArray:
    """k seeds by greedy D^2 sampling (Arthur & Vassilvitskii 2007; as in scikit-learn).

    Each next seed is the best, by the inertia it leaves, of 2 + ln(k) candidates drawn with
    probability proportional to squared distance from the seeds so far. One candidate per
    step picks a second seed inside an already-seeded blob far too often in high dimension,
    where within-blob distances add up over the coordinates.
    """
    n_samples = points.shape[0]
    n_candidates = 2 + int(math.log(k))
    sq_norms = _row_sq_norms(points)
    centers = np.empty((k, points.shape[1]))
    centers[0] = points[int(rng.integers(n_samples))]
    closest = _sq_distances(points, sq_norms, centers[:1])[:, 0]
    for j in range(1, k):
        cumulative = np.cumsum(closest)
        if cumulative[-1] > 0.0:
            targets = rng.random(n_candidates) * cumulative[-1]
            candidates = np.searchsorted(cumulative, targets, side="right")
            candidates = np.minimum(candidates, n_samples - 1)
        else:
            # Every point already sits on a seed (fewer distinct points than k).
            candidates = rng.integers(n_samples, size=n_candidates)
        # (n, candidates): each point's distance to its nearest seed if that candidate joins.
        with_candidate = np.minimum(
            closest[:, None], _sq_distances(points, sq_norms, points[candidates])
        )
        best = int(np.argmin(with_candidate.sum(axis=0)))
        centers[j] = points[candidates[best]]
        closest = with_candidate[:, best]
    return centers


def _lloyd(
    points: FloatArray, centers: FloatArray, max_iter: int, tol: float
) -> tuple[FloatArray, IndexArray, float, int]:
    """Lloyd iterations from ``centers``: (centers, labels, inertia, iterations run)."""
    k = centers.shape[0]
    sq_norms = _row_sq_norms(points)
    n_iter = 0
    while n_iter < max_iter:
        n_iter += 1
        labels, sq_dist = _nearest(points, sq_norms, centers)
        counts = np.bincount(labels, minlength=k)
        sums = np.zeros_like(centers)
        np.add.at(sums, labels, points)
        updated = sums / np.maximum(counts, 1)[:, None]
        empty = counts == 0
        if np.any(empty):
            # The points worst served by their centre, one per empty cluster, farthest first.
            farthest = np.argsort(-sq_dist, kind="stable")[: int(np.sum(empty))]
            updated[empty] = points[farthest]
        shift = float(np.sqrt(np.max(np.sum((updated - centers) ** 2, axis=1))))
        centers = updated
        if shift <= tol:
            break
    labels, _ = _nearest(points, sq_norms, centers)
    inertia = float(np.sum((points - centers[labels]) ** 2))
    return centers, labels, inertia, n_iter


def _nearest(
    points: FloatArray, sq_norms: FloatArray, centers: FloatArray
) -> tuple[IndexArray, FloatArray]:
    """Index of and squared distance to the nearest centre, for every point."""
    sq_dist = _sq_distances(points, sq_norms, centers)
    labels = np.argmin(sq_dist, axis=1)
    return labels, np.take_along_axis(sq_dist, labels[:, None], axis=1)[:, 0]


def _sq_distances(points: FloatArray, sq_norms: FloatArray, centers: FloatArray) -> FloatArray:
    """(n, k) squared distances as ||x||^2 - 2 x.c + ||c||^2, clipped at 0 against rounding."""
    cross = points @ centers.T
    distances = sq_norms[:, None] - 2.0 * cross + _row_sq_norms(centers)[None, :]
    return np.maximum(distances, 0.0)


def _row_sq_norms(matrix: FloatArray) -> FloatArray:
    sq_norms: FloatArray = np.einsum("ij,ij->i", matrix, matrix)
    return sq_norms
