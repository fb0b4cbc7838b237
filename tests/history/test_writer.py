"""One batch, one upsert: rows read back from the database after real stream reads."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from django_taskq.history import writer
from django_taskq.history.models import TaskRecord
from django_taskq.history.reader import EventReader
from tests.history.helpers import T0, emit, ended, progress, sent, started

pytestmark = pytest.mark.django_db


def read_all(broker: Any) -> list[Any]:
    reader = EventReader(broker, budget=1_000_000, block_ms=10)
    reader.refresh()
    reader.backlog = False
    return reader.read()


def columns(task_id: str) -> dict[str, Any]:
    return TaskRecord.objects.filter(task_id=task_id).values().get() | {"id": 0, "updated_at": 0}


def test_a_batch_is_one_read_and_one_upsert(broker: Any) -> None:
    for n in range(50):
        emit(broker, "default", [sent(f"t{n}"), started(f"t{n}")], worker=None)
        emit(broker, "other", [ended("succeeded", f"t{n}", res=str(n))])
    entries = read_all(broker)
    assert len(entries) == 100
    with CaptureQueriesContext(connection) as queries:
        written = writer.write(entries)
    assert (written.events, written.rows, written.dropped) == (150, 50, 0)
    sqls = [q["sql"] for q in queries.captured_queries]
    statements = [sql.split()[0].upper() for sql in sqls]
    assert statements.count("SELECT") == 1, statements
    if connection.vendor in writer.PREPARED_VENDORS:
        # One row's statement, prepared once and stepped for each row (Django
        # logs an executemany() as "50 times: INSERT ...").
        upserts = [sql for sql in sqls if "INSERT INTO" in sql]
        assert len(upserts) == 1 and upserts[0].startswith("50 times: INSERT"), sqls
        assert "ON CONFLICT" in upserts[0]
    else:
        # Django's bulk upsert, cut where the database limits parameters.
        fields = [f for f in TaskRecord._meta.concrete_fields if not f.primary_key]
        per_insert = connection.ops.bulk_batch_size(fields, [TaskRecord()] * 50)
        assert statements.count("INSERT") == -(-50 // per_insert), statements
    row = TaskRecord.objects.get(task_id="t7")
    assert (row.state, row.result, row.queue, row.worker) == ("SUCCESS", "7", "default", "taskq@w1")


def test_replaying_a_batch_gives_the_same_rows(broker: Any) -> None:
    emit(broker, "default", [sent("a"), started("a"), progress("a", T0 + 1500, {"done": 1})])
    emit(broker, "default", [ended("failed", "a", exc="ValueError", msg="no", tb="tb")])
    entries = read_all(broker)
    writer.write(entries)
    before = columns("a")
    writer.write(entries)
    writer.write(list(reversed(entries)))
    assert columns("a") == before
    assert before["state"] == "FAILURE" and before["progress"] is None


def test_forward_only_across_batches_in_any_order(broker: Any) -> None:
    emit(broker, "default", [ended("succeeded", "a", res="1", w="taskq@w2")])
    emit(broker, "default", [started("a", w="taskq@w3")])
    emit(broker, "default", [progress("a", T0 + 1500, {"done": 1})])
    emit(broker, "default", [sent("a")], worker=None)
    for entry in read_all(broker):
        writer.write([entry])
    row = TaskRecord.objects.get(task_id="a")
    assert (row.state, row.worker, row.progress, row.args) == (
        "SUCCESS",
        "taskq@w2",
        None,
        "(2, 3)",
    )
    assert row.wait_time == 1.0


def test_unreadable_entries_are_counted_and_the_rest_written(broker: Any) -> None:
    broker.sadd("{taskq}:queues", "default")
    broker.xadd("{taskq:default}:events", {"e": "{broken"})
    broker.xadd("{taskq:default}:events", {"nothing": "here"})
    emit(broker, "default", [sent("ok"), {"k": "sent", "id": 5, "ts": 1}])
    written = writer.write(read_all(broker))
    assert (written.events, written.rows, written.dropped) == (1, 1, 3)
    assert TaskRecord.objects.filter(task_id="ok").exists()


def test_retention_in_bounded_batches_and_none_keeps_all(settings: Any) -> None:
    import datetime as dt

    from django.utils import timezone

    from django_taskq.history import retention

    old = timezone.now() - dt.timedelta(days=40)
    TaskRecord.objects.bulk_create(
        TaskRecord(task_id=f"o{n}", task_name="x", sent_at=old) for n in range(25)
    )
    TaskRecord.objects.create(task_id="orphan", task_name="x", finished_at=old)
    settings.TASKQ_HISTORY_RETENTION = None
    assert retention.prune() == 0
    settings.TASKQ_HISTORY_RETENTION = 30
    assert retention.prune(batch=10, max_batches=2) == 20
    assert retention.prune(batch=10, max_batches=2) == 6
    assert not TaskRecord.objects.exists()


def test_the_row_cap_deletes_the_oldest_rows_first(settings: Any) -> None:
    from django_taskq.history import retention

    TaskRecord.objects.bulk_create(TaskRecord(task_id=f"r{n}", task_name="x") for n in range(30))
    settings.TASKQ_HISTORY_RETENTION = None
    settings.TASKQ_HISTORY_MAX_ROWS = None
    assert retention.prune() == 0
    settings.TASKQ_HISTORY_MAX_ROWS = 12
    assert retention.prune(batch=5, max_batches=2) == 10  # bounded per pass
    assert retention.prune(batch=5, max_batches=10) == 8
    kept = sorted(TaskRecord.objects.values_list("task_id", flat=True), key=lambda t: int(t[1:]))
    assert kept == [f"r{n}" for n in range(18, 30)]
    assert retention.prune() == 0


def _rich_batch(broker: Any, prefix: str) -> None:
    """Events that fill every kind of column: dates, JSON, floats, ints, a flag, unicode."""
    a, b, c, d = (f"{prefix}-{name}" for name in "abcd")
    emit(
        broker,
        "default",
        [
            sent(a, eta=T0 + 60_000, exp=T0 + 120_000, pid="p-1", rid="r-1", grp="g-1"),
            started(a, w="taskq@w2"),
            sent(d),
            started(d),
            progress(d, T0 + 1500, {"done": 1, "of": [1, 2], "note": "héllo ✓"}),
            sent(b, a="('ünïcode',)", kw="{'x': 1.5}", pr=9),
            sent(c),
        ],
        worker=None,
    )
    emit(
        broker,
        "default",
        [
            ended("succeeded", a, res="{'ok': True}"),
            ended("failed", b, exc="ValueError", msg="bad ✗", tb="Traceback ...\n  line"),
            ended("dead", c, msg="it kept killing its worker", exc="WorkerLostError"),
        ],
    )


def test_the_prepared_upsert_stores_what_bulk_create_stores(
    broker: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The statement run per row and Django's bulk_create agree, column by column."""
    monkeypatch.setattr(writer, "PREPARED_VENDORS", ("sqlite", "postgresql"))
    _rich_batch(broker, "prepared")
    first = read_all(broker)
    writer.write(first)
    writer.write(first)  # the update half of the upsert, on rows that exist
    monkeypatch.setattr(writer, "PREPARED_VENDORS", ())
    broker.flushdb()
    _rich_batch(broker, "bulk")
    second = read_all(broker)
    writer.write(second)
    writer.write(second)
    for name in "abcd":
        prepared, bulk = columns(f"prepared-{name}"), columns(f"bulk-{name}")
        assert prepared.pop("task_id") == f"prepared-{name}"
        assert bulk.pop("task_id") == f"bulk-{name}"
        assert prepared == bulk, name
    row = TaskRecord.objects.get(task_id="prepared-d")
    assert row.progress == {"done": 1, "of": [1, 2], "note": "héllo ✓"}
    assert row.sent_at is not None and row.sent_at.tzinfo is not None
    assert row.updated_at is not None
    assert TaskRecord.objects.get(task_id="prepared-c").dead_lettered is True
