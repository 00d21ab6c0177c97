"""The Redis store: the only code of banditrec that imports redis.

keys.py builds every key, codecs.py owns every stored encoding, scripts/*.lua hold the
multi-key updates (loaded and run by connection.py), records.py the values passed in and
out, serving.py is the store the service runs on, dedupe.py how a feedback batch is
written exactly once across slots, counts.py how the count shards are read back and
summed, state.py the state export, restore.py its import.
"""

from service.store.connection import StoreUnavailable
from service.store.records import (
    ArmEvent,
    ClusterModel,
    CountChange,
    CountDelta,
    CountsState,
    ItemRecord,
    LoggedWrite,
    Seen,
    ShardPosition,
    UserEvent,
    UserState,
    Verdict,
    Versions,
)
from service.store.served import LoggedList
from service.store.serving import DimensionMismatch, Store
from service.store.state import (
    StateChanged,
    StateNotEmpty,
    StateSnapshot,
    StateWrite,
    StoredUser,
)

__all__ = [
    "ArmEvent",
    "ClusterModel",
    "CountChange",
    "CountDelta",
    "CountsState",
    "DimensionMismatch",
    "ItemRecord",
    "LoggedList",
    "LoggedWrite",
    "Seen",
    "ShardPosition",
    "StateChanged",
    "StateNotEmpty",
    "StateSnapshot",
    "StateWrite",
    "Store",
    "StoreUnavailable",
    "StoredUser",
    "UserEvent",
    "UserState",
    "Verdict",
    "Versions",
]
