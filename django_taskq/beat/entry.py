"""One periodic task as the scheduler sees it, and the rules for its due times.

An ``Entry`` is a plain snapshot of a ``PeriodicTask`` row (so the scheduler
keeps running while the database is down) with the rules that say when it
runs next:

- The first run follows the last run beat sent (``last_run_at`` holds its
  *due* time), so intervals do not drift and a restart does not reset their
  countdown. A task that never ran starts at ``start_time``, else one
  interval after it was saved; a crontab starts at its next match.
- A crontab does not catch up on matches from before its row was last
  saved: editing a task while beat is down does not replay old runs.
- Runs missed during downtime are collapsed into one, keyed by the latest
  missed due time; with ``max_staleness`` that one is skipped if it is late
  by more than that many seconds.
- Nothing runs before ``start_time`` or at/after ``expires``; ``one_off``
  and clocked tasks run once.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django_taskq.conf import taskq_settings
from django_taskq.messages import Envelope
from django_taskq.schedules import BaseSchedule, clocked, crontab, default_timezone, schedule

if TYPE_CHECKING:
    from django_taskq.models import PeriodicTask

UTC = dt.UTC
EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)
_MS = dt.timedelta(milliseconds=1)
_TICK = _MS


def epoch_ms(value: dt.datetime) -> int:
    """Exact epoch milliseconds of an aware datetime (no float rounding)."""
    return (value - EPOCH) // _MS


def from_epoch_ms(value: int) -> dt.datetime:
    return EPOCH + value * _MS


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    """UTC, truncated to the millisecond.

    Due times are whole milliseconds everywhere (database, run keys, the
    Redis hash), so every beat derives the very same key for the same run.
    """
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return from_epoch_ms(epoch_ms(value.astimezone(UTC)))


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


@dataclass
class RunOptions:
    """What a run's message is built from: the task and its sending options."""

    periodic_task_id: int
    name: str
    task: str
    args: list[Any] = field(default_factory=list)
    kwargs: dict[str, Any] = field(default_factory=dict)
    queue: str = ""
    priority: int | None = None
    headers: dict[str, Any] = field(default_factory=dict)
    expires: dt.datetime | None = None
    expire_seconds: int | None = None
    #: The message without its per-run parts, built once by dispatch.build_envelope.
    template: Envelope | None = field(default=None, compare=False, repr=False)


@dataclass
class Entry:
    """A periodic task's schedule state in the beat leader."""

    id: int
    options: RunOptions
    schedule: BaseSchedule
    kind: str
    anchor: dt.datetime
    start_time: dt.datetime | None = None
    expires: dt.datetime | None = None
    one_off: bool = False
    max_staleness: float | None = None
    last_run_at: dt.datetime | None = None
    fingerprint: tuple[Any, ...] = ()
    next_due: dt.datetime | None = None

    @property
    def name(self) -> str:
        return self.options.name

    @classmethod
    def from_model(cls, task: PeriodicTask) -> Entry:
        """Snapshot a row (with its schedule loaded via select_related)."""
        kind = task.schedule_kind
        sched: BaseSchedule
        if kind == "interval":
            assert task.interval is not None
            sched = schedule(task.interval.timedelta)
            sched_key: tuple[Any, ...] = (task.interval.every, task.interval.period)
        elif kind == "crontab":
            assert task.crontab is not None
            sched = task.crontab.schedule
            sched_key = (task.crontab.expression, task.crontab.timezone)
        else:
            assert task.clocked is not None
            sched = clocked(_aware(task.clocked.clocked_time) or task.clocked.clocked_time)
            sched_key = (task.clocked.clocked_time,)
        staleness = task.max_staleness
        if staleness is None and taskq_settings.BEAT_MAX_STALENESS is not None:
            staleness = taskq_settings.BEAT_MAX_STALENESS
        options = RunOptions(
            periodic_task_id=task.pk,
            name=task.name,
            task=task.task,
            args=list(task.args or []),
            kwargs=dict(task.kwargs or {}),
            queue=task.queue or "",
            priority=task.priority,
            headers=dict(task.headers or {}),
            expires=_aware(task.expires),
            expire_seconds=task.expire_seconds,
        )
        fingerprint = (
            kind,
            sched_key,
            task.name,
            task.task,
            _json(task.args),
            _json(task.kwargs),
            task.queue,
            task.priority,
            _json(task.headers),
            task.expires,
            task.expire_seconds,
            task.one_off,
            task.start_time,
            staleness,
            task.date_changed,
        )
        return cls(
            id=task.pk,
            options=options,
            schedule=sched,
            kind=kind,
            anchor=_aware(task.date_changed) or dt.datetime.now(UTC),
            start_time=_aware(task.start_time),
            expires=_aware(task.expires),
            one_off=task.one_off,
            max_staleness=None if staleness is None else float(staleness),
            last_run_at=_aware(task.last_run_at),
            fingerprint=fingerprint,
        )

    # -- due times ------------------------------------------------------------

    def _within(self, due: dt.datetime | None) -> dt.datetime | None:
        if due is None or (self.expires is not None and due >= self.expires):
            return None
        return due

    def first_due(self) -> dt.datetime | None:
        """The first run not yet sent (may be in the past), or None if none is left."""
        last = self.last_run_at
        if self.kind == "clocked":
            return self._within(
                self.schedule.next_after(last or dt.datetime.min.replace(tzinfo=UTC))
            )
        if self.one_off and last is not None:
            return None
        if self.kind == "interval":
            assert isinstance(self.schedule, schedule)
            if last is not None:
                due = last + self.schedule.run_every
            elif self.start_time is not None:
                due = self.start_time
            else:
                due = self.anchor + self.schedule.run_every
            if self.start_time is not None and due < self.start_time:
                due = self.start_time
            return self._within(due)
        floors = [t for t in (last, self.anchor) if t is not None]
        if self.start_time is not None:
            floors.append(self.start_time - _TICK)
        return self._within(self.schedule.next_after(max(floors)))

    def following(self, due: dt.datetime) -> dt.datetime | None:
        """The run after the run due at ``due``."""
        if self.one_off or self.kind == "clocked":
            return None
        return self._within(self.schedule.next_after(due))

    def catch_up(self, now: dt.datetime) -> dt.datetime:
        """The due time to send now: the latest run in [next_due, now], not past ``expires``."""
        assert self.next_due is not None
        if self.kind == "clocked":
            return self.next_due
        limit = now
        if self.expires is not None and self.expires <= now:
            limit = self.expires - _TICK
        if limit <= self.next_due:
            return self.next_due
        return self.schedule.latest_at_or_before(self.next_due, limit)

    def is_stale(self, due: dt.datetime, now: dt.datetime) -> bool:
        """True when the per-task missed-run policy says to skip a run this late."""
        return self.max_staleness is not None and (now - due).total_seconds() > self.max_staleness

    def upcoming(self, count: int, now: dt.datetime) -> list[dt.datetime]:
        """The next ``count`` runs after ``now``, as beat would send them.

        Times are in the crontab's zone, else the default zone. A clocked run
        that is overdue but not sent yet is included (beat sends it at once).
        """
        from zoneinfo import ZoneInfo

        zone = ZoneInfo(
            self.schedule.timezone if isinstance(self.schedule, crontab) else default_timezone()
        )
        runs: list[dt.datetime] = []
        due = self.first_due()
        if due is not None and due <= now and self.kind != "clocked":
            due = self.following(self.schedule.latest_at_or_before(due, now))
        while due is not None and len(runs) < count:
            runs.append(due.astimezone(zone))
            due = self.following(due)
        return runs
