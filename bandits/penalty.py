"""Seen-decay: score multipliers that fade items a user was shown and did not click."""

from __future__ import annotations

import numbers

import numpy as np
import numpy.typing as npt
from numpy.typing import NDArray

from bandits.validation import float_array, nonnegative, real_scalar, require, same_shape

FloatArray = NDArray[np.float64]


def seen_decay(unclicked: npt.ArrayLike, gamma: float) -> FloatArray:
    """Return the score multiplier ``gamma ** unclicked`` for each item.

    ``unclicked`` counts (possibly time-decayed, so fractional) impressions without a click.

    >>> seen_decay([0, 1, 4], 0.5)
    array([1.    , 0.5   , 0.0625])
    """
    unclicked_ = nonnegative("unclicked", unclicked)
    gamma_ = real_scalar("gamma", gamma)
    if not 0.0 < gamma_ <= 1.0:
        raise ValueError(f"gamma must be in (0, 1], got {gamma!r}")
    return _seen_decay(unclicked_, gamma_)


def decayed_counts(counts: npt.ArrayLike, ages_s: npt.ArrayLike, half_life_s: float) -> FloatArray:
    """Return ``counts`` halved once per ``half_life_s`` seconds of age (math.inf: no decay).

    Negative ages (clock skew) count as zero.

    >>> decayed_counts([2.0, 2.0, 2.0], [0.0, 3600.0, -5.0], 3600.0)
    array([2., 1., 2.])
    """
    counts_ = nonnegative("counts", counts)
    ages = float_array("ages_s", ages_s)
    require("ages_s", ages, np.isfinite(ages), "finite")
    same_shape(("counts", "ages_s"), counts_, ages)
    if isinstance(half_life_s, bool) or not isinstance(half_life_s, numbers.Real):
        raise ValueError(f"half_life_s must be a number > 0 or math.inf, got {half_life_s!r}")
    half_life = float(half_life_s)
    if not half_life > 0.0:  # also rejects NaN
        raise ValueError(f"half_life_s must be a number > 0 or math.inf, got {half_life_s!r}")
    return _decayed_counts(counts_, ages, half_life)


# -- kernels on trusted arrays -----------------------------------------------------------


def _seen_decay(unclicked: FloatArray, gamma: float) -> FloatArray:
    return np.power(gamma, unclicked)


def _decayed_counts(counts: FloatArray, ages: FloatArray, half_life: float) -> FloatArray:
    # exp2 of a non-positive exponent: no overflow, and inf half-life gives exactly 1.
    return counts * np.exp2(-np.maximum(ages, 0.0) / half_life)
