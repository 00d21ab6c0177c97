"""Row normalisation and user vectors."""

import math

import numpy as np
import pytest

from clustering import normalize_rows, user_vector


def test_normalize_rows_gives_unit_rows_and_keeps_zero_rows() -> None:
    matrix = np.array([[3.0, 4.0, 0.0], [0.0, 0.0, 0.0], [-1.0, 1.0, 1.0]])
    unit = normalize_rows(matrix)
    np.testing.assert_allclose(unit[0], [0.6, 0.8, 0.0], rtol=1e-15)
    np.testing.assert_array_equal(unit[1], [0.0, 0.0, 0.0])
    np.testing.assert_allclose(unit[2], np.array([-1.0, 1.0, 1.0]) / math.sqrt(3.0), rtol=1e-15)
    assert unit.dtype == np.float64
    np.testing.assert_array_equal(matrix[0], [3.0, 4.0, 0.0])  # input untouched


def test_normalize_rows_survives_huge_and_tiny_entries() -> None:
    unit = normalize_rows([[3e200, 4e200], [3e-200, 4e-200], [1e308, 1e308]])
    np.testing.assert_allclose(unit, [[0.6, 0.8], [0.6, 0.8], [2**-0.5, 2**-0.5]], rtol=1e-15)


def test_normalize_rows_is_idempotent_and_accepts_empty_shapes() -> None:
    rng = np.random.default_rng(0)
    unit = normalize_rows(rng.normal(size=(50, 8)))
    np.testing.assert_allclose(np.linalg.norm(unit, axis=1), 1.0, rtol=1e-15)
    np.testing.assert_allclose(normalize_rows(unit), unit, rtol=1e-15)
    assert normalize_rows(np.zeros((0, 4))).shape == (0, 4)
    assert normalize_rows(np.zeros((3, 0))).shape == (3, 0)


@pytest.mark.parametrize(
    ("matrix", "match"),
    [
        ([[1.0, np.nan]], r"matrix must be finite; got matrix\[0, 1\] = nan"),
        ([[1.0, 2.0], [np.inf, 0.0]], r"matrix\[1, 0\] = inf"),
        ([1.0, 2.0], r"matrix must be 2-D \(rows x features\), got shape \(2,\)"),
    ],
)
def test_normalize_rows_rejects_bad_input(matrix: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        normalize_rows(matrix)  # type: ignore[arg-type]


def test_user_vector_is_the_unit_mean_of_the_rows() -> None:
    rows = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [1.0, 1.0, 0.0]])
    np.testing.assert_allclose(user_vector(rows), [2**-0.5, 2**-0.5, 0.0], rtol=1e-15)
    np.testing.assert_allclose(user_vector([[0.0, -2.0]]), [0.0, -1.0], rtol=1e-15)


def test_user_vector_of_cancelling_rows_is_zero() -> None:
    np.testing.assert_array_equal(user_vector([[1.0, 2.0], [-1.0, -2.0]]), [0.0, 0.0])
    np.testing.assert_array_equal(user_vector(np.zeros((4, 3))), [0.0, 0.0, 0.0])


def test_user_vector_does_not_overflow() -> None:
    np.testing.assert_allclose(user_vector([[1e308, 0.0], [1e308, 0.0]]), [1.0, 0.0])


@pytest.mark.parametrize(
    ("rows", "match"),
    [
        (np.zeros((0, 3)), "item_embeddings must have at least one row"),
        ([[1.0, np.nan]], r"item_embeddings\[0, 1\] = nan"),
        ([1.0, 2.0], "item_embeddings must be 2-D"),
    ],
)
def test_user_vector_rejects_bad_input(rows: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        user_vector(rows)  # type: ignore[arg-type]
