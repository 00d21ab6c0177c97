"""The state file of `banditrec export` and `banditrec import` (docs/state-format.md): its
shape, its validation as a whole, and the settings it records.

No I/O here: the store reads and writes, the CLI moves bytes.
"""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    ValidationError,
)
from pydantic import StrictBool as Bool
from pydantic import StrictInt as Int
from pydantic import StrictStr as Str

from service.schemas import ID_PATTERN, MAX_DIM, NAME_PATTERN

if TYPE_CHECKING:
    from service.config import Settings

FORMAT = "banditrec-state"
# 2 added each dedupe marker's owner; files of version 1 are still read (owners unknown).
FORMAT_VERSION = 2
READ_VERSIONS = (1, 2)
# The file's names for the stored count kinds, in KINDS order.
COUNT_NAMES = ("impressions", "clicks", "conversions")
# The settings that shape what the counts mean; recorded so an import can say what differs.
SHAPING_SETTINGS = (
    "key_prefix",
    "prior",
    "prior_strength",
    "prior_a",
    "prior_b",
    "membership",
    "soft_temperature",
    "soft_top_m",
    "half_life_h",
    "seen_gamma",
    "seen_half_life_h",
)
_MAX_ERRORS = 10


class InvalidState(ValueError):
    """A document that is not a valid state file; `errors` are (path, message) pairs."""

    def __init__(self, errors: list[tuple[str, str]]) -> None:
        self.errors = errors
        shown = "; ".join(f"{path}: {message}" if path else message for path, message in errors)
        super().__init__(shown)


# -- the document's shape -------------------------------------------------------------


def _exact(value: object) -> object:
    # Counts stay Decimal so that a cluster count (stored in millionths) survives the
    # division by 10^6 on export and the multiplication on import digit for digit.
    if isinstance(value, int) and not isinstance(value, bool):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value))
    return value


def _with_owner(value: object) -> object:
    # Version 1 wrote [event_id, expires_at]: the owner of those markers is unknown.
    if isinstance(value, list) and len(value) == 2:
        return [*value, None]
    return value


Id = Annotated[Str, Field(pattern=ID_PATTERN)]
Name = Annotated[Str, Field(pattern=NAME_PATTERN)]
Number = Annotated[float, Strict(), Field(allow_inf_nan=False)]
Time = Annotated[float, Strict(), Field(ge=0, le=1e11, allow_inf_nan=False)]
Value = Annotated[float, Strict(), Field(ge=-1e6, le=1e6, allow_inf_nan=False)]

Count = Annotated[
    Decimal, BeforeValidator(_exact), Strict(), Field(ge=0, le=10**15, allow_inf_nan=False)
]

SignedCount = Annotated[
    Decimal, BeforeValidator(_exact), Strict(), Field(ge=-(10**15), le=10**15, allow_inf_nan=False)
]


def _with_unclicked(value: object) -> object:
    # Earlier releases wrote [faded, when]: their plain count is left to the import (None).
    if isinstance(value, list) and len(value) == 2:
        return [*value, None]
    return value


# A seen entry: [faded count, when the last was, plain count since the last click].
SeenEntry = Annotated[
    tuple[Annotated[Number, Field(ge=0)], Time, Annotated[Int, Field(ge=1, le=10**12)] | None],
    BeforeValidator(_with_unclicked),
]

# Fields of the evidence hash that sum log-likelihoods (engine/lift.py): never above 0.
_LOG_LIKELIHOODS = ("lift:cll", "lift:gll")


def _evidence_signs(evidence: dict[str, Decimal]) -> dict[str, Decimal]:
    """Check that log-likelihood sums are <= 0 and every other count >= 0."""
    for name, value in evidence.items():
        if name in _LOG_LIKELIHOODS and value > 0:
            raise ValueError(f"{name} sums log-likelihoods and cannot be above 0, got {value}")
        if name not in _LOG_LIKELIHOODS and value < 0:
            raise ValueError(f"{name} is a count and cannot be below 0, got {value}")
    return evidence


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FileVersions(_Entry):
    """The exporting store's change counters."""

    items: Int = Field(ge=0)
    arms: Int = Field(ge=0)


class ClustersEntry(_Entry):
    """The fitted k-means centres (a fit's generation is at least 1)."""

    gen: Int = Field(ge=1)
    k: Int = Field(ge=1, le=256)
    centers: list[list[Value]] = Field(min_length=1, max_length=256)
    inertia: Number = Field(ge=0)
    sizes: list[Annotated[Int, Field(ge=0)]]
    fitted_at: Time


class ItemEntry(_Entry):
    """One catalog item."""

    item_id: Id
    tags: list[Name] = Field(max_length=64)
    pools: list[Name] = Field(max_length=32)
    active: Bool
    updated: Time
    embedding: list[Value] | None = Field(min_length=1, max_length=MAX_DIM)


class ArmTimes(_Entry):
    """When each count of an arm was last discounted (absent: never)."""

    impressions: Time | None = None
    clicks: Time | None = None
    conversions: Time | None = None


class ArmEntry(_Entry):
    """One arm's counts in events; cluster None is the item's global arm."""

    item_id: Id
    cluster: Int | None = Field(ge=0, le=255)
    impressions: Count
    clicks: Count
    conversions: Count
    updated: ArmTimes = ArmTimes()


class UserEntry(_Entry):
    """One user's cluster cache, click history, seen decay and applied events."""

    user_id: Id
    hist: Int = Field(ge=0)
    membership: Str | None = Field(max_length=1000)
    assigned: Str | None = Field(max_length=200)
    clicks: list[Id] = Field(max_length=1000)
    # Files of earlier releases hold only the first two numbers of each entry.
    seen: dict[Id, SeenEntry]
    last_clicks: dict[Id, tuple[Time, Id | None]]
    events: list[tuple[Id, Time]]
    expires_at: Time | None


class StateDocument(_Entry):
    """A whole state file, as validated."""

    format: Literal["banditrec-state"]
    format_version: Literal[1, 2]
    exported_at: Time
    banditrec_version: Str = Field(max_length=64)
    settings: dict[Str, Number | Str | Bool | Int | None]
    versions: FileVersions
    decay_since: Time | None = None
    stats: dict[Str, Count] = Field(default_factory=dict)
    # The learned seen decay's evidence: imp|clk|exp:BUCKET -> number (files before: none),
    # with the measured lift's counters (lift:imp|clk|cll|gll; cll and gll are <= 0).
    seen_decay: Annotated[dict[Str, SignedCount], AfterValidator(_evidence_signs)] = Field(
        default_factory=dict
    )
    clusters: ClustersEntry | None
    items: list[ItemEntry]
    retired: list[Id] = Field(default_factory=list)
    arms: list[ArmEntry]
    dedupe: list[Annotated[tuple[Id, Time, Id | None], BeforeValidator(_with_owner)]]
    users: list[UserEntry] | None = None


# -- settings and numbers -------------------------------------------------------------


def settings_fields(settings: Settings) -> dict[str, Any]:
    """Return the settings that shape the counts, as the file records them."""
    return {name: getattr(settings, name) for name in SHAPING_SETTINGS}


def json_number(value: Decimal) -> str:
    """Return a number's JSON text: whole numbers as integers, others in plain notation."""
    if value == value.to_integral_value():
        return str(int(value))
    return format(value.normalize(), "f")


# -- parsing ----------------------------------------------------------------------------


def parse_document(text: str | bytes) -> StateDocument:
    """Return the validated document; raise InvalidState naming every offending path."""
    try:
        raw = json.loads(text, parse_float=Decimal, parse_constant=_no_constant)
    except (ValueError, InvalidOperation) as exc:
        raise InvalidState([("", f"not valid JSON: {exc}")]) from exc
    _check_format(raw)
    try:
        document = StateDocument.model_validate(raw)
    except ValidationError as exc:
        errors = [(_path(e["loc"]), e["msg"]) for e in exc.errors(include_url=False)]
        raise InvalidState(_capped(errors)) from exc
    problems = _reference_problems(document)
    if problems:
        raise InvalidState(_capped(problems))
    return document


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not a number JSON allows")


def _check_format(raw: object) -> None:
    """Refuse anything but a banditrec state file of a version this code reads."""
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise InvalidState([("format", f"not a banditrec state file (expected {FORMAT!r})")])
    found = raw.get("format_version")
    if found not in READ_VERSIONS or isinstance(found, bool):
        readable = " and ".join(str(v) for v in READ_VERSIONS)
        message = f"version {found!r} is not supported; this banditrec reads {readable}"
        raise InvalidState([("format_version", message)])


def _path(loc: tuple[int | str, ...]) -> str:
    """Return a pydantic location as the file's path, e.g. arms[12].clicks."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else part
    return path


def _capped(errors: list[tuple[str, str]]) -> list[tuple[str, str]]:
    if len(errors) <= _MAX_ERRORS:
        return errors
    more = len(errors) - _MAX_ERRORS
    return [*errors[:_MAX_ERRORS], ("", f"and {more} more problems")]


def _reference_problems(document: StateDocument) -> list[tuple[str, str]]:
    """Return what the field checks cannot see: duplicates, dimensions, dangling references."""
    problems, dim = _item_problems(document)
    k = document.clusters.k if document.clusters is not None else 1
    if document.clusters is not None:
        problems += _cluster_problems(document.clusters, dim)
    known = {item.item_id for item in document.items}
    for n, item_id in enumerate(document.retired):
        if item_id in known:
            problems.append((f"retired[{n}]", f"{item_id!r} is in items or listed twice"))
        known.add(item_id)
    arms: set[tuple[str, int | None]] = set()
    for n, arm in enumerate(document.arms):
        if arm.item_id not in known:
            message = f"{arm.item_id!r} is neither in items nor in retired"
            problems.append((f"arms[{n}].item_id", message))
        if arm.cluster is not None and arm.cluster >= k:
            message = f"cluster {arm.cluster} does not exist; clusters are 0..{k - 1} or null"
            problems.append((f"arms[{n}].cluster", message))
        if (arm.item_id, arm.cluster) in arms:
            problems.append((f"arms[{n}]", f"a second arm of {arm.item_id!r} in that cluster"))
        arms.add((arm.item_id, arm.cluster))
    problems += _duplicates("dedupe", [event_id for event_id, *_ in document.dedupe], "[0]")
    users = [user.user_id for user in document.users or []]
    problems += _duplicates("users", users, ".user_id")
    return problems


def _item_problems(document: StateDocument) -> tuple[list[tuple[str, str]], int]:
    """Return duplicate ids and embeddings of another dimension, and the items' dimension."""
    problems = _duplicates("items", [item.item_id for item in document.items], ".item_id")
    dim, first = 0, -1
    for n, item in enumerate(document.items):
        if item.embedding is None:
            continue
        if not dim:
            dim, first = len(item.embedding), n
        elif len(item.embedding) != dim:
            message = f"has {len(item.embedding)} dimensions, items[{first}].embedding has {dim}"
            problems.append((f"items[{n}].embedding", message))
    return problems, dim


def _cluster_problems(clusters: ClustersEntry, dim: int) -> list[tuple[str, str]]:
    """Return shape errors of the centres: k rows of the items' dimension, k sizes."""
    problems = []
    if len(clusters.centers) != clusters.k:
        message = f"has {len(clusters.centers)} rows for k={clusters.k}"
        problems.append(("clusters.centers", message))
    width = len(clusters.centers[0])
    for n, row in enumerate(clusters.centers):
        if len(row) != width:
            message = f"has {len(row)} dimensions, clusters.centers[0] has {width}"
            problems.append((f"clusters.centers[{n}]", message))
    if dim and width != dim:
        message = f"centres have {width} dimensions, the items' embeddings {dim}"
        problems.append(("clusters.centers", message))
    if len(clusters.sizes) != clusters.k:
        problems.append(("clusters.sizes", f"has {len(clusters.sizes)} sizes for k={clusters.k}"))
    return problems


def _duplicates(name: str, ids: list[str], suffix: str) -> list[tuple[str, str]]:
    first: dict[str, int] = {}
    problems = []
    for n, value in enumerate(ids):
        if value in first:
            problems.append((f"{name}[{n}]{suffix}", f"{value!r} is also {name}[{first[value]}]"))
        first.setdefault(value, n)
    return problems


def settings_differences(document: StateDocument, settings: Settings) -> list[str]:
    """Return, as sentences, the count-shaping settings that differ from the file's."""
    current = settings_fields(settings)
    notes = []
    for name in SHAPING_SETTINGS:
        if name == "key_prefix" or name not in document.settings:
            continue
        theirs, ours = document.settings[name], current[name]
        if not _same_setting(theirs, ours):
            notes.append(
                f"the file was written with {name}={theirs!r}; this deployment uses {ours!r}"
            )
    return notes


def _same_setting(a: object, b: object) -> bool:
    numbers = (int, float)
    if isinstance(a, numbers) and isinstance(b, numbers) and not isinstance(a, bool):
        return float(a) == float(b)
    return a == b


def describe(document: StateDocument) -> str:
    """Return a one-line summary of what the document holds."""
    clusters = document.clusters
    parts = [
        f"{len(document.items)} items",
        f"{len(document.arms)} arms",
        "no clusters" if clusters is None else f"{clusters.k} clusters",
        f"{len(document.dedupe)} dedupe markers",
    ]
    if document.retired:
        parts.insert(1, f"{len(document.retired)} retired items")
    if document.users is not None:
        parts.append(f"{len(document.users)} users")
    return ", ".join(parts)
