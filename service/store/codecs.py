"""Every stored encoding, each writer next to its parser.

The Lua scripts under scripts/ write some of these strings too (seen, last clicks, counts,
change tokens); tests/service/test_store_codecs.py holds the two sides to one format.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from dataclasses import fields as dataclass_fields

import numpy as np

from service.store.records import (
    ClusterModel,
    CountChange,
    CountDelta,
    Counts,
    ItemRecord,
    Seen,
    UserState,
)

# Cluster counts are stored in millionths of an event, so that soft credit is an integer
# and the shares of one event add up to exactly one. Global counts are whole events.
MICRO = 1_000_000

# The count hashes per arm, in this order everywhere: impressions, clicks, conversions.
KINDS = ("imp", "clk", "cnv")
# Feedback event types and the count each one increments.
EVENT_KINDS = {"impression": "imp", "click": "clk", "conversion": "cnv"}

# Embeddings and cluster centres: little-endian float32.
_FLOAT32 = "<f4"


@dataclass(frozen=True, slots=True)
class ServedList:
    """One served list as logged under its rec_id: what feedback, stats and export read."""

    user_id: str
    gen: int
    cluster: int | None
    # Membership.encode() of the clusters the list was ranked for.
    membership: str
    ts: float
    surface: str
    item_id: str | None
    pools: dict[str, int] | None
    k: int
    n_candidates: int
    items: list[str]
    scores: list[float]
    propensities: list[float | None]
    policy: str
    # The lists the policies that did not serve would have served.
    shadows: dict[str, list[str]]
    # Per served item: its fatigue bucket for this user (bandits.fatigue.FatigueBuckets)
    # and the posterior mean CTR of the arm it was ranked with, before seen decay. None in
    # records of earlier releases.
    fatigue: list[int] | None = None
    means: list[float] | None = None
    # Per served item: the posterior mean CTR of its global arm, for the measured lift of
    # the cluster arms (engine/lift.py). None when the list was ranked by the global arms.
    global_means: list[float] | None = None
    # Per served item: the clicks expected had the fixed seen decay been right: the arm's
    # mean x the personal tilt x the fixed decay. The evidence of the learned correction
    # (engine/fatigue.py); None in records of earlier releases, which add none.
    expected: list[float] | None = None

    def encode(self) -> str:
        """Return the JSON stored under the rec key; fields at their default are left out."""
        # Not dataclasses.asdict: its recursive deep copy was 8% of a recommend's CPU, and
        # every value here is already plain JSON (str, numbers, None, lists and dicts of them).
        record = {name: getattr(self, name) for name in _SERVED_FIELDS}
        for name, default in _SERVED_DEFAULTS.items():
            if record[name] == default:
                del record[name]
        return json.dumps(record, separators=(",", ":"))

    @classmethod
    def decode(cls, raw: bytes | str) -> ServedList:
        """Return the list stored by encode(), or by earlier releases (every field written)."""
        return cls(**{**_SERVED_DEFAULTS, **json.loads(raw)})


# Served-list fields a record leaves out when they hold these (most lists do): 28 bytes of
# `"item_id":null,"pools":null` in a record of ~900. Records of earlier releases have them.
_SERVED_DEFAULTS: dict[str, object] = {
    "item_id": None,
    "pools": None,
    "fatigue": None,
    "means": None,
    "global_means": None,
    "expected": None,
}
_SERVED_FIELDS = tuple(f.name for f in dataclass_fields(ServedList))


def text(value: bytes | str) -> str:
    """Return a stored key, field or value as text (everything banditrec stores is UTF-8)."""
    return value.decode() if isinstance(value, bytes) else value


def text_map(raw: Mapping[bytes, bytes]) -> dict[str, str]:
    """Return a hash as text fields and values."""
    return {text(k): text(v) for k, v in raw.items()}


# -- catalog ----------------------------------------------------------------------------


def encode_embedding(embedding: Sequence[float] | np.ndarray | None) -> bytes:
    """Return an embedding's stored bytes; b"" for none (the upsert script then deletes it)."""
    return b"" if embedding is None else np.asarray(embedding, dtype=_FLOAT32).tobytes()


def decode_embedding(raw: bytes | None) -> np.ndarray | None:
    """Return the embedding written by encode_embedding, as float64; None for none."""
    return None if not raw else np.frombuffer(raw, dtype=_FLOAT32).astype(np.float64)


def item_meta(tags: list[str], pools: list[str], active: bool, updated: float) -> dict[str, object]:
    """Return an item's meta fields, as encode_item_meta takes them."""
    return {"tags": tags, "pools": pools, "active": active, "updated": updated}


def encode_item_meta(meta: Mapping[str, object]) -> str:
    """Return the JSON stored in the item meta hash."""
    return json.dumps(meta, separators=(",", ":"))


def decode_item(item_id: str, meta: bytes, embedding: bytes | None) -> ItemRecord:
    """Return the item stored as encode_item_meta and encode_embedding wrote it."""
    fields = json.loads(meta)
    return ItemRecord(
        item_id=item_id,
        tags=fields["tags"],
        pools=fields["pools"],
        active=fields["active"],
        updated=fields["updated"],
        embedding=decode_embedding(embedding),
    )


# -- clusters ---------------------------------------------------------------------------


def encode_clusters(
    centers: np.ndarray, inertia: float, sizes: list[int], fitted_at: float
) -> dict[str, int | bytes | str]:
    """Return the clusters hash's fields but `gen` (which a fit increments in Redis)."""
    return {
        "k": centers.shape[0],
        "dim": centers.shape[1],
        "centers": np.asarray(centers, dtype=_FLOAT32).tobytes(),
        "inertia": repr(float(inertia)),
        "sizes": json.dumps(sizes),
        "fitted_at": repr(float(fitted_at)),
    }


def decode_clusters(raw: Mapping[bytes, bytes]) -> ClusterModel:
    """Return the model of a clusters hash (generation 0, one cluster, for an empty one)."""
    if not raw:
        return ClusterModel()
    fields = {text(k): v for k, v in raw.items()}
    k, dim = int(fields["k"]), int(fields["dim"])
    centers = np.frombuffer(fields["centers"], dtype=_FLOAT32).astype(np.float64)
    return ClusterModel(
        gen=int(fields["gen"]),
        k=k,
        centers=centers.reshape(k, dim),
        inertia=float(fields["inertia"]),
        sizes=json.loads(fields["sizes"]),
        fitted_at=float(fields["fitted_at"]),
    )


# -- counts -----------------------------------------------------------------------------


def decode_counts(raw: Mapping[bytes, bytes]) -> dict[str, float]:
    """Return a count hash (or its time hash) as numbers, by item_id."""
    # float() reads both whole counts and discounted ones, exactly as they were written.
    return {text(k): float(v) for k, v in raw.items()}


def decode_count_row(hashes: Sequence[Mapping[bytes, bytes]]) -> Counts:
    """Return the (imp, clk, cnv) count hashes (or time hashes) of one cluster as numbers."""
    imp, clk, cnv = (decode_counts(h) for h in hashes)
    return imp, clk, cnv


def decode_count_delta(token: str) -> CountDelta:
    """Return one token of a change entry, as record_counts.lua writes it.

    gen|kind|at|added|cluster:added,...|item_id; `at` is empty without discounting.
    """
    gen, kind, at, added, clusters, item_id = token.split("|", 5)
    return CountDelta(
        gen=int(gen),
        kind=kind,
        item_id=item_id,
        added=float(added),
        clusters=tuple(
            (int(c), float(v)) for c, v in (part.split(":") for part in clusters.split(",") if part)
        ),
        at=float(at) if at else None,
    )


def decode_change(shard: int, entry_id: bytes, fields: Mapping[bytes, bytes]) -> CountChange:
    """Return one entry of a shard's changes stream: v (the version), d (newline-joined tokens)."""
    values = text_map(fields)
    deltas = [decode_count_delta(token) for token in values["d"].split("\n")]
    return CountChange(shard, text(entry_id), int(values["v"]), deltas)


# -- users ------------------------------------------------------------------------------


def encode_seen(faded: float, updated: float, unclicked: int) -> str:
    """Return a seen value: faded count (as of `updated`) | updated | unclicked count."""
    # record_user.lua writes the same, with string.format('%.6f|%.3f|%d').
    return f"{faded:.6f}|{updated:.3f}|{unclicked:d}"


def decode_seen(value: bytes | str) -> Seen:
    """Return the Seen of a seen value, also of one written before the unclicked count."""
    faded, _, rest = text(value).partition("|")
    updated, _, unclicked = rest.partition("|")
    count = int(unclicked) if unclicked else legacy_unclicked(float(faded))
    return Seen(float(faded), float(updated), count)


def legacy_unclicked(faded: float) -> int:
    """Return the unclicked count of a value that kept only the faded one ('faded|updated').

    Those earlier releases bucketed the faded count rounded up; an entry means at least one.
    record_user.lua reads such values the same way.
    """
    return max(1, math.ceil(faded))


def encode_last_click(clicked_at: float, rec_id: str | None) -> str:
    """Return a last-click value: clicked_at | rec_id of the list clicked in ('' for none)."""
    # record_user.lua writes the same, with string.format('%.3f|%s').
    return f"{clicked_at:.3f}|{rec_id or ''}"


def decode_last_click(value: bytes | str) -> tuple[float, str | None]:
    """Return (clicked_at, rec_id or None) of a last-click value."""
    clicked_at, _, rec_id = text(value).partition("|")
    return float(clicked_at), rec_id or None


def assigned_key(gen: int, hist: int, mode: str) -> str:
    """Return what a cached membership was computed for: generation, clicks so far, mode."""
    return f"{gen}:{hist}:{mode}"


def parse_assigned_key(key: str) -> tuple[int, int, str]:
    """Return (gen, hist, mode) of an assigned_key; ValueError if it is not one."""
    gen, hist, mode = key.split(":", 2)
    return int(gen), int(hist), mode


def decode_user(
    state: Mapping[bytes, bytes],
    clicks: Sequence[bytes],
    seen: Mapping[bytes, bytes],
    last_clicks: Mapping[bytes, bytes],
) -> UserState:
    """Return a user's state from their state hash, click list, seen and last-click hashes."""
    fields = text_map(state)
    return UserState(
        hist=int(fields.get("hist", 0)),
        membership=fields.get("membership"),
        assigned=fields.get("assigned"),
        clicks=[text(c) for c in clicks],
        seen={text(item): decode_seen(value) for item, value in seen.items()},
        last_clicks={text(item): decode_last_click(value) for item, value in last_clicks.items()},
    )


# -- dedupe markers ----------------------------------------------------------------------

# What earlier releases (and imports of files without owners) store in a marker: an owner
# nobody matches. New owners carry a prefix, so a user whose id is "1" is no exception.
UNKNOWN_OWNER = "1"
_OWNER_PREFIX = "u:"


def encode_owner(user_id: str) -> str:
    """Return a dedupe marker's value: the user whose event counted under its event_id."""
    # record_counts.lua compares these strings whole and writes the one it is given.
    return _OWNER_PREFIX + user_id


def decode_owner(value: bytes | str) -> str | None:
    """Return the user_id of a marker's value; None for a marker without an owner."""
    owner = text(value)
    return owner[len(_OWNER_PREFIX) :] if owner.startswith(_OWNER_PREFIX) else None


def outcome_field(kind: str, item_id: str) -> str:
    """Return the field flagged on a served list's outcome hash: 'imp:ITEM', 'clk:ITEM'..."""
    return f"{kind}:{item_id}"


# -- the learned seen decay's evidence ---------------------------------------------------

# Its counters per fatigue bucket: impressions, clicks, and clicks expected under the fixed
# seen decay (bandits.fatigue), the evidence of the learned correction to it. Earlier
# releases counted 'imp', 'clk', 'exp' (expected without the fixed decay and the tilt): a
# different meaning, kept in the hash and in exports but never read as these.
FATIGUE_KINDS = ("cimp", "cclk", "cexp")


# The measured lift's counters, in the same hash: impressions and clicks on lists ranked by
# cluster arms, and the log-likelihood of those clicks under the cluster arms' means and
# under the global arms' (engine/lift.py).
LIFT_FIELDS = ("lift:imp", "lift:clk", "lift:cll", "lift:gll")


def fatigue_field(kind: str, bucket: int) -> str:
    """Return a field of the fatigue hash: 'cimp:3', 'cclk:3' or 'cexp:3' (kind:bucket)."""
    # record_counts.lua increments the fields it is given, with HINCRBYFLOAT.
    return f"{kind}:{bucket}"


def decode_fatigue(raw: Mapping[bytes, bytes], size: int) -> np.ndarray:
    """Return the fatigue hash as a (3, size) array: FATIGUE_KINDS x bucket.

    Fields of buckets past `size` (another bucketing) and of other kinds (earlier releases'
    evidence, the measured lift's counters) are left out.
    """
    evidence = np.zeros((len(FATIGUE_KINDS), size))
    row = {kind: i for i, kind in enumerate(FATIGUE_KINDS)}
    for field, value in raw.items():
        kind, _, bucket = text(field).partition(":")
        if kind in row and bucket.isdigit() and int(bucket) < size:
            evidence[row[kind], int(bucket)] = float(value)
    return evidence


def stats_field(kind: str, policy: str, view: str | None = None) -> str:
    """Return a /v1/stats counter: 'KIND:POLICY', or 'VIEW_KIND:POLICY' for agree/replay.

    KIND is imp, clk, cnv, or lists (served lists).
    """
    return f"{kind}:{policy}" if view is None else f"{view}_{kind}:{policy}"
