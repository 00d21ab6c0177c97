"""Hard assignment of vectors to clusters by cosine similarity to the cluster centres."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from numpy.typing import NDArray

from clustering._validation import finite_matrix
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
    vectors_ = finite_matrix("vectors", vectors)
    centers_ = finite_matrix("centers", centers)
    if centers_.shape[0] < 1:
        raise ValueError("centers must have at least one row, got shape (0, ...)")
    if vectors_.shape[1] != centers_.shape[1]:
        raise ValueError(
            f"vectors and centers must have the same dimension; "
            f"got {vectors_.shape[1]} and {centers_.shape[1]}"
        )
    return _assign_hard(vectors_, centers_)


def _assign_hard(vectors: FloatArray, centers: FloatArray) -> IndexArray:
    similarity = _normalize_rows(vectors) @ _normalize_rows(centers).T
    best: IndexArray = np.argmax(similarity, axis=1)
    return best
