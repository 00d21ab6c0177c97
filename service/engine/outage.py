"""Redis outages as the snapshot refresh sees them: logged once when Redis goes away and
once when it is back, however many refreshes (or requests) fail in between."""

from __future__ import annotations

import logging
import time

from service.logs import log_event


class OutageLog:
    """Tracks whether the store answers and logs only the transitions."""

    def __init__(self) -> None:
        self.down_since: float | None = None

    @property
    def down(self) -> bool:
        """Return whether the last attempt to reach the store failed."""
        return self.down_since is not None

    def failed(self, error: Exception) -> None:
        """Note a failed attempt; the first one of an outage is logged."""
        if self.down_since is None:
            self.down_since = time.monotonic()
            log_event("redis_unavailable", level=logging.WARNING, error=str(error))

    def succeeded(self) -> None:
        """Note a successful attempt; the first one after an outage is logged."""
        if self.down_since is not None:
            down_s = time.monotonic() - self.down_since
            self.down_since = None
            log_event("redis_recovered", down_s=round(down_s, 3))
