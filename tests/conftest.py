"""Test session set-up: a private redis-server, started before Django loads.

Each pytest process (each xdist worker too) starts its own redis-server on a
free port and exports its URL as TASKQ_BROKER_URL, so Django settings and
worker subprocesses use it. Set TASKQ_TEST_REDIS_URL to use an existing
Redis instead (its db is flushed between tests).

TASKQ_TEST_TOPOLOGY=cluster (or sentinel) runs the session on a private
Redis Cluster of 3 masters and 3 replicas (or a master, a replica and 3
Sentinels) instead, through a redis+cluster:// (redis+sentinel://) URL;
tests that restart the single redis-server are skipped then. The
``redis_cluster`` and ``redis_sentinel`` fixtures start such a set-up in
any session, the first time a test asks for one; ``on_cluster`` and
``on_sentinel`` point a test (and the workers it starts) at it, and
``topology`` runs a test on both.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from django_taskq.testing import RedisServer, test_redis_url_from_env
from django_taskq.testing_topologies import ClusterServers, SentinelServers
from tests.topology import TOPOLOGY

_server: RedisServer | None = None
#: Set-ups of other topologies this session started (closed at its end).
_topologies: dict[str, ClusterServers | SentinelServers] = {}


def _start_topology(name: str) -> ClusterServers | SentinelServers:
    found = _topologies.get(name)
    if found is None:
        found = ClusterServers().start() if name == "cluster" else SentinelServers().start()
        _topologies[name] = found
    return found


def pytest_configure(config: pytest.Config) -> None:
    global _server
    url = test_redis_url_from_env()
    if TOPOLOGY not in ("single", "cluster", "sentinel"):
        raise pytest.UsageError(
            f"TASKQ_TEST_TOPOLOGY={TOPOLOGY!r}: use single (the default), cluster or sentinel"
        )
    if TOPOLOGY != "single":
        url = _start_topology(TOPOLOGY).url
    elif url is None:
        _server = RedisServer().start()
        url = _server.url
    os.environ["TASKQ_BROKER_URL"] = url
    # pytest-django may have loaded settings already (before this hook ran).
    from django.conf import settings

    if settings.configured:
        settings.TASKQ_BROKER_URL = url


def pytest_unconfigure(config: pytest.Config) -> None:
    if _server is not None:
        _server.close()
    for setup in _topologies.values():
        setup.close()


@pytest.fixture(scope="session")
def redis_server() -> RedisServer:
    """The session's private redis-server (tests may stop, kill, restart it)."""
    if TOPOLOGY != "single":
        pytest.skip(f"TASKQ_TEST_TOPOLOGY={TOPOLOGY}: the session has no single redis-server")
    if _server is None:
        pytest.skip("TASKQ_TEST_REDIS_URL is set: the test session does not own Redis")
    return _server


@pytest.fixture(scope="session")
def redis_cluster() -> ClusterServers:
    """A private Redis Cluster (3 masters, 3 replicas), started the first time it is asked for."""
    found = _start_topology("cluster")
    assert isinstance(found, ClusterServers)
    return found


@pytest.fixture(scope="session")
def redis_sentinel() -> SentinelServers:
    """A private Sentinel set-up (master, replica, 3 Sentinels), started when first asked for."""
    found = _start_topology("sentinel")
    assert isinstance(found, SentinelServers)
    return found


Setup = ClusterServers | SentinelServers


def _use(setup: Setup, monkeypatch: pytest.MonkeyPatch) -> Iterator[Setup]:
    """Point this process and the workers it starts at ``setup``, emptied first."""
    from django.test import override_settings

    from django_taskq.broker import connection

    monkeypatch.setenv("TASKQ_BROKER_URL", setup.url)
    with override_settings(TASKQ_BROKER_URL=setup.url):
        connection.reset()
        connection.get_broker().flushall()
        yield setup
    connection.reset()


@pytest.fixture
def on_cluster(redis_cluster: ClusterServers, monkeypatch: pytest.MonkeyPatch) -> Iterator[Setup]:
    """This test (and its workers) use the session's Redis Cluster."""
    yield from _use(redis_cluster, monkeypatch)


@pytest.fixture
def on_sentinel(
    redis_sentinel: SentinelServers, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Setup]:
    """This test (and its workers) use the session's Sentinel master."""
    yield from _use(redis_sentinel, monkeypatch)


@pytest.fixture(params=["cluster", "sentinel"])
def topology(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Setup]:
    """This test runs twice: on the session's Redis Cluster and on its Sentinel master."""
    setup = request.getfixturevalue(f"redis_{request.param}")
    yield from _use(setup, monkeypatch)


@pytest.fixture(autouse=True)
def _clean_redis() -> Iterator[None]:
    """Every test starts with an empty Redis and fresh clients."""
    from django_taskq.broker import connection
    from django_taskq.conf import taskq_settings

    if _server is not None and (_server.process is None or _server.process.poll() is not None):
        _server.start()  # a fault-injection test left it down
    taskq_settings.reload()
    connection.reset()
    connection.get_broker().flushdb()
    yield
    connection.reset()


@pytest.fixture
def broker():
    """The broker Redis client."""
    from django_taskq.broker.connection import get_broker

    return get_broker()


from tests.e2e_helpers import start_worker  # noqa: E402,F401 - fixture
