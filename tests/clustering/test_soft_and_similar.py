"""Soft membership weights and cosine nearest items."""

import numpy as np
import pytest

from clustering import assign_hard, assign_soft, most_similar, normalize_rows

CENTERS = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]])


def test_soft_weights_are_a_softmax_over_the_top_m_cosines() -> None:
    vector = np.array([[3.0, 1.0]])  # cosines: 0.949, 0.316, -0.949, -0.316
    weights = assign_soft(vector, CENTERS, temperature=0.5, top_m=3)
    cos = np.array([3.0, 1.0, -3.0, -1.0]) / np.sqrt(10)
    kept = np.exp(cos[[0, 1, 3]] / 0.5)
    expected = np.zeros(4)
    expected[[0, 1, 3]] = kept / kept.sum()
    np.testing.assert_allclose(weights[0], expected, rtol=1e-12)


def test_soft_weights_agree_with_hard_assignment_on_the_top_cluster() -> None:
    rng = np.random.default_rng(0)
    vectors, centers = rng.normal(size=(200, 8)), rng.normal(size=(5, 8))
    weights = assign_soft(vectors, centers, temperature=0.1, top_m=3)
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, rtol=1e-12)
    assert ((weights > 0).sum(axis=1) == 3).all()
    np.testing.assert_array_equal(weights.argmax(axis=1), assign_hard(vectors, centers))


def test_low_temperature_approaches_hard_and_m1_is_hard() -> None:
    vector = np.array([[2.0, 1.0]])
    assert assign_soft(vector, CENTERS, 1e-3, 4)[0, 0] == pytest.approx(1.0)
    np.testing.assert_array_equal(assign_soft(vector, CENTERS, 10.0, 1)[0], [1, 0, 0, 0])


def test_zero_vector_belongs_to_cluster_zero() -> None:
    np.testing.assert_array_equal(assign_soft([[0.0, 0.0]], CENTERS, 1.0, 3)[0], [1, 0, 0, 0])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"temperature": 0.0}, "temperature"),
        ({"temperature": float("nan")}, "temperature"),
        ({"top_m": 0}, "top_m"),
        ({"vectors": [[1.0, 0.0, 0.0]]}, "dimension"),
    ],
)
def test_soft_rejects_bad_arguments(kwargs: dict[str, object], match: str) -> None:
    args: dict[str, object] = {"vectors": [[1.0, 0.0]], "centers": CENTERS, "temperature": 1.0}
    args |= {"top_m": 2} | kwargs
    with pytest.raises(ValueError, match=match):
        assign_soft(**args)  # type: ignore[arg-type]


def test_most_similar_matches_a_full_sort() -> None:
    rng = np.random.default_rng(1)
    items = normalize_rows(rng.normal(size=(500, 16)))
    query = items[7]
    allowed = np.ones(500, dtype=bool)
    allowed[7] = False
    got = most_similar(items, query, 20, allowed)
    similarity = items @ query
    similarity[7] = -np.inf
    np.testing.assert_array_equal(got, np.argsort(-similarity, kind="stable")[:20])
    assert 7 not in got


def test_most_similar_returns_all_allowed_when_fewer_than_n() -> None:
    items = np.eye(3)
    np.testing.assert_array_equal(most_similar(items, [1.0, 0.0, 0.0], 10), [0, 1, 2])
    assert most_similar(items, [1.0, 0.0, 0.0], 10, np.zeros(3, dtype=bool)).size == 0


@pytest.mark.parametrize(
    ("query", "allowed", "n", "match"),
    [
        ([1.0, 0.0], None, 1, "query"),
        ([1.0, 0.0, float("nan")], None, 1, "query"),
        ([1.0, 0.0, 0.0], [1, 0, 1], 1, "allowed"),
        ([1.0, 0.0, 0.0], None, 0, "n_top"),
    ],
)
def test_most_similar_rejects_bad_arguments(query, allowed, n, match) -> None:
    with pytest.raises(ValueError, match=match):
        most_similar(np.eye(3), query, n, allowed)
