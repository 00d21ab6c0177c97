"""The client ships inside `service` but depends on none of the server: only on its schemas."""

from __future__ import annotations

import subprocess
import sys

from tests.test_architecture import REPO, imports_in, top

# What of service the client may import: the API's models, and itself.
ALLOWED = ("service.schemas", "service.stats_schemas", "service.client")


def test_the_client_imports_only_the_schemas_of_the_service():
    found = [
        f"{i.where} imports {i.target}"
        for i in imports_in(REPO, ("service",))
        if i.module.startswith("service.client")
        and top(i.target) == "service"
        and not i.target.startswith(ALLOWED)
    ]
    assert found == []


def test_the_client_imports_no_redis_fastapi_or_numpy():
    heavy = {"redis", "fastapi", "starlette", "numpy", "uvicorn"}
    found = [
        f"{i.where} imports {i.target}"
        for i in imports_in(REPO, ("service",))
        if i.module.startswith("service.client") and top(i.target) in heavy
    ]
    assert found == []


def test_importing_the_client_loads_none_of_the_server():
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, service.client; print(' '.join(sorted(sys.modules)))"],
        check=True, capture_output=True, text=True,
    ).stdout.split()  # fmt: skip
    assert not [m for m in loaded if top(m) in {"redis", "fastapi", "numpy"}]
    assert not [m for m in loaded if m.startswith(("service.engine", "service.store"))]
