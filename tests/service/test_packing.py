"""The store packs commands in C (hiredis) and must send the very bytes redis-py would."""

from __future__ import annotations

import pytest
from redis.asyncio.connection import Connection
from redis.exceptions import DataError

from service.store import Store
from service.store.connection import hiredis_pack_command

COMMANDS = [
    ("EVALSHA", "0" * 40, 3, "br:{arms}:version", "k2", "k3", 604800, "1795000000.123456", 0.1),
    ("HSET", "br:{items}:emb", "i1", b"\x00\x01 \xff\r\n"),
    ("CONFIG GET", "maxmemory"),
    (b"CONFIG GET", b"appendfsync"),
    ("SET", "k", 1 / 3, "EX", 10),
    ("XADD", "s", "MINID", "~", "1795000000000-0", "*", "v", 7, "d", "a|b\nc|d"),
    ("HINCRBYFLOAT", "h", "item:with:colons@x", -1.5e-7),
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: str(c[0]))
def test_the_c_packer_sends_the_same_bytes_as_redis_py(command) -> None:
    expected = b"".join(Connection().pack_command(*command))
    assert b"".join(hiredis_pack_command(None, *command)) == expected


def test_unpackable_arguments_raise_redis_py_s_data_error() -> None:
    with pytest.raises(DataError):
        hiredis_pack_command(None, "SET", "k", object())


def test_the_store_uses_the_c_packer_for_tcp_and_unix_urls() -> None:
    for url in ("redis://localhost:6379/0", "unix:///tmp/redis.sock"):
        pool = Store(url)._redis.connection_pool
        assert pool.connection_class.pack_command is hiredis_pack_command, url
