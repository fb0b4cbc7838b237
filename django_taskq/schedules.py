"""Schedules, as Celery users write them: ``schedule(...)`` and ``crontab(...)``.

Use them in ``TASKQ_BEAT_SCHEDULE``::

    from datetime import timedelta
    from django_taskq.schedules import crontab, schedule

    TASKQ_BEAT_SCHEDULE = {
        "nightly-report": {"task": "reports.tasks.nightly", "schedule": crontab(hour=3, minute=0)},
        "ping": {"task": "monitor.tasks.ping", "schedule": schedule(timedelta(seconds=30))},
    }

Both are immutable values that only compute times; they read no setting
when made (settings.py may build them), only when a crontab without an
explicit ``tz`` needs its zone (TASKQ_TIMEZONE, else TIME_ZONE).

All methods take and return timezone-aware datetimes:

- ``next_after(last)``: the run that follows the run due at ``last`` (None
  when there is none, for ``clocked``);
- ``latest_at_or_before(first, now)``: the last run in ``[first, now]``,
  used to collapse runs missed during downtime into one;
- ``upcoming(after, count)`` and ``describe()`` for people.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from django_taskq.beat.cron import FIELDS, CronSpec, validate_field

UTC = dt.UTC

__all__ = ["BaseSchedule", "clocked", "crontab", "default_timezone", "schedule"]


def default_timezone() -> str:
    """The zone crontabs use unless they name one: TASKQ_TIMEZONE, else TIME_ZONE."""
    from django.conf import settings

    from django_taskq.conf import taskq_settings

    return str(taskq_settings.TIMEZONE or getattr(settings, "TIME_ZONE", None) or "UTC")


class BaseSchedule(Protocol):
    """What the scheduler needs from a schedule."""

    def next_after(self, last: dt.datetime) -> dt.datetime | None: ...

    def latest_at_or_before(self, first: dt.datetime, now: dt.datetime) -> dt.datetime: ...

    def describe(self) -> str: ...


def _seconds_text(seconds: float) -> str:
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = int(seconds // size)
            return f"every {count} {unit}{'s' if count != 1 else ''}"
    if seconds == int(seconds):
        count = int(seconds)
        return f"every {count} second{'s' if count != 1 else ''}"
    return f"every {seconds:g} seconds"


@dataclass(frozen=True, init=False)
class schedule:
    """Run every ``run_every`` (a timedelta or a number of seconds), without drift.

    The next run is the previous *due* time plus the interval, not the time
    the previous run happened to be sent, so runs stay on their grid.
    """

    run_every: dt.timedelta

    def __init__(self, run_every: dt.timedelta | float | int) -> None:
        if isinstance(run_every, bool) or not isinstance(run_every, dt.timedelta | int | float):
            raise TypeError(
                f"schedule(run_every=...) takes a timedelta or a number of seconds, "
                f"not {type(run_every).__name__}"
            )
        every = (
            run_every if isinstance(run_every, dt.timedelta) else dt.timedelta(seconds=run_every)
        )
        if every.total_seconds() <= 0:
            raise ValueError(f"schedule(run_every=...) must be positive, not {run_every!r}")
        object.__setattr__(self, "run_every", every)

    @property
    def seconds(self) -> float:
        return self.run_every.total_seconds()

    def next_after(self, last: dt.datetime) -> dt.datetime:
        return last + self.run_every

    def latest_at_or_before(self, first: dt.datetime, now: dt.datetime) -> dt.datetime:
        if now < first:
            raise ValueError("latest_at_or_before() needs first <= now")
        steps = (now - first) // self.run_every
        return first + steps * self.run_every

    def upcoming(self, after: dt.datetime, count: int) -> list[dt.datetime]:
        """``count`` runs from the run due at ``after`` on (``after`` not included)."""
        return [after + (i + 1) * self.run_every for i in range(count)]

    def describe(self) -> str:
        return _seconds_text(self.seconds).capitalize()

    def __repr__(self) -> str:
        return f"<schedule: {_seconds_text(self.seconds)}>"


def _field_text(name: str, value: Any) -> str:
    """Celery accepts ints, strings and iterables of ints for each field."""
    if isinstance(value, bool):
        raise TypeError(f"crontab({name}=...) takes a string, int or list of ints, not a bool")
    if isinstance(value, int):
        text = str(value)
    elif isinstance(value, str):
        text = value.strip()
    elif isinstance(value, Iterable):
        items = list(value)
        if not items or not all(isinstance(v, int) and not isinstance(v, bool) for v in items):
            raise TypeError(f"crontab({name}=...) takes a list of ints, not {value!r}")
        text = ",".join(str(v) for v in sorted(set(items)))
    else:
        raise TypeError(
            f"crontab({name}=...) takes a string, int or list of ints, not {type(value).__name__}"
        )
    validate_field(name, text)
    return text


@dataclass(frozen=True, init=False)
class crontab:
    """Run at the times a cron expression matches, in its time zone.

    Arguments are in Celery's order; each is a cron field (``"*/15"``,
    ``"1-5"``, ``"mon-fri"``, ``"L"``, ``"5#2"``), an int, or a list of ints.
    Sunday is 0 or 7. ``tz`` is an IANA zone name; when omitted, the zone in
    effect is TASKQ_TIMEZONE, else TIME_ZONE, read when first needed.
    """

    minute: str
    hour: str
    day_of_week: str
    day_of_month: str
    month_of_year: str
    tz: str | None

    def __init__(
        self,
        minute: str | int | Iterable[int] = "*",
        hour: str | int | Iterable[int] = "*",
        day_of_week: str | int | Iterable[int] = "*",
        day_of_month: str | int | Iterable[int] = "*",
        month_of_year: str | int | Iterable[int] = "*",
        tz: str | ZoneInfo | None = None,
    ) -> None:
        values = {
            "minute": minute,
            "hour": hour,
            "day_of_week": day_of_week,
            "day_of_month": day_of_month,
            "month_of_year": month_of_year,
        }
        for name in FIELDS:
            object.__setattr__(self, name, _field_text(name, values[name]))
        zone = tz.key if isinstance(tz, ZoneInfo) else tz
        if zone is not None:
            ZoneInfo(zone)  # raises for an unknown zone, here rather than at 3 a.m.
        object.__setattr__(self, "tz", zone)

    @property
    def timezone(self) -> str:
        """The zone name in effect."""
        return self.tz or default_timezone()

    @cached_property
    def spec(self) -> CronSpec:
        return CronSpec(
            minute=self.minute,
            hour=self.hour,
            day_of_month=self.day_of_month,
            month_of_year=self.month_of_year,
            day_of_week=self.day_of_week,
            timezone=self.timezone,
        )

    def next_after(self, last: dt.datetime) -> dt.datetime:
        return self.spec.next_after(last)

    def latest_at_or_before(self, first: dt.datetime, now: dt.datetime) -> dt.datetime:
        return self.spec.latest_at_or_before(first, now)

    def upcoming(self, after: dt.datetime, count: int) -> list[dt.datetime]:
        """The next ``count`` runs after ``after``, in the schedule's zone."""
        return self.spec.upcoming(after, count)

    def describe(self) -> str:
        from django_taskq.beat.describe import describe

        return describe(self.spec)

    def __repr__(self) -> str:
        return (
            f"<crontab: {self.minute} {self.hour} {self.day_of_month} {self.month_of_year} "
            f"{self.day_of_week} ({self.tz or 'default zone'})>"
        )


@dataclass(frozen=True)
class clocked:
    """Run once, at ``clocked_time``."""

    clocked_time: dt.datetime

    def next_after(self, last: dt.datetime) -> dt.datetime | None:
        """The one run if it is after ``last``; None once it has run."""
        return self.clocked_time if self.clocked_time > last else None

    def latest_at_or_before(self, first: dt.datetime, now: dt.datetime) -> dt.datetime:
        return first

    def describe(self) -> str:
        return f"Once, at {self.clocked_time.isoformat()}"
