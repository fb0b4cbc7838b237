"""What the history says about each periodic task: its last run and its recent failures.

The PeriodicTask admin shows both on its list and its page, so a periodic
task whose every run fails or is dead-lettered (a misspelt task name) is
visible where it is configured, not only as a growing run count. They are
correlated subqueries over TaskRecord's (periodic_task_name, -sent_at)
index, added to the changelist's one query: each row costs a few index
probes and the page a constant number of queries, at 10 or 10,000 rows.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db.models import Count, IntegerField, OuterRef, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.http import urlencode
from django.utils.safestring import SafeString
from django.utils.translation import ngettext

from django_taskq.history import display, filters
from django_taskq.history.models import TaskRecord

#: How far back the failures column counts.
FAILURES_WINDOW = dt.timedelta(hours=24)


def failures_since(now: dt.datetime | None = None) -> dt.datetime:
    """Start of the failures column's window, to the second (so links repeat it exactly)."""
    return ((now or timezone.now()) - FAILURES_WINDOW).replace(microsecond=0)


def with_runs(queryset: QuerySet[Any], now: dt.datetime | None = None) -> QuerySet[Any]:
    """Annotate periodic tasks with ``last_run_pk``/``_state``/``_dead`` and ``failures_24h``."""
    runs = TaskRecord.objects.filter(
        periodic_task_name=OuterRef("name"), sent_at__isnull=False
    ).order_by("-sent_at")
    failures = (
        TaskRecord.objects.failed()
        .filter(periodic_task_name=OuterRef("name"), sent_at__gte=failures_since(now))
        .order_by()
        .values("periodic_task_name")
        .annotate(count=Count("pk"))
        .values("count")
    )
    annotated: QuerySet[Any] = queryset.annotate(
        last_run_pk=Subquery(runs.values("pk")[:1]),
        last_run_state=Subquery(runs.values("state")[:1]),
        last_run_dead=Subquery(runs.values("dead_lettered")[:1]),
        failures_24h=Coalesce(Subquery(failures), Value(0), output_field=IntegerField()),
    )
    return annotated


def last_run_html(task: Any) -> SafeString:
    """The last run's state as a badge linking to its history row; a dash before any run."""
    pk = getattr(task, "last_run_pk", None)
    if pk is None:
        return format_html("{}", "-")
    return format_html(
        '<a href="{}" class="taskq-last-run">{}</a>',
        reverse("admin:django_taskq_taskrecord_change", args=[pk]),
        display.state_badge(task.last_run_state, bool(task.last_run_dead)),
    )


def failures_url(name: str, now: dt.datetime | None = None) -> str:
    """The history list of ``name``'s failed, revoked or dead-lettered runs of the window."""
    query = urlencode(
        {
            "periodic_task_name": name,
            "state": filters.FAILURES,
            "sent_at__gte": timezone.localtime(failures_since(now)).isoformat(),
        }
    )
    return reverse("admin:django_taskq_taskrecord_changelist") + "?" + query


def failures_html(task: Any, now: dt.datetime | None = None) -> SafeString:
    """The failures of the last 24 h, linking to them; "0" quietly when there were none."""
    count = getattr(task, "failures_24h", None)
    if count is None:
        return format_html("{}", "-")
    if not count:
        return format_html('<span class="taskq-failures-none">{}</span>', 0)
    title = ngettext(
        "%(count)d failed, revoked or dead-lettered run in the last 24 hours",
        "%(count)d failed, revoked or dead-lettered runs in the last 24 hours",
        count,
    ) % {"count": count}
    return format_html(
        '<a href="{}" class="taskq-failures" title="{}">{}</a>',
        failures_url(task.name, now),
        title,
        count,
    )
