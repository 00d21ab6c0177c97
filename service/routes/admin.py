"""Operator actions."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request
from fastapi.responses import StreamingResponse

from service.deps import EngineDep, WriteAccess
from service.errors import stream_error
from service.openapi import error_responses, problem
from service.schemas import FitRequest, FitResult

router = APIRouter(prefix="/v1/admin", tags=["admin"], dependencies=[WriteAccess])

# Every field of a fit has a default, so the body may be left out altogether.
_DEFAULT_FIT = FitRequest()

# One line of the export, as views._served_line writes it.
_EXPORT_EXAMPLE = (
    '{"rec_id":"3f2c9a0e5d7b4c1e8f6a2b9d0c4e7f15","user_id":"u42","gen":1,"cluster":3,'
    '"ts":1795459874.6,"surface":"home","item_id":null,"pools":null,"k":2,"n_candidates":9,'
    '"policy":"bandit","shadows":{"baseline":["i5","i2"]},"items":['
    '{"item_id":"i2","position":0,"score":0.071,"propensity":0.67,'
    '"impression":true,"click":true,"conversion":false},'
    '{"item_id":"i9","position":1,"score":0.044,"propensity":0.42,'
    '"impression":true,"click":false,"conversion":false}]}\n'
)


@router.post(
    "/clusters/fit",
    summary="Refit the user clusters",
    responses=error_responses(
        400,
        401,
        413,
        422,
        503,
        invalid=[
            problem(
                "not_enough_users",
                "k=8 needs at least 8 users who clicked items with embeddings; found 5",
                "k",
            )
        ],
    ),
)
async def fit_clusters(
    engine: EngineDep, request: Annotated[FitRequest, Body()] = _DEFAULT_FIT
) -> FitResult:
    """Fit k-means on users' vectors and start a new clustering generation.

    A user's vector is the unit-length mean embedding of the items they clicked last; users
    without an embedded click are left out. The body is optional (k=16, a fresh seed). Fewer
    such users than `k` is a 422 (`not_enough_users`). From the new generation on, cluster arms are
    counted per new cluster; the global arms carry on.
    """
    return await engine.refits.fit(request)


@router.get(
    "/logs/export",
    summary="Export the served lists with propensities and outcomes",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "One JSON object per line (NDJSON).",
            "content": {"application/x-ndjson": {"example": _EXPORT_EXAMPLE}},
        },
        **error_responses(
            401,
            422,
            503,
            invalid=[
                problem(
                    "invalid_request", "limit: Input should be greater than or equal to 1", "limit"
                )
            ],
        ),
    },
)
async def export_logs(
    request: Request,
    engine: EngineDep,
    since: Annotated[
        float | None, Query(ge=0, examples=[1795400000], description="Unix time, inclusive.")
    ] = None,
    until: Annotated[
        float | None, Query(ge=0, examples=[1795500000], description="Unix time, exclusive.")
    ] = None,
    limit: Annotated[
        int, Query(ge=1, le=10_000_000, examples=[1000], description="Most lines to send.")
    ] = 1_000_000,
) -> StreamingResponse:
    """Stream logged served lists with propensities and feedback outcomes as NDJSON.

    One line per list still within the rec-log TTL (`BANDITREC_REC_LOG_TTL_S`), in no
    particular order:

    `{rec_id, user_id, gen, cluster, ts, surface, item_id, pools, k, n_candidates, policy,
    shadows, items: [{item_id, position, score, propensity, impression, click, conversion}]}`

    `cluster` is null for a user the clustering could not place; `item_id` is the viewed
    item of a related list; `pools` the places the request reserved; `shadows` the lists
    the other policies would have served; `propensity` the estimated chance that the item
    was in the list (null with `BANDITREC_PROPENSITY_SAMPLES=0`); `impression`, `click` and
    `conversion` whether feedback naming this `rec_id` reported them. `banditrec evaluate`
    reads this format.

    The last line says how the stream ended, so that a cut one is never taken for whole:
    `{"end": true, "lines": N}` after N lists, or, when Redis failed after the 200 was
    sent, the error shape `{"error": {"code", "message"}}` (the 503 codes): the lines
    before it are then only part of the export. A failure before the first line is a 503.
    """
    lines = engine.views.export_logs(since, until, limit)
    first = await anext(lines, None)  # surfaces a Redis outage as 503, not a cut stream

    async def stream() -> AsyncIterator[str]:
        sent = 0
        try:
            if first is not None:
                yield first
                sent += 1
                async for line in lines:
                    yield line
                    sent += 1
        except Exception as exc:  # the status is sent: only the last line can say it
            yield _ndjson(stream_error(exc, request.method, request.url.path))
            return
        yield _ndjson({"end": True, "lines": sent})

    return StreamingResponse(stream(), media_type="application/x-ndjson")


def _ndjson(line: dict[str, Any]) -> str:
    return json.dumps(line, separators=(",", ":")) + "\n"
