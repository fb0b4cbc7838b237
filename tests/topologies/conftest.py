"""Fixtures that point a test (and the workers it starts) at a Cluster or a Sentinel master.

``on_cluster`` and ``on_sentinel`` set TASKQ_BROKER_URL, in this process's
settings and in the environment that worker and beat subprocesses inherit,
to the session's private set-up (started the first time a test asks),
and start from an empty Redis. ``topology`` is both, as a parameter.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.test import override_settings

from django_taskq.broker import connection
from django_taskq.testing_topologies import ClusterServers, SentinelServers

Setup = ClusterServers | SentinelServers


def _use(setup: Setup, monkeypatch: pytest.MonkeyPatch) -> Iterator[Setup]:
    monkeypatch.setenv("TASKQ_BROKER_URL", setup.url)
    with override_settings(TASKQ_BROKER_URL=setup.url):
        connection.reset()
        connection.get_broker().flushall()
        yield setup
    connection.reset()


@pytest.fixture
def on_cluster(redis_cluster: ClusterServers, monkeypatch: pytest.MonkeyPatch) -> Iterator[Setup]:
    yield from _use(redis_cluster, monkeypatch)


@pytest.fixture
def on_sentinel(
    redis_sentinel: SentinelServers, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Setup]:
    yield from _use(redis_sentinel, monkeypatch)


@pytest.fixture(params=["cluster", "sentinel"])
def topology(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Setup]:
    setup = request.getfixturevalue(f"redis_{request.param}")
    yield from _use(setup, monkeypatch)
