"""The read-only detail page of a history row: every field, its workflow, its progress.

A mixin of ``TaskRecordAdmin``: the fieldsets and the display methods they
name. Large texts (arguments, result, traceback, the message) are shown in
preformatted blocks; the workflow lists come from ``related.py``, read once
per page and bounded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _

from django_taskq.history import display
from django_taskq.history.links import change_url, changelist_url
from django_taskq.history.models import TaskRecord
from django_taskq.history.related import Neighbours, Related, related, root_of

if TYPE_CHECKING:
    RecordAdmin = admin.ModelAdmin[TaskRecord]
else:
    RecordAdmin = admin.ModelAdmin


class RecordDetail(RecordAdmin):
    """Fieldsets and display methods of the detail page (every field is read-only)."""

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
                "{}", _("Not kept (larger than TASKQ_HISTORY_BODY_LIMIT, or pickled).")
            )
        return display.kept_body(obj.body)

    @admin.display(description=_("periodic task"))
    def periodic_task_detail(self, obj: TaskRecord) -> SafeString:
        from django_taskq.models import PeriodicTask

        name = obj.periodic_task_name
        if not name:
            return format_html("{}", "-")
        pk = PeriodicTask.objects.filter(name=name).values_list("pk", flat=True).first()
        runs = changelist_url(periodic_task_name=name)
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
            change_url(row["pk"]),
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
                changelist_url(**lookup),
                _("All of them in the list…"),
            )
        return format_html('<ul class="taskq-related">{}{}</ul>', items, more)
