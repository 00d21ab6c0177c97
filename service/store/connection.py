"""The store's Redis client: commands packed in C, Lua scripts run, outages as one error."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Sequence
from importlib import resources
from typing import Any, ParamSpec, TypeVar, cast

import hiredis
import redis.asyncio as redis
from redis.commands.core import AsyncScript
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import DataError, NoScriptError
from redis.exceptions import TimeoutError as RedisTimeoutError

P = ParamSpec("P")
T = TypeVar("T")

# What "Redis is down or not answering" looks like from redis-py.
REDIS_DOWN = (RedisConnectionError, RedisTimeoutError, OSError)


# A script run: the script, its keys, its arguments.
ScriptCall = tuple[AsyncScript, list[str], list[Any]]


class StoreUnavailable(RuntimeError):
    """Redis could not be reached or did not answer in time."""


def hiredis_pack_command(self: Any, *args: Any) -> list[bytes]:
    """Return one command packed like redis-py's asyncio packer does, but in C (hiredis)."""
    if isinstance(args[0], str):
        args = (*args[0].encode().split(), *args[1:])
    elif b" " in args[0]:
        args = (*args[0].split(), *args[1:])
    try:
        return [hiredis.pack_command(args)]
    except TypeError as exc:
        raise DataError(str(exc)) from exc


def _packing_in_c(connection_class: type) -> type:
    """Return the connection class with hiredis packing (redis-py's asyncio side lacks it).

    A feedback batch is a few EVALSHAs with thousands of arguments; packing them in
    Python was ~80% of the service's CPU per event. The bytes are the same.
    """
    name = f"CPacked{connection_class.__name__}"
    return type(name, (connection_class,), {"pack_command": hiredis_pack_command})


def connect(url: str, timeout_s: float) -> redis.Redis:
    """Return a client of the Redis at `url` that packs its commands in C."""
    client = redis.Redis.from_url(
        url,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        health_check_interval=30,
    )
    pool = client.connection_pool
    pool.connection_class = _packing_in_c(pool.connection_class)
    return client


@functools.cache
def _script_source(name: str) -> str:
    return (resources.files(__package__) / "scripts" / f"{name}.lua").read_text(encoding="utf-8")


def register_script(client: redis.Redis, name: str) -> AsyncScript:
    """Return scripts/NAME.lua registered on the client (its file is read once per process)."""
    return client.register_script(_script_source(name))


def replied(command: Awaitable[T] | T) -> Awaitable[T]:
    """Return a command of the asyncio client as the awaitable it is.

    redis-py's stubs type each command for its sync and asyncio clients at once.
    """
    return cast(Awaitable[T], command)


async def run_scripts(
    client: redis.Redis, calls: Sequence[ScriptCall], commands: Sequence[tuple[Any, ...]] = ()
) -> list[Any]:
    """Run scripts by EVALSHA, then idempotent commands, in one round trip; return results."""
    results = await _pipelined(client, calls, commands)
    # Redis lost its script cache (a restart), or another worker is loading the scripts
    # into it: run again only the scripts that did not run. A script that did run must keep
    # its result, which says which events were new: run twice, it would call them replays.
    missing = [
        n for n, result in enumerate(results[: len(calls)]) if isinstance(result, NoScriptError)
    ]
    if missing:
        for script in {id(calls[n][0]): calls[n][0] for n in missing}.values():
            await replied(client.script_load(script.script))
        again = await _pipelined(client, [calls[n] for n in missing])
        for n, result in zip(missing, again, strict=True):
            results[n] = result
    for result in results:
        if isinstance(result, Exception):
            raise result
    return results


async def _pipelined(
    client: redis.Redis, calls: Sequence[ScriptCall], commands: Sequence[tuple[Any, ...]] = ()
) -> list[Any]:
    """Return each command's reply, or the error it got, in one round trip."""
    async with client.pipeline(transaction=False) as pipe:
        for script, keys, args in calls:
            pipe.evalsha(script.sha, len(keys), *keys, *args)
        for command in commands:
            pipe.execute_command(*command)
        return list(await pipe.execute(raise_on_error=False))


def unavailable_on_redis_errors(
    method: Callable[P, Awaitable[T]],
) -> Callable[P, Awaitable[T]]:
    """Return the coroutine function raising StoreUnavailable where Redis is down."""

    @functools.wraps(method)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return await method(*args, **kwargs)
        except REDIS_DOWN as exc:
            raise StoreUnavailable(f"redis unavailable: {exc}") from exc

    return wrapper
