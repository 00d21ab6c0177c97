"""The state file of `banditrec export` and `banditrec import` (docs/state-format.md).

document.py is its shape and validation, export.py writes it from what the store read,
plan.py turns a validated one into what the store writes. No I/O here.
"""

from service.state.document import (
    FORMAT,
    FORMAT_VERSION,
    InvalidState,
    StateDocument,
    describe,
    parse_document,
    settings_differences,
    settings_fields,
)
from service.state.export import (
    arm_entries,
    dedupe_entries,
    holds_state,
    item_entries,
    open_document,
    retired_entries,
    user_entries,
)
from service.state.plan import plan_import

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "InvalidState",
    "StateDocument",
    "arm_entries",
    "dedupe_entries",
    "describe",
    "holds_state",
    "item_entries",
    "open_document",
    "parse_document",
    "plan_import",
    "retired_entries",
    "settings_differences",
    "settings_fields",
    "user_entries",
]
