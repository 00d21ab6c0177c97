"""Argument checks shared by the public functions: each raises ValueError naming the value."""

from __future__ import annotations

import numbers
import reprlib

import numpy as np
import numpy.typing as npt
from numpy.typing import NDArray


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


def positive_int(name: str, value: object) -> int:
    """Return ``value`` as an int, or raise ValueError if it is not an integer >= 1."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or int(value) < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)


def generator(name: str, value: object) -> np.random.Generator:
    """Return ``value`` unchanged, or raise ValueError if it is not a numpy Generator."""
    if not isinstance(value, np.random.Generator):
        raise ValueError(
            f"{name} must be a numpy.random.Generator (np.random.default_rng(seed)), got {value!r}"
        )
    return value
