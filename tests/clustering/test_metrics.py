"""Adjusted Rand index against hand computations, and cluster sizes."""

import math

import numpy as np
import pytest

from clustering import adjusted_rand_index, cluster_sizes


def test_ari_is_one_for_the_same_partition_under_any_names() -> None:
    truth = np.array([0, 0, 1, 1, 2, 2, 2])
    assert adjusted_rand_index(truth, truth) == 1.0
    assert adjusted_rand_index(truth, [7, 7, 3, 3, 9, 9, 9]) == 1.0
    assert adjusted_rand_index(truth, ["b", "b", "a", "a", "c", "c", "c"]) == 1.0


def test_ari_by_hand() -> None:
    """true = 000111, pred = 001122: pair counts give ARI = (2 - 1.2) / (4.5 - 1.2) = 8/33.

    Contingency cells 2, 1, 1, 2 -> sum C(n_ij, 2) = 2; rows 3, 3 -> 6; columns 2, 2, 2 -> 3;
    C(6, 2) = 15; expected index 6 * 3 / 15 = 1.2; max index (6 + 3) / 2 = 4.5.
    """
    assert adjusted_rand_index([0, 0, 0, 1, 1, 1], [0, 0, 1, 1, 2, 2]) == pytest.approx(
        8.0 / 33.0, rel=1e-15
    )
    # Cells 2, 1, 1 -> 1; rows 2, 2 -> 2; columns 2, 1, 1 -> 1; C(4, 2) = 6: ARI = 4/7.
    assert adjusted_rand_index([0, 0, 1, 1], [0, 0, 1, 2]) == pytest.approx(4.0 / 7.0, rel=1e-15)


def test_ari_is_symmetric() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 4, 300), rng.integers(0, 6, 300)
    assert adjusted_rand_index(a, b) == adjusted_rand_index(b, a)


def test_ari_of_independent_labellings_is_near_zero() -> None:
    rng = np.random.default_rng(1)
    score = adjusted_rand_index(rng.integers(0, 5, 20_000), rng.integers(0, 5, 20_000))
    assert abs(score) < 0.01


def test_ari_edge_cases() -> None:
    # One cluster against all singletons: no pair agrees beyond chance.
    assert adjusted_rand_index([0, 0, 0, 0], [0, 1, 2, 3]) == 0.0
    # The same trivial partition on both sides, by convention 1.0.
    assert adjusted_rand_index([0, 0, 0], [1, 1, 1]) == 1.0
    assert adjusted_rand_index([0, 1, 2], [2, 0, 1]) == 1.0
    assert adjusted_rand_index([5], [3]) == 1.0
    assert adjusted_rand_index([], []) == 1.0
    # Worse than chance is negative.
    assert adjusted_rand_index([0, 0, 1, 1], [0, 1, 0, 1]) == pytest.approx(-0.5)


def test_ari_is_exact_for_many_points() -> None:
    """Pair counts reach ~5e11 for a million points; exact integers keep the result exact."""
    truth = np.repeat(np.arange(4), 250_000)
    pred = truth.copy()
    pred[:1000] = 1
    assert math.isclose(adjusted_rand_index(truth, pred), adjusted_rand_index(pred, truth))
    assert 0.99 < adjusted_rand_index(truth, pred) < 1.0


@pytest.mark.parametrize(
    ("labels_true", "labels_pred", "match"),
    [
        ([0, 1, 1], [0, 1], "same length; got 3 and 2"),
        ([[0, 1]], [[0, 1]], r"labels_true must be 1-D, got shape \(1, 2\)"),
        ([0.0, np.nan], [0, 1], "labels_true must not contain NaN"),
    ],
)
def test_ari_rejects_bad_labels(labels_true: object, labels_pred: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        adjusted_rand_index(labels_true, labels_pred)  # type: ignore[arg-type]


def test_cluster_sizes_counts_every_cluster_including_empty_ones() -> None:
    sizes = cluster_sizes(np.array([0, 2, 2, 4], dtype=np.intp), 6)
    np.testing.assert_array_equal(sizes, [1, 0, 2, 0, 1, 0])
    assert sizes.dtype == np.int64
    np.testing.assert_array_equal(cluster_sizes([], 3), [0, 0, 0])


@pytest.mark.parametrize(
    ("labels", "n_clusters", "match"),
    [
        ([0, 3], 3, r"labels must be in \[0, 3\); got labels\[1\] = 3"),
        ([-1, 0], 3, r"labels\[0\] = -1"),
        ([0.0, 1.0], 3, "labels must be integers, got dtype float64"),
        ([[0, 1]], 3, "labels must be 1-D"),
        ([0, 1], 0, "n_clusters must be an integer >= 1, got 0"),
        ([0, 1], 2.0, "n_clusters must be an integer >= 1, got 2.0"),
    ],
)
def test_cluster_sizes_rejects_bad_input(labels: object, n_clusters: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        cluster_sizes(labels, n_clusters)  # type: ignore[arg-type]
