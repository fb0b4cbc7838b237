"""Periodic tasks and their schedules, edited in the Django admin.

A ``PeriodicTask`` names a task, its arguments and sending options, and
exactly one schedule: an ``IntervalSchedule``, a ``CrontabSchedule`` or a
``ClockedSchedule`` (a database CheckConstraint enforces "exactly one").
The beat leader loads enabled rows, computes due times in Python and sends
each run once. Every change made through the ORM wakes the leader (see
``django_taskq.beat.notify``).
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from django_taskq import schedules
from django_taskq.beat.notify import ChangeNotifyingQuerySet
from django_taskq.beat.validators import CronFieldValidator, validate_timezone
from django_taskq.schedules import default_timezone

# --- schedules ---------------------------------------------------------------


class IntervalSchedule(models.Model):
    """Run every N days, hours, minutes or seconds."""

    DAYS = "days"
    HOURS = "hours"
    MINUTES = "minutes"
    SECONDS = "seconds"
    PERIOD_CHOICES = [
        (DAYS, _("Days")),
        (HOURS, _("Hours")),
        (MINUTES, _("Minutes")),
        (SECONDS, _("Seconds")),
    ]

    every = models.PositiveIntegerField(
        _("number of periods"),
        validators=[MinValueValidator(1)],
        help_text=_("How many periods pass between two runs, e.g. 5 for every 5 minutes."),
    )
    period = models.CharField(
        _("period"),
        max_length=24,
        choices=PERIOD_CHOICES,
        help_text=_("The unit of the interval: days, hours, minutes or seconds."),
    )

    objects = ChangeNotifyingQuerySet.as_manager()

    class Meta:
        verbose_name = _("interval")
        verbose_name_plural = _("intervals")
        ordering = ["period", "every"]
        constraints = [
            models.UniqueConstraint(
                fields=["every", "period"], name="django_taskq_interval_unique"
            ),
            models.CheckConstraint(
                condition=Q(every__gte=1), name="django_taskq_interval_positive"
            ),
        ]

    def __str__(self) -> str:
        return self.schedule.describe()

    @property
    def timedelta(self) -> dt.timedelta:
        return dt.timedelta(**{self.period: self.every})

    @property
    def schedule(self) -> schedules.schedule:
        return schedules.schedule(self.timedelta)

    @classmethod
    def from_timedelta(cls, value: dt.timedelta) -> tuple[int, str]:
        """(every, period) for ``value`` in the largest unit that divides it."""
        seconds = value.total_seconds()
        if seconds < 1 or seconds != int(seconds):
            raise ValueError(
                f"an interval must be a whole number of seconds, at least 1, not {seconds:g}"
            )
        for period, size in ((cls.DAYS, 86400), (cls.HOURS, 3600), (cls.MINUTES, 60)):
            if seconds % size == 0:
                return int(seconds // size), period
        return int(seconds), cls.SECONDS


class CrontabSchedule(models.Model):
    """Run when a cron expression matches, in the schedule's own time zone."""

    minute = models.CharField(
        _("minute(s)"),
        max_length=240,
        default="*",
        validators=[CronFieldValidator("minute")],
        help_text=_('Cron minute field (0-59): "*", "30", "*/15", "0,30", "10-20".'),
    )
    hour = models.CharField(
        _("hour(s)"),
        max_length=96,
        default="*",
        validators=[CronFieldValidator("hour")],
        help_text=_('Cron hour field (0-23): "*", "3", "*/2", "9-17".'),
    )
    day_of_month = models.CharField(
        _("day(s) of the month"),
        max_length=124,
        default="*",
        validators=[CronFieldValidator("day_of_month")],
        help_text=_('Cron day-of-month field (1-31): "*", "1", "1,15", "L" for the last day.'),
    )
    month_of_year = models.CharField(
        _("month(s) of the year"),
        max_length=64,
        default="*",
        validators=[CronFieldValidator("month_of_year")],
        help_text=_('Cron month field (1-12 or jan-dec): "*", "1", "jan-mar".'),
    )
    day_of_week = models.CharField(
        _("day(s) of the week"),
        max_length=64,
        default="*",
        validators=[CronFieldValidator("day_of_week")],
        help_text=_(
            'Cron day-of-week field; Sunday is 0 or 7: "*", "1-5", "mon-fri", "5#2" for the '
            "second Friday. When both days fields are restricted, both must match (as in Celery)."
        ),
    )
    timezone = models.CharField(
        _("time zone"),
        max_length=63,
        default=default_timezone,
        validators=[validate_timezone],
        help_text=_(
            "IANA zone the fields are read in, e.g. Europe/Berlin. Daylight saving changes "
            "are handled in this zone. Defaults to TASKQ_TIMEZONE, else TIME_ZONE."
        ),
    )

    objects = ChangeNotifyingQuerySet.as_manager()

    class Meta:
        verbose_name = _("crontab")
        verbose_name_plural = _("crontabs")
        ordering = ["month_of_year", "day_of_month", "day_of_week", "hour", "minute", "timezone"]

    def __str__(self) -> str:
        return f"{self.expression} ({self.timezone})"

    @property
    def expression(self) -> str:
        return (
            f"{self.minute} {self.hour} {self.day_of_month} {self.month_of_year} {self.day_of_week}"
        )

    @property
    def schedule(self) -> schedules.crontab:
        return _crontab(
            self.minute,
            self.hour,
            self.day_of_week,
            self.day_of_month,
            self.month_of_year,
            self.timezone,
        )

    @property
    def description(self) -> str:
        """E.g. "At 03:00, Monday through Friday (Europe/Berlin)"."""
        return self.schedule.describe()

    def validate_cron(self) -> None:
        """Raise ValidationError naming each invalid field."""
        errors: dict[str, list[ValidationError]] = {}
        for name in ("minute", "hour", "day_of_month", "month_of_year", "day_of_week"):
            try:
                CronFieldValidator(name)(getattr(self, name))
            except ValidationError as exc:
                errors[name] = [exc]
        try:
            validate_timezone(self.timezone)
        except ValidationError as exc:
            errors["timezone"] = [exc]
        if errors:
            raise ValidationError(errors)

    def save(self, *args: Any, **kwargs: Any) -> None:
        # A bad expression must fail here, not in the beat process at 3 a.m.
        self.validate_cron()
        super().save(*args, **kwargs)


@lru_cache(maxsize=4096)
def _crontab(
    minute: str, hour: str, day_of_week: str, day_of_month: str, month_of_year: str, tz: str
) -> schedules.crontab:
    """Shared, immutable crontab values: rows with equal fields share one parsed schedule."""
    return schedules.crontab(
        minute=minute,
        hour=hour,
        day_of_week=day_of_week,
        day_of_month=day_of_month,
        month_of_year=month_of_year,
        tz=tz,
    )


class ClockedSchedule(models.Model):
    """Run once, at a given moment."""

    clocked_time = models.DateTimeField(
        _("clocked time"),
        help_text=_("The moment of the one run."),
    )

    objects = ChangeNotifyingQuerySet.as_manager()

    class Meta:
        verbose_name = _("clocked")
        verbose_name_plural = _("clocked")
        ordering = ["clocked_time"]

    def __str__(self) -> str:
        return timezone.localtime(self.clocked_time).isoformat(sep=" ", timespec="seconds")

    @property
    def schedule(self) -> schedules.clocked:
        return schedules.clocked(self.clocked_time)


# --- periodic tasks ------------------------------------------------------------


class PeriodicTaskQuerySet(ChangeNotifyingQuerySet):
    """Queryset verbs for periodic tasks."""

    def enabled(self) -> PeriodicTaskQuerySet:
        return self.filter(enabled=True)

    def with_schedules(self) -> PeriodicTaskQuerySet:
        return self.select_related("interval", "crontab", "clocked")

    def active(self, now: dt.datetime | None = None) -> PeriodicTaskQuerySet:
        """Enabled, started and not expired: the rows that can still have runs."""
        now = now or timezone.now()
        return (
            self.enabled()
            .filter(Q(start_time__isnull=True) | Q(start_time__lte=now))
            .filter(Q(expires__isnull=True) | Q(expires__gt=now))
        )

    def due(self, now: dt.datetime | None = None) -> PeriodicTaskQuerySet:
        """Rows with a run due at or before ``now`` that has not been sent yet.

        Due times come from schedule arithmetic (cron, DST) in Python, so
        this evaluates the active rows once; the beat leader does not use it
        (it keeps a heap), but it answers "what is overdue?" in a shell.
        """
        now = now or timezone.now()
        from django_taskq.beat.entry import Entry

        due_ids = [
            task.pk
            for task in self.active(now).with_schedules()
            if (due := Entry.from_model(task).first_due()) is not None and due <= now
        ]
        return self.filter(pk__in=due_ids)


class PeriodicTask(models.Model):
    """A task sent on a schedule by the beat leader."""

    SOURCE_ADMIN = "admin"
    SOURCE_SETTINGS = "settings"
    SOURCE_CHOICES = [
        (SOURCE_ADMIN, _("Admin or code")),
        (SOURCE_SETTINGS, _("TASKQ_BEAT_SCHEDULE setting")),
    ]

    name = models.CharField(
        _("name"),
        max_length=200,
        unique=True,
        help_text=_("A unique, human-readable name for this periodic task."),
    )
    task = models.CharField(
        _("task"),
        max_length=200,
        db_index=True,
        help_text=_(
            'Registered name of the task to send, e.g. "myapp.tasks.cleanup". It need not be '
            "importable here: only the workers must know it."
        ),
    )
    interval = models.ForeignKey(
        IntervalSchedule,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="periodic_tasks",
        verbose_name=_("interval schedule"),
        help_text=_("Run every so often. Set exactly one of interval, crontab and clocked."),
    )
    crontab = models.ForeignKey(
        CrontabSchedule,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="periodic_tasks",
        verbose_name=_("crontab schedule"),
        help_text=_("Run when a cron expression matches. Set exactly one schedule."),
    )
    clocked = models.ForeignKey(
        ClockedSchedule,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="periodic_tasks",
        verbose_name=_("clocked schedule"),
        help_text=_("Run once at a moment. Set exactly one schedule."),
    )
    args = models.JSONField(
        _("positional arguments"),
        default=list,
        blank=True,
        help_text=_('JSON list of positional arguments, e.g. ["a", 2].'),
    )
    kwargs = models.JSONField(
        _("keyword arguments"),
        default=dict,
        blank=True,
        help_text=_('JSON object of keyword arguments, e.g. {"days": 7}.'),
    )
    queue = models.CharField(
        _("queue"),
        max_length=200,
        blank=True,
        default="",
        help_text=_("Queue to send to; empty uses the task's route or TASKQ_DEFAULT_QUEUE."),
    )
    priority = models.PositiveSmallIntegerField(
        _("priority"),
        null=True,
        blank=True,
        validators=[MinValueValidator(0), MaxValueValidator(9)],
        help_text=_("0 to 9, 9 runs first; empty uses the task's or TASKQ_DEFAULT_PRIORITY."),
    )
    headers = models.JSONField(
        _("message headers"),
        default=dict,
        blank=True,
        help_text=_("JSON object of extra message headers. periodic_task_name is always added."),
    )
    expires = models.DateTimeField(
        _("expires"),
        null=True,
        blank=True,
        help_text=_(
            "No run due at or after this moment is sent, and messages already sent expire "
            "then (a worker drops them unstarted)."
        ),
    )
    expire_seconds = models.PositiveIntegerField(
        _("message expiry (seconds)"),
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text=_(
            "Each run's message expires this many seconds after its due time if no worker "
            "has started it, so a backlog does not run stale work."
        ),
    )
    one_off = models.BooleanField(
        _("one-off"),
        default=False,
        help_text=_("Run once, then disable this periodic task."),
    )
    start_time = models.DateTimeField(
        _("start time"),
        null=True,
        blank=True,
        help_text=_("No run is sent before this moment. Interval runs count from it."),
    )
    enabled = models.BooleanField(
        _("enabled"),
        default=True,
        db_index=True,
        help_text=_("Untick to pause this periodic task without deleting it."),
    )
    max_staleness = models.PositiveIntegerField(
        _("skip runs late by more than (seconds)"),
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text=_(
            "Missed-run policy. After downtime, runs missed are sent once; with a value here, "
            "that catch-up run is skipped if it is late by more than this many seconds. Empty "
            "uses TASKQ_BEAT_MAX_STALENESS (default: always catch up once)."
        ),
    )
    last_run_at = models.DateTimeField(
        _("last run at"),
        null=True,
        blank=True,
        editable=False,
        help_text=_("Due time of the last run beat sent (written at dispatch)."),
    )
    total_run_count = models.PositiveIntegerField(
        _("total run count"),
        default=0,
        editable=False,
        help_text=_("How many runs beat has sent."),
    )
    description = models.TextField(
        _("description"),
        blank=True,
        help_text=_("Notes for the people who maintain this periodic task."),
    )
    source = models.CharField(
        _("source"),
        max_length=16,
        choices=SOURCE_CHOICES,
        default=SOURCE_ADMIN,
        editable=False,
        db_index=True,
        help_text=_(
            "Where this row is defined. Rows from TASKQ_BEAT_SCHEDULE are rewritten from "
            "settings at beat start and are read-only in the admin."
        ),
    )
    date_changed = models.DateTimeField(
        _("last changed"),
        auto_now=True,
        help_text=_("When this row was last saved."),
    )

    objects = PeriodicTaskQuerySet.as_manager()

    class Meta:
        verbose_name = _("periodic task")
        verbose_name_plural = _("periodic tasks")
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=(
                    Q(interval__isnull=False, crontab__isnull=True, clocked__isnull=True)
                    | Q(interval__isnull=True, crontab__isnull=False, clocked__isnull=True)
                    | Q(interval__isnull=True, crontab__isnull=True, clocked__isnull=False)
                ),
                name="django_taskq_periodictask_one_schedule",
                violation_error_message=_(
                    "Set exactly one schedule: an interval, a crontab or a clocked time."
                ),
            ),
            models.CheckConstraint(
                condition=Q(priority__isnull=True) | Q(priority__gte=0, priority__lte=9),
                name="django_taskq_periodictask_priority_range",
                violation_error_message=_("Priority must be from 0 to 9."),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name}: {self.schedule_display}"

    @property
    def schedule_model(self) -> IntervalSchedule | CrontabSchedule | ClockedSchedule | None:
        return self.interval or self.crontab or self.clocked

    @property
    def schedule(self) -> schedules.BaseSchedule | None:
        model = self.schedule_model
        return model.schedule if model is not None else None

    @property
    def schedule_kind(self) -> str:
        if self.interval_id is not None:
            return "interval"
        if self.crontab_id is not None:
            return "crontab"
        return "clocked"

    @property
    def schedule_display(self) -> str:
        model = self.schedule_model
        if isinstance(model, CrontabSchedule):
            return model.description
        return str(model) if model is not None else "-"

    @property
    def is_settings_owned(self) -> bool:
        return self.source == self.SOURCE_SETTINGS

    def clean(self) -> None:
        # "Exactly one schedule" is the CheckConstraint, validated with the form.
        if not isinstance(self.args, list):
            raise ValidationError({"args": _("Positional arguments must be a JSON list.")})
        if not isinstance(self.kwargs, dict):
            raise ValidationError({"kwargs": _("Keyword arguments must be a JSON object.")})
        if not isinstance(self.headers, dict):
            raise ValidationError({"headers": _("Headers must be a JSON object.")})
        from django_taskq.broker.keys import QUEUE_NAME

        if self.queue and not QUEUE_NAME.match(self.queue):
            # A name no worker can consume (taskq_worker -Q refuses it); the call refuses it too.
            raise ValidationError(
                {
                    "queue": _(
                        "A queue name has no whitespace, '{' or '}'; "
                        "leave it empty for the default."
                    )
                }
            )

    def upcoming(self, count: int = 5, now: dt.datetime | None = None) -> list[dt.datetime]:
        """The next ``count`` run times beat would send, in the schedule's zone."""
        from django_taskq.beat.entry import Entry

        return Entry.from_model(self).upcoming(count, now or timezone.now())


class ScheduleVersion(models.Model):
    """One row whose version database triggers increment on every schedule change.

    The beat leader polls it cheaply to catch changes that sent no signal
    (bulk SQL, restores); see ``django_taskq.beat.version``.
    """

    SINGLETON = 1

    id = models.PositiveSmallIntegerField(
        _("id"),
        primary_key=True,
        default=SINGLETON,
        help_text=_("Always 1: there is one version row."),
    )
    version = models.BigIntegerField(
        _("version"),
        default=0,
        help_text=_("Incremented by database triggers whenever a schedule table changes."),
    )

    class Meta:
        verbose_name = _("schedule version")
        verbose_name_plural = _("schedule version")

    def __str__(self) -> str:
        return str(self.version)


# Every save and delete through the ORM wakes the beat leader.

# The history and live-view models live in modules of their own; Django finds
# every model of the app through this module.
from django_taskq.history.models import TaskRecord  # noqa: E402
from django_taskq.monitor.models import Dashboard, DeadLetter, Queue, Worker  # noqa: E402

__all__ = [
    "ClockedSchedule",
    "CrontabSchedule",
    "Dashboard",
    "DeadLetter",
    "IntervalSchedule",
    "PeriodicTask",
    "Queue",
    "ScheduleVersion",
    "TaskRecord",
    "Worker",
]
