"""RECEIVED: a worker's fetch records the messages it takes, before it starts them.

A real solo worker (with its recorder process) prefetches two messages in
one fetch: the first runs (a gated task, held until the test lets it go)
while the second waits in the worker's buffer, where the history shows it
RECEIVED. Run on Redis Cluster too (TASKQ_TEST_TOPOLOGY=cluster).
"""

from __future__ import annotations

import datetime as dt
import json
import signal
from typing import Any

import pytest

from django_taskq import AsyncResult, control
from django_taskq.broker import keys
from django_taskq.history.models import TaskRecord
from tests.history.helpers import T0, emit, emit_received, ended, sent, started, wait_for
from tests.testapp.tasks import add, gated

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

QUEUE = "held"


def record(task_id: str, state: str) -> TaskRecord:
    """The task's row once the recorder has written it in ``state``."""
    return wait_for(
        lambda: TaskRecord.objects.filter(task_id=task_id, state=state).first(),
        what=f"{state} row of {task_id}",
    )


def received_entries(broker: Any, queue: str) -> list[list[str]]:
    """The task ids of each received entry of ``queue``'s events stream, oldest first."""
    return [
        json.loads(fields[b"r"])
        for _id, fields in broker.xrange(keys.events(queue))
        if b"r" in fields
    ]


def prefetch_two(start_worker: Any, broker: Any, name: str) -> tuple[Any, AsyncResult, Any]:
    """Start a solo worker, have it take a gated task and an add in one fetch; both sent first.

    The worker warms up on ``default`` (quick tasks grow its batch past
    one), then is told to consume ``held``, where both messages wait: its
    next fetch takes them together. Returns once the gated one runs.
    """
    worker = start_worker("-P", "solo", "-n", name, "--prefetch", "8")
    for n in range(6):
        assert add.delay(n, n).get(timeout=15) == 2 * n
    first = gated.apply_async((f"{name}:gate",), queue=QUEUE)
    second = add.apply_async((20, 22), queue=QUEUE)
    assert control.add_consumer(QUEUE, timeout=15).results()[name]["changed"] is True
    assert broker.blpop([f"{name}:gate:started"], timeout=15), "the gated task never started"
    return worker, first, second


def test_a_prefetched_task_is_received_then_started_then_succeeded(
    start_worker: Any, broker: Any
) -> None:
    _worker, first, second = prefetch_two(start_worker, broker, "recv@test")
    waiting = record(second.id, "RECEIVED")
    assert waiting.worker == "recv@test" and waiting.started_at is None
    assert waiting.sent_at is not None and waiting.received_at is not None
    assert waiting.sent_at <= waiting.received_at
    # The result key is not written on receipt (a write per message): still PENDING there.
    assert AsyncResult(second.id).state == "PENDING"
    # The whole fetch is one received entry.
    assert received_entries(broker, QUEUE) == [[first.id, second.id]]
    assert TaskRecord.objects.get(task_id=first.id).received_at == waiting.received_at

    broker.rpush("recv@test:gate", "go")
    assert second.get(timeout=15) == 42
    done = record(second.id, "SUCCESS")
    assert done.worker == "recv@test"
    assert done.received_at is not None and done.started_at is not None
    assert done.received_at <= done.started_at
    assert record(first.id, "SUCCESS").received_at is not None


def test_a_handed_back_task_stays_received_until_another_worker_takes_it(
    start_worker: Any, broker: Any
) -> None:
    worker, first, second = prefetch_two(start_worker, broker, "recv1@test")
    record(second.id, "RECEIVED")
    worker.signal(signal.SIGTERM)  # a warm shutdown: the running task ends, the rest goes back
    worker.wait_for_line("warm shutdown")
    broker.rpush("recv1@test:gate", "go")
    assert worker.wait(timeout=20) == 0
    # Handed back unstarted: still RECEIVED, by the worker that gave it back.
    assert record(first.id, "SUCCESS").worker == "recv1@test"
    held = TaskRecord.objects.get(task_id=second.id)
    assert (held.state, held.worker) == ("RECEIVED", "recv1@test")

    start_worker("-P", "solo", "-n", "recv2@test", "-Q", QUEUE)
    assert second.get(timeout=15) == 42
    done = record(second.id, "SUCCESS")
    assert done.worker == "recv2@test"
    assert held.received_at is not None and done.received_at is not None
    assert done.received_at > held.received_at
    assert [second.id] in received_entries(broker, QUEUE)


def test_a_late_received_entry_never_moves_a_record_back(broker: Any, start_recorder: Any) -> None:
    emit(broker, "default", [sent("done"), ended("succeeded", "done", res="5")])
    emit(broker, "default", [sent("running"), started("running")])
    emit_received(broker, "default", ["done", "running", "new"], ts=T0 + 9000, worker="late@w")
    start_recorder()
    fresh = record("new", "RECEIVED")
    assert fresh.worker == "late@w" and fresh.task_name == ""
    before = dt.datetime.fromtimestamp((T0 + 500) / 1000, tz=dt.UTC)  # the rcv of the worker's own
    for task_id, state in (("done", "SUCCESS"), ("running", "STARTED")):
        row = record(task_id, state)
        assert (row.worker, row.received_at) == ("taskq@w1", before), task_id


@pytest.mark.parametrize("junk", [b"\xff\xfe", b"\xed\xa0\x80"], ids=["not-utf8", "surrogate"])
def test_an_id_that_is_not_utf8_costs_only_its_own_event(
    broker: Any, start_recorder: Any, junk: bytes
) -> None:
    """fetch.lua lists the raw ids it hands out: one fuzzed id must not hide the others.

    The recorder decoded a received entry strictly, so one id that was not
    UTF-8 dropped the ``received`` events of every task fetched with it (up
    to 256). Its id is recorded with U+FFFD for each byte that is not UTF-8,
    as the worker names it when it dead-letters the entry.
    """
    broker.sadd(keys.queues(), "default")
    raw = b'["good1","' + junk + b'bad","good2"]'
    broker.xadd(keys.events("default"), {"r": raw, "ts": T0 + 500, "w": "taskq@w1"})
    start_recorder()
    for task_id in ("good1", "good2", "\ufffd" * len(junk) + "bad"):
        assert record(task_id, "RECEIVED").worker == "taskq@w1"
