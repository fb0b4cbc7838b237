"""Test session set-up: a private redis-server, started before Django loads.

Each pytest process (each xdist worker too) starts its own redis-server on a
free port and exports its URL as TASKQ_BROKER_URL, so Django settings and
worker subprocesses use it. Set TASKQ_TEST_REDIS_URL to use an existing
Redis instead (its db is flushed between tests).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from django_taskq.testing import RedisServer, test_redis_url_from_env

_server: RedisServer | None = None


def pytest_configure(config: pytest.Config) -> None:
    global _server
    url = test_redis_url_from_env()
    if url is None:
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


@pytest.fixture(scope="session")
def redis_server() -> RedisServer:
    """The session's private redis-server (tests may stop, kill, restart it)."""
    if _server is None:
        pytest.skip("TASKQ_TEST_REDIS_URL is set: the test session does not own Redis")
    return _server


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
