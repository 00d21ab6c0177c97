"""Argument checks: the combined check for the common call, and the messages naming values."""

import numpy as np
import pytest

from bandits import mix_posteriors, rank
from bandits.validation import any_nan, beta_shapes, nonnegative, trusted_arms

GOOD = np.array([1.0, 2.0, 3.0])


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf, 0.0, -0.0, -1.0])
def test_the_combined_check_refuses_every_bad_alpha_beta_or_multiplier(bad: float) -> None:
    spoiled = np.array([1.0, bad, 3.0])
    assert trusted_arms(spoiled, GOOD, None) is None
    assert trusted_arms(GOOD, spoiled, None) is None
    if bad in (0.0, -0.0):  # a zero multiplier is allowed; a zero shape is not
        assert trusted_arms(GOOD, GOOD, spoiled) is not None
    else:
        assert trusted_arms(GOOD, GOOD, spoiled) is None


@pytest.mark.parametrize(
    ("alpha", "beta", "multipliers"),
    [
        ([1.0, 2.0, 3.0], GOOD, None),  # a list
        (GOOD.astype(np.float32), GOOD, None),  # another dtype
        (GOOD, GOOD[:2], None),  # another shape
        (GOOD.reshape(1, 3), GOOD.reshape(1, 3), None),  # 2-D
        (GOOD, GOOD, [1.0, 1.0, 1.0]),  # multipliers as a list
        (GOOD, GOOD, np.ones(4)),  # multipliers of another shape
    ],
)
def test_the_combined_check_leaves_anything_unusual_to_the_full_checks(
    alpha: object, beta: object, multipliers: object
) -> None:
    assert trusted_arms(alpha, beta, multipliers) is None


def test_the_combined_check_accepts_valid_arrays_of_any_magnitude() -> None:
    """No sum is formed, so values near the float limits pass (a dot product would overflow)."""
    huge = np.array([1e300, 1e-300, 5e307])
    got = trusted_arms(huge, huge, np.array([0.0, 1e300, -0.0]))
    assert got is not None
    assert got[0] is huge
    assert trusted_arms(np.zeros(0), np.zeros(0), None) is not None
    assert trusted_arms(np.zeros(0), np.zeros(0), np.zeros(0)) is not None


def test_extreme_values_are_exact_for_strided_and_2d_arrays() -> None:
    values = np.arange(1.0, 13.0).reshape(3, 4)[:, ::2]  # non-contiguous
    assert beta_shapes(values, values)[0] is not None
    values = values.copy()
    values[2, 1] = np.nan
    with pytest.raises(ValueError, match=r"alpha\[2, 1\] = nan"):
        beta_shapes(values, np.ones((3, 2)))
    with pytest.raises(ValueError, match=r"weights\[1\] = -0.5"):
        mix_posteriors(np.ones((2, 3)), np.ones((2, 3)), [1.5, -0.5])
    with pytest.raises(ValueError, match=r"m\[0, 1\] = inf"):
        nonnegative("m", [[0.0, np.inf]])


def test_any_nan_finds_only_nan() -> None:
    assert not any_nan(np.array([np.inf, -np.inf, 1e308, -1e308]))
    assert any_nan(np.array([1.0, np.nan]))
    assert not any_nan(np.zeros(0))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"alpha": np.array([1.0, np.nan])}, r"alpha\[1\] = nan"),
        ({"beta": np.array([-0.0, 1.0])}, r"beta\[0\] = -0.0"),
        ({"multipliers": np.array([np.inf, 1.0])}, r"multipliers\[0\] = inf"),
        ({"k": np.int64(0)}, "k must be an integer >= 1"),
    ],
)
def test_rank_names_a_bad_value_given_as_float64_arrays(kwargs: dict, match: str) -> None:
    arguments: dict[str, object] = {
        "alpha": np.array([1.0, 2.0]),
        "beta": np.array([1.0, 2.0]),
        "k": 1,
        "rng": np.random.default_rng(0),
        "multipliers": np.array([1.0, 0.5]),
    }
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=match):
        rank(**arguments)  # type: ignore[arg-type]


def test_rank_accepts_numpy_integers_for_k() -> None:
    top, _ = rank(GOOD, GOOD, np.int64(2), np.random.default_rng(0))
    assert top.size == 2


def test_fill_quotas_rejects_nan_scores() -> None:
    from bandits import fill_quotas

    with pytest.raises(ValueError, match="scores must be a 1-D array of numbers"):
        fill_quotas([0.1, np.nan], [[0]], [1], 1)
