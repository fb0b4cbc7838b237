"""``taskq_worker --burst``: a real worker runs what the queues hold, then exits 0 by itself."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest

from django_taskq import AsyncResult, chain, states
from django_taskq.tasks_framework import PACKAGE
from tests.e2e_helpers import HeartbeatRounds, command_calls
from tests.faults.helpers import wait_until
from tests.testapp.tasks import add, gated

pytestmark = pytest.mark.e2e


def test_burst_runs_everything_waiting_then_exits(start_worker: Any) -> None:
    sent = [add.delay(i, i) for i in range(20)]
    steps = chain(add.s(1, 2), add.s(3), add.s(4)).apply_async()
    worker = start_worker("-P", "prefork", "-c", "2", "--burst", wait_ready=False)
    assert worker.wait(timeout=60) == 0
    assert [AsyncResult(r.id).state for r in sent] == [states.SUCCESS] * 20
    assert [AsyncResult(r.id).result for r in sent] == [2 * i for i in range(20)]
    # Each chain step is sent before the step before it is acked, so none is left behind.
    assert AsyncResult(steps.id).state == states.SUCCESS and AsyncResult(steps.id).result == 10
    # The output is read by a thread of its own: wait for the lines, not just the exit.
    worker.wait_for_line("burst: the queues are empty; stopping")
    worker.wait_for_line("burst:       stops once nothing is left to run now")


def test_burst_leaves_work_delayed_to_later(start_worker: Any) -> None:
    later = add.apply_async((1, 1), eta=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1))
    now = add.delay(2, 2)
    worker = start_worker("-P", "solo", "--burst", wait_ready=False)
    assert worker.wait(timeout=30) == 0
    assert AsyncResult(now.id).state == states.SUCCESS
    assert AsyncResult(later.id).state == states.PENDING
    worker.wait_for_line("burst: nothing is due; 1 delayed message(s) left, the first due at")


def test_burst_on_empty_queues_exits_at_once(start_worker: Any) -> None:
    worker = start_worker("-P", "threads", "-c", "2", "--burst", wait_ready=False)
    assert worker.wait(timeout=30) == 0
    worker.wait_for_line("burst: the queues are empty; stopping")


@pytest.mark.skipif(PACKAGE is None, reason="Django's tasks framework is not installed")
def test_burst_drains_django_tasks(start_worker: Any) -> None:
    """django-tasks-redis's ``run_redis_tasks`` without --continuous, on django_taskq."""
    from tests.testapp import jobs

    results = [jobs.multiply.enqueue(i, 3) for i in range(5)]
    worker = start_worker("-P", "solo", "--burst", wait_ready=False)
    assert worker.wait(timeout=30) == 0
    for i, result in enumerate(results):
        result.refresh()
        assert result.return_value == 3 * i


@pytest.mark.parametrize("pool", [["-P", "solo"], ["-P", "prefork", "-c", "1"]])
def test_a_busy_burst_worker_reads_no_counts(
    start_worker: Any, broker: Any, pool: list[str]
) -> None:
    """The watch looks only when a consumer came back from a fetch empty, never on a timer.

    While the worker's only consumer runs a task, two of its heartbeats go
    by (more than a second: the watch used to look every 0.25 s). The look
    is queue_stats.lua, the only script that calls TIME once nothing is
    published (INFO commandstats counts the commands scripts call).
    """
    gate = f"gate:{uuid.uuid4().hex}"
    long_one = gated.delay(gate)
    worker = start_worker(*pool, "--burst", wait_ready=False)
    assert broker.blpop([f"{gate}:started"], timeout=30) is not None
    looks_before = command_calls(broker, "time")
    beats = HeartbeatRounds(broker)
    assert wait_until(lambda: beats.since() >= 2, timeout=30), "no two heartbeats in 30 s"
    looks_while_busy = command_calls(broker, "time") - looks_before
    broker.rpush(gate, 1)
    assert worker.wait(timeout=30) == 0
    assert AsyncResult(long_one.id).state == states.SUCCESS
    assert looks_while_busy == 0
    worker.wait_for_line("burst: the queues are empty; stopping")
