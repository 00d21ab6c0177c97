"""Seen-decay multipliers and time-decayed counts, against hand-computed values."""

import math

import numpy as np
import pytest

from bandits import decayed_counts, seen_decay


def test_seen_decay_by_hand() -> None:
    # 0.5 ** 4 = 0.0625; 0.8 ** 2.5 = 0.5724334022399462.
    np.testing.assert_allclose(seen_decay([0.0, 1.0, 4.0], 0.5), [1.0, 0.5, 0.0625], rtol=1e-15)
    np.testing.assert_allclose(seen_decay([2.5], 0.8), [0.5724334022399462], rtol=1e-15)


def test_seen_decay_with_gamma_one_is_all_ones() -> None:
    multipliers = seen_decay(np.array([[0.0, 3.0], [1e6, 0.25]]), 1.0)
    np.testing.assert_array_equal(multipliers, np.ones((2, 2)))
    assert multipliers.dtype == np.float64


def test_seen_decay_of_many_impressions_underflows_quietly_to_zero() -> None:
    np.testing.assert_array_equal(seen_decay([1e6], 0.5), [0.0])


@pytest.mark.parametrize("gamma", [0.0, -0.5, 1.0000001, math.nan, math.inf, True, "0.5"])
def test_seen_decay_rejects_bad_gamma(gamma: object) -> None:
    with pytest.raises(ValueError, match="gamma"):
        seen_decay([1.0], gamma)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("unclicked", "match"),
    [
        ([1.0, -1.0], r"unclicked must be finite and >= 0; got unclicked\[1\] = -1.0"),
        ([math.nan], r"unclicked\[0\] = nan"),
        ([math.inf], r"unclicked\[0\] = inf"),
    ],
)
def test_seen_decay_rejects_bad_counts(unclicked: list[float], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        seen_decay(unclicked, 0.5)


def test_decayed_counts_by_hand() -> None:
    counts = decayed_counts([2.0, 2.0, 8.0, 3.0], [0.0, 60.0, 180.0, 30.0], 60.0)
    # One half-life halves, three divide by eight, half of one divides by sqrt(2).
    np.testing.assert_allclose(counts, [2.0, 1.0, 1.0, 3.0 / math.sqrt(2.0)], rtol=1e-15)


def test_decayed_counts_treat_negative_ages_as_zero() -> None:
    np.testing.assert_array_equal(decayed_counts([4.0, 4.0], [-10.0, 0.0], 60.0), [4.0, 4.0])


def test_decayed_counts_with_infinite_half_life_do_not_decay() -> None:
    counts = np.array([0.0, 1.0, 7.5])
    np.testing.assert_array_equal(decayed_counts(counts, [0.0, 1e9, 3600.0], math.inf), counts)


def test_decay_then_seen_decay_compose() -> None:
    # 4 unclicked impressions one half-life ago count as 2, and 0.5 ** 2 = 0.25.
    unclicked = decayed_counts([4.0], [3600.0], 3600.0)
    np.testing.assert_allclose(seen_decay(unclicked, 0.5), [0.25], rtol=1e-15)


@pytest.mark.parametrize("half_life", [0.0, -60.0, math.nan, -math.inf, True, "60", None])
def test_decayed_counts_rejects_bad_half_life(half_life: object) -> None:
    with pytest.raises(ValueError, match=r"half_life_s must be a number > 0 or math\.inf"):
        decayed_counts([1.0], [1.0], half_life)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("counts", "ages", "match"),
    [
        ([-1.0], [0.0], r"counts must be finite and >= 0; got counts\[0\] = -1.0"),
        ([math.inf], [0.0], r"counts\[0\] = inf"),
        ([1.0], [math.nan], r"ages_s must be finite; got ages_s\[0\] = nan"),
        ([1.0], [math.inf], r"ages_s\[0\] = inf"),
        ([1.0, 2.0], [0.0], r"counts and ages_s must have the same shape"),
    ],
)
def test_decayed_counts_rejects_bad_arrays(counts: object, ages: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        decayed_counts(counts, ages, 60.0)  # type: ignore[arg-type]
