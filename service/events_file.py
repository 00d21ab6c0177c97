"""The event file `banditrec import-events` reads: NDJSON or CSV, one event per line.

Each line becomes a FeedbackEvent (the same fields and bounds as POST /v1/feedback, with
`ts` required and written as unix seconds or ISO-8601) or a BadLine naming line and field.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import gzip
import io
import json
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from service.schemas import FeedbackEvent

FIELDS = ("event_id", "type", "user_id", "item_id", "ts", "rec_id")
REQUIRED = FIELDS[:5]
Format = Literal["ndjson", "csv"]
FORMATS: tuple[Format, ...] = ("ndjson", "csv")

_NOT_A_TIME = "not a number or ISO-8601 time"


class BadFile(ValueError):
    """The file cannot be read as events at all (unreadable, or a CSV header that does not fit)."""


@dataclass(frozen=True, slots=True)
class BadLine:
    """A line that is not a valid event: where, which field (None: the line as a whole), why."""

    line: int
    field: str | None
    message: str

    def __str__(self) -> str:
        where = f"line {self.line}: "
        return where + (f"{self.field}: {self.message}" if self.field else self.message)


@dataclass(frozen=True, slots=True)
class FileEvent:
    """A valid event and the line it was read from."""

    line: int
    event: FeedbackEvent


def parse_ts(value: Any) -> float:
    """Return unix seconds from a number, a numeric string or an ISO-8601 time (UTC if naive).

    >>> parse_ts("2024-05-01T12:00:00Z"), parse_ts("1714564800"), parse_ts(1714564800.5)
    (1714564800.0, 1714564800.0, 1714564800.5)
    """
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(_NOT_A_TIME)
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            try:
                moment = dt.datetime.fromisoformat(value.strip())
            except ValueError:
                raise ValueError(_NOT_A_TIME) from None
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=dt.UTC)
            return moment.timestamp()
    if not math.isfinite(value):
        raise ValueError(_NOT_A_TIME)
    return float(value)


def detect_format(path: Path) -> Format:
    """Return the file's format: by its suffix (.csv, .ndjson, .jsonl, .json), else by content."""
    suffixes = [s.lower() for s in path.suffixes if s.lower() != ".gz"]
    suffix = suffixes[-1] if suffixes else ""
    if suffix == ".csv":
        return "csv"
    if suffix in (".ndjson", ".jsonl", ".json"):
        return "ndjson"
    with _open(path) as lines:
        for text in lines:
            if text.strip():
                return "ndjson" if text.lstrip().startswith("{") else "csv"
    return "ndjson"


def read_events(path: Path, file_format: Format) -> Iterator[FileEvent | BadLine]:
    """Yield each line of the file as a valid event or its problems, in file order.

    Raises BadFile when the file cannot be read, or when a CSV header lacks a required
    column or names an unknown one (no line of such a file can be read right).
    """
    try:
        with _open(path) as lines:
            if file_format == "csv":
                yield from _csv_events(lines)
            else:
                yield from _ndjson_events(lines)
    except OSError as exc:
        raise BadFile(f"cannot read {path}: {exc.strerror or exc}") from exc


@contextlib.contextmanager
def _open(path: Path) -> Iterator[io.TextIOWrapper]:
    with gzip.open(path, "rb") if path.suffix.lower() == ".gz" else path.open("rb") as raw:
        # Bytes that are not UTF-8 become U+FFFD, which no id may contain: a bad line. A
        # byte-order mark (spreadsheets write one) is not part of the first column's name.
        yield io.TextIOWrapper(raw, encoding="utf-8-sig", errors="replace", newline="")


def _ndjson_events(lines: Iterable[str]) -> Iterator[FileEvent | BadLine]:
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        try:
            fields = json.loads(text)
        except json.JSONDecodeError as exc:
            yield BadLine(number, None, f"not valid JSON ({exc.msg} at column {exc.colno})")
            continue
        if not isinstance(fields, dict):
            yield BadLine(number, None, "not a JSON object")
            continue
        yield from _event(number, fields)


def _csv_events(lines: Iterable[str]) -> Iterator[FileEvent | BadLine]:
    reader = csv.reader(lines)
    header = next(reader, None)
    if header is None:
        return
    columns = [c.strip() for c in header]
    unknown = [c for c in columns if c not in FIELDS]
    missing = [c for c in REQUIRED if c not in columns]
    if unknown or missing:
        problems = [f"unknown column {c!r}" for c in unknown]
        problems += [f"no {c!r} column" for c in missing]
        raise BadFile(f"line 1: {'; '.join(problems)}; the columns are {', '.join(FIELDS)}")
    start = reader.line_num + 1
    for cells in reader:
        number, start = start, reader.line_num + 1
        if not cells or cells == [""]:
            continue
        if len(cells) != len(columns):
            yield BadLine(number, None, f"{len(cells)} cells, the header has {len(columns)}")
            continue
        # An empty cell is an absent value: required fields then say so, rec_id is None.
        yield from _event(number, {c: v for c, v in zip(columns, cells, strict=True) if v != ""})


def _event(number: int, fields: dict[str, Any]) -> Iterator[FileEvent | BadLine]:
    """Yield the line's fields as a valid event, or every problem they have."""
    problems = [
        BadLine(number, f, f"unknown field; the fields are {', '.join(FIELDS)}")
        for f in fields
        if f not in FIELDS
    ]
    ts: float | None = None
    if fields.get("ts") is None:
        problems.append(BadLine(number, "ts", "required"))
    else:
        try:
            ts = parse_ts(fields["ts"])
        except ValueError as exc:
            problems.append(BadLine(number, "ts", str(exc)))
    event: FeedbackEvent | None = None
    try:
        event = FeedbackEvent.model_validate({**fields, "ts": ts})
    except ValidationError as exc:
        for error in exc.errors():
            field = ".".join(str(part) for part in error["loc"])
            # Unknown fields and ts are reported above, in the file's own terms.
            if field in FIELDS and field != "ts":
                message = "required" if error["type"] == "missing" else error["msg"]
                problems.append(BadLine(number, field, message))
    if problems or event is None:
        yield from sorted(problems, key=_field_order)
    else:
        yield FileEvent(number, event)


def _field_order(problem: BadLine) -> int:
    return FIELDS.index(problem.field) if problem.field in FIELDS else len(FIELDS)
