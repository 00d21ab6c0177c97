"""Malformed HTTP never reaches the app: uvicorn answers it, in our error shape."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

import pytest
import uvicorn

from evaluation.child import HOST, free_port, stop, wait_until_ready
from service.main import create_app
from service.protocol import ErrorShapeHttpToolsProtocol

pytestmark = pytest.mark.anyio

MALFORMED = [
    b"POST /v1/feedback HTTP/1.1\r\nHost: t\r\nContent-Length: abc\r\n\r\n",
    b"POST /v1/feedback HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
    b"GET /v1/stats HTTP/1.1\r\nHost: t\r\nBad Header: x\r\n\r\n",
    b"NOT HTTP AT ALL\r\n\r\n",
]


async def _exchange(port: int, request: bytes) -> bytes:
    reader, writer = await asyncio.open_connection(HOST, port)
    writer.write(request)
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), 10)  # the server closes the connection
    writer.close()
    return answer


async def test_a_malformed_request_gets_the_json_error_shape(make_settings):
    port = free_port()
    app = create_app(make_settings())
    config = uvicorn.Config(
        app, host=HOST, port=port, http=ErrorShapeHttpToolsProtocol, lifespan="off", ws="none",
        log_level="critical",
    )  # fmt: skip
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    try:
        while not server.started:
            await asyncio.sleep(0.01)
        for request in MALFORMED:
            answer = await _exchange(port, request)
            head, _, body = answer.partition(b"\r\n\r\n")
            lines = head.split(b"\r\n")
            assert lines[0] == b"HTTP/1.1 400 Bad Request", answer
            assert b"content-type: application/json" in lines
            error = json.loads(body)["error"]
            assert error["code"] == "bad_request"
            assert "not valid HTTP" in error["message"]
    finally:
        server.should_exit = True
        await serving


@pytest.mark.slow
async def test_banditrec_serve_runs_the_protocol(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("BANDITREC_")}
    env |= {"BANDITREC_DATA_DIR": str(tmp_path / "data"), "BANDITREC_PORT": str(port)}
    log = tmp_path / "serve.log"
    with log.open("ab") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "cli", "serve"], env=env, stdout=sink, stderr=subprocess.STDOUT
        )
    try:
        wait_until_ready(f"http://{HOST}:{port}/readyz", process, log, timeout_s=30)
        answer = await _exchange(port, MALFORMED[0])
        assert answer.startswith(b"HTTP/1.1 400 Bad Request\r\n"), answer
        assert json.loads(answer.partition(b"\r\n\r\n")[2])["error"]["code"] == "bad_request"
    finally:
        assert stop(process) == 0, log.read_text()
