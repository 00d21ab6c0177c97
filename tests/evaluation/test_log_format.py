"""The published served-list log format: schema file, validator messages, timestamps."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest

from evaluation.log_format import (
    _FOLLOWS_SCHEMA,
    SCHEMA,
    LogLineError,
    _schema_problems,
    parse_line,
    problems,
    read_logs,
    schema_text,
    unix_seconds,
)

DOCS = Path(__file__).resolve().parents[2] / "docs"


def valid_line() -> dict:
    """A line as the service exports it, with every optional field."""
    return {
        "rec_id": "9f2c", "user_id": "u1", "gen": 2, "cluster": None, "ts": 1_700_000_000.25,
        "surface": "home", "item_id": None, "pools": {"new": 1}, "k": 3, "n_candidates": 40,
        "policy": "bandit", "shadows": {"baseline": ["a", "b", "c"]},
        "items": [
            {"item_id": item, "position": n, "score": 0.5 - n / 10, "propensity": 0.4,
             "impression": n < 2, "click": n == 0, "conversion": False}
            for n, item in enumerate(["a", "b", "c"])
        ],
    }  # fmt: skip


def test_the_published_schema_is_the_one_evaluate_checks():
    published = (DOCS / "log-format.schema.json").read_text()
    assert published == schema_text(), "regenerate: python -m evaluation.log_format > docs/..."
    assert json.loads(published)["required"] == SCHEMA["required"]
    guide = (DOCS / "log-format.md").read_text()
    for field in [*SCHEMA["properties"], *SCHEMA["properties"]["items"]["items"]["properties"]]:
        assert f"`{field}`" in guide, field


def test_a_valid_line_has_no_problems():
    assert problems(valid_line()) == []
    minimal = valid_line()
    for optional in ("surface", "item_id", "pools", "policy", "shadows"):
        del minimal[optional]
    for item in minimal["items"]:
        del item["position"], item["score"], item["conversion"]
    assert problems(minimal) == []


DELETE = object()


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("items.2.propensity", DELETE, "items[2].propensity: required"),
        ("user_id", DELETE, "user_id: required"),
        ("items.1.click", 1, "items[1].click: must be true or false, got 1"),
        ("items.0.propensity", 0, "items[0].propensity: must be > 0, got 0"),
        ("items.0.propensity", 1.5, "items[0].propensity: must be <= 1, got 1.5"),
        ("cluster", -1, "cluster: must be >= 0, got -1"),
        ("cluster", "2", 'cluster: must be an integer or null, got "2"'),
        ("ts", "yesterday",
         'ts: must be a number or an ISO-8601 date-time string, got "yesterday"'),
        ("k", 2, "items: 3 items served but k is 2"),
        ("n_candidates", 2, "n_candidates: 2 is fewer than the 3 items served"),
        ("items.2.item_id", "a", "items[2].item_id: 'a' is also items[0]"),
        ("items", {}, "items: must be an array, got {}"),
        ("pools.new", -1, "pools.new: must be >= 0, got -1"),
    ],
)  # fmt: skip
def test_errors_name_the_line_and_the_field(path, value, message):
    record = valid_line()
    *parents, key = path.split(".")
    where = record
    for part in parents:
        where = where[int(part)] if part.isdigit() else where[part]
    if value is DELETE:
        del where[key]
    else:
        where[key] = value
    with pytest.raises(LogLineError) as error:
        parse_line(json.dumps(record), 17)
    assert str(error.value) == f"line 17: {message}"


def test_several_problems_are_counted_and_a_non_object_is_named():
    record = valid_line()
    del record["k"], record["ts"]
    with pytest.raises(LogLineError, match=r"^line 3: ts: required \(and 1 more\)$"):
        parse_line(json.dumps(record), 3)
    with pytest.raises(LogLineError, match=r"^line 4: the line: must be an object, got \[1\]$"):
        parse_line("[1]", 4)
    with pytest.raises(LogLineError, match=r"^line 5: not JSON"):
        parse_line('{"rec_id": ', 5)


def test_iso_8601_timestamps_are_unix_seconds():
    assert unix_seconds("2023-11-14T22:13:20Z") == 1_700_000_000.0
    assert unix_seconds("2023-11-14T23:13:20.5+01:00") == 1_700_000_000.5
    assert unix_seconds("2023-11-14T22:13:20") == 1_700_000_000.0  # no offset: UTC
    record = valid_line()
    record["ts"] = "2023-11-14T22:13:20.25Z"
    assert parse_line(json.dumps(record), 1).ts == 1_700_000_000.25


def test_read_logs_keeps_file_line_numbers_and_sorts_by_time(tmp_path):
    first, second = valid_line(), valid_line()
    first["ts"], second["ts"] = 20.0, "1970-01-01T00:00:10Z"
    path = tmp_path / "logs.ndjson"
    path.write_text(f"{json.dumps(first)}\n\n{json.dumps(second)}\n")
    lists = read_logs(path)
    assert [(line.number, line.ts) for line in lists] == [(3, 10.0), (1, 20.0)]
    bad = valid_line()
    bad["items"][1]["impression"] = None
    path.write_text(f"{json.dumps(first)}\n\n{json.dumps(bad)}\n")
    with pytest.raises(LogLineError, match=r"^line 3: items\[1\]\.impression: must be true or"):
        read_logs(path)


# Values a mutation puts in place of a field: each is valid somewhere and invalid elsewhere.
ODD_VALUES = [None, True, 0, -1, 1.5, 0.5, float("nan"), "", "x", "2023-11-14T22:13:20Z", [], {}]


def test_the_fast_check_never_passes_a_line_the_schema_refuses():
    rng = np.random.default_rng(0)
    disagreements = 0
    for _ in range(3000):
        record = copy.deepcopy(valid_line())
        for _ in range(int(rng.integers(1, 3))):
            items = record.get("items")
            target = record
            if rng.random() < 0.5 and isinstance(items, list) and items:
                target = items[int(rng.integers(len(items)))]
            if not isinstance(target, dict) or not target:
                continue
            key = list(target)[int(rng.integers(len(target)))]
            if rng.random() < 0.2:
                del target[key]
            else:
                target[key] = ODD_VALUES[int(rng.integers(len(ODD_VALUES)))]
        walked = list(_schema_problems(record, SCHEMA, ""))
        if _FOLLOWS_SCHEMA(record):
            assert walked == [], (record, walked)
        disagreements += not walked and not _FOLLOWS_SCHEMA(record)
    # The fast check may be stricter (the walk then decides), but here it never is.
    assert disagreements == 0
