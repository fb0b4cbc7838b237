"""Worker state as the heartbeat writes it and monitor/workers.py reads it, with real workers."""

from __future__ import annotations

import time
from typing import Any

import pytest

from django_taskq.broker import keys
from django_taskq.broker.publish import run_pipeline
from django_taskq.metrics import counters
from django_taskq.monitor.workers import registered_task_names, workers
from tests.ops.helpers import release, started, wait_until
from tests.testapp.tasks import gated


def _running(name: str) -> Any:
    """The worker's state once its description lists a running task."""
    return wait_until(
        lambda: next((w for w in workers() if w.hostname == name and w.running), None),
        f"{name} to list a running task",
    )


@pytest.mark.parametrize("pool", ["prefork", "solo", "threads"])
def test_the_state_lists_what_a_worker_runs_in_every_pool(
    start_worker: Any, broker: Any, pool: str
) -> None:
    worker = start_worker("-P", pool, "-c", "2", "-n", f"{pool}@test", "-Q", "default,other")
    before = time.time()
    result = gated.delay("gate")
    started(broker, "gate")
    state = _running(f"{pool}@test")
    assert state.online and state.pid == worker.pid and state.pool == pool
    assert state.concurrency == (1 if pool == "solo" else 2)
    assert state.queues == ["default", "other"]
    assert state.started <= before < time.time()
    [task] = state.running
    assert (task.task_id, task.task) == (result.id, "tests.testapp.tasks.gated")
    assert before <= task.started <= time.time() and task.runtime >= 0
    assert state.load is not None and len(state.load) == 3
    release(broker, "gate")
    result.get(timeout=15)
    wait_until(
        lambda: not next(w for w in workers() if w.hostname == f"{pool}@test").running,
        "the running list to empty after the task",
    )


def test_registered_task_names_are_kept_renewed_and_rewritten_after_loss(
    start_worker: Any, broker: Any
) -> None:
    start_worker("-P", "solo", "-n", "names@test")
    names = registered_task_names()
    assert {"tests.testapp.tasks.add", "tests.testapp.tasks.gated", "django_taskq.xmap"} <= names
    [state] = workers()
    key = keys.worker_tasks(state.name)
    assert broker.pttl(key) > 0  # it expires like the description
    broker.delete(key)  # Redis lost it
    wait_until(lambda: broker.exists(key), "the next beat to write the set again")
    assert "tests.testapp.tasks.add" in registered_task_names()


def test_a_worker_stopped_warmly_is_gone_with_its_task_names(
    start_worker: Any, broker: Any
) -> None:
    worker = start_worker("-P", "solo", "-n", "gone@test")
    [state] = workers()
    worker.stop()
    assert worker.wait() == 0
    assert workers() == []
    assert not broker.exists(keys.worker_tasks(state.name))
    assert registered_task_names() == set()


def test_a_killed_worker_is_listed_offline_until_forgotten(start_worker: Any, broker: Any) -> None:
    worker = start_worker("-P", "solo", "-n", "dead@test")
    [state] = workers()
    worker.kill()  # no warm stop: it stays in the index and stops beating
    # Its last beat, as if it had been silent for two days (longer than the heartbeat
    # timeout, and than TASKQ_WORKER_FORGET_AFTER, one day by default).
    broker.zadd(keys.workers(), {state.name: int((time.time() - 2 * 86400) * 1000)})
    [offline] = workers()
    assert not offline.online and offline.hostname == "dead@test" and offline.pid == worker.pid
    assert workers(include_offline=False) == []
    assert "tests.testapp.tasks.add" in registered_task_names()  # until it is forgotten
    # A live worker's housekeeping (at its start, then every 10 minutes) forgets it.
    start_worker("-P", "solo", "-n", "live@test")
    wait_until(
        lambda: broker.zscore(keys.workers(), state.name) is None, "the dead worker to be pruned"
    )
    assert [w.hostname for w in workers()] == ["live@test"]


def test_processed_and_failed_come_from_the_counters_of_the_hostname(
    start_worker: Any, broker: Any
) -> None:
    # The worker consumes both queues: its housekeeping at start forgets a
    # registered queue that no worker consumes and that has no stream, and
    # that raced the SADD below (a CI failure read only "default"'s counters).
    start_worker("-P", "solo", "-n", "counted@test", "-Q", "default,other")
    batch = counters.Batch()
    for queue in ("default", "other"):
        batch.task_ended(queue, "t.ok", "counted@test", counters.SUCCEEDED, 0.01, 0.0)
        batch.task_ended(queue, "t.bad", "counted@test", counters.FAILED, 0.01, 0.0)
    batch.task_ended("default", "t.dead", "counted@test", counters.REJECTED, None, None)
    batch.task_ended("default", "t.ok", "counted@test", counters.RETRIED, 0.01, 0.0)
    batch.task_ended("default", "t.ok", "someone@else", counters.SUCCEEDED, 0.01, 0.0)
    # Through run_pipeline, as the worker writes them: it loads the scripts
    # when this Redis has none yet (a bare pipeline failed with NoScriptError).
    run_pipeline(broker, lambda pipe: batch.queue_writes(pipe, broker))
    [state] = workers()
    assert state.processed == 6  # every ending of its hostname, on every queue
    assert state.failed == 3  # failed + dead-lettered


def test_workers_reads_odd_descriptions_without_failing(broker: Any) -> None:
    """A description from an older worker, or garbage, still lists the worker."""
    now_ms = int(time.time() * 1000)
    broker.zadd(keys.workers(), {"old@h:1:aa": now_ms, "junk@h:2:bb": now_ms})
    broker.set(keys.worker_info("old@h:1:aa"), '{"hostname": "old@h", "pid": 1, "pool": "solo"}')
    broker.set(keys.worker_info("junk@h:2:bb"), "not json")
    states = {w.name: w for w in workers()}
    assert states["old@h:1:aa"].running == [] and states["old@h:1:aa"].load is None
    assert states["junk@h:2:bb"].hostname == "junk@h" and states["junk@h:2:bb"].online
    assert states["junk@h:2:bb"].as_dict()["running"] == []
