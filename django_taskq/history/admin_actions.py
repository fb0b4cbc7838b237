"""The history list's actions: retry, revoke, terminate, and a bounded delete.

A mixin of ``TaskRecordAdmin``. Each action needs a Django permission
(change to act on tasks, delete to delete rows), acts on at most
``ACTION_LIMIT`` rows, and reports what it did with links to the rows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.contrib import admin, messages
from django.contrib.admin.actions import delete_selected
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from django_taskq import states
from django_taskq.history.links import record_url, task_links
from django_taskq.history.models import TaskRecord
from django_taskq.history.resend import resend

if TYPE_CHECKING:
    RecordAdmin = admin.ModelAdmin[TaskRecord]
else:
    RecordAdmin = admin.ModelAdmin

#: Most rows one action (retry, revoke, terminate, delete) acts on.
ACTION_LIMIT = 1000


class RecordActions(RecordAdmin):
    """Retry, revoke, terminate and delete selected history rows."""

    actions = ("retry_tasks", "revoke_tasks", "terminate_tasks", "delete_selected")

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
