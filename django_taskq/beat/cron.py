"""Cron arithmetic in a schedule's own time zone, correct across DST changes.

croniter walks *wall-clock* times; this module maps each wall-clock match to
real instants (UTC) with zoneinfo and applies the classic cron rules where
the mapping is not one to one:

- A wall time that does not exist (the hour skipped when clocks spring
  forward) runs once, at the first valid instant after the gap (02:30 on a
  New York spring-forward day runs at 03:00 EDT). Several matches inside one
  gap collapse into that one run.
- A wall time that exists twice (the hour repeated when clocks fall back)
  runs once, at its first occurrence.
- Schedules whose hour field is ``*`` run every hour anyway, so they keep
  their wall-clock minute instead: matches inside a skipped hour are simply
  skipped, and a repeated hour runs at both of its occurrences (one real hour
  apart, as an hourly job should).

Day of month and day of week must *both* match when both are restricted, as
in Celery's ``crontab`` (classic cron ORs them); this makes "the first Monday
of the month" (``day_of_month="1-7", day_of_week="mon"``) expressible.

All instants in and out are timezone-aware; internally everything is
compared in UTC because Python compares two datetimes that share a tzinfo by
wall time, ignoring ``fold``.
"""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterError, croniter

UTC = dt.UTC

#: Cron field names, in cron order, with the range croniter enforces.
FIELDS = ("minute", "hour", "day_of_month", "month_of_year", "day_of_week")

# No real zone shifts its offset by more than this at one transition (the
# search below widens itself when it meets a bigger one, e.g. Samoa 2011).
_MARGIN = dt.timedelta(hours=3)
# Transitions closer together than this are not distinguished by the cheap
# "no transition in between" test (real zones are weeks apart).
_SAMPLE = dt.timedelta(days=7)
_MAX_STEPS = 100_000
_MEMO_SIZE = 256


class CronFieldError(ValueError):
    """One cron field is invalid; ``field`` names it."""

    def __init__(self, field_name: str, value: str, reason: str) -> None:
        self.field = field_name
        self.value = value
        super().__init__(f"{field_name} {value!r} is not a valid cron field: {reason}")


def _expression(
    minute: str = "*",
    hour: str = "*",
    day_of_month: str = "*",
    month_of_year: str = "*",
    day_of_week: str = "*",
) -> str:
    return f"{minute} {hour} {day_of_month} {month_of_year} {day_of_week}"


@lru_cache(maxsize=4096)
def validate_field(name: str, value: str) -> None:
    """Raise CronFieldError naming ``name`` if ``value`` is not a valid cron field.

    Cached: loading 10,000 periodic tasks validates the same few fields over and over.
    """
    if name not in FIELDS:
        raise ValueError(f"unknown cron field {name!r}; known: {', '.join(FIELDS)}")
    text = value.strip()
    if not text:
        raise CronFieldError(name, value, "it is empty (use * for every value)")
    if any(ch.isspace() for ch in text):
        raise CronFieldError(name, value, "it contains a space (separate values with commas)")
    if text.startswith("@") or _has_bare_token(text.upper()):
        # croniter's @macros, hashed (H) and random (R) values are not
        # deterministic across beat processes, so two beats would disagree.
        raise CronFieldError(name, value, "macros, H (hashed), R (random) and ? are not supported")
    try:
        croniter(_expression(**{name: text}), dt.datetime(2000, 1, 1), day_or=False)
    except (CroniterError, ValueError, KeyError, IndexError) as exc:
        raise CronFieldError(name, value, str(exc) or type(exc).__name__) from None


def _has_bare_token(upper: str) -> bool:
    """True if a comma/range part is H, R or ? (month/day names contain those letters)."""
    for part in upper.replace("-", ",").replace("/", ",").split(","):
        if part in {"H", "R", "?"} or part.startswith(("H(", "R(")):
            return True
    return False


def validate(**fields: str) -> None:
    """Validate every given field; raises CronFieldError for the first bad one."""
    for name in FIELDS:
        if name in fields:
            validate_field(name, fields[name])


@dataclass(frozen=True)
class CronSpec:
    """A five-field cron schedule in an IANA time zone."""

    minute: str = "*"
    hour: str = "*"
    day_of_month: str = "*"
    month_of_year: str = "*"
    day_of_week: str = "*"
    timezone: str = "UTC"
    _lock: threading.Lock = field(init=False, repr=False, compare=False, hash=False)
    _memo: dict[dt.datetime, dt.datetime] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        validate(
            minute=self.minute,
            hour=self.hour,
            day_of_month=self.day_of_month,
            month_of_year=self.month_of_year,
            day_of_week=self.day_of_week,
        )
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"timezone {self.timezone!r} is not a known IANA time zone") from None
        # The shared croniter walker below is stateful.
        object.__setattr__(self, "_lock", threading.Lock())
        # Many periodic tasks share one crontab row and come due together:
        # remember recent answers instead of asking croniter 10,000 times.
        object.__setattr__(self, "_memo", {})

    @property
    def expression(self) -> str:
        """The five fields as one cron expression."""
        return _expression(
            self.minute, self.hour, self.day_of_month, self.month_of_year, self.day_of_week
        )

    @cached_property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @cached_property
    def every_hour(self) -> bool:
        """True when the hour field matches all 24 hours (DST rule for hourly jobs)."""
        hours = croniter.expand(self.expression)[0][1]
        return hours == ["*"] or len(hours) == 24

    @cached_property
    def _croniter(self) -> croniter:
        # Parsing an expression costs ~100 us; one walker per spec is reused.
        return croniter(self.expression, dt.datetime(2000, 1, 1), day_or=False)

    def _walker(self, start: dt.datetime) -> croniter:
        """The spec's croniter, positioned at naive wall time ``start``."""
        walker = self._croniter
        walker.set_current(start, force=True)
        return walker

    def _wall(self, instant: dt.datetime) -> dt.datetime:
        return instant.astimezone(self.tz).replace(tzinfo=None, fold=0)

    def _stable(self, start: dt.datetime, end: dt.datetime) -> bool:
        """True when the zone's UTC offset does not change between two instants."""
        tz = self.tz
        offset = start.astimezone(tz).utcoffset()
        probe = start
        while probe < end:
            probe = min(probe + _SAMPLE, end)
            if probe.astimezone(tz).utcoffset() != offset:
                return False
        return end.astimezone(tz).utcoffset() == offset

    def instants(self, wall: dt.datetime) -> list[dt.datetime]:
        """The UTC instants at which a match at naive ``wall`` time runs (0, 1 or 2)."""
        first = wall.replace(tzinfo=self.tz, fold=0).astimezone(UTC)
        second = wall.replace(tzinfo=self.tz, fold=1).astimezone(UTC)
        if first == second:
            return [first]
        if first < second:  # wall time repeated when clocks fall back
            return [first, second] if self.every_hour else [first]
        # wall time skipped when clocks spring forward: fold=1 maps it before
        # the transition and fold=0 after it, so the transition lies between.
        return [] if self.every_hour else [self._transition(second, first)]

    def _transition(self, low: dt.datetime, high: dt.datetime) -> dt.datetime:
        """The first instant in (low, high] whose offset differs from ``low``'s."""
        before = low.astimezone(self.tz).utcoffset()
        lo, hi = int(low.timestamp()), int(high.timestamp())
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if dt.datetime.fromtimestamp(mid, self.tz).utcoffset() == before:
                lo = mid
            else:
                hi = mid
        return dt.datetime.fromtimestamp(hi, UTC)

    def next_after(self, after: dt.datetime) -> dt.datetime:
        """The first run strictly after the aware instant ``after`` (UTC)."""
        after = after.astimezone(UTC)
        with self._lock:
            found = self._memo.get(after)
            if found is None:
                found = self._next_after(after)
                if len(self._memo) >= _MEMO_SIZE:
                    self._memo.clear()
                self._memo[after] = found
            return found

    def _next_after(self, after: dt.datetime) -> dt.datetime:
        if self._stable(after - _MARGIN, after + _MARGIN):
            wall = self._walker(self._wall(after)).get_next(dt.datetime)
            candidate = wall.replace(tzinfo=self.tz).astimezone(UTC)
            if candidate <= after + _MARGIN or self._stable(after, candidate + _MARGIN):
                return candidate
        return self._next_near_transition(after)

    def _next_near_transition(self, after: dt.datetime) -> dt.datetime:
        # Wall time is not monotonic in real time here, so look at every match
        # from a margin before ``after`` and keep the earliest instant after it.
        margin = _MARGIN
        walker = self._walker(self._wall(after - margin))
        best: dt.datetime | None = None
        limit: dt.datetime | None = None
        for _ in range(_MAX_STEPS):
            wall = walker.get_next(dt.datetime)
            if limit is not None and wall > limit:
                break
            for instant in self.instants(wall):
                if instant > after and (best is None or instant < best):
                    best = instant
                    limit = self._wall(best) + margin
        if best is None:  # pragma: no cover - croniter always finds a next match
            raise RuntimeError(f"cron {self.expression!r} has no run after {after.isoformat()}")
        return best

    def latest_at_or_before(self, first: dt.datetime, now: dt.datetime) -> dt.datetime:
        """The last run in [first, now], given that ``first`` is a run at or before ``now``.

        Used to collapse runs missed during downtime into one: it searches
        back from ``now`` with a doubling window instead of walking every
        missed run.
        """
        first = first.astimezone(UTC)
        now = now.astimezone(UTC)
        if first > now:
            raise ValueError("latest_at_or_before() needs first <= now")
        following = self.next_after(first)
        if following > now:
            return first
        window = dt.timedelta(minutes=2)
        while True:
            start = max(now - window, first)
            found = start if start == first else self.next_after(start)
            if found <= now:
                break
            window *= 2
        while True:
            following = self.next_after(found)
            if following > now:
                return found
            found = following

    def upcoming(self, after: dt.datetime, count: int) -> list[dt.datetime]:
        """The next ``count`` runs after ``after``, in the schedule's zone."""
        runs: list[dt.datetime] = []
        current = after
        for _ in range(count):
            current = self.next_after(current)
            runs.append(current.astimezone(self.tz))
        return runs
