"""Items, recommend, feedback exactness and dedupe, refresh, fit, logs, export and import
on a Redis Cluster: the tests of tests/service, collected here once more.

Only tests that reach Redis through the service (or through raw_client) are taken: the
ones that start servers of their own or drive the command line are single-node only.
"""

from __future__ import annotations

from tests.service.test_clusters import (
    test_feedback_through_another_worker_credits_the_new_generation,
    test_fit_separates_tastes_and_assigns_users,
    test_soft_feedback_splits_one_event_exactly_across_clusters,
)
from tests.service.test_concurrency import (
    test_eight_clients_with_overlapping_batches_count_each_event_once,
)
from tests.service.test_conversions import (
    test_a_conversion_counts_on_its_own_and_changes_nothing_else,
    test_a_conversion_without_rec_id_is_attributed_to_the_users_last_click,
)
from tests.service.test_count_shards import (
    test_a_claimed_event_in_one_shard_stops_the_writes_of_every_shard,
    test_the_race_after_the_marker_check_leaves_counts_exact,
)
from tests.service.test_dedupe import (
    pytestmark,
    raw,
    test_a_crash_between_counts_and_user_state_is_repaired_by_the_resend,
    test_a_repeated_event_id_applies_only_the_event_that_counted,
    test_an_event_id_reused_by_another_user_is_refused,
    test_an_event_id_used_by_two_users_in_one_batch_is_refused,
    test_markers_without_an_owner_are_duplicates_that_touch_nothing,
    test_users_sharing_a_script_call_each_get_only_their_own_events,
)
from tests.service.test_import_events import (
    test_a_rerun_counts_nothing_twice,
    test_an_import_next_to_live_feedback_loses_and_doubles_nothing,
)
from tests.service.test_policies import test_stats_count_each_event_once_and_compare_policies
from tests.service.test_retired_items import (
    test_an_item_without_counts_is_known_by_the_list_that_served_it,
    test_feedback_on_an_item_deleted_after_it_was_served_counts,
    test_items_never_known_are_refused,
)
from tests.service.test_served_log import (
    test_a_logged_list_is_lean_and_what_the_client_was_answered,
)
from tests.service.test_snapshot import (
    test_a_gap_in_the_change_stream_falls_back_to_a_full_reload,
    test_deltas_reproduce_a_full_reload_across_clusters,
)
from tests.service.test_state import (
    test_a_running_service_picks_up_an_import,
    test_acknowledged_events_stay_duplicates_after_a_move,
    test_export_without_users_leaves_them_out,
    test_import_refuses_a_store_with_state_unless_replace,
    test_markers_keep_their_owner_through_a_move,
    test_markers_of_events_counted_after_the_read_are_left_out,
    test_round_trip_over_shards_keeps_every_sum,
    test_round_trip_reproduces_every_key,
)

__all__ = [
    "pytestmark",
    "raw",
    "test_a_claimed_event_in_one_shard_stops_the_writes_of_every_shard",
    "test_a_conversion_counts_on_its_own_and_changes_nothing_else",
    "test_a_conversion_without_rec_id_is_attributed_to_the_users_last_click",
    "test_a_crash_between_counts_and_user_state_is_repaired_by_the_resend",
    "test_a_gap_in_the_change_stream_falls_back_to_a_full_reload",
    "test_a_logged_list_is_lean_and_what_the_client_was_answered",
    "test_a_repeated_event_id_applies_only_the_event_that_counted",
    "test_a_rerun_counts_nothing_twice",
    "test_a_running_service_picks_up_an_import",
    "test_acknowledged_events_stay_duplicates_after_a_move",
    "test_an_event_id_reused_by_another_user_is_refused",
    "test_an_event_id_used_by_two_users_in_one_batch_is_refused",
    "test_an_import_next_to_live_feedback_loses_and_doubles_nothing",
    "test_an_item_without_counts_is_known_by_the_list_that_served_it",
    "test_deltas_reproduce_a_full_reload_across_clusters",
    "test_eight_clients_with_overlapping_batches_count_each_event_once",
    "test_export_without_users_leaves_them_out",
    "test_feedback_on_an_item_deleted_after_it_was_served_counts",
    "test_feedback_through_another_worker_credits_the_new_generation",
    "test_fit_separates_tastes_and_assigns_users",
    "test_import_refuses_a_store_with_state_unless_replace",
    "test_items_never_known_are_refused",
    "test_markers_keep_their_owner_through_a_move",
    "test_markers_of_events_counted_after_the_read_are_left_out",
    "test_markers_without_an_owner_are_duplicates_that_touch_nothing",
    "test_round_trip_over_shards_keeps_every_sum",
    "test_round_trip_reproduces_every_key",
    "test_soft_feedback_splits_one_event_exactly_across_clusters",
    "test_stats_count_each_event_once_and_compare_policies",
    "test_the_race_after_the_marker_check_leaves_counts_exact",
    "test_users_sharing_a_script_call_each_get_only_their_own_events",
]
