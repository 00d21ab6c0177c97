"""Unit vectors: row-normalised embeddings and a user's vector from the items they engaged with."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from numpy.typing import NDArray

from clustering._validation import finite_matrix

FloatArray = NDArray[np.float64]


def normalize_rows(matrix: npt.ArrayLike) -> FloatArray:
    """Return ``matrix`` with every row scaled to unit L2 norm; all-zero rows stay zero.

    >>> normalize_rows([[3.0, 4.0], [0.0, 0.0]])
    array([[0.6, 0.8],
           [0. , 0. ]])
    """
    return _normalize_rows(finite_matrix("matrix", matrix))


def user_vector(item_embeddings: npt.ArrayLike) -> FloatArray:
    """Return the unit-length mean of the rows of ``item_embeddings`` (zero if the mean is zero).

    The rows are the embeddings of the items a user engaged with, one per item.

    >>> user_vector([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    array([0.70710678, 0.70710678])
    """
    embeddings = finite_matrix("item_embeddings", item_embeddings)
    if embeddings.shape[0] < 1:
        raise ValueError("item_embeddings must have at least one row, got shape (0, ...)")
    return _user_vector(embeddings)


# -- kernels on trusted arrays -----------------------------------------------------------


def _normalize_rows(matrix: FloatArray) -> FloatArray:
    # Dividing by each row's largest entry first keeps squares of 1e200 from overflowing
    # and squares of 1e-200 from underflowing to a zero norm.
    scale = np.max(np.abs(matrix), axis=1, keepdims=True, initial=0.0)
    scaled = np.divide(matrix, scale, out=np.zeros_like(matrix), where=scale > 0.0)
    norms = np.sqrt(np.einsum("ij,ij->i", scaled, scaled))[:, None]
    unit: FloatArray = np.divide(scaled, norms, out=np.zeros_like(matrix), where=norms > 0.0)
    return unit


def _user_vector(embeddings: FloatArray) -> FloatArray:
    # The direction does not depend on scale, so scale first: the sum of rows cannot overflow.
    scale = float(np.max(np.abs(embeddings), initial=0.0))
    if scale == 0.0:
        return np.zeros(embeddings.shape[1])
    mean: FloatArray = np.mean(embeddings / scale, axis=0)
    return _normalize_rows(mean[None, :]).reshape(-1)
