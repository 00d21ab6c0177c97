"""Progress on stderr: a tqdm bar on a terminal, a line now and then elsewhere."""

from __future__ import annotations

import io

from service.progress import Progress


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_redirected_stream_gets_a_line_when_one_is_due():
    stream, clock = io.StringIO(), _Clock()
    with Progress("import", 1000, "events", stream=stream, every_s=10, clock=clock) as progress:
        progress.advance(100)
        assert stream.getvalue() == ""  # not due yet
        clock.now += 10
        progress.advance(150)
    assert stream.getvalue() == "import: 250/1000 events (25%), 25/s\n"


def test_a_terminal_gets_a_bar_with_the_rate():
    stream = _Terminal()
    with Progress("import", 10, "events", stream=stream) as progress:
        progress.advance(10)
    shown = stream.getvalue()
    assert "import: 100%" in shown and "events/s" in shown


def test_without_a_total_the_line_has_no_share():
    progress = Progress("export", None, "entries", stream=io.StringIO(), clock=_Clock())
    progress.advance(3)
    assert progress.line() == "export: 3 entries, 0/s"
