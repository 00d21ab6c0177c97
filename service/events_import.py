"""`banditrec import-events`: a platform's past events, each counted once through feedback's path.

Two passes over the file. The first checks every line (fields, ts not in the future, item
in the catalog) and writes nothing. The second sends the events in batches through
Feedback.record(history=True), the code of POST /v1/feedback: dedupe markers, counts,
the change stream and users' state are written exactly as live feedback writes them, so
a running service takes the import like any other feedback, and a rerun counts nothing
twice while the markers last (BANDITREC_DEDUPE_RETENTION_S from the import).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from service.config import Settings
from service.engine import Engine
from service.engine.errors import InvalidRequest
from service.engine.feedback import MAX_CLOCK_SKEW_S
from service.events_file import BadFile, BadLine, FileEvent, Format, read_events
from service.metrics import Metrics
from service.progress import Progress
from service.schemas import FeedbackBatch
from service.store import Store, StoreUnavailable

# Events per feedback batch: the API's own bound, and what keeps memory flat.
BATCH_EVENTS = 1000
# Problems printed before "... and N more".
SHOWN_PROBLEMS = 20

_PREFIX = "banditrec import-events"


@dataclass(slots=True)
class FileCheck:
    """What the first pass found: valid events, bad lines, and events out of time order."""

    events: int = 0
    bad_lines: int = 0
    problems: list[BadLine] = field(default_factory=list)
    # Events older than an event of an earlier batch, and the first one's line.
    out_of_order: int = 0
    first_out_of_order: int | None = None
    oldest_ts: float = math.inf
    newest_ts: float = -math.inf


@dataclass(slots=True)
class ImportResult:
    """What the second pass wrote: events counted, replays, lines skipped."""

    events: int = 0
    accepted: int = 0
    duplicates: int = 0
    unknown_rec_ids: int = 0
    skipped_lines: int = 0
    problems: list[BadLine] = field(default_factory=list)


class ImportStopped(RuntimeError):
    """Feedback refused a batch (a rec_id that names another user's list, an item deleted
    since the check): the batches before it are written, it and the rest are not."""

    def __init__(self, problem: BadLine, result: ImportResult) -> None:
        super().__init__(str(problem))
        self.problem = problem
        self.result = result


@dataclass(slots=True)
class _Batch:
    events: list[FileEvent]
    problems: list[BadLine]
    lines: int


class EventsImport:
    """One file's import into the store an engine writes to."""

    def __init__(
        self,
        engine: Engine,
        path: Path,
        file_format: Format,
        *,
        batch_events: int = BATCH_EVENTS,
        progress_every_s: float | None = None,
    ) -> None:
        self.engine = engine
        self.path = path
        self.file_format = file_format
        self.batch_events = batch_events
        self.progress_every_s = progress_every_s

    async def check(self) -> FileCheck:
        """Read the whole file, write nothing; return what a run would count and refuse."""
        found = FileCheck()
        with Progress(f"{_PREFIX}: checking", None, "lines", every_s=self.progress_every_s) as bar:
            async for batch in self._batches():
                found.events += len(batch.events)
                found.bad_lines += len({p.line for p in batch.problems})
                room = SHOWN_PROBLEMS - len(found.problems)
                found.problems += batch.problems[: max(room, 0)]
                # Within a batch events apply in ts order; across batches, in file order.
                times = [e.event.ts or 0.0 for e in batch.events]
                late = [
                    e.line
                    for e, ts in zip(batch.events, times, strict=True)
                    if ts < found.newest_ts
                ]
                found.out_of_order += len(late)
                if late and found.first_out_of_order is None:
                    found.first_out_of_order = late[0]
                found.oldest_ts = min([found.oldest_ts, *times])
                found.newest_ts = max([found.newest_ts, *times])
                bar.advance(batch.lines)
        return found

    async def run(self, *, skip_bad: bool, total: int | None = None) -> ImportResult:
        """Count every valid event once; bad lines are skipped (the caller checked first).

        Raises ImportStopped when feedback refuses an event and `skip_bad` is off.
        """
        result = ImportResult()
        label = f"{_PREFIX}: importing"
        with Progress(label, total, "events", every_s=self.progress_every_s) as bar:
            async for batch in self._batches():
                result.skipped_lines += len({p.line for p in batch.problems})
                await self._record(batch.events, result, skip_bad=skip_bad)
                bar.advance(batch.lines)
        return result

    async def _record(
        self, events: list[FileEvent], result: ImportResult, *, skip_bad: bool
    ) -> None:
        """Send one batch through feedback; with skip_bad, drop what it refuses and resend."""
        while events:
            batch = FeedbackBatch.model_construct(events=[e.event for e in events])
            try:
                answer = await self.engine.feedback.record(batch, history=True)
            except InvalidRequest as exc:
                position, field_name = _position(exc.field)
                problem = BadLine(events[position].line, field_name, exc.message)
                if not skip_bad:
                    raise ImportStopped(problem, result) from exc
                if len(result.problems) < SHOWN_PROBLEMS:
                    result.problems.append(problem)
                result.skipped_lines += 1
                events = events[:position] + events[position + 1 :]
                continue
            result.events += len(events)
            result.accepted += answer.accepted
            result.duplicates += answer.duplicates
            result.unknown_rec_ids += len(answer.unknown_rec_ids)
            return

    async def _batches(self) -> AsyncIterator[_Batch]:
        """Yield the file in batches of valid events, each line checked against the store."""
        events: list[FileEvent] = []
        problems: list[BadLine] = []
        lines: set[int] = set()
        for read in read_events(self.path, self.file_format):
            lines.add(read.line)
            if isinstance(read, BadLine):
                problems.append(read)
                continue
            events.append(read)
            if len(events) >= self.batch_events:
                yield await self._checked(events, problems, len(lines))
                events, problems, lines = [], [], set()
        if events or problems:
            yield await self._checked(events, problems, len(lines))

    async def _checked(
        self, events: list[FileEvent], problems: list[BadLine], lines: int
    ) -> _Batch:
        """Return the batch with events from the future or of unknown items moved to problems."""
        latest = self.engine.clock() + MAX_CLOCK_SKEW_S
        # Known as live feedback knows them: in the catalog, or retired with counts.
        known = await self.engine.store.known_items(
            list(dict.fromkeys(e.event.item_id for e in events))
        )
        kept = []
        for read in events:
            event = read.event
            if event.ts is not None and event.ts > latest:
                message = f"{event.ts:.0f} is more than {MAX_CLOCK_SKEW_S:.0f} s in the future"
                problems.append(BadLine(read.line, "ts", message))
            elif event.item_id not in known:
                message = f"item {event.item_id!r} is not in the catalog and has no counts"
                problems.append(BadLine(read.line, "item_id", message))
            else:
                kept.append(read)
        problems.sort(key=lambda p: p.line)
        return _Batch(kept, problems, lines)


def _position(field_path: str | None) -> tuple[int, str | None]:
    """Return (event position, field) from a feedback error's field, e.g. events[3].item_id."""
    if not field_path or not field_path.startswith("events["):
        return 0, field_path
    index, _, rest = field_path[len("events[") :].partition("]")
    return int(index), rest.lstrip(".") or None


# -- the command --------------------------------------------------------------------------


async def import_events(
    url: str,
    settings: Settings,
    path: Path,
    file_format: Format,
    *,
    skip_bad: bool,
    out: TextIO,
    err: TextIO,
    batch_events: int = BATCH_EVENTS,
    progress_every_s: float | None = None,
) -> int:
    """Check the file, then import it into the store at `url`; report; return the exit code."""
    store = Store(url, **settings.store_options())
    engine = Engine(settings, store, Metrics())
    job = EventsImport(
        engine, path, file_format, batch_events=batch_events, progress_every_s=progress_every_s
    )
    try:
        snapshot = await engine.refresh()
        if not snapshot.catalog.item_ids:
            print(
                f"{_PREFIX}: nothing was written: the catalog is empty under key prefix "
                f"{settings.key_prefix!r}, and events must name catalog items. Load the items "
                "first (POST /v1/items/bulk, or banditrec import), or point BANDITREC_DATA_DIR "
                "or BANDITREC_REDIS_URL (and BANDITREC_KEY_PREFIX) at the service's store",
                file=err,
            )
            return 1
        found = await job.check()
        _report_check(found, batch_events, skip_bad=skip_bad, err=err)
        if found.bad_lines and not skip_bad:
            return 2
        if settings.half_life_h > 0:
            print(
                f"{_PREFIX}: note: BANDITREC_HALF_LIFE_H is {settings.half_life_h:g}: imported "
                "events count at full weight as of now, not discounted by their age",
                file=err,
            )
        result = await job.run(skip_bad=skip_bad, total=found.events + found.bad_lines)
    except BadFile as exc:
        print(f"{_PREFIX}: {exc}; nothing was written", file=err)
        return 2
    except ImportStopped as exc:
        print(f"{_PREFIX}: {exc.problem}", file=err)
        print(
            f"{_PREFIX}: stopped at line {exc.problem.line}: {_summary(exc.result)} before it "
            "are written; fix the line (or pass --skip-bad) and rerun: the events already "
            "counted are then reported as duplicates",
            file=err,
        )
        return 1
    except StoreUnavailable as exc:
        print(f"{_PREFIX}: {exc}; rerun to finish: counted events are duplicates then", file=err)
        return 1
    finally:
        await store.close()
    for problem in result.problems:
        print(f"{_PREFIX}: skipped {problem}", file=err)
    remembered = ""
    if result.accepted:
        expiry = dt.datetime.fromtimestamp(engine.clock() + settings.dedupe_retention_s, dt.UTC)
        remembered = (
            f"; a rerun until {expiry:%Y-%m-%d %H:%M} UTC finds the events counted now "
            "duplicates (BANDITREC_DEDUPE_RETENTION_S after this import)"
        )
    print(f"{_PREFIX}: {_summary(result)}{remembered}", file=out)
    return 0


def _lines(n: int) -> str:
    return f"{n} bad line" if n == 1 else f"{n} bad lines"


def _summary(result: ImportResult) -> str:
    parts = [f"{result.events} events: {result.accepted} counted, {result.duplicates} duplicates"]
    if result.unknown_rec_ids:
        parts.append(f"{result.unknown_rec_ids} rec_ids naming no logged list")
    if result.skipped_lines:
        parts.append(f"{_lines(result.skipped_lines)} skipped")
    return "; ".join(parts)


def _report_check(found: FileCheck, batch_events: int, *, skip_bad: bool, err: TextIO) -> None:
    """Print the first pass's span of time, bad lines and warnings."""
    if found.events:
        span = [dt.datetime.fromtimestamp(t, dt.UTC) for t in (found.oldest_ts, found.newest_ts)]
        print(
            f"{_PREFIX}: {found.events} valid events from {span[0]:%Y-%m-%d %H:%M} to "
            f"{span[1]:%Y-%m-%d %H:%M} UTC",
            file=err,
        )
    if found.bad_lines:
        verb = "skipping" if skip_bad else "refusing the file; nothing was written"
        print(f"{_PREFIX}: {_lines(found.bad_lines)}, {verb}:", file=err)
        for problem in found.problems:
            print(f"  {problem}", file=err)
        shown = len({p.line for p in found.problems})
        if found.bad_lines > shown:
            print(f"  ... and {found.bad_lines - shown} more", file=err)
        if not skip_bad:
            print(f"{_PREFIX}: fix them, or pass --skip-bad to import the rest", file=err)
    if found.out_of_order:
        print(
            f"{_PREFIX}: warning: {found.out_of_order} events are older than an event on an "
            f"earlier line (first: line {found.first_out_of_order}). Events apply in ts order "
            f"within a batch of {batch_events}, in file order across batches: users' seen "
            "state and click order are exact when each user's events are in time order",
            file=err,
        )
