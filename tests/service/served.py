"""The app served by uvicorn on a free port, in a thread of the test process.

For blocking clients (the Python Client, the README's example), which cannot use httpx's
ASGI transport: requests go over a real socket, the app shares the test's Redis.
"""

from __future__ import annotations

import threading
import time

import uvicorn

from evaluation.child import HOST, free_port
from service.config import Settings
from service.main import create_app


class Served:
    """A context manager: uvicorn serving create_app(settings) until exit."""

    def __init__(self, settings: Settings) -> None:
        self.port = free_port()
        self.address = f"{HOST}:{self.port}"
        self.url = f"http://{self.address}"
        config = uvicorn.Config(
            create_app(settings, seed=0), host=HOST, port=self.port, log_level="warning",
            lifespan="on", ws="none", http="h11",
        )  # fmt: skip
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="uvicorn", daemon=True)

    def __enter__(self) -> Served:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(30)
