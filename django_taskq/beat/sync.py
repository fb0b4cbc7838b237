"""Copy TASKQ_BEAT_SCHEDULE into the database, as rows with source=settings.

The setting has Celery's ``beat_schedule`` shape::

    TASKQ_BEAT_SCHEDULE = {
        "cleanup": {
            "task": "app.tasks.cleanup",
            "schedule": crontab(hour=3, minute=0),   # or seconds, timedelta, schedule(...)
            "args": (7,),
            "kwargs": {},
            "options": {"queue": "low", "priority": 2, "expires": 600},
        },
    }

The beat leader syncs when it takes office. Settings own their rows: a row
whose entry changed is rewritten, one whose entry was removed is deleted,
and the admin shows them read-only. Run-time state (last_run_at,
total_run_count) is kept, and unchanged rows are not written at all, so a
restart neither resets intervals nor wakes anybody. A row of the same name
created in the admin is left alone, with a warning.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction

from django_taskq.broker.keys import QUEUE_NAME
from django_taskq.exceptions import ImproperlyConfiguredTaskq
from django_taskq.schedules import crontab, schedule

logger = logging.getLogger("django_taskq.beat")

ENTRY_KEYS = {"task", "schedule", "args", "kwargs", "options", "enabled", "description", "relative"}
OPTION_KEYS = {
    "queue",
    "priority",
    "headers",
    "expires",
    "expire_seconds",
    "one_off",
    "start_time",
    "max_staleness",
}


@dataclass
class SettingsEntry:
    """One validated TASKQ_BEAT_SCHEDULE entry, as PeriodicTask values."""

    name: str
    task: str
    schedule: schedule | crontab
    values: dict[str, Any] = field(default_factory=dict)


@dataclass
class SyncReport:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def _fail(name: str, message: str) -> ImproperlyConfiguredTaskq:
    return ImproperlyConfiguredTaskq(f"TASKQ_BEAT_SCHEDULE[{name!r}]: {message}")


def _schedule(name: str, value: Any) -> schedule | crontab:
    if isinstance(value, crontab):
        return value
    if isinstance(value, dt.timedelta) or (
        isinstance(value, int | float) and not isinstance(value, bool)
    ):
        try:
            value = schedule(value)
        except ValueError as exc:
            raise _fail(name, str(exc)) from None
    if isinstance(value, schedule):
        from django_taskq.models import IntervalSchedule

        try:
            IntervalSchedule.from_timedelta(value.run_every)
        except ValueError as exc:
            raise _fail(name, str(exc)) from None
        return value
    raise _fail(
        name,
        f"'schedule' must be seconds, a timedelta, schedule(...) or crontab(...), "
        f"not {type(value).__name__}",
    )


def parse_entry(name: str, raw: Any) -> SettingsEntry:
    """Validate one entry; raises ImproperlyConfigured naming the entry and the problem."""
    if not isinstance(raw, dict):
        raise _fail(name, f"each entry must be a dict, not {type(raw).__name__}")
    unknown = set(raw) - ENTRY_KEYS
    if unknown:
        raise _fail(
            name,
            f"unknown key(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(ENTRY_KEYS))}",
        )
    task = raw.get("task")
    if not isinstance(task, str) or not task:
        raise _fail(name, "'task' must be the task's registered name")
    if "schedule" not in raw:
        raise _fail(name, "'schedule' is required")
    sched = _schedule(name, raw["schedule"])
    args = raw.get("args", ())
    if not isinstance(args, list | tuple):
        raise _fail(name, f"'args' must be a list or tuple, not {type(args).__name__}")
    kwargs = raw.get("kwargs", {})
    if not isinstance(kwargs, dict):
        raise _fail(name, f"'kwargs' must be a dict, not {type(kwargs).__name__}")
    options = raw.get("options", {}) or {}
    if not isinstance(options, dict):
        raise _fail(name, "'options' must be a dict")
    unknown = set(options) - OPTION_KEYS
    if unknown:
        raise _fail(
            name,
            f"unknown option(s) {', '.join(sorted(unknown))}; "
            f"known: {', '.join(sorted(OPTION_KEYS))}",
        )
    values: dict[str, Any] = {
        "task": task,
        "args": list(args),
        "kwargs": dict(kwargs),
        "queue": options.get("queue") or "",
        "priority": options.get("priority"),
        "headers": dict(options.get("headers") or {}),
        "expires": None,
        "expire_seconds": options.get("expire_seconds"),
        "one_off": bool(options.get("one_off", False)),
        "start_time": options.get("start_time"),
        "max_staleness": options.get("max_staleness"),
        "enabled": bool(raw.get("enabled", True)),
        "description": str(raw.get("description", "")),
    }
    expires = options.get("expires")
    if isinstance(expires, dt.datetime):
        values["expires"] = expires
    elif isinstance(expires, dt.timedelta):
        values["expire_seconds"] = int(expires.total_seconds())
    elif isinstance(expires, int | float) and not isinstance(expires, bool):
        values["expire_seconds"] = int(expires)
    elif expires is not None:
        raise _fail(name, "'expires' must be seconds, a timedelta or a datetime")
    priority = values["priority"]
    if priority is not None and (
        isinstance(priority, bool) or not isinstance(priority, int) or not 0 <= priority <= 9
    ):
        raise _fail(name, f"priority must be an integer from 0 to 9, not {priority!r}")
    queue = values["queue"]
    if queue and (not isinstance(queue, str) or not QUEUE_NAME.match(queue)):
        raise _fail(
            name,
            f"queue must be a name of 1-200 characters without whitespace, '{{' or '}}' "
            f"(one a worker can consume), not {queue!r}",
        )
    try:
        from django_taskq.messages import dumps

        dumps([values["args"], values["kwargs"], values["headers"]])
    except (TypeError, ValueError) as exc:
        raise _fail(name, f"args, kwargs and headers must be JSON-encodable: {exc}") from None
    return SettingsEntry(name=name, task=task, schedule=sched, values=values)


def parse(beat_schedule: dict[str, Any]) -> list[SettingsEntry]:
    if not isinstance(beat_schedule, dict):
        raise ImproperlyConfiguredTaskq("TASKQ_BEAT_SCHEDULE must be a dict of name -> entry")
    return [parse_entry(str(name), raw) for name, raw in beat_schedule.items()]


def _schedule_fk(sched: schedule | crontab) -> dict[str, Any]:
    from django_taskq.models import CrontabSchedule, IntervalSchedule

    if isinstance(sched, schedule):
        every, period = IntervalSchedule.from_timedelta(sched.run_every)
        interval, _ = IntervalSchedule.objects.get_or_create(every=every, period=period)
        return {"interval": interval, "crontab": None, "clocked": None}
    fields = {
        "minute": sched.minute,
        "hour": sched.hour,
        "day_of_month": sched.day_of_month,
        "month_of_year": sched.month_of_year,
        "day_of_week": sched.day_of_week,
        "timezone": sched.timezone,
    }
    found = CrontabSchedule.objects.filter(**fields).order_by("pk").first()
    if found is None:
        found = CrontabSchedule.objects.create(**fields)
    return {"interval": None, "crontab": found, "clocked": None}


def sync(beat_schedule: dict[str, Any] | None = None) -> SyncReport:
    """Make the source=settings rows match the setting; returns what changed."""
    from django_taskq.conf import taskq_settings
    from django_taskq.models import PeriodicTask

    wanted = parse(taskq_settings.BEAT_SCHEDULE if beat_schedule is None else beat_schedule)
    report = SyncReport()
    with transaction.atomic():
        existing = {
            row.name: row for row in PeriodicTask.objects.filter(name__in=[e.name for e in wanted])
        }
        for entry in wanted:
            values = {**entry.values, **_schedule_fk(entry.schedule)}
            row = existing.get(entry.name)
            if row is None:
                PeriodicTask.objects.create(
                    name=entry.name, source=PeriodicTask.SOURCE_SETTINGS, **values
                )
                report.created.append(entry.name)
                continue
            if row.source != PeriodicTask.SOURCE_SETTINGS:
                logger.warning(
                    "TASKQ_BEAT_SCHEDULE[%r] is not applied: a periodic task of that name was "
                    "created in the admin. Rename one of them.",
                    entry.name,
                )
                report.skipped.append(entry.name)
                continue
            changed = [k for k, v in values.items() if getattr(row, k) != v]
            if changed:
                for key in changed:
                    setattr(row, key, values[key])
                row.save()
                report.updated.append(entry.name)
        stale = PeriodicTask.objects.filter(source=PeriodicTask.SOURCE_SETTINGS).exclude(
            name__in=[e.name for e in wanted]
        )
        report.removed = list(stale.values_list("name", flat=True))
        if report.removed:
            stale.delete()
    if report.created or report.updated or report.removed:
        logger.info(
            "TASKQ_BEAT_SCHEDULE synced: %d created, %d updated, %d removed",
            len(report.created),
            len(report.updated),
            len(report.removed),
        )
    return report
