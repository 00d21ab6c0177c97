"""/docs and /redoc load every script and stylesheet from the service itself (no CDN)."""

from __future__ import annotations

import re

import pytest

from tests.service.conftest import Running

pytestmark = pytest.mark.anyio

# Any address a browser would fetch: src/href attributes and url(...) in inline styles.
_FETCHED = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']|url\(\s*['"]?([^'")]+)""")


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_docs_pages_fetch_nothing_from_another_host(svc: Running, page: str) -> None:
    response = await svc.client.get(page)
    assert response.status_code == 200
    urls = [a or b for a, b in _FETCHED.findall(response.text)]
    scripts = [u for u in urls if u.endswith(".js")]
    assert scripts, f"{page} references no script: {response.text[:300]}"
    for url in urls:
        assert not re.match(r"^(https?:)?//", url), f"{page} loads {url} from another host"
        asset = await svc.client.get(url)
        assert asset.status_code == 200, url
        assert len(asset.content) > 1000, url
