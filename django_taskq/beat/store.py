"""The database side of beat: load entries, write back runs, sync settings.

Every function here may meet a dropped or closed connection (a database
restart, a failover, "connection already closed"). ``guarded()`` runs a
database step after ``close_old_connections()``; on any database error it
closes this thread's connection, so the next attempt reconnects, and raises
``DatabaseUnavailable`` for the caller's backoff.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from django.db import (
    DatabaseError,
    Error,
    InterfaceError,
    close_old_connections,
    connection,
    models,
)
from django.db.models import Case, F, Value, When

from django_taskq.beat.entry import Entry
from django_taskq.beat.scheduler import Pending
from django_taskq.exceptions import TaskqError

T = TypeVar("T")

_CHUNK = 500


class DatabaseUnavailable(TaskqError):
    """A database step failed; the connection was closed and will be reopened."""


def guarded(what: str, func: Callable[[], T]) -> T:
    """Run ``func`` on a healthy connection; wrap database errors."""
    try:
        close_old_connections()
        return func()
    except (Error, InterfaceError, DatabaseError) as exc:
        try:
            connection.close()
        except Error:
            pass
        raise DatabaseUnavailable(f"{what}: {type(exc).__name__}: {exc}") from exc


def load_entries(ids: Iterable[int] | None = None) -> list[Entry]:
    """Snapshot enabled periodic tasks (all, or those with the given ids)."""
    from django_taskq.models import PeriodicTask

    rows = PeriodicTask.objects.enabled().with_schedules()
    if ids is not None:
        rows = rows.filter(pk__in=list(ids))
    entries = []
    for row in rows.iterator(chunk_size=2000):
        entries.append(Entry.from_model(row))
    return entries


def ids_using(model: str, pk: int) -> list[int]:
    """Ids of periodic tasks that use schedule ``model`` row ``pk``."""
    from django_taskq.models import PeriodicTask

    field = {
        "intervalschedule": "interval_id",
        "crontabschedule": "crontab_id",
        "clockedschedule": "clocked_id",
    }[model]
    return list(PeriodicTask.objects.filter(**{field: pk}).values_list("pk", flat=True))


def write_back(pending: dict[int, Pending]) -> None:
    """Write last_run_at, total_run_count and one-off disabling, a few queries per batch.

    Uses CASE expressions, so 500 runs cost one UPDATE, not 500. Touches only
    the runtime fields, which wakes no beat.
    """
    from django_taskq.models import PeriodicTask

    items = [(pk, p) for pk, p in pending.items() if p.last_run_at is not None or p.runs]
    for start in range(0, len(items), _CHUNK):
        chunk = items[start : start + _CHUNK]
        last_whens = [When(pk=pk, then=Value(p.last_run_at)) for pk, p in chunk if p.last_run_at]
        count_whens = [When(pk=pk, then=Value(p.runs)) for pk, p in chunk if p.runs]
        updates: dict[str, Any] = {}
        if last_whens:
            updates["last_run_at"] = Case(*last_whens, default=F("last_run_at"))
        if count_whens:
            updates["total_run_count"] = F("total_run_count") + Case(*count_whens, default=Value(0))
        PeriodicTask.objects.filter(pk__in=[pk for pk, _ in chunk]).update(**updates)
    disable = [pk for pk, p in pending.items() if p.disable]
    if disable:
        # The leader dropped these entries already: skip the queryset's
        # "wake the leader" bump (the database trigger still counts it).
        models.QuerySet.update(PeriodicTask.objects.filter(pk__in=disable), enabled=False)
