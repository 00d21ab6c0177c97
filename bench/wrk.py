"""wrk (a C load generator, Debian package `wrk`) against recommend and feedback.

Locust is Python and shares the two cores with the server, capping what it can send;
wrk costs a fraction of that, so its req/s is closer to what the server can serve.
`ensure()` installs the package with apt-get when it is missing and we are root.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

# One recommend per request for a random user with history; feedback batches of unique
# impressions (5% clicks), event ids unique per wrk thread and request.
RECOMMEND_LUA = """
math.randomseed(os.time())
request = function()
  local body = '{"user_id":"u' .. math.random(0, %(users)d - 1) .. '","k":10}'
  return wrk.format("POST", "/v1/recommend", {["Content-Type"]="application/json"}, body)
end
"""
_FEEDBACK_LUA = """
math.randomseed(os.time())
local run = tostring(math.random(1, 1000000000))
local n = 0
request = function()
  n = n + 1
  local events = {}
  for i = 1, %(batch)d do
    local kind = "impression"
    if math.random() < 0.05 then kind = "click" end
    events[i] = '{"event_id":"w' .. run .. '-' .. n .. '-' .. i .. '","type":"' .. kind ..
      '","user_id":"u' .. math.random(0, %(users)d - 1) .. '","item_id":"i' ..
      math.random(0, %(items)d - 1) .. '"}'
  end
  local body = '{"events":[' .. table.concat(events, ",") .. ']}'
  return wrk.format("POST", "/v1/feedback", {["Content-Type"]="application/json"}, body)
end
"""
_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def ensure() -> str | None:
    """Return the wrk executable, installing the Debian package if missing and root."""
    found = shutil.which("wrk")
    if found or os.geteuid() != 0 or not shutil.which("apt-get"):
        return found
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "wrk"],
        check=False,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=300,
    )
    return shutil.which("wrk")


def script(work: Path, mode: str, *, users: int, items: int, batch: int = 100) -> Path:
    """Write the Lua script that builds each request's body for `mode`; return its path."""
    template = RECOMMEND_LUA if mode == "recommend" else _FEEDBACK_LUA
    path = work / f"wrk-{mode}.lua"
    path.write_text(template % {"users": users, "items": items, "batch": batch})
    return path


def run(url: str, lua: Path, *, duration_s: int = 10, connections: int = 16) -> dict[str, Any]:
    """Run wrk -t1 against url with the script; return req/s and p50/p99 (ms)."""
    command = [
        "wrk", "-t1", f"-c{connections}", f"-d{duration_s}s", "--timeout", "10s", "--latency",
        "-s", str(lua), url,
    ]  # fmt: skip
    out = subprocess.run(
        command, check=True, capture_output=True, text=True, timeout=duration_s + 60
    ).stdout
    return parse(out)


def parse(output: str) -> dict[str, Any]:
    """Return requests, errors, req/s and latency percentiles from wrk's --latency output."""
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    total = re.search(r"(\d+) requests in", output)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    result: dict[str, Any] = {
        "requests": int(total.group(1)) if total else 0,
        "rps": float(rps.group(1)) if rps else 0.0,
        "non_2xx": int(non_2xx.group(1)) if non_2xx else 0,
        "socket_errors": sum(int(g) for g in errors.groups()) if errors else 0,
    }
    for pct, value, unit in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", output, re.M):
        result[f"p{pct}_ms"] = round(float(value) * _UNITS[unit], 3)
    return result
