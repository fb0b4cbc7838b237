"""What differs on Redis Cluster, on a real local cluster (3 masters, 3 replicas).

Pipelines that run scripts of many slots, a lost script cache on every
primary, barriers that keep results before acks, and a worker that waits
on queues of several slots at once without polling.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
import redis
from redis.crc import key_slot

from django_taskq.broker import keys, results, scripts, topology
from django_taskq.broker.cluster import TaskqCluster
from django_taskq.broker.connection import connects, get_broker
from django_taskq.broker.publish import run_pipeline
from django_taskq.testing_topologies import ClusterServers
from tests.testapp.tasks import add

pytestmark = pytest.mark.usefixtures("on_cluster")


def queues_on_different_masters(cluster: ClusterServers, count: int = 2) -> list[str]:
    """``count`` queue names whose keys live on ``count`` different masters."""
    names: list[str] = []
    owners: set[int] = set()
    for i in range(10_000):
        name = f"q{i}"
        owner = cluster.master_of_key(keys.stream(name, 0)).port
        if owner not in owners:
            owners.add(owner)
            names.append(name)
            if len(names) == count:
                return names
    raise AssertionError("no queue names on different masters")


def test_the_broker_is_a_cluster_client() -> None:
    broker = get_broker()
    assert isinstance(broker, TaskqCluster) and topology.is_cluster(broker)
    assert connects() > 0  # the connection counter sees the nodes' connections


def test_a_pipeline_runs_scripts_of_many_slots_and_reloads_them_everywhere() -> None:
    broker = get_broker()
    items = [(f"task-{i}", '{"status": "SUCCESS"}', "SUCCESS") for i in range(50)]
    slots = {key_slot(keys.result(i).encode()) for i, _, _ in items}
    assert len(slots) > 10
    broker.script_flush()  # every primary forgets its scripts: NOSCRIPT on each
    run_pipeline(broker, lambda pipe: results.queue_store_many(pipe, broker, items))
    assert all(broker.exists(keys.result(i)) for i, _, _ in items)
    exists = broker.script_exists(scripts.script(broker, "store_result").sha)
    assert exists == [True]  # redis-py ANDs the answers of every primary


def test_a_barrier_makes_the_next_stretch_wait_for_the_one_before() -> None:
    """What keeps a message from being acked before its result is stored."""
    broker = get_broker()
    first, second = "{before}:list", "{after}:stream"
    started_ms = time.time() * 1000

    def build(pipe: Any) -> None:
        pipe.blpop([first], timeout=0.3)  # ends after 0.3 s, on its node
        topology.barrier(pipe)
        pipe.xadd(second, {"x": 1})  # its id is the time Redis ran it

    replies = run_pipeline(broker, build)
    added_ms = int(replies[1].split(b"-")[0])
    assert added_ms >= started_ms + 290


def test_a_publish_in_a_pipeline_reaches_subscribers() -> None:
    broker = get_broker()
    pubsub = broker.pubsub()
    pubsub.subscribe(keys.control())
    assert pubsub.get_message(timeout=2)["type"] == "subscribe"
    run_pipeline(broker, lambda pipe: pipe.publish(keys.control(), "hello"))
    message = pubsub.get_message(timeout=2)
    assert message is not None and message["data"] == b"hello"
    pubsub.close()


def test_a_reconfiguring_reply_is_a_connection_error() -> None:
    """CLUSTERDOWN, TRYAGAIN...: callers retry them as they retry a lost connection."""
    from redis.exceptions import ClusterDownError, TryAgainError

    from django_taskq.broker.cluster import ClusterUnavailable, _unavailable

    for exc in (ClusterDownError("CLUSTERDOWN"), TryAgainError("TRYAGAIN")):
        converted = _unavailable(exc)
        assert isinstance(converted, ClusterUnavailable)
        assert isinstance(converted, redis.ConnectionError)


@pytest.mark.e2e
def test_a_worker_on_queues_of_several_slots_wakes_on_any_without_polling(
    redis_cluster: ClusterServers, start_worker: Any
) -> None:
    first, second = queues_on_different_masters(redis_cluster)
    worker = start_worker("-P", "solo", "-Q", f"{first},{second}")
    assert add.apply_async((1, 1), queue=first).get(timeout=10) == 2

    def fetches() -> int:
        """Calls of fetch.lua (and the few other scripts): one per queue per consumer loop."""
        total = 0
        for node in redis_cluster.primaries():
            stats = node.client().info("commandstats")
            total += int(stats.get("cmdstat_evalsha", {}).get("calls", 0))
        return total

    # Measured over 3 idle seconds: a loop a second (one blocking read per slot,
    # BLOCK 1000 ms, then one fetch per queue), not a poll loop. (Redis counts a
    # blocked XREADGROUP again at every check of its timeout, so XREADGROUP calls
    # say nothing here.)
    before = fetches()
    time.sleep(3)
    idle = fetches() - before
    assert idle <= 2 * 3 + 6, idle  # + the housekeeping thread's promote/reclaim scripts
    # A message on either queue wakes the blocked worker at once.
    for queue in (second, first, second):
        sent = time.monotonic()
        assert add.apply_async((2, 3), queue=queue).get(timeout=10) == 5
        assert time.monotonic() - sent < 0.5
    assert "failed; its messages are redelivered" not in worker.output


def test_inspect_purge_and_recovery_reach_queues_on_every_master(
    redis_cluster: ClusterServers,
) -> None:
    """They enumerate queues from the registry (no KEYS, no SCAN) and act in each queue's slot."""
    from django_taskq import control
    from django_taskq.broker.publish import publish_many
    from django_taskq.worker import streams as ops

    names = queues_on_different_masters(redis_cluster, 3)
    owners = {redis_cluster.master_of_key(keys.stream(q, 0)).port for q in names}
    assert len(owners) == 3
    publish_many(add.build_envelope((i, i), queue=q) for q in names for i in range(4))
    seen = control.inspect()["queues"]
    assert {q: seen[q]["waiting"] for q in names} == dict.fromkeys(names, 4)
    # A consumer that died holding six of them (fetched, never acked): recovery finds it.
    broker = get_broker()
    every = keys.streams_for(names)
    ops.ensure_groups(broker, every)
    held = ops.fetch(broker, names, "gone:1:dead:0", 6)
    assert len(held) == 6
    assert ops.reclaim_dead(broker, every) == 6  # no heartbeat: its messages come back
    assert {q: control.inspect()["queues"][q]["running"] for q in names} == dict.fromkeys(names, 0)
    assert control.purge() == 12
    assert all(broker.xlen(keys.stream(q, 5)) == 0 for q in names)


def test_a_django_tasks_attempts_list_is_written_read_and_forgotten_in_its_slot() -> None:
    """get_result() reads the record and its attempts list in one pipeline; forget() both."""
    from django_taskq.tasks_framework import PACKAGE

    if PACKAGE is None:
        pytest.skip("neither django.tasks nor the django-tasks backport is installed")
    from django_taskq import AsyncResult
    from django_taskq.attempts import Attempt
    from django_taskq.messages import dumps
    from tests.testapp import jobs

    broker = get_broker()
    task_id = "django-task-on-a-cluster"
    record = dumps({"status": "STARTED", "task": jobs.multiply.module_path, "date_done": 1.0})
    results.store_many([(task_id, record, "STARTED", Attempt('{"w": "a@test"}', 10))])
    assert jobs.multiply.get_result(task_id).worker_ids == ["a@test"]
    AsyncResult(task_id).forget()
    assert broker.exists(keys.result(task_id)) + broker.exists(keys.attempts(task_id)) == 0
