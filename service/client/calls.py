"""Every request of the API as a Call: method, path, body, how to read the answer, resend rule.

Both clients send the same Calls; only how they wait differs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel

from service.client.retry import Resend
from service.schemas import (
    ArmList,
    BulkResult,
    FeedbackEvent,
    FeedbackResult,
    FitResult,
    ItemArms,
    ItemIn,
    ItemOut,
    RecommendResponse,
    UserOut,
)
from service.stats_schemas import Overview, StatsOut

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)
# What the API takes per feedback request.
MAX_EVENTS = 1000

EventLike = FeedbackEvent | Mapping[str, Any]
ItemLike = ItemIn | Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Call(Generic[T]):
    """One request and how to turn its successful answer into a result."""

    method: str
    path: str
    parse: Callable[[httpx.Response], T]
    json: Any = None
    params: Mapping[str, Any] | None = None
    resend: Resend = Resend.ANY


def _model(model: type[M]) -> Callable[[httpx.Response], M]:
    def parse(response: httpx.Response) -> M:
        return model.model_validate_json(response.content)

    return parse


def _nothing(response: httpx.Response) -> None:
    return None


def _segment(value: str) -> str:
    # Ids are validated by the server; quoting keeps a bad one from naming another route.
    return quote(value, safe="")


def _plain(value: BaseModel | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(value, BaseModel):
        return value.model_dump(exclude_none=True)
    return dict(value)


def put_item(
    item_id: str,
    embedding: Sequence[float] | None = None,
    tags: Sequence[str] = (),
    pools: Sequence[str] = (),
    active: bool = True,
) -> Call[ItemOut]:
    """Create or replace one item."""
    body = {
        "embedding": None if embedding is None else list(embedding),
        "tags": list(tags),
        "pools": list(pools),
        "active": active,
    }
    return Call("PUT", f"/v1/items/{_segment(item_id)}", _model(ItemOut), json=body)


def put_items(items: Iterable[ItemLike]) -> Call[BulkResult]:
    """Create or replace up to 1000 items, all or nothing."""
    return Call(
        "POST", "/v1/items/bulk", _model(BulkResult), json={"items": [_plain(i) for i in items]}
    )


def get_item(item_id: str) -> Call[ItemOut]:
    """Read one item."""
    return Call("GET", f"/v1/items/{_segment(item_id)}", _model(ItemOut))


def delete_item(item_id: str) -> Call[None]:
    """Stop serving an item."""
    return Call("DELETE", f"/v1/items/{_segment(item_id)}", _nothing)


def recommend(
    user_id: str,
    k: int = 10,
    *,
    surface: Literal["home", "related"] = "home",
    item_id: str | None = None,
    candidates: Sequence[str] | None = None,
    exclude: Sequence[str] = (),
    pool: str | None = None,
    pools: Mapping[str, int] | None = None,
) -> Call[RecommendResponse]:
    """Ask for a ranked list; a resent recommend may log a second list (docs/client.md)."""
    body: dict[str, Any] = {"user_id": user_id, "k": k, "surface": surface}
    optional = {
        "item_id": item_id,
        "candidates": None if candidates is None else list(candidates),
        "exclude": list(exclude) or None,
        "pool": pool,
        "pools": None if pools is None else dict(pools),
    }
    body |= {name: value for name, value in optional.items() if value is not None}
    return Call("POST", "/v1/recommend", _model(RecommendResponse), json=body)


def feedback(events: Sequence[EventLike]) -> list[Call[FeedbackResult]]:
    """Return one feedback call per 1000 events, in order."""
    plain = [_plain(e) for e in events]
    parse = _model(FeedbackResult)
    return [
        Call("POST", "/v1/feedback", parse, json={"events": plain[i : i + MAX_EVENTS]})
        for i in range(0, len(plain), MAX_EVENTS)
    ]


def merge(results: Iterable[FeedbackResult]) -> FeedbackResult:
    """Return the results of several feedback calls as one."""
    accepted, duplicates = 0, 0
    unknown: dict[str, None] = {}
    for result in results:
        accepted += result.accepted
        duplicates += result.duplicates
        unknown |= dict.fromkeys(result.unknown_rec_ids)
    return FeedbackResult(accepted=accepted, duplicates=duplicates, unknown_rec_ids=list(unknown))


def item_arms(item_id: str) -> Call[ItemArms]:
    """Read an item's global arm and its arm in every cluster."""
    return Call("GET", f"/v1/arms/{_segment(item_id)}", _model(ItemArms))


def arms(cluster: int | None = None, limit: int = 100, offset: int = 0) -> Call[ArmList]:
    """Read one page of a cluster's (or the global) arms, best mean first."""
    params: dict[str, Any] = {"limit": limit, "offset": offset}
    if cluster is not None:
        params["cluster"] = cluster
    return Call("GET", "/v1/arms", _model(ArmList), params=params)


def user(user_id: str) -> Call[UserOut]:
    """Read a user's clusters, recent clicks and seen-decay penalties."""
    return Call("GET", f"/v1/users/{_segment(user_id)}", _model(UserOut))


def stats() -> Call[StatsOut]:
    """Read the serving policies' online counters."""
    return Call("GET", "/v1/stats", _model(StatsOut))


def reset_stats() -> Call[None]:
    """Start the policies' counters afresh."""
    return Call("DELETE", "/v1/stats", _nothing)


def overview() -> Call[Overview]:
    """Read catalog size, the clustering, counted events and the snapshot's age."""
    return Call("GET", "/v1/overview", _model(Overview))


def fit_clusters(k: int | None = None, seed: int | None = None) -> Call[FitResult]:
    """Fit k-means on users' vectors: resent only if it never reached the service."""
    # Without k the service chooses it from the history (FitRequest).
    body: dict[str, Any] = {} if k is None else {"k": k}
    if seed is not None:
        body["seed"] = seed
    return Call(
        "POST", "/v1/admin/clusters/fit", _model(FitResult), json=body, resend=Resend.UNSENT
    )
