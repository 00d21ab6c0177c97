"""Progress bars on a terminal only: a tqdm bar on stderr when it is a TTY, else nothing."""

from __future__ import annotations

import sys
from collections.abc import Callable


def progress_bar(
    total: int, enabled: bool | None, desc: str, unit: str = "list"
) -> Callable[[int], None]:
    """Return a callback advancing a tqdm bar by n units (n = -1 closes it).

    ``enabled`` None shows the bar only when stderr is a terminal, so that logs and pipes
    stay clean; without tqdm (the sim extra) there is no bar.
    """
    show = sys.stderr.isatty() if enabled is None else enabled
    if not show:
        return lambda n: None
    try:
        from tqdm import tqdm  # type: ignore[import-untyped]
    except ImportError:
        return lambda n: None  # the bar is a nicety: run without it

    scaled = unit == "B"  # bytes read: show kB, MB
    bar = tqdm(total=total, unit=unit, unit_scale=scaled, desc=desc, file=sys.stderr)

    def advance(n: int) -> None:
        if n < 0:
            bar.close()
        else:
            bar.update(n)

    return advance
