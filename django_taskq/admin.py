"""Admin for periodic tasks and their schedules.

Built to stay fast with 10,000 periodic tasks: the changelist joins its
schedules (``list_select_related``, no per-row queries), schedules are
picked with autocomplete widgets rather than a dropdown of every row, and
the cron description and next run times are computed in Python. A wrong
call (arguments that do not fit the task's signature) is caught in the
form when the task is registered in the web process, and a task name that
neither a worker nor the web process has registered is refused unless the
user ticks that it is intended (``beat/task_names.py``). Each periodic task
shows its last run's state and its failures of the last 24 hours from the
task history (``history/periodic.py``: subqueries in the list's one query),
and "Run now" links each task it sent to its history row. Rows that come
from TASKQ_BEAT_SCHEDULE are read-only here, with a note saying why.

The task history's own admin (TaskRecord) is in ``history/admin.py``,
registered by importing it here.
"""

from __future__ import annotations

import zoneinfo
from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext, pgettext_lazy

from django_taskq.arguments import task_call_error
from django_taskq.beat.task_names import is_registered
from django_taskq.exceptions import BrokerUnavailable
from django_taskq.history import admin as history_admin  # noqa: F401 - registers TaskRecordAdmin
from django_taskq.history import periodic as history
from django_taskq.history.links import changelist_url, record_url
from django_taskq.models import ClockedSchedule, CrontabSchedule, IntervalSchedule, PeriodicTask
from django_taskq.registry import registry

# Django's classes are generic only to type checkers (no django_stubs_ext at run time).
if TYPE_CHECKING:
    TaskForm = forms.ModelForm[PeriodicTask]
    CrontabForm = forms.ModelForm[CrontabSchedule]
    TaskAdmin = admin.ModelAdmin[PeriodicTask]
    IntervalAdmin = admin.ModelAdmin[IntervalSchedule]
    CrontabAdmin = admin.ModelAdmin[CrontabSchedule]
    ClockedAdmin = admin.ModelAdmin[ClockedSchedule]
else:
    TaskForm = CrontabForm = forms.ModelForm
    TaskAdmin = IntervalAdmin = CrontabAdmin = ClockedAdmin = admin.ModelAdmin


class DatalistInput(forms.TextInput):
    """A text input offering suggestions (an HTML datalist) but accepting any text."""

    def __init__(self, options: Any, attrs: dict[str, Any] | None = None) -> None:
        super().__init__(attrs)
        self.options = options  # a callable, so registered tasks are read per request

    def render(
        self, name: str, value: Any, attrs: dict[str, Any] | None = None, renderer: Any = None
    ) -> Any:
        list_id = f"{(attrs or {}).get('id') or name}_options"
        attrs = {**(attrs or {}), "list": list_id, "autocomplete": "off"}
        html = super().render(name, value, attrs, renderer)
        options = format_html_join("", '<option value="{}">', ((o,) for o in self.options()))
        return format_html('{}<datalist id="{}">{}</datalist>', html, list_id, options)


class PeriodicTaskForm(TaskForm):
    allow_unregistered = forms.BooleanField(
        label=_("Save although no worker has registered this task"),
        required=False,
        help_text=_(
            "Tick only if the name is right and its workers are not running yet: a periodic "
            "task whose task no worker knows is dead-lettered at every run."
        ),
    )

    class Meta:
        model = PeriodicTask
        fields = "__all__"
        widgets = {
            "task": DatalistInput(registry.names, attrs={"size": 60}),
            "args": forms.Textarea(attrs={"rows": 2, "cols": 60}),
            "kwargs": forms.Textarea(attrs={"rows": 3, "cols": 60}),
            "headers": forms.Textarea(attrs={"rows": 2, "cols": 60}),
        }

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        args = cleaned.get("args")
        kwargs = cleaned.get("kwargs")
        if args is None:
            args = cleaned["args"] = [] if "args" not in self.errors else None
        if kwargs is None:
            kwargs = cleaned["kwargs"] = {} if "kwargs" not in self.errors else None
        if args is not None and not isinstance(args, list):
            self.add_error("args", _('Enter a JSON list, e.g. [1, "a"].'))
            args = None
        if kwargs is not None and not isinstance(kwargs, dict):
            self.add_error("kwargs", _('Enter a JSON object, e.g. {"days": 7}.'))
            kwargs = None
        headers = cleaned.get("headers")
        if headers is None and "headers" not in self.errors:
            cleaned["headers"] = {}
        elif headers is not None and not isinstance(headers, dict):
            self.add_error("headers", _("Enter a JSON object."))
        task = cleaned.get("task")
        if task and not cleaned.get("allow_unregistered"):
            self._check_registered(task)
        if task and args is not None and kwargs is not None:
            problem = task_call_error(task, args, kwargs)
            if problem:
                field = "kwargs" if "keyword" in problem else "args"
                self.add_error(
                    field,
                    _("These arguments do not fit the task: %(problem)s") % {"problem": problem},
                )
        return cleaned

    def _check_registered(self, task: str) -> None:
        """Refuse a task name nobody registered: every run of it would be dead-lettered."""
        try:
            if is_registered(task):
                return
        except BrokerUnavailable as exc:
            self.add_error(
                "task",
                _(
                    "Could not read which tasks the workers registered (%(error)s). Tick "
                    '"Save although no worker has registered this task" to save anyway.'
                )
                % {"error": exc},
            )
            return
        self.add_error(
            "task",
            _(
                "No worker has registered a task named %(task)s, and this web process does "
                "not know it either: check the spelling. Every run of it would be "
                "dead-lettered. If the name is right (its workers are not running yet), tick "
                '"Save although no worker has registered this task".'
            )
            % {"task": task},
        )


class ScheduleKindFilter(admin.SimpleListFilter):
    title = _("schedule type")
    parameter_name = "schedule"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [("interval", _("Interval")), ("crontab", _("Crontab")), ("clocked", _("Clocked"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        if value in {"interval", "crontab", "clocked"}:
            return queryset.filter(**{f"{value}__isnull": False})
        return queryset


class RecentFailuresFilter(admin.SimpleListFilter):
    """Periodic tasks with a failed, revoked or dead-lettered run in the last 24 hours."""

    title = _("failures in the last 24 h")
    parameter_name = "failing"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        # With a context: a plain "None" would stand in for Django's own everywhere.
        return [
            ("yes", pgettext_lazy("failures in the last 24 h", "Some")),
            ("no", pgettext_lazy("failures in the last 24 h", "None")),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() == "yes":
            return queryset.filter(failures_24h__gt=0)
        if self.value() == "no":
            return queryset.filter(failures_24h=0)
        return queryset


@admin.register(PeriodicTask)
class PeriodicTaskAdmin(TaskAdmin):
    form = PeriodicTaskForm
    list_display = (
        "name",
        "enabled",
        "task",
        "schedule_column",
        "last_run_at",
        "last_run_column",
        "failures_column",
        "total_run_count",
        "source",
    )
    list_display_links = ("name",)
    list_filter = ("enabled", ScheduleKindFilter, RecentFailuresFilter, "source", "one_off")
    search_fields = ("name", "task", "description")
    list_select_related = ("interval", "crontab", "clocked")
    autocomplete_fields = ("interval", "crontab", "clocked")
    list_per_page = 100
    show_full_result_count = False  # one COUNT fewer on filtered pages of big tables
    ordering = ("name",)
    actions = ("enable_tasks", "disable_tasks", "run_now")
    readonly_fields = (
        "schedule_description",
        "next_run_times",
        "last_run_at",
        "last_run_detail",
        "failures_detail",
        "total_run_count",
        "source",
        "date_changed",
    )
    fieldsets = (
        (None, {"fields": ("name", "task", "allow_unregistered", "enabled", "description")}),
        (
            _("Schedule"),
            {
                "description": _("Choose exactly one: an interval, a crontab or a clocked time."),
                "fields": (
                    "interval",
                    "crontab",
                    "clocked",
                    "start_time",
                    "expires",
                    "one_off",
                    "max_staleness",
                    "schedule_description",
                    "next_run_times",
                ),
            },
        ),
        (_("Arguments"), {"fields": ("args", "kwargs")}),
        (
            _("Sending options"),
            {"fields": ("queue", "priority", "headers", "expire_seconds")},
        ),
        (
            _("State"),
            {
                "fields": (
                    "last_run_at",
                    "last_run_detail",
                    "failures_detail",
                    "total_run_count",
                    "source",
                    "date_changed",
                )
            },
        ),
    )

    class Media:
        css = {"all": ("django_taskq/history.css",)}

    def get_queryset(self, request: HttpRequest) -> QuerySet[PeriodicTask]:
        # The last run and recent failures, from the history, in the list's one query.
        return history.with_runs(super().get_queryset(request))

    def get_fieldsets(self, request: HttpRequest, obj: PeriodicTask | None = None) -> Any:
        fieldsets = super().get_fieldsets(request, obj)
        if obj is not None and not self.has_change_permission(request, obj):
            # Read-only page: the form's "save although unregistered" box means nothing there.
            return [
                (
                    title,
                    {**opts, "fields": [f for f in opts["fields"] if f != "allow_unregistered"]},
                )
                for title, opts in fieldsets
            ]
        return fieldsets

    # -- columns and read-only fields ------------------------------------------------

    @admin.display(description=_("schedule"))
    def schedule_column(self, obj: PeriodicTask) -> str:
        return obj.schedule_display

    @admin.display(description=_("last run's state"))
    def last_run_column(self, obj: PeriodicTask) -> SafeString:
        return history.last_run_html(obj)

    @admin.display(description=_("failures (24 h)"))
    def failures_column(self, obj: PeriodicTask) -> SafeString:
        return history.failures_html(obj)

    @admin.display(description=_("last run's state"))
    def last_run_detail(self, obj: PeriodicTask) -> SafeString:
        if obj.pk is None:
            return format_html("{}", "-")
        if getattr(obj, "last_run_pk", None) is None:
            return format_html("{}", _("No run in the task history yet."))
        return format_html(
            '{} · <a href="{}">{}</a>',
            history.last_run_html(obj),
            changelist_url(periodic_task_name=obj.name),
            _("all its runs"),
        )

    @admin.display(description=_("failures in the last 24 hours"))
    def failures_detail(self, obj: PeriodicTask) -> SafeString:
        if obj.pk is None:
            return format_html("{}", "-")
        return history.failures_html(obj)

    @admin.display(description=_("schedule description"))
    def schedule_description(self, obj: PeriodicTask) -> str:
        if obj.pk is None or obj.schedule_model is None:
            return "-"
        return obj.schedule_display

    @admin.display(description=_("next 5 run times"))
    def next_run_times(self, obj: PeriodicTask) -> str:
        if obj.pk is None or obj.schedule_model is None:
            return "-"
        if not obj.enabled:
            return str(_("None: this periodic task is disabled."))
        runs = obj.upcoming(5)
        if not runs:
            return str(_("None: it has no runs left (expired, one-off done or clocked time past)."))
        return format_html(
            '<ol class="taskq-next-runs">{}</ol>',
            format_html_join(
                "",
                '<li><time datetime="{}">{}</time></li>',
                ((run.isoformat(), run.strftime("%Y-%m-%d %H:%M:%S %Z (UTC%z)")) for run in runs),
            ),
        )

    # -- settings-owned rows are read-only ---------------------------------------------

    def has_change_permission(self, request: HttpRequest, obj: PeriodicTask | None = None) -> bool:
        if obj is not None and obj.is_settings_owned:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: PeriodicTask | None = None) -> bool:
        if obj is not None and obj.is_settings_owned:
            return False
        return super().has_delete_permission(request, obj)

    def render_change_form(
        self, request: HttpRequest, context: dict[str, Any], *args: Any, **kwargs: Any
    ) -> Any:
        obj = context.get("original")
        context["settings_owned"] = obj is not None and obj.is_settings_owned
        return super().render_change_form(request, context, *args, **kwargs)

    def save_model(self, request: HttpRequest, obj: PeriodicTask, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if obj.task not in registry:
            self.message_user(
                request,
                _(
                    "Task %(task)s is not registered in this web process, so its arguments "
                    "could not be checked. That is fine if only the workers import it."
                )
                % {"task": obj.task},
                messages.WARNING,
            )

    # -- actions -------------------------------------------------------------------------

    def _editable(self, request: HttpRequest, queryset: QuerySet[PeriodicTask]) -> Any:
        skipped = queryset.filter(source=PeriodicTask.SOURCE_SETTINGS).count()
        if skipped:
            self.message_user(
                request,
                ngettext(
                    "%(count)d periodic task comes from TASKQ_BEAT_SCHEDULE and was left "
                    "unchanged; change it in settings.",
                    "%(count)d periodic tasks come from TASKQ_BEAT_SCHEDULE and were left "
                    "unchanged; change them in settings.",
                    skipped,
                )
                % {"count": skipped},
                messages.WARNING,
            )
        return queryset.exclude(source=PeriodicTask.SOURCE_SETTINGS)

    @admin.action(description=_("Enable selected periodic tasks"), permissions=["change"])
    def enable_tasks(self, request: HttpRequest, queryset: QuerySet[PeriodicTask]) -> None:
        count = self._editable(request, queryset).update(enabled=True)
        self.message_user(
            request,
            ngettext("%(count)d periodic task enabled.", "%(count)d periodic tasks enabled.", count)
            % {"count": count},
        )

    @admin.action(description=_("Disable selected periodic tasks"), permissions=["change"])
    def disable_tasks(self, request: HttpRequest, queryset: QuerySet[PeriodicTask]) -> None:
        count = self._editable(request, queryset).update(enabled=False)
        self.message_user(
            request,
            ngettext(
                "%(count)d periodic task disabled.", "%(count)d periodic tasks disabled.", count
            )
            % {"count": count},
        )

    @admin.action(description=_("Run selected periodic tasks now"), permissions=["change"])
    def run_now(self, request: HttpRequest, queryset: QuerySet[PeriodicTask]) -> None:
        from django_taskq.beat.dispatch import send_now
        from django_taskq.beat.entry import Entry

        sent: list[tuple[str, str]] = []
        for task in queryset.with_schedules():  # type: ignore[attr-defined]
            try:
                envelope = send_now(Entry.from_model(task).options)
            except Exception as exc:  # report each failure, send the rest
                self.message_user(
                    request,
                    _("Could not send %(name)s: %(error)s") % {"name": task.name, "error": exc},
                    messages.ERROR,
                )
                continue
            sent.append((task.name, envelope.id))
        if sent:
            # Each id links to its history row (written by the recorder moments later).
            runs = format_html_join(
                ", ",
                '{} (<a href="{}">{}</a>)',
                ((name, record_url(task_id), task_id) for name, task_id in sent),
            )
            self.message_user(
                request,
                format_html(
                    "{} {}",
                    ngettext("Sent %(count)d task:", "Sent %(count)d tasks:", len(sent))
                    % {"count": len(sent)},
                    runs,
                ),
            )


@admin.register(IntervalSchedule)
class IntervalScheduleAdmin(IntervalAdmin):
    list_display = ("__str__", "every", "period")
    list_filter = ("period",)
    search_fields = ("every", "period")
    ordering = ("period", "every")


class CrontabScheduleForm(CrontabForm):
    class Meta:
        model = CrontabSchedule
        fields = "__all__"
        widgets = {
            "timezone": DatalistInput(lambda: sorted(zoneinfo.available_timezones())),
        }


@admin.register(CrontabSchedule)
class CrontabScheduleAdmin(CrontabAdmin):
    form = CrontabScheduleForm
    list_display = ("__str__", "description", "timezone")
    list_filter = ("timezone",)
    search_fields = ("minute", "hour", "day_of_month", "month_of_year", "day_of_week", "timezone")
    readonly_fields = ("description", "next_run_times")
    fields = (
        "minute",
        "hour",
        "day_of_month",
        "month_of_year",
        "day_of_week",
        "timezone",
        "description",
        "next_run_times",
    )

    @admin.display(description=_("description"))
    def description(self, obj: CrontabSchedule) -> str:
        return obj.description if obj.pk else "-"

    @admin.display(description=_("next 5 run times"))
    def next_run_times(self, obj: CrontabSchedule) -> str:
        if obj.pk is None:
            return "-"
        from django.utils import timezone

        runs = obj.schedule.upcoming(timezone.now(), 5)
        return format_html(
            '<ol class="taskq-next-runs">{}</ol>',
            format_html_join(
                "",
                "<li>{}</li>",
                ((run.strftime("%Y-%m-%d %H:%M %Z (UTC%z)"),) for run in runs),
            ),
        )


@admin.register(ClockedSchedule)
class ClockedScheduleAdmin(ClockedAdmin):
    list_display = ("__str__", "clocked_time")
    search_fields = ("clocked_time",)
    date_hierarchy = "clocked_time"


# The live views of Redis (queues, dead letters, workers, dashboard) register themselves.
from django_taskq.monitor import admin as _monitor_admin  # noqa: E402,F401
