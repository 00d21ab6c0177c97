"""Assignment of vectors to clusters by cosine similarity: hard (one) or soft (weights)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from numpy.typing import NDArray

from clustering._validation import finite_matrix, positive_int
from clustering.vectors import _normalize_rows

FloatArray = NDArray[np.float64]
IndexArray = NDArray[np.intp]


def assign_hard(vectors: npt.ArrayLike, centers: npt.ArrayLike) -> IndexArray:
    """Return, for each row of ``vectors`` (n, d), the index of the most cosine-similar centre.

    Takes (n, d) arrays only: pass one vector as ``vector[None, :]``. Centres need not be
    unit length. A zero vector (no direction) goes to cluster 0; ties go to the lower index.

    >>> assign_hard([[0.9, 0.1], [0.0, 2.0], [0.0, 0.0]], [[1.0, 0.0], [0.0, 5.0]])
    array([0, 1, 0])
    """
    vectors_, centers_ = _checked(vectors, centers)
    return _assign_hard(vectors_, centers_)


def _checked(vectors: npt.ArrayLike, centers: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Return both as finite 2-D arrays of one dimension, or raise ValueError."""
    vectors_ = finite_matrix("vectors", vectors)
    centers_ = finite_matrix("centers", centers)
    if centers_.shape[0] < 1:
        raise ValueError("centers must have at least one row, got shape (0, ...)")
    if vectors_.shape[1] != centers_.shape[1]:
        raise ValueError(
            f"vectors and centers must have the same dimension; "
            f"got {vectors_.shape[1]} and {centers_.shape[1]}"
        )
    return vectors_, centers_


def _assign_hard(vectors: FloatArray, centers: FloatArray) -> IndexArray:
    similarity = _normalize_rows(vectors) @ _normalize_rows(centers).T
    best: IndexArray = np.argmax(similarity, axis=1)
    return best


def assign_soft(
    vectors: npt.ArrayLike, centers: npt.ArrayLike, temperature: float, top_m: int
) -> FloatArray:
    """Return membership weights (n, k): softmax of cosine / temperature over the top m centres.

    Each row sums to 1 with at most ``top_m`` non-zero weights (the most similar centres);
    a zero vector belongs wholly to cluster 0, as in :func:`assign_hard`.

    >>> w = assign_soft([[1.0, 0.0]], [[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]], 1.0, 2)
    >>> w.round(3).tolist()
    [[0.731, 0.269, 0.0]]
    """
    vectors_, centers_ = _checked(vectors, centers)
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)):
        raise ValueError(f"temperature must be a number > 0, got {temperature!r}")
    if not 0.0 < float(temperature) < float("inf"):
        raise ValueError(f"temperature must be a number > 0, got {temperature!r}")
    return _assign_soft(vectors_, centers_, float(temperature), positive_int("top_m", top_m))


def _assign_soft(
    vectors: FloatArray, centers: FloatArray, temperature: float, top_m: int
) -> FloatArray:
    n, k = vectors.shape[0], centers.shape[0]
    m = min(top_m, k)
    logits = (_normalize_rows(vectors) @ _normalize_rows(centers).T) / temperature
    # Keep the m largest per row (ties to the lower index, like assign_hard).
    order = np.argsort(-logits, axis=1, kind="stable")[:, :m]
    kept = np.take_along_axis(logits, order, axis=1)
    kept = np.exp(kept - kept[:, :1])
    weights = np.zeros((n, k))
    np.put_along_axis(weights, order, kept / kept.sum(axis=1, keepdims=True), axis=1)
    zero = ~np.any(vectors, axis=1)
    weights[zero] = 0.0
    weights[zero, 0] = 1.0
    return weights
