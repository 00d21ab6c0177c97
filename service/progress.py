"""Progress of a long command on stderr: a tqdm bar on a terminal, else a line now and then."""

from __future__ import annotations

import importlib
import sys
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, TextIO

# A log (or a CI job) reading a redirected stderr gets one line this often, not a bar.
LINE_EVERY_S = 10.0


def _tqdm_class() -> Any:
    """Return tqdm's bar class, or None: it ships with the sim extra, not the runtime."""
    try:
        return importlib.import_module("tqdm").tqdm
    except ImportError:
        return None


class Progress:
    """Counts units of work done and shows the count, the share of `total` and the rate."""

    def __init__(
        self,
        label: str,
        total: int | None = None,
        unit: str = "events",
        *,
        stream: TextIO | None = None,
        every_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.label = label
        self.total = total
        self.unit = unit
        self.done = 0
        self._stream = sys.stderr if stream is None else stream
        self._every_s = LINE_EVERY_S if every_s is None else every_s
        self._clock = clock
        self._started = clock()
        self._last_line = self._started
        bar_class = _tqdm_class() if self._stream.isatty() else None
        self._bar = (
            None
            if bar_class is None
            else bar_class(
                total=total, unit=f" {unit}", unit_scale=True, desc=label, file=self._stream
            )
        )

    def advance(self, n: int) -> None:
        """Count n more units; show the new count if the bar or the line is due."""
        self.done += n
        if self._bar is not None:
            self._bar.update(n)
            return
        now = self._clock()
        if now - self._last_line >= self._every_s:
            self._last_line = now
            self._stream.write(f"{self.line()}\n")
            self._stream.flush()

    def rate(self) -> float:
        """Return units per second since the start."""
        elapsed = self._clock() - self._started
        return self.done / elapsed if elapsed > 0 else 0.0

    def line(self) -> str:
        """Return the progress as one line: label, count, share of the total, rate."""
        share = f" ({100 * self.done / self.total:.0f}%)" if self.total else ""
        of_total = f"/{self.total}" if self.total is not None else ""
        return f"{self.label}: {self.done}{of_total} {self.unit}{share}, {self.rate():.0f}/s"

    def close(self) -> None:
        """Close the bar, if there is one (the caller prints its own summary)."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
