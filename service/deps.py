"""Annotated dependency aliases, so routes read like sentences and tests can override them.

All are `async def`: a plain `def` dependency runs in the thread pool, a hop per request.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader

from service.config import Settings
from service.engine import Engine
from service.errors import ApiError
from service.metrics import Metrics


async def get_settings(request: Request) -> Settings:
    """Return the app's settings."""
    settings: Settings = request.app.state.settings
    return settings


async def get_engine(request: Request) -> Engine:
    """Return the app's engine."""
    engine: Engine = request.app.state.engine
    return engine


async def get_metrics(request: Request) -> Metrics:
    """Return the app's metrics."""
    metrics: Metrics = request.app.state.metrics
    return metrics


SettingsDep = Annotated[Settings, Depends(get_settings)]
EngineDep = Annotated[Engine, Depends(get_engine)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]


# A security scheme rather than a plain header: OpenAPI then shows the lock on every route
# that depends on it, and Swagger UI offers to send the key. We check the key ourselves
# (auto_error=False) so that a missing key gets the one error shape.
_API_KEY = APIKeyHeader(
    name="X-API-Key",
    scheme_name="ApiKey",
    description="Checked only when BANDITREC_API_KEY is set; a missing or wrong key is a 401.",
    auto_error=False,
)


async def require_api_key(
    settings: SettingsDep, x_api_key: Annotated[str | None, Security(_API_KEY)]
) -> None:
    """Refuse the request (401) unless X-API-Key matches BANDITREC_API_KEY, when one is set."""
    if settings.api_key is None:
        return
    expected = settings.api_key.get_secret_value().encode()
    if x_api_key is None or not hmac.compare_digest(x_api_key.encode(), expected):
        raise ApiError(401, "unauthorized", "missing or wrong X-API-Key header", "X-API-Key")


WriteAccess = Depends(require_api_key)
# Reads of what was learned and of users' data (the dashboard's sources) need the key too.
ReadAccess = Depends(require_api_key)
