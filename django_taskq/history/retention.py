"""Retention: the recorder deletes history rows older than TASKQ_HISTORY_RETENTION days.

A row is old when the task was sent before the cut-off and did not finish
after it (a task sent long ago with a far ETA that ran yesterday stays); a
row without a send time goes by its end, or by its last write. Rows are
deleted in bounded batches (by primary key), so a first prune of a big
table never holds a long transaction or locks the table for the admin.
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
    """Delete up to ``batch * max_batches`` old rows; returns how many were deleted."""
    days = retention_days()
    if days is None:
        return 0
    cutoff = (now or timezone.now()) - dt.timedelta(days=days)
    deleted = 0
    for _ in range(max_batches):
        pks = list(
            TaskRecord.objects.filter(old_rows(cutoff))
            .order_by()
            .values_list("pk", flat=True)[:batch]
        )
        if not pks:
            break
        deleted += TaskRecord.objects.filter(pk__in=pks).delete()[0]
        if len(pks) < batch:
            break
    return deleted
