"""Clustering quality and bookkeeping: adjusted Rand index, cluster sizes."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from numpy.typing import NDArray

from clustering._validation import labels_1d, positive_int


def adjusted_rand_index(labels_true: npt.ArrayLike, labels_pred: npt.ArrayLike) -> float:
    """Return the adjusted Rand index of two labellings: 1.0 identical up to renaming, ~0 random.

    Labels may be any sortable values; only which points share a label matters.

    >>> adjusted_rand_index([0, 0, 1, 1], [5, 5, 3, 3])
    1.0
    >>> round(adjusted_rand_index([0, 0, 1, 1], [0, 0, 1, 2]), 6)
    0.571429
    """
    true = labels_1d("labels_true", labels_true)
    pred = labels_1d("labels_pred", labels_pred)
    if true.shape != pred.shape:
        raise ValueError(
            f"labels_true and labels_pred must have the same length; "
            f"got {true.shape[0]} and {pred.shape[0]}"
        )
    return _adjusted_rand_index(true, pred)


def cluster_sizes(labels: npt.ArrayLike, n_clusters: int) -> NDArray[np.int64]:
    """Return how many labels fall in each cluster 0 .. n_clusters - 1.

    >>> cluster_sizes([0, 2, 2], 4)
    array([1, 0, 2, 0])
    """
    k = positive_int("n_clusters", n_clusters)
    values = np.asarray(labels)
    if values.ndim != 1:
        raise ValueError(f"labels must be 1-D, got shape {values.shape}")
    if values.size == 0:
        return np.zeros(k, dtype=np.int64)
    if values.dtype.kind not in "iu":
        raise ValueError(f"labels must be integers, got dtype {values.dtype}")
    outside = (values < 0) | (values >= k)
    if bool(np.any(outside)):
        index = int(np.argmax(outside))
        raise ValueError(
            f"labels must be in [0, {k}); got labels[{index}] = {values.item(index)!r}"
        )
    return np.bincount(values, minlength=k).astype(np.int64)


# -- kernels on trusted arrays -----------------------------------------------------------


def _adjusted_rand_index(true: NDArray[np.generic], pred: NDArray[np.generic]) -> float:
    _, true_codes = np.unique(true, return_inverse=True)
    _, pred_codes = np.unique(pred, return_inverse=True)
    n_pred = int(pred_codes.max(initial=-1)) + 1
    # Only the non-empty cells of the contingency table: (true, pred) pairs coded as one int.
    pairs = true_codes.astype(np.int64) * n_pred + pred_codes
    _, cells = np.unique(pairs, return_counts=True)
    together = _pairs_within(cells)
    together_true = _pairs_within(np.bincount(true_codes))
    together_pred = _pairs_within(np.bincount(pred_codes))
    all_pairs = _pairs_within(np.array([true.size]))
    # (index - expected) / (max - expected), times 2 * all_pairs; Python ints keep it exact.
    numerator = 2 * (all_pairs * together - together_true * together_pred)
    denominator = all_pairs * (together_true + together_pred) - 2 * together_true * together_pred
    if denominator == 0:
        # Both labellings are the same trivial partition (one cluster, or all singletons).
        return 1.0
    return numerator / denominator


def _pairs_within(counts: NDArray[np.integer]) -> int:
    """Number of unordered pairs inside groups of the given sizes, as an exact Python int."""
    sizes = counts.astype(np.int64)
    return int(np.sum(sizes * (sizes - 1) // 2))
