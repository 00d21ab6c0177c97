"""What every part of the engine shares: settings, the store, metrics and the clock."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from service.config import Settings
from service.metrics import Metrics
from service.store import Store


@dataclass(slots=True)
class Context:
    """The engine's shared dependencies; `clock` is the wall clock of events and discounting."""

    settings: Settings
    store: Store
    metrics: Metrics
    # Tests replace it with a clock that jumps hours.
    clock: Callable[[], float] = field(default=time.time)
