"""The embedded redis-server: persistence, one process per folder, long paths."""

from __future__ import annotations

import socket

import pytest

from service.embedded import EmbeddedRedis, EmbeddedRedisError


def _command(server: EmbeddedRedis, *words: str) -> bytes:
    payload = f"*{len(words)}\r\n" + "".join(f"${len(w)}\r\n{w}\r\n" for w in words)
    with socket.socket(socket.AF_UNIX) as sock:
        sock.connect(str(server.socket_path))
        sock.sendall(payload.encode())
        return sock.recv(1024)


def test_data_survives_a_restart_in_the_aof(tmp_path):
    with EmbeddedRedis(tmp_path, appendfsync="always") as server:
        assert _command(server, "SET", "k", "v") == b"+OK\r\n"
        assert _command(server, "CONFIG", "GET", "appendonly").endswith(b"yes\r\n")
    assert (tmp_path / "banditrec.aof").stat().st_size > 0
    with EmbeddedRedis(tmp_path) as server:
        assert _command(server, "GET", "k") == b"$1\r\nv\r\n"


def test_a_data_folder_serves_one_process_at_a_time(tmp_path):
    with EmbeddedRedis(tmp_path), pytest.raises(EmbeddedRedisError, match="in use"):
        EmbeddedRedis(tmp_path).start()
    # Released on stop.
    with EmbeddedRedis(tmp_path) as server:
        assert server.running


def test_a_long_data_path_falls_back_to_a_short_socket_path(tmp_path):
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    with EmbeddedRedis(deep) as server:
        assert len(str(server.socket_path)) <= 100
        assert _command(server, "PING") == b"+PONG\r\n"
    assert not server.running
