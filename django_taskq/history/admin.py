"""The task history in the Django admin: the list, and the row of a task by its id.

Rows are the recorder's (``TaskRecord``): nobody adds or edits them here.
Anyone with the view permission reads them; the actions (retry, revoke,
terminate) need the change permission, deleting needs the delete
permission. The change permission therefore means "may act on tasks",
never "may edit a row": the detail page is read-only for everyone. The
detail page is ``admin_detail.py``, the actions ``admin_actions.py``.

Built for a history of a million rows: the list reads no large column,
counts at most ``EstimatedCountPaginator.exact_limit`` rows (PostgreSQL
estimates beyond), filters list their choices through index probes,
the date hierarchy reads two index ends, and the detail page's workflow
lists are bounded. Only the search by name or arguments reads the table,
when asked to.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import URLPattern, path
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _

from django_taskq.history import display, filters
from django_taskq.history.admin_actions import RecordActions
from django_taskq.history.admin_detail import RecordDetail
from django_taskq.history.links import change_url, changelist_url
from django_taskq.history.models import TaskRecord
from django_taskq.history.paginator import EstimatedCountPaginator

#: Columns the list never reads: they can be large, and it shows none of them.
LIST_DEFERRED = (
    "args",
    "kwargs",
    "result",
    "traceback",
    "exception_message",
    "reason",
    "progress",
    "body",
)


class RecordChangeList(ChangeList):
    """The changelist, without reading the large columns of a row."""

    def get_queryset(self, request: HttpRequest, *args: Any, **kwargs: Any) -> QuerySet[Any]:
        return super().get_queryset(request, *args, **kwargs).defer(*LIST_DEFERRED)


@admin.register(TaskRecord)
class TaskRecordAdmin(RecordActions, RecordDetail):
    list_display = (
        "state_column",
        "task_name",
        "task_id_column",
        "queue",
        "worker",
        "sent_column",
        "runtime_column",
        "retries",
    )
    list_display_links = ("task_name",)
    list_filter = (
        filters.StateFilter,
        filters.TaskNameFilter,
        filters.QueueFilter,
        filters.WorkerFilter,
        filters.PriorityFilter,
        "dead_lettered",
        "sent_at",
        "finished_at",
        *filters.WORKFLOW_FILTERS,
    )
    date_hierarchy = "sent_at"
    search_fields = ("=task_id", "task_name", "args", "kwargs")
    search_help_text = _(
        "An exact task id, or text in the task name or its arguments (this reads the table)."
    )
    # The indexed order only: sorting a million rows by anything else reads them all.
    sortable_by = ("sent_column",)
    # Facet counts ("Show counts") would count every filter choice over the whole table.
    show_facets = admin.ShowFacets.NEVER
    list_per_page = 100
    list_max_show_all = 100  # "Show all" never reads more than a page (see the paginator)
    show_full_result_count = False
    paginator = EstimatedCountPaginator

    class Media:
        css = {"all": ("django_taskq/history.css",)}

    # -- permissions: read-only rows, actions under "change" ----------------------------

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: TaskRecord | None = None) -> bool:
        # "change" on the model gates the actions; no single row is ever editable.
        if obj is not None:
            return False
        return super().has_change_permission(request)

    # -- the list ------------------------------------------------------------------------

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return RecordChangeList

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[TaskRecord], search_term: str
    ) -> tuple[QuerySet[TaskRecord], bool]:
        term = search_term.strip()
        # An exact task id is answered by the unique index, without reading the table.
        if term and " " not in term and queryset.filter(task_id=term).exists():
            return queryset.filter(task_id=term), False
        return super().get_search_results(request, queryset, search_term)

    @admin.display(description=_("state"))
    def state_column(self, obj: TaskRecord) -> SafeString:
        return display.state_badge(obj.state, obj.dead_lettered)

    @admin.display(description=_("task id"))
    def task_id_column(self, obj: TaskRecord) -> SafeString:
        return display.short_id(obj.task_id)

    @admin.display(description=_("sent"), ordering="sent_at")
    def sent_column(self, obj: TaskRecord) -> str:
        return display.timestamp(obj.sent_at)

    @admin.display(description=_("runtime"))
    def runtime_column(self, obj: TaskRecord) -> str:
        return display.seconds(obj.runtime)

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        return super().changelist_view(
            request, {"title": _("Task history"), **(extra_context or {})}
        )

    # -- a row by task id ----------------------------------------------------------------

    def get_urls(self) -> list[URLPattern]:
        by_id = path(
            "by-task-id/<path:task_id>/",
            self.admin_site.admin_view(self.by_task_id_view),
            name="django_taskq_taskrecord_by_task_id",
        )
        return [by_id, *super().get_urls()]

    def by_task_id_view(self, request: HttpRequest, task_id: str) -> HttpResponse:
        """Redirect to the row of ``task_id``, or to the list filtered by it if not written yet.

        Messages that name a task just sent (Run now, retry) link here: the
        recorder writes its row moments later, so the link must work then.
        """
        if not self.has_view_permission(request):
            raise PermissionDenied
        pk = TaskRecord.objects.filter(task_id=task_id).values_list("pk", flat=True).first()
        if pk is not None:
            return HttpResponseRedirect(change_url(pk))
        self.message_user(
            request,
            _(
                "Task %(id)s has no history row yet. The recorder writes it within seconds of "
                "the task's first event; reload this page. If it never appears, history may be "
                "off (TASKQ_HISTORY) or the row was pruned."
            )
            % {"id": task_id},
            messages.INFO,
        )
        return HttpResponseRedirect(changelist_url(task_id=task_id))
