"""The read-only dashboard: one page and its scripts, shipped in the package, no CDN."""

from __future__ import annotations

from importlib.resources import files

from fastapi import FastAPI
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

_STATIC = files("service.dashboard") / "static"
PAGE_URL = "/dashboard"
# The page may load nothing from elsewhere: every script, style and font is ours.
_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)


def install_dashboard(app: FastAPI) -> None:
    """Serve the dashboard at /dashboard (its data calls send the API key when one is set)."""
    app.mount(f"{PAGE_URL}/static", StaticFiles(directory=str(_STATIC)), name="dashboard-static")
    page = (_STATIC / "index.html").read_text(encoding="utf-8")

    @app.get(PAGE_URL, include_in_schema=False)
    async def dashboard() -> HTMLResponse:
        # The page holds no data, so it loads without the key; its API calls need it.
        return HTMLResponse(page, headers={"content-security-policy": _POLICY})

    @app.get("/", include_in_schema=False)
    async def home() -> RedirectResponse:
        return RedirectResponse(PAGE_URL.lstrip("/"))
