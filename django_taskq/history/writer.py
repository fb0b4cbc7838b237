"""Write a batch of events into ``TaskRecord`` rows: read the rows, fold, one bulk upsert.

A batch's events are folded per task (``fold.py``) into the rows the
database holds for those tasks, read in the same transaction, and written
back with one ``INSERT ... ON CONFLICT (task_id) DO UPDATE`` (Django's
``bulk_create(update_conflicts=True)``, on SQLite and PostgreSQL alike).

A database error leaves the batch unwritten (the transaction rolls back)
and raises, so the caller keeps the entries pending and tries again later,
except a row the database refuses for its data (``DataError``,
``IntegrityError``): that row is written alone, and dropped with a log line
if it still fails, so one bad row cannot hold back every event after it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db import DataError, IntegrityError, transaction

from django_taskq.history import fold
from django_taskq.history.models import TaskRecord
from django_taskq.history.reader import Entry

logger = logging.getLogger("django_taskq.history")

UPDATE_FIELDS = [*fold.COLUMNS, "updated_at"]


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
    except (DataError, IntegrityError) as exc:
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
        records = [TaskRecord(task_id=task_id, **rows[task_id]) for task_id in sorted(rows)]
        TaskRecord.objects.bulk_create(
            records,
            update_conflicts=True,
            unique_fields=["task_id"],
            update_fields=UPDATE_FIELDS,
        )
    return len(records)


def _upsert_one_by_one(pairs: list[tuple[str, dict[str, Any]]]) -> tuple[int, int]:
    by_task: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for queue, event in pairs:
        by_task.setdefault(event["id"], []).append((queue, event))
    written = refused = 0
    for task_id, events in by_task.items():
        try:
            written += _upsert(events)
        except (DataError, IntegrityError) as exc:
            refused += len(events)
            logger.error(
                "history recorder: dropped %d event(s) of task %s, its row was refused: %s",
                len(events),
                task_id,
                exc,
            )
    return written, refused
