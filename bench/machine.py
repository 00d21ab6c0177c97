"""Facts about the machine and software a run was measured on, and its load."""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

_PACKAGES = ("numpy", "fastapi", "starlette", "pydantic", "uvicorn", "redis", "hiredis")
_OPTIONAL = ("locust", "mabwiser", "pyinstrument")


def load() -> list[float]:
    """Return the 1, 5 and 15 minute load averages, rounded."""
    return [round(x, 2) for x in os.getloadavg()]


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def redis_server_version() -> str:
    """Return the version of the embedded redis-server binary (e.g. '6.2.14')."""
    from service.embedded import redis_server_binary

    out = subprocess.run(
        [str(redis_server_binary()), "--version"], capture_output=True, text=True, timeout=10
    ).stdout
    for part in out.split():
        if part.startswith("v="):
            return part[2:]
    return out.strip()


def _git_state() -> dict[str, Any]:
    root = Path(__file__).resolve().parent.parent
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "service", "bandits", "clustering"],
            cwd=root,
            capture_output=True,
            text=True,
        ).stdout.split("\n")
    except OSError:
        return {}
    return {"commit": rev, "uncommitted_service_files": [d[3:] for d in dirty if d]}


def facts() -> dict[str, Any]:
    """Return cores, CPU model, Python and library versions, date and current load."""
    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "cores": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "versions": {p: _version(p) for p in (*_PACKAGES, *_OPTIONAL)},
        "redis_server": redis_server_version(),
        "git": _git_state(),
        "load": load(),
    }
