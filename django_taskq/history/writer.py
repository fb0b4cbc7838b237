"""Write a batch of events into ``TaskRecord`` rows: read the rows, fold, one bulk upsert.

A batch's events are folded per task (``fold.py``) into the rows the
database holds for those tasks, read in the same transaction, and written
back with ``INSERT ... ON CONFLICT (task_id) DO UPDATE``. On SQLite that
is one statement, prepared once and stepped for every row
(``executemany``): Django's ``bulk_create(update_conflicts=True)`` compiles
every value of every row into SQL text first, which was most of the
recorder's time on SQLite (docs/benchmarks.md, "History recorder"); values
still go through their field's ``get_db_prep_save()`` where the database
needs them converted (dates, JSON). PostgreSQL keeps ``bulk_create``: Django
sends it the rows as arrays (``UNNEST``), which was as fast or faster than
both a statement per row and rows in one ``VALUES`` list, measured. Other
databases keep it too.

A database error leaves the batch unwritten (the transaction rolls back)
and raises, so the caller keeps the entries pending and tries again later,
except a row the database refuses for its data (``DataError``,
``IntegrityError``, or a driver's ``ValueError`` such as a string it cannot
encode, should one get past ``fold.storable()``): that row is written
alone, and dropped with a log line if it still fails, so one bad row
cannot hold back every event after it.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, cast

from django.db import DataError, IntegrityError, connections, router, transaction
from django.db.models import Field
from django.utils import timezone

from django_taskq.history import fold
from django_taskq.history.models import TaskRecord
from django_taskq.history.reader import Entry

logger = logging.getLogger("django_taskq.history")

UPDATE_FIELDS = [*fold.COLUMNS, "updated_at"]
#: Errors that mean the database, or its driver, refuses a row for its data.
REFUSED = (DataError, IntegrityError, ValueError)


@dataclass(frozen=True)
class Written:
    """What one batch did: events applied, rows written, events (or rows) dropped."""

    events: int
    rows: int
    dropped: int


def parse(entries: Iterable[Entry]) -> tuple[list[tuple[str, dict[str, Any]]], int]:
    """The (queue, event) pairs of ``entries``, and how many events could not be read."""
    pairs: list[tuple[str, dict[str, Any]]] = []
    dropped = 0
    for entry in entries:
        parsed = fold.Parsed()
        if entry.fields:
            fold.parse_entry(entry.fields, parsed)
        else:
            parsed.dropped = 1  # trimmed from the stream before it was read back
        dropped += parsed.dropped
        pairs.extend((entry.queue, event) for event in parsed.events)
    return pairs, dropped


def write(entries: list[Entry]) -> Written:
    """Fold the events of ``entries`` into their rows and upsert them (module doc)."""
    pairs, dropped = parse(entries)
    if not pairs:
        return Written(0, 0, dropped)
    try:
        rows = _upsert(pairs)
    except REFUSED as exc:
        logger.warning(
            "history recorder: a batch was refused (%s); writing its rows one by one", exc
        )
        rows, refused = _upsert_one_by_one(pairs)
        dropped += refused
    return Written(len(pairs), rows, dropped)


def _upsert(pairs: list[tuple[str, dict[str, Any]]]) -> int:
    ids = {event["id"] for _, event in pairs}
    with transaction.atomic():
        existing = {
            row.pop("task_id"): row
            for row in TaskRecord.objects.filter(task_id__in=ids).values("task_id", *fold.COLUMNS)
        }
        rows = fold.fold(pairs, existing)
        alias = router.db_for_write(TaskRecord)
        if connections[alias].vendor in PREPARED_VENDORS:
            _execute_upsert(alias, rows)
        else:
            records = [TaskRecord(task_id=task_id, **rows[task_id]) for task_id in sorted(rows)]
            TaskRecord.objects.bulk_create(
                records,
                update_conflicts=True,
                unique_fields=["task_id"],
                update_fields=UPDATE_FIELDS,
            )
    return len(rows)


#: Databases whose upsert is one statement stepped for every row (the module doc).
PREPARED_VENDORS = ("sqlite",)
#: Fields whose values the database takes as fold.py makes them (str, int, float, bool, None).
_AS_THEY_ARE = (
    "CharField",
    "TextField",
    "BooleanField",
    "FloatField",
    "PositiveIntegerField",
    "PositiveSmallIntegerField",
    "IntegerField",
)


@functools.cache
def _upsert_statement(alias: str) -> tuple[str, tuple[tuple[str, Field[Any, Any] | None], ...]]:
    """The one-row upsert for database ``alias``, and per COLUMNS value the field that converts it.

    The statement's values are the task id, the COLUMNS, then ``updated_at``.
    """
    quote = connections[alias].ops.quote_name
    meta = TaskRecord._meta
    fields = [cast("Field[Any, Any]", meta.get_field(name)) for name in ["task_id", *UPDATE_FIELDS]]
    columns = [quote(str(f.column)) for f in fields]
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in columns[1:])
    sql = (
        f"INSERT INTO {quote(meta.db_table)} ({', '.join(columns)}) "
        f"VALUES ({', '.join(['%s'] * len(columns))}) "
        f"ON CONFLICT ({columns[0]}) DO UPDATE SET {updates}"
    )
    converters = tuple(
        (name, None if field.get_internal_type() in _AS_THEY_ARE else field)
        for name, field in zip(fold.COLUMNS, fields[1:-1], strict=True)
    )
    return sql, converters


def _execute_upsert(alias: str, rows: dict[str, dict[str, Any]]) -> None:
    """Upsert ``rows`` (task id -> COLUMNS values): one statement, stepped for each row."""
    connection = connections[alias]
    sql, converters = _upsert_statement(alias)
    # updated_at: what auto_now sets in bulk_create, converted once for the batch.
    now = TaskRecord._meta.get_field("updated_at").get_db_prep_save(timezone.now(), connection)
    params = []
    for task_id in sorted(rows):
        row = rows[task_id]
        values: list[Any] = [task_id]
        for name, field in converters:
            value = row[name]
            if field is not None and value is not None:
                value = field.get_db_prep_save(value, connection)
            values.append(value)
        values.append(now)
        params.append(values)
    with connection.cursor() as cursor:
        cursor.executemany(sql, params)


def _upsert_one_by_one(pairs: list[tuple[str, dict[str, Any]]]) -> tuple[int, int]:
    by_task: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for queue, event in pairs:
        by_task.setdefault(event["id"], []).append((queue, event))
    written = refused = 0
    for task_id, events in by_task.items():
        try:
            written += _upsert(events)
        except REFUSED as exc:
            refused += len(events)
            logger.error(
                "history recorder: dropped %d event(s) of task %s, its row was refused: %s",
                len(events),
                task_id,
                exc,
            )
    return written, refused
