"""The recorder on a thread of this process, on real Redis and the test database."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from django_taskq.broker import keys
from django_taskq.history import reader as reader_module
from django_taskq.history.models import TaskRecord
from django_taskq.history.reader import EventReader
from tests.history.helpers import T0, emit, ended, progress, sent, started, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def state_of(task_id: str) -> str | None:
    return TaskRecord.objects.filter(task_id=task_id).values_list("state", flat=True).first()


def test_records_every_queue_and_finds_new_ones(broker: Any, start_recorder: Any) -> None:
    emit(broker, "default", [sent("a", per="nightly", rof="old", body='{"x":1}'), started("a")])
    start_recorder()
    wait_for(lambda: state_of("a") == "STARTED")
    emit(broker, "default", [progress("a", T0 + 1500, {"current": 1, "total": 4})])
    wait_for(lambda: TaskRecord.objects.filter(task_id="a", progress__current=1).exists())
    # A queue registered after the recorder started (in another slot on Cluster).
    emit(broker, "reports", [sent("b"), ended("succeeded", "b", res="'done'")])
    emit(broker, "default", [ended("succeeded", "a", res="5")])
    wait_for(lambda: state_of("b") == "SUCCESS" and state_of("a") == "SUCCESS")
    a = TaskRecord.objects.get(task_id="a")
    assert (a.periodic_task_name, a.retry_of, a.body, a.result, a.progress) == (
        "nightly",
        "old",
        '{"x":1}',
        "5",
        None,
    )
    assert (a.worker, a.runtime, a.queue) == ("taskq@w1", 2.0, "default")
    assert TaskRecord.objects.get(task_id="b").queue == "reports"
    # Acked once the rows are committed: just after they become visible.
    wait_for(lambda: _pending(broker) == 0, what="ack of the default queue's entries")


def test_replaying_the_streams_gives_the_same_rows(broker: Any, start_recorder: Any) -> None:
    for n in range(20):
        emit(broker, "default", [sent(f"t{n}"), started(f"t{n}")], worker=None)
        emit(broker, "default", [ended("failed" if n % 2 else "succeeded", f"t{n}", msg="x")])
    start_recorder()
    wait_for(lambda: TaskRecord.objects.filter(finished_at__isnull=False).count() == 20)
    before = list(TaskRecord.objects.order_by("task_id").values(*_compared()))
    # Read everything again from the start, as after losing the group's position.
    broker.xgroup_setid(keys.events("default"), reader_module.GROUP, "0")
    last = broker.xinfo_stream(keys.events("default"))["last-generated-id"]
    wait_for(lambda: _delivered(broker) == last and _pending(broker) == 0, what="replay")
    assert list(TaskRecord.objects.order_by("task_id").values(*_compared())) == before


def _compared() -> list[str]:
    return [f.name for f in TaskRecord._meta.concrete_fields if f.name not in ("id", "updated_at")]


def _delivered(broker: Any) -> Any:
    [group] = broker.xinfo_groups(keys.events("default"))
    return group["last-delivered-id"]


def _pending(broker: Any) -> int:
    return int(broker.xpending(keys.events("default"), reader_module.GROUP)["pending"])


def test_what_a_dead_recorder_read_is_read_back(broker: Any, start_recorder: Any) -> None:
    emit(broker, "default", [sent("a"), ended("succeeded", "a")])
    # A recorder that read the entry and died before writing it.
    crashed = EventReader(broker, budget=1000, block_ms=10)
    crashed.refresh()
    crashed.backlog = False
    assert len(crashed.read()) == 1 and _pending(broker) == 1
    start_recorder()
    wait_for(lambda: state_of("a") == "SUCCESS")
    wait_for(lambda: _pending(broker) == 0, what="ack")


def test_unreadable_events_are_dropped_with_a_log_line(
    broker: Any, start_recorder: Any, caplog: Any
) -> None:
    caplog.set_level(logging.WARNING, "django_taskq.history")
    broker.sadd(keys.queues(), "default")
    broker.xadd(keys.events("default"), {"e": "[{]"})
    emit(broker, "default", [{"k": "teleported", "id": "a", "ts": 1}, sent("ok")])
    start_recorder()
    wait_for(lambda: state_of("ok"))
    wait_for(lambda: "dropped 2 unreadable event(s)" in caplog.text, what="log line")
    wait_for(lambda: _pending(broker) == 0, what="ack")


def test_a_database_error_keeps_the_batch_pending_until_it_passes(
    broker: Any, start_recorder: Any, caplog: Any
) -> None:
    caplog.set_level(logging.WARNING, "django_taskq.history")
    table = TaskRecord._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE {table} RENAME TO taskq_away")
    try:
        emit(broker, "default", [sent("a"), ended("succeeded", "a")])
        start_recorder()
        wait_for(lambda: "the database refused a batch" in caplog.text, what="log line")
        assert _pending(broker) == 1
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"ALTER TABLE taskq_away RENAME TO {table}")
    wait_for(lambda: state_of("a") == "SUCCESS")
    wait_for(lambda: _pending(broker) == 0, what="ack")


def test_one_recorder_records_at_a_time(broker: Any, start_recorder: Any) -> None:
    first = start_recorder(lease_seconds=1.5, hostname="first")
    emit(broker, "default", [sent("a")])
    wait_for(lambda: state_of("a"))
    second = start_recorder(lease_seconds=1.5, hostname="second")
    emit(broker, "default", [sent("b")])
    wait_for(lambda: state_of("b"))
    # The row is visible once its write commits; the recorder counts the batch just after.
    wait_for(lambda: first.events == 2, what="the first recorder's count of 2 events")
    assert broker.get(keys.recorder_lease()).decode() == first.holder
    assert second.events == 0


def test_retention_deletes_old_rows(broker: Any, start_recorder: Any, settings: Any) -> None:
    settings.TASKQ_HISTORY_RETENTION = 7
    old = timezone.now() - dt.timedelta(days=8)
    TaskRecord.objects.create(task_id="old", task_name="x", sent_at=old, finished_at=old)
    TaskRecord.objects.create(
        task_id="late", task_name="x", sent_at=old, finished_at=timezone.now()
    )
    TaskRecord.objects.create(task_id="new", task_name="x", sent_at=timezone.now())
    start_recorder()
    wait_for(lambda: not TaskRecord.objects.filter(task_id="old").exists(), what="deletion")
    assert set(TaskRecord.objects.values_list("task_id", flat=True)) == {"late", "new"}


def test_on_cluster_and_sentinel(topology: Any, start_recorder: Any) -> None:
    from django_taskq.broker.connection import get_broker

    broker = get_broker()
    queues = ["default", "reports", "mail", "video"]  # spread over the Cluster's slots
    for n, queue in enumerate(queues):
        emit(broker, queue, [sent(f"t{n}"), ended("succeeded", f"t{n}", res=str(n))])
    start_recorder()
    wait_for(lambda: TaskRecord.objects.filter(state="SUCCESS").count() == 4)
    # New events in one slot wake the blocking read on all of them.
    emit(broker, "video", [sent("late"), started("late")])
    wait_for(lambda: state_of("late") == "STARTED")
    assert dict(TaskRecord.objects.values_list("task_id", "queue")) == {
        "t0": "default",
        "t1": "reports",
        "t2": "mail",
        "t3": "video",
        "late": "video",
    }


def test_a_batch_holds_about_the_event_budget_whatever_an_entry_holds(broker: Any) -> None:
    """Entries of 128 events are read two at a time, entries of one event hundreds at a time."""
    for n in range(20):  # 20 flushes of 128 finished tasks each
        emit(broker, "default", [ended("succeeded", f"f{n}-{i}") for i in range(128)])
    reader = EventReader(broker, budget=300, block_ms=10)
    reader.refresh()
    reader.backlog = False
    first = reader.read()
    assert len(first) == 2  # the first guess: 128 events an entry
    reader.observed(len(first), 256)
    assert len(reader.read()) == 2
    # Entries of one event each (producers' ``sent``): the count follows.
    for n in range(400):
        emit(broker, "reports", [sent(f"s{n}")], worker=None)
    reader.refresh()
    reader.observed(2, 2)  # a batch of two one-event entries
    assert reader.count == 150  # 300 events over 2 streams
    many = [e for e in reader.read() if e.queue == "reports"]
    assert len(many) == 150


def test_a_small_budget_still_records_everything(broker: Any, start_recorder: Any) -> None:
    for n in range(10):
        emit(broker, "default", [sent(f"k{n}-{i}") for i in range(50)], worker=None)
        emit(broker, "default", [ended("succeeded", f"k{n}-{i}") for i in range(50)])
    recorder = start_recorder(batch=60)
    wait_for(lambda: TaskRecord.objects.filter(state="SUCCESS").count() == 500)
    wait_for(lambda: _pending(broker) == 0, what="ack")
    assert recorder.reader.per_entry == 50.0


def test_text_no_database_can_store_is_recorded_and_does_not_stall_the_recorder(
    broker: Any, start_recorder: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Whatever bytes are in Redis: a lone surrogate or NUL in an event, junk in the registry.

    A lone surrogate in a task id (JSON ``"\\ud800"``) made the database driver
    raise UnicodeEncodeError, which is no DatabaseError: the recorder logged
    "unexpected error" and tried the same batch again for ever, so nothing
    after it was recorded (seen on CI, in the fuzzed-entries test).
    """
    broker.sadd(keys.queues(), b"\xff\xfe", "has space", "{tag}")
    bad = {"lone": "x\ud800y", "nul": "a\x00b"}
    for label, text in bad.items():
        emit(
            broker,
            "default",
            [
                sent(f"{label}-{text}", a=text, kw=text, per=text),
                progress(f"{label}-{text}", T0 + 1500, {text: [text, 1]}),
                ended("dead", f"{label}-{text}", exc=text, msg=text, tb=text, w=text),
            ],
        )
    emit(broker, "default", [sent("pair-\U0001f600"), sent("after")])
    caplog.set_level(logging.WARNING, logger="django_taskq.history")
    start_recorder()
    wait_for(lambda: TaskRecord.objects.filter(task_id="after").exists())
    lone = TaskRecord.objects.get(task_id="lone-x\ufffdy")
    assert (lone.state, lone.dead_lettered, lone.args, lone.traceback, lone.worker) == (
        "FAILURE",
        True,
        "x\ufffdy",
        "x\ufffdy",
        "x\ufffdy",
    )
    nul = TaskRecord.objects.get(task_id="nul-a\ufffdb")
    assert (nul.args, nul.exception_type, nul.reason, nul.periodic_task_name) == (
        "a\ufffdb",
        "a\ufffdb",
        "a\ufffdb",
        "a\ufffdb",
    )
    assert TaskRecord.objects.filter(task_id="pair-\U0001f600").exists()  # a real pair stays
    assert not [r for r in caplog.records if "unexpected error" in r.getMessage()]
    assert not broker.exists(keys.events("has space"), keys.events("{tag}"))
