"""The service's subcommands of `banditrec`: `serve` runs the API (with an embedded Redis if
needed); `export` and `import` back up, move or seed its state (see docs/state-format.md)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.metadata
import logging
import os
import signal
import sys
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO, TypeVar

import uvicorn

from service.embedded import EmbeddedRedis, EmbeddedRedisError, answers_ping

if TYPE_CHECKING:
    from service.config import Settings
    from service.state import StateDocument

# A BLAS thread pool per worker fights the event loop and the other workers for cores (a
# 10k-item matvec took 8 ms instead of 0.25 ms on a busy 2-core box). OpenBLAS reads these
# when numpy loads, so serve() sets them before importing anything that imports numpy.
_SINGLE_THREADED_BLAS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")

log = logging.getLogger("banditrec")

T = TypeVar("T")


@contextlib.contextmanager
def redis_for(settings: Settings) -> Iterator[str]:
    """Yield the Redis URL to use: the configured one, or a started embedded server."""
    if settings.redis_url:
        yield settings.redis_url
        return
    server = EmbeddedRedis(settings.data_dir, settings.redis_appendfsync).start()
    log.info("embedded redis on %s, data in %s", server.url, server.data_dir)
    try:
        yield server.url
    finally:
        server.stop()
        log.info("embedded redis stopped")


@contextlib.contextmanager
def redis_for_command(settings: Settings) -> Iterator[str]:
    """Yield a Redis URL for a one-off command: configured, a running serve's, or a new one."""
    socket_path = EmbeddedRedis(settings.data_dir).socket_path
    if not settings.redis_url and answers_ping(socket_path):
        # A running serve holds the folder's lock: share its server instead.
        yield f"unix://{socket_path}"
        return
    with redis_for(settings) as url:
        yield url


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(0)


def serve(args: argparse.Namespace) -> int:
    """Run uvicorn until interrupted; return the exit code."""
    for variable in _SINGLE_THREADED_BLAS:
        os.environ.setdefault(variable, "1")
    from service.config import Settings

    settings = Settings()
    host = args.host or settings.host
    port = args.port or settings.port
    workers = args.workers or settings.workers
    logging.basicConfig(level=settings.log_level.upper(), format="%(levelname)s: %(message)s")
    # uvicorn shuts down gracefully on SIGTERM, then re-raises the signal; turning it into
    # SystemExit lets the embedded Redis below be stopped cleanly instead of orphaned.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        with redis_for(settings) as url:
            # Workers are separate processes that build their settings from the environment.
            os.environ["BANDITREC_REDIS_URL"] = url
            uvicorn.run(
                # Workers end with this process, even when it is SIGKILLed.
                "service.lifetime:create_worker_app",
                factory=True,
                host=host,
                port=port,
                workers=workers,
                log_level=settings.log_level,
                loop="uvloop",
                http="httptools",
            )
    except EmbeddedRedisError as exc:
        print(f"banditrec: {exc}", file=sys.stderr)
        return 1
    return 0


# An import plans its counters from the store's; a concurrent write means planning again.
_IMPORT_ATTEMPTS = 3
_SECTION_NAMES = {"retired": "retired items", "dedupe": "dedupe markers"}


def export_state(args: argparse.Namespace) -> int:
    """Write the store's state as one JSON document; return the exit code."""
    from service.config import Settings
    from service.store import StateChanged, StoreUnavailable

    settings = Settings()
    try:
        with redis_for_command(settings) as url, _output(args.output) as out:
            summary = asyncio.run(export_document(url, settings, out, users=args.users))
    except (EmbeddedRedisError, StoreUnavailable, StateChanged) as exc:
        print(f"banditrec export: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # The reader went away (`banditrec export | head`): not an error of ours. Point
        # stdout at devnull so the interpreter's final flush does not raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    print(f"banditrec export: {summary} of prefix {settings.key_prefix!r}", file=sys.stderr)
    return 0


@contextlib.contextmanager
def _output(path: str | None) -> Iterator[TextIO]:
    """Yield stdout, or a file that appears under `path` only once it is complete."""
    if path is None or path == "-":
        yield sys.stdout
        sys.stdout.flush()
        return
    partial = Path(f"{path}.partial")
    try:
        with partial.open("w", encoding="utf-8") as out:
            yield out
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)


async def export_document(url: str, settings: Settings, out: TextIO, *, users: bool) -> str:
    """Stream the state under settings.key_prefix to `out`; return a summary of what it holds."""
    from service import state
    from service.store import Store

    store = Store(url, settings.key_prefix, settings.redis_timeout_s)
    try:
        snapshot = await store.read_state()
        out.write(state.open_document(snapshot, state.settings_fields(settings), _version()))
        markers = store.dedupe_markers(snapshot.at_ms, settings.dedupe_retention_s)
        sections: list[tuple[str, AsyncIterable[list[str]]]] = [
            ("items", _once(state.item_entries(snapshot))),
            ("retired", _once(state.retired_entries(snapshot))),
            ("arms", _once(state.arm_entries(snapshot))),
            ("dedupe", _rendered(markers, state.dedupe_entries)),
        ]
        if users:
            sections.append(("users", _rendered(store.stored_users(), state.user_entries)))
        counts = []
        for n, (name, entries) in enumerate(sections):
            out.write(",\n" if n else "")
            n_entries = await _write_array(out, name, entries)
            counts.append(f"{n_entries} {_SECTION_NAMES.get(name, name)}")
        out.write("\n}\n")
    finally:
        await store.close()
    return ", ".join(counts)


async def _once(entries: list[str]) -> AsyncIterator[list[str]]:
    yield entries


async def _rendered(
    batches: AsyncIterable[list[T]], render: Callable[[list[T]], list[str]]
) -> AsyncIterator[list[str]]:
    async for batch in batches:
        yield render(batch)


async def _write_array(out: TextIO, name: str, batches: AsyncIterable[list[str]]) -> int:
    """Write `"name": [...]` one entry per line; return how many entries it has."""
    out.write(f'"{name}": [')
    n = 0
    async for batch in batches:
        for entry in batch:
            out.write(("\n" if n == 0 else ",\n") + entry)
            n += 1
    out.write("\n]" if n else "]")
    return n


def _version() -> str:
    try:
        return importlib.metadata.version("banditrec")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def import_state(args: argparse.Namespace) -> int:
    """Validate a state file, then write it in one transaction; return the exit code."""
    from service import state
    from service.config import Settings

    settings = Settings()
    source = "stdin" if args.file == "-" else args.file
    try:
        text = sys.stdin.buffer.read() if args.file == "-" else Path(args.file).read_bytes()
    except OSError as exc:
        print(f"banditrec import: cannot read {source}: {exc.strerror}", file=sys.stderr)
        return 2
    try:
        document = state.parse_document(text)
    except state.InvalidState as exc:
        print(
            f"banditrec import: {source} is not a valid state file; nothing was written:",
            file=sys.stderr,
        )
        for path, message in exc.errors:
            print(f"  {path}: {message}" if path else f"  {message}", file=sys.stderr)
        return 2
    for note in state.settings_differences(document, settings):
        print(f"banditrec import: note: {note}", file=sys.stderr)
    try:
        with redis_for_command(settings) as url:
            return asyncio.run(import_document(url, settings, document, replace=args.replace))
    except EmbeddedRedisError as exc:
        print(f"banditrec import: {exc}", file=sys.stderr)
        return 1


async def import_document(
    url: str, settings: Settings, document: StateDocument, *, replace: bool
) -> int:
    """Write a validated document under settings.key_prefix; return the exit code."""
    from service import state
    from service.store import StateChanged, StateNotEmpty, Store, StoreUnavailable

    prefix = settings.key_prefix
    store = Store(url, prefix, settings.redis_timeout_s)
    try:
        for _ in range(_IMPORT_ATTEMPTS):
            current = await store.versions()
            plan = state.plan_import(document, current)
            with contextlib.suppress(StateChanged):
                await store.write_state(plan, current.clusters, replace=replace)
                print(
                    f"banditrec import: imported {state.describe(document)} into prefix {prefix!r}"
                )
                return 0
        print(
            "banditrec import: the store kept changing while importing (is the service still "
            "taking writes?); nothing was written",
            file=sys.stderr,
        )
    except StateNotEmpty as exc:
        print(
            f"banditrec import: {exc} under prefix {prefix!r}; nothing was written. "
            "--replace deletes every key under the prefix, then imports",
            file=sys.stderr,
        )
    except StoreUnavailable as exc:
        print(f"banditrec import: {exc}; nothing was written", file=sys.stderr)
    finally:
        await store.close()
    return 1


def add_commands(commands: Any) -> None:
    """Add the serve, export and import subparsers to ``commands`` (an argparse subparsers)."""
    serve_cmd = commands.add_parser("serve", help="run the HTTP API")
    serve_cmd.add_argument("--host", help="bind address (default BANDITREC_HOST or 127.0.0.1)")
    serve_cmd.add_argument("--port", type=int, help="port (default BANDITREC_PORT or 8000)")
    serve_cmd.add_argument("--workers", type=int, help="worker processes (default 1)")
    serve_cmd.set_defaults(run=serve)
    export_cmd = commands.add_parser(
        "export", help="write items, clusters, counts and dedupe markers as one JSON document"
    )
    export_cmd.add_argument("--users", action="store_true", help="also write every user's state")
    export_cmd.add_argument("-o", "--output", help="file to write (default: stdout)")
    export_cmd.set_defaults(run=export_state)
    import_cmd = commands.add_parser(
        "import", help="load a state file into an empty store (or replace the store's state)"
    )
    import_cmd.add_argument("file", help="the file written by export, or - for stdin")
    import_cmd.add_argument(
        "--replace", action="store_true", help="first delete every key under the key prefix"
    )
    import_cmd.set_defaults(run=import_state)
