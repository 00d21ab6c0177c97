"""One request's time budget for all of its Redis work."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from service.store import StoreUnavailable


class Deadline:
    """When a request's Redis work must be done; later, it gives up as StoreUnavailable.

    Each Redis command has its own timeout, so a request that makes several in sequence
    (read the user, log the list, a refresh it triggers) could wait for each in turn while
    Redis hangs. Its calls share one deadline instead.
    """

    def __init__(self, budget_s: float) -> None:
        self._at = asyncio.get_running_loop().time() + budget_s

    def left_s(self) -> float:
        """Return the seconds left before the deadline (negative once past)."""
        return self._at - asyncio.get_running_loop().time()

    @contextlib.asynccontextmanager
    async def within(self) -> AsyncIterator[None]:
        """Run the block until the deadline; past it, raise StoreUnavailable."""
        if self.left_s() <= 0:
            raise StoreUnavailable("redis did not answer within the request's time budget")
        try:
            async with asyncio.timeout_at(self._at):
                yield
        except TimeoutError as exc:
            raise StoreUnavailable("redis did not answer within the request's time budget") from exc
