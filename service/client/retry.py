"""When a failed request is sent again, and after how long."""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass, field

import httpx

# Raised before the request left this process: resending cannot apply it twice.
_UNSENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


class Resend(enum.Enum):
    """Which failures a call may be resent after."""

    # Idempotent calls (feedback dedupes by event_id; writes replace): any failure.
    ANY = "any"
    # Calls that would act twice (a cluster fit): only when the request was never sent.
    UNSENT = "unsent"


@dataclass(frozen=True, slots=True)
class Retry:
    """Up to `attempts` tries in all, with exponential backoff and full jitter between them."""

    attempts: int = 4
    backoff_s: float = 0.2
    max_backoff_s: float = 5.0
    statuses: frozenset[int] = frozenset({502, 503, 504})
    jitter: bool = True
    rng: random.Random = field(default_factory=random.Random, compare=False)

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"attempts must be at least 1, got {self.attempts}")
        if self.backoff_s < 0 or self.max_backoff_s < 0:
            raise ValueError(
                f"backoffs must be >= 0, got {self.backoff_s} and {self.max_backoff_s}"
            )

    def delay_after_answer(
        self, resend: Resend, tries: int, response: httpx.Response
    ) -> float | None:
        """Return the wait before another try after this error answer, or None to give up."""
        if resend is not Resend.ANY or response.status_code not in self.statuses:
            return None
        return self._delay(tries, _retry_after(response))

    def delay_after_failure(
        self, resend: Resend, tries: int, exc: httpx.TransportError
    ) -> float | None:
        """Return the wait before another try after no answer, or None to give up."""
        if resend is not Resend.ANY and not isinstance(exc, _UNSENT):
            return None
        return self._delay(tries, None)

    def _delay(self, tries: int, floor: float | None) -> float | None:
        if tries >= self.attempts:
            return None
        ceiling = min(self.max_backoff_s, self.backoff_s * 2 ** (tries - 1))
        wait = self.rng.uniform(0, ceiling) if self.jitter else ceiling
        if floor is not None:
            wait = max(wait, min(floor, self.max_backoff_s))
        return wait


def _retry_after(response: httpx.Response) -> float | None:
    """Return the Retry-After header in seconds, when it is a number."""
    try:
        return max(float(response.headers["retry-after"]), 0.0)
    except (KeyError, ValueError):
        return None


NO_RETRY = Retry(attempts=1)
