"""Each metric against a small example computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from evaluation import metrics


def test_ctr_counts_clicks_on_impressions_only():
    clicks = [[True, True], [False, False]]
    impressions = [[True, False], [True, True]]  # the second click had no impression
    assert metrics.ctr(clicks, impressions) == pytest.approx(1 / 3)
    assert metrics.ctr([[False]], [[False]]) == 0.0


def test_cumulative_regret_sums_the_gap_to_the_best_list():
    assert metrics.cumulative_regret([0.5, 0.4, 0.4], [0.1, 0.4, 0.3]).tolist() == pytest.approx(
        [0.4, 0.4, 0.5]
    )


def test_catalog_coverage_is_the_share_of_items_ever_served():
    assert metrics.catalog_coverage([[0, 1, 2], [2, 3, 0]], 8) == 0.5


def test_novelty_is_mean_inverse_log_popularity_in_unit_range():
    # popularity 0, 3, 15: per item 1 - log(1+p)/log(16) = 1, 1/2, 0.
    lists = [[0, 1], [1, 2]]
    assert metrics.novelty(lists, [0, 3, 15]) == pytest.approx((1 + 0.5 + 0.5 + 0) / 4)


def test_intra_list_diversity_is_mean_pairwise_cosine_distance():
    embeddings = [[1.0, 0.0], [0.0, 2.0], [-1.0, 0.0], [1.0, 1.0]]
    # List 1: items 0, 1, 2: distances 1, 2, 1 -> 4/3. List 2: items 0, 3: 1 - 1/sqrt(2).
    first = metrics.intra_list_diversity([[0, 1, 2]], embeddings)
    assert first == pytest.approx(4 / 3)
    second = metrics.intra_list_diversity([[0, 3]], embeddings)
    assert second == pytest.approx(1 - 1 / math.sqrt(2))


def test_long_tail_is_everything_outside_the_top_fifth_by_impressions():
    popularity = [50, 1, 2, 40, 3, 0, 0, 9, 8, 7]  # top 20% of 10 items = items 0 and 3
    tail = metrics.long_tail(popularity)
    assert np.flatnonzero(~tail).tolist() == [0, 3]


def test_apl_is_the_mean_share_of_long_tail_items_per_list():
    tail = [False, True, True, True]
    # Lists hold 0/2, 1/2 and 2/2 long-tail items: APL = (0 + 0.5 + 1) / 3.
    assert metrics.average_popularity_lift([[0, 0], [0, 1], [2, 3]], tail) == pytest.approx(0.5)


def test_long_tail_coverage_is_the_share_of_tail_items_served():
    tail = [False, True, True, True, True]
    assert metrics.long_tail_coverage([[0, 1], [1, 4]], tail) == 0.5


def test_serendipity_counts_relevant_items_the_popular_list_lacks():
    lists = [[0, 1, 2], [3, 0, 4]]
    relevant = [[True, True, False], [True, True, False]]
    # Baseline shows 0 and 3; relevant and unexpected: item 1 only -> 1 of 6 slots.
    assert metrics.serendipity(lists, relevant, [0, 3]) == pytest.approx(1 / 6)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: metrics.catalog_coverage([[0, 9]], 5), "got 9"),
        (lambda: metrics.catalog_coverage([0, 1], 5), r"shape \(2,\)"),
        (lambda: metrics.novelty([[0]], [-1.0]), "popularity"),
        (lambda: metrics.intra_list_diversity([[0]], [[1.0, 0.0]]), "k=1"),
        (lambda: metrics.long_tail([1, 2], head_share=1.5), "1.5"),
        (lambda: metrics.cumulative_regret([1.0], [1.0, 2.0]), "one length"),
    ],
)
def test_bad_arguments_raise_value_error_naming_the_value(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_every_plot_labels_both_axes() -> None:
    import matplotlib.pyplot as plt

    from evaluation.report import PLOTS, figures

    rows = [
        {"policy": p, "step_end": s, "cumulative_regret": s / 10, "ctr": 0.05,
         "below_median_share": 0.4}
        for p in ("random", "cluster-ts") for s in (100, 200, 300)
    ]  # fmt: skip
    drawn = figures(rows)
    assert sorted(drawn) == sorted(name for name, *_ in PLOTS)
    for name, fig in drawn.items():
        (ax,) = fig.axes
        assert ax.get_xlabel() and ax.get_ylabel(), name
        plt.close(fig)
