"""The served-list log line (`GET /v1/admin/logs/export`, `simulate --log-policy`): its JSON
Schema, a validator whose errors name the line and field, and the typed record evaluate reads.

The schema is published as docs/log-format.schema.json (``python -m evaluation.log_format``
prints it). The validator understands the part of JSON Schema the schema uses: ``type``,
``required``, ``properties``, ``additionalProperties``, ``items``, ``anyOf``, ``minimum``,
``exclusiveMinimum``, ``maximum``, ``minLength`` and ``format: date-time``.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

_ID = {"type": "string", "minLength": 1}
_COUNT = {"type": "integer", "minimum": 0}

SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "banditrec served list",
    "description": (
        "One line of the NDJSON that GET /v1/admin/logs/export streams (and that banditrec "
        "simulate --log-policy writes): one served list joined with the feedback on it. "
        "banditrec evaluate reads the required fields; the optional ones are context."
    ),
    "type": "object",
    "required": ["rec_id", "user_id", "gen", "cluster", "ts", "k", "n_candidates", "items"],
    "properties": {
        "rec_id": {**_ID, "description": "The id recommend returned for this list."},
        "user_id": {**_ID, "description": "Whom the list was served to."},
        "gen": {**_COUNT, "description": "Clustering generation the list was served under."},
        "cluster": {
            "type": ["integer", "null"],
            "minimum": 0,
            "description": (
                "The user's heaviest cluster in that generation; null if the user was "
                "unplaced (served the global arms)."
            ),
        },
        "ts": {
            "anyOf": [
                {"type": "number", "minimum": 0},
                {"type": "string", "format": "date-time"},
            ],
            "description": (
                "When the list was served: unix seconds, or an ISO-8601 date-time "
                "(UTC when it has no offset)."
            ),
        },
        "k": {"type": "integer", "minimum": 1, "description": "The list length asked for."},
        "n_candidates": {
            **_COUNT,
            "description": (
                "How many items the list was chosen from (after exclusions). When every "
                "candidate was served, the served items are the candidates."
            ),
        },
        "surface": {"type": "string", "description": "home or related."},
        "item_id": {
            "type": ["string", "null"],
            "description": "The item a related list was served next to.",
        },
        "pools": {
            "type": ["object", "null"],
            "additionalProperties": _COUNT,
            "description": "Candidate pools and their quotas, when the request set them.",
        },
        "policy": {
            "type": "string",
            "description": "Which policy served the list: bandit, explore or baseline.",
        },
        "shadows": {
            "type": "object",
            "additionalProperties": {"type": "array", "items": {"type": "string"}},
            "description": "The lists the policies that did not serve would have served.",
        },
        "items": {
            "type": "array",
            "description": "The served items, best first.",
            "items": {
                "type": "object",
                "required": ["item_id", "propensity", "impression", "click"],
                "properties": {
                    "item_id": _ID,
                    "propensity": {
                        "type": ["number", "null"],
                        "exclusiveMinimum": 0,
                        "maximum": 1,
                        "description": (
                            "P(item in the list) under the logging policy, estimated when it "
                            "was served; null when the service ran with "
                            "BANDITREC_PROPENSITY_SAMPLES=0."
                        ),
                    },
                    "impression": {"type": "boolean", "description": "The user saw it."},
                    "click": {"type": "boolean", "description": "The user clicked it."},
                    "conversion": {"type": "boolean", "description": "It led to a conversion."},
                    "position": {**_COUNT, "description": "0 = first."},
                    "score": {"type": "number", "description": "The score it was ranked by."},
                },
            },
        },
    },
}

# How each JSON Schema type is spelled in an error message.
_TYPE_WORDS = {
    "object": "an object",
    "array": "an array",
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "null": "null",
}


class LogLineError(ValueError):
    """A log line that does not follow the format; the message names the line and field."""


@dataclass(frozen=True, slots=True)
class LoggedItem:
    """One served item and what the user did with it."""

    item_id: str
    propensity: float | None
    impression: bool
    click: bool


@dataclass(frozen=True, slots=True)
class LoggedList:
    """One served list, as evaluate reads it; ``number`` is its line in the file (from 1)."""

    number: int
    rec_id: str
    user_id: str
    gen: int
    cluster: int | None
    ts: float  # unix seconds
    k: int
    n_candidates: int
    items: tuple[LoggedItem, ...]


def problems(record: object, schema: dict[str, Any] = SCHEMA) -> list[str]:
    """Return what is wrong with one parsed line, each as ``field.path: problem``; [] if valid.

    >>> problems({"rec_id": "r", "user_id": "u", "gen": 0, "cluster": None, "ts": 1.5,
    ...           "k": 2, "n_candidates": 3, "items": [{"item_id": "a", "impression": True,
    ...           "click": False}]})
    ['items[0].propensity: required']
    """
    if schema is SCHEMA and _FOLLOWS_SCHEMA(record):
        found = []  # the common case, checked fast; the walk below only explains failures
    else:
        found = list(_schema_problems(record, schema, ""))
    if not found and isinstance(record, dict):
        found = list(_list_problems(record))
    return found


def parse_record(record: object, number: int) -> LoggedList:
    """Return the typed list of a parsed line, or raise LogLineError naming line and field."""
    found = problems(record)
    if found:
        more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
        raise LogLineError(f"line {number}: {found[0]}{more}")
    assert isinstance(record, dict)
    return LoggedList(
        number=number,
        rec_id=record["rec_id"],
        user_id=record["user_id"],
        gen=record["gen"],
        cluster=record["cluster"],
        ts=unix_seconds(record["ts"]),
        k=record["k"],
        n_candidates=record["n_candidates"],
        items=tuple(
            LoggedItem(
                item["item_id"],
                None if item["propensity"] is None else float(item["propensity"]),
                item["impression"],
                item["click"],
            )
            for item in record["items"]
        ),
    )


def parse_line(text: str, number: int) -> LoggedList:
    """Return the typed list of one NDJSON line, or raise LogLineError naming the line."""
    try:
        record = json.loads(text)
    except json.JSONDecodeError as exc:
        raise LogLineError(f"line {number}: not JSON ({exc})") from None
    return parse_record(record, number)


def read_logs(path: Path, advance: Callable[[int], None] = lambda n: None) -> list[LoggedList]:
    """Return the served lists of an NDJSON log, oldest first; ``advance`` gets bytes read."""
    lists = []
    with path.open("rb") as source:
        for number, raw in enumerate(source, 1):
            advance(len(raw))
            text = raw.decode("utf-8", errors="replace")
            if text.strip():
                # The service's export ends with a line that says how it ended.
                trailer = _trailer(text)
                if trailer == "end":
                    continue
                if trailer == "error":
                    raise LogLineError(f"line {number}: the export was cut short: {text.strip()}")
                lists.append(parse_line(text, number))
    lists.sort(key=lambda line: line.ts)
    return lists


def _trailer(text: str) -> str | None:
    """Return "end" or "error" for the last line of an export ({"end": true, "lines": N} or
    {"error": {...}}), None for any other line."""
    if not text.lstrip().startswith(('{"end"', '{"error"')):
        return None
    try:
        record = json.loads(text)
    except json.JSONDecodeError:
        return None
    if isinstance(record, dict) and set(record) == {"end", "lines"} and record["end"] is True:
        return "end"
    if isinstance(record, dict) and set(record) == {"error"}:
        return "error"
    return None


def unix_seconds(ts: float | str) -> float:
    """Return a valid ``ts`` (unix seconds or ISO-8601) as unix seconds.

    >>> unix_seconds("1970-01-02T00:00:00Z"), unix_seconds("1970-01-01T01:00:00+01:00")
    (86400.0, 0.0)
    """
    if isinstance(ts, str):
        moment = datetime.fromisoformat(ts)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.timestamp()
    return float(ts)


def schema_text() -> str:
    """Return the schema as published in docs/log-format.schema.json."""
    return json.dumps(SCHEMA, indent=2) + "\n"


# -- the validator --------------------------------------------------------------------------


def _schema_problems(value: object, schema: dict[str, Any], path: str) -> Iterator[str]:
    """Yield ``path: problem`` for each way ``value`` breaks ``schema``."""
    where = path or "the line"
    if "anyOf" in schema:
        branches = schema["anyOf"]
        if all(list(_schema_problems(value, branch, path)) for branch in branches):
            wanted = " or ".join(_describe(branch) for branch in branches)
            yield f"{where}: must be {wanted}, got {_shown(value)}"
        return
    types = schema.get("type")
    if types is not None:
        allowed = [types] if isinstance(types, str) else list(types)
        if not any(_is_type(value, name) for name in allowed):
            wanted = " or ".join(_TYPE_WORDS[name] for name in allowed)
            yield f"{where}: must be {wanted}, got {_shown(value)}"
            return
    if _is_type(value, "number"):
        assert isinstance(value, int | float)
        if "minimum" in schema and value < schema["minimum"]:
            yield f"{where}: must be >= {schema['minimum']}, got {_shown(value)}"
        if "exclusiveMinimum" in schema and value <= schema["exclusiveMinimum"]:
            yield f"{where}: must be > {schema['exclusiveMinimum']}, got {_shown(value)}"
        if "maximum" in schema and value > schema["maximum"]:
            yield f"{where}: must be <= {schema['maximum']}, got {_shown(value)}"
    if isinstance(value, str):
        if len(value) < schema.get("minLength", 0):
            yield f"{where}: must not be empty"
        elif schema.get("format") == "date-time" and not _is_date_time(value):
            yield f"{where}: must be an ISO-8601 date-time, got {_shown(value)}"
    if isinstance(value, dict):
        for name in schema.get("required", ()):
            if name not in value:
                yield f"{_join(path, name)}: required"
        properties = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        for name, member in value.items():
            inner = properties.get(name, extra)
            if isinstance(inner, dict):
                yield from _schema_problems(member, inner, _join(path, name))
    if isinstance(value, list) and "items" in schema:
        for index, member in enumerate(value):
            yield from _schema_problems(member, schema["items"], f"{path}[{index}]")


def _compiled(schema: dict[str, Any]) -> Callable[[object], bool]:
    """Return a fast check of ``schema``: True only if the walk would find no problem.

    It may say False for a value the walk accepts (then the walk has the last word), so
    it compares exact JSON types: what json.loads returns.
    """
    if "anyOf" in schema:
        branches = [_compiled(branch) for branch in schema["anyOf"]]

        def any_of(value: object) -> bool:
            return any(branch(value) for branch in branches)

        return any_of
    types = schema.get("type")
    names = [types] if isinstance(types, str) else list(types or ())
    exact = {_EXACT_TYPES[name] for name in names if name != "number"}
    if "number" in names:
        exact.add(int)
    floats = "number" in names
    low, above, high = (schema.get(k) for k in ("minimum", "exclusiveMinimum", "maximum"))
    bounded = low is not None or above is not None or high is not None
    min_length, date_time = schema.get("minLength", 0), schema.get("format") == "date-time"
    required = tuple(schema.get("required", ()))
    properties = {name: _compiled(inner) for name, inner in schema.get("properties", {}).items()}
    extra = schema.get("additionalProperties")
    other = _compiled(extra) if isinstance(extra, dict) else None
    each = _compiled(schema["items"]) if "items" in schema else None

    def check(value: object) -> bool:
        kind = type(value)
        if kind is float:
            if not floats or not math.isfinite(cast(float, value)):
                return False
        elif names and kind not in exact:
            return False
        if bounded and (kind is int or kind is float):
            number = cast(float, value)
            if (
                (low is not None and number < low)
                or (above is not None and number <= above)
                or (high is not None and number > high)
            ):
                return False
        if kind is str:
            text = cast(str, value)
            if len(text) < min_length or (date_time and not _is_date_time(text)):
                return False
        elif kind is dict:
            members = cast(dict[str, object], value)
            for name in required:
                if name not in members:
                    return False
            for name, member in members.items():
                inner = properties.get(name, other)
                if inner is not None and not inner(member):
                    return False
        elif kind is list and each is not None:
            for member in cast(list[object], value):
                if not each(member):
                    return False
        return True

    return check


# The Python type json.loads returns for each JSON Schema type ("number" is int or float).
_EXACT_TYPES: dict[str, type] = {
    "object": dict,
    "array": list,
    "string": str,
    "integer": int,
    "boolean": bool,
    "null": type(None),
}


def _list_problems(record: dict[str, Any]) -> Iterator[str]:
    """Yield what a schema cannot say about a list: counts that contradict each other."""
    items = record["items"]
    if len(items) > record["k"]:
        yield f"items: {len(items)} items served but k is {record['k']}"
    if len(items) > record["n_candidates"]:
        yield (
            f"n_candidates: {record['n_candidates']} is fewer than the {len(items)} items served"
        )
    first: dict[str, int] = {}
    for index, item in enumerate(items):
        earlier = first.setdefault(item["item_id"], index)
        if earlier != index:
            yield f"items[{index}].item_id: {item['item_id']!r} is also items[{earlier}]"


_PYTHON_TYPES: dict[str, type] = {
    "object": dict,
    "array": list,
    "string": str,
    "boolean": bool,
    "null": type(None),
}


def _is_type(value: object, name: str) -> bool:
    if name == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if name == "number":
        if isinstance(value, float):
            return math.isfinite(value)  # json.loads reads NaN and Infinity
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, _PYTHON_TYPES[name])


def _is_date_time(text: str) -> bool:
    try:
        datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


def _describe(schema: dict[str, Any]) -> str:
    if schema.get("format") == "date-time":
        return "an ISO-8601 date-time string"
    return _TYPE_WORDS[schema["type"]]


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _shown(value: object) -> str:
    """Return value as JSON, shortened to at most 40 characters."""
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."


# Checked once per line before anything else: keep it compiled.
_FOLLOWS_SCHEMA = _compiled(SCHEMA)

if __name__ == "__main__":
    sys.stdout.write(schema_text())
