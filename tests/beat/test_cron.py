"""Cron arithmetic: every field form, validation messages, and DST in two zones."""

from __future__ import annotations

import datetime as dt
import itertools
from zoneinfo import ZoneInfo

import pytest

from django_taskq.beat.cron import CronFieldError, CronSpec, validate_field

UTC = dt.UTC
NY = ZoneInfo("America/New_York")
BERLIN = ZoneInfo("Europe/Berlin")


def runs(spec: CronSpec, start: dt.datetime, count: int) -> list[str]:
    """The next ``count`` runs after ``start`` as local 'MM-DD HH:MM TZ' strings."""
    return [f"{r:%m-%d %H:%M %Z}" for r in spec.upcoming(start.astimezone(UTC), count)]


def local(zone: ZoneInfo, *args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=zone)  # type: ignore[misc]


# -- every field form -------------------------------------------------------------

FORMS = [
    # (fields, start (UTC), expected next three runs in UTC)
    ({"minute": "*"}, (2024, 1, 1, 0, 0, 30), ["00:01", "00:02", "00:03"]),
    ({"minute": "15"}, (2024, 1, 1, 0, 0), ["00:15", "01:15", "02:15"]),
    ({"minute": "*/20"}, (2024, 1, 1, 0, 5), ["00:20", "00:40", "01:00"]),
    ({"minute": "0,45"}, (2024, 1, 1, 0, 5), ["00:45", "01:00", "01:45"]),
    ({"minute": "10-12"}, (2024, 1, 1, 0, 5), ["00:10", "00:11", "00:12"]),
    ({"minute": "10-30/10"}, (2024, 1, 1, 0, 5), ["00:10", "00:20", "00:30"]),
    ({"minute": "0", "hour": "*/6"}, (2024, 1, 1, 0, 5), ["06:00", "12:00", "18:00"]),
    ({"minute": "0", "hour": "9-11"}, (2024, 1, 1, 0, 5), ["09:00", "10:00", "11:00"]),
    ({"minute": "0", "hour": "3,15"}, (2024, 1, 1, 0, 5), ["03:00", "15:00", "03:00"]),
]


@pytest.mark.parametrize(("fields", "start", "expected"), FORMS)
def test_minute_and_hour_forms(fields, start, expected):
    spec = CronSpec(**fields, timezone="UTC")
    got = [r.strftime("%H:%M") for r in spec.upcoming(dt.datetime(*start, tzinfo=UTC), 3)]
    assert got == expected


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        # 2024-01-01 is a Monday.
        ({"day_of_month": "15"}, ["01-15", "02-15", "03-15"]),
        ({"day_of_month": "1,15"}, ["01-15", "02-01", "02-15"]),
        ({"day_of_month": "L"}, ["01-31", "02-29", "03-31"]),
        ({"day_of_month": "*/10"}, ["01-11", "01-21", "01-31"]),
        ({"month_of_year": "3"}, ["03-01", "03-02", "03-03"]),
        ({"month_of_year": "jun-aug", "day_of_month": "1"}, ["06-01", "07-01", "08-01"]),
        ({"day_of_week": "0"}, ["01-07", "01-14", "01-21"]),
        ({"day_of_week": "7"}, ["01-07", "01-14", "01-21"]),
        ({"day_of_week": "sun"}, ["01-07", "01-14", "01-21"]),
        ({"day_of_week": "mon-fri"}, ["01-02", "01-03", "01-04"]),
        ({"day_of_week": "1-5/2"}, ["01-03", "01-05", "01-08"]),
        ({"day_of_week": "sat,sun"}, ["01-06", "01-07", "01-13"]),
        ({"day_of_week": "5#2"}, ["01-12", "02-09", "03-08"]),
        # Both day fields restricted: both must match (Celery), so "first Monday".
        ({"day_of_month": "1-7", "day_of_week": "mon"}, ["02-05", "03-04", "04-01"]),
    ],
)
def test_day_and_month_forms(fields, expected):
    spec = CronSpec(minute="0", hour="12", timezone="UTC", **fields)
    start = dt.datetime(2024, 1, 1, 13, 0, tzinfo=UTC)
    assert [r.strftime("%m-%d") for r in spec.upcoming(start, 3)] == expected


def test_sunday_is_zero_or_seven():
    start = dt.datetime(2024, 1, 1, tzinfo=UTC)
    zero = CronSpec(minute="0", hour="0", day_of_week="0").upcoming(start, 5)
    seven = CronSpec(minute="0", hour="0", day_of_week="7").upcoming(start, 5)
    assert zero == seven
    assert {r.weekday() for r in zero} == {6}  # Python's Sunday


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [
        ("minute", "60", "minute '60'"),
        ("minute", "*/x", "minute '*/x'"),
        ("hour", "24", "hour '24'"),
        ("day_of_month", "32", "day_of_month '32'"),
        ("month_of_year", "13", "month_of_year '13'"),
        ("day_of_week", "8", "day_of_week '8'"),
        ("day_of_week", "funday", "day_of_week 'funday'"),
        ("minute", "", "it is empty"),
        ("minute", "1 2", "contains a space"),
        ("minute", "H", "not supported"),
        ("hour", "R", "not supported"),
        ("minute", "@hourly", "not supported"),
    ],
)
def test_invalid_fields_are_named(field, value, fragment):
    with pytest.raises(CronFieldError) as info:
        validate_field(field, value)
    assert info.value.field == field
    assert fragment in str(info.value)


def test_unknown_timezone_is_rejected():
    with pytest.raises(ValueError, match="Mars/Olympus"):
        CronSpec(timezone="Mars/Olympus")


# -- DST: America/New_York (2024-03-10 02:00 -> 03:00, 2024-11-03 02:00 -> 01:00) ---


def test_new_york_spring_forward_daily_0230_runs_once_at_first_valid_time():
    spec = CronSpec(minute="30", hour="2", timezone="America/New_York")
    assert runs(spec, local(NY, 2024, 3, 9, 12), 3) == [
        "03-10 03:00 EDT",  # 02:30 does not exist: once, when the clock jumps to 03:00
        "03-11 02:30 EDT",
        "03-12 02:30 EDT",
    ]


def test_new_york_fall_back_daily_0130_runs_once():
    spec = CronSpec(minute="30", hour="1", timezone="America/New_York")
    got = spec.upcoming(local(NY, 2024, 11, 2, 12).astimezone(UTC), 3)
    assert [f"{r:%m-%d %H:%M %Z}" for r in got] == [
        "11-03 01:30 EDT",  # the first 01:30 only, not the repeat in EST
        "11-04 01:30 EST",
        "11-05 01:30 EST",
    ]
    # Starting inside the repeated hour, after the first 01:30, does not run it again.
    inside = dt.datetime(2024, 11, 3, 1, 45, tzinfo=NY, fold=1).astimezone(UTC)
    assert spec.next_after(inside).astimezone(NY).day == 4


def test_new_york_hourly_keeps_its_minute_across_both_changes():
    spec = CronSpec(minute="30", hour="*", timezone="America/New_York")
    spring = spec.upcoming(local(NY, 2024, 3, 10, 0, 45).astimezone(UTC), 3)
    assert [f"{r:%H:%M %Z}" for r in spring] == ["01:30 EST", "03:30 EDT", "04:30 EDT"]
    # One real hour apart (subtract in UTC: same-zone arithmetic ignores the offset).
    assert spring[1].astimezone(UTC) - spring[0].astimezone(UTC) == dt.timedelta(hours=1)
    fall = [r.astimezone(UTC) for r in spec.upcoming(local(NY, 2024, 11, 3, 0, 45), 3)]
    assert [f"{r.astimezone(NY):%H:%M %Z}" for r in fall] == ["01:30 EDT", "01:30 EST", "02:30 EST"]
    assert all(b - a == dt.timedelta(hours=1) for a, b in itertools.pairwise(fall))


def test_new_york_runs_inside_the_gap_collapse_into_one():
    spec = CronSpec(minute="*/15", hour="2", timezone="America/New_York")
    got = runs(spec, local(NY, 2024, 3, 10, 1, 0), 2)
    assert got == ["03-10 03:00 EDT", "03-11 02:00 EDT"]


# -- DST: Europe/Berlin (2024-03-31 02:00 -> 03:00, 2024-10-27 03:00 -> 02:00) ------


def test_berlin_spring_forward_daily_0230_runs_once_at_first_valid_time():
    spec = CronSpec(minute="30", hour="2", timezone="Europe/Berlin")
    assert runs(spec, local(BERLIN, 2024, 3, 30, 12), 3) == [
        "03-31 03:00 CEST",
        "04-01 02:30 CEST",
        "04-02 02:30 CEST",
    ]


def test_berlin_fall_back_daily_0230_runs_once():
    spec = CronSpec(minute="30", hour="2", timezone="Europe/Berlin")
    assert runs(spec, local(BERLIN, 2024, 10, 26, 12), 3) == [
        "10-27 02:30 CEST",
        "10-28 02:30 CET",
        "10-29 02:30 CET",
    ]


def test_berlin_hourly_keeps_its_minute_across_both_changes():
    spec = CronSpec(minute="30", hour="*", timezone="Europe/Berlin")
    spring = runs(spec, local(BERLIN, 2024, 3, 31, 0, 45), 3)
    assert spring == ["03-31 01:30 CET", "03-31 03:30 CEST", "03-31 04:30 CEST"]
    fall = spec.upcoming(local(BERLIN, 2024, 10, 27, 1, 45).astimezone(UTC), 3)
    assert [f"{r:%H:%M %Z}" for r in fall] == ["02:30 CEST", "02:30 CET", "03:30 CET"]


def test_berlin_daily_run_keeps_local_time_across_the_change():
    spec = CronSpec(minute="0", hour="9", timezone="Europe/Berlin")
    got = spec.upcoming(local(BERLIN, 2024, 3, 30, 8).astimezone(UTC), 2)
    assert [r.astimezone(BERLIN).hour for r in got] == [9, 9]
    assert [r.astimezone(UTC).hour for r in got] == [8, 7]  # UTC+1 then UTC+2


def test_one_zone_does_not_leak_into_another():
    berlin = CronSpec(minute="0", hour="3", timezone="Europe/Berlin")
    ny = CronSpec(minute="0", hour="3", timezone="America/New_York")
    start = dt.datetime(2024, 6, 1, tzinfo=UTC)
    assert berlin.next_after(start) == dt.datetime(2024, 6, 1, 1, 0, tzinfo=UTC)
    assert ny.next_after(start) == dt.datetime(2024, 6, 1, 7, 0, tzinfo=UTC)


def test_next_after_is_strict_and_monotonic_through_a_whole_dst_year():
    for zone in ("America/New_York", "Europe/Berlin"):
        spec = CronSpec(minute="*/30", hour="*", timezone=zone)
        current = dt.datetime(2024, 1, 1, tzinfo=UTC)
        seen = 0
        while current < dt.datetime(2025, 1, 1, tzinfo=UTC):
            following = spec.next_after(current)
            assert following > current
            # Wall-clock "every 30 minutes" is every 30 real minutes, DST or not.
            assert following - current == dt.timedelta(minutes=30) or seen == 0
            current = following
            seen += 1
        assert seen == 366 * 48


def test_latest_at_or_before_collapses_missed_runs():
    spec = CronSpec(minute="*/5", timezone="UTC")
    first = dt.datetime(2024, 1, 1, 0, 5, tzinfo=UTC)
    now = dt.datetime(2024, 1, 3, 7, 33, 10, tzinfo=UTC)
    assert spec.latest_at_or_before(first, now) == dt.datetime(2024, 1, 3, 7, 30, tzinfo=UTC)
    weekly = CronSpec(minute="0", hour="9", day_of_week="mon", timezone="Europe/Berlin")
    first = dt.datetime(2024, 1, 1, 8, 0, tzinfo=UTC)
    now = dt.datetime(2024, 3, 6, tzinfo=UTC)
    assert weekly.latest_at_or_before(first, now) == dt.datetime(2024, 3, 4, 8, 0, tzinfo=UTC)
    assert weekly.latest_at_or_before(first, first) == first
