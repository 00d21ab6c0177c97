"""Nearest items by cosine similarity: the candidates of a "related items" list."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from numpy.typing import NDArray

from clustering._validation import finite_matrix, positive_int

FloatArray = NDArray[np.float64]
IndexArray = NDArray[np.intp]


def most_similar(
    unit_items: npt.ArrayLike,
    query: npt.ArrayLike,
    n_top: int,
    allowed: npt.ArrayLike | None = None,
) -> IndexArray:
    """Return the rows of ``unit_items`` most similar to ``query`` (dot product), best first.

    Rows are expected to be unit length (so the dot product is the cosine); ``allowed`` is
    an optional boolean mask of rows that may be returned (e.g. active items other than the
    query). At most ``n_top`` rows are returned; ties go to the lower index.

    >>> items = np.array([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0], [0.8, 0.6]])
    >>> most_similar(items, [1.0, 0.0], 2, allowed=[False, True, True, True])
    array([3, 1])
    """
    items = finite_matrix("unit_items", unit_items)
    query_ = np.asarray(query, dtype=np.float64)
    if query_.shape != (items.shape[1],) or not bool(np.all(np.isfinite(query_))):
        raise ValueError(
            f"query must be a finite vector of length {items.shape[1]}, got shape {query_.shape}"
        )
    mask = None
    if allowed is not None:
        mask = np.asarray(allowed)
        if mask.dtype != np.bool_ or mask.shape != (items.shape[0],):
            raise ValueError(
                f"allowed must be a boolean mask of length {items.shape[0]}, got {mask.shape}"
            )
    return _most_similar(items, query_, positive_int("n_top", n_top), mask)


def _most_similar(
    items: FloatArray, query: FloatArray, n_top: int, allowed: NDArray[np.bool_] | None
) -> IndexArray:
    # Score every row and mask the scores: indexing the rows first would copy the matrix.
    similarity = items @ query
    n_allowed = similarity.size
    if allowed is not None:
        similarity[~allowed] = -np.inf
        n_allowed = int(np.count_nonzero(allowed))
    n_top = min(n_top, n_allowed)
    if n_top == 0:
        return np.zeros(0, dtype=np.intp)
    if n_top < similarity.size:
        # argpartition is O(n); only the n_top kept are sorted.
        keep = np.argpartition(-similarity, n_top - 1)[:n_top]
    else:
        keep = np.arange(similarity.size)
    result: IndexArray = keep[np.lexsort((keep, -similarity[keep]))]
    return result


def cluster_affinity(centers: npt.ArrayLike, embeddings: npt.ArrayLike) -> FloatArray:
    """Return the (k, n) cosine of each cluster centre and each item embedding.

    An item with a zero embedding (none known) gets NaN: it has no affinity to any cluster,
    and :func:`bandits.affinity.affinity_params` starts its arms at the catalog prior.

    >>> cluster_affinity([[1.0, 0.0], [0.0, 2.0]], [[3.0, 4.0], [0.0, 0.0]]).tolist()
    [[0.6, nan], [0.8, nan]]
    """
    centers_ = finite_matrix("centers", centers)
    items = finite_matrix("embeddings", embeddings)
    if centers_.shape[1] != items.shape[1]:
        raise ValueError(
            f"centers and embeddings must have the same dimension; "
            f"got {centers_.shape[1]} and {items.shape[1]}"
        )
    item_norms = np.linalg.norm(items, axis=1)
    center_norms = np.linalg.norm(centers_, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        cosine: FloatArray = (centers_ @ items.T) / np.outer(center_norms, item_norms)
    cosine[:, item_norms == 0.0] = np.nan
    return np.clip(cosine, -1.0, 1.0)
