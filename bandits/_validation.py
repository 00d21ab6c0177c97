"""Argument checks shared by the public functions: each raises ValueError naming the value."""

from __future__ import annotations

import math
import numbers
import reprlib

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
    require(name, array, np.isfinite(array) & (array >= 0.0), "finite and >= 0")
    return array


def beta_shapes(
    alpha: npt.ArrayLike, beta: npt.ArrayLike
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Return Beta shape arrays as float64, or raise ValueError unless same-shaped, finite, > 0."""
    alpha_ = float_array("alpha", alpha)
    beta_ = float_array("beta", beta)
    same_shape(("alpha", "beta"), alpha_, beta_)
    require("alpha", alpha_, np.isfinite(alpha_) & (alpha_ > 0.0), "finite and > 0")
    require("beta", beta_, np.isfinite(beta_) & (beta_ > 0.0), "finite and > 0")
    return alpha_, beta_


def real_scalar(name: str, value: object) -> float:
    """Return ``value`` as a float, or raise ValueError if it is not a finite real number."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a finite real number, got {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{name} must be a finite real number, got {value!r}")
    return number


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
