"""Argument checks shared by the public functions: each raises ValueError naming the value."""

from __future__ import annotations

import reprlib

import numpy as np
import numpy.typing as npt
from numpy.typing import NDArray

# The integer and Generator checks are the same for both pure packages: one definition.
from bandits.validation import generator, positive_int

__all__ = ["finite_matrix", "generator", "labels_1d", "positive_int"]


def finite_matrix(name: str, value: npt.ArrayLike) -> NDArray[np.float64]:
    """Return ``value`` as a 2-D float64 array, or raise ValueError unless 2-D and all finite."""
    try:
        matrix = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be an array of numbers, got {reprlib.repr(value)}") from exc
    if matrix.ndim != 2:
        raise ValueError(f"{name} must be 2-D (rows x features), got shape {matrix.shape}")
    finite = np.isfinite(matrix)
    if not bool(np.all(finite)):
        row, column = (int(i) for i in np.argwhere(~finite)[0])
        raise ValueError(
            f"{name} must be finite; got {name}[{row}, {column}] = {matrix.item(row, column)!r}"
        )
    return matrix


def labels_1d(name: str, value: npt.ArrayLike) -> NDArray[np.generic]:
    """Return ``value`` as a 1-D array, or raise ValueError if it is not 1-D or holds NaN."""
    labels = np.asarray(value)
    if labels.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {labels.shape}")
    if labels.dtype.kind in "fc" and not bool(np.all(np.isfinite(labels))):
        raise ValueError(f"{name} must not contain NaN or inf, got {reprlib.repr(labels)}")
    return labels
