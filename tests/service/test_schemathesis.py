"""Schemathesis against a live `banditrec serve`: no 5xx, every answer as /openapi.json says."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from evaluation.child import free_port, stop, wait_until_ready

pytestmark = pytest.mark.slow

# A bounded run: 20 cases per operation and phase (about 900 requests, some 15 s here).
_MAX_EXAMPLES = 20
_CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
)


def test_generated_requests_get_documented_answers(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("BANDITREC_")}
    env |= {"BANDITREC_DATA_DIR": str(tmp_path / "data"), "BANDITREC_PORT": str(port)}
    with log.open("ab") as sink:
        server = subprocess.Popen(
            [sys.executable, "-m", "cli", "serve"],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until_ready(f"{base}/readyz", server, log, timeout_s=30)
        with urllib.request.urlopen(f"{base}/openapi.json", timeout=10) as response:
            paths = json.load(response)["paths"].values()
        operations = sum(len(methods) for methods in paths)
        run = subprocess.run(
            [
                *(sys.executable, "-m", "schemathesis.cli", "run", f"{base}/openapi.json"),
                *("--phases", "examples,coverage,fuzzing"),
                *("--max-examples", str(_MAX_EXAMPLES), "--seed", "1", "--workers", "1"),
                *("--request-timeout", "10", "--checks", ",".join(_CHECKS)),
            ],
            cwd=tmp_path,  # its .hypothesis folder lands here, not in the repository
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        assert stop(server) == 0
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    assert f"{operations} selected" in run.stdout  # every operation was exercised
