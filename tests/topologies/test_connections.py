"""Connections on Sentinel and Cluster: deadlines, the connection counter, passwords, cache alias.

Against the session's real set-ups, sick servers (tests/sick.py) and
unreachable ports; all on 127.0.0.1.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import override_settings

from django_taskq import AsyncResult
from django_taskq.broker import connection, keys
from django_taskq.broker.connection import connects, get_broker, new_client
from django_taskq.broker.deadline import DeadlineMixin
from django_taskq.exceptions import BrokerUnavailable
from django_taskq.testing import free_port
from django_taskq.testing_topologies import SentinelServers
from tests.sick import SilentServer
from tests.testapp.tasks import add
from tests.topology import drop_client_connections


@pytest.fixture
def silent() -> Iterator[SilentServer]:
    server = SilentServer()
    yield server
    server.close()


def _deadline_aware(pool: Any) -> bool:
    cls = getattr(pool, "connection_class", None)
    return isinstance(cls, type) and issubclass(cls, DeadlineMixin)


def test_every_connection_of_either_topology_honours_deadlines(topology: Any) -> None:
    broker = get_broker()
    add.delay(1, 1)  # connects
    if connection.topology() == "cluster":
        pools = [node.redis_connection.connection_pool for node in broker.get_nodes()]
    else:
        pools = [broker.connection_pool]
        pools += [s.connection_pool for s in broker.connection_pool.sentinel_manager.sentinels]
    assert pools and all(_deadline_aware(pool) for pool in pools)


def test_the_connection_counter_sees_reconnects_on_either_topology(topology: Any) -> None:
    """What tells a consumer to read back what it holds after a lost connection."""
    broker = get_broker()
    broker.set("x", 1)
    before = connects()
    drop_client_connections(new_client())
    broker.set("x", 2)  # redis-py reconnects silently
    assert connects() > before


@pytest.mark.parametrize("kind", ["cluster", "sentinel"])
def test_an_unreachable_topology_is_broker_unavailable_within_the_timeout(kind: str) -> None:
    ports = ",".join(f"127.0.0.1:{free_port()}" for _ in range(2))
    url = f"redis+cluster://{ports}/" if kind == "cluster" else f"redis+sentinel://{ports}/m/0"
    with override_settings(TASKQ_BROKER_URL=url, TASKQ_PUBLISH_TIMEOUT=1.0):
        started = time.monotonic()
        with pytest.raises(BrokerUnavailable) as caught:
            add.delay(1, 1)
        assert time.monotonic() - started < 1.5
    message = str(caught.value)
    assert "TASKQ_BROKER_URL" in message and f"redis+{kind}://127.0.0.1:" in message
    assert caught.value.task_id is not None


@pytest.mark.parametrize("kind", ["cluster", "sentinel"])
def test_a_silent_node_or_sentinel_cannot_stretch_a_send(kind: str, silent: SilentServer) -> None:
    """The deadline cuts the slot-map read of a Cluster and the master lookup of Sentinel."""
    host = f"127.0.0.1:{silent.port}"
    url = f"redis+cluster://{host}/" if kind == "cluster" else f"redis+sentinel://{host}/m/0"
    with override_settings(TASKQ_BROKER_URL=url, TASKQ_PUBLISH_TIMEOUT=1.0):
        started = time.monotonic()
        with pytest.raises(BrokerUnavailable):
            add.delay(1, 1)
        took = time.monotonic() - started
    assert took < 1.5, took


@pytest.fixture(scope="module")
def guarded_sentinel() -> Iterator[SentinelServers]:
    """A Sentinel set-up whose master and whose Sentinels each want a password."""
    setup = SentinelServers(password="master-pw", sentinel_password="sentinel-pw").start()
    yield setup
    setup.close()


@pytest.mark.e2e
def test_sentinels_get_their_own_password(
    guarded_sentinel: SentinelServers, start_worker: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = guarded_sentinel.url
    assert ":master-pw@" in url and "sentinel_password=sentinel-pw" in url
    monkeypatch.setenv("TASKQ_BROKER_URL", url)
    with override_settings(TASKQ_BROKER_URL=url):
        start_worker("-P", "solo")
        assert add.delay(20, 22).get(timeout=10) == 42
    # Without it the Sentinels refuse to say where the master is, and the error says so.
    without = url.split("?")[0]
    with (
        override_settings(TASKQ_BROKER_URL=without, TASKQ_PUBLISH_TIMEOUT=1.0),
        pytest.raises(BrokerUnavailable) as caught,
    ):
        add.delay(1, 1)
    message = str(caught.value)
    assert "No master found for 'mymaster' (Sentinel 127.0.0.1:" in message
    assert "AuthenticationError" in message and "add ?sentinel_password=... to the URL" in message
    assert "<redis.client" not in message


@pytest.mark.parametrize("deadline_class", [False, True], ids=["its-own", "deadline-aware"])
def test_a_django_redis_sentinel_cache_is_reused(
    on_sentinel: SentinelServers, deadline_class: bool
) -> None:
    """TASKQ_REDIS_CACHE_ALIAS works where django-redis supports the topology: Sentinel.

    Given django_taskq's connection class (docs/deployment.md), its pool
    honours TASKQ_PUBLISH_TIMEOUT too.
    """
    from django_redis import get_redis_connection
    from django_redis.pool import ConnectionFactory
    from redis.sentinel import SentinelConnectionPool, SentinelManagedConnection

    from django_taskq.broker.deadline import deadline_aware, is_deadline_aware

    # django-redis keeps one pool per URL for the whole process: start afresh.
    ConnectionFactory._pools.clear()
    options: dict[str, Any] = {}
    if deadline_class:
        managed = deadline_aware(SentinelManagedConnection)
        options = {"CONNECTION_POOL_KWARGS": {"connection_class": managed}}

    caches = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        "redis": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": f"redis://{on_sentinel.service}/0",
            "OPTIONS": {
                "CLIENT_CLASS": "django_redis.client.SentinelClient",
                "SENTINELS": [("127.0.0.1", s.port) for s in on_sentinel.sentinels],
                **options,
            },
        },
    }
    with override_settings(
        CACHES=caches,
        DJANGO_REDIS_CONNECTION_FACTORY="django_redis.pool.SentinelConnectionFactory",
        TASKQ_BROKER_URL=None,
        TASKQ_REDIS_CACHE_ALIAS="redis",
    ):
        broker = get_broker()
        assert broker.connection_pool is get_redis_connection("redis").connection_pool
        assert isinstance(broker.connection_pool, SentinelConnectionPool)
        assert connection.topology() == "sentinel"
        assert is_deadline_aware(broker) is deadline_class
        result = add.delay(2, 2)
        master = on_sentinel.master().client()
        assert master.xlen(keys.stream("default", 5)) == 1
        assert AsyncResult(result.id).state == "PENDING"
        # A pool of its own for blocking reads and pub/sub, on the same master.
        other = new_client()
        assert other.connection_pool is not broker.connection_pool
        assert isinstance(other.connection_pool, SentinelConnectionPool)
        assert other.xlen(keys.stream("default", 5)) == 1
