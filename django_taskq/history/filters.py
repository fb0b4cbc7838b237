"""List filters of the task history admin, each bounded in cost on a large table.

- The state filter's choices are the known states (no query), plus "failed,
  revoked or dead-lettered" (the rows ``TaskRecord.objects.failed()`` finds).
- Task name, queue and worker list values found in the history through a
  loose index scan (``distinct.py``): at most ``limit`` index probes per
  page view, never a scan of the table. A value beyond the first ``limit``
  is still reachable by URL or search, and shows as chosen when it is.
- Priority lists 0-9, its fixed range (no query); each choice is read
  through the (priority, sent_at) index, as the other filters are.
- Workflow filters (parent, root, group, retry of, periodic task, task id)
  show only when a link on a detail page set them, so the page says what it
  is filtered by and offers "All" to clear it.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from django_taskq import states
from django_taskq.history.distinct import distinct_values
from django_taskq.history.models import TaskRecord, TaskRecordQuerySet

FAILURES = "failures"

_STATE_ORDER = (
    states.PENDING,
    states.RECEIVED,
    states.STARTED,
    states.RETRY,
    states.SUCCESS,
    states.FAILURE,
    states.REVOKED,
)


class StateFilter(admin.SimpleListFilter):
    title = _("state")
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        choices: list[tuple[str, Any]] = [(FAILURES, _("Failed, revoked or dead-lettered"))]
        choices += [(state, state) for state in _STATE_ORDER]
        value = self.value()
        if value and value != FAILURES and value not in _STATE_ORDER:
            choices.append((value, value))  # a custom state, e.g. PROGRESS
        return choices

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        if value == FAILURES:
            assert isinstance(queryset, TaskRecordQuerySet)
            return queryset.failed()
        if value:
            return queryset.filter(state=value)
        return queryset


class ValuesFilter(admin.SimpleListFilter):
    """Choices are the first ``limit`` distinct values of the column, found by index."""

    limit = 100

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        assert self.parameter_name is not None
        values = distinct_values(TaskRecord, self.parameter_name, self.limit)
        value = self.value()
        if value and value not in values:
            values.append(value)
        return [(v, v) for v in values]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        if value:
            return queryset.filter(**{str(self.parameter_name): value})
        return queryset


class TaskNameFilter(ValuesFilter):
    title = _("task name")
    parameter_name = "task_name"


class QueueFilter(ValuesFilter):
    title = _("queue")
    parameter_name = "queue"


class WorkerFilter(ValuesFilter):
    title = _("worker")
    parameter_name = "worker"


class PriorityFilter(admin.SimpleListFilter):
    """The priority a task was sent with: 0-9, 9 runs first (django-tasks-redis has one too)."""

    title = _("priority")
    parameter_name = "priority"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [(str(p), str(p)) for p in range(9, -1, -1)]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        if value is None or value == "":
            return queryset
        if not value.isdigit() or int(value) > 9:
            # A hand-written URL: the admin shows "?e=1" for a bad filter value.
            raise IncorrectLookupParameters(f"priority {value!r} is not 0-9")
        return queryset.filter(priority=int(value))


class ExactValueFilter(admin.SimpleListFilter):
    """Shown only while set (by a link): names the one value the list is filtered by."""

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        value = self.value()
        return [(value, value)] if value else []

    def has_output(self) -> bool:
        return bool(self.value())

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        if value:
            return queryset.filter(**{str(self.parameter_name): value})
        return queryset


class TaskIdFilter(ExactValueFilter):
    title = _("task id")
    parameter_name = "task_id"


class ParentFilter(ExactValueFilter):
    title = _("parent id")
    parameter_name = "parent_id"


class RootFilter(ExactValueFilter):
    """The steps of a workflow: the root task itself and every task that names it as root."""

    title = _("root id (workflow)")
    parameter_name = "root_id"

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        if value:
            return queryset.filter(Q(root_id=value) | Q(task_id=value))
        return queryset


class GroupFilter(ExactValueFilter):
    title = _("group id")
    parameter_name = "group_id"


class RetryOfFilter(ExactValueFilter):
    title = _("retry of")
    parameter_name = "retry_of"


class PeriodicTaskFilter(ExactValueFilter):
    title = _("periodic task")
    parameter_name = "periodic_task_name"


#: Filters that appear only when a link set them.
WORKFLOW_FILTERS = (
    TaskIdFilter,
    PeriodicTaskFilter,
    ParentFilter,
    RootFilter,
    GroupFilter,
    RetryOfFilter,
)
