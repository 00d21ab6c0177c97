"""Soft membership: one posterior per arm from several clusters' posteriors and weights."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from numpy.typing import NDArray

from bandits.validation import beta_shapes, nonnegative

FloatArray = NDArray[np.float64]


def mix_posteriors(
    alpha: npt.ArrayLike, beta: npt.ArrayLike, weights: npt.ArrayLike
) -> tuple[FloatArray, FloatArray]:
    """Return Beta parameters whose counts are the weight-mixed counts of each cluster's arm.

    ``alpha`` and ``beta`` are (m, n): m clusters' posteriors over the same n arms, all with
    the same prior; ``weights`` (m,) are the user's memberships and sum to 1. Mixing the
    counts (not the distributions) keeps one Beta per arm, so sampling stays one vectorised
    draw; with prior p, sum_c w_c (p + count_c) = p + sum_c w_c count_c, so mixing the
    parameters is mixing the counts.

    >>> a, b = mix_posteriors([[11.0, 1.0], [1.0, 5.0]], [[91.0, 1.0], [11.0, 7.0]], [0.75, 0.25])
    >>> a.tolist(), b.tolist()
    ([8.5, 2.0], [71.0, 2.5])
    """
    alpha_, beta_ = beta_shapes(alpha, beta)
    if alpha_.ndim != 2:
        raise ValueError(f"alpha and beta must be 2-D (clusters, arms), got shape {alpha_.shape}")
    weights_ = nonnegative("weights", weights)
    if weights_.shape != (alpha_.shape[0],):
        raise ValueError(
            f"weights must have one entry per cluster ({alpha_.shape[0]}), got {weights_.shape}"
        )
    # A few weights: summing them in Python costs a fraction of a numpy reduction.
    if abs(math.fsum(weights_.tolist()) - 1.0) > 1e-9:
        raise ValueError(f"weights must sum to 1, got {weights_.sum()!r}")
    return np.dot(weights_, alpha_), np.dot(weights_, beta_)
