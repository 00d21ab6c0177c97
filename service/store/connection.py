"""The store's Redis client: commands packed in C, Lua scripts run, outages as one error."""

from __future__ import annotations

import contextlib
import functools
import re
from collections.abc import Awaitable, Callable, Iterator, Sequence
from importlib import resources
from typing import Any, Literal, ParamSpec, TypeVar, cast

import hiredis
import redis.asyncio as redis
from redis.asyncio.cluster import RedisCluster
from redis.backoff import ExponentialWithJitterBackoff
from redis.commands.core import AsyncScript
from redis.exceptions import (
    BusyLoadingError,
    ClusterDownError,
    ClusterError,
    DataError,
    MasterDownError,
    NoScriptError,
    OutOfMemoryError,
    ReadOnlyError,
    ResponseError,
    SlotNotCoveredError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

P = ParamSpec("P")
T = TypeVar("T")

# What "Redis is down or not answering" looks like from redis-py.
REDIS_DOWN = (RedisConnectionError, RedisTimeoutError, OSError)


# A client of one Redis or of a Redis Cluster (settings.redis_cluster): the store uses only
# what both offer, and keeps every multi-key command and script in one slot.
Client = redis.Redis | RedisCluster

# On a cluster, how often a command is retried after a connection error or CLUSTERDOWN
# (re-reading the topology between tries), and the longest wait between tries: short
# enough that a client gets its 503 and resends within a failover, not after it.
_CLUSTER_RETRIES = 3
_CLUSTER_BACKOFF_CAP_S = 0.5

# A script run: the script, its keys, its arguments.
ScriptCall = tuple[AsyncScript, list[str], list[Any]]


# Why Redis could not serve a command. "unavailable": it could not be reached, did not
# answer in time, or is still loading its data; the others are states of a running server
# that refuse (mostly) writes until they pass or an operator acts: not bugs of ours.
Cause = Literal[
    "unavailable",
    "out_of_memory",
    "read_only",
    "master_down",
    "busy",
    "persistence_failed",
    "no_replicas",
    "cluster_down",
    "resharding",
]

# What each cause means, for logs and error messages.
CAUSES: dict[Cause, str] = {
    "unavailable": "redis is not reachable or did not answer in time",
    "out_of_memory": "redis is out of memory (maxmemory reached, nothing it may evict) and "
    "refuses writes",
    "read_only": "redis is a read-only replica (e.g. after a failover) and refuses writes",
    "master_down": "redis is a replica that lost its master and serves no stale data",
    "busy": "redis is busy running a script or function",
    "persistence_failed": "redis refuses writes because it cannot persist (MISCONF)",
    "no_replicas": "redis refuses writes: too few replicas acknowledge them "
    "(min-replicas-to-write)",
    "cluster_down": "the redis cluster cannot serve this slot",
    "resharding": "the redis cluster is moving this slot (TRYAGAIN)",
}

# The error codes of Redis replies that are server states, and what they mean.
_STATE_CODES: dict[str, Cause] = {
    "OOM": "out_of_memory",
    "READONLY": "read_only",
    "MASTERDOWN": "master_down",
    "BUSY": "busy",
    "MISCONF": "persistence_failed",
    "NOREPLICAS": "no_replicas",
    "CLUSTERDOWN": "cluster_down",
    "TRYAGAIN": "resharding",
}
# redis-py parses some codes into classes (most specific first: MASTERDOWN is a CLUSTERDOWN).
_STATE_CLASSES: tuple[tuple[type[ResponseError], Cause], ...] = (
    (OutOfMemoryError, "out_of_memory"),
    (ReadOnlyError, "read_only"),
    (MasterDownError, "master_down"),
    (ClusterDownError, "cluster_down"),
    (TryAgainError, "resharding"),
)
# Other codes stay at the start of the message; inside a script, Redis 6 wraps the reply of
# the refused command as "Error running script ...: -OOM command not allowed ...".
_STATE_IN_REPLY = re.compile(rf"(?:^|\s-)({'|'.join(_STATE_CODES)})\b")
# A pipeline prefixes the reply with the failed command and its arguments (client data),
# so only the text after this marker is Redis's own.
_PIPELINE_MARKER = "of pipeline caused error: "


class StoreUnavailable(RuntimeError):
    """Redis could not serve a command: unreachable, too slow, or in a state that refuses it."""

    def __init__(self, message: str, cause: Cause = "unavailable") -> None:
        super().__init__(message)
        self.cause: Cause = cause


def server_state(error: ResponseError) -> Cause | None:
    """Return the server state a Redis error reply names, or None for any other error.

    WRONGTYPE, wrong arguments and failing scripts are bugs of ours and stay errors.
    """
    for error_class, cause in _STATE_CLASSES:
        if isinstance(error, error_class):
            return cause
    reply = str(error.args[0]) if error.args else ""
    reply = reply.rpartition(_PIPELINE_MARKER)[2].lstrip("('\"")
    found = _STATE_IN_REPLY.search(reply)
    return _STATE_CODES[found.group(1)] if found else None


@contextlib.contextmanager
def redis_errors_as_unavailable() -> Iterator[None]:
    """Turn outages and server states raised inside into StoreUnavailable naming the cause."""
    try:
        yield
    except BusyLoadingError as exc:
        # A ConnectionError to redis-py: the server answers but is still loading its data.
        raise StoreUnavailable(f"redis is loading its data: {exc}") from exc
    except REDIS_DOWN as exc:
        raise StoreUnavailable(f"redis unavailable: {exc}") from exc
    except ResponseError as exc:
        cause = server_state(exc)
        if cause is None:
            raise
        raise StoreUnavailable(f"{CAUSES[cause]}: {exc}", cause) from exc
    except (SlotNotCoveredError, ClusterError) as exc:
        # A cluster mid-failover: no node serves the slot yet, or redirections ran out.
        raise StoreUnavailable(f"{CAUSES['cluster_down']}: {exc}", "cluster_down") from exc


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


def connect(url: str, timeout_s: float, *, cluster: bool = False) -> Client:
    """Return a client of the Redis (or, with `cluster`, the Redis Cluster) at `url`.

    Commands are packed in C. A cluster client learns the topology from the node `url`
    names and follows it (MOVED, failovers) by itself.
    """
    if cluster:
        cluster_client = RedisCluster.from_url(
            url,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            health_check_interval=30,
            retry=Retry(
                ExponentialWithJitterBackoff(base=0.05, cap=_CLUSTER_BACKOFF_CAP_S),
                _CLUSTER_RETRIES,
            ),
        )
        # Nodes found from the first one are built with these arguments.
        cluster_client.connection_kwargs["connection_class"] = _packing_in_c(redis.Connection)
        return cluster_client
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


def register_script(client: Client, name: str) -> AsyncScript:
    """Return scripts/NAME.lua registered on the client (its file is read once per process)."""
    # AsyncScript runs on either client: it only needs evalsha and script_load.
    return AsyncScript(client, _script_source(name))  # type: ignore[arg-type]


def replied(command: Awaitable[T] | T) -> Awaitable[T]:
    """Return a command of the asyncio client as the awaitable it is.

    redis-py's stubs type each command for its sync and asyncio clients at once.
    """
    return cast(Awaitable[T], command)


async def run_scripts(
    client: Client,
    calls: Sequence[ScriptCall],
    commands: Sequence[tuple[Any, ...]] = (),
    *,
    wait_replicas: int = 0,
    wait_ms: int = 0,
) -> list[Any]:
    """Run scripts by EVALSHA, then idempotent commands, in one round trip; return results.

    On a cluster the round trip is one pipeline per node, sent concurrently. With
    `wait_replicas`, each node's pipeline ends with WAIT, and StoreUnavailable is raised
    unless that many replicas of every node hold the writes within `wait_ms` (they stay
    written: a resend finds them, and one failover can no longer lose what was answered).
    """
    wait = (wait_replicas, wait_ms) if wait_replicas > 0 else None
    results = await _pipelined(client, calls, commands, wait)
    # Redis lost its script cache (a restart, a failover), or another worker is loading
    # the scripts into it: run again only the scripts that did not run. A script that did
    # run must keep its result, which says which events were new: run twice, it would
    # call them replays.
    missing = [
        n for n, result in enumerate(results[: len(calls)]) if isinstance(result, NoScriptError)
    ]
    if missing:
        for script in {id(calls[n][0]): calls[n][0] for n in missing}.values():
            await replied(client.script_load(script.script))
        again = await _pipelined(client, [calls[n] for n in missing], (), wait)
        for n, result in zip(missing, again, strict=True):
            results[n] = result
    for result in results:
        if isinstance(result, Exception):
            raise result
    return results[: len(calls) + len(commands)]


async def _pipelined(
    client: Client,
    calls: Sequence[ScriptCall],
    commands: Sequence[tuple[Any, ...]],
    wait: tuple[int, int] | None,
) -> list[Any]:
    """Return each command's reply, or the error it got, in one round trip (then WAIT's)."""
    async with client.pipeline(transaction=False) as pipe:
        for script, keys, args in calls:
            # As a raw command: redis-py refuses pipe.evalsha on a cluster pipeline, yet
            # routes EVALSHA by its keys (all in one slot here) like any keyed command.
            pipe.execute_command("EVALSHA", script.sha, len(keys), *keys, *args)
        for command in commands:
            pipe.execute_command(*command)
        n_waits = 0
        if wait is not None:
            replicas, timeout_ms = wait
            if isinstance(client, RedisCluster):
                first_keys = [keys[0] for _, keys, _ in calls] + [c[1] for c in commands]
                nodes = {}
                for key in first_keys:
                    node = client.get_node_from_key(key)
                    if node is not None:
                        nodes[node.name] = node
                for node in nodes.values():
                    pipe.execute_command("WAIT", replicas, timeout_ms, target_nodes=node)
                    n_waits += 1
            else:
                pipe.execute_command("WAIT", replicas, timeout_ms)
                n_waits = 1
        results = list(await pipe.execute(raise_on_error=False))
    if wait is not None:
        acked = results[len(results) - n_waits :]
        short = [a for a in acked if isinstance(a, Exception) or int(a) < wait[0]]
        if short and not any(isinstance(r, Exception) for r in results[: -n_waits or None]):
            raise StoreUnavailable(
                f"{CAUSES['no_replicas']}: only {short[0]} of {wait[0]} replicas acknowledged "
                f"the writes within {wait[1]} ms (they stay written; resend)",
                "no_replicas",
            )
        results = results[: len(results) - n_waits]
    return results


def unavailable_on_redis_errors(
    method: Callable[P, Awaitable[T]],
) -> Callable[P, Awaitable[T]]:
    """Return the coroutine function raising StoreUnavailable where Redis cannot serve it."""

    @functools.wraps(method)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        with redis_errors_as_unavailable():
            return await method(*args, **kwargs)

    return wrapper


async def memory(client: Client) -> tuple[int, int]:
    """Return (used_memory, maxmemory) in bytes of the Redis, or of a cluster's fullest master."""
    if isinstance(client, redis.Redis):
        info = await replied(client.info("memory"))
        return int(info["used_memory"]), int(info.get("maxmemory", 0))
    per_node: dict[str, dict[str, Any]] = await client.info(
        "memory", target_nodes=RedisCluster.PRIMARIES
    )
    fullest = max(
        per_node.values(),
        key=lambda i: int(i["used_memory"]) / (int(i.get("maxmemory", 0)) or 1 << 62),
    )
    return int(fullest["used_memory"]), int(fullest.get("maxmemory", 0))


async def flush_all(client: Client) -> None:
    """Delete every key of the database, on every master of a cluster."""
    if isinstance(client, redis.Redis):
        await client.flushdb()
    else:
        await client.flushdb(target_nodes=RedisCluster.PRIMARIES)
