"""The broker's connection pool is large enough for a threads pool, or the worker says so.

redis-py 8 caps a connection pool at 100 connections unless told otherwise;
a threads-pool worker holds one per thread. The e2e side (120 threads, no
"Too many connections") is in tests/e2e/test_worker_faults.py.
"""

from __future__ import annotations

from typing import Any

import redis

from django_taskq.broker.connection import MAX_CONNECTIONS, get_broker
from django_taskq.worker.main import THREADS_SPARE_CONNECTIONS, pool_too_small
from tests.topology import TOPOLOGY


def test_a_capped_pool_smaller_than_the_threads_is_named() -> None:
    client = redis.Redis(connection_pool=redis.ConnectionPool(max_connections=20))
    warning = pool_too_small(client, 50)
    assert warning is not None
    assert "allows 20 connections" in warning and "-c 50" in warning
    assert "TASKQ_BROKER_CONNECTION_OPTIONS" in warning and "CONNECTION_POOL_KWARGS" in warning
    assert pool_too_small(client, 20 - THREADS_SPARE_CONNECTIONS) is None


def test_django_taskqs_own_client_is_not_capped_at_redis_pys_default() -> None:
    broker = get_broker()
    if TOPOLOGY != "cluster":  # a cluster client has a pool per node, set the same way
        assert broker.connection_pool.max_connections == MAX_CONNECTIONS
    assert pool_too_small(broker, 1000) is None


def test_fill_pool_opens_the_connections_at_once_and_keeps_them(redis_server: Any) -> None:
    from django_taskq.broker.connection import fill_pool

    url = redis_server.url
    client = redis.Redis.from_url(url)
    assert fill_pool(client, 15) == 15
    idle = client.connection_pool._available_connections  # type: ignore[attr-defined]
    assert len(idle) == 15 and all(c._sock is not None for c in idle)
    capped = redis.Redis.from_url(url, max_connections=5)
    assert fill_pool(capped, 15) == 5  # a cap is a cap: no error, the consumers make do
    client.close()
    capped.close()
