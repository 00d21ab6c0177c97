"""What a one-off command runs against: its settings and its Redis (configured or embedded)."""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

from service.embedded import EmbeddedRedis, answers_ping

if TYPE_CHECKING:
    from service.config import Settings

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


def store_description(settings: Settings) -> str:
    """Return which store a command uses: its Redis URL (password hidden) or data folder."""
    if settings.redis_url:
        parts = urlsplit(settings.redis_url)
        where = settings.redis_url
        if parts.password is not None:
            host = parts.netloc.rpartition("@")[2]
            where = urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))
    else:
        where = f"the embedded Redis of {settings.data_dir.resolve()}"
    return f"{where}, key prefix {settings.key_prefix!r}"


# How to point a command at the service's store instead of the one it found.
STORE_HINT = (
    "Run the command where `banditrec serve` runs, or set BANDITREC_DATA_DIR to its data "
    "folder (BANDITREC_REDIS_URL for a Redis of your own, BANDITREC_KEY_PREFIX for another "
    "prefix)"
)


def no_data_folder(settings: Settings) -> bool:
    """Return whether the command would start an embedded Redis in a folder that is not there."""
    return not settings.redis_url and not settings.data_dir.exists()


def command_settings(command: str) -> Settings | None:
    """Return the settings with this process's logging set up by them, or None after
    printing why they are invalid (the caller exits with 2)."""
    from service.config import load_settings
    from service.config_file import SettingsError
    from service.logs import configure_logging

    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"banditrec {command}: invalid settings: {exc}", file=sys.stderr)
        return None
    configure_logging(settings.log_level, settings.log_format)
    return settings
