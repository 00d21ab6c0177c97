"""The `banditrec` command: `serve` runs the API (with an embedded Redis if needed);
`simulate` and `evaluate` prove that it learns (see docs/evaluation.md)."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

import uvicorn

from evaluation.cli import add_commands as add_evaluation_commands
from service.embedded import EmbeddedRedis, EmbeddedRedisError

if TYPE_CHECKING:
    from service.config import Settings

# A BLAS thread pool per worker fights the event loop and the other workers for cores (a
# 10k-item matvec took 8 ms instead of 0.25 ms on a busy 2-core box). OpenBLAS reads these
# when numpy loads, so serve() sets them before importing anything that imports numpy.
_SINGLE_THREADED_BLAS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")

log = logging.getLogger("banditrec")


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
                "service.main:create_app",
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


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line and run the chosen command."""
    parser = argparse.ArgumentParser(prog="banditrec", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve_cmd = commands.add_parser("serve", help="run the HTTP API")
    serve_cmd.add_argument("--host", help="bind address (default BANDITREC_HOST or 127.0.0.1)")
    serve_cmd.add_argument("--port", type=int, help="port (default BANDITREC_PORT or 8000)")
    serve_cmd.add_argument("--workers", type=int, help="worker processes (default 1)")
    serve_cmd.set_defaults(run=serve)
    add_evaluation_commands(commands)
    args = parser.parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
