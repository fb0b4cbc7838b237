"""Retention: the recorder deletes rows older than TASKQ_HISTORY_RETENTION days,
and the oldest rows beyond TASKQ_HISTORY_MAX_ROWS.

A row is old when the task was sent before the cut-off and did not finish
after it (a task sent long ago with a far ETA that ran yesterday stays); a
row without a send time goes by its end, or by its last write. Rows are
deleted in bounded batches (by primary key), so a first prune of a big
table never holds a long transaction or locks the table for the admin.

The row cap counts by primary key, which follows the order the recorder
first wrote the rows: the row ``max_rows`` places below the newest key is
found with one index scan (no ``COUNT(*)`` of the table), and every key at
or below it goes, in the same bounded batches.
"""

from __future__ import annotations

import datetime as dt

from django.db.models import Q
from django.utils import timezone

from django_taskq.conf import taskq_settings
from django_taskq.history.models import TaskRecord

#: Rows deleted per statement, and statements per prune.
BATCH = 1000
MAX_BATCHES = 20


def retention_days() -> float | None:
    """TASKQ_HISTORY_RETENTION: days rows are kept, or None to keep them all."""
    days = taskq_settings.HISTORY_RETENTION
    return None if days is None else float(days)


def max_rows() -> int | None:
    """TASKQ_HISTORY_MAX_ROWS: rows kept at most, or None for no cap."""
    cap = taskq_settings.HISTORY_MAX_ROWS
    return None if cap is None else max(int(cap), 0)


def old_rows(cutoff: dt.datetime) -> Q:
    """Rows whose task was sent (or ended, or was last written) before ``cutoff``."""
    ended_before = Q(finished_at__isnull=True) | Q(finished_at__lt=cutoff)
    return (
        (Q(sent_at__lt=cutoff) & ended_before)
        | Q(sent_at__isnull=True, finished_at__lt=cutoff)
        | Q(sent_at__isnull=True, finished_at__isnull=True, updated_at__lt=cutoff)
    )


def prune(
    now: dt.datetime | None = None, batch: int = BATCH, max_batches: int = MAX_BATCHES
) -> int:
    """Delete up to ``batch * max_batches`` old rows and as many beyond the cap.

    Returns how many were deleted.
    """
    deleted = 0
    days = retention_days()
    if days is not None:
        cutoff = (now or timezone.now()) - dt.timedelta(days=days)
        deleted += _delete(Q(old_rows(cutoff)), batch, max_batches)
    cap = max_rows()
    if cap is not None:
        keep_from = TaskRecord.objects.order_by("-pk").values_list("pk", flat=True)[cap : cap + 1]
        beyond = list(keep_from)
        if beyond:
            deleted += _delete(Q(pk__lte=beyond[0]), batch, max_batches)
    return deleted


def purge_finished(days: float, now: dt.datetime | None = None) -> int:
    """Delete every row of a task that ended more than ``days`` days ago; how many went.

    For the purge/ endpoint and scripts that clear history on demand;
    TASKQ_HISTORY_RETENTION prunes by itself, a bounded number per round.
    """
    cutoff = (now or timezone.now()) - dt.timedelta(days=days)
    deleted = 0
    while True:
        step = _delete(Q(finished_at__lt=cutoff), BATCH, MAX_BATCHES)
        deleted += step
        if step < BATCH * MAX_BATCHES:
            return deleted


def _delete(rows: Q, batch: int, max_batches: int) -> int:
    """Delete the rows ``rows`` selects, ``batch`` primary keys per statement."""
    deleted = 0
    for _ in range(max_batches):
        pks = list(TaskRecord.objects.filter(rows).order_by().values_list("pk", flat=True)[:batch])
        if not pks:
            break
        deleted += TaskRecord.objects.filter(pk__in=pks).delete()[0]
        if len(pks) < batch:
            break
    return deleted
