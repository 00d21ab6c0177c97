"""A TCP proxy in front of a real Redis that can lose the replies to chosen commands.

Redis receives and runs every command; only its answer to a command containing a chosen
word (e.g. EVALSHA: the feedback and catalog writes), or to the n-th such command and all
after it, never reaches the client, which then times out. That is the case where a write
was applied but the service cannot know it, or where Redis stops answering mid-way.
"""

from __future__ import annotations

import asyncio
import contextlib

from evaluation.child import HOST


class LostReplies:
    """Forwards 127.0.0.1:port to a Redis; drops replies once a watched word was sent."""

    def __init__(self, redis_port: int) -> None:
        self.redis_port = redis_port
        self.lose_after: bytes | None = None
        # Lose from the n-th chunk sent that holds the word (counted over all connections).
        self.lose_from = 1
        self.sent_with_word = 0
        self.lost = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        """Return the redis-py URL of the proxy."""
        assert self._server is not None
        port = self._server.sockets[0].getsockname()[1]
        return f"redis://{HOST}:{port}/0"

    async def __aenter__(self) -> LostReplies:
        self._server = await asyncio.start_server(self._connected, HOST, 0)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    async def _connected(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(HOST, self.redis_port)
        # Per connection: once it sent the watched word, its replies are lost for good
        # (the client drops a connection that timed out, so no later command is confused).
        losing = asyncio.Event()
        for task in (
            self._pump(reader, upstream_writer, losing, watch=True),
            self._pump(upstream_reader, writer, losing, watch=False),
        ):
            running = asyncio.create_task(task)
            self._tasks.add(running)
            running.add_done_callback(self._tasks.discard)

    async def _pump(
        self,
        source: asyncio.StreamReader,
        sink: asyncio.StreamWriter,
        losing: asyncio.Event,
        *,
        watch: bool,
    ) -> None:
        try:
            while chunk := await source.read(65536):
                if watch and self.lose_after is not None and self.lose_after in chunk:
                    self.sent_with_word += 1
                    if self.sent_with_word >= self.lose_from:
                        losing.set()
                if not watch and losing.is_set():
                    self.lost += 1
                    continue
                sink.write(chunk)
                await sink.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            with contextlib.suppress(Exception):
                sink.close()
