"""What both clients send with every request: base URL, API key, timeouts."""

from __future__ import annotations

from typing import Any

import httpx

DEFAULT_URL = "http://127.0.0.1:8000"
USER_AGENT = "banditrec-client/0.1"


def http_options(base_url: str, api_key: str | None, timeout_s: float) -> dict[str, Any]:
    """Return the keyword arguments of an httpx client for this service."""
    if not timeout_s > 0:
        raise ValueError(f"timeout_s must be > 0, got {timeout_s}")
    headers = {"user-agent": USER_AGENT}
    if api_key is not None:
        headers["x-api-key"] = api_key
    return {"base_url": base_url, "headers": headers, "timeout": httpx.Timeout(timeout_s)}
