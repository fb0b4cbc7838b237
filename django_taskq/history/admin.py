"""The task history in the Django admin: list, read-only detail page, retry and revoke.

Rows are the recorder's (``TaskRecord``): nobody adds or edits them here.
Anyone with the view permission reads them; the actions (retry, revoke,
terminate) need the change permission, deleting needs the delete
permission. The change permission therefore means "may act on tasks",
never "may edit a row": the detail page is read-only for everyone.

Built for a history of a million rows: the list reads no large column,
counts at most ``EstimatedCountPaginator.exact_limit`` rows (PostgreSQL
estimates beyond), filters list their choices through index probes,
the date hierarchy reads two index ends, and the detail page's workflow
lists are bounded. Only the search by name or arguments reads the table,
when asked to.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from django.contrib import admin, messages
from django.contrib.admin.actions import delete_selected
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from django_taskq import states
from django_taskq.history import display, filters
from django_taskq.history.models import TaskRecord
from django_taskq.history.paginator import EstimatedCountPaginator
from django_taskq.history.related import Neighbours, Related, related, root_of
from django_taskq.history.resend import resend

if TYPE_CHECKING:
    RecordAdmin = admin.ModelAdmin[TaskRecord]
else:
    RecordAdmin = admin.ModelAdmin

#: Most rows one action (retry, revoke, terminate, delete) acts on.
ACTION_LIMIT = 1000
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


def record_url(task_id: str) -> str:
    """The admin URL that shows ``task_id``'s history row (once the recorder wrote it)."""
    return reverse("admin:django_taskq_taskrecord_by_task_id", args=[task_id])


def task_links(task_ids: Iterable[str], shown: int = 20) -> SafeString:
    """Task ids as links to their history rows, the first ``shown`` of them."""
    ids = list(task_ids)
    links = format_html_join(", ", '<a href="{}">{}</a>', ((record_url(i), i) for i in ids[:shown]))
    if len(ids) > shown:
        return format_html("{} {}", links, _("and %(count)d more") % {"count": len(ids) - shown})
    return links


class RecordChangeList(ChangeList):
    """The changelist, without reading the large columns of a row."""

    def get_queryset(self, request: HttpRequest, *args: Any, **kwargs: Any) -> QuerySet[Any]:
        return super().get_queryset(request, *args, **kwargs).defer(*LIST_DEFERRED)


@admin.register(TaskRecord)
class TaskRecordAdmin(RecordAdmin):
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
    actions = ("retry_tasks", "revoke_tasks", "terminate_tasks", "delete_selected")
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "task_id",
                    "task_name",
                    "state_detail",
                    "dead_lettered",
                    "progress_detail",
                    "reason",
                    "queue",
                    "priority",
                    "worker",
                    "retries",
                    "delivery_count",
                )
            },
        ),
        (_("Call and result"), {"fields": ("args_detail", "kwargs_detail", "result_detail")}),
        (
            _("Failure"),
            {"fields": ("exception_type", "exception_message", "traceback_detail")},
        ),
        (
            _("Timings"),
            {
                "fields": (
                    "sent_detail",
                    "eta_detail",
                    "expires_detail",
                    "received_detail",
                    "started_detail",
                    "finished_detail",
                    "runtime_detail",
                    "wait_detail",
                    "updated_detail",
                )
            },
        ),
        (
            _("Workflow"),
            {
                "fields": (
                    "periodic_task_detail",
                    "parent_detail",
                    "root_detail",
                    "children_detail",
                    "group_detail",
                    "workflow_detail",
                    "retry_of_detail",
                    "retried_as_detail",
                )
            },
        ),
        (_("Message as sent"), {"classes": ("collapse",), "fields": ("body_detail",)}),
    )
    readonly_fields = (
        *fieldsets[0][1]["fields"],
        *fieldsets[1][1]["fields"],
        *fieldsets[2][1]["fields"],
        *fieldsets[3][1]["fields"],
        *fieldsets[4][1]["fields"],
        *fieldsets[5][1]["fields"],
    )

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

    @admin.display(description=_("state"), ordering="state")
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

    # -- the detail page -----------------------------------------------------------------

    @admin.display(description=_("state"))
    def state_detail(self, obj: TaskRecord) -> SafeString:
        return display.state_badge(obj.state, obj.dead_lettered)

    @admin.display(description=_("progress"))
    def progress_detail(self, obj: TaskRecord) -> SafeString:
        return display.progress_block(obj.progress, obj.state)

    @admin.display(description=_("positional arguments"))
    def args_detail(self, obj: TaskRecord) -> SafeString:
        return display.preformatted(obj.args)

    @admin.display(description=_("keyword arguments"))
    def kwargs_detail(self, obj: TaskRecord) -> SafeString:
        return display.preformatted(obj.kwargs)

    @admin.display(description=_("result"))
    def result_detail(self, obj: TaskRecord) -> SafeString:
        return display.preformatted(obj.result)

    @admin.display(description=_("traceback"))
    def traceback_detail(self, obj: TaskRecord) -> SafeString:
        return display.preformatted(obj.traceback, "taskq-traceback")

    @admin.display(description=_("sent"))
    def sent_detail(self, obj: TaskRecord) -> str:
        return display.timestamp(obj.sent_at, precise=True)

    @admin.display(description=_("ETA"))
    def eta_detail(self, obj: TaskRecord) -> str:
        return display.timestamp(obj.eta, precise=True)

    @admin.display(description=_("expires"))
    def expires_detail(self, obj: TaskRecord) -> str:
        return display.timestamp(obj.expires, precise=True)

    @admin.display(description=_("received"))
    def received_detail(self, obj: TaskRecord) -> str:
        return display.timestamp(obj.received_at, precise=True)

    @admin.display(description=_("started"))
    def started_detail(self, obj: TaskRecord) -> str:
        return display.timestamp(obj.started_at, precise=True)

    @admin.display(description=_("finished"))
    def finished_detail(self, obj: TaskRecord) -> str:
        return display.timestamp(obj.finished_at, precise=True)

    @admin.display(description=_("updated"))
    def updated_detail(self, obj: TaskRecord) -> str:
        return display.timestamp(obj.updated_at, precise=True)

    @admin.display(description=_("runtime"))
    def runtime_detail(self, obj: TaskRecord) -> str:
        return display.seconds(obj.runtime)

    @admin.display(description=_("wait"))
    def wait_detail(self, obj: TaskRecord) -> str:
        return display.seconds(obj.wait_time)

    @admin.display(description=_("message as sent"))
    def body_detail(self, obj: TaskRecord) -> SafeString:
        if not obj.body:
            return format_html(
                "{}", _("Not kept (larger than TASKQ_HISTORY_BODY_LIMIT, or not JSON).")
            )
        return display.preformatted(display.pretty_json(obj.body))

    @admin.display(description=_("periodic task"))
    def periodic_task_detail(self, obj: TaskRecord) -> SafeString:
        from django_taskq.models import PeriodicTask

        name = obj.periodic_task_name
        if not name:
            return format_html("{}", "-")
        pk = PeriodicTask.objects.filter(name=name).values_list("pk", flat=True).first()
        runs = self._changelist_url(periodic_task_name=name)
        if pk is None:
            return format_html(
                '{} ({}) · <a href="{}">{}</a>', name, _("deleted"), runs, _("all its runs")
            )
        url = reverse("admin:django_taskq_periodictask_change", args=[pk])
        return format_html(
            '<a href="{}">{}</a> · <a href="{}">{}</a>', url, name, runs, _("all its runs")
        )

    @admin.display(description=_("parent"))
    def parent_detail(self, obj: TaskRecord) -> SafeString:
        return self._one(obj, obj.parent_id)

    @admin.display(description=_("root (first task of its workflow)"))
    def root_detail(self, obj: TaskRecord) -> SafeString:
        if not obj.root_id or obj.root_id == obj.task_id:
            return format_html("{}", _("This task."))
        return self._one(obj, obj.root_id)

    @admin.display(description=_("retry of"))
    def retry_of_detail(self, obj: TaskRecord) -> SafeString:
        return self._one(obj, obj.retry_of)

    @admin.display(description=_("children (tasks it sent)"))
    def children_detail(self, obj: TaskRecord) -> SafeString:
        return self._many(self._related(obj).children, parent_id=obj.task_id)

    @admin.display(description=_("other members of its group or chord"))
    def group_detail(self, obj: TaskRecord) -> SafeString:
        if not obj.group_id:
            return format_html("{}", "-")
        return format_html(
            "<code>{}</code>{}",
            obj.group_id,
            self._many(self._related(obj).group, group_id=obj.group_id),
        )

    @admin.display(description=_("steps of its workflow (same root)"))
    def workflow_detail(self, obj: TaskRecord) -> SafeString:
        return self._many(self._related(obj).workflow, root_id=root_of(obj))

    @admin.display(description=_("retried as"))
    def retried_as_detail(self, obj: TaskRecord) -> SafeString:
        return self._many(self._related(obj).retries, retry_of=obj.task_id)

    def _related(self, obj: TaskRecord) -> Related:
        found: Related | None = getattr(obj, "_taskq_related", None)
        if found is None:
            found = related(obj)
            obj._taskq_related = found  # type: ignore[attr-defined]
        return found

    def _one(self, obj: TaskRecord, task_id: str) -> SafeString:
        if not task_id:
            return format_html("{}", "-")
        row = self._related(obj).row(task_id)
        if row is None:
            return format_html(
                "<code>{}</code> ({})", task_id, _("no history row: pruned, or not recorded")
            )
        return self._row_html(row)

    def _row_html(self, row: dict[str, Any]) -> SafeString:
        return format_html(
            '{} <a href="{}">{}</a> <code>{}</code>',
            display.state_badge(row["state"], row["dead_lettered"]),
            reverse("admin:django_taskq_taskrecord_change", args=[row["pk"]]),
            row["task_name"],
            row["task_id"],
        )

    def _many(self, found: Neighbours, **lookup: str) -> SafeString:
        if not found.rows:
            return format_html("{}", "-")
        items = format_html_join("", "<li>{}</li>", ((self._row_html(r),) for r in found.rows))
        more = ""
        if found.more:
            more = format_html(
                '<li><a href="{}">{}</a></li>',
                self._changelist_url(**lookup),
                _("All of them in the list…"),
            )
        return format_html('<ul class="taskq-related">{}{}</ul>', items, more)

    def _changelist_url(self, **lookup: str) -> str:
        return reverse("admin:django_taskq_taskrecord_changelist") + "?" + urlencode(lookup)

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
            return HttpResponseRedirect(reverse("admin:django_taskq_taskrecord_change", args=[pk]))
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
        return HttpResponseRedirect(self._changelist_url(task_id=task_id))

    # -- actions -------------------------------------------------------------------------

    @admin.action(description=_("Delete selected %(verbose_name_plural)s"), permissions=["delete"])
    def delete_selected(
        self, request: HttpRequest, queryset: QuerySet[TaskRecord]
    ) -> HttpResponse | None:
        """Django's "delete selected" (same name, so its confirmation posts back here), bounded.

        Its confirmation page lists every row and its log writes an entry per
        row: fine for a thousand, not for "select all" over a million.
        Retention prunes old rows in batches instead.
        """
        if queryset[: ACTION_LIMIT + 1].count() > ACTION_LIMIT:
            self.message_user(
                request,
                _(
                    "Select at most %(limit)d tasks to delete; history retention prunes old "
                    "rows by itself."
                )
                % {"limit": ACTION_LIMIT},
                messages.ERROR,
            )
            return None
        response: HttpResponse | None = delete_selected(self, request, queryset)
        return response

    def _selected(
        self, request: HttpRequest, queryset: QuerySet[TaskRecord], *fields: str
    ) -> list[TaskRecord] | None:
        rows = list(queryset.only("task_id", "state", "dead_lettered", *fields)[: ACTION_LIMIT + 1])
        if len(rows) > ACTION_LIMIT:
            self.message_user(
                request,
                _("Select at most %(limit)d tasks for this action; narrow the list with filters.")
                % {"limit": ACTION_LIMIT},
                messages.ERROR,
            )
            return None
        return rows

    @admin.action(
        description=_("Retry selected failed, revoked or dead-lettered tasks"),
        permissions=["change"],
    )
    def retry_tasks(self, request: HttpRequest, queryset: QuerySet[TaskRecord]) -> None:
        rows = self._selected(request, queryset, "body")
        if rows is None:
            return
        report = resend(rows)
        if report.sent:
            self.message_user(
                request,
                format_html(
                    "{} {}",
                    ngettext(
                        "Sent %(count)d task again as a new task:",
                        "Sent %(count)d tasks again as new tasks:",
                        len(report.sent),
                    )
                    % {"count": len(report.sent)},
                    task_links(r.new_id for r in report.sent),
                ),
                messages.SUCCESS,
            )
        for refused in report.refused:
            self.message_user(
                request,
                format_html(
                    '{} <a href="{}">{}</a>: {}',
                    _("Not retried:"),
                    record_url(refused.task_id),
                    refused.task_id,
                    refused.reason,
                ),
                messages.WARNING,
            )
        if report.error is not None:
            self.message_user(
                request,
                _("Redis could not be reached, so %(count)d task(s) were not sent: %(error)s")
                % {"count": len(report.unsent), "error": report.error},
                messages.ERROR,
            )

    @admin.action(description=_("Revoke selected tasks"), permissions=["change"])
    def revoke_tasks(self, request: HttpRequest, queryset: QuerySet[TaskRecord]) -> None:
        self._revoke(request, queryset, terminate=False)

    @admin.action(
        description=_("Revoke selected tasks and terminate those running"),
        permissions=["change"],
    )
    def terminate_tasks(self, request: HttpRequest, queryset: QuerySet[TaskRecord]) -> None:
        self._revoke(request, queryset, terminate=True)

    def _revoke(
        self, request: HttpRequest, queryset: QuerySet[TaskRecord], terminate: bool
    ) -> None:
        from django_taskq import control
        from django_taskq.exceptions import BrokerUnavailable

        rows = self._selected(request, queryset)
        if rows is None:
            return
        finished = [r for r in rows if r.state in states.READY_STATES or r.dead_lettered]
        done = {r.task_id for r in finished}
        ids = [r.task_id for r in rows if r.task_id not in done]
        if ids:
            try:
                control.revoke(ids, terminate=terminate)
            except BrokerUnavailable as exc:
                self.message_user(request, str(exc), messages.ERROR)
                return
            message = ngettext("Revoked %(count)d task:", "Revoked %(count)d tasks:", len(ids)) % {
                "count": len(ids)
            }
            self.message_user(
                request, format_html("{} {}", message, task_links(ids)), messages.SUCCESS
            )
            running = sum(1 for r in rows if r.state == states.STARTED)
            if terminate and running:
                self.message_user(
                    request,
                    ngettext(
                        "%(count)d of them was running (by its record): its worker kills it.",
                        "%(count)d of them were running (by their records): their workers "
                        "kill them.",
                        running,
                    )
                    % {"count": running},
                    messages.INFO,
                )
        if finished:
            self.message_user(
                request,
                format_html(
                    "{} {}",
                    ngettext(
                        "%(count)d task had finished already and was left alone:",
                        "%(count)d tasks had finished already and were left alone:",
                        len(finished),
                    )
                    % {"count": len(finished)},
                    task_links(r.task_id for r in finished),
                ),
                messages.WARNING,
            )
