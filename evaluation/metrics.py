"""Accuracy and beyond-accuracy metrics over served lists; pure numpy.

``lists`` is always an (n_lists, k) integer array of item indices, one served list per row.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from numpy.typing import NDArray

from bandits.validation import nonnegative, positive_int
from clustering import normalize_rows

FloatArray = NDArray[np.float64]
IndexArray = NDArray[np.intp]
BoolArray = NDArray[np.bool_]

HEAD_SHARE = 0.2


def ctr(clicks: npt.ArrayLike, impressions: npt.ArrayLike) -> float:
    """Return total clicks over total impressions (0.0 with no impressions).

    >>> ctr([[True, False], [False, False]], [[True, True], [True, False]])
    0.3333333333333333
    """
    clicks_ = np.asarray(clicks, dtype=bool)
    impressions_ = np.asarray(impressions, dtype=bool)
    if clicks_.shape != impressions_.shape:
        raise ValueError(
            f"clicks and impressions must have the same shape; "
            f"got {clicks_.shape} and {impressions_.shape}"
        )
    shown = int(np.count_nonzero(impressions_))
    return int(np.count_nonzero(clicks_ & impressions_)) / shown if shown else 0.0


def cumulative_regret(best: npt.ArrayLike, expected: npt.ArrayLike) -> FloatArray:
    """Return the running sum of expected clicks lost against the best list, step by step.

    >>> cumulative_regret([0.3, 0.3, 0.2], [0.1, 0.3, 0.15]).round(6)
    array([0.2 , 0.2 , 0.25])
    """
    best_ = nonnegative("best", best)
    expected_ = nonnegative("expected", expected)
    if best_.shape != expected_.shape or best_.ndim != 1:
        raise ValueError(
            f"best and expected must be 1-D of one length; got {best_.shape}, {expected_.shape}"
        )
    return np.cumsum(best_ - expected_)


def catalog_coverage(lists: npt.ArrayLike, n_items: int) -> float:
    """Return the share of the catalog served at least once.

    >>> catalog_coverage([[0, 1], [1, 2]], 6)
    0.5
    """
    lists_ = _lists(lists, positive_int("n_items", n_items))
    return int(np.unique(lists_).size) / n_items


def novelty(lists: npt.ArrayLike, popularity: npt.ArrayLike) -> float:
    """Return the mean over served items of ``1 - log(1 + pop) / log(1 + max pop)``, in [0, 1].

    The most popular item scores 0 and an item never seen before scores 1.

    >>> novelty([[0, 1], [2, 2]], [0, 1, 3])
    0.375
    """
    pop = nonnegative("popularity", popularity)
    lists_ = _lists(lists, pop.size)
    top = float(pop.max(initial=0.0))
    if top == 0.0:
        return 1.0
    per_item = 1.0 - np.log1p(pop) / math.log1p(top)
    return float(per_item[lists_].mean())


def intra_list_diversity(lists: npt.ArrayLike, embeddings: npt.ArrayLike) -> float:
    """Return the mean over lists of the mean pairwise cosine distance of the items' embeddings.

    >>> intra_list_diversity([[0, 1, 2]], [[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    0.6666666666666667
    """
    unit = normalize_rows(embeddings)
    lists_ = _lists(lists, unit.shape[0])
    k = lists_.shape[1]
    if k < 2:
        raise ValueError(f"intra-list diversity needs lists of >= 2 items, got k={k}")
    vectors = unit[lists_]  # (n, k, d)
    similarity = np.einsum("nid,njd->n", vectors, vectors) - np.einsum(
        "nid,nid->n", vectors, vectors
    )
    return float(np.mean(1.0 - similarity / (k * (k - 1))))


def long_tail(popularity: npt.ArrayLike, head_share: float = HEAD_SHARE) -> BoolArray:
    """Return which items are in the long tail: outside the top ``head_share`` by popularity.

    The head has ``ceil(head_share * n_items)`` items; ties go to the lower index.

    >>> long_tail([5, 0, 9, 1, 1]).tolist()
    [True, True, False, True, True]
    """
    pop = nonnegative("popularity", popularity)
    if pop.ndim != 1:
        raise ValueError(f"popularity must be 1-D, got shape {pop.shape}")
    if not 0.0 <= head_share <= 1.0:
        raise ValueError(f"head_share must be in [0, 1], got {head_share!r}")
    n_head = math.ceil(head_share * pop.size)
    tail = np.ones(pop.size, dtype=bool)
    tail[np.argsort(-pop, kind="stable")[:n_head]] = False
    return tail


def average_popularity_lift(lists: npt.ArrayLike, tail: npt.ArrayLike) -> float:
    """Return APL: the mean over lists of the share of long-tail items in the list.

    >>> average_popularity_lift([[0, 1], [1, 2]], [True, False, False])
    0.25
    """
    tail_ = np.asarray(tail, dtype=bool)
    lists_ = _lists(lists, tail_.size)
    return float(tail_[lists_].mean())


def long_tail_coverage(lists: npt.ArrayLike, tail: npt.ArrayLike) -> float:
    """Return the share of long-tail items served at least once (0.0 with no long tail).

    >>> long_tail_coverage([[0, 1], [1, 2]], [True, False, False, True])
    0.5
    """
    tail_ = np.asarray(tail, dtype=bool)
    lists_ = _lists(lists, tail_.size)
    n_tail = int(np.count_nonzero(tail_))
    if n_tail == 0:
        return 0.0
    served = np.zeros(tail_.size, dtype=bool)
    served[lists_.ravel()] = True
    return int(np.count_nonzero(served & tail_)) / n_tail


def serendipity(lists: npt.ArrayLike, relevant: npt.ArrayLike, baseline: npt.ArrayLike) -> float:
    """Return the mean over lists of the share of slots holding a relevant item not in ``baseline``.

    ``relevant`` is (n_lists, k) booleans (e.g. clicked); ``baseline`` the items a popularity
    baseline would have shown.

    >>> serendipity([[0, 1], [2, 3]], [[True, True], [False, True]], [0, 2])
    0.5
    """
    relevant_ = np.asarray(relevant, dtype=bool)
    lists_ = np.asarray(lists)
    if relevant_.shape != lists_.shape:
        raise ValueError(
            f"lists and relevant must have the same shape; got {lists_.shape}, {relevant_.shape}"
        )
    lists_ = _lists(lists_, int(max(lists_.max(initial=0), np.max(baseline, initial=0))) + 1)
    unexpected = ~np.isin(lists_, np.asarray(baseline))
    return float((relevant_ & unexpected).mean())


def _lists(lists: npt.ArrayLike, n_items: int) -> IndexArray:
    array = np.asarray(lists)
    if array.ndim != 2 or array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(f"lists must be a non-empty (n_lists, k) array, got shape {array.shape}")
    if array.dtype.kind not in "iu":
        raise ValueError(f"lists must hold integer item indices, got dtype {array.dtype}")
    if bool(np.any((array < 0) | (array >= n_items))):
        bad = array[(array < 0) | (array >= n_items)][0]
        raise ValueError(f"lists must hold item indices in [0, {n_items}), got {int(bad)}")
    return array.astype(np.intp)
