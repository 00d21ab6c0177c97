"""Hard assignment by cosine similarity, the way the service assigns a user to a cluster."""

import numpy as np
import pytest

from clustering import KMeans, assign_hard, normalize_rows, user_vector

N_BLOBS = 8
DIM = 16


def unit_blobs(seed: int, per_blob: int = 100) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unit vectors scattered (sd 0.05 per coordinate) around 8 random unit directions."""
    rng = np.random.default_rng(seed)
    directions = normalize_rows(rng.normal(size=(N_BLOBS, DIM)))
    truth = np.repeat(np.arange(N_BLOBS), per_blob)
    points = normalize_rows(directions[truth] + rng.normal(0.0, 0.05, (truth.size, DIM)))
    return points, truth, directions


def test_a_new_vector_near_blob_j_lands_in_blob_js_cluster() -> None:
    points, truth, directions = unit_blobs(0)
    model = KMeans(n_clusters=N_BLOBS).fit(points, np.random.default_rng(0))
    unit_centers = normalize_rows(model.centers_)
    rng = np.random.default_rng(1)
    for blob in range(N_BLOBS):
        cluster_of_blob = np.bincount(model.labels_[truth == blob]).argmax()
        # A user who engaged with three items near this blob's direction.
        items = directions[blob] + rng.normal(0.0, 0.05, (3, DIM))
        vector = user_vector(items)
        assigned = assign_hard(vector[None, :], unit_centers)
        assert assigned.shape == (1,)
        assert assigned.dtype == np.intp
        assert assigned[0] == cluster_of_blob


def test_assign_hard_agrees_with_kmeans_on_unit_vectors() -> None:
    """On unit vectors, nearest centre and most cosine-similar centre almost always agree."""
    points, _, _ = unit_blobs(2)
    model = KMeans(n_clusters=N_BLOBS).fit(points, np.random.default_rng(2))
    agreement = np.mean(assign_hard(points, model.centers_) == model.labels_)
    assert agreement >= 0.99


def test_assign_hard_ignores_lengths_and_sends_zero_vectors_to_cluster_0() -> None:
    centers = np.array([[10.0, 0.0], [0.0, 0.1], [-3.0, -3.0]])
    vectors = np.array([[0.2, 0.1], [0.1, 50.0], [-1.0, -0.9], [0.0, 0.0]])
    np.testing.assert_array_equal(assign_hard(vectors, centers), [0, 1, 2, 0])


def test_assign_hard_breaks_ties_towards_the_lower_index() -> None:
    centers = np.array([[1.0, 0.0], [0.0, 1.0]])
    np.testing.assert_array_equal(assign_hard([[1.0, 1.0]], centers), [0])


def test_assign_hard_of_no_vectors_is_empty() -> None:
    assert assign_hard(np.zeros((0, 2)), np.eye(2)).shape == (0,)


@pytest.mark.parametrize(
    ("vectors", "centers", "match"),
    [
        ([[1.0, 0.0]], [[1.0, 0.0, 0.0]], "same dimension; got 2 and 3"),
        ([1.0, 0.0], [[1.0, 0.0]], r"vectors must be 2-D \(rows x features\), got shape \(2,\)"),
        ([[1.0, 0.0]], [1.0, 0.0], "centers must be 2-D"),
        ([[1.0, np.nan]], [[1.0, 0.0]], r"vectors\[0, 1\] = nan"),
        ([[1.0, 0.0]], [[np.inf, 0.0]], r"centers\[0, 0\] = inf"),
        ([[1.0, 0.0]], np.zeros((0, 2)), "centers must have at least one row"),
    ],
)
def test_assign_hard_rejects_bad_input(vectors: object, centers: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        assign_hard(vectors, centers)  # type: ignore[arg-type]
