"""TASKQ_BROKER_MIN_REPLICAS: a write counts as done once that many replicas have it (WAIT)."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import override_settings

from django_taskq.broker import keys
from django_taskq.broker.connection import get_broker
from django_taskq.checks import check_settings
from django_taskq.exceptions import BrokerUnavailable
from django_taskq.testing import RedisServer
from django_taskq.testing_topologies import ClusterServers, SentinelServers
from tests.testapp.tasks import add


def _waits(servers: list[RedisServer]) -> int:
    total = 0
    for server in servers:
        stats: Any = server.client().info("commandstats")
        total += int(stats.get("cmdstat_wait", {}).get("calls", 0))
    return total


def test_sends_wait_for_the_replica_on_sentinel(on_sentinel: SentinelServers) -> None:
    master = on_sentinel.master()
    add.delay(0, 0)  # the scripts are loaded (a first NOSCRIPT sends a pipeline twice)
    before = _waits([master])
    with override_settings(TASKQ_BROKER_MIN_REPLICAS=1):
        assert add.delay(1, 1).id
        add.delay_many([(i, i) for i in range(5)])
    assert _waits([master]) == before + 2  # one WAIT per round trip, in the same round trip


def test_each_node_a_cluster_send_writes_to_waits_for_its_replica(
    on_cluster: ClusterServers,
) -> None:
    primaries = on_cluster.primaries()
    with override_settings(TASKQ_BROKER_MIN_REPLICAS=1):
        # Scripts loaded and the queue registered (a registration is a round trip of its own).
        add.delay_many([(i, i) for i in range(30)])
        before = _waits(primaries)
        # 30 tasks: their result records are on every master.
        add.delay_many([(i, i) for i in range(30)])
    assert _waits(primaries) - before == len(primaries)


@pytest.mark.parametrize("where", ["sentinel", "cluster"])
def test_too_few_replicas_is_broker_unavailable_saying_so(
    where: str, request: pytest.FixtureRequest
) -> None:
    request.getfixturevalue(f"on_{where}")
    settings = {
        "TASKQ_BROKER_MIN_REPLICAS": 2,  # there is one replica per master
        "TASKQ_BROKER_REPLICA_TIMEOUT": 0.05,
        "TASKQ_PUBLISH_TIMEOUT": 1.0,
    }
    with override_settings(**settings), pytest.raises(BrokerUnavailable) as caught:
        add.delay(1, 1)
    error = caught.value
    assert "1 replica(s) acknowledged the write within 50 ms" in str(error)
    assert "TASKQ_BROKER_MIN_REPLICAS=2" in str(error)
    assert error.maybe_sent is True  # it is on the master
    # Sent again by every retry, it is queued once (its once key).
    assert get_broker().xlen(keys.stream("default", 5)) == 1


def test_replica_settings_are_checked() -> None:
    with override_settings(TASKQ_BROKER_MIN_REPLICAS=-1, TASKQ_BROKER_REPLICA_TIMEOUT=0):
        messages = [m.msg for m in check_settings() if m.id == "taskq.E003"]
    assert any("TASKQ_BROKER_MIN_REPLICAS=-1" in m for m in messages)
    assert any("TASKQ_BROKER_REPLICA_TIMEOUT=0" in m for m in messages)
