"""The service's subcommands of `banditrec`: `serve` runs the API (with an embedded Redis if
needed); `export` and `import` back up, move or seed its state (service/backup.py);
`import-events` counts a platform's past events (see docs/import-events.md); `config` prints
the effective settings."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any

import uvicorn

from service.backup import export_state, import_state
from service.command_context import (
    STORE_HINT,
    command_settings,
    no_data_folder,
    redis_for,
    redis_for_command,
    store_description,
)
from service.embedded import EmbeddedRedisError

# A BLAS thread pool per worker fights the event loop and the other workers for cores (a
# 10k-item matvec took 8 ms instead of 0.25 ms on a busy 2-core box). OpenBLAS reads these
# when numpy loads, so serve() sets them before importing anything that imports numpy.
_SINGLE_THREADED_BLAS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")

log = logging.getLogger("banditrec")


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(0)


def serve(args: argparse.Namespace) -> int:
    """Run uvicorn until interrupted; return the exit code."""
    for variable in _SINGLE_THREADED_BLAS:
        os.environ.setdefault(variable, "1")
    from service.logs import logging_config

    settings = command_settings("serve")
    if settings is None:
        return 2
    host = args.host or settings.host
    port = args.port or settings.port
    workers = args.workers or settings.workers
    # uvicorn shuts down gracefully on SIGTERM, then re-raises the signal; turning it into
    # SystemExit lets the embedded Redis below be stopped cleanly instead of orphaned.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    from service.protocol import ErrorShapeHttpToolsProtocol

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
                # Every worker applies this config; RequestLog replaces the access log.
                log_config=logging_config(settings.log_level, settings.log_format),
                access_log=False,
                loop="uvloop",
                http=ErrorShapeHttpToolsProtocol,
            )
    except EmbeddedRedisError as exc:
        print(f"banditrec: {exc}", file=sys.stderr)
        return 1
    return 0


# An import plans its counters from the store's; a concurrent write means planning again.


def show_config(args: argparse.Namespace) -> int:
    """Print the effective settings as TOML with where each comes from; return the exit code."""
    from service.config import load_settings
    from service.config_file import SettingsError, render_toml

    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"banditrec config: invalid settings: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write(render_toml(settings))
    return 0


def import_events(args: argparse.Namespace) -> int:
    """Check an event file, then count its events once each; return the exit code."""
    from service.events_file import BadFile, detect_format
    from service.events_import import import_events as run_import

    settings = command_settings("import-events")
    if settings is None:
        return 2
    path = Path(args.path)
    if not path.is_file():
        print(f"banditrec import-events: {path} is not a readable file", file=sys.stderr)
        return 2
    if no_data_folder(settings):
        print(
            f"banditrec import-events: nothing was written: {settings.data_dir.resolve()} does "
            f"not exist ({store_description(settings)}), so there is no catalog to import "
            f"into. {STORE_HINT}",
            file=sys.stderr,
        )
        return 1
    try:
        file_format = detect_format(path) if args.format == "auto" else args.format
    except (OSError, BadFile) as exc:
        print(f"banditrec import-events: cannot read {path}: {exc}", file=sys.stderr)
        return 2
    print(f"banditrec import-events: writing to {store_description(settings)}", file=sys.stderr)
    try:
        with redis_for_command(settings) as url:
            return asyncio.run(
                run_import(
                    url,
                    settings,
                    path,
                    file_format,
                    skip_bad=args.skip_bad,
                    out=sys.stdout,
                    err=sys.stderr,
                )
            )
    except EmbeddedRedisError as exc:
        print(f"banditrec import-events: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(
            "banditrec import-events: interrupted; rerun to finish (events already counted "
            "are then duplicates)",
            file=sys.stderr,
        )
        return 130


_SETTINGS_NOTE = (
    "Settings come from BANDITREC_* environment variables, as for serve (docs/configuration.md)."
)
_STORE_NOTE = (
    "The store: BANDITREC_REDIS_URL if set, else the embedded Redis of BANDITREC_DATA_DIR "
    "(default ./data; a running serve's, else one started for the command), under "
    "BANDITREC_KEY_PREFIX (default br)."
)


def add_commands(commands: Any) -> None:
    """Add serve, export, import, import-events and config to ``commands`` (argparse's)."""
    serve_cmd = commands.add_parser(
        "serve", help="run the HTTP API", description=f"Run the HTTP API. {_SETTINGS_NOTE}"
    )
    serve_cmd.add_argument("--host", help="bind address (default: BANDITREC_HOST, else 127.0.0.1)")
    serve_cmd.add_argument("--port", type=int, help="port (default: BANDITREC_PORT, else 8000)")
    serve_cmd.add_argument(
        "--workers", type=int, help="worker processes (default: BANDITREC_WORKERS, else 1)"
    )
    serve_cmd.set_defaults(run=serve)
    export_cmd = commands.add_parser(
        "export",
        help="write items, clusters, counts and dedupe markers as one JSON document",
        description="Write the store's state as one JSON document (docs/state-format.md). "
        f"{_STORE_NOTE} An empty store is refused (exit 1) unless --allow-empty.",
    )
    export_cmd.add_argument(
        "--users", action="store_true", help="also write every user's state (default: off)"
    )
    export_cmd.add_argument("-o", "--output", help="file to write (default: stdout)")
    export_cmd.add_argument(
        "--allow-empty",
        action="store_true",
        help="export a store without items, counts or clustering (default: refuse it)",
    )
    export_cmd.set_defaults(run=export_state)
    import_cmd = commands.add_parser(
        "import",
        help="load a state file into an empty store (or replace the store's state)",
        description=f"Load a file written by export. {_STORE_NOTE}",
    )
    import_cmd.add_argument("file", help="the file written by export, or - for stdin")
    import_cmd.add_argument(
        "--replace",
        action="store_true",
        help="first delete every key under the key prefix (default: refuse a store with state)",
    )
    import_cmd.set_defaults(run=import_state)
    config_cmd = commands.add_parser(
        "config",
        help="print the effective settings (environment over BANDITREC_CONFIG's file over "
        "defaults) as TOML, secrets masked",
    )
    config_cmd.set_defaults(run=show_config)
    events_cmd = commands.add_parser(
        "import-events",
        help="count a platform's past impressions, clicks and conversions once each",
        description="Count past events (NDJSON or CSV: event_id, type, user_id, item_id, ts, "
        "optional rec_id) once each, as live feedback would, into a store that a service may "
        f"be using (docs/import-events.md). {_STORE_NOTE}",
    )
    events_cmd.add_argument("path", help="the event file (.gz is read compressed)")
    events_cmd.add_argument(
        "--format",
        choices=("auto", "ndjson", "csv"),
        default="auto",
        help="the file's format (default: auto, by suffix .csv/.ndjson/.jsonl, else by content)",
    )
    events_cmd.add_argument(
        "--skip-bad",
        action="store_true",
        help="import the valid lines and list the bad ones (default: refuse a file with a bad "
        "line, before writing anything)",
    )
    events_cmd.set_defaults(run=import_events)
