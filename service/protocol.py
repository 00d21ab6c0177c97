"""The HTTP/1.1 protocol `banditrec serve` runs: uvicorn's, with malformed requests
answered in the one error shape instead of plain text."""

from __future__ import annotations

import json

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from service.errors import error_body

# Before any route is known: a bad request line, header or Content-Length, or a body that
# does not match its Content-Length.
_MESSAGE = "the request is not valid HTTP/1.1 (request line, headers or Content-Length)"


class ErrorShapeHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol whose 400 for an unparsable request is JSON."""

    def send_400_response(self, msg: str) -> None:
        """Answer 400 with {"error": {"code": "bad_request", ...}} and close the connection."""
        body = json.dumps(error_body("bad_request", _MESSAGE), separators=(",", ":")).encode()
        content = [STATUS_LINE[400]]
        for name, value in self.server_state.default_headers:
            content.extend([name, b": ", value, b"\r\n"])
        content.extend(
            [
                b"content-type: application/json\r\n",
                b"content-length: " + str(len(body)).encode("ascii") + b"\r\n",
                b"connection: close\r\n",
                b"\r\n",
                body,
            ]
        )
        self.transport.write(b"".join(content))
        self.transport.close()
