"""Argument checks shared by the pure packages: each raises ValueError naming the value."""

from __future__ import annotations

import math
import numbers
import reprlib
from typing import TypeGuard

import numpy as np
import numpy.typing as npt
from numpy.typing import NDArray


def float_array(name: str, value: npt.ArrayLike) -> NDArray[np.float64]:
    """Return ``value`` as a float64 array, or raise ValueError if it is not numeric."""
    try:
        return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be an array of numbers, got {reprlib.repr(value)}") from exc


def require(name: str, values: NDArray[np.float64], ok: NDArray[np.bool_], what: str) -> None:
    """Raise ValueError quoting the first element of ``values`` where ``ok`` is False."""
    if bool(np.all(ok)):
        return
    where = tuple(int(i) for i in np.argwhere(~ok)[0])
    if where:
        label = f"{name}[{', '.join(map(str, where))}]"
        raise ValueError(f"{name} must be {what}; got {label} = {values.item(where)!r}")
    raise ValueError(f"{name} must be {what}; got {name} = {values.item()!r}")


def same_shape(
    names: tuple[str, str], first: NDArray[np.generic], second: NDArray[np.generic]
) -> None:
    """Raise ValueError if the two arrays do not have the same shape."""
    if first.shape != second.shape:
        raise ValueError(
            f"{names[0]} and {names[1]} must have the same shape; "
            f"got {first.shape} and {second.shape}"
        )


def nonnegative(name: str, value: npt.ArrayLike) -> NDArray[np.float64]:
    """Return ``value`` as a float64 array, or raise ValueError unless all finite and >= 0."""
    array = float_array(name, value)
    if not _finite_nonnegative(array):
        require(name, array, np.isfinite(array) & (array >= 0.0), "finite and >= 0")
    return array


def beta_shapes(
    alpha: npt.ArrayLike, beta: npt.ArrayLike
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Return Beta shape arrays as float64, or raise ValueError unless same-shaped, finite, > 0."""
    alpha_ = float_array("alpha", alpha)
    beta_ = float_array("beta", beta)
    same_shape(("alpha", "beta"), alpha_, beta_)
    if not _finite_positive(alpha_):
        require("alpha", alpha_, np.isfinite(alpha_) & (alpha_ > 0.0), "finite and > 0")
    if not _finite_positive(beta_):
        require("beta", beta_, np.isfinite(beta_) & (beta_ > 0.0), "finite and > 0")
    return alpha_, beta_


# The checks below run on every call of the public functions, so they avoid building
# element-wise masks (several temporaries and ufunc reductions per array): argmin and
# argmax cost a fraction of a min reduction, and both return the first NaN if there is
# one, so the extreme values they point at are NaN, out of range, or prove the whole
# array in range.


def _extremes(values: NDArray[np.float64]) -> tuple[float, float]:
    """Return (lowest, highest) of a non-empty array, NaN if it holds a NaN."""
    # argmin and argmax index the array in C order whatever its shape, as item() does.
    lowest: float = values.item(values.argmin())
    highest: float = values.item(values.argmax())
    return lowest, highest


def _finite_positive(values: NDArray[np.float64]) -> bool:
    """Return True if every element is finite and > 0."""
    if not values.size:
        return True
    lowest, highest = _extremes(values)
    return lowest > 0.0 and highest < math.inf


def _finite_nonnegative(values: NDArray[np.float64]) -> bool:
    """Return True if every element is finite and >= 0."""
    if not values.size:
        return True
    lowest, highest = _extremes(values)
    return lowest >= 0.0 and highest < math.inf


def any_nan(values: NDArray[np.float64]) -> bool:
    """Return True if the array holds a NaN."""
    return values.size > 0 and math.isnan(_extremes(values)[1])


def trusted_arms(
    alpha: object, beta: object, multipliers: object
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64] | None] | None:
    """Return 1-D float64 ``(alpha, beta, multipliers)`` if they are valid, else None.

    Valid means: float64 arrays of one 1-D shape, alpha and beta finite and > 0, multipliers
    (if given) finite and >= 0. None means not shown valid (a list, another dtype or shape,
    or a bad value): the caller then runs its usual checks, which name the bad value, so no
    error message or precedence between errors depends on this shortcut.
    """
    if not (_float_vector(alpha) and _float_vector(beta)) or alpha.shape != beta.shape:
        return None
    if not (_finite_positive(alpha) and _finite_positive(beta)):
        return None
    if multipliers is None:
        return alpha, beta, None
    if not _float_vector(multipliers) or multipliers.shape != alpha.shape:
        return None
    return (alpha, beta, multipliers) if _finite_nonnegative(multipliers) else None


def _float_vector(value: object) -> TypeGuard[NDArray[np.float64]]:
    return isinstance(value, np.ndarray) and value.dtype == np.float64 and value.ndim == 1


def real_scalar(name: str, value: object) -> float:
    """Return ``value`` as a float, or raise ValueError if it is not a finite real number."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a finite real number, got {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{name} must be a finite real number, got {value!r}")
    return number


def positive_scalar(name: str, value: object) -> float:
    """Return ``value`` as a float, or raise ValueError if it is not a finite real > 0."""
    number = real_scalar(name, value)
    if number <= 0.0:
        raise ValueError(f"{name} must be > 0, got {value!r}")
    return number


def positive_int(name: str, value: object) -> int:
    """Return ``value`` as an int, or raise ValueError if it is not an integer >= 1."""
    if type(value) is int and value >= 1:
        return value
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
