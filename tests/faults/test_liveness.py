"""Liveness, not a visibility timeout: a long task runs once; a task that kills its worker stops.

- A task that runs for three heartbeat timeouts on a live worker, with a
  second worker idle and eager for work, runs exactly once: its worker is
  alive, so nothing takes the message away from it.
- A task that SIGKILLs its own process every time is delivered exactly
  TASKQ_MAX_DELIVERIES times, then dead-lettered; its result fails with
  WorkerLostError saying so, and the worker keeps serving.
"""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
import redis

from django_taskq.conf import taskq_settings
from django_taskq.exceptions import WorkerLostError
from tests.faults import helpers
from tests.faults.recorder import Recorder
from tests.faults.tasks import fault_fast, fault_long, fault_suicide

pytestmark = [pytest.mark.faults, pytest.mark.e2e]

HEARTBEAT = 3.0


def test_task_running_3x_the_heartbeat_timeout_runs_exactly_once(
    start_worker: Any, recorder: Recorder, broker: redis.Redis, figures: dict[str, Any]
) -> None:
    env = {"TASKQ_WORKER_HEARTBEAT_TIMEOUT": str(HEARTBEAT)}
    workers = [start_worker("-c", "1", env=env), start_worker("-c", "1", env=env)]
    for worker in workers:
        helpers.wait_children(worker, 1)
    started = time.monotonic()
    result = fault_long.delay(3 * HEARTBEAT)
    value = result.get(timeout=3 * HEARTBEAT + 30)
    took = time.monotonic() - started
    # Once no copy of the message is left anywhere (stream or pending list), it cannot run again.
    settled = helpers.wait_until(
        lambda: helpers.pending(broker) == 0 and helpers.stream_entries(broker) == 0,
        2 * HEARTBEAT,
    )
    tally = recorder.read()
    figures.update(
        heartbeat_timeout_s=HEARTBEAT,
        task_s=3 * HEARTBEAT,
        took_s=round(took, 2),
        executions_started=tally.started[result.id],
        executions_finished=tally.finished[result.id],
        settled=settled,
    )
    assert value == 3 * HEARTBEAT
    assert settled, "a copy of the message is still in Redis"
    assert (tally.started[result.id], tally.finished[result.id]) == (1, 1), tally.by_id[result.id]
    assert all(worker.process.poll() is None for worker in workers)


def test_task_that_kills_its_process_is_dead_lettered_after_max_deliveries(
    start_worker: Any, recorder: Recorder, broker: redis.Redis, figures: dict[str, Any]
) -> None:
    max_deliveries = int(taskq_settings.MAX_DELIVERIES)  # the worker reads the same settings
    worker = start_worker("-c", "1")
    helpers.wait_children(worker, 1)
    result = fault_suicide.delay()
    error: BaseException | None = None
    started = time.monotonic()
    try:
        result.get(timeout=60)
    except BaseException as exc:
        error = exc
    took = time.monotonic() - started
    # The result is stored before the message is dead-lettered (on Cluster,
    # one round trip before): wait for the dead letter too.
    helpers.wait_until(lambda: any(row.get("i") == result.id for row in helpers.dead_letters()), 10)
    rows = [row for row in helpers.dead_letters() if row.get("i") == result.id]
    later = fault_fast.delay(1)
    later_value = later.get(timeout=30)
    tally = recorder.read()
    figures.update(
        max_deliveries=max_deliveries,
        executions=tally.started[result.id],
        dead_letters=len(rows),
        error=f"{type(error).__name__}: {error}" if error else None,
        took_s=round(took, 2),
    )
    assert isinstance(error, WorkerLostError), error
    assert re.search(rf"deliver\w* {max_deliveries} times", str(error)), str(error)
    assert tally.started[result.id] == max_deliveries
    assert tally.finished[result.id] == 0
    assert len(rows) == 1 and rows[0].get("reason"), rows
    assert later_value == 1 and tally.finished[later.id] == 1
    assert worker.process.poll() is None
    assert helpers.wait_until(
        lambda: helpers.pending(broker) == 0 and helpers.stream_entries(broker) == 0, 10
    )
