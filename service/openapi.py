"""What /openapi.json says beyond the routes: the API's overview, its tags, its error answers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from service.schemas import ID_PATTERN, ErrorResponse

Problem = dict[str, str]

DESCRIPTION = """\
Online recommendations from Thompson-sampling bandits, one per user cluster, with seen decay:
items a user was shown and did not click rank lower in that user's lists for a while.

**The loop.** Put items in the catalog (`PUT /v1/items/{item_id}`, `POST /v1/items/bulk`).
Ask for a list (`POST /v1/recommend`); the answer carries a `rec_id`. Report what the user
saw and clicked (`POST /v1/feedback`), naming that `rec_id` and items of that list: the
bandits of the clusters the list was served for learn from it. Watch the posteriors
(`/v1/arms`), a user's clusters and seen decay (`/v1/users/{user_id}`), the serving policies
compared online (`/v1/stats`); export the served lists with their propensities for
off-policy evaluation (`/v1/admin/logs/export`).

**Access.** With `BANDITREC_API_KEY` set, the operations marked with a lock need it in the
`X-API-Key` header; reads of items, arms, users and stats stay open. Without it nothing is
checked.

**Errors** have one JSON shape, `{"error": {"code", "message", "field"}}`: `code` is stable,
`message` is for people, `field` names the request field at fault (`events[3].item_id`) when
there is one. Each operation lists the statuses it can answer with:

| status | when |
| --- | --- |
| 400 | the body cannot be decoded as JSON text (e.g. it is not UTF-8) |
| 401 | `X-API-Key` missing or wrong |
| 404 | the item (or its arm) does not exist |
| 405 | the path does not serve this method; `Allow` lists those it does |
| 413 | the body is larger than `BANDITREC_MAX_BODY_BYTES` |
| 422 | invalid JSON, a field missing, out of bounds or unknown (misspelt), or naming something \
that does not exist (item, pool, cluster) |
| 503 | Redis cannot serve it: down or too slow, or refusing (out of memory, a read-only \
replica; `code` says which). A write may have been applied: resend the same request |
"""

TAGS: list[dict[str, Any]] = [
    {"name": "items", "description": "The catalog: items with embeddings, tags and pools."},
    {"name": "recommend", "description": "Ranked lists for a user, each logged as a `rec_id`."},
    {"name": "feedback", "description": "Impressions, clicks and conversions: what bandits learn."},
    {"name": "arms", "description": "Live view of the posteriors, per item and per cluster."},
    {"name": "users", "description": "A user's clusters, recent clicks and seen decay."},
    {"name": "stats", "description": "The serving policies compared online."},
    {"name": "admin", "description": "Operator actions: refit the clusters, export the logs."},
    {"name": "health", "description": "Liveness and readiness probes."},
]

# Per status: when it happens, and a body as the service really writes it.
_ERRORS: dict[int, tuple[str, dict[str, str]]] = {
    400: (
        "The body cannot be decoded as JSON text (e.g. it is not UTF-8).",
        {
            "code": "bad_request",
            "message": "body: cannot be decoded as JSON: 'utf-8' codec can't decode byte 0xff "
            "in position 0: invalid start byte",
            "field": "body",
        },
    ),
    401: (
        "X-API-Key is missing or wrong (only when BANDITREC_API_KEY is set).",
        {
            "code": "unauthorized",
            "message": "missing or wrong X-API-Key header",
            "field": "X-API-Key",
        },
    ),
    404: (
        "The item does not exist.",
        {"code": "not_found", "message": "item 'i404' is not in the catalog", "field": "item_id"},
    ),
    413: (
        "The body is larger than BANDITREC_MAX_BODY_BYTES.",
        {"code": "payload_too_large", "message": "request body is larger than 1048576 bytes"},
    ),
    422: (
        "Invalid request: bad JSON, a field missing, out of bounds or unknown, or naming "
        "something that does not exist. `field` says which.",
        {
            "code": "invalid_request",
            "message": "events[0].evnt_id: unknown field (did you mean event_id?); "
            "events[0].event_id: Field required",
            "field": "events[0].evnt_id",
        },
    ),
    503: (
        "Redis cannot serve the request: down or too slow (`redis_unavailable`), or in a "
        "state that refuses it, named by the code (`redis_out_of_memory`, `redis_read_only`, "
        "...). A write may have been applied: resend the same request.",
        {
            "code": "redis_unavailable",
            "message": "redis is not reachable or did not answer in time; the write may have "
            "been applied: resend the same request, which leaves the same state (a repeated "
            "DELETE of an item then answers 404)",
        },
    ),
}


def problem(code: str, message: str, field: str) -> Problem:
    """Return the `error` member of an error body, as an example of what a route answers."""
    return {"code": code, "message": message, "field": field}


def bad_id(field: str) -> Problem:
    """Return the 422 problem of an id that breaks ID_PATTERN."""
    return problem("invalid_request", f"{field}: String should match pattern '{ID_PATTERN}'", field)


def error_responses(
    *statuses: int, invalid: Sequence[Problem] = (), missing: Problem | None = None
) -> dict[int | str, dict[str, Any]]:
    """Return the `responses` entries of these error statuses, for a route decorator.

    `invalid` and `missing` replace the generic 422 and 404 examples by the route's own.
    """
    own = {422: list(invalid), 404: [missing] if missing else []}
    responses: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        examples: dict[str, Any] = {}
        for body in own.get(status) or [_ERRORS[status][1]]:
            name = (
                body["code"] if body["code"] not in examples else f"{body['code']}: {body['field']}"
            )
            examples[name] = {"value": {"error": body}}
        responses[status] = {
            "model": ErrorResponse,
            "description": _ERRORS[status][0],
            "content": {"application/json": {"examples": examples}},
        }
    return responses
