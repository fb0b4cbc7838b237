"""How many events per second one recorder writes (docs/benchmarks.md, "History recorder").

Not collected by the suite (its name does not start with test_); run it with

    python -m pytest tests/history/bench_recorder.py -s -p no:cacheprovider
    TASKQ_TEST_DB=postgres python -m pytest tests/history/bench_recorder.py -s -p no:cacheprovider

It writes 50,000 events of 10,000 tasks into the events stream as producers
and workers would (a ``sent`` and two ``progress`` per entry of their own,
``started`` and ``succeeded`` 100 to an entry, as a worker's flush), then runs
one recorder's loop in this thread until the group has nothing left, and
prints events/s and rows/s. TASKS and BATCH can be set in the environment.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

import pytest

from django_taskq import events
from django_taskq.broker import keys
from django_taskq.history.models import TaskRecord
from django_taskq.history.recorder import Recorder
from tests.history.helpers import T0, ended, progress, sent, started

pytestmark = pytest.mark.django_db(transaction=True)

TASKS = int(os.environ.get("TASKS", "10000"))
BATCH = int(os.environ.get("BATCH", "2000"))


def _fill(broker: Any) -> int:
    stream = keys.events("default")
    broker.sadd(keys.queues(), "default")
    pipe = broker.pipeline(transaction=False)
    count = 0
    for n in range(TASKS):
        events.queue_xadd(pipe, stream, [sent(f"task-{n}", T0 + n)])
        count += 1
    for first in range(0, TASKS, 100):
        ids = [f"task-{n}" for n in range(first, min(first + 100, TASKS))]
        events.queue_xadd(pipe, stream, [started(i) for i in ids], worker="taskq@bench")
        for i in ids:
            events.queue_xadd(pipe, stream, [progress(i, T0 + 1500, {"current": 1, "total": 2})])
            events.queue_xadd(pipe, stream, [progress(i, T0 + 1600, {"current": 2, "total": 2})])
        events.queue_xadd(
            pipe, stream, [ended("succeeded", i, res="None") for i in ids], worker="taskq@bench"
        )
        count += 4 * len(ids)
        pipe.execute()
    pipe.execute()
    return count


def test_recorder_throughput(broker: Any) -> None:
    total = _fill(broker)
    recorder = Recorder(threading.Event(), batch=BATCH, lease_seconds=30)
    assert recorder._lead()
    recorder.next_prune = float("inf")  # measure the writes only
    started_at = time.perf_counter()
    recorder._step()  # creates the group, reads the (empty) backlog
    while recorder.events < total:
        recorder._step()
    elapsed = time.perf_counter() - started_at
    recorder._release()
    assert TaskRecord.objects.filter(state="SUCCESS").count() == TASKS
    from django.db import connection

    print(
        f"\n{connection.vendor}: {total} events of {TASKS} tasks, batch {BATCH} events: "
        f"{elapsed:.2f} s, {total / elapsed:,.0f} events/s, {recorder.rows / elapsed:,.0f} "
        f"row writes/s ({recorder.rows} row writes)"
    )
